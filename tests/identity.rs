//! A node's identity and its data dir, in process over real sockets and RocksDB: a data dir refuses to
//! start under another node id; a `state/` older than the compacted Raft log is refused with both
//! indexes named; a single node restarts after compacting its log; learners and removed nodes stop reporting themselves ready and fresh once the leader
//! no longer reaches them. Default timing (20 ms ticks, elections after 240–480 ms).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::replicas::{bind, config, soon, Site};
use common::wait_for;
use engine::{Op, OpOutcome};
use kvs_raft::http::{Backend, Consistency};
use kvs_raft::node::{Replica, ReplicaBackend};
use raft_node::{Member, MembershipChange};

async fn write(replica: &Replica, key: &str) {
    let committed = replica
        .propose(&[Op::put(key, "v")], soon())
        .await
        .expect("write");
    assert!(
        matches!(committed.output.as_slice(), [Ok(OpOutcome::Written { .. })]),
        "{:?}",
        committed.output
    );
}

/// Copy a directory tree (of a stopped node).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create copy dir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("dir entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_data_dir_started_under_another_node_id_is_refused() {
    let mut site = Site::start(1, "identity", |_| {}).await;
    site.leader(Duration::from_secs(10)).await;
    write(&site.replica(1), "k").await;
    site.stop(1).await;
    let dir = site.members[&1]
        .dir
        .as_ref()
        .expect("node 1's dir")
        .path()
        .to_path_buf();
    // Node 1's data dir, started as node 2 of a matching single-member cluster.
    let (listener, addr) = bind().await;
    let cfg = config(2, "identity", &dir, &BTreeMap::from([(2, addr)]));
    match Replica::start(cfg, listener).await {
        Ok(replica) => {
            let status = replica.status(soon()).await;
            let _ = replica.shutdown().await;
            panic!("node 1's data dir started as node 2: {status:?}");
        }
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(
                msg.contains("node 1") && msg.contains("node 2"),
                "the refusal should name both ids: {msg}"
            );
        }
    }
    // Under its own id it still starts.
    site.restart(1).await;
    site.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_state_dir_behind_the_compacted_log_is_refused_naming_both_indexes() {
    let mut site = Site::start(1, "identity", |cfg| {
        cfg.group.node.compact_log_entries = 20;
    })
    .await;
    site.leader(Duration::from_secs(10)).await;
    for i in 0..10 {
        write(&site.replica(1), &format!("a{i}")).await;
    }
    site.stop(1).await;
    let dir = site.members[&1]
        .dir
        .as_ref()
        .expect("node 1's dir")
        .path()
        .to_path_buf();
    // An old backup of the engine, taken while the node was stopped.
    let backup = tempfile::tempdir().expect("backup dir");
    copy_dir(&dir.join("state"), backup.path());
    let old_applied = engine::Engine::open(backup.path(), engine::EngineConfig::default())
        .expect("open the backup")
        .applied()
        .index;

    site.restart(1).await;
    site.leader(Duration::from_secs(10)).await;
    for i in 0..200 {
        write(&site.replica(1), &format!("b{i}")).await;
    }
    let status = site.replica(1).status(soon()).await.expect("status");
    assert!(
        status.first_index > old_applied + 1,
        "the log should be compacted past the backup: {status:?}"
    );
    site.stop(1).await;

    // The engine restored from the old backup: the entries between it and the log are gone.
    std::fs::remove_dir_all(dir.join("state")).expect("remove state");
    copy_dir(backup.path(), &dir.join("state"));
    let member = &site.members[&1];
    let listener = tokio::net::TcpListener::bind(&member.addr)
        .await
        .expect("rebind");
    match Replica::start(member.cfg.clone(), listener).await {
        Ok(replica) => {
            let has_b0 = replica
                .engine()
                .get(b"b0", u64::MAX)
                .map(|v| v.is_some())
                .unwrap_or(false);
            let _ = replica.shutdown().await;
            panic!(
                "started on a state/ at index {old_applied} behind a log starting at {} (b0 present: {has_b0})",
                status.first_index
            );
        }
        Err(e) => {
            let msg = format!("{e:#}");
            assert!(
                msg.contains(&format!("applied index {old_applied}"))
                    && msg.contains("first index"),
                "the refusal should name both indexes: {msg}"
            );
        }
    }
}

