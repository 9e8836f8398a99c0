//! `FakeBackend`: a real engine on a temp dir, proposals applied directly (index counter, ts from a manual
//! clock), and switches that make it answer like a follower, an overloaded or partitioned node, or one
//! shutting down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use engine::{Clock, Engine, EngineConfig, ManualClock, Op};

use crate::http::backend::{
    AddMember, Applied, Backend, BackendError, ClusterView, Consistency, ImageOrigin,
    MemberRefusal, MemberRole, MemberView, ReadInfo, Readiness,
};

/// How the fake answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    Leader,
    NotLeader(Option<String>),
    Overloaded,
    Unknown,
    NoQuorum,
    ShuttingDown,
}

struct Inner {
    engine: Engine,
    clock: Arc<ManualClock>,
    /// (applied index, last ts); the lock serializes proposals like the Raft log does.
    log: Mutex<(u64, u64)>,
    mode: Mutex<Mode>,
    delay: Mutex<Duration>,
    cluster: Mutex<ClusterView>,
    transfers: Mutex<Vec<Option<u64>>>,
    /// The leaders this node will learn, in order, each after its delay (`next_leader`).
    next_leaders: Mutex<std::collections::VecDeque<(Duration, String)>>,
    /// The `tried` argument of every `next_leader` call.
    leader_waits: Mutex<Vec<Option<String>>>,
    readiness: Mutex<Readiness>,
    /// Why the fake node's loop died, once it did (`/healthz`).
    dead: Mutex<Option<String>>,
    /// What a stale read barrier says about staleness (`None`: this replica cannot bound it).
    stale_by_ms: Mutex<Option<u64>>,
    proposals: AtomicU64,
    barriers: AtomicU64,
    waits: AtomicU64,
    _dir: tempfile::TempDir,
}

#[derive(Clone)]
pub struct FakeBackend(Arc<Inner>);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FakeBackend {
    pub fn new() -> FakeBackend {
        let dir = tempfile::tempdir().expect("tempdir");
        let start = engine::SystemClock.now_micros();
        let clock = Arc::new(ManualClock::new(start));
        let engine =
            Engine::open(dir.path(), EngineConfig::tiny(clock.clone())).expect("open engine");
        FakeBackend(Arc::new(Inner {
            engine,
            clock,
            log: Mutex::new((0, 0)),
            mode: Mutex::new(Mode::Leader),
            delay: Mutex::new(Duration::ZERO),
            cluster: Mutex::new(ClusterView {
                cluster_id: "site-a".into(),
                leader: Some(1),
                term: 3,
                members: (1..=3)
                    .map(|id| MemberView {
                        id,
                        peer_addr: format!("127.0.0.1:{}", 7378 + 2 * id),
                        client_addr: Some(format!("127.0.0.1:{}", 7377 + 2 * id)),
                        role: if id == 1 {
                            MemberRole::Leader
                        } else {
                            MemberRole::Follower
                        },
                        commit: 10,
                        applied: 10,
                        healthy: true,
                    })
                    .collect(),
            }),
            transfers: Mutex::new(Vec::new()),
            next_leaders: Mutex::new(std::collections::VecDeque::new()),
            leader_waits: Mutex::new(Vec::new()),
            readiness: Mutex::new(Readiness {
                leader_known: true,
                applied_caught_up: true,
                disk_writable: true,
                detail: Vec::new(),
                degraded: Vec::new(),
            }),
            dead: Mutex::new(None),
            stale_by_ms: Mutex::new(Some(7)),
            proposals: AtomicU64::new(0),
            barriers: AtomicU64::new(0),
            waits: AtomicU64::new(0),
            _dir: dir,
        }))
    }

    pub fn set_mode(&self, mode: Mode) {
        *lock(&self.0.mode) = mode;
    }

    /// Every propose and read barrier sleeps this long first.
    pub fn set_delay(&self, d: Duration) {
        *lock(&self.0.delay) = d;
    }

    pub fn set_stale_by_ms(&self, ms: Option<u64>) {
        *lock(&self.0.stale_by_ms) = ms;
    }

    pub fn set_readiness(&self, r: Readiness) {
        *lock(&self.0.readiness) = r;
    }

