//! What `compare` runs: the systems, the workload shapes of issue 15's goals, and their lengths. Pure:
//! no process is started here.

use std::time::Duration;

use kvs_raft::bench::{RunConfig, Workload};

/// One system under test, in the order they run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum System {
    /// kvs-raft, 3 nodes, Raft log fsynced on every commit.
    Kvs,
    /// etcd 3.4, 3 members, WAL fsynced on every commit.
    Etcd,
    /// Redis 7, one server, `appendfsync always`.
    RedisAlways,
    /// Redis 7, one server, `appendfsync everysec`.
    RedisEverysec,
}

impl System {
    pub const ALL: [System; 4] = [
        System::Kvs,
        System::Etcd,
        System::RedisAlways,
        System::RedisEverysec,
    ];

    /// The name in the table and the plot.
    pub fn name(self) -> &'static str {
        match self {
            System::Kvs => "kvs-raft ×3",
            System::Etcd => "etcd ×3",
            System::RedisAlways => "Redis always",
            System::RedisEverysec => "Redis everysec",
        }
    }
}

/// How a kvs-raft game update travels (other systems have one mapping each, see `drivers`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// One `POST /v1/txn` per update (position put + score incr in one Raft entry).
    Txn,
    /// Two requests per update: `PUT` of the position, then the score's `incr`.
    TwoRequests,
}

/// The workload shapes (issue 15, Goals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ShapeKind {
    /// Single puts, closed loop, 1 client.
    Put1,
    /// Single puts, closed loop, 50 clients.
    Put50,
    /// Game updates (put + incr, 1 % checkpoints), closed loop, 50 clients.
    Game50,
    /// Game updates in requests of 100, closed loop.
    Batch100,
    /// Single puts, open loop at the common offered load.
    OpenCommon,
    /// Game updates, open loop, one point of the latency-vs-throughput sweep.
    Sweep,
}

impl ShapeKind {
    pub fn name(self) -> &'static str {
        match self {
            ShapeKind::Put1 => "put, 1 client",
            ShapeKind::Put50 => "put, 50 clients",
            ShapeKind::Game50 => "game update, 50 clients",
            ShapeKind::Batch100 => "batch of 100 updates",
            ShapeKind::OpenCommon => "put, open loop",
            ShapeKind::Sweep => "game, open loop",
        }
    }
}

/// One run of the plan: a shape with its workload and runner configuration.
#[derive(Debug, Clone)]
pub struct Shape {
    pub kind: ShapeKind,
    pub workload: Workload,
    pub cfg: RunConfig,
    /// The kvs-raft modes this shape runs in (others run it once).
    pub kvs_modes: Vec<UpdateMode>,
}

impl Shape {
    /// The open-loop rate, if open.
    pub fn offered(&self) -> Option<f64> {
        match self.cfg.mode {
            kvs_raft::bench::Mode::Open { rate } => Some(rate),
            kvs_raft::bench::Mode::Closed { .. } => None,
        }
    }
}

/// Players in every shape: enough that concurrent clients rarely touch the same player.
pub const PLAYERS: u64 = 1_000;
/// Closed-loop clients of the concurrent shapes (issue 15: 50 clients).
pub const CLIENTS: usize = 50;
/// Clients of the batch shape: each request carries 100 updates.
pub const BATCH_CLIENTS: usize = 8;
pub const BATCH: usize = 100;

/// The lengths and rates of one `compare` invocation.
#[derive(Debug, Clone)]
pub struct Plan {
    pub warmup: Duration,
    pub duration: Duration,
    /// Measured length of each sweep point.
    pub sweep_duration: Duration,
    /// The common offered load of [`ShapeKind::OpenCommon`] (puts/s).
    pub open_rate: f64,
    /// The sweep's offered loads (game updates/s), ascending; a system's sweep stops after the first
    /// point it cannot keep up with (see [`saturated`]).
    pub sweep_rates: Vec<f64>,
    pub shapes: Vec<ShapeKind>,
}

impl Plan {
    /// The record run: every shape, 20 s each after 3 s of warm-up, a six-point sweep.
    pub fn full(open_rate: f64) -> Plan {
        Plan {
            warmup: Duration::from_secs(3),
            duration: Duration::from_secs(20),
            sweep_duration: Duration::from_secs(10),
            open_rate,
            sweep_rates: vec![250.0, 500.0, 1_000.0, 2_000.0, 4_000.0, 8_000.0],
            shapes: vec![
                ShapeKind::Put1,
                ShapeKind::Put50,
                ShapeKind::Game50,
                ShapeKind::Batch100,
                ShapeKind::OpenCommon,
                ShapeKind::Sweep,
            ],
        }
    }

    /// CI's smoke run (≤ 90 s for all four systems): 2 s per shape, no 1-client run, a two-point sweep.
    pub fn smoke(open_rate: f64) -> Plan {
        Plan {
            warmup: Duration::from_millis(500),
            duration: Duration::from_secs(2),
            sweep_duration: Duration::from_millis(1_500),
            open_rate,
            sweep_rates: vec![200.0, 800.0],
            shapes: vec![
                ShapeKind::Put50,
                ShapeKind::Game50,
                ShapeKind::Batch100,
                ShapeKind::OpenCommon,
                ShapeKind::Sweep,
            ],
        }
    }

