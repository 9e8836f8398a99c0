//! `bench-harness soak`: the memory soak of issue 15 (item 4).
//!
//! **kvs-raft**: a fresh 3-node site takes checkpoint churn — the game workload over many players with a
//! high checkpoint fraction (20 % of the writes by default; every checkpoint bumps the player's epoch,
//! records a crossing and leaves the old versions to the retention window and the GC) and the default 5 %
//! late reads — open loop at a steady rate, while [`crate::resources::RssSeries`] samples every node's
//! RSS each second. Per node ([`stats::NodeMemory`]): the least-squares RSS slope after the warm-up, in
//! % of the mean after the warm-up per 10 minutes (goal < 2 %), and the peak over the whole run against
//! the steady state, the median of the run's second half (goal ≤ 1.2×). The Raft term before and after
//! the churn counts the elections of a fault-free run (goal: none).
//!
//! **Redis, for contrast** ([`redis_fork`]): `redis-server --appendfsync everysec` loaded with the same
//! data (every player's position and score), then the same workload at the same rate; a third of the
//! way in, `BGREWRITEAOF` forks a child that writes the whole dataset out while the parent keeps
//! serving writes (copy-on-write). Parent and child are sampled every 10 ms: RSS before, and the peak of
//! the parent + child RSS sum (what per-process accounting sees) and PSS sum (each physical page once)
//! during the rewrite.

pub mod redis_fork;
pub mod stats;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use kvs_raft::bench::http::{HttpDriver, UpdateMode};
use kvs_raft::bench::report::progress_line;
use kvs_raft::bench::{run, RunConfig, Workload};
use serde::Serialize;

use crate::chaos::nemesis::site_term;
use crate::cluster::KvsSite;
use crate::resources::RssSeries;
use redis_fork::ForkReport;
use stats::NodeMemory;

/// Issue 15's memory goals.
pub const GOAL_SLOPE_PCT_PER_10MIN: f64 = 2.0;
pub const GOAL_PEAK_RATIO: f64 = 1.2;

/// A validated `soak` invocation.
#[derive(Debug, Clone)]
pub struct SoakConfig {
    pub kvs_raft: PathBuf,
    pub duration: Duration,
    /// Excluded from the slope and the mean.
    pub warmup: Duration,
    /// Ops offered per second, in total.
    pub rate: f64,
    pub players: u64,
    pub checkpoint_fraction: f64,
    /// `None`: no Redis contrast.
    pub redis_server: Option<PathBuf>,
    /// How long the workload runs against Redis (the rewrite starts a third of the way in).
    pub redis_load: Duration,
    pub command: String,
}

impl SoakConfig {
    /// The record: 30 minutes at 1,000 ops/s over 100,000 players, 5 minutes of warm-up.
    pub fn full(kvs_raft: PathBuf) -> SoakConfig {
        SoakConfig {
            kvs_raft,
            duration: Duration::from_secs(30 * 60),
            warmup: Duration::from_secs(5 * 60),
            rate: 1_000.0,
            players: 100_000,
            checkpoint_fraction: 0.2,
            redis_server: Some(PathBuf::from("redis-server")),
            redis_load: Duration::from_secs(30),
            command: String::new(),
        }
    }

    /// The CI mode: 45 s at 300 ops/s over 10,000 players, 10 s of warm-up, 6 s of Redis.
    pub fn smoke(kvs_raft: PathBuf) -> SoakConfig {
        SoakConfig {
            duration: Duration::from_secs(45),
            warmup: Duration::from_secs(10),
            rate: 300.0,
            players: 10_000,
            redis_load: Duration::from_secs(6),
            ..SoakConfig::full(kvs_raft)
        }
    }

