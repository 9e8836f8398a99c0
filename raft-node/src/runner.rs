//! The production ready loop: one dedicated thread owns the [`Node`]; everything else talks to it through
//! a bounded queue of [`Input`]s. Blocking fsyncs happen on this thread, never on an async runtime's workers.

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use raft::prelude::Message;

use crate::error::Error;
use crate::membership::Membership;
use crate::node::{Command, Node, StagedImage, StateMachine};
use crate::storage::LogStorage;

/// Where the loop sends Raft messages. Must not block: a slow peer's messages are dropped (Raft retries).
pub trait Transport: Send + 'static {
    fn send(&mut self, msgs: Vec<Message>);
    /// The membership table changed (members, addresses, removed ids): update who may connect and where
    /// to dial. Called once at start and after every change.
    fn members_changed(&mut self, _membership: &Membership) {}
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
}

/// Handle to a running node loop.
pub struct NodeHandle<O: 'static> {
    tx: SyncSender<Input<O>>,
    thread: Option<JoinHandle<Result<(), Error>>>,
}

/// A cloneable way into a running node loop (for HTTP handlers and the transport).
pub struct NodeSender<O> {
    tx: SyncSender<Input<O>>,
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
        match self.tx.try_send(Input::Command(cmd)) {
            Ok(()) => {}
            Err(TrySendError::Full(Input::Command(cmd))) => cmd.refuse(Error::Overloaded),
            Err(TrySendError::Disconnected(Input::Command(cmd))) => cmd.refuse(Error::Stopped),
            Err(_) => {}
        }
    }

    /// Queue any input; dropped if the queue is full (Raft retries messages; reports are advisory).
    pub fn input(&self, input: Input<O>) {
        let _ = self.tx.try_send(input);
    }
}

impl<O: 'static> NodeHandle<O> {
    /// A cloneable sender into this loop.
    pub fn sender(&self) -> NodeSender<O> {
        NodeSender {
            tx: self.tx.clone(),
        }
    }

    /// Queue a command; if the queue is full the command is answered `Overloaded` at once.
    pub fn send(&self, cmd: Command<O>) {
        self.sender().send(cmd)
    }

    /// Stop the loop and wait for its thread (a blocking call: from async code, run it with
    /// `spawn_blocking`). Waiting requests are failed explicitly. Returns the loop's own error, if it died.
    pub fn shutdown(mut self) -> Result<(), Error> {
        let _ = self.tx.send(Input::Shutdown);
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
                let _ = tx.send(Input::Shutdown);
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
    let thread = std::thread::Builder::new()
        .name(format!("raft-node-{id}"))
        .spawn(move || {
            let result = run(&mut node, &rx, &mut transport, &clock, cfg.tick);
            node.fail_all();
            if let Err(e) = &result {
                tracing::error!(node = id, error = %e, "node loop stopped");
            }
            result
        })
        .map_err(|e| tracing::error!(error = %e, "cannot start node thread"))
        .ok();
    NodeHandle { tx, thread }
}

fn run<L: LogStorage, S: StateMachine, T: Transport, C: Fn() -> u64>(
    node: &mut Node<L, S>,
    rx: &Receiver<Input<S::Output>>,
    transport: &mut T,
    clock: &C,
    tick: Duration,
) -> Result<(), Error> {
    let mut next_tick = Instant::now() + tick;
    loop {
        let wait = next_tick.saturating_duration_since(Instant::now());
        let first = match rx.recv_timeout(wait) {
            Ok(input) => Some(input),
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => return Ok(()),
        };
        node.set_wall_clock(clock());
        // Drain what is queued, so one Ready (one fsync) covers every command that arrived meanwhile.
        for input in first
            .into_iter()
            .chain(std::iter::from_fn(|| rx.try_recv().ok()))
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
        let msgs = node.process_ready()?;
        if let Some(membership) = node.take_membership_change() {
            transport.members_changed(&membership);
        }
        if !msgs.is_empty() {
            transport.send(msgs);
        }
    }
}
