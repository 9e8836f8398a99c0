//! The TiKV server: the transactional KV RPCs over the percolator store, each checked against its
//! region (id, epoch, key range) first, as TiKV does.

use std::collections::BTreeMap;
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::conn::ConnId;
use crate::double::{Gate, Shared};
use crate::faults::{RegionError, Rpc};
use crate::mvcc::{
    Action, ConflictReason, KeyRange, Lock, LockKind, Mutation, MutationOp, Prewrite, TxnError,
    TxnStatus,
};
use crate::proto::errorpb;
use crate::proto::kvrpcpb::{self, prewrite_request::PessimisticAction};
use crate::proto::tikvpb::tikv_server::Tikv;
use crate::regions::Region;

#[derive(Debug)]
pub(crate) struct TikvService {
    shared: Arc<Shared>,
}

/// A response that can carry a region error instead of an answer.
trait WithRegionError: Default {
    fn with_region_error(e: errorpb::Error) -> Self;
}

macro_rules! with_region_error {
    ($($t:ty),* $(,)?) => {$(
        impl WithRegionError for $t {
            fn with_region_error(e: errorpb::Error) -> Self {
                Self { region_error: Some(e), ..Default::default() }
            }
        }
    )*};
}

with_region_error!(
    kvrpcpb::GetResponse,
    kvrpcpb::BatchGetResponse,
    kvrpcpb::ScanResponse,
    kvrpcpb::PrewriteResponse,
    kvrpcpb::CommitResponse,
    kvrpcpb::BatchRollbackResponse,
    kvrpcpb::CleanupResponse,
    kvrpcpb::CheckTxnStatusResponse,
    kvrpcpb::CheckSecondaryLocksResponse,
    kvrpcpb::ResolveLockResponse,
    kvrpcpb::TxnHeartBeatResponse,
    kvrpcpb::ScanLockResponse,
    kvrpcpb::PessimisticLockResponse,
    kvrpcpb::PessimisticRollbackResponse,
);

/// The outcome of the checks before the work: go on in this region, or answer at once.
enum Entry<R> {
    Go(Region, Gate),
    Answer(R),
}

impl TikvService {
    pub fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    /// Count the call, apply its fault, and check the request's region and keys.
    async fn enter<R: WithRegionError>(
        &self,
        rpc: Rpc,
        ctx: Option<&kvrpcpb::Context>,
        keys: &[&[u8]],
    ) -> Result<Entry<R>, Status> {
        let gate = self.shared.gate(rpc).await?;
        let Some(ctx) = ctx else {
            return Ok(Entry::Answer(R::with_region_error(errorpb::Error {
                message: "tikv-double: request without context".to_owned(),
                ..Default::default()
            })));
        };
        let Some(region) = self.shared.regions.by_id(ctx.region_id).cloned() else {
            return Ok(Entry::Answer(R::with_region_error(errorpb::Error {
                message: format!("region {} not found", ctx.region_id),
                region_not_found: Some(errorpb::RegionNotFound {
                    region_id: ctx.region_id,
                }),
                ..Default::default()
            })));
        };
        if let Gate::RegionError(kind) = gate {
            return Ok(Entry::Answer(R::with_region_error(injected(kind, &region))));
        }
        if ctx.region_epoch.as_ref() != Some(&region.epoch()) {
            return Ok(Entry::Answer(R::with_region_error(errorpb::Error {
                message: format!("epoch not match for region {}", region.id),
                epoch_not_match: Some(errorpb::EpochNotMatch {
                    current_regions: vec![region.to_pd()],
                }),
                ..Default::default()
            })));
        }
        if let Some(key) = keys.iter().find(|k| !region.range.contains(k)) {
            return Ok(Entry::Answer(R::with_region_error(errorpb::Error {
                message: format!("key {key:?} is not in region {}", region.id),
                key_not_in_region: Some(errorpb::KeyNotInRegion {
                    key: key.to_vec(),
                    region_id: region.id,
                    start_key: region.range.start.clone(),
                    end_key: region.range.end.clone(),
                }),
                ..Default::default()
            })));
        }
        Ok(Entry::Go(region, gate))
    }

    /// Answer, or (under `DropAfterApply`) drop the connection with the work done and no answer.
    async fn finish<T, R>(
        &self,
        gate: Gate,
        request: &Request<T>,
        resp: R,
    ) -> Result<Response<R>, Status> {
        if gate == Gate::DropAfterApply {
            let conn = request.extensions().get::<ConnId>().copied();
            return self
                .shared
                .drop_connection(conn, &self.shared.tikv_conns)
                .await;
        }
        Ok(Response::new(resp))
    }
}