    pub fn workload(&self) -> Workload {
        Workload {
            checkpoint_fraction: self.checkpoint_fraction,
            ..Workload::game(self.players, self.rate / self.players.max(1) as f64)
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        self.workload().validate()?;
        if self.duration.is_zero() || self.warmup >= self.duration {
            return Err("--duration must be longer than the warm-up".into());
        }
        Ok(())
    }
}

/// One node's figures.
#[derive(Debug, Clone, Serialize)]
pub struct NodeRow {
    pub node: u64,
    pub pid: u32,
    pub memory: Option<NodeMemory>,
    /// The node's data directory at the end, MiB.
    pub data_dir_mib: f64,
    /// RSS over the run, about 20 points evenly spaced: `[seconds, MiB]` (a plateau or a climb).
    pub rss_curve_mib: Vec<(f64, f64)>,
}

/// What `soak` measured (the `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub command: String,
    pub binary: String,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub offered_rate: f64,
    pub achieved_rate: f64,
    pub players: u64,
    pub checkpoint_fraction: f64,
    pub requests: u64,
    pub errors: u64,
    pub p99_ms: f64,
    pub nodes: Vec<NodeRow>,
    /// The highest Raft term any node reported before and after the churn: in a fault-free run every
    /// change is a spurious election.
    pub term_start: Option<u64>,
    pub term_end: Option<u64>,
    pub redis: Option<ForkReport>,
    /// Why the Redis contrast is missing, when it is.
    pub redis_error: Option<String>,
}

/// Runs the soak (then the Redis contrast, unless `redis_server` is `None`).
pub async fn soak(cfg: &SoakConfig) -> anyhow::Result<SoakReport> {
    cfg.validate().map_err(|e| anyhow!(e))?;
    let binary = cfg.kvs_raft.clone();
    let site = tokio::task::spawn_blocking(move || KvsSite::start(&binary, 3))
        .await?
        .context("start the kvs-raft site")?;
    let ids = site.ids();
    let pids: Vec<u32> = ids.iter().filter_map(|&id| site.pid(id)).collect();
    if pids.len() != ids.len() {
        return Err(anyhow!("a kvs-raft node is not running"));
    }
    let driver = Arc::new(
        HttpDriver::new(site.client_options(), UpdateMode::Txn).context("the kvs-raft driver")?,
    );
    let every = if cfg.duration >= Duration::from_secs(600) {
        60
    } else {
        10
    };
    let run_cfg = RunConfig {
        warmup: Duration::ZERO,
        duration: cfg.duration,
        progress: Some(Arc::new(move |p: &kvs_raft::bench::Progress| {
            if p.elapsed.as_secs().is_multiple_of(every) {
                eprintln!("{}", progress_line(p));
            }
        })),
        ..RunConfig::open(cfg.rate)
    };
    let addrs = site.client_addrs();
    let term_start = site_term(&addrs);
    let series = RssSeries::start(pids.clone(), Duration::from_secs(1));
    let report = run(driver, cfg.workload(), run_cfg)
        .await
        .map_err(|e| anyhow!("the load: {e}"))?;
    let series = series.finish();
    let term_end = site_term(&addrs);
    let warmup = cfg.warmup.as_secs_f64();
    let nodes = site
        .nodes()
        .iter()
        .zip(&pids)
        .zip(&series.rss)
        .map(|((node, &pid), rss)| NodeRow {
            node: node.id,
            pid,
            memory: NodeMemory::of(&series.t, rss, warmup),
            data_dir_mib: dir_bytes(&node.data_dir) as f64 / (1024.0 * 1024.0),
            rss_curve_mib: stats::curve(&series.t, rss, 20),
        })
        .collect();
    drop(site);

    let (redis, redis_error) = match &cfg.redis_server {
        None => (None, None),
        Some(bin) => {
            eprintln!("soak: Redis everysec with the same data, BGREWRITEAOF under load");
            match redis_fork::measure(bin, cfg).await {
                Ok(r) => (Some(r), None),
                Err(e) => (None, Some(format!("{e:#}"))),
            }
        }
    };
    Ok(SoakReport {
        command: cfg.command.clone(),
        binary: cfg.kvs_raft.display().to_string(),
        duration_s: cfg.duration.as_secs_f64(),
        warmup_s: warmup,
        offered_rate: cfg.rate,
        achieved_rate: report.achieved_rate,
        players: cfg.players,
        checkpoint_fraction: cfg.checkpoint_fraction,
        requests: report.requests,
        errors: report.errors,
        p99_ms: report.latency_us.p99 as f64 / 1e3,
        nodes,
        term_start,
        term_end,
        redis,
        redis_error,
    })
}

