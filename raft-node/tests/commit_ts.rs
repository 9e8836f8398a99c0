//! Commit timestamps driven on one node by hand (issue 9 items 4 and 13): they increase strictly in log
//! order across a restart whatever the physical clock does, and every command of a batched entry gets a
//! ts of its own.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft::prelude::{Entry, HardState};
use raft::Storage as _;
use raft_node::storage::LogWrite;
use raft_node::{Command, Committed, Error, LogStorage, Node, NodeConfig, StateMachine as _};
use testkit::kv_machine::{Disk, Images, KvMachine};
use testkit::linearizability::Op;
use testkit::mem_log::MemLog;
use testkit::op_codec::encode_op;

type Answers = Arc<Mutex<Vec<Result<Committed<Vec<u8>>, Error>>>>;

/// One voter on an in-memory log, stepped by hand; `clock_micros` is its physical clock.
struct OneNode {
    node: Node<MemLog, KvMachine>,
    base: Instant,
    ticks: u64,
    clock_micros: u64,
}

impl OneNode {
    fn start(log: &MemLog, disk: &Disk, images: &Images, clock_micros: u64) -> OneNode {
        let cfg = NodeConfig {
            election_tick: 10,
            heartbeat_tick: 3,
            election_timeout_range: Some((10, 11)),
            ..NodeConfig::new(1)
        };
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let machine = KvMachine::restore(disk.clone(), images.clone());
        let node = Node::new(cfg, log.clone(), machine, &logger).expect("node starts");
        OneNode {
            node,
            base: Instant::now(),
            ticks: 0,
            clock_micros,
        }
    }

    fn propose(&mut self, op: &Op, answers: &Answers) {
        let answers = Arc::clone(answers);
        self.node.handle(Command::Propose {
            command: encode_op(op),
            deadline: self.base + Duration::from_secs(3600),
            reply: Box::new(move |r| answers.lock().unwrap().push(r)),
        });
    }

    /// One tick, then `before_flush` (e.g. proposing on the leader), the batch, and the Ready.
    fn step(&mut self, before_flush: impl FnOnce(&mut OneNode)) {
        self.ticks += 1;
        self.node
            .tick(self.base + Duration::from_millis(100 * self.ticks));
        before_flush(self);
        self.node.flush_proposals(self.clock_micros);
        self.node.process_ready().expect("ready");
    }

    fn step_until_leader(&mut self) {
        for _ in 0..100 {
            if self.node.is_leader() {
                return;
            }
            self.step(|_| {});
        }
        panic!("no leader after 100 ticks");
    }
}

fn committed(answers: &Answers) -> Vec<Committed<Vec<u8>>> {
    answers
        .lock()
        .unwrap()
        .iter()
        .map(|a| a.as_ref().expect("applied").clone())
        .collect()
}

/// A node restarts with a log that ends in a no-op (a later leader's) after entries it never learned were
/// committed, a state machine that has not flushed them, and a clock that went back. Elected again, the
/// first ts it hands out must still be above every ts in its log.
#[test]
fn a_restarted_leader_stamps_above_every_ts_in_its_log_even_behind_a_noop_tail() {
    let (log, disk, images) = (
        MemLog::bootstrap(vec![1]),
        Disk::default(),
        Images::default(),
    );
    let mut first = OneNode::start(&log, &disk, &images, 5_000_000_000);
    first.step_until_leader();
    let answers = Answers::default();
    first.propose(&Op::put("k", "before"), &answers);
    for _ in 0..5 {
        first.step(|_| {});
    }
    let before = committed(&answers);
    assert_eq!(before.len(), 1, "the first write is applied");
    let high = before[0].ts;
    drop(first); // a crash: the state machine never flushed, its disk copy is empty

    // The log as a node can hold it: a later leader's no-op at the tail, the commit index it persisted
    // still below the write.
    let hs = log.initial_state().unwrap().hard_state;
    let last = log.last_index().unwrap();
    let noop = Entry {
        index: last + 1,
        term: hs.term + 1,
        ..Entry::default()
    };
    log.persist(&LogWrite {
        entries: vec![noop],
        hard_state: Some(HardState {
            term: hs.term + 1,
            vote: 1,
            commit: 1,
        }),
        conf_state: None,
        membership: None,
        snapshot: None,
    })
    .unwrap();

    // Restarted with its clock 4,000 s behind; it proposes in the very turn it is elected, before the
    // write is re-applied.
    let mut again = OneNode::start(&log, &disk, &images, 1_000_000_000);
    let after = Answers::default();
    let mut proposed = false;
    for _ in 0..100 {
        again.step(|n| {
            if n.node.is_leader() && !proposed {
                n.propose(&Op::put("k", "after"), &after);
                proposed = true;
            }
        });
        if !after.lock().unwrap().is_empty() {
            break;
        }
    }
    let after = committed(&after);
    assert_eq!(after.len(), 1, "the second write is applied");
    assert!(
        after[0].ts > high,
        "commit ts went back across the restart: {} after {high}",
        after[0].ts
    );
}

/// Issue 9 item 13: a put and a checkpoint of the same entity batched into one entry must not share a
/// ts (at that ts the put would be in the old epoch and the checkpoint already started the new one, so
/// the write is invisible at its own ts); every command gets its own, in log order, and the next entry
/// stamps above them all.
#[test]
fn commands_batched_into_one_entry_each_get_their_own_ts() {
    let (log, disk, images) = (
        MemLog::bootstrap(vec![1]),
        Disk::default(),
        Images::default(),
    );
    let mut n = OneNode::start(&log, &disk, &images, 5_000_000_000);
    n.step_until_leader();
    let batch = Answers::default();
    let entries = n.node.counters().entries_proposed;
    n.propose(&Op::put("e0/a", "v"), &batch);
    n.propose(&Op::checkpoint("e0"), &batch);
    n.propose(&Op::put("e0/b", "w"), &batch);
    for _ in 0..5 {
        n.step(|_| {});
    }
    assert_eq!(
        n.node.counters().entries_proposed - entries,
        1,
        "the three commands went into one entry"
    );
    let batch = committed(&batch);
    assert_eq!(batch.len(), 3);
    assert_eq!(batch[0].index, batch[2].index);
    let ts: Vec<u64> = batch.iter().map(|c| c.ts).collect();
    assert!(
        ts[0] < ts[1] && ts[1] < ts[2],
        "commands of one entry share or reorder timestamps: {ts:?}"
    );
    let next = Answers::default();
    n.propose(&Op::put("k", "x"), &next);
    for _ in 0..5 {
        n.step(|_| {});
    }
    let next = committed(&next);
    assert!(
        next[0].ts > ts[2],
        "the next entry's ts {} is not above the batch's last {}",
        next[0].ts,
        ts[2]
    );
    assert_eq!(n.node.state_machine().applied().1, next[0].ts);
}