/// Unwrap an [`Entry`]: the region and gate, or return the early answer.
macro_rules! enter {
    ($self:ident, $rpc:expr, $request:ident, $keys:expr) => {{
        let keys: Vec<&[u8]> = $keys;
        match $self
            .enter($rpc, $request.get_ref().context.as_ref(), &keys)
            .await?
        {
            Entry::Go(region, gate) => (region, gate),
            Entry::Answer(resp) => return Ok(Response::new(resp)),
        }
    }};
}

fn injected(kind: RegionError, region: &Region) -> errorpb::Error {
    let mut e = errorpb::Error {
        message: format!("tikv-double: injected {kind:?}"),
        ..Default::default()
    };
    match kind {
        RegionError::NotLeader => {
            e.not_leader = Some(errorpb::NotLeader {
                region_id: region.id,
                leader: None,
            })
        }
        RegionError::NotLeaderWithHint => {
            e.not_leader = Some(errorpb::NotLeader {
                region_id: region.id,
                leader: Some(region.peer()),
            })
        }
        RegionError::EpochNotMatch => e.epoch_not_match = Some(errorpb::EpochNotMatch::default()),
        RegionError::ServerIsBusy => {
            e.server_is_busy = Some(errorpb::ServerIsBusy {
                reason: "tikv-double: injected".to_owned(),
                ..Default::default()
            })
        }
        RegionError::RegionNotFound => {
            e.region_not_found = Some(errorpb::RegionNotFound {
                region_id: region.id,
            })
        }
    }
    e
}

fn lock_info(key: &[u8], lock: &Lock) -> kvrpcpb::LockInfo {
    let lock_type = match lock.kind {
        LockKind::Put(_) => kvrpcpb::Op::Put,
        LockKind::Delete => kvrpcpb::Op::Del,
        LockKind::Lock => kvrpcpb::Op::Lock,
        LockKind::Pessimistic => kvrpcpb::Op::PessimisticLock,
    };
    kvrpcpb::LockInfo {
        primary_lock: lock.primary.clone(),
        lock_version: lock.start_ts,
        key: key.to_vec(),
        lock_ttl: lock.ttl,
        txn_size: lock.txn_size,
        lock_type: lock_type.into(),
        lock_for_update_ts: lock.for_update_ts,
        min_commit_ts: lock.start_ts.saturating_add(1),
        ..Default::default()
    }
}

fn key_error(e: TxnError) -> kvrpcpb::KeyError {
    let mut out = kvrpcpb::KeyError::default();
    match e {
        TxnError::Locked { key, lock } => out.locked = Some(lock_info(&key, &lock)),
        TxnError::WriteConflict {
            key,
            primary,
            start_ts,
            conflict_start_ts,
            conflict_commit_ts,
            reason,
        } => {
            let reason = match reason {
                ConflictReason::Optimistic => kvrpcpb::write_conflict::Reason::Optimistic,
                ConflictReason::PessimisticRetry => {
                    kvrpcpb::write_conflict::Reason::PessimisticRetry
                }
                ConflictReason::SelfRolledBack => kvrpcpb::write_conflict::Reason::SelfRolledBack,
            };
            out.conflict = Some(kvrpcpb::WriteConflict {
                start_ts,
                conflict_ts: conflict_start_ts,
                key,
                primary,
                conflict_commit_ts,
                reason: reason.into(),
            })
        }
        TxnError::AlreadyExist { key } => out.already_exist = Some(kvrpcpb::AlreadyExist { key }),
        TxnError::TxnLockNotFound { key, start_ts } => {
            out.retryable = format!("TxnLockNotFound {{ start_ts: {start_ts}, key: {key:?} }}")
        }
        TxnError::TxnNotFound { key, start_ts } => {
            out.txn_not_found = Some(kvrpcpb::TxnNotFound {
                start_ts,
                primary_key: key,
            })
        }
        TxnError::PrimaryMismatch { key, lock } => {
            out.primary_mismatch = Some(kvrpcpb::PrimaryMismatch {
                lock_info: Some(lock_info(&key, &lock)),
            })
        }
        TxnError::Abort(message) => out.abort = message,
    }
    out
}

