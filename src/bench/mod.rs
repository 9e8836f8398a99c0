//! The game workload and its load generator, shared by `kvs-raft bench` (over the HTTP API) and the
//! comparison harness (`bench-harness/`, which drives etcd and Redis with the same workload shapes).
//!
//! A [`Workload`] produces system-neutral [`Op`]s; a [`Driver`] maps them onto one system's requests;
//! `runner` sends them open loop (a fixed arrival schedule, latency measured from the intended send time)
//! or closed loop, into HDR histograms; `report` prints the result for people or as JSON.
//!
//! ```no_run
//! # async fn example(driver: std::sync::Arc<impl kvs_raft::bench::Driver>) {
//! use kvs_raft::bench::{run, RunConfig, Workload};
//! // 1,000 players at 1 Hz: 1,000 game updates/s offered, open loop, 30 s measured after 5 s warm-up.
//! let workload = Workload::game(1_000, 1.0);
//! let cfg = RunConfig::open(workload.offered_rate());
//! let report = run(driver, workload, cfg).await.expect("a valid configuration");
//! println!("{}", kvs_raft::bench::report::human(&report));
//! # }
//! ```
//!
//! Modules: [`workload`] (the seeded op stream), [`runner`] (schedules, workers, histograms,
//! [`Report`]), [`report`] (a table for people, JSON), [`http`] (the kvs-raft [`Driver`] over
//! [`crate::client`]).

pub mod http;
pub mod report;
pub mod runner;
pub mod workload;

use std::future::Future;
use std::time::Duration;

pub use runner::{
    run, LatencySummary, Mode, Progress, ProgressFn, Report, RunConfig, RunError, Sample,
};
pub use workload::{OpStream, Shape, Workload};

/// One operation of the workload. Keys of player `p` are [`position_key`] and [`score_key`], both in
/// the entity [`entity`]; a checkpoint of the player invalidates both.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// A single key write (the "single updates" shape).
    Put { key: Vec<u8>, value: Vec<u8> },
    /// One game update of `player`: its position (a put of `position` under [`position_key`]) and
    /// its score (an increment of [`score_key`] by `score_delta`).
    Update {
        player: u64,
        position: Vec<u8>,
        score_delta: i64,
    },
    /// `player` crosses the checkpoint `name`: all of its earlier state becomes invalid at once.
    Checkpoint { player: u64, name: String },
    /// A late packet: read `player`'s position as it was `age` ago (systems without time-travel
    /// reads read the latest value).
    LateRead { player: u64, age: Duration },
}

impl Op {
    /// The op's kind as the report names it: `update`, `put`, `checkpoint`, `late_read`.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Put { .. } => "put",
            Op::Update { .. } => "update",
            Op::Checkpoint { .. } => "checkpoint",
            Op::LateRead { .. } => "late_read",
        }
    }

    /// Whether the op changes state (everything but [`Op::LateRead`]).
    pub fn is_write(&self) -> bool {
        !matches!(self, Op::LateRead { .. })
    }
}

/// The entity (key prefix before the first `/`) holding every key of `player`.
pub fn entity(player: u64) -> String {
    format!("p{player}")
}

/// The key of `player`'s position.
pub fn position_key(player: u64) -> String {
    format!("p{player}/pos")
}

/// The key of `player`'s score (an integer counter).
pub fn score_key(player: u64) -> String {
    format!("p{player}/score")
}

/// Why one request failed, as it is counted in the report: a short stable label such as
/// `"http-503"`, `"timeout"`, `"connect"`, `"io"`.
pub type ErrorLabel = String;

/// How one system executes [`Op`]s. The runner gives every concurrent worker its own connection
/// ([`Driver::connect`]), so "one client" means one connection and no pipelining across workers.
pub trait Driver: Send + Sync + 'static {
    /// One worker's connection (or connection-like handle).
    type Conn: Send + 'static;

    /// Opens the connection of worker `worker` (0-based).
    fn connect(&self, worker: usize)
        -> impl Future<Output = Result<Self::Conn, ErrorLabel>> + Send;

    /// Executes `ops` as one unit and returns once the system acknowledged all of them (durably, as
    /// the system is configured). `ops.len() > 1` only in batch mode, where the driver sends them in
    /// one request (or one transaction/pipeline of the system).
    fn execute(
        &self,
        conn: &mut Self::Conn,
        ops: &[Op],
    ) -> impl Future<Output = Result<(), ErrorLabel>> + Send;

    /// The driver's own counters, as running totals (e.g. the kvs-raft driver's `http_requests` and
    /// `late_read_missing`: outcomes that are not errors but worth reporting). The runner reads them
    /// when the measurement starts and when it ends and reports the difference
    /// ([`Report::counters`]). The default has none.
    fn counters(&self) -> Vec<(String, u64)> {
        Vec::new()
    }
}
