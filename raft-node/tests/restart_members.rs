//! Issue 10: after a full restart the members refused each other's handshakes ("sender is not a member")
//! until each node loop's first turn — after opening the node and replaying its log — told the transport
//! who the members are; peers backed off meanwhile. The transport now knows them from the persisted
//! membership table before it accepts a connection, and the addresses a peer announces on a connection
//! accepted before the loop runs are kept for it (they come once per connection).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use raft_node::transport::SnapshotSource;
use raft_node::{CommitTs, Error, Group, GroupConfig, Role, StateMachine};
use tokio::net::TcpListener;

/// Applies nothing but its index. Opening a node over it takes `slow_open` (the first `applied`): a node
/// whose start is slow, as with a long log.
struct Slow {
    applied: (u64, u64),
    slow_open: Mutex<Option<Duration>>,
    opening: Arc<AtomicBool>,
}

impl StateMachine for Slow {
    type Output = ();

    fn applied(&self) -> (u64, u64) {
        if let Some(pause) = self.slow_open.lock().unwrap().take() {
            self.opening.store(true, Ordering::SeqCst);
            std::thread::sleep(pause);
            self.opening.store(false, Ordering::SeqCst);
        }
        self.applied
    }

    fn apply(&mut self, index: u64, ts: CommitTs, commands: &[&[u8]]) -> Result<Vec<()>, Error> {
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
    cfg.advertise_client = format!("127.0.0.1:{}", 19_000 + id);
    cfg.peer_secret = b"restart-secret".to_vec();
    cfg
}

async fn start(
    cfg: GroupConfig,
    slow_open: Option<Duration>,
    opening: Arc<AtomicBool>,
) -> Group<()> {
    let listener = TcpListener::bind(&cfg.advertise_peer).await.expect("bind");
    let sm = Slow {
        applied: (0, 0),
        slow_open: Mutex::new(slow_open),
        opening,
    };
    Group::start(cfg, sm, NoImages, listener)
        .await
        .expect("start")
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_member_accepts_its_peers_and_keeps_their_addresses_while_it_is_still_opening()
{
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
    // Both stop; both restart, node 1 taking 3 s to open its node (its transport is up meanwhile).
    for g in &groups {
        g.shutdown().await.expect("shutdown");
    }
    drop(groups);
    let opening = Arc::new(AtomicBool::new(false));
    let starting = tokio::spawn(start(
        config(1, dir.path(), &initial),
        Some(Duration::from_secs(3)),
        opening.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !opening.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "node 1 never started opening");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Node 2 dials node 1 while node 1 is still opening.
    let two = start(config(2, dir.path(), &initial), None, idle.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(2);
    while two.transport_counters().connects == 0 {
        assert!(
            Instant::now() < deadline,
            "node 2 never connected to node 1"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        opening.load(Ordering::SeqCst),
        "node 2 must have connected while node 1 was opening"
    );
    let one = starting.await.expect("join");
    let c = one.transport_counters();
    assert_eq!(
        (c.handshakes_rejected_unknown_id, c.handshakes_accepted > 0),
        (0, true),
        "node 1 refused a member while opening: {c:?}"
    );
    assert_eq!(
        one.membership().members.len(),
        2,
        "the table is known at once"
    );
    // Node 2 announced its client address before node 1's loop ran: it is not lost.
    let deadline = Instant::now() + Duration::from_secs(10);
    while one.membership().members[&2].client_addr != "127.0.0.1:19002" {
        assert!(
            Instant::now() < deadline,
            "node 1 never learned node 2's client address: {:?}",
            one.membership()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let c = two.transport_counters();
    assert_eq!(c.handshakes_rejected_unknown_id, 0, "node 2: {c:?}");
    one.shutdown().await.expect("shutdown");
    two.shutdown().await.expect("shutdown");
}