/// Wait until `backend` reports itself not ready and its stale reads at least `min_stale_ms` stale (a
/// known staleness: unknown would be shown to clients as no bound at all).
async fn wait_not_ready_and_stale(backend: &ReplicaBackend, who: &str, min_stale_ms: u64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = backend.readiness();
        let info = backend
            .read_barrier(Consistency::Stale, soon())
            .await
            .expect("a stale read barrier never waits");
        let stale = info.stale_by_ms;
        if !r.ready() && stale.is_some_and(|ms| ms >= min_stale_ms) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{who} still reports ready={} (detail {:?}) and stale_by_ms={stale:?}",
            r.ready(),
            r.detail
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_learner_a_removed_node_and_a_cut_off_voter_stop_reporting_ready_and_fresh() {
    let mut site = Site::start(3, "identity", |_| {}).await;
    let leader_id = site.leader(Duration::from_secs(10)).await;
    let leader = site.replica(leader_id);
    for i in 0..20 {
        write(&leader, &format!("k{i}")).await;
    }

    // Node 4 joins as a learner and catches up.
    let (listener, addr) = bind().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cfg = config(4, "identity", dir.path(), &BTreeMap::new());
    cfg.group.advertise_peer = addr.clone();
    cfg.group.known_peers = site
        .members
        .iter()
        .map(|(&id, n)| (id, n.addr.clone()))
        .collect();
    let learner = site.add(cfg, listener, addr.clone(), dir).await;
    leader
        .change_membership(
            MembershipChange::AddLearner(Member {
                id: 4,
                peer_addr: addr,
                client_addr: String::new(),
            }),
            soon(),
        )
        .await
        .expect("add learner");
    let index = leader.read_index(soon()).await.expect("read index");
    site.converge(index, Duration::from_secs(20)).await;
    let learner_backend = ReplicaBackend::new(learner.clone());
    wait_for(
        "the learner to be ready",
        Duration::from_secs(10),
        async || learner_backend.readiness().ready(),
    )
    .await;

    // A follower (not the leader) is removed; it keeps running.
    let removed_id = (1..=3).find(|&id| id != leader_id).expect("a follower");
    let removed_backend = ReplicaBackend::new(site.replica(removed_id));
    wait_for(
        "the follower to be ready",
        Duration::from_secs(10),
        async || removed_backend.readiness().ready(),
    )
    .await;
    leader
        .change_membership(MembershipChange::Remove(removed_id), soon())
        .await
        .expect("remove");

    // The learner is cut off from everyone.
    learner.isolate();
    for i in 20..40 {
        write(&leader, &format!("k{i}")).await;
    }

    // Neither hears from a leader any more: both must say so, well within a few election timeouts.
    wait_not_ready_and_stale(&learner_backend, "the cut-off learner", 2_000).await;
    wait_not_ready_and_stale(&removed_backend, "the removed node", 2_000).await;

    // The remaining voters are unaffected.
    let leader_backend = ReplicaBackend::new(leader.clone());
    wait_for(
        "the leader to be ready",
        Duration::from_secs(10),
        async || leader_backend.readiness().ready(),
    )
    .await;

    // The last follower voter is cut off too: it forgets its leader, and its staleness keeps growing
    // from the last contact rather than becoming unknown.
    let voter_id = (1..=3)
        .find(|&id| id != leader_id && id != removed_id)
        .expect("the other follower");
    let voter = site.replica(voter_id);
    let voter_backend = ReplicaBackend::new(voter.clone());
    voter.isolate();
    wait_not_ready_and_stale(&voter_backend, "the cut-off voter", 2_000).await;
    site.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_single_node_restarts_after_compacting_its_log() {
    let mut site = Site::start(1, "identity", |cfg| {
        cfg.group.node.compact_log_entries = 20;
    })
    .await;
    site.leader(Duration::from_secs(10)).await;
    for i in 0..200 {
        write(&site.replica(1), &format!("b{i}")).await;
    }
    let status = site.replica(1).status(soon()).await.expect("status");
    assert!(status.first_index > 100, "{status:?}");
    site.stop(1).await;
    // A single voter commits through the light ready, whose commit index is not in a hard state: the
    // persisted commit must still not lag behind the compacted log's start (raft-rs panics on that).
    site.restart(1).await;
    site.leader(Duration::from_secs(10)).await;
    write(&site.replica(1), "after").await;
    site.stop_all().await;
}