/// A prewrite mutation in the store's terms; an op a prewrite cannot carry is an error message.
fn mutation(m: &kvrpcpb::Mutation, pessimistic_check: bool) -> Result<Mutation, String> {
    let op = match kvrpcpb::Op::try_from(m.op) {
        Ok(kvrpcpb::Op::Put) => MutationOp::Put(m.value.clone()),
        Ok(kvrpcpb::Op::Del) => MutationOp::Delete,
        Ok(kvrpcpb::Op::Lock) => MutationOp::Lock,
        Ok(kvrpcpb::Op::Insert) => MutationOp::Insert(m.value.clone()),
        Ok(kvrpcpb::Op::CheckNotExists) => MutationOp::CheckNotExists,
        other => return Err(format!("tikv-double: mutation op {other:?} in a prewrite")),
    };
    Ok(Mutation {
        key: m.key.clone(),
        op,
        pessimistic_check,
    })
}

fn action(a: Action) -> kvrpcpb::Action {
    match a {
        Action::NoAction => kvrpcpb::Action::NoAction,
        Action::TtlExpireRollback => kvrpcpb::Action::TtlExpireRollback,
        Action::LockNotExistRollback => kvrpcpb::Action::LockNotExistRollback,
        Action::TtlExpirePessimisticRollback => kvrpcpb::Action::TtlExpirePessimisticRollback,
    }
}

fn keys_of(keys: &[Vec<u8>]) -> Vec<&[u8]> {
    keys.iter().map(Vec::as_slice).collect()
}

