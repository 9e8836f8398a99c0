//! Forwarding to the leader: any node accepts any request; a follower replays writes and linearizable
//! reads to the leader's client address, marked with `kvs-forwarded: 1` so the leader never forwards it
//! again (a node that is not the leader either answers 503 `not_leader` — no loops).
//!
//! Failures: the leader cannot be reached → 503 `leader_unreachable` (nothing was sent); no answer before
//! the deadline, or the connection broke after a write was sent → 504 `unknown_outcome` (for reads 504
//! `timeout` / 503 `leader_unreachable`).
//!
//! **Leadership in flux.** A request that failed with nothing changed because leadership is moving — this
//! node knows no leader or lost it mid-request (`not_leader` without a leader, `no_quorum`,
//! `shutting_down`), or the node it went to could not be reached or answered 503 `not_leader`,
//! `no_quorum`, `leader_unreachable` or `shutting_down` — waits for this node to learn the next leader
//! ([`Backend::next_leader`], bounded by the request's deadline and about two election timeouts) and is
//! sent there: a leader stopping or dying costs its clients latency, not errors. Only this node's own
//! view chooses the target (never a hint in another node's answer, so two nodes that disagree cannot
//! bounce a request between them), at most [`MAX_HOPS`] times per request. A 504, or anything a
//! leader answered otherwise, is never re-sent.

use warp::http::{header, HeaderName, HeaderValue, Request, StatusCode, Uri};
use warp::hyper::Body;
use warp::reply::Response;

use super::backend::Backend;
use super::context::{Ctx, Origin, FORWARDED_HEADER};
use super::error::{ApiError, Code, Kind};

/// Headers that describe one connection, not the request: never copied across a proxy.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "te"
            | "trailer"
            | "trailers"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    )
}

/// The leader's URI for the request: `scheme` (this site's client-port scheme) unless the address
/// carries its own.
fn leader_uri(leader: &str, scheme: &str, path_and_query: &str) -> Result<Uri, String> {
    let base = if leader.contains("://") {
        leader.trim_end_matches('/').to_owned()
    } else {
        format!("{scheme}://{leader}")
    };
    format!("{base}{path_and_query}")
        .parse::<Uri>()
        .map_err(|e| format!("bad leader address {leader:?}: {e}"))
}

/// Forwards one request makes at most: enough for a hand-over seen late and one election after it.
pub const MAX_HOPS: usize = 3;

/// Codes that say "nothing changed, and leadership is moving": the request may go to the next leader.
fn in_flux(code: Code) -> bool {
    matches!(
        code,
        Code::NotLeader | Code::NoQuorum | Code::LeaderUnreachable | Code::ShuttingDown
    )
}

/// Turn a handler's result into the response: a `not_leader` that names the leader is forwarded there,
/// and a failure while leadership moves waits for the next leader (module docs) — unless this request
/// was itself forwarded (then the client gets the 503 with `leader`).
pub async fn finish<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    result: Result<Response, ApiError>,
) -> Response {
    let mut err = match result {
        Ok(res) => return res,
        Err(e) if origin.forwarded() => return e.into_response(),
        Err(e) => e,
    };
    let mut target = err.forward_to.take();
    // The answer if no leader turns up: the last failure, ours or the leader's as it gave it.
    let mut last = Last::Error(err);
    // Where the last attempt went: this node (`None`) or a forward's address.
    let mut tried: Option<String> = None;
    for _ in 0..MAX_HOPS {
        let leader = match target.take() {
            Some(leader) => leader,
            None => {
                let flux = match &last {
                    Last::Error(e) => in_flux(e.code),
                    Last::Answer(_) => true,
                };
                if !flux {
                    break;
                }
                let deadline = origin.deadline.into_std();
                match ctx.backend.next_leader(tried.as_deref(), deadline).await {
                    Some(leader) => leader,
                    None => break,
                }
            }
        };
        last = match forward(ctx, origin, &leader).await {
            Ok(Remote {
                res,
                in_flux: false,
            }) => return res,
            Ok(Remote { res, in_flux: true }) => Last::Answer(res),
            Err(e) => Last::Error(e),
        };
        tried = Some(leader);
    }
    match last {
        Last::Error(e) => e.into_response(),
        Last::Answer(res) => res,
    }
}

