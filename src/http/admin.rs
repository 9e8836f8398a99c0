//! Thin handlers of the cluster and operations routes: cluster view, membership, leader transfer, sync
//! state, metrics, liveness and readiness.

use warp::http::{header, HeaderValue};
use warp::reply::Response;

use super::backend::{AddMember, Backend};
use super::body::parse_json;
use super::context::{Ctx, Origin};
use super::dto::{AddMemberReq, ClusterDto, HealthDto, LeaderReq, LeaderResp, ReadyDto, SyncDto};
use super::error::{ok, ApiError, Code, Kind};
use super::params::Query;
use super::propose::spawned;
use super::read::call;

type Reply = Result<Response, ApiError>;

/// `GET /v1/cluster`.
pub async fn cluster<B: Backend>(ctx: &Ctx<B>, origin: &Origin) -> Reply {
    Query::parse(origin.query(), &[])?;
    let view = call(
        ctx.limits.retry_after_secs,
        origin,
        Kind::Read,
        ctx.backend.cluster(origin.deadline.into_std()),
    )
    .await?;
    Ok(ok(&ClusterDto::from(view)))
}

/// `POST /v1/cluster/members` `{"peer_addr","client_addr","learner","id"?}` → the new cluster view.
pub async fn add_member<B: Backend>(ctx: &Ctx<B>, origin: &Origin) -> Reply {
    Query::parse(origin.query(), &[])?;
    let req: AddMemberReq = parse_json(&origin.headers, &origin.body)?;
    if req.peer_addr.trim().is_empty() {
        return Err(ApiError::bad_request("peer_addr must not be empty"));
    }
    if req.id == Some(0) {
        return Err(ApiError::bad_request("member id 0 is reserved"));
    }
    let add = AddMember {
        id: req.id,
        peer_addr: req.peer_addr,
        client_addr: req.client_addr,
        learner: req.learner,
    };
    let backend = ctx.backend.clone();
    let deadline = origin.deadline.into_std();
    let view = spawned(ctx, origin, async move {
        backend.add_member(add, deadline).await
    })
    .await?;
    Ok(ok(&ClusterDto::from(view)))
}

/// `DELETE /v1/cluster/members/{id}` → the new cluster view.
pub async fn remove_member<B: Backend>(ctx: &Ctx<B>, origin: &Origin, raw_id: &str) -> Reply {
    Query::parse(origin.query(), &[])?;
    let id: u64 = raw_id.parse().map_err(|_| {
        ApiError::bad_request(format!("member id must be an integer, got {raw_id:?}"))
    })?;
    let backend = ctx.backend.clone();
    let deadline = origin.deadline.into_std();
    let view = spawned(ctx, origin, async move {
        backend.remove_member(id, deadline).await
    })
    .await?;
    Ok(ok(&ClusterDto::from(view)))
}

/// `POST /v1/cluster/leader` `{"to": id|null}` (an empty body means `null`).
pub async fn transfer_leader<B: Backend>(ctx: &Ctx<B>, origin: &Origin) -> Reply {
    Query::parse(origin.query(), &[])?;
    let req: LeaderReq = if origin.body.is_empty() {
        LeaderReq::default()
    } else {
        parse_json(&origin.headers, &origin.body)?
    };
    let to = req.to;
    let backend = ctx.backend.clone();
    let deadline = origin.deadline.into_std();
    spawned(ctx, origin, async move {
        backend.transfer_leader(to, deadline).await
    })
    .await?;
    Ok(ok(&LeaderResp {
        requested: true,
        to,
    }))
}

/// `GET /v1/sync`: this node's view of the upward federation (all null when not configured).
pub async fn sync<B: Backend>(ctx: &Ctx<B>, origin: &Origin) -> Reply {
    Query::parse(origin.query(), &[])?;
    Ok(ok(&ctx
        .backend
        .sync_status()
        .map_or_else(SyncDto::not_configured, SyncDto::from)))
}

/// `POST /v1/sync/pause` and `/v1/sync/resume`: stop or restart this node's sync worker (the flag is
/// per node; the leader's is the one that matters). 409 `sync_not_configured` without federation.
pub async fn sync_pause<B: Backend>(ctx: &Ctx<B>, origin: &Origin, paused: bool) -> Reply {
    Query::parse(origin.query(), &[])?;
    if !ctx.backend.sync_pause(paused) {
        return Err(ApiError::new(
            Code::SyncNotConfigured,
            "upward federation is not configured on this node",
        ));
    }
    Ok(ok(&crate::http::dto::SyncPauseResp { paused }))
}

/// `GET /metrics`: the registry (this layer's metrics and the backend's), in the text format.
pub async fn metrics<B: Backend>(ctx: &Ctx<B>, _origin: &Origin) -> Reply {
    // Gathering reads RocksDB properties and /proc: off the async workers.
    let registry = ctx.registry.clone();
    let out = tokio::task::spawn_blocking(move || super::metrics::render(&registry))
        .await
        .map_err(|e| ApiError::internal(format!("encoding metrics failed: {e}")))?
        .map_err(|e| {
            tracing::error!(error = %e, "encoding /metrics failed");
            ApiError::internal(format!("encoding metrics failed: {e}"))
        })?;
    let mut res = Response::new(out.into());
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(super::metrics::CONTENT_TYPE),
    );
    Ok(res)
}

/// `GET /healthz`: 200 while the node can serve; 503 `shutting_down` once its Raft loop died (the process
/// is stopping then, to be restarted).
pub async fn healthz<B: Backend>(ctx: &Ctx<B>, _origin: &Origin) -> Reply {
    match ctx.backend.liveness() {
        Ok(()) => Ok(ok(&HealthDto { status: "ok" })),
        Err(why) => Err(ApiError::new(
            Code::ShuttingDown,
            format!("not live: {why}"),
        )),
    }
}

/// `GET /readyz`: 200 when the leader is known, the applied index caught up and the disk writable; else
/// 503 `not_ready` with the same fields beside the error object.
pub async fn readyz<B: Backend>(ctx: &Ctx<B>, _origin: &Origin) -> Reply {
    let dto = ReadyDto::from(ctx.backend.readiness());
    if dto.ready {
        return Ok(ok(&dto));
    }
    let message = if dto.detail.is_empty() {
        "not ready".to_owned()
    } else {
        format!("not ready: {}", dto.detail.join("; "))
    };
    let fields = serde_json::to_value(&dto)
        .map_err(|e| ApiError::internal(format!("response encoding failed: {e}")))?;
    Err(ApiError::new(Code::NotReady, message).beside(fields))
}
