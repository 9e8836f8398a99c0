//! The HTTP layer's [`Backend`] over a running [`Replica`]: proposals and read barriers through the Raft
//! node, reads from the local engine, the cluster view, membership and leader admin, readiness and the
//! node's metrics.
//!
//! A refresher task keeps a recent [`NodeStatus`] (every 100 ms) for the calls that must not wait on the
//! node loop (`readiness`, `metrics`, leader address lookups), and probes that the data dir is writable.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use raft_node::membership::{Refusal, MAX_NODE_ID};
use raft_node::{Error, LoopExit, Member, MembershipChange, NodeStatus, Role as NodeRole};

use super::replica::Replica;
use crate::http::{
    AddMember, Applied, Backend, BackendError, ClusterView, Consistency, ImageOrigin,
    MemberRefusal, MemberRole, MemberView, ReadInfo, Readiness,
};

/// How often a promotion is asked again while its learner catches up.
const PROMOTE_RETRY: Duration = Duration::from_millis(50);

/// How far applied may trail commit and still count as caught up for `/readyz`.
const CAUGHT_UP_ENTRIES: u64 = 1_000;
/// A cached status older than this (twenty refreshes missed, the longest election timeout) says nothing
/// about the node any more: the loop is wedged or gone, and `/readyz` answers not ready.
const STATUS_STALE_AFTER: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct ReplicaBackend {
    replica: Arc<Replica>,
    shared: Arc<Shared>,
    federation: Option<crate::federation::Federation>,
}

struct Shared {
    status: RwLock<Option<(Instant, NodeStatus)>>,
    disk_writable: AtomicBool,
}

impl ReplicaBackend {
    /// Wrap `replica` and start the status refresher (it stops when the replica shuts down).
    pub fn new(replica: Arc<Replica>) -> Self {
        let shared = Arc::new(Shared {
            status: RwLock::new(None),
            disk_writable: AtomicBool::new(true),
        });
        tokio::spawn(refresh(replica.clone(), shared.clone()));
        ReplicaBackend {
            replica,
            shared,
            federation: None,
        }
    }

    /// Report (and pause/resume) this federation in `/v1/sync`, `/readyz` and `/metrics`.
    pub fn with_federation(mut self, federation: crate::federation::Federation) -> Self {
        self.federation = Some(federation);
        self
    }

