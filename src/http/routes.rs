//! The routes of API v1 (SPEC §3): [`ROUTES`], the one list of what is served (method and path
//! template), and the warp filters that serve it. Each filter matches its path first, then its method,
//! then (for body routes) `Content-Length` against the limit *before* the body is read, so warp's
//! rejections rank correctly: unknown path 404, wrong method 405, body too large 413, no length 411. One
//! rejection handler turns them into the JSON error shape; one log wrapper records request metrics,
//! labelled with the route's template from [`ROUTES`] ([`route_template`]).
//!
//! `docs/openapi.yaml` documents exactly the routes of [`ROUTES`], and `routes()` serves exactly those:
//! both are checked by the tests in `tests/route_table.rs`.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::header::{self, Entry};
use warp::http::{HeaderMap, Method};
use warp::path::{FullPath, Tail};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::admin;
use super::auth::{Access, Auth, Role};
use super::backend::Backend;
use super::context::{Ctx, Origin};
use super::error::{handle_rejection, AuthDenied, BodyTimeout, BodyUnreadable};
use super::forward::finish;
use super::handlers;
use super::limits::Limits;
use super::metrics::method_label;
use super::snapshot;

/// One route: its method, its path template (OpenAPI syntax) and who may call it.
#[derive(Debug, Clone)]
pub struct Route {
    pub method: Method,
    pub template: &'static str,
    pub access: Access,
}

const fn route(method: Method, template: &'static str, access: Access) -> Route {
    Route {
        method,
        template,
        access,
    }
}

const READ: Access = Access::Token(Role::Read);
const WRITE: Access = Access::Token(Role::Write);
const ADMIN: Access = Access::Token(Role::Admin);

/// Every route the API serves: its method, its path template (OpenAPI syntax) and the role it needs
/// when auth is on. `{key}` stands for one or more path segments (a key may contain `/`); any other
/// `{param}` for exactly one segment. Keys that are not UTF-8 use the routes without `{key}` and
/// `?key_b64=`.
pub const ROUTES: &[Route] = &[
    route(Method::GET, "/v1/kv", READ),
    route(Method::PUT, "/v1/kv", WRITE),
    route(Method::DELETE, "/v1/kv", WRITE),
    route(Method::POST, "/v1/kv/incr", WRITE),
    route(Method::GET, "/v1/kv/{key}", READ),
    route(Method::PUT, "/v1/kv/{key}", WRITE),
    route(Method::DELETE, "/v1/kv/{key}", WRITE),
    route(Method::POST, "/v1/kv/{key}/incr", WRITE),
    route(Method::GET, "/v1/entities/{entity}", READ),
    route(Method::POST, "/v1/entities/{entity}/checkpoint", WRITE),
    route(
        Method::GET,
        "/v1/entities/{entity}/checkpoints/{name}",
        READ,
    ),
    route(Method::POST, "/v1/txn", WRITE),
    route(Method::POST, "/v1/batch", WRITE),
    route(Method::GET, "/v1/cluster", READ),
    route(Method::POST, "/v1/cluster/members", ADMIN),
    route(Method::DELETE, "/v1/cluster/members/{id}", ADMIN),
    route(Method::POST, "/v1/cluster/leader", ADMIN),
    route(Method::GET, "/v1/sync", READ),
    route(Method::GET, "/v1/snapshot", ADMIN),
    route(Method::POST, "/v1/sync/pause", ADMIN),
    route(Method::POST, "/v1/sync/resume", ADMIN),
    route(Method::GET, "/metrics", Access::Metrics),
    route(Method::GET, "/healthz", Access::Open),
    route(Method::GET, "/readyz", Access::Open),
];

/// Who may call the route `method template` of [`ROUTES`]; a pair that is not in the table (a bug)
/// needs the admin role, so a mistake can only close a route, never open one.
pub fn access_of(method: &Method, template: &str) -> Access {
    ROUTES
        .iter()
        .find(|r| r.method == method && r.template == template)
        .map_or(ADMIN, |r| r.access)
}

/// Whether `path` (no query string) matches the path template `template`.
pub fn template_matches(template: &str, path: &str) -> bool {
    let path = path
        .strip_suffix('/')
        .filter(|p| !p.is_empty())
        .unwrap_or(path);
    let t: Vec<&str> = template.trim_start_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    segments_match(&t, &p)
}

fn segments_match(t: &[&str], p: &[&str]) -> bool {
    match t.split_first() {
        None => p.is_empty(),
        Some((&"{key}", rest)) => {
            // One or more segments, not all empty, followed by the rest of the template.
            (1..=p.len())
                .any(|n| p[..n].iter().any(|s| !s.is_empty()) && segments_match(rest, &p[n..]))
        }
        Some((seg, rest)) => match p.split_first() {
            None => false,
            Some((first, p_rest)) => {
                let param = seg.starts_with('{') && seg.ends_with('}');
                (if param {
                    !first.is_empty()
                } else {
                    first == seg
                }) && segments_match(rest, p_rest)
            }
        },
    }
}

