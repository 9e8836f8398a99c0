//! Replication over real sockets and real RocksDB, in one process (SPEC §5): elections, 10,000 writes,
//! leader loss, a wiped follower re-joining by snapshot, membership changes, leader transfer, and a
//! partitioned old leader. Every test checks that no acknowledged write is lost. Default timing
//! (20 ms ticks, heartbeats every 40 ms, elections after 240–480 ms) unless a test says otherwise.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::replicas::{bind, config, soon, Site};
use engine::{Op, OpOutcome};
use kvs_raft::node::{Replica, ReplicaConfig};
use raft_node::membership::Refusal;
use raft_node::{Error, Member, MembershipChange, Role};

type Cluster = Site;

async fn cluster(n: u64, compact: u64) -> Cluster {
    cluster_with(n, compact, |_| {}).await
}

async fn cluster_with(n: u64, compact: u64, tune: impl Fn(&mut ReplicaConfig)) -> Cluster {
    Site::start(n, "loopback", |cfg| {
        cfg.group.node.compact_log_entries = compact;
        tune(cfg);
    })
    .await
}

fn put(key: &str, value: &str) -> Op {
    Op::put(key, value)
}

async fn write(site: &Replica, key: &str, value: &str) -> Result<u64, Error> {
    let committed = site.propose(&[put(key, value)], soon()).await?;
    match committed.output.as_slice() {
        [Ok(OpOutcome::Written { .. })] => Ok(committed.ts),
        other => panic!("unexpected put result {other:?}"),
    }
}

