//! Thin handlers of the data routes: decode the request, call the read or write path, encode the DTO.
//! Each returns `Result<Response, ApiError>`; [`finish`](super::forward::finish) turns errors into
//! responses (or a forward to the leader).

use engine::{Op, OpOutcome, ScanRequest, WriteCond};
use warp::http::{header, HeaderValue};
use warp::reply::Response;

use super::backend::{Backend, GlobalLookup};
use super::body::parse_json;
use super::context::{Ctx, Origin};
use super::dto::{
    self, BatchItem, BatchReq, BatchResp, CheckpointReq, CheckpointResp, CrossingResp, DeleteResp,
    EntityResp, IncrResp, ItemDto, OutcomeDto, Text, TxnReq, TxnResp, WriteResp,
};
use super::error::{ok, ApiError, Code};
use super::params::{path_segment, request_key, Query};
use super::propose::{propose, propose_one};
use super::read::{engine_read, prepare};

type Reply = Result<Response, ApiError>;

fn unexpected(o: &OpOutcome) -> ApiError {
    tracing::error!(outcome = ?o, "unexpected outcome for the proposed op");
    ApiError::internal("the node returned an unexpected outcome")
}

fn header_u64(res: &mut Response, name: &'static str, v: u64) {
    res.headers_mut().insert(name, HeaderValue::from(v));
}

// --- /v1/kv ------------------------------------------------------------------------------------------

const GET_PARAMS: &[&str] = &["at", "consistency", "key_b64"];

/// `GET /v1/kv/{key}` → the raw value, `kvs-ts`, `kvs-epoch` (and `kvs-stale-ms` for stale reads).
pub async fn kv_get<B: Backend>(ctx: &Ctx<B>, origin: &Origin, tail: &str) -> Reply {
    let q = Query::parse(origin.query(), GET_PARAMS)?;
    let key = request_key(tail, &q)?;
    ctx.limits.check_key("key", &key)?;
    let snap = prepare(ctx, origin, &q).await?;
    let at = snap.at;
    let found = engine_read(ctx, origin, move |e| e.get(&key, at)).await?;
    let Some(v) = found else {
        return Err(ApiError::new(
            Code::KeyNotFound,
            "no such key at this snapshot",
        ));
    };
    let mut res = Response::new(v.value.into());
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    header_u64(&mut res, "kvs-ts", v.ts);
    header_u64(&mut res, "kvs-epoch", v.epoch);
    if let Some(ms) = snap.stale_ms {
        header_u64(&mut res, "kvs-stale-ms", ms);
    }
    Ok(res)
}

/// `PUT /v1/kv/{key}` with the raw value as body → `{"ts","epoch"}`.
pub async fn kv_put<B: Backend>(ctx: &Ctx<B>, origin: &Origin, tail: &str) -> Reply {
    let q = Query::parse(
        origin.query(),
        &["epoch", "if_version", "if_absent", "key_b64"],
    )?;
    let key = request_key(tail, &q)?;
    ctx.limits.check_key("key", &key)?;
    ctx.limits.check_value("value", &origin.body)?;
    let op = Op::Put {
        key,
        value: origin.body.to_vec(),
        cond: WriteCond {
            epoch: q.u64("epoch")?,
            if_version: q.u64("if_version")?,
            if_absent: q.flag("if_absent")?,
        },
    };
    match propose_one(ctx, origin, op).await? {
        OpOutcome::Written { ts, epoch } => Ok(ok(&WriteResp { ts, epoch })),
        o => Err(unexpected(&o)),
    }
}

/// `DELETE /v1/kv/{key}` → `{"ts","existed"}`.
pub async fn kv_delete<B: Backend>(ctx: &Ctx<B>, origin: &Origin, tail: &str) -> Reply {
    let q = Query::parse(origin.query(), &["epoch", "if_version", "key_b64"])?;
    let key = request_key(tail, &q)?;
    ctx.limits.check_key("key", &key)?;
    let op = Op::Delete {
        key,
        cond: WriteCond {
            epoch: q.u64("epoch")?,
            if_version: q.u64("if_version")?,
            if_absent: false,
        },
    };
    match propose_one(ctx, origin, op).await? {
        OpOutcome::Deleted { ts, existed } => Ok(ok(&DeleteResp { ts, existed })),
        o => Err(unexpected(&o)),
    }
}

