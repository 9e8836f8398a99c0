//! An in-process site: N [`Replica`]s of one group over real sockets and real RocksDB, each in its own
//! temporary data dir, with stop/restart on the same address and data dir, and waits for an agreed
//! leader and for convergence. Used by the loopback tests, the node-over-HTTP tests and the replication
//! benchmark (`#[path]`-included there, so this file stands alone).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kvs_raft::node::{Replica, ReplicaConfig};
use raft_node::{NodeStatus, Role};
use tokio::net::TcpListener;

/// The deadline of one request made by a test: a few seconds from now.
pub fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

pub struct Member {
    pub cfg: ReplicaConfig,
    pub replica: Option<Arc<Replica>>,
    pub addr: String,
    pub dir: Option<tempfile::TempDir>,
}

pub struct Site {
    pub members: BTreeMap<u64, Member>,
}

/// A loopback listener on a free port, and its address.
pub async fn bind() -> (TcpListener, String) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = l.local_addr().expect("addr").to_string();
    (l, addr)
}

/// The configuration of member `id` of the test cluster `cluster` founded by `initial`, in `dir`.
pub fn config(
    id: u64,
    cluster: &str,
    dir: &std::path::Path,
    initial: &BTreeMap<u64, String>,
) -> ReplicaConfig {
    let mut cfg = ReplicaConfig::new(id, cluster, dir);
    cfg.group.initial_cluster = initial.clone();
    cfg.group.peer_secret = b"loopback-secret".to_vec();
    if let Some(addr) = initial.get(&id) {
        cfg.group.advertise_peer = addr.clone();
    }
    cfg
}

impl Site {
    /// Found a cluster of `n` members; `tune` adjusts each member's configuration before it starts.
    pub async fn start(n: u64, cluster: &str, tune: impl Fn(&mut ReplicaConfig)) -> Site {
        let mut listeners = BTreeMap::new();
        let mut initial = BTreeMap::new();
        for id in 1..=n {
            let (l, addr) = bind().await;
            initial.insert(id, addr);
            listeners.insert(id, l);
        }
        let mut members = BTreeMap::new();
        for (id, listener) in listeners {
            let dir = tempfile::tempdir().expect("tempdir");
            let mut cfg = config(id, cluster, dir.path(), &initial);
            tune(&mut cfg);
            let replica = Replica::start(cfg.clone(), listener)
                .await
                .expect("start replica");
            members.insert(
                id,
                Member {
                    cfg,
                    replica: Some(Arc::new(replica)),
                    addr: initial[&id].clone(),
                    dir: Some(dir),
                },
            );
        }
        Site { members }
    }

    /// Start one more member (e.g. a node being added) on `listener`, with its own data dir.
    pub async fn add(
        &mut self,
        cfg: ReplicaConfig,
        listener: TcpListener,
        addr: String,
        dir: tempfile::TempDir,
    ) -> Arc<Replica> {
        let id = cfg.group.id();
        let replica = Arc::new(
            Replica::start(cfg.clone(), listener)
                .await
                .expect("start added replica"),
        );
        self.members.insert(
            id,
            Member {
                cfg,
                replica: Some(replica.clone()),
                addr,
                dir: Some(dir),
            },
        );
        replica
    }

    pub fn replica(&self, id: u64) -> Arc<Replica> {
        self.members[&id].replica.clone().expect("node is running")
    }

    pub fn running(&self) -> Vec<Arc<Replica>> {
        self.members
            .values()
            .filter_map(|m| m.replica.clone())
            .collect()
    }

    pub async fn stop(&mut self, id: u64) {
        let replica = self.members.get_mut(&id).and_then(|m| m.replica.take());
        if let Some(replica) = replica {
            replica.shutdown().await.expect("clean shutdown");
        }
    }

    pub async fn stop_all(&mut self) {
        let ids: Vec<u64> = self.members.keys().copied().collect();
        for id in ids {
            self.stop(id).await;
        }
    }

    /// Restart a stopped member on the same address and data dir.
    pub async fn restart(&mut self, id: u64) {
        let member = self.members.get_mut(&id).expect("known node");
        let listener = TcpListener::bind(&member.addr).await.expect("rebind");
        let replica = Replica::start(member.cfg.clone(), listener)
            .await
            .expect("restart");
        member.replica = Some(Arc::new(replica));
    }

    /// The leader every running member agrees on, waiting up to `within`.
    pub async fn leader(&self, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let mut seen = Vec::new();
            for replica in self.running() {
                if let Ok(s) = replica.status(soon()).await {
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

    /// Wait until every running member has applied at least `index`.
    pub async fn converge(&self, index: u64, within: Duration) {
        let deadline = Instant::now() + within;
        for replica in self.running() {
            loop {
                let applied = replica.engine().applied().index;
                if applied >= index {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} applied only {applied} of {index}",
                    replica.id()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}
