//! Crash during snapshot install: a child process installs two different snapshots alternately, forever;
//! the parent SIGKILLs it at varying moments (including mid-install) and reopens the store. The state must
//! be exactly one of the snapshots (or the initial state), never a mixture, and `verify()` must pass:
//! an interrupted switch is finished by `open`.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use engine::{Engine, EngineConfig, ManualClock, Op};

const CHILD_ENV: &str = "KVS_RAFT_SNAPSHOT_CHILD_DIR";
const TEST_NAME: &str = "kill_9_during_snapshot_install_leaves_one_whole_snapshot";
const T0: u64 = 1_700_000_000_000_000;

fn config() -> EngineConfig {
    EngineConfig::tiny(Arc::new(ManualClock::new(T0)))
}

/// Build a snapshot stream of a store holding `n` keys with value `tag`, and its content hash.
fn make_snapshot(n: usize, tag: &str) -> (Vec<Vec<u8>>, [u8; 32]) {
    let dir = tempfile::TempDir::new().unwrap();
    let engine = Engine::open(dir.path(), config()).unwrap();
    for chunk in 0..(n / 500) {
        let ops: Vec<Op> = (0..500)
            .map(|i| Op::put(format!("p{}/k{chunk}-{i}", i % 13), tag))
            .collect();
        engine.apply(chunk as u64 + 1, T0, &ops, false).unwrap();
    }
    let mut chunks = Vec::new();
    let meta = engine
        .write_snapshot(&mut |c| {
            chunks.push(c);
            Ok(())
        })
        .unwrap();
    (chunks, meta.sha256)
}

fn write_stream(path: &Path, chunks: &[Vec<u8>]) {
    let mut f = std::fs::File::create(path).unwrap();
    for c in chunks {
        f.write_all(&(c.len() as u64).to_be_bytes()).unwrap();
        f.write_all(c).unwrap();
    }
}

fn read_stream(path: &Path) -> Vec<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    let mut out = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let len = u64::from_be_bytes(rest[..8].try_into().unwrap()) as usize;
        out.push(rest[8..8 + len].to_vec());
        rest = &rest[8 + len..];
    }
    out
}

fn child(dir: &Path) -> ! {
    let streams = [
        read_stream(&dir.join("a.stream")),
        read_stream(&dir.join("b.stream")),
    ];
    let engine = Engine::open(&dir.join("store"), config()).expect("child open");
    println!();
    for round in 0.. {
        engine
            .install_snapshot(&mut streams[round % 2].clone().into_iter())
            .expect("install");
        println!("installed {round}");
    }
    unreachable!()
}

#[test]
fn kill_9_during_snapshot_install_leaves_one_whole_snapshot() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(Path::new(&dir));
    }
    let dir = tempfile::TempDir::new().unwrap();
    let (a, hash_a) = make_snapshot(20_000, "a");
    let (b, hash_b) = make_snapshot(12_000, "b");
    assert_ne!(hash_a, hash_b);
    write_stream(&dir.path().join("a.stream"), &a);
    write_stream(&dir.path().join("b.stream"), &b);
    let initial = Engine::open(&dir.path().join("store"), config())
        .unwrap()
        .verify()
        .unwrap()
        .content_sha256;

    let mut seen = std::collections::BTreeSet::new();
    // Kill after a varying number of completed installs plus a varying delay, so kills land inside installs.
    for (round, (installs, delay_ms)) in [
        (1u32, 0u64),
        (2, 3),
        (1, 7),
        (3, 1),
        (2, 12),
        (1, 20),
        (4, 5),
        (2, 0),
    ]
    .into_iter()
    .enumerate()
    {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([TEST_NAME, "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut done = 0;
        while done < installs {
            match lines.next() {
                Some(Ok(line)) if line.starts_with("installed ") => done += 1,
                Some(Ok(_)) => {}
                other => panic!("round {round}: child stopped early: {other:?}"),
            }
        }
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();

        let engine =
            Engine::open(&dir.path().join("store"), config()).expect("reopen after kill -9");
        let report = engine.verify().expect("verify after kill -9");
        let which = if report.content_sha256 == hash_a {
            "a"
        } else if report.content_sha256 == hash_b {
            "b"
        } else {
            assert_eq!(
                report.content_sha256, initial,
                "round {round}: state is neither snapshot"
            );
            "initial"
        };
        assert!(
            !dir.path().join("store/snapshot-staging.sst").exists(),
            "staging file left behind"
        );
        eprintln!(
            "round {round}: killed after {installs} installs + {delay_ms} ms → state {which}"
        );
        seen.insert(which);
    }
    assert!(
        seen.contains("a") || seen.contains("b"),
        "no install ever completed"
    );
}