    /// The node loop died for `why`: `/healthz` answers 503 from now on.
    pub fn kill_loop(&self, why: &str) {
        *lock(&self.0.dead) = Some(why.to_owned());
    }

    /// Move the engine's clock (the retention window) forward.
    pub fn advance_clock(&self, by: Duration) {
        let now = self.0.clock.now_micros();
        self.0
            .clock
            .set(now + u64::try_from(by.as_micros()).unwrap_or(u64::MAX));
    }

    pub fn now(&self) -> u64 {
        self.0.clock.now_micros()
    }

    pub fn proposals(&self) -> u64 {
        self.0.proposals.load(Ordering::SeqCst)
    }

    pub fn barriers(&self) -> u64 {
        self.0.barriers.load(Ordering::SeqCst)
    }

    pub fn waits(&self) -> u64 {
        self.0.waits.load(Ordering::SeqCst)
    }

    /// The node learns `leader` (a client address) `after` the next wait for a leader begins.
    pub fn learn_leader(&self, after: Duration, leader: &str) {
        lock(&self.0.next_leaders).push_back((after, leader.to_owned()));
    }

    /// What every wait for the next leader was told had failed, in order.
    pub fn leader_waits(&self) -> Vec<Option<String>> {
        lock(&self.0.leader_waits).clone()
    }

    pub fn transfers(&self) -> Vec<Option<u64>> {
        lock(&self.0.transfers).clone()
    }

    /// The latest value of `key`, straight from the engine.
    pub fn value(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.0
            .engine
            .get(key, u64::MAX)
            .expect("engine get")
            .map(|v| v.value)
    }

    fn mode(&self) -> Mode {
        lock(&self.0.mode).clone()
    }

    async fn pause(&self) {
        let d = *lock(&self.0.delay);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }

    fn refuse(&self) -> Result<(), BackendError> {
        match self.mode() {
            Mode::Leader => Ok(()),
            Mode::NotLeader(addr) => Err(BackendError::NotLeader {
                leader_client_addr: addr,
            }),
            Mode::Overloaded => Err(BackendError::Overloaded),
            Mode::Unknown => Err(BackendError::Unknown),
            Mode::NoQuorum => Err(BackendError::NoQuorum),
            Mode::ShuttingDown => Err(BackendError::ShuttingDown),
        }
    }
}

impl Backend for FakeBackend {
    fn engine(&self) -> &Engine {
        &self.0.engine
    }

    async fn propose(&self, ops: Vec<Op>, _deadline: Instant) -> Result<Applied, BackendError> {
        self.0.proposals.fetch_add(1, Ordering::SeqCst);
        self.refuse()?;
        self.pause().await;
        let mut log = lock(&self.0.log);
        let index = log.0 + 1;
        let ts = self.0.clock.now_micros().max(log.1 + 1);
        let out = self.0.engine.apply(index, ts, &ops, false)?;
        *log = (index, ts);
        Ok(Applied {
            ts,
            outcomes: out.results,
            stages: Vec::new(),
        })
    }

    async fn read_barrier(
        &self,
        c: Consistency,
        _deadline: Instant,
    ) -> Result<ReadInfo, BackendError> {
        let applied = self.0.engine.applied();
        if c == Consistency::Stale {
            return Ok(ReadInfo {
                applied_index: applied.index,
                applied_ts: applied.ts,
                stale_by_ms: *lock(&self.0.stale_by_ms),
            });
        }
        self.0.barriers.fetch_add(1, Ordering::SeqCst);
        if self.mode() != Mode::Overloaded {
            self.refuse()?;
        }
        self.pause().await;
        Ok(ReadInfo {
            applied_index: applied.index,
            applied_ts: applied.ts,
            stale_by_ms: None,
        })
    }

    async fn wait_applied_ts(&self, ts: u64, _deadline: Instant) -> Result<(), BackendError> {
        self.0.waits.fetch_add(1, Ordering::SeqCst);
        if self.0.engine.applied().ts >= ts {
            return Ok(());
        }
        match self.mode() {
            Mode::NotLeader(addr) => Err(BackendError::NotLeader {
                leader_client_addr: addr,
            }),
            _ => Ok(()),
        }
    }