    /// The cached status and its age.
    fn cached_with_age(&self) -> Option<(Duration, NodeStatus)> {
        self.shared
            .status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(at, s)| (at.elapsed(), s.clone()))
    }

    fn cached(&self) -> Option<NodeStatus> {
        self.shared
            .status
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .map(|(_, s)| s.clone())
    }

    /// What one `/metrics` scrape reads: the cached status (never waits on the node loop), the
    /// transport and engine counters, RSS.
    fn metrics_sample(&self) -> crate::metrics::NodeSample {
        crate::metrics::NodeSample {
            status: self.cached(),
            transport: self.replica.transport_counters(),
            engine: self.replica.engine().stats(),
            rss_bytes: crate::metrics::process_rss_bytes(),
            sync: crate::http::Backend::sync_status(self),
        }
    }

    /// The client address of `id` (the leader, usually), from the latest membership table.
    fn client_addr(&self, id: Option<u64>) -> Option<String> {
        let id = id?;
        self.replica
            .membership()
            .members
            .get(&id)
            .map(|m| m.client_addr.clone())
            .filter(|a| !a.is_empty())
    }

    fn not_leader(&self, hint: Option<u64>) -> BackendError {
        let hint = hint.or_else(|| self.cached().and_then(|s| s.leader));
        if hint == Some(self.replica.id()) {
            // We are (again) the leader: the caller may simply retry here.
            return BackendError::NoQuorum;
        }
        BackendError::NotLeader {
            leader_client_addr: self.client_addr(hint),
        }
    }

    /// A write's failure, by what the client may conclude.
    fn write_error(&self, e: Error) -> BackendError {
        match e {
            Error::NotLeader { leader_hint } => self.not_leader(leader_hint),
            // Definitely not applied; leadership moved under it: the new leader may take it.
            Error::Dropped => self.not_leader(None),
            Error::Overloaded => BackendError::Overloaded,
            Error::Invalid(what) => BackendError::Invalid(what.to_string()),
            Error::TooLarge { size, limit } => BackendError::TooLarge {
                message: format!(
                    "the request encodes to {size} bytes; one Raft entry carries at most {limit}"
                ),
                limit,
            },
            Error::Stopped => BackendError::ShuttingDown,
            // Refused before it was proposed: 507, nothing applied.
            Error::NoSpace => BackendError::NoSpace(format!(
                "storage full: the data dir of node {} is below its free-space reserve; nothing was \
                 applied; writes resume once space is freed",
                self.replica.id()
            )),
            // The proposal may still commit, or was applied with its result lost: never re-run it.
            Error::Timeout | Error::ShuttingDown | Error::OutcomeUnknown => BackendError::Unknown,
            other => {
                tracing::error!(error = %other, "proposal failed in the node");
                BackendError::Unknown
            }
        }
    }

    /// A read barrier's failure: nothing was changed, so no outcome is unknown.
    fn read_error(&self, e: Error) -> BackendError {
        match e {
            Error::NotLeader { leader_hint } => self.not_leader(leader_hint),
            Error::Overloaded => BackendError::Overloaded,
            Error::ShuttingDown | Error::Stopped => BackendError::ShuttingDown,
            _ => BackendError::NoQuorum,
        }
    }

    fn admin_error(&self, e: Error) -> BackendError {
        match e {
            Error::NotLeader { leader_hint } => self.not_leader(leader_hint),
            Error::Invalid(what) => BackendError::Invalid(what.to_string()),
            Error::Raft(what) => BackendError::Invalid(what),
            Error::Membership(refusal) => member_refusal(&refusal),
            // Committed, and recorded as a no-op on every replica: nothing changed.
            Error::Unappliable(why) => BackendError::Invalid(format!(
                "the change committed but could not be applied; nothing changed: {why}"
            )),
            Error::Overloaded => BackendError::Overloaded,
            Error::ShuttingDown | Error::Stopped => BackendError::ShuttingDown,
            _ => BackendError::Unknown,
        }
    }

    fn read_info(&self, stale_by_ms: Option<u64>) -> ReadInfo {
        let applied = self.replica.engine().applied();
        ReadInfo {
            applied_index: applied.index,
            applied_ts: applied.ts,
            stale_by_ms,
        }
    }

    fn view(&self, status: &NodeStatus) -> ClusterView {
        let mut ids: Vec<u64> = status
            .voters
            .iter()
            .chain(status.learners.iter())
            .copied()
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let members = ids
            .into_iter()
            .map(|id| {
                let member = status.membership.members.get(&id);
                let progress = status.progress.iter().find(|p| p.id == id);
                let role = if status.leader == Some(id) {
                    MemberRole::Leader
                } else if status.learners.contains(&id) {
                    MemberRole::Learner
                } else if id == status.id && status.role != NodeRole::Follower {
                    MemberRole::Candidate
                } else {
                    MemberRole::Follower
                };
                let (commit, applied, healthy) = if id == status.id {
                    (status.commit, status.applied, true)
                } else if let Some(p) = progress {
                    // The leader knows how far each peer's log reaches, not what it applied.
                    (
                        p.matched.min(status.commit),
                        p.matched.min(status.commit),
                        p.recent_active,
                    )
                } else {
                    (0, 0, status.leader == Some(id))
                };
                MemberView {
                    id,
                    peer_addr: member.map(|m| m.peer_addr.clone()).unwrap_or_default(),
                    client_addr: member
                        .map(|m| m.client_addr.clone())
                        .filter(|a| !a.is_empty()),
                    role,
                    commit,
                    applied,
                    healthy,
                }
            })
            .collect();
        ClusterView {
            cluster_id: self.replica.cluster_id().to_string(),
            leader: status.leader,
            term: status.term,
            members,
        }
    }

    /// Readiness, continued: a node that is not (or no longer) a member, or that has not heard from its
    /// leader for an election timeout, does not know a leader any more — whatever raft-rs remembers (a
    /// learner or a removed node never campaigns, so it never forgets its last leader).
    fn leader_contact(&self, s: &NodeStatus, r: &mut Readiness) {
        if !s.voters.contains(&s.id) && !s.learners.contains(&s.id) {
            r.leader_known = false;
            r.detail.push(format!(
                "node {} is not a member of the cluster (removed, or not yet added)",
                s.id
            ));
        } else if s.role != NodeRole::Leader
            && s.leader.is_some()
            && s.ticks_since_leader > self.replica.election_ticks()
        {
            r.leader_known = false;
            r.detail.push(format!(
                "no message from leader {} for {} ms",
                s.leader.unwrap_or(0),
                self.replica.ticks(s.ticks_since_leader).as_millis()
            ));
        }
    }

    async fn fresh_view(&self, deadline: Instant) -> Result<ClusterView, BackendError> {
        let status = self.status(deadline).await?;
        Ok(self.view(&status))
    }

    async fn status(&self, deadline: Instant) -> Result<NodeStatus, BackendError> {
        self.replica
            .status(deadline)
            .await
            .map_err(|e| self.read_error(e))
    }
}

