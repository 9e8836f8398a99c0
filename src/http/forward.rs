//! Forwarding to the leader: any node accepts any request; a follower replays writes and linearizable
//! reads to the leader's client address, marked with `kvs-forwarded: 1` so the leader never forwards it
//! again (a node that is not the leader either answers 503 `not_leader` — no loops).
//!
//! Failures: the leader cannot be reached → 503 `leader_unreachable` (nothing was sent); no answer before
//! the deadline, or the connection broke after a write was sent → 504 `unknown_outcome` (for reads 504
//! `timeout` / 503 `leader_unreachable`).

use warp::http::{header, HeaderName, HeaderValue, Request, Uri};
use warp::hyper::Body;
use warp::reply::Response;

use super::backend::Backend;
use super::context::{Ctx, Origin, FORWARDED_HEADER};
use super::error::{ApiError, Kind};

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

/// Turn a handler's result into the response: a `not_leader` that names the leader is forwarded there,
/// unless this request was itself forwarded (then the client gets the 503 with `leader`).
pub async fn finish<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    result: Result<Response, ApiError>,
) -> Response {
    match result {
        Ok(res) => res,
        Err(mut e) => match e.forward_to.take() {
            Some(leader) if !origin.forwarded() => forward(ctx, origin, &leader).await,
            _ => e.into_response(),
        },
    }
}

async fn forward<B: Backend>(ctx: &Ctx<B>, origin: &Origin, leader: &str) -> Response {
    ctx.metrics.forwarded.inc();
    let result = send(ctx, origin, leader).await;
    match result {
        Ok(res) => res,
        Err(e) => {
            ctx.metrics.forward_failures.inc();
            tracing::warn!(leader, code = e.code.as_str(), message = %e.message, "forward to leader failed");
            e.into_response()
        }
    }
}

async fn send<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    leader: &str,
) -> Result<Response, ApiError> {
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
            Ok(res)
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