    async fn cluster(&self, _deadline: Instant) -> Result<ClusterView, BackendError> {
        if self.mode() == Mode::NoQuorum {
            return Err(BackendError::NoQuorum);
        }
        Ok(lock(&self.0.cluster).clone())
    }

    async fn add_member(
        &self,
        req: AddMember,
        _deadline: Instant,
    ) -> Result<ClusterView, BackendError> {
        self.refuse()?;
        let mut c = lock(&self.0.cluster);
        let id = req
            .id
            .unwrap_or_else(|| c.members.iter().map(|m| m.id).max().unwrap_or(0) + 1);
        if c.members.iter().any(|m| m.id == id) {
            return Err(BackendError::Member {
                refusal: MemberRefusal::Exists,
                message: format!("node {id} is already a member"),
            });
        }
        c.members.push(MemberView {
            id,
            peer_addr: req.peer_addr,
            client_addr: req.client_addr,
            role: if req.learner {
                MemberRole::Learner
            } else {
                MemberRole::Follower
            },
            commit: 0,
            applied: 0,
            healthy: false,
        });
        Ok(c.clone())
    }

    async fn remove_member(
        &self,
        id: u64,
        _deadline: Instant,
    ) -> Result<ClusterView, BackendError> {
        self.refuse()?;
        let mut c = lock(&self.0.cluster);
        let before = c.members.len();
        c.members.retain(|m| m.id != id);
        if c.members.len() == before {
            return Err(BackendError::Member {
                refusal: MemberRefusal::NotFound,
                message: format!("node {id} is not a member"),
            });
        }
        Ok(c.clone())
    }

    async fn next_leader(&self, tried: Option<&str>, deadline: Instant) -> Option<String> {
        lock(&self.0.leader_waits).push(tried.map(str::to_owned));
        let (after, leader) = lock(&self.0.next_leaders).pop_front()?;
        if Instant::now() + after > deadline {
            return None;
        }
        tokio::time::sleep(after).await;
        Some(leader)
    }

    async fn transfer_leader(
        &self,
        to: Option<u64>,
        _deadline: Instant,
    ) -> Result<(), BackendError> {
        self.refuse()?;
        lock(&self.0.transfers).push(to);
        Ok(())
    }

    fn readiness(&self) -> Readiness {
        lock(&self.0.readiness).clone()
    }

    fn liveness(&self) -> Result<(), String> {
        lock(&self.0.dead).clone().map_or(Ok(()), Err)
    }

    fn image_origin(&self) -> ImageOrigin {
        let c = lock(&self.0.cluster);
        ImageOrigin {
            cluster_id: c.cluster_id.clone(),
            node_id: 1,
            voters: c.members.iter().map(|m| m.id).collect(),
            learners: Vec::new(),
            members: c
                .members
                .iter()
                .map(|m| {
                    (
                        m.id,
                        m.peer_addr.clone(),
                        m.client_addr.clone().unwrap_or_default(),
                    )
                })
                .collect(),
            membership_index: 1,
        }
    }

    fn register_metrics(&self, registry: &prometheus::Registry) {
        registry
            .register(Box::new(ProposalsCollector::new(self.clone())))
            .expect("register the fake's metric");
    }
}

/// `kvs_fake_proposals_total`, read from the fake at scrape time like the node's metrics are.
struct ProposalsCollector {
    desc: prometheus::core::Desc,
    fake: FakeBackend,
}

impl ProposalsCollector {
    fn new(fake: FakeBackend) -> ProposalsCollector {
        let desc = prometheus::core::Desc::new(
            "kvs_fake_proposals_total".into(),
            "Proposals the fake applied.".into(),
            vec![],
            Default::default(),
        )
        .expect("valid descriptor");
        ProposalsCollector { desc, fake }
    }
}

impl prometheus::core::Collector for ProposalsCollector {
    fn desc(&self) -> Vec<&prometheus::core::Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<prometheus::proto::MetricFamily> {
        let counter = prometheus::IntCounter::with_opts(prometheus::Opts::new(
            self.desc.fq_name.clone(),
            self.desc.help.clone(),
        ))
        .expect("valid counter");
        counter.inc_by(self.fake.proposals());
        counter.collect()
    }
}