/// The route template of a request, for the `route` metrics label (bounded cardinality: never the raw
/// path): the template of the route with this method and path, else of any route with this path (a 405),
/// else `other`.
pub fn route_template(method: &str, path: &str) -> &'static str {
    ROUTES
        .iter()
        .find(|r| r.method.as_str() == method && template_matches(r.template, path))
        .or_else(|| ROUTES.iter().find(|r| template_matches(r.template, path)))
        .map_or("other", |r| r.template)
}

/// Every route, with rejections mapped to JSON errors and metrics recorded; no authentication.
pub fn routes<B: Backend>(
    backend: B,
    limits: Limits,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    routes_with_auth(backend, limits, Auth::off())
}

/// [`routes`] with client authentication.
pub fn routes_with_auth<B: Backend>(
    backend: B,
    limits: Limits,
    auth: Auth,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    with_ctx(Ctx::new(backend, limits, auth))
}

pub(crate) fn with_ctx<B: Backend>(
    ctx: Arc<Ctx<B>>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let metrics = Arc::clone(&ctx.metrics);
    let closing = Arc::clone(&ctx.closing);
    api(ctx)
        .recover(handle_rejection)
        .unify()
        .map(move |reply: Response| {
            let mut res = reply;
            // The server's shutdown notice: this connection ends after this answer.
            if closing.load(std::sync::atomic::Ordering::Relaxed) {
                res.headers_mut().insert(
                    warp::http::header::CONNECTION,
                    warp::http::HeaderValue::from_static("close"),
                );
            }
            res
        })
        .with(warp::log::custom(move |info| {
            let method = info.method().as_str();
            metrics.observe(
                route_template(method, info.path()),
                method_label(method),
                info.status().as_u16(),
                info.elapsed(),
            );
        }))
}

/// Run a handler and turn its result into a response (or a forward to the leader).
macro_rules! handle {
    ($ctx:ident, $origin:ident, $call:expr) => {
        async move {
            let result = $call;
            finish(&$ctx, &$origin, result).await
        }
    };
}

/// Let the request through if it may use the route `method template` ([`access_of`]); else reject
/// with 401/403. Placed after the path and method filters (an unknown route stays a 404/405) and before
/// the body is read and the handler (and so any forwarding) runs.
fn guard<B: Backend>(
    ctx: &Arc<Ctx<B>>,
    method: Method,
    template: &'static str,
) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    let access = access_of(&method, template);
    let auth = ctx.auth.clone();
    warp::header::headers_cloned()
        .and_then(move |headers: HeaderMap| {
            let checked = auth.check(access, &headers);
            async move { checked.map_err(|denied| warp::reject::custom(AuthDenied(denied))) }
        })
        .untuple_one()
}

fn with_state<B: Backend>(
    ctx: &Arc<Ctx<B>>,
) -> impl Filter<Extract = (Arc<Ctx<B>>, Origin), Error = Infallible> + Clone {
    let ctx = Arc::clone(ctx);
    let timeout = ctx.limits.request_timeout;
    warp::any()
        .map(move || Arc::clone(&ctx))
        .and(origin(timeout))
}

pub(crate) fn origin(
    timeout: Duration,
) -> impl Filter<Extract = (Origin,), Error = Infallible> + Clone {
    // `query::raw` rejects when there is no query string; `or(any)` makes it infallible.
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .map(
            move |method, path: FullPath, query: String, mut headers: HeaderMap| {
                let arrived = tokio::time::Instant::now();
                // The token is forwarded to the leader but never printed (`Debug` shows `Sensitive`).
                if let Entry::Occupied(mut values) = headers.entry(header::AUTHORIZATION) {
                    values.iter_mut().for_each(|v| v.set_sensitive(true));
                }
                Origin {
                    method,
                    path_and_query: if query.is_empty() {
                        path.as_str().to_owned()
                    } else {
                        format!("{}?{query}", path.as_str())
                    },
                    headers,
                    body: Bytes::new(),
                    arrived,
                    deadline: arrived + timeout,
                }
            },
        )
}

/// `Content-Length` ≤ `limit` (else 413, before reading), then the whole body, which must arrive within
/// `timeout` (else 408 and the connection is closed: a slowly sent body cannot pin its buffer).
fn body(
    limit: u64,
    timeout: Duration,
) -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(limit)
        .and(warp::body::stream())
        .and_then(move |stream| async move {
            match tokio::time::timeout(timeout, read_body(stream)).await {
                Ok(read) => read,
                Err(_) => Err(warp::reject::custom(BodyTimeout(timeout))),
            }
        })
}

