//! The route table of API v1 (SPEC §3) as warp filters. Each route matches its path first, then its
//! method, then (for body routes) `Content-Length` against the limit *before* the body is read, so warp's
//! rejections rank correctly: unknown path 404, wrong method 405, body too large 413, no length 411. One
//! rejection handler turns them into the JSON error shape; one log wrapper records request metrics.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::path::{FullPath, Tail};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::admin;
use super::backend::Backend;
use super::context::{Ctx, Origin};
use super::error::handle_rejection;
use super::forward::finish;
use super::handlers;
use super::limits::Limits;
use super::metrics::{method_label, route_template};

/// Every route, with rejections mapped to JSON errors and metrics recorded.
pub fn routes<B: Backend>(
    backend: B,
    limits: Limits,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    with_ctx(Ctx::new(backend, limits))
}

pub(crate) fn with_ctx<B: Backend>(
    ctx: Arc<Ctx<B>>,
) -> impl Filter<Extract = (impl Reply,), Error = Infallible> + Clone {
    let metrics = Arc::clone(&ctx.metrics);
    api(ctx)
        .recover(handle_rejection)
        .unify()
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

fn with_state<B: Backend>(
    ctx: &Arc<Ctx<B>>,
) -> impl Filter<Extract = (Arc<Ctx<B>>, Origin), Error = Infallible> + Clone {
    let ctx = Arc::clone(ctx);
    let timeout = ctx.limits.request_timeout;
    warp::any()
        .map(move || Arc::clone(&ctx))
        .and(origin(timeout))
}

fn origin(timeout: Duration) -> impl Filter<Extract = (Origin,), Error = Infallible> + Clone {
    // `query::raw` rejects when there is no query string; `or(any)` makes it infallible.
    let raw_query = warp::query::raw().or(warp::any().map(String::new)).unify();
    warp::method()
        .and(warp::path::full())
        .and(raw_query)
        .and(warp::header::headers_cloned())
        .map(
            move |method, path: FullPath, query: String, headers| Origin {
                method,
                path_and_query: if query.is_empty() {
                    path.as_str().to_owned()
                } else {
                    format!("{}?{query}", path.as_str())
                },
                headers,
                body: Bytes::new(),
                deadline: tokio::time::Instant::now() + timeout,
            },
        )
}

/// `Content-Length` ≤ `limit` (else 413, before reading), then the whole body.
fn body(limit: u64) -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(limit).and(warp::body::bytes())
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
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, handlers::kv_scan(&ctx, &origin).await)
        })
        .boxed();
    let kv_get = kv()
        .and(warp::get())
        .and(st())
        .then(|tail: Tail, ctx: Arc<Ctx<B>>, origin: Origin| {
            let tail = tail.as_str().to_owned();
            handle!(ctx, origin, handlers::kv_get(&ctx, &origin, &tail).await)
        })
        .boxed();
    let kv_put = kv()
        .and(warp::put())
        .and(body(limits.max_put_body()))
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
        .and(st())
        .then(|tail: Tail, ctx: Arc<Ctx<B>>, origin: Origin| {
            let tail = tail.as_str().to_owned();
            handle!(ctx, origin, handlers::kv_delete(&ctx, &origin, &tail).await)
        })
        .boxed();
    let kv_incr = kv()
        .and(warp::post())
        .and(st())
        .then(|tail: Tail, ctx: Arc<Ctx<B>>, origin: Origin| {
            let tail = tail.as_str().to_owned();
            handle!(ctx, origin, handlers::kv_incr(&ctx, &origin, &tail).await)
        })
        .boxed();
    let entity_get = entity()
        .and(warp::path::end())
        .and(warp::get())
        .and(st())
        .then(|e: String, ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, handlers::entity_get(&ctx, &origin, &e).await)
        })
        .boxed();
    let checkpoint = entity()
        .and(warp::path("checkpoint"))
        .and(warp::path::end())
        .and(warp::post())
        .and(body(limits.max_body))
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
        .and(body(limits.max_body))
        .and(st())
        .then(|body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, handlers::txn(&ctx, &origin).await)
        })
        .boxed();
    let batch = warp::path!("v1" / "batch")
        .and(warp::post())
        .and(body(limits.max_body))
        .and(st())
        .then(|body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, handlers::batch(&ctx, &origin).await)
        })
        .boxed();
    let cluster = warp::path!("v1" / "cluster")
        .and(warp::get())
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::cluster(&ctx, &origin).await)
        })
        .boxed();
    let add_member = warp::path!("v1" / "cluster" / "members")
        .and(warp::post())
        .and(body(limits.max_body))
        .and(st())
        .then(|body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, admin::add_member(&ctx, &origin).await)
        })
        .boxed();
    let remove_member = warp::path!("v1" / "cluster" / "members" / String)
        .and(warp::delete())
        .and(st())
        .then(|id: String, ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::remove_member(&ctx, &origin, &id).await)
        })
        .boxed();
    let leader = warp::path!("v1" / "cluster" / "leader")
        .and(warp::post())
        .and(body(limits.max_body))
        .and(st())
        .then(|body: Bytes, ctx: Arc<Ctx<B>>, origin: Origin| {
            let origin = origin.with_body(body);
            handle!(ctx, origin, admin::transfer_leader(&ctx, &origin).await)
        })
        .boxed();
    let sync = warp::path!("v1" / "sync")
        .and(warp::get())
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::sync(&ctx, &origin).await)
        })
        .boxed();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::metrics(&ctx, &origin).await)
        })
        .boxed();
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .and(st())
        .then(|ctx: Arc<Ctx<B>>, origin: Origin| {
            handle!(ctx, origin, admin::healthz(&ctx, &origin).await)
        })
        .boxed();
    let readyz = warp::path!("readyz")
        .and(warp::get())
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
        metrics,
        healthz,
        readyz,
    ];
    all.into_iter()
        .fold(scan, |acc, route| acc.or(route).unify().boxed())
}
