//! A `kvs-raft serve` process whose node loop dies (issue 9 item 8), with a failpoint (`--features
//! failpoints`; FAILPOINTS is read by the binary at start): the 41st Raft log persist of node 3 fails, as a
//! full or broken disk would. The process must not stay up as a zombie: it answers what was waiting, stops
//! through the normal shutdown path and exits non-zero (so systemd restarts it). Restarted without the
//! failpoint it rejoins, and every acknowledged write ends up on every node.

#![cfg(feature = "failpoints")]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::http::Http;
use common::proc::Cluster;
use common::{await_leader, await_writes_everywhere};

const START: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_loop_dies_exits_non_zero_and_rejoins_after_a_restart() {
    let name = "loop-dies";
    let victim = 3;
    let mut cluster = Cluster::start_with(name, 3, |node| {
        if node.id == victim {
            node.env.push((
                "FAILPOINTS".into(),
                "node::before_persist=40*off->return".into(),
            ));
        }
    });
    let http = Http::new(Duration::from_secs(10));
    cluster.wait_serving(&http, &[1, 2, 3], START).await;
    let (leader, _) = await_leader(&cluster, &http, &[1, 2, 3], START).await;
    println!("[{name}] node {leader} leads; node {victim} fails its 41st log persist");

    let others: Vec<u64> = cluster
        .ids()
        .into_iter()
        .filter(|&id| id != victim)
        .collect();
    let mut acked = BTreeMap::new();
    let started = Instant::now();
    let mut i = 0usize;
    let status = loop {
        if let Some(status) = cluster.try_exit(victim) {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "[{name}] node {victim} still running after {i} writes in 30 s (its loop died?):\n{}",
            cluster.log_tail(victim, 30)
        );
        let to = others[i % others.len()];
        let key = format!("k{i}");
        let value = format!("v{i}");
        // While a dead leader is replaced, writes may fail (503) or end unknown (504): only what was
        // acknowledged must survive.
        if let Ok(r) = http
            .put(cluster.addr(to), &format!("/v1/kv/{key}"), value.as_bytes())
            .await
        {
            if r.status == 200 {
                acked.insert(key, value);
            }
        }
        i += 1;
    };
    println!(
        "[{name}] node {victim} exited with {status} after {:?} ({i} writes, {} acknowledged)",
        started.elapsed(),
        acked.len()
    );
    assert!(
        !status.success(),
        "[{name}] node {victim} exited with {status}, not a failure:\n{}",
        cluster.log_tail(victim, 30)
    );
    let log = cluster.log_tail(victim, 200);
    assert!(
        log.contains("node loop died"),
        "[{name}] node {victim}'s log does not say why it stopped:\n{log}"
    );

    // Restarted without the failpoint (as systemd would restart it), it rejoins.
    cluster.nodes.get_mut(&victim).expect("victim").env.clear();
    cluster.spawn(victim);
    cluster.wait_serving(&http, &[victim], START).await;
    let ids = cluster.ids();
    let (leader, _) = await_leader(&cluster, &http, &ids, START).await;
    for j in 0..30 {
        let to = ids[j % ids.len()];
        let key = format!("after{j}");
        let value = format!("w{j}");
        let r = http
            .put(cluster.addr(to), &format!("/v1/kv/{key}"), value.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("PUT {key} on node {to}: {e}"));
        assert_eq!(
            r.status, 200,
            "[{name}] PUT {key} on node {to} (leader {leader}): {r}"
        );
        acked.insert(key, value);
    }
    await_writes_everywhere(&cluster, &http, &ids, &acked, Duration::from_secs(30)).await;
    println!(
        "[{name}] after the restart all {} acknowledged writes are on every node",
        acked.len()
    );
}

/// Issue 13: the systemd watchdog is fed by the Raft loop itself. A single node pointed at a test notify
/// socket with a 1 s watchdog; its loop is held once for 6 s by the `runner::stall` failpoint (after
/// 150 turns, about 3 s). While the loop is held no WATCHDOG=1 is sent — though the process, its HTTP
/// server and its timers are fine (`/healthz` answers during the stall), so a timer-based ping would have
/// hidden the wedged loop from systemd — and once the loop turns again the pings resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_watchdog_ping_while_the_loop_is_stalled() {
    let name = "watchdog-stall";
    let watchdog = Duration::from_secs(1);
    let dir = tempfile::tempdir().expect("tempdir");
    let notify = common::notify::NotifySocket::bind(dir.path());
    let mut cluster = Cluster::start_with(name, 1, |node| {
        node.env = notify.env(Some(watchdog));
        node.env.push((
            "FAILPOINTS".into(),
            "runner::stall=150*off->1*sleep(6000)->off".into(),
        ));
    });
    let http = Http::new(Duration::from_secs(10));
    cluster.wait_serving(&http, &[1], START).await;
    assert!(
        notify.wait_for("READY=1", START).await.is_some(),
        "[{name}] no READY=1"
    );
    // Wait for the stall (a gap longer than the period), probing /healthz meanwhile.
    let started = Instant::now();
    let mut healthz_during_gap = Vec::new();
    let gap = loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "[{name}] the pings never stopped: {:?}",
            notify.times("WATCHDOG=1").len()
        );
        let pings = notify.times("WATCHDOG=1");
        if let Some(&last) = pings.last() {
            if last.elapsed() > 2 * watchdog {
                let status = http
                    .get(cluster.addr(1), "/healthz")
                    .await
                    .map(|r| r.status);
                healthz_during_gap.push(status.ok());
            }
        }
        // The stall is over once a ping follows a long gap.
        let long_gap = pings
            .windows(2)
            .map(|w| w[1] - w[0])
            .find(|g| *g > 3 * watchdog);
        if let Some(g) = long_gap {
            break g;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let pings = notify.times("WATCHDOG=1");
    let answered = healthz_during_gap
        .iter()
        .filter(|s| **s == Some(200))
        .count();
    println!(
        "[{name}] {} pings; the loop was held and the longest gap was {gap:?} (period {watchdog:?}); \
         /healthz during the gap: 200 to {answered} of {} probes",
        pings.len(),
        healthz_during_gap.len()
    );
    assert!(
        gap >= Duration::from_millis(5500),
        "[{name}] a 6 s stall left only a {gap:?} gap between pings"
    );
    assert!(
        answered > 0,
        "[{name}] the HTTP server did not answer during the stall: {healthz_during_gap:?}"
    );
    // Pings resume after the stall.
    let before = notify.times("WATCHDOG=1").len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = notify.times("WATCHDOG=1").len();
    assert!(
        after >= before + 2,
        "[{name}] pings did not resume after the stall ({before} -> {after})"
    );
    assert!(cluster.try_exit(1).is_none(), "[{name}] the node exited");
}
