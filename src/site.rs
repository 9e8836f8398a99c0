//! One running replica of a site: the engine, the Raft log, the node loop and the peer transport,
//! assembled and started; and the async calls the HTTP layer and the tests make into it.
//!
//! ```text
//!  async callers ──Command + oneshot──▶ NodeSender ──▶ raft-node loop thread (Node: RawNode, LogStore, EngineMachine)
//!                                                      │ messages                      ▲ Input::{Raft, Snapshot, ...}
//!                                                      ▼                               │
//!                                            PeerTransport ──▶ TcpTransport tasks (tokio) ── TCP ── peers
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use engine::{Engine, EngineConfig, Op, OpResult};
use raft::prelude::{ConfState, Message};
use raft_node::runner::{self, Input, NodeHandle, NodeSender, RunnerConfig, Transport};
use raft_node::storage::{LogStore, LogWrite};
use raft_node::transport::{
    Inbound, Peer, SnapshotImage, TcpTransport, TransportConfig, TransportCounters, TransportHandle,
};
use raft_node::{Command, Error, Membership, MembershipChange, Node, NodeConfig, NodeStatus};
use tokio::sync::oneshot;

use crate::replica::{decode_reply, EngineMachine, EngineSource, StagedFile, SyncMode};

/// Everything a replica needs to start. Built from the validated serve configuration, or by tests.
#[derive(Clone)]
pub struct SiteConfig {
    pub id: u64,
    pub cluster_id: String,
    pub data_dir: PathBuf,
    /// Members of a new cluster (id → peer address); used only when the data dir is fresh. Empty for a
    /// node that joins an existing cluster.
    pub initial_cluster: BTreeMap<u64, String>,
    /// Members known before this node has its own membership table (a joining node): accepted as peers.
    pub known_peers: BTreeMap<u64, String>,
    pub advertise_peer: String,
    pub advertise_client: String,
    pub peer_secret: Vec<u8>,
    pub sync: SyncMode,
    pub engine: EngineConfig,
    pub tick: Duration,
    pub election_ticks: usize,
    pub heartbeat_ticks: usize,
    pub compact_log_entries: u64,
    pub compact_log_bytes: u64,
    pub max_inflight_commands: usize,
    pub lease_reads: bool,
    pub request_timeout: Duration,
}

impl SiteConfig {
    /// Production defaults for node `id` of `cluster_id` in `data_dir`.
    pub fn new(id: u64, cluster_id: &str, data_dir: &Path) -> Self {
        SiteConfig {
            id,
            cluster_id: cluster_id.to_string(),
            data_dir: data_dir.to_path_buf(),
            initial_cluster: BTreeMap::new(),
            known_peers: BTreeMap::new(),
            advertise_peer: String::new(),
            advertise_client: String::new(),
            peer_secret: Vec::new(),
            sync: SyncMode::Batch,
            engine: EngineConfig::default(),
            // As the serve defaults (src/config.rs): heartbeats every 100 ms, elections after 1–2 s, from
            // 50 distinct timeouts.
            tick: Duration::from_millis(20),
            election_ticks: 50,
            heartbeat_ticks: 5,
            compact_log_entries: 10_000,
            compact_log_bytes: 64 << 20,
            max_inflight_commands: 20_000,
            lease_reads: false,
            request_timeout: Duration::from_secs(5),
        }
    }
}

pub fn raft_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("raft")
}

pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshots")
}

/// A running replica.
pub struct Site {
    id: u64,
    cluster_id: String,
    engine: Arc<Engine>,
    node: Mutex<Option<NodeHandle>>,
    sender: NodeSender,
    transport: TransportHandle,
    known_peers: BTreeMap<u64, String>,
    membership: Arc<RwLock<Membership>>,
    request_timeout: Duration,
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The transport's callbacks, delivered to the node loop. Until the loop runs there is nowhere to
/// deliver, and messages are dropped (Raft retries).
struct NodeInbound {
    sender: OnceLock<NodeSender>,
}

impl NodeInbound {
    fn input(&self, input: Input) {
        if let Some(sender) = self.sender.get() {
            sender.input(input);
        }
    }
}

impl Inbound for NodeInbound {
    fn message(&self, msg: Message) {
        self.input(Input::Raft(Box::new(msg)));
    }
    fn snapshot(&self, msg: Message, image: SnapshotImage) {
        self.input(Input::Snapshot(
            Box::new(msg),
            Box::new(StagedFile::new(image)),
        ));
    }
    fn unreachable(&self, peer: u64) {
        self.input(Input::Unreachable(peer));
    }
    fn snapshot_status(&self, peer: u64, delivered: bool) {
        self.input(Input::SnapshotStatus { peer, delivered });
    }
    fn peer_addresses(&self, peer: u64, peer_addr: &str, client_addr: &str) {
        self.input(Input::PeerAddresses(
            peer,
            peer_addr.to_string(),
            client_addr.to_string(),
        ));
    }
}

/// The node loop's view of the network: the TCP transport, told about membership changes.
struct PeerTransport {
    id: u64,
    tcp: TcpTransport,
    handle: TransportHandle,
    /// Peers known from configuration, kept until the membership table knows them itself.
    known: BTreeMap<u64, String>,
    /// The latest table, for callers outside the loop (leader address lookups).
    shared: Arc<RwLock<Membership>>,
}

impl Transport for PeerTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        self.tcp.send(msgs);
    }

    fn members_changed(&mut self, membership: &Membership) {
        *self.shared.write().unwrap_or_else(PoisonError::into_inner) = membership.clone();
        self.handle
            .set_removed(membership.removed.iter().copied().collect());
        self.handle
            .set_peers(peer_list(self.id, &self.known, membership));
    }
}