async fn read_body<S, B>(stream: S) -> Result<Bytes, warp::Rejection>
where
    S: futures_util::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures_util::StreamExt as _;
    futures_util::pin_mut!(stream);
    let mut body = bytes::BytesMut::new();
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk.map_err(|_| warp::reject::custom(BodyUnreadable))?;
        while chunk.has_remaining() {
            let part = chunk.chunk();
            body.extend_from_slice(part);
            let n = part.len();
            chunk.advance(n);
        }
    }
    Ok(body.freeze())
}

fn api<B: Backend>(ctx: Arc<Ctx<B>>) -> BoxedFilter<(Response,)> {
    let limits = ctx.limits.clone();
    let st = || with_state(&ctx);
    let kv = || {
        warp::path("v1")
            .and(warp::path("kv"))
            .and(warp::path::tail())
    };
    let entity = || {
        warp::path("v1")
            .and(warp::path("entities"))
            .and(warp::path::param::<String>())
    };

    let scan = warp::path!("v1" / "kv")
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/v1/kv"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, handlers::kv_scan(&ctx, &origin).await)
        })
        .boxed();
    let kv_get = kv()
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/v1/kv/{key}"))
        .and(st())
        .then(|tail: Tail, ctx: Arc<Ctx<B>>, origin: Origin| {
            let tail = tail.as_str().to_owned();
            handle!(ctx, origin, handlers::kv_get(&ctx, &origin, &tail).await)
        })
        .boxed();
    let kv_put = kv()
        .and(warp::put())
        .and(guard(&ctx, Method::PUT, "/v1/kv/{key}"))
        .and(body(limits.max_put_body(), limits.body_read_timeout))
        .and(st())
        .then(
            |tail: Tail, body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
                let tail = tail.as_str().to_owned();
                let origin = origin.with_body(body);
                handle!(ctx, origin, handlers::kv_put(&ctx, &origin, &tail).await)
            },
        )
        .boxed();
    let kv_delete = kv()
        .and(warp::delete())
        .and(guard(&ctx, Method::DELETE, "/v1/kv/{key}"))
        .and(st())
        .then(|tail: Tail, ctx: Arc<Ctx<B>>, origin: Origin| {
            let tail = tail.as_str().to_owned();
            handle!(ctx, origin, handlers::kv_delete(&ctx, &origin, &tail).await)
        })
        .boxed();
    let kv_incr = kv()
        .and(warp::post())
        .and(guard(&ctx, Method::POST, "/v1/kv/{key}/incr"))
        .and(st())
        .then(|tail: Tail, ctx: Arc<Ctx<B>>, origin: Origin| {
            let tail = tail.as_str().to_owned();
            handle!(ctx, origin, handlers::kv_incr(&ctx, &origin, &tail).await)
        })
        .boxed();
    let entity_get = entity()
        .and(warp::path::end())
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/v1/entities/{entity}"))
        .and(st())
        .then(|e: String, ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, handlers::entity_get(&ctx, &origin, &e).await)
        })
        .boxed();
    let checkpoint = entity()
        .and(warp::path("checkpoint"))
        .and(warp::path::end())
        .and(warp::post())
        .and(guard(
            &ctx,
            Method::POST,
            "/v1/entities/{entity}/checkpoint",
        ))
        .and(body(limits.max_body, limits.body_read_timeout))
        .and(st())
        .then(|e: String, body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, handlers::checkpoint(&ctx, &origin, &e).await)
        })
        .boxed();
    let crossed = entity()
        .and(warp::path("checkpoints"))
        .and(warp::path::param::<String>())
        .and(warp::path::end())
        .and(warp::get())
        .and(guard(
            &ctx,
            Method::GET,
            "/v1/entities/{entity}/checkpoints/{name}",
        ))
        .and(st())
        .then(
            |e: String, name: String, ctx: Arc<Ctx<B>>, origin: Origin| {
                handle!(
                    ctx,
                    origin,
                    handlers::crossed(&ctx, &origin, &e, &name).await
                )
            },
        )
        .boxed();
    let txn = warp::path!("v1" / "txn")
        .and(warp::post())
        .and(guard(&ctx, Method::POST, "/v1/txn"))
        .and(body(limits.max_body, limits.body_read_timeout))
        .and(st())
        .then(|body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, handlers::txn(&ctx, &origin).await)
        })
        .boxed();
    let batch = warp::path!("v1" / "batch")
        .and(warp::post())
        .and(guard(&ctx, Method::POST, "/v1/batch"))
        .and(body(limits.max_body, limits.body_read_timeout))
        .and(st())
        .then(|body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, handlers::batch(&ctx, &origin).await)
        })
        .boxed();
    let cluster = warp::path!("v1" / "cluster")
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/v1/cluster"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::cluster(&ctx, &origin).await)
        })
        .boxed();
    let add_member = warp::path!("v1" / "cluster" / "members")
        .and(warp::post())
        .and(guard(&ctx, Method::POST, "/v1/cluster/members"))
        .and(body(limits.max_body, limits.body_read_timeout))
        .and(st())
        .then(|body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, admin::add_member(&ctx, &origin).await)
        })
        .boxed();
    let remove_member = warp::path!("v1" / "cluster" / "members" / String)
        .and(warp::delete())
        .and(guard(&ctx, Method::DELETE, "/v1/cluster/members/{id}"))
        .and(st())
        .then(|id: String, ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::remove_member(&ctx, &origin, &id).await)
        })
        .boxed();
    let leader = warp::path!("v1" / "cluster" / "leader")
        .and(warp::post())
        .and(guard(&ctx, Method::POST, "/v1/cluster/leader"))
        .and(body(limits.max_body, limits.body_read_timeout))
        .and(st())
        .then(|body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, admin::transfer_leader(&ctx, &origin).await)
        })
        .boxed();
    let sync = warp::path!("v1" / "sync")
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/v1/sync"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::sync(&ctx, &origin).await)
        })
        .boxed();
    let backup = warp::path!("v1" / "snapshot")
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/v1/snapshot"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, snapshot::snapshot(&ctx, &origin).await)
        })
        .boxed();
    let sync_pause = warp::path!("v1" / "sync" / "pause")
        .and(warp::post())
        .and(guard(&ctx, Method::POST, "/v1/sync/pause"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::sync_pause(&ctx, &origin, true).await)
        })
        .boxed();
    let sync_resume = warp::path!("v1" / "sync" / "resume")
        .and(warp::post())
        .and(guard(&ctx, Method::POST, "/v1/sync/resume"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::sync_pause(&ctx, &origin, false).await)
        })
        .boxed();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/metrics"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::metrics(&ctx, &origin).await)
        })
        .boxed();
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/healthz"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::healthz(&ctx, &origin).await)
        })
        .boxed();
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .and(guard(&ctx, Method::GET, "/readyz"))
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::readyz(&ctx, &origin).await)
        })
        .boxed();

    // The scan route precedes the key routes: `GET /v1/kv` is a scan, not a key with an empty name.
    let all = [
        kv_get,
        kv_put,
        kv_delete,
        kv_incr,
        entity_get,
        checkpoint,
        crossed,
        txn,
        batch,
        cluster,
        add_member,
        remove_member,
        leader,
        sync,
        backup,
        sync_pause,
        sync_resume,
        metrics,
        healthz,
        readyz,
    ];
    all.into_iter()
        .fold(scan, |acc, route| acc.or(route).unify().boxed())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_not_paths() {
        assert_eq!(route_template("GET", "/v1/kv/player:1/pos"), "/v1/kv/{key}");
        assert_eq!(route_template("POST", "/v1/kv/a/incr"), "/v1/kv/{key}/incr");
        assert_eq!(
            route_template("POST", "/v1/kv/a/b/incr"),
            "/v1/kv/{key}/incr"
        );
        assert_eq!(route_template("POST", "/v1/kv/incr"), "/v1/kv/incr");
        assert_eq!(route_template("GET", "/v1/kv/a/incr"), "/v1/kv/{key}");
        assert_eq!(route_template("GET", "/v1/kv"), "/v1/kv");
        assert_eq!(route_template("GET", "/v1/kv/"), "/v1/kv");
        assert_eq!(route_template("PUT", "/v1/kv"), "/v1/kv");
        // A wrong method keeps the path's template (the 405 is counted there).
        assert_eq!(route_template("POST", "/v1/kv/a"), "/v1/kv/{key}");
        assert_eq!(
            route_template("GET", "/v1/entities/p/checkpoints/c1"),
            "/v1/entities/{entity}/checkpoints/{name}"
        );
        assert_eq!(
            route_template("GET", "/v1/entities/p"),
            "/v1/entities/{entity}"
        );
        assert_eq!(
            route_template("DELETE", "/v1/cluster/members/3"),
            "/v1/cluster/members/{id}"
        );
        assert_eq!(route_template("GET", "/v1/entities"), "other");
        assert_eq!(route_template("GET", "/v1/entities/p/x/y"), "other");
        assert_eq!(route_template("GET", "/nope/x"), "other");
    }
}
