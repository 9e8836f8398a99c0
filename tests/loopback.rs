//! Replication over real sockets and real RocksDB, in one process (SPEC §5): elections, 10,000 writes,
//! leader loss, a wiped follower re-joining by snapshot, membership changes, leader transfer, and a
//! partitioned old leader. Every test checks that no acknowledged write is lost. Default timing
//! (20 ms ticks, heartbeats every 100 ms, elections after 1–2 s) unless a test says otherwise.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::{Op, OpOutcome};
use kvs_raft::site::{Site, SiteConfig};
use raft_node::{Error, Member, MembershipChange, NodeStatus, Role};
use tokio::net::TcpListener;

struct Node {
    cfg: SiteConfig,
    site: Option<Arc<Site>>,
    addr: String,
    _dir: Option<tempfile::TempDir>,
}

struct Cluster {
    nodes: BTreeMap<u64, Node>,
}

async fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

fn config(id: u64, dir: PathBuf, initial: &BTreeMap<u64, String>, compact: u64) -> SiteConfig {
    let mut cfg = SiteConfig::new(id, "loopback", &dir);
    cfg.initial_cluster = initial.clone();
    cfg.peer_secret = b"loopback-secret".to_vec();
    cfg.compact_log_entries = compact;
    cfg
}

impl Cluster {
    async fn start(n: u64, compact: u64) -> Cluster {
        Cluster::start_with(n, compact, |_| {}).await
    }

    async fn start_with(n: u64, compact: u64, tune: impl Fn(&mut SiteConfig)) -> Cluster {
        let mut listeners = BTreeMap::new();
        let mut initial = BTreeMap::new();
        for id in 1..=n {
            let (l, addr) = bind().await;
            initial.insert(id, addr.clone());
            listeners.insert(id, l);
        }
        let mut nodes = BTreeMap::new();
        for (id, listener) in listeners {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut cfg = config(id, dir.path().to_path_buf(), &initial, compact);
            cfg.advertise_peer = initial[&id].clone();
            tune(&mut cfg);
            let site = Site::start(cfg.clone(), listener)
                .await
                .expect("start site");
            nodes.insert(
                id,
                Node {
                    cfg,
                    site: Some(Arc::new(site)),
                    addr: initial[&id].clone(),
                    _dir: Some(dir),
                },
            );
        }
        Cluster { nodes }
    }

    fn site(&self, id: u64) -> Arc<Site> {
        self.nodes[&id].site.clone().expect("node is running")
    }

    fn running(&self) -> Vec<Arc<Site>> {
        self.nodes.values().filter_map(|n| n.site.clone()).collect()
    }

    async fn stop(&mut self, id: u64) {
        let site = self.nodes.get_mut(&id).and_then(|n| n.site.take());
        if let Some(site) = site {
            site.shutdown().await.expect("clean shutdown");
        }
    }

    /// Restart a stopped node on the same address and data dir.
    async fn restart(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let listener = TcpListener::bind(&node.addr).await.expect("rebind");
        let site = Site::start(node.cfg.clone(), listener)
            .await
            .expect("restart");
        node.site = Some(Arc::new(site));
    }

