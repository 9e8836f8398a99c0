//! The production ready loop: one dedicated thread owns the [`Node`]; everything else talks to it through
//! a bounded queue of [`Input`]s. Blocking fsyncs happen on this thread, never on an async runtime's workers.
//!
//! How the loop ends is observable: [`LoopWatch`] reports [`LoopExit::Shutdown`] after an asked-for stop
//! and [`LoopExit::Failed`] when the loop died on its own (a `process_ready` error such as a full disk, or
//! a panic), so the process can stop instead of serving on without a node. Either way every waiting request
//! is answered first: those inside the node by `fail_all`, and commands still in the queue — behind the
//! shutdown, or sent while the loop was dying — with [`Error::Stopped`] (they never reached raft).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::prelude::Message;
use tokio::sync::watch;

use crate::error::Error;
use crate::membership::Membership;
use crate::node::{Command, DiskSpace, Node, ReadySink, StagedImage, StateMachine};
use crate::storage::LogStorage;

/// Where the loop sends Raft messages. Must not block: a slow peer's messages are dropped (Raft retries).
pub trait Transport: Send + 'static {
    fn send(&mut self, msgs: Vec<Message>);
    /// The membership table changed (members, addresses, removed ids): update who may connect and where
    /// to dial. Called once at start and after every change.
    fn members_changed(&mut self, _membership: &Membership) {}
}

/// The loop's [`ReadySink`]: straight to the transport.
struct ToTransport<'a, T>(&'a mut T);

impl<T: Transport> ReadySink for ToTransport<'_, T> {
    fn send(&mut self, msgs: Vec<Message>) {
        self.0.send(msgs);
    }
    fn members_changed(&mut self, membership: &Membership) {
        self.0.members_changed(membership);
    }
}

pub enum Input<O> {
    Command(Command<O>),
    Raft(Box<Message>),
    /// A MsgSnapshot with its received image.
    Snapshot(Box<Message>, Box<dyn StagedImage>),
    Unreachable(u64),
    SnapshotStatus {
        peer: u64,
        delivered: bool,
    },
    /// Addresses a peer announced on its handshake: (id, peer_addr, client_addr).
    PeerAddresses(u64, String, String),
    Shutdown,
}

pub struct RunnerConfig {
    pub tick: Duration,
    pub queue: usize,
    /// Called on the loop's thread after every completed turn ([`LoopHook`]).
    pub on_turn: Option<LoopHook>,
}

/// A callback the loop runs on its own thread after every turn that completed — it handled its input,
/// ticked if due, persisted and sent the Ready — so at least once per tick while the loop is alive and
/// never while it is stuck (in an fsync, a wedged state machine, a stalled turn). Must be quick and must
/// not block: it runs between Readies.
#[derive(Clone)]
pub struct LoopHook(pub Arc<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for LoopHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoopHook")
    }
}

/// One input in the loop's queue. An envelope dropped unopened — left in the queue when the loop ended, or
/// refused by a full or closed queue — answers its command [`Error::Stopped`]: it never reached raft, so it
/// is definitely not applied (never a silently dropped reply, which a caller must treat as unknown).
struct Envelope<O>(Option<Input<O>>);

impl<O> Envelope<O> {
    fn open(mut self) -> Option<Input<O>> {
        self.0.take()
    }
}

impl<O> Drop for Envelope<O> {
    fn drop(&mut self) {
        if let Some(Input::Command(cmd)) = self.0.take() {
            cmd.refuse(Error::Stopped);
        }
    }
}

/// How a node loop ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoopExit {
    /// It was asked to stop ([`NodeHandle::shutdown`], or its handle was dropped).
    Shutdown,
    /// It died on its own: a `process_ready` error (its message) or a panic. The node no longer serves.
    Failed(String),
}

/// Watches a node loop: whether it still runs, and how it ended. Cheap to clone.
#[derive(Clone)]
pub struct LoopWatch(watch::Receiver<Option<LoopExit>>);

impl LoopWatch {
    /// `None` while the loop runs.
    pub fn exit(&self) -> Option<LoopExit> {
        self.0.borrow().clone()
    }

    /// Resolves once the loop has ended (every waiting request already answered).
    pub async fn ended(&self) -> LoopExit {
        let mut rx = self.0.clone();
        let exit = match rx.wait_for(Option::is_some).await {
            Ok(exit) => exit.clone().unwrap_or(LoopExit::Shutdown),
            // The thread's sender is gone without a word: only if the thread could not be started.
            Err(_) => LoopExit::Failed("the node loop thread did not run".into()),
        };
        exit
    }
}

