//! The seam between the HTTP layer and the node: everything a handler needs from Raft and the local
//! replica. The production implementation drives the real Raft node; the route tests use an in-process
//! fake over a real [`engine::Engine`]. Nothing here is serialized: the JSON shapes live in `dto.rs`.

use std::future::Future;
use std::time::Instant;

/// Read consistency, per request (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Raft ReadIndex: the read reflects every write acknowledged before it started.
    Linearizable,
    /// Leader lease: no round trip while the leader's lease holds (relies on clock drift below the
    /// configured margin), a ReadIndex round otherwise; leader only.
    Lease,
    /// Whatever this replica has applied; the answer says how stale it may be.
    Stale,
}

/// A committed proposal: one result per proposed op, and the entry's commit ts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub ts: u64,
    pub outcomes: Vec<engine::OpResult>,
    /// The backend's own stages of this write with their durations, in order (the write-stage metric).
    pub stages: Vec<(&'static str, std::time::Duration)>,
}

/// What a read barrier established about the local replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadInfo {
    pub applied_index: u64,
    pub applied_ts: u64,
    /// For [`Consistency::Stale`]: how far behind the leader this replica may be (None when unknown).
    pub stale_by_ms: Option<u64>,
}

/// Why a backend call did not succeed. Variants say what the HTTP layer does with them.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// This node cannot serve the request. With an address the request is forwarded there (once);
    /// without one the client gets 503 `not_leader`. Definitely not applied.
    #[error("not the leader")]
    NotLeader { leader_client_addr: Option<String> },
    /// No quorum / no known leader for a read barrier or proposal: 503 `no_quorum`. Not applied.
    #[error("no quorum")]
    NoQuorum,
    /// The proposal queue is full: 429 `overloaded` with `Retry-After`. Not applied.
    #[error("overloaded")]
    Overloaded,
    /// The deadline passed (or the node stopped) after the proposal left: the outcome is unknown, 504.
    #[error("outcome unknown")]
    Unknown,
    /// Refused because the node is shutting down, before anything was proposed: 503. (A proposal that
    /// shutdown cut short is [`BackendError::Unknown`].)
    #[error("shutting down")]
    ShuttingDown,
    /// The request is larger than one Raft entry may carry (`limit` bytes): 413. Not applied.
    #[error("{message}")]
    TooLarge { message: String, limit: usize },
    /// Refused before anything was proposed: the leader's disk is below its free-space reserve. 507
    /// `insufficient_storage`, not applied. (Logged once by the node when its disk crosses the line, not
    /// per request.)
    #[error("{0}")]
    NoSpace(String),
    /// The request is invalid for the cluster's current state (unknown member id, ...): 400.
    #[error("{0}")]
    Invalid(String),
    /// A membership change refused before anything was proposed (a bad request or a guard rail): 400,
    /// 404 or 409 by its kind, never applied.
    #[error("{message}")]
    Member {
        refusal: MemberRefusal,
        message: String,
    },
    /// The local engine failed: `VersionGone` → 410, others → 5xx.
    #[error(transparent)]
    Engine(#[from] engine::Error),
}

/// Why a membership change was refused; each has its own error code (see `error.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRefusal {
    /// A bad id or address (`invalid_member`, 400).
    InvalidMember,
    /// Remove or promote a node that is not a member (`member_not_found`, 404).
    NotFound,
    /// The id is already a member (`member_exists`, 409).
    Exists,
    /// The id was removed; ids are never reused (`member_removed`, 409).
    IdRemoved,
    /// Remove the last voter (`last_voter`, 409).
    LastVoter,
    /// Fewer healthy voters than the new configuration's quorum (`quorum_at_risk`, 409).
    QuorumAtRisk,
    /// A new node is added as a voter directly; it joins as a learner first (`learner_first`, 409).
    LearnerFirst,
    /// The learner to promote has not caught up (`learner_not_caught_up`, 409).
    NotCaughtUp,
    /// Another membership change is in flight (`change_in_progress`, 409).
    ChangeInProgress,
}