/// Every refresh of the cached status and every 50th probe of the data dir.
const REFRESH_EVERY: Duration = Duration::from_millis(100);
const PROBE_EVERY_REFRESHES: u64 = 50;

/// A refused membership change, with its code.
fn member_refusal(refusal: &Refusal) -> BackendError {
    let kind = match refusal {
        Refusal::InvalidMember(_) => MemberRefusal::InvalidMember,
        Refusal::NotMember(_) => MemberRefusal::NotFound,
        Refusal::AlreadyMember(_) => MemberRefusal::Exists,
        Refusal::IdRemoved(_) => MemberRefusal::IdRemoved,
        Refusal::LastVoter(_) => MemberRefusal::LastVoter,
        Refusal::QuorumAtRisk { .. } => MemberRefusal::QuorumAtRisk,
        Refusal::LearnerFirst(_) => MemberRefusal::LearnerFirst,
        Refusal::NotCaughtUp { .. } => MemberRefusal::NotCaughtUp,
        Refusal::ChangeInProgress => MemberRefusal::ChangeInProgress,
    };
    BackendError::Member {
        refusal: kind,
        message: refusal.to_string(),
    }
}

/// Keep the cached status fresh and probe the data dir; stops when the replica shuts down.
async fn refresh(replica: Arc<Replica>, shared: Arc<Shared>) {
    let shutdown = replica.shutdown_token();
    let mut ticks = 0u64;
    loop {
        if let Ok(status) = replica.status(Instant::now() + REFRESH_EVERY).await {
            *shared
                .status
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) =
                Some((Instant::now(), status));
        }
        if ticks.is_multiple_of(PROBE_EVERY_REFRESHES) {
            let probe = replica.data_dir().write_probe();
            let ok = tokio::task::spawn_blocking(move || {
                std::fs::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe))
            })
            .await
            .map(|r| r.is_ok())
            .unwrap_or(false);
            shared.disk_writable.store(ok, Ordering::Relaxed);
        }
        ticks += 1;
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(REFRESH_EVERY) => {}
        }
    }
}

impl Backend for ReplicaBackend {
    fn engine(&self) -> &engine::Engine {
        self.replica.engine()
    }

    async fn propose(
        &self,
        ops: Vec<engine::Op>,
        deadline: Instant,
    ) -> Result<Applied, BackendError> {
        // A follower that knows the leader sends the write there at once: only the leader may propose, and
        // asking this node's loop first would cost a queue hop and a thread wake-up for the same
        // `NotLeader`. The view is at most one loop turn old; a stale one costs a forward to a node that
        // answers `not_leader`, after which the request waits for the next leader (`forward`).
        if let Some(leader) = self
            .replica
            .leader_view()
            .leader
            .filter(|&id| id != self.replica.id())
        {
            return Err(self.not_leader(Some(leader)));
        }
        match self.replica.propose(&ops, deadline).await {
            Ok(committed) => Ok(Applied {
                ts: committed.ts,
                outcomes: committed.output,
                stages: committed.trace.stages().to_vec(),
            }),
            Err(e) => Err(self.write_error(e)),
        }
    }

