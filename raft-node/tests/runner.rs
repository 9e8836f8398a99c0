//! The production loop: one thread owns the node; callers get exactly one reply per command, including
//! after shutdown (never a hung request).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use raft_node::runner::{NodeHandle, RunnerConfig};
use raft_node::Error;
use testkit::mem_log::MemLog;
use testkit::single_node::{self, propose, status};

fn single_node() -> NodeHandle<Vec<u8>> {
    let micros = AtomicU64::new(1_000_000);
    let clock = move || micros.fetch_add(1, Ordering::Relaxed);
    single_node::start(
        MemLog::bootstrap(vec![1]),
        clock,
        RunnerConfig {
            tick: Duration::from_millis(5),
            queue: 10_000,
            on_turn: None,
        },
    )
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
        assert_eq!(got.output, i.to_be_bytes().to_vec());
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

/// A state machine that echoes, except: `block` waits inside `apply` until released (after saying so),
/// and `die` fails the apply (the loop then stops, as on a full disk).
struct Gate {
    applied: (u64, u64),
    entered: std::sync::mpsc::Sender<()>,
    release: std::sync::mpsc::Receiver<()>,
}

impl raft_node::StateMachine for Gate {
    type Output = Vec<u8>;

    fn applied(&self) -> (u64, u64) {
        self.applied
    }

    fn apply(
        &mut self,
        index: u64,
        ts: raft_node::CommitTs,
        commands: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, Error> {
        for c in commands {
            match *c {
                b"block" => {
                    let _ = self.entered.send(());
                    let _ = self.release.recv_timeout(Duration::from_secs(10));
                }
                b"die" => return Err(Error::StateMachine("injected apply failure".into())),
                _ => {}
            }
        }
        self.applied = (index, ts.last(commands.len()).unwrap_or(ts.first));
        Ok(commands.iter().map(|c| c.to_vec()).collect())
    }

    fn flush(&mut self) -> Result<(), Error> {
        Ok(())
    }

    fn install_snapshot(
        &mut self,
        _image: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> Result<(u64, u64), Error> {
        Err(Error::StateMachine("no snapshots here".into()))
    }
}

struct GateNode {
    handle: NodeHandle<Vec<u8>>,
    entered: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

fn gate_node() -> GateNode {
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel();
    let logger = slog::Logger::root(slog::Discard, slog::o!());
    let sm = Gate {
        applied: (0, 0),
        entered: entered_tx,
        release: release_rx,
    };
    let node = raft_node::Node::new(
        raft_node::NodeConfig::new(1),
        MemLog::bootstrap(vec![1]),
        sm,
        &logger,
    )
    .expect("node starts");
    let micros = AtomicU64::new(1_000_000);
    let handle = raft_node::runner::spawn(
        node,
        single_node::NoNetwork,
        move || micros.fetch_add(1, Ordering::Relaxed),
        RunnerConfig {
            tick: Duration::from_millis(5),
            queue: 10_000,
            on_turn: None,
        },
    );
    single_node::wait_for_leader(&handle, Duration::from_secs(10));
    GateNode {
        handle,
        entered,
        release,
    }
}

type ProposeReply = std::sync::mpsc::Receiver<Result<raft_node::Committed<Vec<u8>>, Error>>;

fn propose_via(sender: &raft_node::runner::NodeSender<Vec<u8>>, command: &[u8]) -> ProposeReply {
    let (tx, rx) = std::sync::mpsc::channel();
    sender.send(raft_node::Command::Propose {
        command: command.to_vec(),
        deadline: std::time::Instant::now() + Duration::from_secs(10),
        reply: Box::new(move |r| drop(tx.send(r))),
    });
    rx
}

/// Issue 9 item 13: a command still in the loop's queue when the loop stops never reached raft; its reply
/// must say so (`Stopped`: not applied, HTTP 503), not vanish (which the caller must read as "unknown", 504).
#[test]
fn commands_queued_behind_shutdown_are_answered_stopped_not_dropped() {
    let gate = gate_node();
    let sender = gate.handle.sender();
    let blocked = propose_via(&sender, b"block");
    gate.entered
        .recv_timeout(Duration::from_secs(10))
        .expect("the loop applies the blocking command");
    // The loop is busy: a shutdown and then more commands queue up behind it.
    sender.input(raft_node::runner::Input::Shutdown);
    let behind: Vec<_> = (0..20u32)
        .map(|i| propose_via(&sender, &i.to_be_bytes()))
        .collect();
    gate.release.send(()).expect("release");
    gate.handle.shutdown().expect("clean stop");
    assert!(
        blocked
            .recv_timeout(Duration::from_secs(5))
            .expect("a reply")
            .is_ok(),
        "the command applied before the shutdown is acknowledged"
    );
    for (i, rx) in behind.into_iter().enumerate() {
        let got = rx.recv_timeout(Duration::from_secs(5));
        assert!(
            matches!(got, Ok(Err(Error::Stopped))),
            "command {i} queued behind the shutdown: expected Stopped (never proposed), got {got:?}"
        );
    }
}

/// Issue 9 item 8: a loop that dies on its own answers every waiting request, refuses later ones as
/// `Stopped`, and says how it ended (so the process can stop instead of serving on as a zombie).
#[test]
fn a_loop_that_dies_answers_everyone_and_reports_how_it_ended() {
    let gate = gate_node();
    let watch = gate.handle.watch();
    assert_eq!(watch.exit(), None, "running");
    let sender = gate.handle.sender();
    let dying = propose_via(&sender, b"die");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime");
    let exit = runtime
        .block_on(async { tokio::time::timeout(Duration::from_secs(10), watch.ended()).await })
        .expect("the loop ends within 10 s");
    assert!(
        matches!(&exit, raft_node::LoopExit::Failed(why) if why.contains("injected apply failure")),
        "{exit:?}"
    );
    // Committed but never applied here: the outcome is unknown, and it is answered, not dropped.
    let got = dying.recv_timeout(Duration::from_secs(5));
    assert!(matches!(got, Ok(Err(Error::ShuttingDown))), "{got:?}");
    let later = propose_via(&sender, b"after").recv_timeout(Duration::from_secs(5));
    assert!(matches!(later, Ok(Err(Error::Stopped))), "{later:?}");
    let stopped = gate.handle.shutdown();
    assert!(
        matches!(&stopped, Err(Error::StateMachine(e)) if e.to_string().contains("injected")),
        "{stopped:?}"
    );
}