/// A member's role as the cluster view reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    Leader,
    Follower,
    Learner,
    Candidate,
}

/// One member of the group, as seen by the answering node (SPEC §3 `GET /v1/cluster`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: Option<String>,
    pub role: MemberRole,
    pub commit: u64,
    pub applied: u64,
    pub healthy: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterView {
    pub cluster_id: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub members: Vec<MemberView>,
}

/// `POST /v1/cluster/members`: add a voter (or a learner) at `peer_addr`; `id` None = the leader picks one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddMember {
    pub id: Option<u64>,
    pub peer_addr: String,
    pub client_addr: Option<String>,
    pub learner: bool,
}

/// Who serves a backup image (`GET /v1/snapshot`), for the file's header: the cluster, this node, and
/// the group's configuration as this node knows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageOrigin {
    pub cluster_id: String,
    pub node_id: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    /// (id, peer address, client address) of every member the membership table knows.
    pub members: Vec<(u64, String, String)>,
    /// The log index the membership table reflects.
    pub membership_index: u64,
}

/// What `/readyz` reports: ready when all three hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Readiness {
    pub leader_known: bool,
    pub applied_caught_up: bool,
    pub disk_writable: bool,
    /// Human-readable reasons (why not ready, alarms).
    pub detail: Vec<String>,
    /// Alarms that leave the node ready but degraded (the sync backlog over its quota): the site
    /// keeps serving.
    pub degraded: Vec<String>,
}

/// A crossing found in the central store (`crossed?scope=global`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalCrossing {
    pub site: String,
    pub epoch: u64,
    pub ts: u64,
    pub data: Vec<u8>,
}

/// The answer of a central crossing lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalLookup {
    /// Federation is off on this node.
    NotConfigured,
    /// The central store did not answer (or answered garbage) by the deadline.
    Failed(String),
    Found(Option<GlobalCrossing>),
}

/// What `GET /v1/sync` reports of the upward federation (SPEC §6).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SyncView {
    pub site: String,
    /// `follower`, `idle`, `syncing`, `backing_off`, `paused`.
    pub state: &'static str,
    /// The cursor replicated through Raft: every change up to this log index is central.
    pub cursor: u64,
    /// The central cursor as this node's worker last saw it (the leader's is the freshest).
    pub central_cursor: Option<u64>,
    /// Unsynced change-feed entries and their bytes.
    pub lag_entries: u64,
    pub backlog_bytes: u64,
    pub backlog_quota_bytes: u64,
    /// Age of the oldest unsynced change.
    pub lag_seconds: f64,
    pub last_error: Option<String>,
    pub backoff_ms: u64,
    pub breaker_open: bool,
    pub restarts: u64,
    /// Batches committed centrally, entries they carried, failed attempts, and of those the
    /// undetermined commits and the cursor-check refusals.
    pub batches: u64,
    pub entries_synced: u64,
    pub errors: u64,
    pub undetermined: u64,
    pub fenced: u64,
    /// Central keys of old epochs reclaimed.
    pub reclaimed_keys: u64,
    /// Central crossing lookups, those the bloom filter answered negatively, and TiKV reads.
    pub global_lookups: u64,
    pub global_bloom_negatives: u64,
    pub global_remote_reads: u64,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.leader_known && self.applied_caught_up && self.disk_writable
    }
}

