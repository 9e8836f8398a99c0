//! The one entry point of the crate: [`Group::start`] opens the Raft log, bootstraps a new cluster, starts
//! the peer transport and the ready loop, and returns a [`Group`] handle with the async calls a server
//! makes into it. The caller brings only its state machine, the source of its snapshot images, and a bound
//! peer listener; nothing of `raft`, `slog` or the transport's wiring leaks out.
//!
//! ```text
//!  async callers ──Command + oneshot──▶ NodeSender ──▶ raft-node-<id> thread (Node: RawNode, LogStore, S)
//!                                                      │ messages                      ▲ Input::{Raft, Snapshot, ...}
//!                                                      ▼                               │
//!                                            PeerTransport ──▶ TcpTransport tasks (tokio) ── TCP ── peers
//! ```
//!
//! Every call that waits on the cluster takes the request's one `deadline`: the node answers
//! [`Error::Timeout`] when it passes, and the call stops waiting at the same instant (so a wedged loop
//! cannot hang a caller either).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use raft::prelude::{ConfState, Message};
use tokio::sync::oneshot;

use crate::error::Error;
use crate::hlc::wall_clock_micros;
use crate::membership::{Membership, MembershipChange};
use crate::node::{
    Command, Committed, Node, NodeConfig, NodeStatus, Reply, StagedImage, StateMachine,
};
use crate::runner::{
    self, Input, LeaderView, LoopExit, LoopHook, LoopWatch, LowSpace, NodeHandle, NodeSender,
    RunnerConfig, Transport,
};
use crate::storage::{LogMemory, LogStore, LogWrite};
use crate::transport::{
    Inbound, Peer, SnapshotImage, SnapshotSource, TcpTransport, TlsError, TlsFiles,
    TransportConfig, TransportCounters, TransportError, TransportHandle,
};

/// Bound of the ready loop's input queue; a full queue answers commands `Overloaded` at once.
const LOOP_QUEUE: usize = 65_536;

/// Everything a group member needs to start. [`GroupConfig::new`] gives the production defaults.
#[derive(Clone)]
pub struct GroupConfig {
    pub cluster_id: String,
    /// The Raft log's own RocksDB directory.
    pub log_dir: PathBuf,
    /// What the Raft log's RocksDB may hold in memory.
    pub log_memory: LogMemory,
    /// Where received snapshot images are staged.
    pub snapshot_dir: PathBuf,
    /// Members of a new cluster (id → peer address); used only when the log is fresh. Empty for a node
    /// that joins an existing cluster.
    pub initial_cluster: BTreeMap<u64, String>,
    /// Members known before this node has its own membership table (a joining node): accepted as peers.
    pub known_peers: BTreeMap<u64, String>,
    /// The cluster already exists (etcd's `initial-cluster-state existing`): an empty log is refused
    /// instead of bootstrapped from `initial_cluster`, since an empty log there means this member's
    /// earlier state — its votes — is lost. A joining node (no `initial_cluster`) is not affected.
    pub existing_cluster: bool,
    /// The peer address others dial; empty: the listener's own address.
    pub advertise_peer: String,
    /// The client address announced to peers (for forwarding and the cluster view).
    pub advertise_client: String,
    pub peer_secret: Vec<u8>,
    /// Length of one tick of the ready loop (the node's election and heartbeat counts are in ticks).
    pub tick: Duration,
    /// Inbound peer connections open at once; more are closed when accepted.
    pub max_peer_connections: usize,
    /// The wall clock (µs since the epoch) commit timestamps come from; tests give a node a skewed one.
    pub wall_clock: WallClock,
    /// The node: its id, Raft timing in ticks, batching, compaction.
    pub node: NodeConfig,
    /// Mutual TLS on the peer port (`None`: plain TCP with authenticated frames).
    pub peer_tls: Option<TlsFiles>,
    /// Called by the ready loop's own thread after every turn that completed (at least once per tick):
    /// a sign of life that only a turning loop gives (the binary feeds systemd's watchdog from it).
    pub loop_hook: Option<LoopHook>,
}