enum Last {
    Error(ApiError),
    Answer(Response),
}

/// The leader's answer, and whether it says leadership is moving (a 503 with an [`in_flux`] code).
struct Remote {
    res: Response,
    in_flux: bool,
}

async fn forward<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    leader: &str,
) -> Result<Remote, ApiError> {
    ctx.metrics.forwarded.inc();
    let result = send(ctx, origin, leader).await;
    if let Err(e) = &result {
        ctx.metrics.forward_failures.inc();
        tracing::warn!(leader, code = e.code.as_str(), message = %e.message, "forward to leader failed");
    }
    result
}

/// Whether a 503 body names an [`in_flux`] code.
fn answers_in_flux(status: StatusCode, body: &[u8]) -> bool {
    if status != StatusCode::SERVICE_UNAVAILABLE {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let code = v["error"]["code"].as_str().unwrap_or_default();
    Code::ALL.iter().any(|c| in_flux(*c) && c.as_str() == code)
}

async fn send<B: Backend>(ctx: &Ctx<B>, origin: &Origin, leader: &str) -> Result<Remote, ApiError> {
    let uri = leader_uri(leader, ctx.scheme, &origin.path_and_query)
        .map_err(|why| ApiError::leader_unreachable(leader, why))?;
    let mut req = Request::new(Body::from(origin.body.clone()));
    *req.method_mut() = origin.method.clone();
    *req.uri_mut() = uri;
    for (name, value) in &origin.headers {
        if !hop_by_hop(name) {
            req.headers_mut().append(name.clone(), value.clone());
        }
    }
    req.headers_mut()
        .insert(FORWARDED_HEADER, HeaderValue::from_static("1"));
    let kind = origin.kind();
    let budget = origin
        .deadline
        .saturating_duration_since(tokio::time::Instant::now())
        .min(ctx.limits.forward_timeout);
    let exchange = async {
        let res = ctx.client.request(req).await?;
        let (parts, body) = res.into_parts();
        let bytes = hyper::body::to_bytes(body).await?;
        Ok::<_, hyper::Error>((parts, bytes))
    };
    match tokio::time::timeout(budget, exchange).await {
        Err(_) => Err(ApiError::deadline(kind)),
        Ok(Err(e)) if e.is_connect() => Err(ApiError::leader_unreachable(leader, e)),
        Ok(Err(e)) => match kind {
            Kind::Write => Err(ApiError::deadline(Kind::Write)
                .with("leader", leader)
                .with("detail", e.to_string())),
            Kind::Read => Err(ApiError::leader_unreachable(leader, e)),
        },
        Ok(Ok((parts, bytes))) => {
            let in_flux = answers_in_flux(parts.status, &bytes);
            let mut res = Response::new(Body::from(bytes));
            *res.status_mut() = parts.status;
            for (name, value) in &parts.headers {
                if !hop_by_hop(name) {
                    res.headers_mut().append(name.clone(), value.clone());
                }
            }
            if let Ok(v) = HeaderValue::from_str(leader) {
                res.headers_mut().insert("kvs-forwarded-to", v);
            }
            // Content-Length is recomputed by hyper from the buffered body.
            res.headers_mut().remove(header::CONTENT_LENGTH);
            Ok(Remote { res, in_flux })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_uris() {
        assert_eq!(
            leader_uri("127.0.0.1:7379", "http", "/v1/kv/a?at=1").unwrap(),
            "http://127.0.0.1:7379/v1/kv/a?at=1"
        );
        assert_eq!(
            leader_uri("127.0.0.1:7379", "https", "/v1/kv/a").unwrap(),
            "https://127.0.0.1:7379/v1/kv/a"
        );
        assert_eq!(
            leader_uri("http://node1:7379/", "https", "/v1/txn").unwrap(),
            "http://node1:7379/v1/txn"
        );
        assert!(leader_uri("bad host", "http", "/").is_err());
    }
}
