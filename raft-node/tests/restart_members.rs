//! Issue 10: after a full restart the members refused each other's handshakes ("sender is not a member")
//! until each node loop's first turn — after opening the node and replaying its log — told the transport
//! who the members are; peers backed off meanwhile. The transport now knows them from the persisted
//! membership table before it accepts a connection.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use raft_node::transport::SnapshotSource;
use raft_node::{CommitTs, Error, Group, GroupConfig, Role, StateMachine};
use tokio::net::TcpListener;

/// Applies nothing but its index; the first apply after a start takes `slow_first` (a long replay).
struct Slow {
    applied: (u64, u64),
    slow_first: Option<Duration>,
    replaying: Arc<AtomicBool>,
}

impl StateMachine for Slow {
    type Output = ();

    fn applied(&self) -> (u64, u64) {
        self.applied
    }

    fn apply(&mut self, index: u64, ts: CommitTs, commands: &[&[u8]]) -> Result<Vec<()>, Error> {
        if let Some(pause) = self.slow_first.take() {
            self.replaying.store(true, Ordering::SeqCst);
            std::thread::sleep(pause);
            self.replaying.store(false, Ordering::SeqCst);
        }
        self.applied = (index, ts.last(commands.len()).unwrap_or(ts.first));
        Ok(vec![(); commands.len()])
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

struct NoImages;

impl SnapshotSource for NoImages {
    fn stream(&self, _sink: &mut dyn FnMut(Vec<u8>) -> Result<(), String>) -> Result<(), String> {
        Err("no snapshots here".into())
    }
}

fn config(id: u64, dir: &std::path::Path, initial: &BTreeMap<u64, String>) -> GroupConfig {
    let mut cfg = GroupConfig::new(
        id,
        "restart-members",
        dir.join(format!("raft-{id}")),
        dir.join(format!("snap-{id}")),
    );
    cfg.initial_cluster = initial.clone();
    cfg.advertise_peer = initial[&id].clone();
    cfg.peer_secret = b"restart-secret".to_vec();
    cfg
}

async fn start(
    cfg: GroupConfig,
    slow_first: Option<Duration>,
    replaying: Arc<AtomicBool>,
) -> Group<()> {
    let listener = TcpListener::bind(&cfg.advertise_peer).await.expect("bind");
    let sm = Slow {
        applied: (0, 0),
        slow_first,
        replaying,
    };
    Group::start(cfg, sm, NoImages, listener)
        .await
        .expect("start")
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_members_accept_each_other_before_their_loops_have_replayed_the_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut initial = BTreeMap::new();
    for id in 1..=2u64 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        initial.insert(id, l.local_addr().expect("addr").to_string());
    }
    let idle = Arc::new(AtomicBool::new(false));
    let mut groups = Vec::new();
    for id in 1..=2 {
        groups.push(start(config(id, dir.path(), &initial), None, idle.clone()).await);
    }
    // A leader, and something in the log to replay.
    let deadline = Instant::now() + Duration::from_secs(20);
    let leader = loop {
        let mut found = None;
        for g in &groups {
            if g.status(soon()).await.is_ok_and(|s| s.role == Role::Leader) {
                found = Some(g);
            }
        }
        if let Some(g) = found {
            break g;
        }
        assert!(Instant::now() < deadline, "no leader");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    for i in 0..5u8 {
        leader.propose(vec![i], soon()).await.expect("committed");
    }
    // Both stop; both restart, node 1 with a replay that takes 3 s before its loop's first turn ends.
    for g in &groups {
        g.shutdown().await.expect("shutdown");
    }
    drop(groups);
    let replaying = Arc::new(AtomicBool::new(false));
    let one = start(
        config(1, dir.path(), &initial),
        Some(Duration::from_secs(3)),
        replaying.clone(),
    )
    .await;
    let two = start(config(2, dir.path(), &initial), None, idle.clone()).await;
    // While node 1 is still replaying, node 2 dials it: it is a member and is accepted.
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let c = one.transport_counters();
        assert_eq!(
            c.handshakes_rejected_unknown_id, 0,
            "node 1 refused a member while replaying its log: {c:?}"
        );
        if c.handshakes_accepted > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "node 2 never connected: {c:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        replaying.load(Ordering::SeqCst),
        "the check must happen during node 1's replay"
    );
    assert_eq!(
        one.membership().members.len(),
        2,
        "the table is known at once"
    );
    let c = two.transport_counters();
    assert_eq!(c.handshakes_rejected_unknown_id, 0, "node 2: {c:?}");
    one.shutdown().await.expect("shutdown");
    two.shutdown().await.expect("shutdown");
}