/// Who leads, as this node knows it: published by the loop after every turn in which it changed, so
/// callers that wait for a (new) leader wake up in the turn it became known, without polling the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LeaderView {
    pub term: u64,
    /// `None` while no leader is known (an election runs, or this node was cut off).
    pub leader: Option<u64>,
    /// Whether this node has known a leader since it started: `false` on a node that has just started
    /// and not heard from one yet (it may be far behind, or its peers unreachable).
    pub seen_leader: bool,
}

/// Publishes how the loop ended when the loop thread ends, also by a panic.
struct ExitReport {
    tx: watch::Sender<Option<LoopExit>>,
    exit: Option<LoopExit>,
}

impl Drop for ExitReport {
    fn drop(&mut self) {
        let exit = self
            .exit
            .take()
            .unwrap_or_else(|| LoopExit::Failed("the node loop panicked".into()));
        self.tx.send_replace(Some(exit));
    }
}

/// How much room the node's disk has ([`DiskSpace`]), as measured by the caller against its reserve; the
/// loop hands it to the node every turn. Cheap to clone; every clone is the same switch.
#[derive(Clone, Default)]
pub struct LowSpace(Arc<AtomicU8>);

impl LowSpace {
    pub fn set(&self, space: DiskSpace) {
        self.0.store(space as u8, Ordering::Relaxed);
    }

    pub fn get(&self) -> DiskSpace {
        match self.0.load(Ordering::Relaxed) {
            0 => DiskSpace::Ample,
            1 => DiskSpace::Low,
            _ => DiskSpace::Critical,
        }
    }
}

/// Handle to a running node loop.
pub struct NodeHandle<O: 'static> {
    tx: SyncSender<Envelope<O>>,
    thread: Option<JoinHandle<Result<(), Error>>>,
    low_space: LowSpace,
    watch: LoopWatch,
    leader: watch::Receiver<LeaderView>,
}

/// A cloneable way into a running node loop (for HTTP handlers and the transport).
pub struct NodeSender<O> {
    tx: SyncSender<Envelope<O>>,
}

impl<O> Clone for NodeSender<O> {
    fn clone(&self) -> Self {
        NodeSender {
            tx: self.tx.clone(),
        }
    }
}

impl<O> NodeSender<O> {
    /// Queue a command; if the queue is full the command is answered `Overloaded` at once, if the loop is
    /// gone `Stopped`.
    pub fn send(&self, cmd: Command<O>) {
        match self.tx.try_send(Envelope(Some(Input::Command(cmd)))) {
            Ok(()) => {}
            Err(TrySendError::Full(envelope)) => {
                if let Some(Input::Command(cmd)) = envelope.open() {
                    cmd.refuse(Error::Overloaded);
                }
            }
            // Dropping the envelope answers `Stopped`.
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Queue any input; dropped if the queue is full (Raft retries messages; reports are advisory). A
    /// command dropped here is answered `Stopped`; use [`NodeSender::send`] to have it answered
    /// `Overloaded` on a full queue.
    pub fn input(&self, input: Input<O>) {
        let _ = self.tx.try_send(Envelope(Some(input)));
    }
}

impl<O: 'static> NodeHandle<O> {
    /// A cloneable sender into this loop.
    pub fn sender(&self) -> NodeSender<O> {
        NodeSender {
            tx: self.tx.clone(),
        }
    }

    /// The node's low-on-space switch.
    pub fn low_space(&self) -> LowSpace {
        self.low_space.clone()
    }

    /// Whether the loop still runs, and how it ended.
    pub fn watch(&self) -> LoopWatch {
        self.watch.clone()
    }

    /// Who leads as this node knows it, updated in the loop turn it changes. Its sender is dropped when
    /// the loop ends, so a wait on it ends then too.
    pub fn leader(&self) -> watch::Receiver<LeaderView> {
        self.leader.clone()
    }

    /// Queue a command; if the queue is full the command is answered `Overloaded` at once.
    pub fn send(&self, cmd: Command<O>) {
        self.sender().send(cmd)
    }

    /// Stop the loop and wait for its thread (a blocking call: from async code, run it with
    /// `spawn_blocking`). Waiting requests are failed explicitly. Returns the loop's own error, if it died.
    pub fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.tx.send(Envelope(Some(Input::Shutdown)));
        match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result,
            Some(Err(_)) => Err(Error::StateMachine("node loop panicked".into())),
            None => Ok(()),
        }
    }
}