/// Whom the transport dials and accepts: the table's members with an address, plus peers known from
/// configuration that the table does not know yet; never this node, never a removed id.
fn peer_list(me: u64, known: &BTreeMap<u64, String>, membership: &Membership) -> Vec<Peer> {
    let mut peers = known.clone();
    for m in membership.members.values() {
        if !m.peer_addr.is_empty() {
            peers.insert(m.id, m.peer_addr.clone());
        }
    }
    peers.retain(|id, _| *id != me && !membership.removed.contains(id));
    peers
        .into_iter()
        .map(|(id, addr)| Peer { id, addr })
        .collect()
}

/// Reclaim what the retention window no longer covers: old versions (through the compaction filter's
/// safepoint) and invalidated epochs (range deletes), in bounded steps off the async threads. Each replica
/// does this on its own: it only removes state no read may ask for any more. Stops with the engine.
async fn collect_garbage(engine: std::sync::Weak<Engine>) {
    const BUDGET: usize = 1_000;
    loop {
        let Some(e) = engine.upgrade() else { return };
        let step = tokio::task::spawn_blocking(move || e.gc_step(u64::MAX, BUDGET)).await;
        let more = match step {
            Ok(Ok(report)) => report.more,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "GC step failed");
                false
            }
            Err(_) => false,
        };
        if !more {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// First start on an empty data dir with an initial cluster: record the voters and their addresses.
fn bootstrap(log: &LogStore, cfg: &SiteConfig) -> anyhow::Result<()> {
    let fresh = log.conf_state().voters.is_empty()
        && log.conf_state().learners.is_empty()
        && raft::Storage::last_index(log).unwrap_or(0) == 0;
    if !fresh || cfg.initial_cluster.is_empty() {
        return Ok(());
    }
    anyhow::ensure!(
        cfg.initial_cluster.contains_key(&cfg.id),
        "node {} is not in the initial cluster {:?}",
        cfg.id,
        cfg.initial_cluster
    );
    let mut membership = Membership::initial(cfg.initial_cluster.clone());
    if let Some(me) = membership.members.get_mut(&cfg.id) {
        me.client_addr = cfg.advertise_client.clone();
    }
    let voters: Vec<u64> = cfg.initial_cluster.keys().copied().collect();
    log.persist(&LogWrite {
        conf_state: Some(ConfState::from((voters, vec![]))),
        membership: Some(membership.encode()),
        ..LogWrite::default()
    })
    .context("bootstrap the raft log")?;
    tracing::info!(node = cfg.id, members = ?cfg.initial_cluster, "bootstrapped a new cluster");
    Ok(())
}

impl Site {
    /// Open (or create) the data dir and start the replica; peers connect on `peer_listener`.
    pub async fn start(
        cfg: SiteConfig,
        peer_listener: tokio::net::TcpListener,
    ) -> anyhow::Result<Site> {
        let engine_dir = crate::check::state_dir(&cfg.data_dir);
        let engine = Arc::new(
            Engine::open(&engine_dir, cfg.engine.clone())
                .with_context(|| format!("open engine at {}", engine_dir.display()))?,
        );
        let log_dir = raft_dir(&cfg.data_dir);
        let log = LogStore::open(&log_dir, &cfg.cluster_id)
            .with_context(|| format!("open raft log at {}", log_dir.display()))?;
        bootstrap(&log, &cfg)?;

        let inbound = Arc::new(NodeInbound {
            sender: OnceLock::new(),
        });
        let advertise_peer = if cfg.advertise_peer.is_empty() {
            peer_listener.local_addr()?.to_string()
        } else {
            cfg.advertise_peer.clone()
        };
        let tcfg = TransportConfig::new(
            cfg.cluster_id.clone(),
            cfg.id,
            cfg.peer_secret.clone(),
            advertise_peer,
            cfg.advertise_client.clone(),
            snapshot_dir(&cfg.data_dir),
        );
        let (tcp, transport) = TcpTransport::start(
            tcfg,
            peer_listener,
            inbound.clone(),
            Arc::new(EngineSource(engine.clone())),
        )
        .await
        .context("start the peer transport")?;

        let mut ncfg = NodeConfig::new(cfg.id);
        ncfg.election_tick = cfg.election_ticks;
        ncfg.heartbeat_tick = cfg.heartbeat_ticks;
        ncfg.compact_log_entries = cfg.compact_log_entries;
        ncfg.compact_log_bytes = cfg.compact_log_bytes;
        ncfg.max_inflight_commands = cfg.max_inflight_commands;
        ncfg.lease_reads = cfg.lease_reads;
        ncfg.request_timeout_ticks =
            u64::try_from(cfg.request_timeout.as_millis() / cfg.tick.as_millis().max(1))
                .unwrap_or(u64::MAX)
                .max(1);
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let node = Node::new(
            ncfg,
            log,
            EngineMachine::new(engine.clone(), cfg.sync),
            &logger,
        )
        .context("start the raft node")?;
        let membership = Arc::new(RwLock::new(Membership::default()));
        let peer_transport = PeerTransport {
            id: cfg.id,
            tcp,
            handle: transport.clone(),
            known: cfg.known_peers.clone(),
            shared: membership.clone(),
        };
        let handle = runner::spawn(
            node,
            peer_transport,
            now_micros,
            RunnerConfig {
                tick: cfg.tick,
                queue: 65_536,
            },
        );
        let sender = handle.sender();
        let _ = inbound.sender.set(sender.clone());
        tokio::spawn(collect_garbage(Arc::downgrade(&engine)));
        Ok(Site {
            id: cfg.id,
            cluster_id: cfg.cluster_id,
            engine,
            node: Mutex::new(Some(handle)),
            sender,
            transport,
            known_peers: cfg.known_peers,
            membership,
            request_timeout: cfg.request_timeout,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// The membership table as of the node loop's last change (addresses, removed ids).
    pub fn membership(&self) -> Membership {
        self.membership
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    pub fn transport_counters(&self) -> TransportCounters {
        self.transport.counters()
    }

    pub fn peer_addr(&self) -> std::net::SocketAddr {
        self.transport.local_addr()
    }

    /// Lease read barrier (leader only): as `read_index`, without a round of heartbeats.
    pub async fn lease_read(&self) -> Result<u64, Error> {
        self.call(|reply| Command::LeaseRead { reply }).await
    }

    /// Send a command and wait for its one reply, under the request deadline.
    async fn call<T: Send + 'static>(
        &self,
        make: impl FnOnce(raft_node::Reply<Result<T, Error>>) -> Command,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.sender.send(make(Box::new(move |r| {
            let _ = tx.send(r);
        })));
        match tokio::time::timeout(self.request_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(Error::ShuttingDown),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Replicate and apply `ops` as one command: the entry's commit ts and one result per op.
    pub async fn propose(&self, ops: &[Op]) -> Result<(u64, Vec<OpResult>), Error> {
        let command = engine::codec::encode_ops(ops)
            .map_err(|_| Error::Invalid("the request cannot be encoded"))?;
        let reply = self
            .call(|reply| Command::Propose { command, reply })
            .await?;
        decode_reply(&reply)
    }

    /// Linearizable read barrier: once this returns, the local engine has applied everything that was
    /// committed when it was called.
    pub async fn read_index(&self) -> Result<u64, Error> {
        self.call(|reply| Command::ReadIndex { reply }).await
    }

    pub async fn status(&self) -> Result<NodeStatus, Error> {
        self.call(|reply| Command::Status {
            reply: Box::new(move |s| reply(Ok(s))),
        })
        .await
    }

    pub async fn change_membership(&self, change: MembershipChange) -> Result<ConfState, Error> {
        self.call(|reply| Command::ChangeMembership { change, reply })
            .await
    }

    pub async fn transfer_leader(&self, to: u64) -> Result<(), Error> {
        self.call(|reply| Command::TransferLeader { to, reply })
            .await
    }

    /// Cut every peer link of this node (both directions): a network partition, for fault tests and
    /// for fencing a node off by hand. Undone by [`Site::heal`].
    pub fn isolate(&self) {
        self.transport.set_peers(Vec::new());
    }

    /// Restore the peer links from the membership table.
    pub async fn heal(&self) {
        let membership = self.membership();
        self.transport
            .set_peers(peer_list(self.id, &self.known_peers, &membership));
    }

    /// Stop: close the peer transport, stop the loop (every waiting request is failed explicitly).
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.transport.shutdown().await;
        let handle = self
            .node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(handle) = handle {
            tokio::task::spawn_blocking(move || handle.shutdown())
                .await
                .context("join the node loop")?
                .context("node loop")?;
        }
        Ok(())
    }
}
