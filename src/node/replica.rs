//! One replica of the site's group: the engine and the raft-node [`Group`] over it, started together and
//! stopped together; and the typed calls the HTTP backend and the tests make into it.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use engine::{Engine, EngineConfig, Op, OpResult};
use raft_node::{
    Committed, Configuration, Error, Group, GroupConfig, LoopExit, Membership, MembershipChange,
    NodeStatus, TransportCounters,
};
use tokio_util::sync::CancellationToken;

use super::disk::{self, SpaceGuard};
use super::gc;
use super::layout::DataDir;
use super::machine::{CommandOutput, EngineMachine, EngineSource};
use crate::config::SyncMode;

/// Everything a replica needs to start. [`ReplicaConfig::new`] gives the production defaults (those of
/// the engine, of raft-node and of `--engine-sync`, each defined by its owner); the serve configuration and
/// the tests adjust fields.
#[derive(Clone)]
pub struct ReplicaConfig {
    pub data_dir: DataDir,
    pub engine: EngineConfig,
    pub engine_sync: SyncMode,
    /// Free space kept in reserve on the data dir: below it writes are refused (see `node::disk`).
    pub reserve_space: u64,
    pub group: GroupConfig,
}

impl ReplicaConfig {
    pub fn new(id: u64, cluster_id: &str, data_dir: impl Into<PathBuf>) -> Self {
        let data_dir = DataDir::new(data_dir);
        ReplicaConfig {
            group: GroupConfig::new(id, cluster_id, data_dir.raft(), data_dir.snapshots()),
            engine: EngineConfig::default(),
            engine_sync: SyncMode::default(),
            reserve_space: disk::DEFAULT_RESERVE,
            data_dir,
        }
    }

    /// Keep everything in `dir` instead (the engine, the log, staged snapshots).
    pub fn set_data_dir(&mut self, dir: impl Into<PathBuf>) {
        self.data_dir = DataDir::new(dir);
        self.group.log_dir = self.data_dir.raft();
        self.group.snapshot_dir = self.data_dir.snapshots();
    }
}

/// A running replica.
pub struct Replica {
    engine: Arc<Engine>,
    group: Group<CommandOutput>,
    data_dir: DataDir,
    /// Length of one tick of the node loop and the election timeout in ticks (status counts are in ticks).
    tick: std::time::Duration,
    election_ticks: u64,
    /// Cancelled by [`Replica::shutdown`]: every background task of the replica watches it.
    shutdown: CancellationToken,
}

impl Replica {
    /// Open (or create) the data dir and start the replica; peers connect on `peer_listener`. Opening
    /// RocksDB runs off the async workers.
    pub async fn start(
        cfg: ReplicaConfig,
        peer_listener: tokio::net::TcpListener,
    ) -> anyhow::Result<Replica> {
        let engine_dir = cfg.data_dir.state();
        let engine_cfg = cfg.engine.clone();
        let engine = Arc::new(
            tokio::task::spawn_blocking({
                let dir = engine_dir.clone();
                move || Engine::open(&dir, engine_cfg)
            })
            .await
            .context("join the engine open task")?
            .with_context(|| format!("open engine at {}", engine_dir.display()))?,
        );
        let tick = cfg.group.tick;
        let election_ticks = u64::try_from(cfg.group.node.election_tick).unwrap_or(u64::MAX);
        let group = Group::start(
            cfg.group,
            EngineMachine::new(engine.clone(), cfg.engine_sync),
            EngineSource(engine.clone()),
            peer_listener,
        )
        .await
        .context("start the raft group")?;
        let shutdown = CancellationToken::new();
        let space = SpaceGuard {
            dirs: vec![
                cfg.data_dir.root().to_path_buf(),
                cfg.data_dir.state(),
                cfg.data_dir.raft(),
            ],
            reserve: cfg.reserve_space,
            switch: group.low_space(),
        };
        // Before the first request: a node restarted on a full disk refuses writes from the start.
        space.check().await;
        tokio::spawn(space.run(shutdown.clone()));
        tokio::spawn(gc::collect_garbage(engine.clone(), shutdown.clone()));
        Ok(Replica {
            engine,
            group,
            data_dir: cfg.data_dir,
            tick,
            election_ticks,
            shutdown,
        })
    }

    pub fn id(&self) -> u64 {
        self.group.id()
    }