/// `POST /v1/kv/{key}/incr?delta=` (delta defaults to 1) → `{"value","ts","epoch"}`. With `key_b64` the
/// path is `/v1/kv/incr`. Any other POST under `/v1/kv/` is a 405.
pub async fn kv_incr<B: Backend>(ctx: &Ctx<B>, origin: &Origin, tail: &str) -> Reply {
    let key_tail = match tail.strip_suffix("incr") {
        Some("") => "",
        Some(rest) if rest.ends_with('/') => &rest[..rest.len() - 1],
        _ => {
            return Err(ApiError::new(
                Code::MethodNotAllowed,
                "POST under /v1/kv/ is only /v1/kv/{key}/incr",
            ))
        }
    };
    let q = Query::parse(origin.query(), &["delta", "epoch", "key_b64"])?;
    let key = request_key(key_tail, &q)?;
    ctx.limits.check_key("key", &key)?;
    let op = Op::incr(key, q.i64("delta")?.unwrap_or(1)).with_epoch(q.u64("epoch")?);
    match propose_one(ctx, origin, op).await? {
        OpOutcome::Incremented { value, ts, epoch } => Ok(ok(&IncrResp { value, ts, epoch })),
        o => Err(unexpected(&o)),
    }
}

/// `GET /v1/kv?prefix=&start=&end=&limit=&at=` → `{"items":[...],"more"}`. (`GET /v1/kv?key_b64=` is a
/// point read of that key.)
pub async fn kv_scan<B: Backend>(ctx: &Ctx<B>, origin: &Origin) -> Reply {
    let q = Query::parse(
        origin.query(),
        &[
            "prefix",
            "prefix_b64",
            "start",
            "start_b64",
            "end",
            "end_b64",
            "limit",
            "at",
            "consistency",
            "key_b64",
        ],
    )?;
    if q.has("key_b64") {
        return kv_get(ctx, origin, "").await;
    }
    let prefix = q.bytes("prefix")?;
    let start = q.bytes("start")?;
    let end = q.bytes("end")?;
    let limit = ctx.limits.scan_limit(q.usize("limit")?);
    let mut req = match prefix {
        Some(_) if start.is_some() || end.is_some() => {
            return Err(ApiError::bad_request("give prefix or start/end, not both"));
        }
        Some(p) => ScanRequest {
            max_bytes: ctx.limits.max_scan_bytes,
            ..ScanRequest::prefix(&p, limit, u64::MAX)
        },
        None => ScanRequest {
            start: start.unwrap_or_default(),
            end,
            limit,
            max_bytes: ctx.limits.max_scan_bytes,
            at: u64::MAX,
        },
    };
    let snap = prepare(ctx, origin, &q).await?;
    req.at = snap.at;
    let page = engine_read(ctx, origin, move |e| e.scan(&req)).await?;
    Ok(ok(&dto::ScanResp {
        items: page.items.into_iter().map(ItemDto::new).collect(),
        more: page.more,
        at: snap.asked,
        stale_ms: snap.stale_ms,
    }))
}

// --- /v1/entities ------------------------------------------------------------------------------------

fn entity(ctx: &Ctx<impl Backend>, raw: &str) -> Result<Vec<u8>, ApiError> {
    let entity = path_segment("entity", raw)?;
    dto::entity_field(&ctx.limits, &entity)?;
    Ok(entity)
}

/// `GET /v1/entities/{entity}?at=` → every live key of the entity at one snapshot, with its epoch.
pub async fn entity_get<B: Backend>(ctx: &Ctx<B>, origin: &Origin, raw: &str) -> Reply {
    let q = Query::parse(origin.query(), &["at", "consistency", "limit"])?;
    let entity = entity(ctx, raw)?;
    let limit = ctx.limits.scan_limit(q.usize("limit")?);
    let snap = prepare(ctx, origin, &q).await?;
    let at = snap.at;
    let max_bytes = ctx.limits.max_scan_bytes;
    let view = engine_read(ctx, origin, move |e| {
        e.entity(&entity, at, limit, max_bytes)
    })
    .await?;
    Ok(ok(&EntityResp {
        epoch: view.epoch,
        items: view.items.into_iter().map(ItemDto::new).collect(),
        more: view.more,
        at: snap.asked,
        stale_ms: snap.stale_ms,
    }))
}

/// `POST /v1/entities/{entity}/checkpoint` with `{"name","data"}` → `{"epoch","ts"}`.
pub async fn checkpoint<B: Backend>(ctx: &Ctx<B>, origin: &Origin, raw: &str) -> Reply {
    Query::parse(origin.query(), &[])?;
    let entity = entity(ctx, raw)?;
    let req: CheckpointReq = parse_json(&origin.headers, &origin.body)?;
    let name = dto::text_or_b64("name", req.name, req.name_b64)?
        .ok_or_else(|| ApiError::bad_request("name (or name_b64) is required"))?;
    let data = dto::text_or_b64("data", req.data, req.data_b64)?.unwrap_or_default();
    let op = dto::checkpoint_op(&ctx.limits, entity, name, data, req.epoch)?;
    match propose_one(ctx, origin, op).await? {
        OpOutcome::Checkpointed { epoch, ts } => Ok(ok(&CheckpointResp { epoch, ts })),
        o => Err(unexpected(&o)),
    }
}