/// What the HTTP layer needs from the node. Cheap to clone (an `Arc` inside). Every call that waits on
/// the cluster takes the request's one `deadline` (made when the request arrived) and gives up by then.
/// Every future may be dropped by the caller at that deadline, except `propose`'s, which the HTTP layer
/// runs in a spawned task so a dropped connection cannot cancel a proposal halfway.
pub trait Backend: Clone + Send + Sync + 'static {
    /// The local replica, read after a barrier (or directly for stale and past-`at` reads).
    fn engine(&self) -> &engine::Engine;

    /// Propose ops as one Raft entry (on the leader) and wait until it is applied locally.
    /// `Ok` holds exactly one result per op, in order.
    fn propose(
        &self,
        ops: Vec<engine::Op>,
        deadline: Instant,
    ) -> impl Future<Output = Result<Applied, BackendError>> + Send;

    /// Linearizable/Lease: `Ok` once the local engine has applied up to the read index (`NotLeader` if this
    /// node cannot serve it). Stale: immediate, with `stale_by_ms`.
    fn read_barrier(
        &self,
        c: Consistency,
        deadline: Instant,
    ) -> impl Future<Output = Result<ReadInfo, BackendError>> + Send;

    /// Snapshot read with an explicit `at` in the past: `Ok` once the local state at `at` is final (local
    /// applied ts ≥ `at`, or the implementation proved no entry with ts ≤ `at` is missing here). Bounded:
    /// `Unknown` when it gives up; `NotLeader` to have the request forwarded instead.
    fn wait_applied_ts(
        &self,
        ts: u64,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    /// Members, roles, leader, term, commit/applied index, health.
    fn cluster(
        &self,
        deadline: Instant,
    ) -> impl Future<Output = Result<ClusterView, BackendError>> + Send;

    fn add_member(
        &self,
        req: AddMember,
        deadline: Instant,
    ) -> impl Future<Output = Result<ClusterView, BackendError>> + Send;

    fn remove_member(
        &self,
        id: u64,
        deadline: Instant,
    ) -> impl Future<Output = Result<ClusterView, BackendError>> + Send;

    /// Leadership in flux: the client address of the leader this node knows once it knows one other than
    /// `tried` (the address a forward just failed at; `None`: this node itself failed the request), or
    /// one elected in a later term than the one known when the wait began (this node included). `None` when no such leader
    /// is known by `deadline` or by the end of the backend's own bound on such a wait (about two
    /// election timeouts: a node cut off from the majority should not hold its clients longer), when
    /// the node stopped, or at once on a node that has not known a leader since it started.
    fn next_leader(
        &self,
        tried: Option<&str>,
        deadline: Instant,
    ) -> impl Future<Output = Option<String>> + Send;

    /// Transfer leadership to `to` (None = the most caught-up voter).
    fn transfer_leader(
        &self,
        to: Option<u64>,
        deadline: Instant,
    ) -> impl Future<Output = Result<(), BackendError>> + Send;

    fn readiness(&self) -> Readiness;

    /// Who this node is and the configuration it knows, for a backup's header. Never waits on the node
    /// loop.
    fn image_origin(&self) -> ImageOrigin;

    /// Liveness (`/healthz`): `Err(why)` once this node can no longer serve — its Raft loop died — so a
    /// supervisor restarts it (the process is stopping by then too).
    fn liveness(&self) -> Result<(), String>;

    /// Register the node's own metrics (raft, transport, engine, process) in the HTTP layer's registry,
    /// which `/metrics` serves. Called once per registry; the values are read at scrape time. A
    /// registration failure (a name clash) is logged by the implementation, not fatal.
    fn register_metrics(&self, registry: &prometheus::Registry);

    /// The federation's state; `None` when it is not configured on this node.
    fn sync_status(&self) -> Option<SyncView> {
        None
    }

    /// Has `entity` crossed `name` at any site (the central index)? Bounded by `deadline`.
    fn crossed_global(
        &self,
        _entity: Vec<u8>,
        _name: Vec<u8>,
        _deadline: Instant,
    ) -> impl Future<Output = GlobalLookup> + Send {
        async { GlobalLookup::NotConfigured }
    }

    /// Pause (`true`) or resume this node's sync worker; `false` when federation is not configured.
    fn sync_pause(&self, _paused: bool) -> bool {
        false
    }
}