    pub fn cluster_id(&self) -> &str {
        self.group.cluster_id()
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    pub fn data_dir(&self) -> &DataDir {
        &self.data_dir
    }

    /// A count of node-loop ticks (as in [`NodeStatus`]) as a duration.
    pub fn ticks(&self, n: u64) -> std::time::Duration {
        self.tick
            .saturating_mul(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The (shortest) election timeout, in ticks: a follower that has not heard from its leader for
    /// longer has lost it.
    pub fn election_ticks(&self) -> u64 {
        self.election_ticks
    }

    /// Cancelled when the replica shuts down; for tasks that live as long as it.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The membership table as of the node loop's last change (addresses, removed ids).
    pub fn membership(&self) -> Membership {
        self.group.membership()
    }

    /// Read the peer TLS files again (see `Group::reload_peer_tls`); `Ok(false)`: peer TLS is off.
    pub fn reload_peer_tls(&self) -> Result<bool, raft_node::transport::TlsError> {
        self.group.reload_peer_tls()
    }

    pub fn transport_counters(&self) -> TransportCounters {
        self.group.transport_counters()
    }

    /// `None` while the node loop runs; how it ended otherwise.
    pub fn loop_exit(&self) -> Option<LoopExit> {
        self.group.loop_exit()
    }

    /// Resolves when the node loop has ended (asked to, or died on its own).
    pub async fn loop_ended(&self) -> LoopExit {
        self.group.ended().await
    }

    /// Who leads as this replica knows it, updated in the loop turn it changes (see `Group::leader_watch`).
    pub fn leader_watch(&self) -> tokio::sync::watch::Receiver<raft_node::LeaderView> {
        self.group.leader_watch()
    }

    /// Who leads as this replica knows it now.
    pub fn leader_view(&self) -> raft_node::LeaderView {
        self.group.leader_view()
    }

    /// How much room the data dir has against its free-space reserve (below it writes are refused).
    pub fn disk_space(&self) -> raft_node::DiskSpace {
        self.group.low_space().get()
    }

    /// Replicate and apply `ops` as one command: its commit ts, one result per op, and when it passed
    /// each stage of the write path.
    pub async fn propose(
        &self,
        ops: &[Op],
        deadline: Instant,
    ) -> Result<Committed<Vec<OpResult>>, Error> {
        let command = engine::codec::encode_ops(ops)
            .map_err(|_| Error::Invalid("the request cannot be encoded"))?;
        let committed = self.group.propose(command, deadline).await?;
        match committed.output {
            Ok(results) => Ok(Committed {
                index: committed.index,
                ts: committed.ts,
                output: results,
                trace: committed.trace,
            }),
            Err(_undecodable) => Err(Error::Invalid("the command did not decode")),
        }
    }

    /// Linearizable read barrier: once this returns, the local engine has applied everything that was
    /// committed when it was called.
    pub async fn read_index(&self, deadline: Instant) -> Result<u64, Error> {
        self.group.read_index(deadline).await
    }

    /// Lease read barrier (leader only): as `read_index`, without a round of heartbeats while the lease
    /// holds.
    pub async fn lease_read(&self, deadline: Instant) -> Result<u64, Error> {
        self.group.lease_read(deadline).await
    }

    pub async fn status(&self, deadline: Instant) -> Result<NodeStatus, Error> {
        self.group.status(deadline).await
    }

    /// Change the membership by one node; returns the configuration once the change is applied here.
    pub async fn change_membership(
        &self,
        change: MembershipChange,
        deadline: Instant,
    ) -> Result<Configuration, Error> {
        self.group.change_membership(change, deadline).await
    }

    pub async fn transfer_leader(&self, to: u64, deadline: Instant) -> Result<(), Error> {
        self.group.transfer_leader(to, deadline).await
    }

    /// Cut every peer link of this node (a network partition, for fault tests and for fencing a node off
    /// by hand). Undone by [`Replica::heal`].
    pub fn isolate(&self) {
        self.group.isolate();
    }

    /// Restore the peer links from the membership table.
    pub fn heal(&self) {
        self.group.heal();
    }

    /// Stop: background tasks end, the peer transport closes and the loop stops (every waiting request
    /// is failed explicitly), then the engine's writes are made durable (off the async workers).
    pub async fn shutdown(&self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        let stopped = self.group.shutdown().await;
        let engine = self.engine.clone();
        match tokio::task::spawn_blocking(move || engine.sync()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "final engine sync failed"),
            Err(e) => tracing::error!(error = %e, "final engine sync did not run"),
        }
        stopped.context("node loop")
    }
}
