//! Durability under `kill -9`: a child process applies synced entries in a loop and reports each one it
//! got acknowledged; the parent SIGKILLs it at a random moment, reopens the store and checks that every
//! acknowledged entry is there, the applied index matches the data, and counters are exact.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use engine::{Clock, Engine, EngineConfig, Op, SystemClock};

const CHILD_ENV: &str = "KVS_RAFT_CRASH_CHILD_DIR";
const TEST_NAME: &str = "kill_9_during_synced_applies_loses_nothing_acknowledged";

fn ops_for(index: u64) -> Vec<Op> {
    let mut ops = vec![
        Op::incr(b"ctr", 1),
        Op::put(format!("k/{index}"), index.to_string()),
        Op::incr(b"p/score", i64::try_from(index).unwrap()),
    ];
    if index.is_multiple_of(7) {
        ops.push(Op::checkpoint(b"q", format!("cp{index}"), vec![]));
    }
    ops
}

/// The child: apply entries forever, printing `ack N` after entry N's synced apply returned.
fn child(dir: &Path) -> ! {
    let engine = Engine::open(dir, EngineConfig::tiny(std::sync::Arc::new(SystemClock)))
        .expect("child open");
    let mut applied = engine.applied();
    // libtest has printed "test <name> ... " without a newline: start acks on a line of their own.
    println!();
    loop {
        let index = applied.index + 1;
        let ts = SystemClock.now_micros().max(applied.ts + 1);
        engine
            .apply(index, ts, &ops_for(index), true)
            .expect("child apply");
        println!("ack {index}");
        applied = engine.applied();
    }
}

fn verify(dir: &Path, acked: u64) -> u64 {
    let engine =
        Engine::open(dir, EngineConfig::tiny(std::sync::Arc::new(SystemClock))).expect("reopen");
    engine.verify().expect("verify after kill -9");
    let applied = engine.applied().index;
    assert!(
        applied >= acked,
        "acknowledged entry {acked} lost: applied index is {applied}"
    );
    let get = |key: &str| {
        engine
            .get(key.as_bytes(), u64::MAX)
            .unwrap()
            .map(|v| String::from_utf8(v.value).unwrap())
    };
    // The applied index matches the data exactly: every entry up to it, none after.
    assert_eq!(
        get("ctr"),
        Some(applied.to_string()),
        "counter must equal the applied index"
    );
    assert_eq!(
        get("p/score"),
        Some((applied * (applied + 1) / 2).to_string())
    );
    for i in 1..=applied {
        assert_eq!(get(&format!("k/{i}")), Some(i.to_string()), "entry {i}");
        if i.is_multiple_of(7) {
            assert!(
                engine
                    .crossed(b"q", format!("cp{i}").as_bytes())
                    .unwrap()
                    .is_some(),
                "crossing {i}"
            );
        }
    }
    assert_eq!(get(&format!("k/{}", applied + 1)), None);
    applied
}

#[test]
fn kill_9_during_synced_applies_loses_nothing_acknowledged() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::TempDir::new().unwrap();
    let mut total_acked = 0;
    // Kill after a varying number of acks, so the kill lands at different points of the write path.
    for (round, kill_after) in [37u64, 150, 11, 260, 73].into_iter().enumerate() {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut acked = 0;
        let mut seen = 0;
        for line in BufReader::new(stdout).lines() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("ack ") {
                acked = n.parse().unwrap();
                seen += 1;
                if seen == kill_after {
                    break;
                }
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        assert!(
            seen == kill_after,
            "round {round}: child stopped after {seen} acks"
        );
        let applied = verify(dir.path(), acked);
        eprintln!("round {round}: killed after ack {acked}, recovered applied index {applied}");
        total_acked = acked;
    }
    assert!(total_acked > 500);
}
