//! The write path: bounded in-flight proposals, each run in a spawned task (a client that hangs up
//! cannot cancel a proposal halfway), awaited under the request's deadline. A deadline that passes is a
//! 504 `unknown_outcome`: the proposal may still commit.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::OwnedSemaphorePermit;
use tokio::time::Instant;

use super::backend::{Applied, Backend, BackendError};
use super::context::{Ctx, Origin};
use super::error::{ApiError, Kind};
use super::metrics::Metrics;

/// Holds a proposal slot until the proposal is finished (not merely until the client stopped waiting).
struct Slot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.proposals_inflight.dec();
    }
}

fn take_slot<B: Backend>(ctx: &Ctx<B>) -> Result<Slot, ApiError> {
    match Arc::clone(&ctx.proposals).try_acquire_owned() {
        Ok(permit) => {
            ctx.metrics.proposals_inflight.inc();
            Ok(Slot {
                _permit: permit,
                metrics: Arc::clone(&ctx.metrics),
            })
        }
        Err(_) => {
            ctx.metrics.proposals_rejected.inc();
            Err(ApiError::overloaded(
                "too many proposals in flight on this node",
                ctx.limits.retry_after_secs,
            ))
        }
    }
}

/// Run state-changing backend work (a proposal, a membership change) to completion in its own task, and
/// wait for it until the request's deadline.
pub async fn spawned<B: Backend, T: Send + 'static>(
    ctx: &Ctx<B>,
    origin: &Origin,
    work: impl Future<Output = Result<T, BackendError>> + Send + 'static,
) -> Result<T, ApiError> {
    let slot = take_slot(ctx)?;
    let task = tokio::spawn(async move {
        let r = work.await;
        drop(slot);
        r
    });
    match tokio::time::timeout_at(origin.deadline, task).await {
        Err(_) => Err(ApiError::deadline(Kind::Write)),
        Ok(Err(join)) => {
            tracing::error!(error = %join, "proposal task failed");
            Err(ApiError::deadline(Kind::Write).with("detail", "the proposal task failed"))
        }
        Ok(Ok(r)) => {
            r.map_err(|e| ApiError::from_backend(e, Kind::Write, ctx.limits.retry_after_secs))
        }
    }
}

/// Propose `ops` as one entry; `Ok` has exactly one result per op. A committed write's time in each
/// stage of the write path goes to the write-stage histogram: `http_in` (from the request's arrival:
/// its body, routing, decoding), `spawn` (until its proposal task ran), the backend's own stages, and
/// `join` (from the task's end until this handler resumed).
pub async fn propose<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    ops: Vec<engine::Op>,
) -> Result<Applied, ApiError> {
    let n = ops.len();
    let backend = ctx.backend.clone();
    let deadline = origin.deadline.into_std();
    let start = Instant::now();
    let (began, applied, ended) = spawned(ctx, origin, async move {
        let began = Instant::now();
        let applied = backend.propose(ops, deadline).await?;
        Ok((began, applied, Instant::now()))
    })
    .await?;
    let m = &ctx.metrics;
    m.observe_stage("http_in", start.saturating_duration_since(origin.arrived));
    m.observe_stage("spawn", began.saturating_duration_since(start));
    for (stage, took) in &applied.stages {
        m.observe_stage(stage, *took);
    }
    m.observe_stage("join", Instant::now().saturating_duration_since(ended));
    if applied.outcomes.len() != n {
        tracing::error!(
            proposed = n,
            results = applied.outcomes.len(),
            "backend returned the wrong number of results"
        );
        return Err(ApiError::internal(
            "the node returned the wrong number of results",
        ));
    }
    Ok(applied)
}

/// Propose one op; its op-level failure (stale epoch, failed condition, ...) becomes the error.
pub async fn propose_one<B: Backend>(
    ctx: &Ctx<B>,
    origin: &Origin,
    op: engine::Op,
) -> Result<engine::OpOutcome, ApiError> {
    let mut applied = propose(ctx, origin, vec![op]).await?;
    match applied.outcomes.pop() {
        Some(Ok(outcome)) => Ok(outcome),
        Some(Err(e)) => Err(ApiError::from_op(&e)),
        None => Err(ApiError::internal("the node returned no result")),
    }
}