/// The bytes of the regular files under `dir` (0 where unreadable).
fn dir_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_bytes(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

impl SoakReport {
    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    pub fn markdown(&self) -> String {
        let mut out = format!(
            "### Memory soak: checkpoint churn\n\n`{}`\n\nkvs-raft: `{}`; 3 nodes on loopback; the game \
             workload over {} players, {:.0} % of the writes checkpoints, 5 % late reads, open loop at \
             {:.0} ops/s for {:.0} s ({} requests, {} errors, achieved {:.1}/s, p99 {:.2} ms); RSS of \
             every node each second; slope and mean after a {:.0} s warm-up, steady state = the \
             median of the second half.\n\n",
            self.command,
            self.binary,
            self.players,
            self.checkpoint_fraction * 100.0,
            self.offered_rate,
            self.duration_s,
            self.requests,
            self.errors,
            self.achieved_rate,
            self.p99_ms,
            self.warmup_s,
        );
        out.push_str(
            "| node | RSS first → last (MiB) | mean after warm-up (MiB) | slope (%/10 min) | peak (MiB) \
             | steady (MiB) | peak / steady | data dir (MiB) |\n\
             | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        );
        for n in &self.nodes {
            match &n.memory {
                Some(m) => out.push_str(&format!(
                    "| {} | {:.1} → {:.1} | {:.1} | {} | {:.1} | {:.1} | {:.2} | {:.1} |\n",
                    n.node,
                    m.first_mib,
                    m.last_mib,
                    m.mean_mib,
                    m.slope_pct_per_10min
                        .map_or_else(|| "-".to_owned(), |s| format!("{s:+.2}")),
                    m.peak_mib,
                    m.steady_mib,
                    m.peak_ratio,
                    n.data_dir_mib,
                )),
                None => out.push_str(&format!(
                    "| {} | no samples | | | | | | {:.1} |\n",
                    n.node, n.data_dir_mib
                )),
            }
        }
        out.push_str("\nRSS over the run (s: MiB):\n\n");
        for n in &self.nodes {
            let points: Vec<String> = n
                .rss_curve_mib
                .iter()
                .map(|(t, m)| format!("{t:.0}: {m:.0}"))
                .collect();
            out.push_str(&format!("- node {}: {}\n", n.node, points.join(", ")));
        }
        let worst_slope = self
            .nodes
            .iter()
            .filter_map(|n| n.memory?.slope_pct_per_10min)
            .reduce(f64::max);
        let worst_ratio = self
            .nodes
            .iter()
            .filter_map(|n| Some(n.memory?.peak_ratio))
            .reduce(f64::max);
        let goal = |v: Option<f64>, ok: fn(f64) -> bool, fmt: fn(f64) -> String| {
            v.map_or_else(
                || "not measured".to_owned(),
                |v| format!("{} ({})", if ok(v) { "met" } else { "**missed**" }, fmt(v)),
            )
        };
        out.push_str(&format!(
            "\nGoals (issue 15): RSS slope < {GOAL_SLOPE_PCT_PER_10MIN} %/10 min: {}; peak ≤ \
             {GOAL_PEAK_RATIO}× steady state: {}.{}\n",
            goal(
                worst_slope,
                |s| s < GOAL_SLOPE_PCT_PER_10MIN,
                |s| format!("worst {s:+.2} %")
            ),
            goal(
                worst_ratio,
                |r| r <= GOAL_PEAK_RATIO,
                |r| format!("worst {r:.2}×")
            ),
            if self.duration_s < 600.0 {
                " (A run this short says little about a slope per 10 minutes.)"
            } else {
                ""
            }
        ));
        out.push_str(&match (self.term_start, self.term_end) {
            (Some(a), Some(b)) => format!(
                "Terms {a} → {b}: **{} spurious elections** in a fault-free run.\n",
                b.saturating_sub(a)
            ),
            _ => "Terms: not readable.\n".to_owned(),
        });
        match (&self.redis, &self.redis_error) {
            (Some(r), _) => out.push_str(&r.markdown()),
            (None, Some(e)) => out.push_str(&format!("\nRedis contrast not measured: {e}\n")),
            (None, None) => {}
        }
        out
    }
}