impl GroupConfig {
    /// Production defaults for node `id` of `cluster_id`, keeping its log in `log_dir` and staging
    /// received snapshots in `snapshot_dir`.
    pub fn new(id: u64, cluster_id: &str, log_dir: PathBuf, snapshot_dir: PathBuf) -> Self {
        GroupConfig {
            cluster_id: cluster_id.to_string(),
            log_dir,
            log_memory: LogMemory::default(),
            snapshot_dir,
            initial_cluster: BTreeMap::new(),
            known_peers: BTreeMap::new(),
            existing_cluster: false,
            advertise_peer: String::new(),
            advertise_client: String::new(),
            peer_secret: Vec::new(),
            tick: crate::node::Timing::default().tick,
            max_peer_connections: crate::transport::DEFAULT_MAX_INBOUND_CONNECTIONS,
            wall_clock: WallClock(Arc::new(wall_clock_micros)),
            node: NodeConfig::new(id),
            peer_tls: None,
            loop_hook: None,
        }
    }

    pub fn id(&self) -> u64 {
        self.node.id
    }
}

/// A wall clock in µs since the Unix epoch.
#[derive(Clone)]
pub struct WallClock(pub Arc<dyn Fn() -> u64 + Send + Sync>);

impl std::fmt::Debug for WallClock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WallClock")
    }
}

/// The largest entry a group may be configured to propose (`NodeConfig::max_entry_bytes`) over frames
/// of at most `max_frame` bytes: half of it, so a `MsgAppend` (at most one such entry, or 1 MiB of
/// smaller ones) plus its envelope always fits a frame.
pub fn max_entry_bytes(max_frame: usize) -> usize {
    max_frame / 2
}

/// Why a group member did not start. Nothing was left running.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("open the raft log at {path}")]
    Log {
        path: PathBuf,
        #[source]
        source: Error,
    },
    #[error("node {id} is not in the initial cluster {members:?}")]
    NotInInitialCluster { id: u64, members: Vec<u64> },
    #[error(
        "the raft log at {} is empty, but the initial cluster state is `existing`: this member's earlier \
         state (its votes and acknowledged entries) is lost, and it must not rejoin as the same member. \
         Remove node {id} from the cluster and add the machine back under a new id (with --join); a node \
         founding a new cluster uses the initial cluster state `new`",
        path.display()
    )]
    EmptyLogInExistingCluster { path: PathBuf, id: u64 },
    #[error("start the peer transport: {0}")]
    Transport(#[from] TransportError),
    #[error("start the raft node: {0}")]
    Node(#[source] Error),
    #[error("a blocking start-up step failed to run: {0}")]
    Join(String),
}

/// The group's configuration after a membership change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configuration {
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
}

/// A running member of the group. `O` is what the state machine returns for one command.
pub struct Group<O: Send + 'static> {
    id: u64,
    cluster_id: String,
    node: Mutex<Option<NodeHandle<O>>>,
    sender: NodeSender<O>,
    watch: LoopWatch,
    leader: tokio::sync::watch::Receiver<LeaderView>,
    low_space: LowSpace,
    transport: TransportHandle,
    known_peers: BTreeMap<u64, String>,
    membership: Arc<RwLock<Membership>>,
    /// Shared with the loop's transport: see [`Group::isolate`].
    isolated: Arc<Mutex<bool>>,
}

/// The transport's callbacks, delivered to the node loop. Until the loop runs there is nowhere to
/// deliver, and messages are dropped (Raft retries) — except the addresses peers announce, which come
/// once per connection only: those are kept and handed over when the loop starts ([`NodeInbound::attach`]).
struct NodeInbound<O> {
    sender: OnceLock<NodeSender<O>>,
    /// Addresses announced before the loop ran: id → (peer, client).
    early_addresses: Mutex<BTreeMap<u64, (String, String)>>,
}

