//! The systemd deployment (issue 13 item 3): the unit files in `systemd/` verify clean and rate an
//! exposure of at most 2.0 with `systemd-analyze`, the example configuration starts a node, and the
//! notify protocol driven for real — `kvs-raft serve` pointed at a test socket with `NOTIFY_SOCKET`:
//! `READY=1` only once `/readyz` is 200, `WATCHDOG=1` every half period from a turning loop, `STOPPING=1`
//! on SIGTERM. (That no `WATCHDOG=1` is sent while the loop is stalled needs a failpoint:
//! `tests/failpoints.rs`.)

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::http::Http;
use common::notify::NotifySocket;
use common::proc::Cluster;

const START: Duration = Duration::from_secs(20);
const EXPOSURE_LIMIT: f64 = 2.0;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn systemd_analyze(args: &[&str]) -> (bool, String) {
    let out = Command::new("systemd-analyze")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "run systemd-analyze ({e}): scripts/install-deps.sh installs the systemd package"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The shipped units, copied into `dir` with `ExecStart`'s `/usr/bin/kvs-raft` (where the .deb puts it)
/// replaced by the binary under test — `verify` checks that the command exists. The template is
/// instantiated as `kvs-raft@node1.service`.
fn units_in(dir: &Path) -> Vec<PathBuf> {
    let binary = env!("CARGO_BIN_EXE_kvs-raft");
    [
        ("kvs-raft.service", "kvs-raft.service"),
        ("kvs-raft@.service", "kvs-raft@node1.service"),
    ]
    .iter()
    .map(|(file, name)| {
        let text = std::fs::read_to_string(repo(&format!("systemd/{file}")))
            .unwrap_or_else(|e| panic!("read systemd/{file}: {e}"));
        assert!(
            text.contains("ExecStart=/usr/bin/kvs-raft serve"),
            "{file}: ExecStart does not run /usr/bin/kvs-raft serve"
        );
        let path = dir.join(name);
        std::fs::write(&path, text.replace("/usr/bin/kvs-raft", binary)).expect("write unit");
        path
    })
    .collect()
}

#[test]
fn units_verify_clean_and_expose_at_most_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    for unit in units_in(dir.path()) {
        let unit = unit.to_str().expect("utf-8 path");
        let (ok, text) = systemd_analyze(&["verify", unit]);
        println!("systemd-analyze verify {unit}: ok={ok} output={text:?}");
        assert!(ok && text.trim().is_empty(), "verify {unit}:\n{text}");

        let (_, text) = systemd_analyze(&["security", "--offline=true", unit]);
        let exposure = text
            .lines()
            .find_map(|l| {
                let rest = l.split("Overall exposure level for ").nth(1)?;
                rest.split(": ")
                    .nth(1)?
                    .split_whitespace()
                    .next()?
                    .parse::<f64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no exposure level in:\n{text}"));
        println!("systemd-analyze security {unit}: exposure {exposure}");
        assert!(
            exposure <= EXPOSURE_LIMIT,
            "{unit}: exposure {exposure} > {EXPOSURE_LIMIT}:\n{text}"
        );
    }
}

/// The unit's own checks, read from the file: `Type=notify` with a watchdog, and the hardening the
/// issue names (the exposure above is what they add up to).
#[test]
fn unit_declares_notify_watchdog_and_hardening() {
    let text = std::fs::read_to_string(repo("systemd/kvs-raft.service")).expect("read unit");
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "StateDirectory=kvs-raft",
        "ConfigurationDirectory=kvs-raft",
        "LimitNOFILE=",
        "MemoryMax=",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
        "RestrictAddressFamilies=",
        "SystemCallFilter=@system-service",
        "User=kvs-raft",
    ] {
        assert!(
            text.lines().any(|l| format!("{l}\n").starts_with(line)),
            "kvs-raft.service lacks {line:?}"
        );
    }
}

/// `serve` on the shipped example configuration (the unit's command line, with test ports and data
/// dir) becomes ready and says so; SIGTERM makes it say STOPPING=1 and exit 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_config_serves_and_notifies_ready_then_stopping() {
    let dir = tempfile::tempdir().expect("tempdir");
    let notify = NotifySocket::bind(dir.path());
    let client = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let peer = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
    let (client_addr, peer_addr) = (client.local_addr().unwrap(), peer.local_addr().unwrap());
    drop((client, peer));
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvs-raft"))
        .arg("serve")
        .arg("--config")
        .arg(repo("systemd/kvs-raft.toml"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .args(["--listen-client", &client_addr.to_string()])
        .args(["--listen-peer", &peer_addr.to_string()])
        .env_clear()
        .envs(notify.env(None))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn serve");
    let ready = notify.wait_for("READY=1", START).await;
    let http = Http::new(Duration::from_secs(5));
    let readyz = http.get(client_addr, "/readyz").await.map(|r| r.status);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let ready = ready.expect("no READY=1 from a single node on the example configuration");
    println!(
        "example config: READY=1 after {:?}; /readyz then: {readyz:?}",
        ready - started
    );
    assert_eq!(
        readyz.ok(),
        Some(200),
        "READY=1 was sent before /readyz is 200"
    );
    let stopping = notify.wait_for("STOPPING=1", START).await;
    assert!(stopping.is_some(), "no STOPPING=1 after SIGTERM");
    let status = child.wait().expect("wait");
    assert!(status.success(), "serve exited with {status} after SIGTERM");
}

/// Node 1 of a three-node site, alone: it serves HTTP and its loop turns (watchdog pings), but it has no
/// leader, so no READY=1 — a unit ordered after it would otherwise start against a site that cannot
/// write. Node 2 comes: a leader is elected and READY=1 follows, with /readyz 200 at that moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_only_once_the_site_serves_and_the_watchdog_is_fed_meanwhile() {
    let name = "notify-site";
    let watchdog = Duration::from_secs(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let notify = NotifySocket::bind(dir.path());
    let mut cluster = Cluster::unstarted(name, &format!("proc-{name}"), &[1, 2, 3]);
    cluster.nodes.get_mut(&1).expect("node 1").env = notify.env(Some(watchdog));
    cluster.spawn(1);
    let http = Http::new(Duration::from_secs(5));
    cluster.wait_serving(&http, &[1], START).await;
    // Show that READY=1 does not come: give it well over an election timeout (240–480 ms).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let readyz = http.get(cluster.addr(1), "/readyz").await.map(|r| r.status);
    let notes = notify.notes();
    println!(
        "[{name}] node 1 alone for 4 s: /readyz {readyz:?}; notes: {} WATCHDOG=1, statuses {:?}",
        notify.times("WATCHDOG=1").len(),
        notes
            .iter()
            .filter(|n| n.line.starts_with("STATUS="))
            .map(|n| n.line.as_str())
            .collect::<Vec<_>>()
    );
    assert_eq!(readyz.ok(), Some(503), "node 1 alone should not be ready");
    assert!(
        notify.times("READY=1").is_empty(),
        "READY=1 sent by a node without a leader"
    );
    assert!(
        notes.iter().any(|n| n.line.starts_with("STATUS=starting")),
        "no STATUS= saying what the node waits for: {notes:?}"
    );
    // The loop turns without a leader: the watchdog is fed (every 500 ms: 8 in 4 s).
    assert!(
        notify.times("WATCHDOG=1").len() >= 6,
        "watchdog not fed while waiting: {notes:?}"
    );

    cluster.spawn(2);
    let ready = notify.wait_for("READY=1", START).await;
    let readyz = http.get(cluster.addr(1), "/readyz").await.map(|r| r.status);
    assert!(ready.is_some(), "no READY=1 once node 2 joined");
    println!("[{name}] node 2 started: READY=1 on node 1; /readyz then {readyz:?}");
    assert_eq!(
        readyz.ok(),
        Some(200),
        "READY=1 sent while /readyz is not 200"
    );

    // Periodic pings, none more than a period apart while the loop runs.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pings = notify.times("WATCHDOG=1");
    let longest = pings
        .windows(2)
        .map(|w| w[1] - w[0])
        .max()
        .unwrap_or_default();
    println!(
        "[{name}] {} WATCHDOG=1 in all; longest gap {longest:?} (period {watchdog:?})",
        pings.len()
    );
    assert!(
        longest < watchdog,
        "a gap of {longest:?} between pings, over the {watchdog:?} period"
    );

    cluster.sigterm(1);
    assert!(
        notify.wait_for("STOPPING=1", START).await.is_some(),
        "no STOPPING=1 after SIGTERM"
    );
    let status = cluster.wait_exit(1, START).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "node 1 after SIGTERM: {status:?}"
    );
}