    /// The leader every running node agrees on, waiting up to `within`.
    async fn leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let mut seen = Vec::new();
            for site in self.running() {
                if let Ok(s) = site.status().await {
                    seen.push(s);
                }
            }
            let leaders: Vec<&NodeStatus> =
                seen.iter().filter(|s| s.role == Role::Leader).collect();
            if leaders.len() == 1 {
                let id = leaders[0].id;
                let term = leaders[0].term;
                if seen.iter().all(|s| s.leader == Some(id) && s.term == term) {
                    return id;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader within {within:?}: {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Wait until every running node has applied at least `index`.
    async fn converge(&self, index: u64, within: Duration) {
        let deadline = Instant::now() + within;
        for site in self.running() {
            loop {
                let applied = site.engine().applied().index;
                if applied >= index {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} applied only {applied} of {index}",
                    site.id()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

async fn write(site: &Site, key: &str, value: &str) -> Result<u64, Error> {
    let (ts, results) = site.propose(&[Op::put(key, value)]).await?;
    match results.as_slice() {
        [Ok(OpOutcome::Written { .. })] => Ok(ts),
        other => panic!("unexpected put result {other:?}"),
    }
}

/// Every acknowledged (key, value) is readable on every running node.
async fn assert_present(cluster: &Cluster, acked: &BTreeMap<String, String>) {
    let leader = cluster.site(cluster.leader(Duration::from_secs(10)).await);
    let index = leader.read_index().await.expect("read index on the leader");
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
    let cluster = Cluster::start(3, 10_000).await;
    let leader = cluster.site(cluster.leader(Duration::from_secs(10)).await);
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
    let index = leader.read_index().await.expect("read index");
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
    let status = leader.status().await.expect("status");
    assert!(
        status.counters.commands_applied >= 10_000,
        "{:?}",
        status.counters
    );
    // Batching over the network: far fewer log writes than commands.
    assert!(status.counters.persists < 10_000, "{:?}", status.counters);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_leader_serves_writes_within_3s_of_losing_the_old_one() {
    let mut cluster = Cluster::start(3, 10_000).await;
    let old = cluster.leader(Duration::from_secs(10)).await;
    let mut acked = BTreeMap::new();
    for i in 0..50 {
        let (k, v) = (format!("before{i}"), format!("v{i}"));
        write(&cluster.site(old), &k, &v).await.expect("write");
        acked.insert(k, v);
    }
    cluster.stop(old).await;
    let stopped = Instant::now();
    // A linearizable read already waiting on a follower when its leader vanished is asked again of the
    // next leader, rather than hanging until the request deadline (5 s).
    let survivor = cluster.running()[0].clone();
    let read = tokio::spawn(async move {
        let r = survivor.read_index().await;
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
    let mut cluster = Cluster::start(3, 100).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.site(leader_id);
    let mut acked = BTreeMap::new();
    for i in 0..600 {
        let (k, v) = (format!("w{i:04}"), format!("v{i}"));
        write(&leader, &k, &v).await.expect("write");
        acked.insert(k, v);
    }
    let status = leader.status().await.expect("status");
    assert!(
        status.first_index > 1,
        "the leader compacted its log: {status:?}"
    );
    let follower = *cluster
        .nodes
        .keys()
        .find(|&&id| id != leader_id)
        .expect("follower");
    cluster.stop(follower).await;
    // Wipe: a fresh directory for the same node id and address.
    let fresh = tempfile::tempdir().expect("tempdir");
    {
        let node = cluster.nodes.get_mut(&follower).expect("node");
        node.cfg.data_dir = fresh.path().to_path_buf();
        node._dir = Some(fresh);
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
    let s = cluster.site(follower).status().await.expect("status");
    assert!(
        s.counters.snapshots_installed >= 1,
        "re-joined by snapshot: {s:?}"
    );
    let t = leader.transport_counters();
    assert!(t.snapshots_sent >= 1, "{t:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_learner_is_added_caught_up_promoted_and_an_old_node_removed() {
    let mut cluster = Cluster::start(3, 200).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.site(leader_id);
    let mut acked = BTreeMap::new();
    for i in 0..500 {
        let (k, v) = (format!("m{i:04}"), format!("v{i}"));
        write(&leader, &k, &v).await.expect("write");
        acked.insert(k, v);
    }
    // Node 4 starts empty, knowing the members, and is added as a learner.
    let (listener, addr) = bind().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(4, dir.path().to_path_buf(), &BTreeMap::new(), 200);
    cfg.advertise_peer = addr.clone();
    cfg.known_peers = cluster
        .nodes
        .iter()
        .map(|(&id, n)| (id, n.addr.clone()))
        .collect();
    let site4 = Site::start(cfg.clone(), listener)
        .await
        .expect("start node 4");
    cluster.nodes.insert(
        4,
        Node {
            cfg,
            site: Some(Arc::new(site4)),
            addr: addr.clone(),
            _dir: Some(dir),
        },
    );
    let member4 = Member {
        id: 4,
        peer_addr: addr,
        client_addr: String::new(),
    };
    let cs = leader
        .change_membership(MembershipChange::AddLearner(member4.clone()))
        .await
        .expect("add learner");
    assert_eq!(cs.learners, vec![4]);
    let index = leader.read_index().await.expect("read index");
    cluster.converge(index, Duration::from_secs(20)).await;
    let cs = leader
        .change_membership(MembershipChange::Promote(4))
        .await
        .expect("promote");
    assert!(cs.voters.contains(&4) && cs.learners.is_empty(), "{cs:?}");
    // Remove a follower that is not the leader.
    let gone = *cluster
        .nodes
        .keys()
        .find(|&&id| id != leader_id && id != 4)
        .expect("a follower");
    let cs = leader
        .change_membership(MembershipChange::Remove(gone))
        .await
        .expect("remove");
    assert!(!cs.voters.contains(&gone) && cs.voters.len() == 3, "{cs:?}");
    cluster.stop(gone).await;
    // Removed ids are never reused.
    let again = leader
        .change_membership(MembershipChange::AddLearner(Member {
            id: gone,
            peer_addr: "127.0.0.1:1".into(),
            client_addr: String::new(),
        }))
        .await;
    assert!(matches!(again, Err(Error::Invalid(_))), "{again:?}");
    for i in 500..600 {
        let (k, v) = (format!("m{i:04}"), format!("v{i}"));
        write(&leader, &k, &v)
            .await
            .expect("write after the changes");
        acked.insert(k, v);
    }
    assert_present(&cluster, &acked).await;
    let s = cluster.site(4).status().await.expect("status of node 4");
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
    let cluster = Cluster::start(3, 10_000).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.site(leader_id);
    write(&leader, "t", "1").await.expect("write");
    let target = *cluster
        .nodes
        .keys()
        .find(|&&id| id != leader_id)
        .expect("follower");
    let started = Instant::now();
    leader
        .transfer_leader(target)
        .await
        .expect("transfer accepted");
    loop {
        let s = cluster.site(target).status().await.expect("status");
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
    write(&cluster.site(target), "t", "2")
        .await
        .expect("write on the new leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_old_leader_cannot_write_or_read_and_steps_down_when_healed() {
    let cluster = Cluster::start(3, 10_000).await;
    let old_id = cluster.leader(Duration::from_secs(10)).await;
    let old = cluster.site(old_id);
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
        tokio::spawn(async move { old.read_index().await })
    };
    // The majority elects a new leader and accepts writes.
    let majority: Vec<Arc<Site>> = cluster
        .running()
        .into_iter()
        .filter(|s| s.id() != old_id)
        .collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let new_id = loop {
        let mut found = None;
        for s in &majority {
            if let Ok(st) = s.status().await {
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
    write(&cluster.site(new_id), "p", "after")
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
    old.heal().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = old.status().await.expect("status");
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
    let cluster = Cluster::start_with(3, 10_000, |cfg| {
        cfg.engine.retention = Duration::from_millis(300);
    })
    .await;
    let leader = cluster.site(cluster.leader(Duration::from_secs(10)).await);
    for i in 0..50 {
        write(&leader, "player:7/pos", &format!("{i}"))
            .await
            .expect("write");
    }
    let (cp_ts, results) = leader
        .propose(&[Op::checkpoint("player:7", "cp", Vec::new())])
        .await
        .expect("checkpoint");
    assert!(matches!(
        results.as_slice(),
        [Ok(OpOutcome::Checkpointed { epoch: 1, .. })]
    ));
    let index = leader.read_index().await.expect("read index");
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
    let mut cluster = Cluster::start(3, 100).await;
    let leader_id = cluster.leader(Duration::from_secs(10)).await;
    let leader = cluster.site(leader_id);
    let follower = *cluster
        .nodes
        .keys()
        .find(|&&id| id != leader_id)
        .expect("follower");
    let mut acked = BTreeMap::new();
    for i in 0..400 {
        let (k, v) = (format!("r{i:04}"), format!("v{i}"));
        write(&leader, &k, &v).await.expect("write");
        acked.insert(k, v);
    }
    let index = leader.read_index().await.expect("read index");
    cluster.converge(index, Duration::from_secs(20)).await;
    let before = cluster.site(follower).status().await.expect("status");
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
    let restarted = cluster.site(follower).engine().applied().index;
    assert!(
        restarted >= before.applied,
        "restarted at {restarted}, had {before:?}"
    );
    assert_present(&cluster, &acked).await;
}