impl<O: Send + 'static> NodeInbound<O> {
    fn input(&self, input: Input<O>) {
        if let Some(sender) = self.sender.get() {
            sender.input(input);
        }
    }

    /// The loop runs: deliver from now on, starting with the addresses announced so far.
    fn attach(&self, sender: NodeSender<O>) {
        // Under the lock, so a newer announcement cannot overtake the early ones.
        let mut early = self
            .early_addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let _ = self.sender.set(sender);
        for (peer, (peer_addr, client_addr)) in std::mem::take(&mut *early) {
            self.input(Input::PeerAddresses(peer, peer_addr, client_addr));
        }
    }
}

impl<O: Send + 'static> Inbound for NodeInbound<O> {
    fn message(&self, msg: Message) {
        self.input(Input::Raft(Box::new(msg)));
    }
    fn snapshot(&self, msg: Message, image: SnapshotImage) {
        self.input(Input::Snapshot(
            Box::new(msg),
            Box::new(StagedFile(Some(image))),
        ));
    }
    fn unreachable(&self, peer: u64) {
        self.input(Input::Unreachable(peer));
    }
    fn snapshot_status(&self, peer: u64, delivered: bool) {
        self.input(Input::SnapshotStatus { peer, delivered });
    }
    fn peer_addresses(&self, peer: u64, peer_addr: &str, client_addr: &str) {
        {
            // Checked under the lock `attach` drains under: nothing slips between the two.
            let mut early = self
                .early_addresses
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if self.sender.get().is_none() {
                early.insert(peer, (peer_addr.to_string(), client_addr.to_string()));
                return;
            }
        }
        self.input(Input::PeerAddresses(
            peer,
            peer_addr.to_string(),
            client_addr.to_string(),
        ));
    }
}

/// A received image, removed from disk once the node is done with it (installed or refused).
struct StagedFile(Option<SnapshotImage>);

impl StagedImage for StagedFile {
    fn chunks(&self) -> Box<dyn Iterator<Item = Vec<u8>> + '_> {
        let Some(image) = &self.0 else {
            return Box::new(std::iter::empty());
        };
        match image.chunks() {
            // A read error ends the stream; the state machine then refuses the truncated image.
            Ok(chunks) => Box::new(chunks.map_while(Result::ok)),
            Err(e) => {
                tracing::warn!(error = %e, path = %image.path().display(), "cannot read staged snapshot");
                Box::new(std::iter::empty())
            }
        }
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(image) = self.0.take() {
            image.remove();
        }
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
    /// Set by [`Group::isolate`]: peer lists stay empty until [`Group::heal`]. Held while the peers are
    /// set, so a membership change and an isolation never interleave into a silently healed node.
    isolated: Arc<Mutex<bool>>,
}

impl Transport for PeerTransport {
    fn send(&mut self, msgs: Vec<Message>) {
        self.tcp.send(msgs);
    }