/// Every acknowledged (key, value) is readable on every running node.
async fn assert_present(cluster: &Cluster, acked: &BTreeMap<String, String>) {
    let leader = cluster.replica(cluster.leader(Duration::from_secs(10)).await);
    let index = leader
        .read_index(soon())
        .await
        .expect("read index on the leader");
    cluster.converge(index, Duration::from_secs(20)).await;
    for site in cluster.running() {
        for (k, v) in acked {
            let got = site
                .engine()
                .get(k.as_bytes(), u64::MAX)
                .expect("read")
                .map(|x| x.value);
            assert_eq!(
                got.as_deref(),
                Some(v.as_bytes()),
                "node {} lost {k}",
                site.id()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_elect_and_replicate_10000_writes() {
    let cluster = cluster(3, 10_000).await;
    let leader = cluster.replica(cluster.leader(Duration::from_secs(10)).await);
    let mut tasks = Vec::new();
    for w in 0..64u32 {
        let leader = leader.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in (w..10_000).step_by(64) {
                let key = format!("k{i:05}");
                write(&leader, &key, &format!("v{i}"))
                    .await
                    .expect("write on a healthy leader");
                acked.push(key);
            }
            acked
        }));
    }
    let mut count = 0;
    for t in tasks {
        count += t.await.expect("writer").len();
    }
    assert_eq!(count, 10_000);
    let index = leader.read_index(soon()).await.expect("read index");
    cluster.converge(index, Duration::from_secs(30)).await;
    for site in cluster.running() {
        let page = site
            .engine()
            .scan(&engine::ScanRequest::prefix(b"k", 20_000, u64::MAX))
            .expect("scan");
        assert_eq!(
            page.items.len(),
            10_000,
            "node {} has every write",
            site.id()
        );
    }
    let status = leader.status(soon()).await.expect("status");
    assert!(
        status.counters.commands_applied >= 10_000,
        "{:?}",
        status.counters
    );
    // Batching over the network: far fewer log writes than commands.
    assert!(
        status.counters.fsync.count < 10_000,
        "{:?}",
        status.counters
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_serves_writes_within_3s_of_losing_the_old_one() {
    let mut cluster = cluster(3, 10_000).await;
    let old = cluster.leader(Duration::from_secs(10)).await;
    let mut acked = BTreeMap::new();
    for i in 0..50 {
        let (k, v) = (format!("before{i}"), format!("v{i}"));
        write(&cluster.replica(old), &k, &v).await.expect("write");
        acked.insert(k, v);
    }
    cluster.stop(old).await;
    let stopped = Instant::now();
    // A linearizable read already waiting on a follower when its leader vanished is asked again of the
    // next leader, rather than hanging until the request deadline (5 s).
    let survivor = cluster.running()[0].clone();
    let read = tokio::spawn(async move {
        let r = survivor.read_index(soon()).await;
        (r, stopped.elapsed())
    });
    // Keep trying writes on the survivors until one is acknowledged.
    let served = loop {
        let mut ok = None;
        for site in cluster.running() {
            if write(&site, "after", "1").await.is_ok() {
                ok = Some(site.id());
                break;
            }
        }
        if let Some(id) = ok {
            break (id, stopped.elapsed());
        }
        assert!(stopped.elapsed() < Duration::from_secs(10), "no new leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!(
        "node {} served a write {:?} after the leader stopped",
        served.0, served.1
    );
    assert!(served.1 < Duration::from_secs(3), "took {:?}", served.1);
    let (read, took) = read.await.expect("join");
    println!("a read waiting across the failover completed after {took:?}");
    assert!(read.is_ok(), "{read:?}");
    assert!(took < Duration::from_secs(4), "the read waited {took:?}");
    acked.insert("after".into(), "1".into());
    assert_present(&cluster, &acked).await;
    // The old leader comes back as a follower and catches up.
    cluster.restart(old).await;
    assert_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_whose_data_dir_was_wiped_rejoins_by_snapshot() {
    let mut cluster = cluster(3, 100).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.replica(leader_id);
    let mut acked = BTreeMap::new();
    for i in 0..600 {
        let (k, v) = (format!("w{i:04}"), format!("v{i}"));
        write(&leader, &k, &v).await.expect("write");
        acked.insert(k, v);
    }
    let status = leader.status(soon()).await.expect("status");
    assert!(
        status.first_index > 1,
        "the leader compacted its log: {status:?}"
    );
    let follower = *cluster
        .members
        .keys()
        .find(|&&id| id != leader_id)
        .expect("follower");
    cluster.stop(follower).await;
    // Wipe: a fresh directory for the same node id and address.
    let fresh = tempfile::tempdir().expect("tempdir");
    {
        let node = cluster.members.get_mut(&follower).expect("node");
        node.cfg.set_data_dir(fresh.path());
        node.dir = Some(fresh);
    }
    for i in 600..700 {
        let (k, v) = (format!("w{i:04}"), format!("v{i}"));
        write(&leader, &k, &v)
            .await
            .expect("write with one node down");
        acked.insert(k, v);
    }
    cluster.restart(follower).await;
    assert_present(&cluster, &acked).await;
    let s = cluster
        .replica(follower)
        .status(soon())
        .await
        .expect("status");
    assert!(
        s.counters.snapshots_installed >= 1,
        "re-joined by snapshot: {s:?}"
    );
    let t = leader.transport_counters();
    assert!(t.snapshots_sent >= 1, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_is_added_caught_up_promoted_and_an_old_node_removed() {
    let mut cluster = cluster(3, 200).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.replica(leader_id);
    let mut acked = BTreeMap::new();
    for i in 0..500 {
        let (k, v) = (format!("m{i:04}"), format!("v{i}"));
        write(&leader, &k, &v).await.expect("write");
        acked.insert(k, v);
    }
    // Node 4 starts empty, knowing the members, and is added as a learner.
    let (listener, addr) = bind().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(4, "loopback", dir.path(), &BTreeMap::new());
    cfg.group.node.compact_log_entries = 200;
    cfg.group.advertise_peer = addr.clone();
    cfg.group.known_peers = cluster
        .members
        .iter()
        .map(|(&id, n)| (id, n.addr.clone()))
        .collect();
    cluster.add(cfg, listener, addr.clone(), dir).await;
    let member4 = Member {
        id: 4,
        peer_addr: addr,
        client_addr: String::new(),
    };
    let cs = leader
        .change_membership(MembershipChange::AddLearner(member4.clone()), soon())
        .await
        .expect("add learner");
    assert_eq!(cs.learners, vec![4]);
    let index = leader.read_index(soon()).await.expect("read index");
    cluster.converge(index, Duration::from_secs(20)).await;
    // The learner has applied everything, but the leader counts it caught up only once its append
    // response arrived: `learner_not_caught_up` is a refusal to retry, as an operator would.
    let deadline = Instant::now() + Duration::from_secs(10);
    let cs = loop {
        match leader
            .change_membership(MembershipChange::Promote(4), soon())
            .await
        {
            Err(Error::Membership(Refusal::NotCaughtUp { .. })) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            other => break other.expect("promote"),
        }
    };
    assert!(cs.voters.contains(&4) && cs.learners.is_empty(), "{cs:?}");
    // Remove a follower that is not the leader.
    let gone = *cluster
        .members
        .keys()
        .find(|&&id| id != leader_id && id != 4)
        .expect("a follower");
    let cs = leader
        .change_membership(MembershipChange::Remove(gone), soon())
        .await
        .expect("remove");
    assert!(!cs.voters.contains(&gone) && cs.voters.len() == 3, "{cs:?}");
    cluster.stop(gone).await;
    // Removed ids are never reused.
    let again = leader
        .change_membership(
            MembershipChange::AddLearner(Member {
                id: gone,
                peer_addr: "127.0.0.1:1".into(),
                client_addr: String::new(),
            }),
            soon(),
        )
        .await;
    assert!(
        matches!(again, Err(Error::Membership(Refusal::IdRemoved(id))) if id == gone),
        "{again:?}"
    );
    for i in 500..600 {
        let (k, v) = (format!("m{i:04}"), format!("v{i}"));
        write(&leader, &k, &v)
            .await
            .expect("write after the changes");
        acked.insert(k, v);
    }
    assert_present(&cluster, &acked).await;
    let s = cluster
        .replica(4)
        .status(soon())
        .await
        .expect("status of node 4");
    assert!(s.membership.removed.contains(&gone), "{s:?}");
    assert!(s.voters.contains(&4), "{s:?}");
    // The leader's log was compacted before node 4 existed: it caught up from a snapshot.
    assert!(s.counters.snapshots_installed >= 1, "{s:?}");
    // Node 4 learned every member's addresses from the log and the snapshot.
    assert!(s.membership.members.keys().all(|id| *id != gone), "{s:?}");
    assert!(s.membership.members.contains_key(&leader_id), "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_transfer_moves_leadership_within_1s() {
    let cluster = cluster(3, 10_000).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.replica(leader_id);
    write(&leader, "t", "1").await.expect("write");
    let target = *cluster
        .members
        .keys()
        .find(|&&id| id != leader_id)
        .expect("follower");
    let started = Instant::now();
    leader
        .transfer_leader(target, soon())
        .await
        .expect("transfer accepted");
    loop {
        let s = cluster
            .replica(target)
            .status(soon())
            .await
            .expect("status");
        if s.role == Role::Leader {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "no transfer: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    println!("leadership moved to {target} in {took:?}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
    write(&cluster.replica(target), "t", "2")
        .await
        .expect("write on the new leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_old_leader_cannot_write_or_read_and_steps_down_when_healed() {
    let cluster = cluster(3, 10_000).await;
    let old_id = cluster.leader(Duration::from_secs(10)).await;
    let old = cluster.replica(old_id);
    let mut acked = BTreeMap::new();
    write(&old, "p", "before").await.expect("write");
    acked.insert("p".to_string(), "before".to_string());
    // Cut every link of the old leader: it neither accepts nor sends peer traffic.
    old.isolate();
    let write_on_old = {
        let old = old.clone();
        tokio::spawn(async move { write(&old, "p", "lost").await })
    };
    let read_on_old = {
        let old = old.clone();
        tokio::spawn(async move { old.read_index(soon()).await })
    };
    // The majority elects a new leader and accepts writes.
    let majority: Vec<Arc<Replica>> = cluster
        .running()
        .into_iter()
        .filter(|s| s.id() != old_id)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let new_id = loop {
        let mut found = None;
        for s in &majority {
            if let Ok(st) = s.status(soon()).await {
                if st.role == Role::Leader {
                    found = Some(st.id);
                }
            }
        }
        if let Some(id) = found {
            break id;
        }
        assert!(Instant::now() < deadline, "the majority elected no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    write(&cluster.replica(new_id), "p", "after")
        .await
        .expect("write on the new leader");
    acked.insert("p".to_string(), "after".to_string());
    let w = write_on_old.await.expect("join");
    assert!(
        w.is_err(),
        "an isolated old leader acknowledged a write: {w:?}"
    );
    let r = read_on_old.await.expect("join");
    assert!(
        r.is_err(),
        "an isolated old leader served a linearizable read: {r:?}"
    );
    // Heal: the old leader rejoins as a follower of the newer term and catches up.
    old.heal();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = old.status(soon()).await.expect("status");
        if s.role == Role::Follower && s.leader == Some(new_id) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "old leader did not step down: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_replica_reclaims_what_the_retention_window_no_longer_covers() {
    let cluster = cluster_with(3, 10_000, |cfg| {
        cfg.engine.retention = Duration::from_millis(300);
    })
    .await;
    let leader = cluster.replica(cluster.leader(Duration::from_secs(10)).await);
    for i in 0..50 {
        write(&leader, "player:7/pos", &format!("{i}"))
            .await
            .expect("write");
    }
    let checkpoint = leader
        .propose(&[Op::checkpoint("player:7", "cp", Vec::new())], soon())
        .await
        .expect("checkpoint");
    let cp_ts = checkpoint.ts;
    assert!(matches!(
        checkpoint.output.as_slice(),
        [Ok(OpOutcome::Checkpointed { epoch: 1, .. })]
    ));
    // GC measures the window on the log's clock (the applied ts): a write after the window moves it on.
    tokio::time::sleep(Duration::from_millis(400)).await;
    write(&leader, "later", "x").await.expect("write");
    let index = leader.read_index(soon()).await.expect("read index");
    cluster.converge(index, Duration::from_secs(10)).await;
    // Nobody calls GC by hand: each replica's background task reclaims the old epoch once the window passed.
    let deadline = Instant::now() + Duration::from_secs(15);
    for site in cluster.running() {
        loop {
            let stats = site.engine().stats();
            if stats.gc_epochs_reclaimed >= 1 && stats.gc_safepoint > cp_ts {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "node {} did not reclaim: {stats:?}",
                site.id()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restarted_follower_resumes_from_its_state_and_the_compacted_log() {
    let mut cluster = cluster(3, 100).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.replica(leader_id);
    let follower = *cluster
        .members
        .keys()
        .find(|&&id| id != leader_id)
        .expect("follower");
    let mut acked = BTreeMap::new();
    for i in 0..400 {
        let (k, v) = (format!("r{i:04}"), format!("v{i}"));
        write(&leader, &k, &v).await.expect("write");
        acked.insert(k, v);
    }
    let index = leader.read_index(soon()).await.expect("read index");
    cluster.converge(index, Duration::from_secs(20)).await;
    let before = cluster
        .replica(follower)
        .status(soon())
        .await
        .expect("status");
    assert!(
        before.first_index > 1,
        "the follower compacted its own log: {before:?}"
    );
    cluster.stop(follower).await;
    for i in 400..450 {
        let (k, v) = (format!("r{i:04}"), format!("v{i}"));
        write(&leader, &k, &v)
            .await
            .expect("write with the follower down");
        acked.insert(k, v);
    }
    cluster.restart(follower).await;
    // It restarts from its own state (applied before the stop) and its log after the compaction point.
    let restarted = cluster.replica(follower).engine().applied().index;
    assert!(
        restarted >= before.applied,
        "restarted at {restarted}, had {before:?}"
    );
    assert_present(&cluster, &acked).await;
}

/// Issue 9 item 12: thousands of concurrent linearizable reads (on the leader and on a follower, with
/// writes going on) all answer, and no peer message is dropped for a full queue: reads that reach a node
/// together share one ReadIndex round instead of one heartbeat broadcast each.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thousands_of_concurrent_reads_answer_without_overflowing_peer_queues() {
    const READS: usize = 20_000;
    let cluster = cluster(3, 10_000).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.replica(leader_id);
    let follower = cluster
        .running()
        .into_iter()
        .find(|s| s.id() != leader_id)
        .expect("a follower");
    write(&leader, "r", "0").await.expect("write");
    // Every node has applied it: the peer links are up both ways before the burst (a brand-new site's
    // links may still be connecting right after the first election, and messages queued meanwhile are
    // not what this test measures).
    let index = leader.read_index(soon()).await.expect("read index");
    cluster.converge(index, Duration::from_secs(20)).await;
    let dropped = |c: &Cluster| -> u64 {
        c.running()
            .iter()
            .map(|s| s.transport_counters().messages_dropped_queue_full)
            .sum()
    };
    let dropped_before = dropped(&cluster);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut reads = Vec::with_capacity(READS);
    for i in 0..READS {
        let site = if i % 2 == 0 {
            leader.clone()
        } else {
            follower.clone()
        };
        reads.push(tokio::spawn(async move { site.read_index(deadline).await }));
    }
    let writer = {
        let leader = leader.clone();
        tokio::spawn(async move {
            for i in 0..200 {
                write(&leader, "r", &i.to_string()).await?;
            }
            Ok::<_, Error>(())
        })
    };
    let mut failed = Vec::new();
    for r in reads {
        if let Err(e) = r.await.expect("join") {
            failed.push(e);
        }
    }
    writer
        .await
        .expect("join")
        .expect("writes during the reads");
    assert!(
        failed.is_empty(),
        "{} of {READS} reads failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(
        dropped(&cluster) - dropped_before,
        0,
        "peer messages dropped for a full queue while serving {READS} reads"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_4mib_batches_keep_committing_on_three_nodes() {
    let cluster = cluster(3, 10_000).await;
    let first = cluster.leader(Duration::from_secs(10)).await;
    let replicas: Arc<BTreeMap<u64, Arc<Replica>>> =
        Arc::new((1..=3).map(|id| (id, cluster.replica(id))).collect());
    // Each command is a batch of four 1 MiB values: packed together without a byte limit, a handful of
    // them make one entry larger than the transport's 16 MiB frame, which no follower ever receives
    // (before the limit: every proposal timed out). Under a loaded debug build, followers busy persisting
    // tens of MiB can miss an election timeout and leadership can move; an answer that says "definitely
    // not applied" (`NotLeader`, `Dropped`) is then re-sent to the leader it names, as a client would,
    // within the same deadline. Every batch must still commit by then.
    let value = "v".repeat(1 << 20);
    let mut acked = BTreeMap::new();
    for round in 0..3 {
        let mut tasks = Vec::new();
        for w in 0..8 {
            let replicas = Arc::clone(&replicas);
            let value = value.clone();
            tasks.push(tokio::spawn(async move {
                let keys: Vec<String> = (0..4).map(|i| format!("r{round}/w{w}/{i}")).collect();
                let ops: Vec<Op> = keys.iter().map(|k| put(k, &value)).collect();
                let deadline = Instant::now() + Duration::from_secs(10);
                let mut target = first;
                let result = loop {
                    match replicas[&target].propose(&ops, deadline).await {
                        Err(Error::NotLeader { leader_hint }) if Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            target = leader_hint
                                .filter(|id| replicas.contains_key(id))
                                .unwrap_or(target);
                        }
                        Err(Error::Dropped) if Instant::now() < deadline => {}
                        other => break other,
                    }
                };
                (keys, result.map(|c| c.output.len()))
            }));
        }
        for t in tasks {
            let (keys, result) = t.await.expect("writer");
            assert_eq!(result.expect("a 4 MiB batch commits"), 4);
            for k in keys {
                acked.insert(k, value.clone());
            }
        }
    }
    assert_present(&cluster, &acked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_whose_clock_runs_hours_ahead_stamps_commits_near_the_clusters_clock() {
    const HOURS_AHEAD: u64 = 3 * 3600 * 1_000_000;
    let real = raft_node::wall_clock_micros;
    let cluster = cluster_with(3, 10_000, |cfg| {
        if cfg.group.id() == 1 {
            cfg.group.wall_clock = raft_node::WallClock(Arc::new(move || real() + HOURS_AHEAD));
        }
    })
    .await;
    let leader = cluster.leader(Duration::from_secs(10)).await;
    if leader != 1 {
        cluster
            .replica(leader)
            .transfer_leader(1, soon())
            .await
            .expect("transfer to the fast node");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while cluster.leader(Duration::from_secs(10)).await != 1 {
        assert!(Instant::now() < deadline, "node 1 never took over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let fast = cluster.replica(1);
    let max_skew = fast_cfg_skew(&cluster);
    let mut last = 0;
    for i in 0..20 {
        let ts = write(&fast, &format!("k{i}"), "v").await.expect("write");
        let now = real();
        assert!(
            ts <= now + max_skew + 1_000_000,
            "write {i} stamped {} s ahead of the real clock",
            (ts - now) / 1_000_000
        );
        last = ts;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = fast.status(soon()).await.expect("status");
    assert!(status.counters.ts_clamped >= 1, "{:?}", status.counters);
    assert!(
        status.counters.clock_ahead_micros > HOURS_AHEAD / 2,
        "the skew is measured: {:?}",
        status.counters
    );
    // Its GC cannot move the safepoint (which travels in snapshots) past the applied ts either, and the
    // replicas with good clocks serve a read at the last write's ts. (The fast node's own read floor
    // follows its own clock: it refuses `at=` reads until its clock is fixed.)
    let engine = fast.engine().clone();
    let report = tokio::task::spawn_blocking(move || engine.gc_step(u64::MAX, 100))
        .await
        .expect("join")
        .expect("gc step");
    assert!(
        report.safepoint <= last,
        "safepoint {} > {last}",
        report.safepoint
    );
    let index = fast.read_index(soon()).await.expect("read index");
    cluster.converge(index, Duration::from_secs(10)).await;
    for site in cluster.running().into_iter().filter(|s| s.id() != 1) {
        let got = site
            .engine()
            .get(b"k19", last)
            .expect("read at the last ts");
        assert_eq!(
            got.map(|v| v.value),
            Some(b"v".to_vec()),
            "node {}",
            site.id()
        );
    }
}

/// The allowed clock skew the test site runs with (the default), µs.
fn fast_cfg_skew(cluster: &Cluster) -> u64 {
    let cfg = &cluster.members[&1].cfg;
    u64::try_from(cfg.group.node.max_clock_skew.as_micros()).expect("skew fits")
}

/// The client address each member announces in `a_wait_for_the_next_leader_…`.
fn client_of(id: u64) -> String {
    format!("client-of-{id}:7379")
}

/// What the HTTP layer's forwarding waits on while leadership moves (`Backend::next_leader`, through the
/// Raft loop's leader watch): a follower whose leader is known answers at once; a wait that failed at
/// the leader blocks while that leader stands and wakes once another is elected; a node that has not
/// known a leader since it started does not wait at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_for_the_next_leader_wakes_when_one_is_elected() {
    use kvs_raft::http::backend::Backend;
    use kvs_raft::node::ReplicaBackend;
    let mut cluster = cluster_with(3, 10_000, |cfg| {
        cfg.group.advertise_client = client_of(cfg.group.node.id);
    })
    .await;
    let old = cluster.leader(Duration::from_secs(10)).await;
    let follower = cluster
        .running()
        .into_iter()
        .find(|r| r.id() != old)
        .expect("a follower");
    let backend = ReplicaBackend::new(follower.clone());
    let quick = Instant::now();
    assert_eq!(
        backend.next_leader(None, soon()).await,
        Some(client_of(old))
    );
    assert!(
        quick.elapsed() < Duration::from_millis(500),
        "{:?}",
        quick.elapsed()
    );

    let waiter = {
        let backend = backend.clone();
        tokio::spawn(async move {
            let next = backend.next_leader(Some(&client_of(old)), soon()).await;
            (next, Instant::now())
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !waiter.is_finished(),
        "the wait ended while the leader it failed at still leads"
    );
    cluster.stop(old).await;
    let stopped = Instant::now();
    let (next, woke) = waiter.await.expect("join");
    let new = cluster.leader(Duration::from_secs(10)).await;
    println!(
        "the wait for the next leader ended {:?} after the leader stopped, with {next:?}",
        woke - stopped
    );
    assert_ne!(new, old);
    assert_eq!(next, Some(client_of(new)));
    let view = *follower.leader_watch().borrow();
    assert!(view.seen_leader && view.leader == Some(new), "{view:?}");

    // Alone (the others stopped), a member that restarts never hears from a leader: no wait. (The
    // old leader: nothing here holds its replica, whose engine must be closed to be opened again.)
    drop((backend, follower));
    cluster.stop_all().await;
    cluster.restart(old).await;
    let alone = ReplicaBackend::new(cluster.replica(old));
    let asked = Instant::now();
    assert_eq!(alone.next_leader(None, soon()).await, None);
    assert!(
        asked.elapsed() < Duration::from_millis(100),
        "{:?}",
        asked.elapsed()
    );
    assert!(!cluster.replica(old).leader_watch().borrow().seen_leader);
}
