//! A one-voter group with no network, for tests and benches of the ready loop: a state machine stub, a
//! transport that sends nothing, and the calls to start and drive it through a [`NodeHandle`] (status,
//! wait for leadership, propose).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use raft::prelude::Message;
use raft_node::runner::{self, NodeHandle, RunnerConfig, Transport};
use raft_node::{
    Command, CommitTs, Committed, Error, LogStorage, Node, NodeConfig, NodeStatus, Role,
    StateMachine,
};

/// How long [`status`] waits for the loop's answer.
const STATUS_TIMEOUT: Duration = Duration::from_secs(5);
/// How long [`start`] waits for the node to elect itself.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts node 1 over `log` — which must hold a configuration whose only voter is 1 — with an [`Echo`]
/// state machine and no network, on the production loop, and returns once it leads. `clock` gives
/// physical time in µs for commit timestamps.
pub fn start<L, C>(log: L, clock: C, cfg: RunnerConfig) -> NodeHandle<Vec<u8>>
where
    L: LogStorage + Send + 'static,
    C: Fn() -> u64 + Send + 'static,
{
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let node = Node::new(NodeConfig::new(1), log, Echo::default(), &logger)
        .unwrap_or_else(|e| panic!("node 1 cannot start: {e}"));
    let handle = runner::spawn(node, NoNetwork, clock, cfg);
    wait_for_leader(&handle, ELECTION_TIMEOUT);
    handle
}

/// A transport for a single voter: there is nobody to send to.
pub struct NoNetwork;

impl Transport for NoNetwork {
    fn send(&mut self, _msgs: Vec<Message>) {}
}

/// Echoes each command back as its result and remembers the last applied (index, ts); nothing else, so
/// what a test or bench measures is the loop and the log. It never receives a snapshot (a single voter has
/// nobody to receive one from), so `install_snapshot` fails.
#[derive(Debug, Default)]
pub struct Echo {
    applied: (u64, u64),
}

impl StateMachine for Echo {
    type Output = Vec<u8>;

    fn applied(&self) -> (u64, u64) {
        self.applied
    }

    fn apply(
        &mut self,
        index: u64,
        ts: CommitTs,
        commands: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, Error> {
        let last = ts
            .last(commands.len())
            .ok_or(Error::Invalid("ts out of range"))?;
        self.applied = (index, last);
        Ok(commands.iter().map(|c| c.to_vec()).collect())
    }

    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn install_snapshot(
        &mut self,
        _image: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> Result<(u64, u64), Error> {
        Err(Error::StateMachine(
            "the echo stub never receives a snapshot".into(),
        ))
    }
}

/// The node's status; panics if the loop does not answer within 5 s.
pub fn status(handle: &NodeHandle<Vec<u8>>) -> NodeStatus {
    let (tx, rx) = mpsc::channel();
    handle.send(Command::Status {
        reply: Box::new(move |s| drop(tx.send(s))),
    });
    rx.recv_timeout(STATUS_TIMEOUT).expect("status reply")
}

/// Waits until the node is leader (a single voter elects itself after one election timeout); panics after
/// `timeout`.
pub fn wait_for_leader(handle: &NodeHandle<Vec<u8>>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while status(handle).role != Role::Leader {
        assert!(
            Instant::now() < deadline,
            "a single voter did not elect itself within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// How long a proposal may wait for its entry to commit (its deadline).
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// Proposes `command`; the receiver gets its one reply.
pub fn propose(
    handle: &NodeHandle<Vec<u8>>,
    command: Vec<u8>,
) -> mpsc::Receiver<Result<Committed<Vec<u8>>, Error>> {
    let (tx, rx) = mpsc::channel();
    handle.send(Command::Propose {
        command,
        deadline: Instant::now() + PROPOSE_TIMEOUT,
        reply: Box::new(move |r| drop(tx.send(r))),
    });
    rx
}