    fn members_changed(&mut self, membership: &Membership) {
        *self.shared.write().unwrap_or_else(PoisonError::into_inner) = membership.clone();
        self.handle
            .set_removed(membership.removed.iter().copied().collect());
        let isolated = self.isolated.lock().unwrap_or_else(PoisonError::into_inner);
        self.handle.set_peers(if *isolated {
            Vec::new()
        } else {
            peer_list(self.id, &self.known, membership)
        });
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

/// Open the log and check it is this node's; on the first start of a new cluster record the voters and
/// their addresses.
fn open_log(cfg: &GroupConfig) -> Result<LogStore, StartError> {
    let log_error = |source| StartError::Log {
        path: cfg.log_dir.clone(),
        source,
    };
    let log =
        LogStore::open_with(&cfg.log_dir, &cfg.cluster_id, cfg.log_memory).map_err(log_error)?;
    let id = cfg.id();
    log.check_node_id(id).map_err(log_error)?;
    let fresh = log.conf_state().voters.is_empty()
        && log.conf_state().learners.is_empty()
        && raft::Storage::last_index(&log).unwrap_or(0) == 0;
    if !fresh || cfg.initial_cluster.is_empty() {
        return Ok(log);
    }
    if cfg.existing_cluster {
        return Err(StartError::EmptyLogInExistingCluster {
            path: cfg.log_dir.clone(),
            id,
        });
    }
    if !cfg.initial_cluster.contains_key(&id) {
        return Err(StartError::NotInInitialCluster {
            id,
            members: cfg.initial_cluster.keys().copied().collect(),
        });
    }
    let mut membership = Membership::initial(cfg.initial_cluster.clone());
    if let Some(me) = membership.members.get_mut(&id) {
        me.client_addr = cfg.advertise_client.clone();
    }
    let voters: Vec<u64> = cfg.initial_cluster.keys().copied().collect();
    log.persist(&LogWrite {
        conf_state: Some(ConfState::from((voters, vec![]))),
        membership: Some(membership.encode().map_err(log_error)?),
        ..LogWrite::default()
    })
    .map_err(log_error)?;
    tracing::info!(node = id, members = ?cfg.initial_cluster, "bootstrapped a new cluster");
    Ok(log)
}

impl<O: Send + 'static> Group<O> {
    /// Open (or create) the log and start this member: the ready loop on its own thread, the transport
    /// on the current tokio runtime, peers connecting on `peer_listener`. The blocking steps (opening
    /// RocksDB, the bootstrap fsync, replaying the log) run off the async workers.
    pub async fn start<S, Src>(
        cfg: GroupConfig,
        state_machine: S,
        snapshot_source: Src,
        peer_listener: tokio::net::TcpListener,
    ) -> Result<Group<O>, StartError>
    where
        S: StateMachine<Output = O> + Send + 'static,
        Src: SnapshotSource,
    {
        let id = cfg.id();
        let max_entry = max_entry_bytes(crate::transport::DEFAULT_MAX_FRAME);
        if cfg.node.max_entry_bytes > max_entry {
            return Err(StartError::Node(Error::Invalid(
                "max_entry_bytes exceeds half of the transport's largest frame",
            )));
        }
        let log_cfg = cfg.clone();
        let log = tokio::task::spawn_blocking(move || open_log(&log_cfg))
            .await
            .map_err(|e| StartError::Join(e.to_string()))??;
        // The persisted table: the transport knows the members from its first connection on (see below).
        let persisted = match log.membership() {
            bytes if bytes.is_empty() => Membership::default(),
            bytes => Membership::decode(&bytes).map_err(|source| StartError::Log {
                path: cfg.log_dir.clone(),
                source,
            })?,
        };

        let inbound = Arc::new(NodeInbound::<O> {
            sender: OnceLock::new(),
            early_addresses: Mutex::new(BTreeMap::new()),
        });
        let advertise_peer = if cfg.advertise_peer.is_empty() {
            peer_listener
                .local_addr()
                .map_err(|source| TransportError::Io {
                    context: "peer listener address".into(),
                    source,
                })?
                .to_string()
        } else {
            cfg.advertise_peer.clone()
        };
        let tcfg = TransportConfig::new(
            cfg.cluster_id.clone(),
            id,
            cfg.peer_secret.clone(),
            advertise_peer,
            cfg.advertise_client.clone(),
            cfg.snapshot_dir.clone(),
        );
        let tcfg = TransportConfig {
            max_inbound_connections: cfg.max_peer_connections,
            tls: cfg.peer_tls.clone(),
            ..tcfg
        };
        let (tcp, transport) = TcpTransport::start(
            tcfg,
            peer_listener,
            inbound.clone(),
            Arc::new(snapshot_source),
        )
        .await?;
        // Issue 10: the members come from the persisted table now, not only once the node loop first
        // turns. That turn comes after opening the node and replaying the log (seconds on a long log),
        // and until then every peer was refused as "sender is not a member" and backed off, so a site
        // restarted as a whole took that long again to find itself, and its logs blamed the membership.
        transport.set_removed(persisted.removed.iter().copied().collect());
        transport.set_peers(peer_list(id, &cfg.known_peers, &persisted));

        let ncfg = NodeConfig {
            // One tick length for the loop and the node's lease.
            tick: cfg.tick,
            ..cfg.node.clone()
        };
        let node = tokio::task::spawn_blocking(move || {
            let logger = slog::Logger::root(slog::Discard, slog::o!());
            let mut node = Node::new(ncfg, log, state_machine, &logger)?;
            node.start_election_early(rand::random());
            Ok(node)
        })
        .await
        .map_err(|e| StartError::Join(e.to_string()))?;
        let node = match node {
            Ok(node) => node,
            Err(e) => {
                transport.shutdown().await;
                return Err(StartError::Node(e));
            }
        };
        let own_client_unknown = persisted
            .members
            .get(&id)
            .is_some_and(|m| m.client_addr.is_empty());
        let membership = Arc::new(RwLock::new(persisted));
        let isolated = Arc::new(Mutex::new(false));
        let peer_transport = PeerTransport {
            id,
            tcp,
            handle: transport.clone(),
            known: cfg.known_peers.clone(),
            shared: membership.clone(),
            isolated: isolated.clone(),
        };
        let wall_clock = cfg.wall_clock.clone();
        let handle = runner::spawn(
            node,
            peer_transport,
            move || (wall_clock.0)(),
            RunnerConfig {
                tick: cfg.tick,
                queue: LOOP_QUEUE,
                on_turn: cfg.loop_hook.clone(),
            },
        );
        let sender = handle.sender();
        let watch = handle.watch();
        let leader = handle.leader();
        let low_space = handle.low_space();
        inbound.attach(sender.clone());
        // A table that lacks this node's own client address (a log seeded by `snapshot restore` from
        // `--initial-cluster`, which names peer addresses only) learns it as it learns the peers':
        // from what this node announces (peers hear it on their handshakes).
        if own_client_unknown && !cfg.advertise_client.is_empty() {
            inbound.input(Input::PeerAddresses(
                id,
                String::new(),
                cfg.advertise_client.clone(),
            ));
        }
        Ok(Group {
            id,
            cluster_id: cfg.cluster_id,
            node: Mutex::new(Some(handle)),
            sender,
            watch,
            leader,
            low_space,
            transport,
            known_peers: cfg.known_peers,
            membership,
            isolated,
        })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The membership table as of the node loop's last change (addresses, removed ids).
    pub fn membership(&self) -> Membership {
        self.membership
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Read the peer TLS files again (new connections use them); `Ok(false)`: peer TLS is off. On an
    /// error the certificates in use stay.
    pub fn reload_peer_tls(&self) -> Result<bool, TlsError> {
        self.transport.reload_tls()
    }

    pub fn transport_counters(&self) -> TransportCounters {
        self.transport.counters()
    }

    /// `None` while the node loop runs; how it ended otherwise. A loop that died on its own
    /// ([`LoopExit::Failed`]) leaves a member that can no longer serve: stop it (see [`Group::ended`]).
    pub fn loop_exit(&self) -> Option<LoopExit> {
        self.watch.exit()
    }

    /// Who leads as this member knows it, updated in the loop turn it changes; the sender is gone once
    /// the loop ended.
    pub fn leader_watch(&self) -> tokio::sync::watch::Receiver<LeaderView> {
        self.leader.clone()
    }

    /// Who leads as this node knows it now (the value [`Group::leader_watch`] publishes).
    pub fn leader_view(&self) -> LeaderView {
        *self.leader.borrow()
    }

    /// Resolves when the node loop has ended, after every waiting request was answered.
    pub async fn ended(&self) -> LoopExit {
        self.watch.ended().await
    }

    /// The switch that says how much room this member's disk has (the caller measures it against its
    /// reserve): below the reserve proposals here are refused with [`Error::NoSpace`]; see
    /// [`crate::DiskSpace`].
    pub fn low_space(&self) -> LowSpace {
        self.low_space.clone()
    }

    /// Send a command and wait for its one reply, until `deadline` at the latest.
    async fn call<T: Send + 'static>(
        &self,
        deadline: Instant,
        make: impl FnOnce(Reply<Result<T, Error>>) -> Command<O>,
    ) -> Result<T, Error> {
        let (tx, rx) = oneshot::channel();
        self.sender.send(make(Box::new(move |r| {
            let _ = tx.send(r);
        })));
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(result)) => result,
            // The reply was dropped unanswered: only a loop that panicked does that (a stopping loop
            // answers everything, queued commands `Stopped`); the command may have been proposed.
            Ok(Err(_)) => Err(Error::ShuttingDown),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Replicate and apply one command: where it committed, its commit ts and the state machine's output.
    pub async fn propose(
        &self,
        command: Vec<u8>,
        deadline: Instant,
    ) -> Result<Committed<O>, Error> {
        let sent = Instant::now();
        let mut committed = self
            .call(deadline, |reply| Command::Propose {
                command,
                deadline,
                reply,
            })
            .await?;
        committed.trace.sent = sent;
        committed.trace.woke = Instant::now();
        Ok(committed)
    }

    /// Linearizable read barrier: once this returns, the local state machine has applied everything that
    /// was committed when it was called. Returns that index.
    pub async fn read_index(&self, deadline: Instant) -> Result<u64, Error> {
        self.call(deadline, |reply| Command::ReadIndex { deadline, reply })
            .await
    }

    /// Lease read barrier (leader only, `NotLeader` elsewhere): as [`Group::read_index`], without a round
    /// of heartbeats while the leader's lease holds (a ReadIndex round otherwise).
    pub async fn lease_read(&self, deadline: Instant) -> Result<u64, Error> {
        self.call(deadline, |reply| Command::LeaseRead { deadline, reply })
            .await
    }

    pub async fn status(&self, deadline: Instant) -> Result<NodeStatus, Error> {
        self.call(deadline, |reply| Command::Status {
            reply: Box::new(move |s| reply(Ok(s))),
        })
        .await
    }

    /// Change the membership by one node; returns the configuration once the change is applied here.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
        deadline: Instant,
    ) -> Result<Configuration, Error> {
        let cs = self
            .call(deadline, |reply| Command::ChangeMembership {
                change,
                deadline,
                reply,
            })
            .await?;
        Ok(Configuration {
            voters: cs.voters,
            learners: cs.learners,
        })
    }

    /// Ask the leader (this node) to hand leadership to `to`; returns once the request is made.
    pub async fn transfer_leader(&self, to: u64, deadline: Instant) -> Result<(), Error> {
        self.call(deadline, |reply| Command::TransferLeader { to, reply })
            .await
    }

    /// Cut every peer link of this node (both directions): a network partition, for fault tests and
    /// for fencing a node off by hand. Stays in force across membership changes (which otherwise reset the
    /// peer links) until [`Group::heal`].
    pub fn isolate(&self) {
        let mut isolated = self.isolated.lock().unwrap_or_else(PoisonError::into_inner);
        *isolated = true;
        self.transport.set_peers(Vec::new());
    }

    /// Restore the peer links from the membership table.
    pub fn heal(&self) {
        let mut isolated = self.isolated.lock().unwrap_or_else(PoisonError::into_inner);
        *isolated = false;
        let membership = self.membership();
        self.transport
            .set_peers(peer_list(self.id, &self.known_peers, &membership));
    }

    /// Stop: close the peer transport, then stop the loop (every waiting request is failed explicitly)
    /// and wait for its thread off the async workers. Returns the loop's own error if it had died.
    pub async fn shutdown(&self) -> Result<(), Error> {
        self.transport.shutdown().await;
        let handle = self
            .node
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        match handle {
            Some(handle) => tokio::task::spawn_blocking(move || handle.shutdown())
                .await
                .map_err(|e| Error::StateMachine(format!("join the node loop: {e}").into()))?,
            None => Ok(()),
        }
    }
}