#[tonic::async_trait]
impl Tikv for TikvService {
    async fn kv_get(
        &self,
        request: Request<kvrpcpb::GetRequest>,
    ) -> Result<Response<kvrpcpb::GetResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvGet,
            request,
            vec![request.get_ref().key.as_slice()]
        );
        let req = request.get_ref();
        let mut resp = kvrpcpb::GetResponse::default();
        match self.shared.mvcc().get(&req.key, req.version) {
            Ok(Some(value)) => resp.value = value,
            Ok(None) => resp.not_found = true,
            Err(e) => resp.error = Some(key_error(e)),
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_batch_get(
        &self,
        request: Request<kvrpcpb::BatchGetRequest>,
    ) -> Result<Response<kvrpcpb::BatchGetResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvBatchGet,
            request,
            keys_of(&request.get_ref().keys)
        );
        let req = request.get_ref();
        let mut resp = kvrpcpb::BatchGetResponse::default();
        {
            let mvcc = self.shared.mvcc();
            for key in &req.keys {
                match mvcc.get(key, req.version) {
                    Ok(Some(value)) => resp.pairs.push(kvrpcpb::KvPair {
                        key: key.clone(),
                        value,
                        error: None,
                    }),
                    Ok(None) => {}
                    Err(e) => resp.pairs.push(kvrpcpb::KvPair {
                        key: key.clone(),
                        value: Vec::new(),
                        error: Some(key_error(e)),
                    }),
                }
            }
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_scan(
        &self,
        request: Request<kvrpcpb::ScanRequest>,
    ) -> Result<Response<kvrpcpb::ScanResponse>, Status> {
        let (region, gate) = enter!(self, Rpc::KvScan, request, Vec::new());
        let req = request.get_ref();
        // A reverse scan's start key is its (exclusive) upper bound, its end key the lower one.
        let asked = if req.reverse {
            KeyRange {
                start: req.end_key.clone(),
                end: req.start_key.clone(),
            }
        } else {
            KeyRange {
                start: req.start_key.clone(),
                end: req.end_key.clone(),
            }
        };
        let mut resp = kvrpcpb::ScanResponse::default();
        if let Some(range) = asked.intersect(&region.range) {
            let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
            let items = self
                .shared
                .mvcc()
                .scan(&range, limit, req.version, req.reverse);
            resp.pairs = items
                .into_iter()
                .map(|(key, item)| match item {
                    Ok(value) => kvrpcpb::KvPair {
                        key,
                        value: if req.key_only { Vec::new() } else { value },
                        error: None,
                    },
                    Err(e) => kvrpcpb::KvPair {
                        key,
                        value: Vec::new(),
                        error: Some(key_error(e)),
                    },
                })
                .collect();
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_prewrite(
        &self,
        request: Request<kvrpcpb::PrewriteRequest>,
    ) -> Result<Response<kvrpcpb::PrewriteResponse>, Status> {
        let keys = request
            .get_ref()
            .mutations
            .iter()
            .map(|m| m.key.as_slice())
            .collect();
        let (_, gate) = enter!(self, Rpc::KvPrewrite, request, keys);
        let req = request.get_ref();
        let mut resp = kvrpcpb::PrewriteResponse::default();
        if req.use_async_commit || req.try_one_pc {
            resp.errors.push(key_error(TxnError::Abort(
                "tikv-double: async commit and 1PC are not modeled".to_owned(),
            )));
            return self.finish(gate, &request, resp).await;
        }
        let check = i32::from(PessimisticAction::DoPessimisticCheck);
        let mutations = req
            .mutations
            .iter()
            .enumerate()
            .map(|(i, m)| mutation(m, req.pessimistic_actions.get(i) == Some(&check)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(Status::invalid_argument)?;
        let prewrite = Prewrite {
            mutations,
            primary: req.primary_lock.clone(),
            start_ts: req.start_version,
            ttl: req.lock_ttl,
            for_update_ts: req.for_update_ts,
            txn_size: req.txn_size,
        };
        if let Err(errors) = self.shared.mvcc().prewrite(&prewrite) {
            resp.errors = errors.into_iter().map(key_error).collect();
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_commit(
        &self,
        request: Request<kvrpcpb::CommitRequest>,
    ) -> Result<Response<kvrpcpb::CommitResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvCommit,
            request,
            keys_of(&request.get_ref().keys)
        );
        let req = request.get_ref();
        let mut resp = kvrpcpb::CommitResponse::default();
        let result = self
            .shared
            .mvcc()
            .commit(&req.keys, req.start_version, req.commit_version);
        match result {
            Ok(()) => resp.commit_version = req.commit_version,
            Err(e) => resp.error = Some(key_error(e)),
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_batch_rollback(
        &self,
        request: Request<kvrpcpb::BatchRollbackRequest>,
    ) -> Result<Response<kvrpcpb::BatchRollbackResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvBatchRollback,
            request,
            keys_of(&request.get_ref().keys)
        );
        let req = request.get_ref();
        let mut resp = kvrpcpb::BatchRollbackResponse::default();
        if let Err(e) = self.shared.mvcc().rollback(&req.keys, req.start_version) {
            resp.error = Some(key_error(e));
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_cleanup(
        &self,
        request: Request<kvrpcpb::CleanupRequest>,
    ) -> Result<Response<kvrpcpb::CleanupResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvCleanup,
            request,
            vec![request.get_ref().key.as_slice()]
        );
        let req = request.get_ref();
        let mut resp = kvrpcpb::CleanupResponse::default();
        match self
            .shared
            .mvcc()
            .cleanup(&req.key, req.start_version, req.current_ts)
        {
            Ok(commit_ts) => resp.commit_version = commit_ts.unwrap_or(0),
            Err(e) => resp.error = Some(key_error(e)),
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_check_txn_status(
        &self,
        request: Request<kvrpcpb::CheckTxnStatusRequest>,
    ) -> Result<Response<kvrpcpb::CheckTxnStatusResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvCheckTxnStatus,
            request,
            vec![request.get_ref().primary_key.as_slice()]
        );
        let req = request.get_ref();
        let mut resp = kvrpcpb::CheckTxnStatusResponse::default();
        let status = self.shared.mvcc().check_txn_status(
            &req.primary_key,
            req.lock_ts,
            req.current_ts,
            req.rollback_if_not_exist,
            req.verify_is_primary,
        );
        match status {
            Ok(TxnStatus::Committed(commit_ts)) => resp.commit_version = commit_ts,
            Ok(TxnStatus::RolledBack(a)) => resp.action = action(a).into(),
            Ok(TxnStatus::Locked { key, lock }) => {
                resp.lock_ttl = lock.ttl;
                resp.lock_info = Some(lock_info(&key, &lock));
            }
            Err(e) => resp.error = Some(key_error(e)),
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_check_secondary_locks(
        &self,
        request: Request<kvrpcpb::CheckSecondaryLocksRequest>,
    ) -> Result<Response<kvrpcpb::CheckSecondaryLocksResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvCheckSecondaryLocks,
            request,
            keys_of(&request.get_ref().keys)
        );
        let req = request.get_ref();
        let (locks, commit_ts) = self
            .shared
            .mvcc()
            .check_secondary_locks(&req.keys, req.start_version);
        let resp = kvrpcpb::CheckSecondaryLocksResponse {
            locks: locks.iter().map(|(k, l)| lock_info(k, l)).collect(),
            commit_ts,
            ..Default::default()
        };
        self.finish(gate, &request, resp).await
    }

    async fn kv_resolve_lock(
        &self,
        request: Request<kvrpcpb::ResolveLockRequest>,
    ) -> Result<Response<kvrpcpb::ResolveLockResponse>, Status> {
        let (region, gate) = enter!(
            self,
            Rpc::KvResolveLock,
            request,
            keys_of(&request.get_ref().keys)
        );
        let req = request.get_ref();
        let txns: BTreeMap<u64, u64> = if req.txn_infos.is_empty() {
            BTreeMap::from([(req.start_version, req.commit_version)])
        } else {
            req.txn_infos.iter().map(|t| (t.txn, t.status)).collect()
        };
        let mut resp = kvrpcpb::ResolveLockResponse::default();
        if let Err(e) = self
            .shared
            .mvcc()
            .resolve_locks(&txns, &region.range, &req.keys)
        {
            resp.error = Some(key_error(e));
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_txn_heart_beat(
        &self,
        request: Request<kvrpcpb::TxnHeartBeatRequest>,
    ) -> Result<Response<kvrpcpb::TxnHeartBeatResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvTxnHeartBeat,
            request,
            vec![request.get_ref().primary_lock.as_slice()]
        );
        let req = request.get_ref();
        let mut resp = kvrpcpb::TxnHeartBeatResponse::default();
        let result =
            self.shared
                .mvcc()
                .heartbeat(&req.primary_lock, req.start_version, req.advise_lock_ttl);
        match result {
            Ok(ttl) => resp.lock_ttl = ttl,
            Err(e) => resp.error = Some(key_error(e)),
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_scan_lock(
        &self,
        request: Request<kvrpcpb::ScanLockRequest>,
    ) -> Result<Response<kvrpcpb::ScanLockResponse>, Status> {
        let (region, gate) = enter!(self, Rpc::KvScanLock, request, Vec::new());
        let req = request.get_ref();
        let asked = KeyRange {
            start: req.start_key.clone(),
            end: req.end_key.clone(),
        };
        let mut resp = kvrpcpb::ScanLockResponse::default();
        if let Some(range) = asked.intersect(&region.range) {
            let limit = usize::try_from(req.limit).unwrap_or(usize::MAX);
            resp.locks = self
                .shared
                .mvcc()
                .scan_locks(&range, req.max_version, limit)
                .iter()
                .map(|(k, l)| lock_info(k, l))
                .collect();
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_pessimistic_lock(
        &self,
        request: Request<kvrpcpb::PessimisticLockRequest>,
    ) -> Result<Response<kvrpcpb::PessimisticLockResponse>, Status> {
        let keys: Vec<Vec<u8>> = request
            .get_ref()
            .mutations
            .iter()
            .map(|m| m.key.clone())
            .collect();
        let (_, gate) = enter!(self, Rpc::KvPessimisticLock, request, keys_of(&keys));
        let req = request.get_ref();
        let mut resp = kvrpcpb::PessimisticLockResponse::default();
        let result = self.shared.mvcc().pessimistic_lock(
            &keys,
            &req.primary_lock,
            req.start_version,
            req.for_update_ts,
            req.lock_ttl,
        );
        match result {
            Ok(values) if req.return_values => {
                resp.not_founds = values.iter().map(Option::is_none).collect();
                resp.values = values.into_iter().map(Option::unwrap_or_default).collect();
            }
            Ok(_) => {}
            Err(errors) => resp.errors = errors.into_iter().map(key_error).collect(),
        }
        self.finish(gate, &request, resp).await
    }

    async fn kv_pessimistic_rollback(
        &self,
        request: Request<kvrpcpb::PessimisticRollbackRequest>,
    ) -> Result<Response<kvrpcpb::PessimisticRollbackResponse>, Status> {
        let (_, gate) = enter!(
            self,
            Rpc::KvPessimisticRollback,
            request,
            keys_of(&request.get_ref().keys)
        );
        let req = request.get_ref();
        self.shared
            .mvcc()
            .pessimistic_rollback(&req.keys, req.start_version, req.for_update_ts);
        self.finish(
            gate,
            &request,
            kvrpcpb::PessimisticRollbackResponse::default(),
        )
        .await
    }
}
