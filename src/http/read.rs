//! The read path: choose the snapshot a read sees and make the local replica fit to serve it, then run
//! the (blocking) engine read off the async workers.
//!
//! * `consistency=stale`: no barrier; whatever this replica applied (the answer says how stale). With
//!   `at`, the read waits (up to the request's deadline, then 504 `timeout`) until this replica has
//!   applied up to `at`: before that its state is not the snapshot at `at`.
//! * explicit `at` in the past: a snapshot read. Once the local applied ts has passed `at` the state at
//!   `at` is final, so any replica serves it locally ([`Backend::wait_applied_ts`]), no forwarding.
//! * otherwise (`linearizable`, default, or `lease`): a read barrier. A linearizable barrier works on any
//!   replica (a follower's ReadIndex asks the leader for the commit index, then waits until it has applied
//!   that far); a lease barrier only on the leader: elsewhere it answers `NotLeader` and the request is
//!   forwarded to the leader.
//!
//! Without `at` the read sees the latest applied state after the barrier (engine `at = u64::MAX`), not
//! the wall clock: the hybrid-logical commit ts may run ahead of this node's clock, and a linearizable
//! read must still see every acknowledged write.

use std::future::Future;

use super::backend::{Backend, BackendError, Consistency};
use super::context::{Ctx, Origin};
use super::error::{ApiError, Code, Kind};
use super::params::Query;

/// The snapshot a read runs at.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    /// The engine's `at` (`u64::MAX` = latest applied).
    pub at: u64,
    /// The `at` the client asked for, if any.
    pub asked: Option<u64>,
    /// For stale reads: how far behind the leader this replica may be (`None` when it cannot say).
    pub stale_ms: Option<u64>,
}

/// Run a backend call under the request's deadline.
pub async fn call<T>(
    ctx_retry_after: u64,
    origin: &Origin,
    kind: Kind,
    fut: impl Future<Output = Result<T, BackendError>>,
) -> Result<T, ApiError> {
    match tokio::time::timeout_at(origin.deadline, fut).await {
        Err(_) => Err(ApiError::deadline(kind)),
        Ok(r) => r.map_err(|e| ApiError::from_backend(e, kind, ctx_retry_after)),
    }
}

/// Establish the snapshot for a read with the route's `at` and `consistency` parameters.
pub async fn prepare<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    q: &Query,
) -> Result<Snapshot, ApiError> {
    let consistency = q.consistency()?;
    let asked = q.u64("at")?;
    let retry = ctx.limits.retry_after_secs;
    if let Some(at) = asked {
        // Refuse early: no barrier or wait can bring back a version below the floor.
        let floor = ctx.backend.engine().read_floor();
        if at < floor {
            return Err(ApiError::from_engine(engine::Error::VersionGone {
                at,
                floor,
            }));
        }
    }
    let mut snap = Snapshot {
        at: asked.unwrap_or(u64::MAX),
        asked,
        stale_ms: None,
    };
    match (consistency, asked) {
        (Consistency::Stale, _) => {
            let info = call(
                retry,
                origin,
                Kind::Read,
                ctx.backend
                    .read_barrier(Consistency::Stale, origin.deadline.into_std()),
            )
            .await?;
            // Unknown staleness is left out, never shown as fresh.
            snap.stale_ms = info.stale_by_ms;
            if let Some(at) = asked {
                applied_locally(ctx, origin, at).await?;
            }
        }
        (_, Some(at)) if at < engine::clock::wall_micros() => {
            if ctx.backend.engine().applied().ts < at {
                call(
                    retry,
                    origin,
                    Kind::Read,
                    ctx.backend.wait_applied_ts(at, origin.deadline.into_std()),
                )
                .await?;
            }
        }
        (c, _) => {
            call(
                retry,
                origin,
                Kind::Read,
                ctx.backend.read_barrier(c, origin.deadline.into_std()),
            )
            .await?;
        }
    }
    Ok(snap)
}

/// How often a stale snapshot read checks whether this replica has applied far enough.
const APPLIED_POLL: std::time::Duration = std::time::Duration::from_millis(2);
/// How far ahead of this node's clock a stale read's `at` may lie and still be waited for.
const FUTURE_SLACK_MICROS: u64 = 1_000_000;

/// A stale read at `at` is served only once this replica's applied ts has reached `at` (before that the
/// state at `at` is not final here: entries with a ts ≤ `at` may still be on their way). It waits for
/// this replica's own progress, never asks the leader, and answers 504 `timeout` (with `at` and the
/// `applied_ts` reached) if the request's deadline passes first; an `at` more than a second ahead of this
/// node's clock is refused at once (400 `bad_request`).
async fn applied_locally<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    at: u64,
) -> Result<(), ApiError> {
    let applied_ts = || ctx.backend.engine().applied().ts;
    if applied_ts() < at && at > engine::clock::wall_micros().saturating_add(FUTURE_SLACK_MICROS) {
        // No commit ts lies that far ahead of the clocks: waiting could only end at the deadline.
        return Err(ApiError::bad_request(
            "`at` lies in the future: no replica has applied that far",
        )
        .with("at", at));
    }
    let reached = async {
        while applied_ts() < at {
            tokio::time::sleep(APPLIED_POLL).await;
        }
    };
    match tokio::time::timeout_at(origin.deadline, reached).await {
        Ok(()) => Ok(()),
        Err(_) => Err(ApiError::new(
            Code::Timeout,
            "consistency=stale: this replica had not applied up to `at` when the deadline passed; \
             retry, or read without consistency=stale (any replica then catches up through the leader)",
        )
        .with("at", at)
        .with("applied_ts", applied_ts())),
    }
}

/// Run a blocking engine read on the blocking pool, under the request's deadline.
pub async fn engine_read<B: Backend, T: Send + 'static>(
    ctx: &Ctx<B>,
    origin: &Origin,
    f: impl FnOnce(&engine::Engine) -> Result<T, engine::Error> + Send + 'static,
) -> Result<T, ApiError> {
    let backend = ctx.backend.clone();
    let task = tokio::task::spawn_blocking(move || f(backend.engine()));
    match tokio::time::timeout_at(origin.deadline, task).await {
        Err(_) => Err(ApiError::deadline(Kind::Read)),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "engine read task failed");
            Err(ApiError::internal("the read failed unexpectedly"))
        }
        Ok(Ok(r)) => r.map_err(ApiError::from_engine),
    }
}