impl<O: 'static> Drop for NodeHandle<O> {
    /// Stop a loop that was not shut down explicitly. On a tokio runtime the thread is joined by a
    /// blocking task (an async worker must not wait on a thread that may be in an fsync; the runtime
    /// waits for its blocking tasks when it shuts down, so the loop never outlives it); elsewhere here.
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let tx = self.tx.clone();
            let join = move || {
                // Blocks while the queue is full: the loop is draining it.
                let _ = tx.send(Envelope(Some(Input::Shutdown)));
                let _ = thread.join();
            };
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(join)),
                Err(_) => join(),
            }
        }
    }
}

/// Start the loop on its own thread. `clock` gives physical time in µs for commit timestamps.
pub fn spawn<L, S, T, C>(
    mut node: Node<L, S>,
    mut transport: T,
    clock: C,
    cfg: RunnerConfig,
) -> NodeHandle<S::Output>
where
    L: LogStorage + Send + 'static,
    S: StateMachine + Send + 'static,
    T: Transport,
    C: Fn() -> u64 + Send + 'static,
{
    let (tx, rx) = sync_channel(cfg.queue);
    let id = node.id();
    let low_space = LowSpace::default();
    let (exit_tx, exit_rx) = watch::channel(None);
    let (leader_tx, leader_rx) = watch::channel(node.leader_view());
    let low = low_space.clone();
    let thread = std::thread::Builder::new()
        .name(format!("raft-node-{id}"))
        .spawn(move || {
            // Declared first, dropped last: the exit is published after every request was answered.
            let mut report = ExitReport {
                tx: exit_tx,
                exit: None,
            };
            let result = run(
                &mut node,
                &rx,
                &mut transport,
                &clock,
                &cfg,
                &low,
                &leader_tx,
            );
            node.fail_all();
            // What is still queued never reached raft: dropping the queue answers it `Stopped`, and any
            // later send finds the queue closed.
            drop(rx);
            report.exit = Some(match &result {
                Ok(()) => LoopExit::Shutdown,
                Err(e) => {
                    tracing::error!(node = id, error = %e, "node loop died; the node no longer serves");
                    LoopExit::Failed(e.to_string())
                }
            });
            result
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start node thread"))
        .ok();
    NodeHandle {
        tx,
        thread,
        low_space,
        watch: LoopWatch(exit_rx),
        leader: leader_rx,
    }
}

fn run<L: LogStorage, S: StateMachine, T: Transport, C: Fn() -> u64>(
    node: &mut Node<L, S>,
    rx: &Receiver<Envelope<S::Output>>,
    transport: &mut T,
    clock: &C,
    cfg: &RunnerConfig,
    low_space: &LowSpace,
    leader: &watch::Sender<LeaderView>,
) -> Result<(), Error> {
    let tick = cfg.tick;
    let mut next_tick = Instant::now() + tick;
    loop {
        // Test builds only (`failpoints`): a turn that stalls (the watchdog test holds the loop here).
        fail::fail_point!("runner::stall");
        // Reads whose round can start now (the one they queued behind was answered last turn) take
        // the next turn at once.
        let wait = if node.reads_ready_to_flush() {
            Duration::ZERO
        } else {
            next_tick.saturating_duration_since(Instant::now())
        };
        let first = match rx.recv_timeout(wait) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        node.set_wall_clock(clock());
        // Drain what is queued, so one Ready (one fsync) covers every command that arrived meanwhile.
        node.set_disk_space(low_space.get());
        for input in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            .filter_map(Envelope::open)
        {
            match input {
                Input::Shutdown => return Ok(()),
                Input::Command(cmd) => node.handle(cmd),
                Input::Raft(msg) => node.step(*msg),
                Input::Snapshot(msg, image) => node.step_snapshot(*msg, image),
                Input::Unreachable(peer) => node.report_unreachable(peer),
                Input::SnapshotStatus { peer, delivered } => node.report_snapshot(peer, delivered),
                Input::PeerAddresses(id, peer, client) => node.learn_addresses(id, &peer, &client),
            }
        }
        let now = Instant::now();
        if now >= next_tick {
            node.tick(now);
            next_tick += tick;
        }
        // The lease is checked against the time now, after the drain: never earlier than any read's arrival.
        node.flush_reads(Instant::now());
        node.set_wall_clock(clock());
        let physical = node.commit_clock();
        node.flush_proposals(physical);
        // Messages leave as soon as they may (a leader's appends before its own fsync, a follower's
        // acknowledgments before it applies), not after the whole Ready.
        node.process_ready_sending(&mut ToTransport(transport))?;
        let mut view = node.leader_view();
        leader.send_if_modified(|known| {
            view.seen_leader |= known.seen_leader;
            let changed = *known != view;
            *known = view;
            changed
        });
        if let Some(hook) = &cfg.on_turn {
            (hook.0)();
        }
    }
}