/// `GET /v1/entities/{entity}/checkpoints/{name}` → 200 `{"epoch","ts","data"}` or 404. With `at`, a
/// crossing committed after `at` is not visible.
pub async fn crossed<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    raw_entity: &str,
    raw_name: &str,
) -> Reply {
    let q = Query::parse(origin.query(), &["at", "consistency", "scope"])?;
    let global = match q.str("scope") {
        None | Some("local") => false,
        Some("global") => true,
        Some(other) => {
            return Err(ApiError::new(
                Code::BadRequest,
                format!("scope must be local or global, not {other:?}"),
            ))
        }
    };
    let entity = entity(ctx, raw_entity)?;
    let name = path_segment("checkpoint name", raw_name)?;
    ctx.limits.check_key("checkpoint name", &name)?;
    let snap = prepare(ctx, origin, &q).await?;
    let (e2, n2) = (entity.clone(), name.clone());
    let found = engine_read(ctx, origin, move |e| e.crossed(&e2, &n2)).await?;
    let not_found = || {
        ApiError::new(
            Code::CheckpointNotFound,
            "the entity has not crossed that checkpoint",
        )
    };
    match found {
        Some(c) if c.ts <= snap.at => Ok(ok(&CrossingResp {
            epoch: c.epoch,
            ts: c.ts,
            data: Text::data(c.data),
            site: None,
        })),
        _ if global => match ctx
            .backend
            .crossed_global(entity, name, origin.deadline.into_std())
            .await
        {
            GlobalLookup::Found(Some(c)) => Ok(ok(&CrossingResp {
                epoch: c.epoch,
                ts: c.ts,
                data: Text::data(c.data),
                site: Some(c.site),
            })),
            GlobalLookup::Found(None) => Err(not_found()),
            GlobalLookup::NotConfigured => Err(ApiError::new(
                Code::SyncNotConfigured,
                "scope=global needs upward federation (--pd) on this node",
            )),
            GlobalLookup::Failed(why) => Err(ApiError::new(
                Code::StorageUnavailable,
                format!("the central store did not answer: {why}"),
            )),
        },
        _ => Err(not_found()),
    }
}

// --- /v1/txn, /v1/batch -------------------------------------------------------------------------------

/// `POST /v1/txn` → `{"succeeded","ts","results"}`. A failed compare is a 200 with `succeeded: false`
/// (and the failure branch's results), as in etcd; an op of the chosen branch that fails (stale epoch,
/// ...) fails the whole txn with that op's error and nothing of it applies.
pub async fn txn<B: Backend>(ctx: &Ctx<B>, origin: &Origin) -> Reply {
    Query::parse(origin.query(), &[])?;
    let req: TxnReq = parse_json(&origin.headers, &origin.body)?;
    let op = req.into_op(&ctx.limits)?;
    let mut applied = propose(ctx, origin, vec![op]).await?;
    match applied.outcomes.pop() {
        Some(Ok(OpOutcome::Txn { succeeded, results })) => Ok(ok(&TxnResp {
            succeeded,
            ts: applied.ts,
            results: results.into_iter().map(OutcomeDto::from).collect(),
        })),
        Some(Ok(o)) => Err(unexpected(&o)),
        Some(Err(e)) => Err(ApiError::from_op(&e)),
        None => Err(ApiError::internal("the node returned no result")),
    }
}

/// `POST /v1/batch` with `{"ops":[...]}` → `{"ts","results":[...]}`: one Raft entry, independent ops,
/// one result per op (its outcome or `{"error":{...}}`). A malformed op refuses the whole batch (400)
/// before anything is proposed.
pub async fn batch<B: Backend>(ctx: &Ctx<B>, origin: &Origin) -> Reply {
    Query::parse(origin.query(), &[])?;
    let req: BatchReq = parse_json(&origin.headers, &origin.body)?;
    if req.ops.is_empty() {
        return Err(ApiError::bad_request("a batch needs at least one op"));
    }
    ctx.limits.check_ops(req.ops.len())?;
    let ops = req
        .ops
        .into_iter()
        .enumerate()
        .map(|(i, o)| {
            o.into_op(&ctx.limits, false).map_err(|mut e| {
                e.message = format!("op {i}: {}", e.message);
                e.with("op_index", i)
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let applied = propose(ctx, origin, ops).await?;
    let results = applied
        .outcomes
        .into_iter()
        .map(|r| match r {
            Ok(o) => BatchItem::Ok(OutcomeDto::from(o)),
            Err(e) => BatchItem::Err {
                error: ApiError::from_op(&e).body_object(),
            },
        })
        .collect();
    Ok(ok(&BatchResp {
        ts: applied.ts,
        results,
    }))
}