    /// Every run, in order, for one system (the sweep as one shape per rate).
    pub fn shapes(&self) -> Vec<Shape> {
        let mut out = Vec::new();
        for &kind in &self.shapes {
            match kind {
                ShapeKind::Put1 => out.push(self.closed(kind, put(), 1, 1)),
                ShapeKind::Put50 => out.push(self.closed(kind, put(), CLIENTS, 1)),
                ShapeKind::Game50 => {
                    let mut s = self.closed(kind, game(), CLIENTS, 1);
                    s.kvs_modes = vec![UpdateMode::Txn, UpdateMode::TwoRequests];
                    out.push(s);
                }
                ShapeKind::Batch100 => out.push(self.closed(kind, game(), BATCH_CLIENTS, BATCH)),
                ShapeKind::OpenCommon => {
                    out.push(self.open(kind, put(), self.open_rate, self.duration));
                }
                ShapeKind::Sweep => {
                    for &rate in &self.sweep_rates {
                        out.push(self.open(kind, game(), rate, self.sweep_duration));
                    }
                }
            }
        }
        out
    }

    fn closed(&self, kind: ShapeKind, workload: Workload, clients: usize, batch: usize) -> Shape {
        let mut cfg = RunConfig::closed(clients);
        cfg.batch = batch;
        cfg.warmup = self.warmup;
        cfg.duration = self.duration;
        Shape {
            kind,
            workload,
            cfg,
            kvs_modes: vec![UpdateMode::Txn],
        }
    }

    fn open(
        &self,
        kind: ShapeKind,
        mut workload: Workload,
        rate: f64,
        duration: Duration,
    ) -> Shape {
        // Players are far below 2^53: exact.
        workload.rate_per_player = rate / PLAYERS as f64;
        let mut cfg = RunConfig::open(rate);
        cfg.warmup = self.warmup;
        cfg.duration = duration;
        Shape {
            kind,
            workload,
            cfg,
            kvs_modes: vec![UpdateMode::Txn],
        }
    }
}

/// The single-update shape: puts of the players' positions.
fn put() -> Workload {
    Workload::put(PLAYERS, 1.0)
}

/// The game update of the goals: position put + score incr, 1 % checkpoints. Late reads are left out
/// of the comparison: etcd and Redis cannot read at an event time, so the "same" op would be a
/// different op there (`kvs-raft bench` measures them on kvs-raft alone).
fn game() -> Workload {
    let mut w = Workload::game(PLAYERS, 1.0);
    w.late_read_fraction = 0.0;
    w
}

/// Whether an open-loop point shows a system past its capacity: it achieved less than 90 % of the
/// offered rate, or its p99 passed one second. The sweep stops there for that system.
pub fn saturated(offered: f64, achieved: f64, p99_us: u64) -> bool {
    achieved < 0.9 * offered || p99_us > 1_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_full_plan_has_every_goal_shape() {
        let shapes = Plan::full(1_000.0).shapes();
        let kinds: Vec<ShapeKind> = shapes.iter().map(|s| s.kind).collect();
        for k in [
            ShapeKind::Put1,
            ShapeKind::Put50,
            ShapeKind::Game50,
            ShapeKind::Batch100,
            ShapeKind::OpenCommon,
        ] {
            assert_eq!(kinds.iter().filter(|&&x| x == k).count(), 1, "{k:?}");
        }
        assert_eq!(kinds.iter().filter(|&&x| x == ShapeKind::Sweep).count(), 6);
        let game = shapes
            .iter()
            .find(|s| s.kind == ShapeKind::Game50)
            .expect("game");
        assert_eq!(game.kvs_modes, [UpdateMode::Txn, UpdateMode::TwoRequests]);
        assert_eq!(game.workload.late_read_fraction, 0.0);
        assert_eq!(game.workload.checkpoint_fraction, 0.01);
        let batch = shapes
            .iter()
            .find(|s| s.kind == ShapeKind::Batch100)
            .expect("batch");
        assert_eq!(batch.cfg.batch, 100);
        for s in &shapes {
            s.workload.validate().expect("valid workload");
            s.cfg.validate().expect("valid config");
            if let Some(rate) = s.offered() {
                assert!((s.workload.offered_rate() - rate).abs() < 1e-6, "{s:?}");
            }
        }
    }

    #[test]
    fn the_smoke_plan_fits_ci() {
        let plan = Plan::smoke(300.0);
        let per_system: Duration = plan
            .shapes()
            .iter()
            .map(|s| {
                (s.cfg.warmup + s.cfg.duration) * u32::try_from(s.kvs_modes.len()).unwrap_or(1)
            })
            .sum();
        // Four systems plus about 5 s of start-up each must stay under 90 s.
        assert!(
            per_system * 4 + Duration::from_secs(20) <= Duration::from_secs(90),
            "{per_system:?}"
        );
    }

    #[test]
    fn saturation() {
        assert!(!saturated(1000.0, 995.0, 20_000));
        assert!(saturated(1000.0, 850.0, 20_000));
        assert!(saturated(1000.0, 1000.0, 1_500_000));
    }
}
