//! Which outcome of one attempt ends a request and which moves on to the next endpoint: a pure decision,
//! tested by its table below. The I/O that produces the [`Attempt`] is in [`super::Client`].
//!
//! The rule is *never do a write twice without knowing*: an endpoint is skipped only when the request
//! certainly had no effect there (nothing was sent, or the node answered that it cannot serve it), or
//! when the request is idempotent (a read). A write that was sent and got no answer is reported as
//! outcome unknown and never re-sent.

use crate::http::Code;

/// What one attempt at one endpoint came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt<'a> {
    /// The connection (TCP or TLS handshake) could not be made: nothing was sent.
    ConnectFailed,
    /// The request may have been sent, and the connection broke before a whole answer arrived.
    Broken,
    /// The command's deadline passed before a whole answer arrived (the request may have been served).
    TimedOut,
    /// An HTTP answer: its status and the API error code of an error answer (`None` when the body is not
    /// the API's error shape).
    Answered { status: u16, code: Option<&'a str> },
}

/// What to do after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// This answer is the request's answer (success or an error to report).
    Accept,
    /// Nothing happened here (or the request is a read): try the next endpoint, at once.
    TryNext,
    /// A write was sent and no answer came: it may or may not have been applied. Stop, report it.
    OutcomeUnknown,
    /// A read got no answer within the deadline: stop (no time is left for another endpoint).
    TimedOut,
}

/// The 503 codes that mean "this node cannot serve the request now, and it changed nothing": another
/// node may (docs/openapi.yaml: shutting down, no leader known, not ready, no quorum here, the leader
/// unreachable from here, storage unavailable, the connection limit reached).
pub const MOVE_ON_CODES: [Code; 7] = [
    Code::ShuttingDown,
    Code::NotLeader,
    Code::NotReady,
    Code::NoQuorum,
    Code::LeaderUnreachable,
    Code::StorageUnavailable,
    Code::TooManyConnections,
];

/// The decision for `attempt` of a request that is `idempotent` (safe to send twice) or not.
pub fn decide(attempt: Attempt<'_>, idempotent: bool) -> Decision {
    match attempt {
        Attempt::ConnectFailed => Decision::TryNext,
        Attempt::Answered {
            status: 503,
            code: Some(code),
        } if MOVE_ON_CODES.iter().any(|c| c.as_str() == code) => Decision::TryNext,
        Attempt::Answered { .. } => Decision::Accept,
        Attempt::Broken if idempotent => Decision::TryNext,
        Attempt::Broken => Decision::OutcomeUnknown,
        Attempt::TimedOut if idempotent => Decision::TimedOut,
        Attempt::TimedOut => Decision::OutcomeUnknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answered(status: u16, code: &str) -> Attempt<'_> {
        Attempt::Answered {
            status,
            code: Some(code),
        }
    }

    #[test]
    fn what_moves_on_and_what_stops() {
        use Decision::*;
        let table: &[(Attempt<'_>, bool, Decision)] = &[
            // Nothing was sent: always the next endpoint.
            (Attempt::ConnectFailed, false, TryNext),
            (Attempt::ConnectFailed, true, TryNext),
            // A node that says it cannot serve changed nothing.
            (answered(503, "shutting_down"), false, TryNext),
            (answered(503, "not_leader"), false, TryNext),
            (answered(503, "not_ready"), true, TryNext),
            (answered(503, "no_quorum"), false, TryNext),
            (answered(503, "leader_unreachable"), false, TryNext),
            (answered(503, "too_many_connections"), false, TryNext),
            // Other answers are the answer, errors included.
            (answered(200, "x"), false, Accept),
            (answered(404, "key_not_found"), true, Accept),
            (answered(409, "stale_epoch"), false, Accept),
            (answered(403, "forbidden"), false, Accept),
            (answered(429, "overloaded"), false, Accept),
            (answered(504, "unknown_outcome"), false, Accept),
            (answered(503, "something_new"), false, Accept),
            (
                Attempt::Answered {
                    status: 503,
                    code: None,
                },
                true,
                Accept,
            ),
            // Sent, no answer: a read may go elsewhere, a write is never re-sent blindly.
            (Attempt::Broken, true, TryNext),
            (Attempt::Broken, false, OutcomeUnknown),
            (Attempt::TimedOut, true, TimedOut),
            (Attempt::TimedOut, false, OutcomeUnknown),
        ];
        for &(attempt, idempotent, want) in table {
            assert_eq!(
                decide(attempt, idempotent),
                want,
                "{attempt:?} idempotent={idempotent}"
            );
        }
    }

    #[test]
    fn every_move_on_code_is_a_503() {
        for code in MOVE_ON_CODES {
            assert_eq!(code.status().as_u16(), 503, "{code}");
        }
    }
}
