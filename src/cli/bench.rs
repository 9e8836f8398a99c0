//! `kvs-raft bench`: the flags of the load generator (issue 15). Defaults come from their one home in
//! [`crate::bench`] (`workload::DEFAULT_*`, `runner::DEFAULT_*`).

use std::time::Duration;

use clap::{Args, ValueEnum};

use super::ClientArgs;
use crate::bench::{runner, workload};

/// The workload's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WorkloadArg {
    /// Game updates: each a position put and a score incr, plus checkpoints and late reads.
    Game,
    /// Single puts of the players' position keys (no checkpoints or late reads unless asked for).
    Put,
}

/// How a game update is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpdateArg {
    /// Two requests: PUT the position, POST incr the score.
    Two,
    /// One atomic /v1/txn with both.
    Txn,
}

/// A duration flag whose default is shown as the duration it is (`30s`, `500ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationArg(pub Duration);

impl std::fmt::Display for DurationArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = self.0.as_millis();
        if ms.is_multiple_of(1000) {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl std::str::FromStr for DurationArg {
    type Err = String;

    fn from_str(s: &str) -> Result<DurationArg, String> {
        crate::config::parse_duration(s).map(DurationArg)
    }
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "The workload: op i belongs to player i mod --players; it is a late read with probability
--late-reads, else a checkpoint with probability --checkpoints, else an update (or a put). Open loop (the
default) sends --players × --rate ops/s on a fixed schedule and measures each request from the time it
was due, so a stall counts against every request due during it; --closed-loop measures the most the
site sustains with --clients clients. A progress line goes to stderr every second; the report to stdout
(--json: one line, fields in docs/cli.md). Exit 0 when the run completed, errors or not (read `errors`).

Examples:
  kvs-raft bench --players 1000 --rate 1 --duration 60s
  kvs-raft bench --update two --checkpoints 0.01 --late-reads 0.05 --json > run.json
  kvs-raft bench --batch 100 --players 10000 --rate 1
  kvs-raft bench --workload put --closed-loop --clients 32 --duration 20s
  kvs-raft bench --endpoints http://10.0.0.1:7379,http://10.0.0.2:7379 --token-file bench.token"
)]
pub struct BenchArgs {
    /// Players: keys p<N>/pos and p<N>/score for N in 0..players.
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1000,
        help_heading = "Workload"
    )]
    pub players: u64,
    /// Ops per second per player; the open loop offers players × rate ops/s.
    #[arg(
        long,
        value_name = "HZ",
        default_value_t = 1.0,
        help_heading = "Workload"
    )]
    pub rate: f64,
    /// What each write is.
    #[arg(long, value_enum, default_value_t = WorkloadArg::Game, help_heading = "Workload")]
    pub workload: WorkloadArg,
    /// How a game update is sent (and, with --batch, what it is inside the batch: a put op and an
    /// incr op, or one txn op).
    #[arg(long, value_enum, default_value_t = UpdateArg::Txn, help_heading = "Workload")]
    pub update: UpdateArg,
    /// Ops per request: N > 1 sends N ops' writes in one /v1/batch (late reads as their own GETs).
    #[arg(long, value_name = "N", default_value_t = 1, help_heading = "Workload")]
    pub batch: usize,
    /// Of the writes, the fraction that cross a checkpoint [default: 0.01 for game, 0 for put].
    #[arg(long, value_name = "FRACTION", help_heading = "Workload")]
    pub checkpoints: Option<f64>,
    /// Of all ops, the fraction that are late reads (GET at now − --late-age) [default: 0.05 for
    /// game, 0 for put]. A late read of a key that did not exist then is counted, not an error.
    #[arg(long, value_name = "FRACTION", help_heading = "Workload")]
    pub late_reads: Option<f64>,
    /// How old a late packet is.
    #[arg(long, value_name = "DURATION",
          default_value_t = DurationArg(workload::DEFAULT_LATE_AGE), help_heading = "Workload")]
    pub late_age: DurationArg,
    /// Bytes of each position (or put value).
    #[arg(long, value_name = "BYTES", default_value_t = workload::DEFAULT_VALUE_SIZE,
          help_heading = "Workload")]
    pub value_size: usize,
    /// Seed of the op stream: the same seed, the same ops.
    #[arg(long, value_name = "N", default_value_t = workload::DEFAULT_SEED, help_heading = "Workload")]
    pub seed: u64,
    /// How long to measure (units ms, s, m).
    #[arg(long, value_name = "DURATION",
          default_value_t = DurationArg(runner::DEFAULT_DURATION), help_heading = "Run")]
    pub duration: DurationArg,
    /// How long to run first without recording.
    #[arg(long, value_name = "DURATION",
          default_value_t = DurationArg(runner::DEFAULT_WARMUP), help_heading = "Run")]
    pub warmup: DurationArg,
    /// Open loop (the default): a fixed schedule at players × rate ops/s, latency from each
    /// request's due time.
    #[arg(long, conflicts_with = "closed_loop", help_heading = "Run")]
    pub open_loop: bool,
    /// Closed loop: --clients clients, each sending its next request when the last one answered
    /// (maximum throughput; --rate is not used).
    #[arg(long, help_heading = "Run")]
    pub closed_loop: bool,
    /// Closed loop: the number of clients (each its own connection).
    #[arg(long, value_name = "N", default_value_t = runner::DEFAULT_CLIENTS,
          requires = "closed_loop", help_heading = "Run")]
    pub clients: usize,
    /// Open loop: the connections due requests queue for (each one request at a time).
    #[arg(long, value_name = "N", default_value_t = runner::DEFAULT_CONNECTIONS,
          conflicts_with = "closed_loop", help_heading = "Run")]
    pub connections: usize,
    /// Where to send the load. --timeout is the deadline of each request (a request past it is
    /// an error labelled `timeout`), not of the run; --json prints the report as one line of JSON.
    #[command(flatten)]
    pub client: ClientArgs,
}
