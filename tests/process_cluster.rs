//! Multi-process fault tests (SPEC §2, §3, §5, §9): three `kvs-raft serve` processes on loopback, driven
//! over HTTP, with the leader SIGKILLed, SIGSTOPped or SIGTERMed under concurrent client load. Every
//! client history is checked with `raft_node::linearizability::check`, and after each fault every node
//! must hold every acknowledged write. Default timing: 20 ms ticks, 40 ms heartbeats, 240–480 ms
//! elections.
//!
//! Each test has its own ports and directories, so the tests may run in parallel. On failure the tail
//! of every node's log is printed.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::http::Http;
use common::load::{
    assert_acknowledged_unique_writes_present, assert_linearizable, assert_no_unexpected,
    dump_if_asked, first_ack_after, settle_and_compare, span, summary, Clock, Load, LoadSpec,
};
use common::proc::Cluster;
use common::{await_leader, get_value, json_u64, secs, view};
use serde_json::json;

const START: Duration = Duration::from_secs(20);

/// Start a 3-node cluster and wait until it serves with an agreed leader: (cluster, leader, term).
async fn three_nodes(name: &str, http: &Http) -> (Cluster, u64, u64) {
    let mut cluster = Cluster::start(name, 3);
    cluster.wait_serving(http, &[1, 2, 3], START).await;
    let (leader, term) = await_leader(&cluster, http, &[1, 2, 3], START).await;
    (cluster, leader, term)
}

/// Three nodes under the standard load (6 writers, 3 linearizable readers) for 1.5 s, ready for a fault.
async fn three_nodes_under_load(name: &str, http: &Http) -> (Cluster, u64, u64, Clock, Load) {
    let (cluster, leader, term) = three_nodes(name, http).await;
    let clock = Clock::new();
    let load = Load::start(
        http,
        clock,
        &LoadSpec {
            writers: 6,
            readers: 3,
            targets: cluster.targets(),
            probes: vec![],
            timeout: Duration::from_secs(3),
        },
    );
    run_for(Duration::from_millis(1500)).await;
    (cluster, leader, term, clock, load)
}

fn others(all: &[u64], but: u64) -> Vec<u64> {
    all.iter().copied().filter(|&id| id != but).collect()
}

