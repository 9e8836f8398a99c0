//! The production loop: one thread owns the node; callers get exactly one reply per command, including
//! after shutdown (never a hung request).

use std::sync::mpsc;
use std::time::{Duration, Instant};

use raft::prelude::Message;
use raft_node::runner::{self, NodeHandle, RunnerConfig, Transport};
use raft_node::{Command, Error, Node, NodeConfig, NodeStatus, Role, StateMachine};
use testkit::mem_log::MemLog;

struct NoNetwork;
impl Transport for NoNetwork {
    fn send(&mut self, _msgs: Vec<Message>) {}
}

/// Echoes each command back, prefixed with the entry index.
#[derive(Default)]
struct Echo {
    applied: (u64, u64),
}

impl StateMachine for Echo {
    fn applied(&self) -> (u64, u64) {
        self.applied
    }
    fn apply(&mut self, index: u64, ts: u64, commands: &[&[u8]]) -> Result<Vec<Vec<u8>>, Error> {
        self.applied = (index, ts);
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
            "this test never compacts its log".into(),
        ))
    }
}

fn status(handle: &NodeHandle) -> NodeStatus {
    let (tx, rx) = mpsc::channel();
    handle.send(Command::Status {
        reply: Box::new(move |s| drop(tx.send(s))),
    });
    rx.recv_timeout(Duration::from_secs(5))
        .expect("status reply")
}

fn propose(handle: &NodeHandle, command: Vec<u8>) -> mpsc::Receiver<Result<Vec<u8>, Error>> {
    let (tx, rx) = mpsc::channel();
    handle.send(Command::Propose {
        command,
        reply: Box::new(move |r| drop(tx.send(r))),
    });
    rx
}

fn single_node() -> NodeHandle {
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let node = Node::new(
        NodeConfig::new(1),
        MemLog::bootstrap(vec![1]),
        Echo::default(),
        &logger,
    )
    .unwrap();
    let micros = std::sync::atomic::AtomicU64::new(1_000_000);
    let clock = move || micros.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let handle = runner::spawn(
        node,
        NoNetwork,
        clock,
        RunnerConfig {
            tick: Duration::from_millis(5),
            queue: 10_000,
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while status(&handle).role != Role::Leader {
        assert!(
            Instant::now() < deadline,
            "a single voter must elect itself"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    handle
}

#[test]
fn concurrent_proposals_are_batched_and_each_gets_its_own_result() {
    let handle = single_node();
    let before = status(&handle).counters;
    let receivers: Vec<_> = (0..500u32)
        .map(|i| (i, propose(&handle, i.to_be_bytes().to_vec())))
        .collect();
    for (i, rx) in receivers {
        let got = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("reply")
            .expect("applied");
        assert_eq!(got, i.to_be_bytes().to_vec());
    }
    let after = status(&handle).counters;
    assert_eq!(after.commands_applied - before.commands_applied, 500);
    let entries = after.entries_proposed - before.entries_proposed;
    assert!(
        entries < 500,
        "500 queued commands went into {entries} entries: no batching"
    );
    handle.shutdown().unwrap();
}

#[test]
fn every_request_gets_an_answer_around_shutdown() {
    let handle = single_node();
    let in_flight: Vec<_> = (0..200u32)
        .map(|i| propose(&handle, i.to_be_bytes().to_vec()))
        .collect();
    handle.shutdown().unwrap();
    for rx in in_flight {
        match rx
            .recv_timeout(Duration::from_secs(5))
            .expect("a reply, not a hang")
        {
            Ok(_) | Err(Error::ShuttingDown) | Err(Error::Stopped) => {}
            other => panic!("unexpected reply {other:?}"),
        }
    }
}