    async fn read_barrier(
        &self,
        c: Consistency,
        deadline: Instant,
    ) -> Result<ReadInfo, BackendError> {
        match c {
            Consistency::Linearizable => {
                self.replica
                    .read_index(deadline)
                    .await
                    .map_err(|e| self.read_error(e))?;
                Ok(self.read_info(None))
            }
            Consistency::Lease => {
                self.replica
                    .lease_read(deadline)
                    .await
                    .map_err(|e| self.read_error(e))?;
                Ok(self.read_info(None))
            }
            Consistency::Stale => {
                // Behind by at most the time since the leader last reached us (as of the cached status)
                // plus the cache's age, if we had applied everything committed then; unknown (None)
                // while we are still applying. It keeps growing on a node no leader reaches any more
                // (cut off, removed, or campaigning), whatever leader raft-rs still remembers.
                let stale = self
                    .shared
                    .status
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .as_ref()
                    .filter(|(_, s)| s.applied >= s.commit)
                    .map(|(at, s)| {
                        let behind = at.elapsed() + self.replica.ticks(s.ticks_since_leader);
                        u64::try_from(behind.as_millis()).unwrap_or(u64::MAX)
                    });
                Ok(self.read_info(stale))
            }
        }
    }

    async fn wait_applied_ts(&self, ts: u64, deadline: Instant) -> Result<(), BackendError> {
        if self.replica.engine().applied().ts >= ts {
            return Ok(());
        }
        if ts > engine::clock::wall_micros().saturating_add(1_000_000) {
            return Err(BackendError::Invalid("`at` lies in the future".to_string()));
        }
        // Everything committed so far is applied here after the barrier.
        self.replica
            .read_index(deadline)
            .await
            .map_err(|e| self.read_error(e))?;
        if self.replica.engine().applied().ts >= ts {
            return Ok(());
        }
        // A quiet group: an empty entry gets a commit ts above `at` (the HLC is at least the leader's
        // clock), and once it is applied every entry with ts ≤ `at` is too (ts rise in log order).
        match self.replica.propose(&[], deadline).await {
            Ok(_) => {}
            Err(e) => return Err(self.read_error(e)),
        }
        while self.replica.engine().applied().ts < ts {
            if Instant::now() > deadline {
                return Err(BackendError::NoQuorum);
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    async fn next_leader(&self, tried: Option<&str>, deadline: Instant) -> Option<String> {
        // Twice the longest election timeout raft-rs draws (`2 × election_ticks`): one election, with
        // room for a split vote. Past it the group is not electing (cut off, no quorum).
        let bound = Instant::now() + self.replica.ticks(4 * self.replica.election_ticks());
        let mut watch = self.replica.leader_watch();
        let (began, seen_leader) = {
            let view = watch.borrow_and_update();
            (view.term, view.seen_leader)
        };
        // A node that has just started and not yet heard from a leader does not hold requests: it may
        // take a while to reach its peers and catch up, and a client with other endpoints does better
        // trying one of them now (503 `not_leader`, nothing changed).
        if !seen_leader {
            return None;
        }
        let tried = match tried {
            Some(addr) => Some(addr.to_owned()),
            None => self.client_addr(Some(self.replica.id())),
        };
        let wanted = |view: &raft_node::LeaderView| {
            view.leader
                .is_some_and(|id| view.term > began || self.client_addr(Some(id)) != tried)
        };
        let found =
            tokio::time::timeout_at(deadline.min(bound).into(), watch.wait_for(wanted)).await;
        // The loop's end drops the sender (`Err`): nothing to wait for.
        let leader = match found {
            Ok(Ok(view)) => view.leader,
            Ok(Err(_)) | Err(_) => None,
        };
        self.client_addr(leader)
    }

    async fn cluster(&self, deadline: Instant) -> Result<ClusterView, BackendError> {
        self.fresh_view(deadline).await
    }

    async fn add_member(
        &self,
        req: AddMember,
        deadline: Instant,
    ) -> Result<ClusterView, BackendError> {
        let status = self.status(deadline).await?;
        let id = match req.id {
            Some(id) => id,
            None => {
                let highest = status
                    .voters
                    .iter()
                    .chain(status.learners.iter())
                    .chain(status.membership.removed.iter())
                    .chain(status.membership.members.keys())
                    .copied()
                    .max()
                    .unwrap_or(0);
                highest
                    .checked_add(1)
                    .filter(|&id| id <= MAX_NODE_ID)
                    .ok_or_else(|| BackendError::Member {
                        refusal: MemberRefusal::InvalidMember,
                        message: format!("no node id is free above {highest}; give one"),
                    })?
            }
        };
        let member = Member {
            id,
            peer_addr: req.peer_addr,
            client_addr: req.client_addr.unwrap_or_default(),
        };
        // Adding a current learner as a voter promotes it; its recorded addresses stay as they are. A new
        // node named as a voter is refused by the leader (`learner_first`): it joins as a learner.
        let change = if !req.learner && status.learners.contains(&id) {
            MembershipChange::Promote(id)
        } else if req.learner {
            MembershipChange::AddLearner(member)
        } else {
            MembershipChange::AddVoter(member)
        };
        let promotion = matches!(change, MembershipChange::Promote(_));
        loop {
            match self
                .replica
                .change_membership(change.clone(), deadline)
                .await
            {
                Ok(_) => break,
                // A promotion waits for its learner to catch up, within the request's deadline; the
                // leader checks again each time (nothing is proposed until it is caught up).
                Err(Error::Membership(Refusal::NotCaughtUp { .. }))
                    if promotion && Instant::now() + PROMOTE_RETRY < deadline =>
                {
                    tokio::time::sleep(PROMOTE_RETRY).await;
                }
                Err(e) => return Err(self.admin_error(e)),
            }
        }
        self.fresh_view(deadline).await
    }

    async fn remove_member(&self, id: u64, deadline: Instant) -> Result<ClusterView, BackendError> {
        self.replica
            .change_membership(MembershipChange::Remove(id), deadline)
            .await
            .map_err(|e| self.admin_error(e))?;
        self.fresh_view(deadline).await
    }

    async fn transfer_leader(
        &self,
        to: Option<u64>,
        deadline: Instant,
    ) -> Result<(), BackendError> {
        let status = self.status(deadline).await?;
        if status.role != NodeRole::Leader {
            return Err(self.not_leader(status.leader));
        }
        let target = match to {
            Some(id) => id,
            None => status
                .progress
                .iter()
                .filter(|p| p.id != status.id && status.voters.contains(&p.id) && p.recent_active)
                .max_by_key(|p| p.matched)
                .map(|p| p.id)
                .ok_or_else(|| BackendError::Invalid("no other voter to transfer to".into()))?,
        };
        if !status.voters.contains(&target) {
            return Err(BackendError::Invalid(format!(
                "node {target} is not a voter"
            )));
        }
        if target == status.id {
            return Ok(());
        }
        self.replica
            .transfer_leader(target, deadline)
            .await
            .map_err(|e| self.admin_error(e))?;
        // Done when the target leads; raft-rs aborts a transfer after an election timeout.
        loop {
            let s = self.status(deadline).await?;
            if s.leader == Some(target) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BackendError::NoQuorum);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn readiness(&self) -> Readiness {
        let mut r = Readiness {
            disk_writable: self.shared.disk_writable.load(Ordering::Relaxed),
            ..Readiness::default()
        };
        match self.cached_with_age() {
            Some((age, _)) if age > STATUS_STALE_AFTER => r.detail.push(format!(
                "node status is {} ms old: the node loop is not answering",
                age.as_millis()
            )),
            Some((_, s)) => {
                r.leader_known = s.leader.is_some();
                r.applied_caught_up = s.applied.saturating_add(CAUGHT_UP_ENTRIES) >= s.commit;
                if !r.leader_known {
                    r.detail.push("no leader known".into());
                }
                if !r.applied_caught_up {
                    r.detail
                        .push(format!("applied {} of commit {}", s.applied, s.commit));
                }
                self.leader_contact(&s, &mut r);
            }
            None => r.detail.push("node status not available yet".into()),
        }
        if !r.disk_writable {
            r.detail.push("data dir is not writable".into());
        }
        if let Some(fed) = &self.federation {
            let stats = self.replica.engine().stats();
            if stats.feed_bytes > fed.backlog_quota() {
                r.degraded.push(format!(
                    "sync backlog {} bytes is over its quota of {} bytes (central store unreachable \
                     or slow); the site keeps serving",
                    stats.feed_bytes,
                    fed.backlog_quota()
                ));
            }
        }
        r
    }

    fn image_origin(&self) -> ImageOrigin {
        let membership = self.replica.membership();
        let (voters, learners) = self
            .cached()
            .map(|s| (s.voters, s.learners))
            .unwrap_or_default();
        ImageOrigin {
            cluster_id: self.replica.cluster_id().to_owned(),
            node_id: self.replica.id(),
            voters,
            learners,
            members: membership
                .members
                .values()
                .map(|m| (m.id, m.peer_addr.clone(), m.client_addr.clone()))
                .collect(),
            membership_index: membership.conf_index,
        }
    }

    fn sync_status(&self) -> Option<crate::http::SyncView> {
        let fed = self.federation.as_ref()?;
        let s = fed.status();
        let c = &fed.shared().counters;
        let g = &fed.crossings().counters;
        let stats = self.replica.engine().stats();
        Some(crate::http::SyncView {
            site: fed.site().to_owned(),
            state: s.state.name(),
            cursor: stats.sync_cursor,
            central_cursor: s.central_cursor,
            lag_entries: stats.feed_entries,
            backlog_bytes: stats.feed_bytes,
            backlog_quota_bytes: fed.backlog_quota(),
            lag_seconds: s.lag_seconds,
            last_error: s.last_error,
            backoff_ms: s.backoff_ms,
            breaker_open: s.breaker_open,
            restarts: fed.restarts(),
            batches: c.batches.load(Ordering::Relaxed),
            entries_synced: c.entries.load(Ordering::Relaxed),
            errors: c.errors.load(Ordering::Relaxed),
            undetermined: c.undetermined.load(Ordering::Relaxed),
            fenced: c.fenced.load(Ordering::Relaxed),
            reclaimed_keys: c.reclaimed_keys.load(Ordering::Relaxed),
            global_lookups: g.lookups.load(Ordering::Relaxed),
            global_bloom_negatives: g.bloom_negatives.load(Ordering::Relaxed),
            global_remote_reads: g.remote_reads.load(Ordering::Relaxed),
        })
    }

    fn crossed_global(
        &self,
        entity: Vec<u8>,
        name: Vec<u8>,
        deadline: Instant,
    ) -> impl std::future::Future<Output = crate::http::GlobalLookup> + Send {
        let crossings = self.federation.as_ref().map(|f| f.crossings().clone());
        async move {
            use crate::http::{GlobalCrossing, GlobalLookup};
            let Some(crossings) = crossings else {
                return GlobalLookup::NotConfigured;
            };
            match crossings.lookup(&entity, &name, deadline.into()).await {
                Ok(found) => GlobalLookup::Found(found.map(|c| GlobalCrossing {
                    site: c.site,
                    epoch: c.epoch,
                    ts: c.ts,
                    data: c.data,
                })),
                Err(e) => GlobalLookup::Failed(e.to_string()),
            }
        }
    }

    fn sync_pause(&self, paused: bool) -> bool {
        match &self.federation {
            Some(fed) if paused => fed.pause(),
            Some(fed) => fed.resume(),
            None => return false,
        }
        true
    }

    fn liveness(&self) -> Result<(), String> {
        match self.replica.loop_exit() {
            None => Ok(()),
            Some(LoopExit::Failed(why)) => Err(format!("the node loop died: {why}")),
            Some(LoopExit::Shutdown) => Err("the node loop stopped".to_owned()),
        }
    }

    fn register_metrics(&self, registry: &prometheus::Registry) {
        let backend = self.clone();
        let registered = crate::metrics::NodeCollector::new(move || backend.metrics_sample())
            .and_then(|collector| registry.register(Box::new(collector)));
        if let Err(e) = registered {
            tracing::error!(error = %e, "the node's metrics could not be registered");
        }
    }
}