/// Let the load run for `d` (sleeping here shows time passing under load; nothing is awaited).
async fn run_for(d: Duration) {
    tokio::time::sleep(d).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_sent_to_followers_succeed_and_are_linearizable_everywhere() {
    let http = Http::new(Duration::from_secs(10));
    let (cluster, leader, _) = three_nodes("followers", &http).await;
    let leader_addr = cluster.addr(leader).to_string();
    let mut written = BTreeMap::new();
    for f in others(&cluster.ids(), leader) {
        for i in 0..5 {
            let key = format!("via-{f}/k{i}");
            let value = format!("v{f}-{i}");
            let r = http
                .put(cluster.addr(f), &format!("/v1/kv/{key}"), value.as_bytes())
                .await
                .unwrap_or_else(|e| panic!("PUT {key} to follower {f}: {e}"));
            assert_eq!(r.status, 200, "PUT {key} to follower {f}: {r}");
            assert_eq!(
                r.header("kvs-forwarded-to").as_deref(),
                Some(leader_addr.as_str()),
                "PUT {key} to follower {f} was not forwarded to the leader {leader}: {r:?}"
            );
            let body = r.json();
            assert!(body["ts"].as_u64().is_some_and(|ts| ts > 0), "{body}");
            assert_eq!(body["epoch"], 0, "{body}");
            written.insert(key, value);
        }
        // An increment through the follower returns the new value.
        let r = http
            .post(cluster.addr(f), &format!("/v1/kv/count-{f}/incr?delta=7"))
            .await
            .unwrap_or_else(|e| panic!("incr through follower {f}: {e}"));
        assert_eq!(r.status, 200, "incr through follower {f}: {r}");
        assert_eq!(r.json()["value"], 7, "incr through follower {f}: {r}");
        written.insert(format!("count-{f}"), "7".to_owned());
    }
    for (key, value) in &written {
        for id in cluster.ids() {
            let got = get_value(&http, cluster.addr(id), key, "?consistency=linearizable")
                .await
                .unwrap_or_else(|e| panic!("linearizable GET {key} on node {id}: {e}"));
            assert_eq!(
                got.as_deref(),
                Some(value.as_str()),
                "linearizable GET {key} on node {id} (leader {leader})"
            );
        }
    }
    println!(
        "[followers] {} writes through followers {:?}, read back linearizably on all 3 nodes",
        written.len(),
        others(&cluster.ids(), leader)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_leader_under_load() {
    let name = "sigkill";
    let http = Http::new(Duration::from_secs(10));
    let (mut cluster, leader, term, clock, load) = three_nodes_under_load(name, &http).await;

    let killed_at = clock.now_us();
    cluster.kill9(leader);
    println!("[{name}] t={killed_at} us: SIGKILL node {leader}");
    let survivors = others(&cluster.ids(), leader);
    let (new_leader, new_term) =
        await_leader(&cluster, &http, &survivors, Duration::from_secs(10)).await;
    let elected_after = clock.now_us() - killed_at;
    run_for(Duration::from_millis(1000)).await;

    // The killed node comes back on its ports and data dir and catches up under load.
    cluster.spawn(leader);
    cluster
        .wait_serving(&http, &[leader], Duration::from_secs(15))
        .await;
    let restarted_at = clock.now_us();
    run_for(Duration::from_millis(1500)).await;
    let recs = load.finish().await;
    dump_if_asked(name, &recs);
    assert_no_unexpected(name, &recs);
    let (resumed, on) = first_ack_after(&recs, killed_at, leader).unwrap_or_else(|| {
        panic!(
            "[{name}] no write was acknowledged by a survivor after the kill; {}",
            summary(&recs)
        )
    });
    println!(
        "[{name}] SIGKILL leader {leader} (term {term}); survivors elected {new_leader} (term {new_term}) \
         within {}; first acknowledged write on a survivor (node {on}) {} after the kill",
        secs(elected_after),
        secs(resumed)
    );
    assert!(
        resumed < 3_000_000,
        "[{name}] writes resumed {} after the kill (limit 3 s)",
        secs(resumed)
    );
    let after_restart = recs
        .iter()
        .filter(|r| r.is_write() && r.is_ok() && r.event.invoke >= restarted_at)
        .count();
    assert!(
        after_restart > 0,
        "[{name}] no write acknowledged after the restart; {}",
        summary(&recs)
    );

    let settled = settle_and_compare(&cluster, &http, clock, &cluster.ids(), &recs).await;
    let checked = assert_acknowledged_unique_writes_present(name, &recs, &settled.truth);
    println!(
        "[{name}] {}; all 3 nodes (restarted node {leader} included) hold the same {} keys; \
         {checked} acknowledged once-written keys present",
        summary(&recs),
        settled.truth.len()
    );
    assert_linearizable(name, &recs, &settled.final_reads);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstop_leader_for_5s() {
    let name = "sigstop";
    let http = Http::new(Duration::from_secs(10));
    let (mut cluster, leader, term) = three_nodes(name, &http).await;
    let clock = Clock::new();
    let load = Load::start(
        &http,
        clock,
        &LoadSpec {
            writers: 6,
            readers: 3,
            targets: cluster.targets(),
            // Linearizable reads sent only to the old leader: the first ones after SIGCONT reach it
            // while it may still believe it leads.
            probes: vec![(leader, cluster.addr(leader)); 2],
            timeout: Duration::from_secs(1),
        },
    );
    run_for(Duration::from_millis(1500)).await;

    let stopped_at = clock.now_us();
    cluster.sigstop(leader);
    println!("[{name}] t={stopped_at} us: SIGSTOP node {leader}");
    let survivors = others(&cluster.ids(), leader);
    let (new_leader, new_term) =
        await_leader(&cluster, &http, &survivors, Duration::from_secs(5)).await;
    let elected_after = clock.now_us() - stopped_at;
    // The fault lasts 5 s.
    let pause =
        Duration::from_secs(5).saturating_sub(Duration::from_micros(clock.now_us() - stopped_at));
    tokio::time::sleep(pause).await;
    let continued_at = clock.now_us();
    cluster.sigcont(leader);
    println!("[{name}] t={continued_at} us: SIGCONT node {leader}");

    // The old leader steps down: its view shows another leader or a higher term.
    let deadline = Instant::now() + Duration::from_secs(5);
    let stepped_down = loop {
        if let Ok(v) = view(&http, cluster.addr(leader)).await {
            if v.leader != Some(leader) || v.term > term {
                break v;
            }
        }
        assert!(
            Instant::now() < deadline,
            "[{name}] old leader {leader} (term {term}) still leads 5 s after SIGCONT"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let stepped_down_after = clock.now_us() - continued_at;
    run_for(Duration::from_millis(2000)).await;
    let recs = load.finish().await;
    dump_if_asked(name, &recs);
    assert_no_unexpected(name, &recs);
    println!(
        "[{name}] SIGSTOP leader {leader} (term {term}) for 5 s; {new_leader} elected (term {new_term}) {} \
         after the stop; after SIGCONT node {leader} sees leader {:?} term {} within {}",
        secs(elected_after),
        stepped_down.leader,
        stepped_down.term,
        secs(stepped_down_after)
    );
    let during = recs
        .iter()
        .filter(|r| r.is_write() && r.is_ok() && r.event.invoke >= stopped_at)
        .filter(|r| r.event.complete.is_some_and(|c| c < continued_at))
        .count();
    assert!(
        during > 0,
        "[{name}] no write acknowledged while the leader was stopped; {}",
        summary(&recs)
    );
    let old_leader_reads = recs
        .iter()
        .filter(|r| {
            !r.is_write() && r.is_ok() && r.node == leader && r.event.invoke >= continued_at
        })
        .count();
    assert!(
        old_leader_reads > 0,
        "[{name}] no linearizable read served through the old leader after SIGCONT; {}",
        summary(&recs)
    );
    println!(
        "[{name}] {during} writes acknowledged during the stop, {old_leader_reads} linearizable reads \
         through the old leader after SIGCONT"
    );

    let settled = settle_and_compare(&cluster, &http, clock, &cluster.ids(), &recs).await;
    let checked = assert_acknowledged_unique_writes_present(name, &recs, &settled.truth);
    println!(
        "[{name}] {}; {checked} acknowledged once-written keys present on all 3 nodes",
        summary(&recs)
    );
    assert_linearizable(name, &recs, &settled.final_reads);
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_micros() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoint_semantics_over_http() {
    let name = "checkpoint";
    let http = Http::new(Duration::from_secs(10));
    let (cluster, leader, _) = three_nodes(name, &http).await;
    let follower = others(&cluster.ids(), leader)[0];
    let key = "player:1/pos";
    let path = format!("/v1/kv/{key}");

    let r = http
        .put(cluster.addr(leader), &path, b"48.85,2.35")
        .await
        .expect("PUT position");
    assert_eq!(r.status, 200, "PUT {key}: {r}");
    let ts1 = json_u64(&r.json(), "ts");
    assert_eq!(r.json()["epoch"], 0, "PUT {key}: {r}");

    let r = http
        .post_json(
            cluster.addr(leader),
            "/v1/entities/player:1/checkpoint",
            &json!({"name": "gate-1", "data": "lap 1"}),
        )
        .await
        .expect("checkpoint");
    assert_eq!(r.status, 200, "checkpoint player:1: {r}");
    let (epoch, ts2) = (json_u64(&r.json(), "epoch"), json_u64(&r.json(), "ts"));
    assert_eq!(epoch, 1, "first checkpoint of player:1: {r}");
    assert!(
        ts2 > ts1,
        "checkpoint ts {ts2} must follow the write's ts {ts1}"
    );

    for id in cluster.ids() {
        let addr = cluster.addr(id);
        let now = get_value(&http, addr, key, "?consistency=linearizable").await;
        assert_eq!(now, Ok(None), "node {id}: {key} after the checkpoint");
        let old = get_value(&http, addr, key, &format!("?at={ts1}")).await;
        assert_eq!(
            old.as_ref().map(|v| v.as_deref()),
            Ok(Some("48.85,2.35")),
            "node {id}: {key} at ts1={ts1} (before the checkpoint at {ts2})"
        );
        let r = http
            .get(addr, &format!("{path}?at={ts1}"))
            .await
            .expect("GET at ts1");
        assert_eq!(r.header_u64("kvs-ts"), Some(ts1), "node {id}: {r:?}");
        assert_eq!(r.header_u64("kvs-epoch"), Some(0), "node {id}: {r:?}");
        let crossed = http
            .get(addr, "/v1/entities/player:1/checkpoints/gate-1")
            .await
            .expect("crossed");
        assert_eq!(crossed.status, 200, "node {id}: crossed gate-1: {crossed}");
        assert_eq!(crossed.json()["epoch"], 1, "node {id}: {crossed}");
        assert_eq!(crossed.json()["ts"], ts2, "node {id}: {crossed}");
    }
    assert!(
        now_micros() < ts1 + 5_000_000,
        "the reads at ts1 took longer than the retention window; the test machine is too slow to tell"
    );

    // Late packet: a write fenced with the old epoch is refused and changes nothing (also when forwarded).
    for id in [leader, follower] {
        let r = http
            .put(cluster.addr(id), &format!("{path}?epoch=0"), b"late")
            .await
            .expect("fenced PUT");
        assert_eq!(r.status, 409, "node {id}: PUT with epoch=0: {r}");
        assert_eq!(r.error_code().as_deref(), Some("stale_epoch"), "{r}");
        assert_eq!(r.json()["error"]["current_epoch"], 1, "{r}");
    }
    for id in cluster.ids() {
        let addr = cluster.addr(id);
        let now = get_value(&http, addr, key, "?consistency=linearizable").await;
        assert_eq!(now, Ok(None), "node {id}: the refused write changed {key}");
        let entity = http
            .get(addr, "/v1/entities/player:1?consistency=linearizable")
            .await
            .expect("entity");
        assert_eq!(entity.status, 200, "{entity}");
        assert_eq!(entity.json()["epoch"], 1, "node {id}: {entity}");
        assert_eq!(entity.json()["items"], json!([]), "node {id}: {entity}");
    }

    // Time passes beyond the 5 s retention window (sleeping here is the point: it shows time passing).
    let past = ts1 + 5_000_000 + 300_000;
    let now = now_micros();
    if now < past {
        tokio::time::sleep(Duration::from_micros(past - now)).await;
    }
    for id in cluster.ids() {
        let r = http
            .get(cluster.addr(id), &format!("{path}?at={ts1}"))
            .await
            .expect("GET at ts1");
        assert_eq!(
            r.status, 410,
            "node {id}: GET at ts1 after the retention window: {r}"
        );
        assert_eq!(r.error_code().as_deref(), Some("version_gone"), "{r}");
        assert_eq!(r.json()["error"]["at"], ts1, "{r}");
    }
    println!(
        "[{name}] write at ts1={ts1}, checkpoint epoch 1 at ts2={ts2} ({} later); 404 now, old value at ts1 \
         within the window, 410 after it, 409 stale_epoch for epoch=0 on leader and follower",
        secs(ts2 - ts1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_leader_under_load() {
    let name = "sigterm";
    let http = Http::new(Duration::from_secs(10));
    let (mut cluster, leader, term, clock, load) = three_nodes_under_load(name, &http).await;

    let term_at = clock.now_us();
    cluster.sigterm(leader);
    println!("[{name}] t={term_at} us: SIGTERM node {leader}");
    let survivors = others(&cluster.ids(), leader);
    let (mut exited, mut moved) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(5);
    while exited.is_none() || moved.is_none() {
        if exited.is_none() {
            if let Some(status) = cluster.try_exit(leader) {
                exited = Some((clock.now_us() - term_at, status));
            }
        }
        if moved.is_none() {
            for &id in &survivors {
                if let Ok(v) = view(&http, cluster.addr(id)).await {
                    if v.leader == Some(id) && v.member(id).is_some_and(|m| m.role == "leader") {
                        moved = Some((clock.now_us() - term_at, id, v.term));
                    }
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "[{name}] 5 s after SIGTERM to leader {leader}: exited {exited:?}, leadership moved {moved:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (exit_after, status) = exited.expect("exited");
    let (moved_after, new_leader, new_term) = moved.expect("moved");
    run_for(Duration::from_millis(1500)).await;
    let recs = load.finish().await;
    dump_if_asked(name, &recs);
    assert_no_unexpected(name, &recs);
    assert!(
        status.success(),
        "[{name}] leader {leader} exited with {status} after SIGTERM"
    );
    let resumed = first_ack_after(&recs, term_at, leader);
    println!(
        "[{name}] SIGTERM leader {leader} (term {term}): exited 0 after {}; node {new_leader} leads (term \
         {new_term}) {} after the signal; first write acknowledged by a survivor {} after it",
        secs(exit_after),
        secs(moved_after),
        resumed.map_or("never".to_owned(), |(us, _)| secs(us))
    );
    assert!(
        exit_after < 5_000_000,
        "[{name}] exit took {}",
        secs(exit_after)
    );
    assert!(
        resumed.is_some(),
        "[{name}] no write acknowledged by a survivor after SIGTERM; {}",
        summary(&recs)
    );
    // A graceful stop costs the survivors' clients nothing: leadership is handed over while the old
    // leader still serves, and a write that meets the hand-over (there, or forwarded there) waits for
    // the new leader. (Writes sent to the stopping node itself end with an answer while its close
    // notice runs; a connection that reaches it in the instant its listener closes is reset, leaving
    // that write's outcome unknown to its client: counted, not asserted.)
    let after: Vec<_> = recs
        .iter()
        .filter(|r| r.is_write() && r.event.invoke >= term_at)
        .collect();
    let failed_on_survivors: Vec<String> = after
        .iter()
        .filter(|r| r.node != leader && !r.is_ok())
        .take(10)
        .map(|r| r.describe())
        .collect();
    let to_stopping = after.iter().filter(|r| r.node == leader).count();
    let unknown_on_stopping = after
        .iter()
        .filter(|r| r.node == leader)
        .filter(|r| matches!(r.event.outcome, testkit::linearizability::Outcome::Unknown))
        .count();
    println!(
        "[{name}] after the signal: {} writes; to survivors: {} not acknowledged; to the stopping node: \
         {to_stopping}, {unknown_on_stopping} with an unknown outcome",
        after.len(),
        failed_on_survivors.len(),
    );
    assert!(
        failed_on_survivors.is_empty(),
        "[{name}] writes sent to survivors failed across a graceful leader stop:\n{}",
        failed_on_survivors.join("\n")
    );

    let settled = settle_and_compare(&cluster, &http, clock, &survivors, &recs).await;
    let checked = assert_acknowledged_unique_writes_present(name, &recs, &settled.truth);
    println!(
        "[{name}] {}; both survivors hold the same {} keys; {checked} acknowledged once-written keys present \
         ({} of load after the signal)",
        summary(&recs),
        settled.truth.len(),
        span(term_at, clock.now_us())
    );
    assert_linearizable(name, &recs, &settled.final_reads);
}

/// The raft log's RocksDB reuses old WAL files (`raft_node::storage` `WAL_FILES_RECYCLED`): a recycled
/// file still holds an earlier log's records behind the new ones, and recovery must stop at the new
/// log's end, neither losing an acknowledged write nor replaying a stale one. A single node takes
/// batches from four writers until its log has gone through several WAL files, is SIGKILLed in the
/// middle of the writes, restarts, and must hold the last acknowledged value of every key (or the value
/// of a write whose answer the kill cut off); twice, the second time after a restart that found old WAL
/// files to reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_while_its_log_reuses_wal_files_keeps_every_acknowledged_write() {
    let name = "walrecycle";
    let http = Http::new(Duration::from_secs(10));
    let mut cluster = Cluster::start(name, 1);
    cluster.wait_serving(&http, &[1], START).await;
    await_leader(&cluster, &http, &[1], START).await;
    let raft_dir = cluster.nodes[&1].data_dir.join("raft");
    let wal_files = || {
        std::fs::read_dir(&raft_dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
                    .count()
            })
            .unwrap_or(0)
    };
    let value = "w".repeat(1024);
    // key → its last acknowledged value; a write whose answer the kill cut off may or may not be there
    // (`unsure`).
    let mut acked: BTreeMap<String, String> = BTreeMap::new();
    let mut unsure: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for round in 0..2 {
        let addr = cluster.addr(1);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let (http, stop, value) = (http.clone(), stop.clone(), value.clone());
                tokio::spawn(async move {
                    let mut done: Vec<(String, String)> = Vec::new();
                    let mut lost: Vec<(String, String)> = Vec::new();
                    let mut i = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        // 20 keys per batch, reused across batches so later values overwrite earlier ones.
                        let stamp = format!("r{round}w{w}b{i}");
                        let ops: Vec<serde_json::Value> = (0..20)
                            .map(|k| json!({"op": "put", "key": format!("w{w}/k{}", (i * 20 + k) % 400), "value": format!("{stamp}:{value}")}))
                            .collect();
                        let keys: Vec<String> = ops.iter().map(|o| o["key"].as_str().unwrap_or_default().to_owned()).collect();
                        match http.post_json(addr, "/v1/batch", &json!({ "ops": ops })).await {
                            Ok(r) if r.status == 200 => done.extend(keys.into_iter().map(|k| (k, format!("{stamp}:{value}")))),
                            _ => {
                                lost.extend(keys.into_iter().map(|k| (k, format!("{stamp}:{value}"))));
                                break;
                            }
                        }
                        i += 1;
                    }
                    (done, lost)
                })
            })
            .collect();
        // Until the log has reused a WAL file (more than one file kept) and a few MiB more were written.
        let began = Instant::now();
        while wal_files() < 2 {
            assert!(
                began.elapsed() < Duration::from_secs(120),
                "[{name}] the raft log never kept more than one WAL file: nothing is recycled"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        cluster.kill9(1);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut n = 0;
        for w in writers {
            let (done, lost) = w.await.expect("writer");
            n += done.len();
            for (k, v) in done {
                unsure.remove(&k);
                acked.insert(k, v);
            }
            for (k, v) in lost {
                unsure.entry(k).or_default().push(v);
            }
        }
        println!(
            "[{name}] round {round}: {n} acknowledged puts, {} WAL files at the kill",
            wal_files()
        );
        cluster.spawn(1);
        cluster.wait_serving(&http, &[1], START).await;
        await_leader(&cluster, &http, &[1], START).await;
        for (k, v) in &acked {
            let got = get_value(&http, cluster.addr(1), k, "")
                .await
                .unwrap_or_else(|e| panic!("[{name}] read {k}: {e}"));
            let ok = got.as_ref() == Some(v)
                || got
                    .as_ref()
                    .is_some_and(|g| unsure.get(k).is_some_and(|u| u.contains(g)));
            assert!(
                ok,
                "[{name}] round {round}: {k} holds {:?} after the restart, not its last acknowledged value {:?}",
                got.map(|g| g[..g.find(':').unwrap_or(g.len())].to_owned()),
                &v[..v.find(':').unwrap_or(v.len())]
            );
        }
        // What the lost answers wrote is now known: the value read is the key's value from here on.
        for (k, _) in std::mem::take(&mut unsure) {
            if let Ok(Some(v)) = get_value(&http, cluster.addr(1), &k, "").await {
                acked.insert(k, v);
            }
        }
    }
}
