//! `bench-harness compare`: the workload shapes of issue 15's goals against kvs-raft ×3, etcd ×3,
//! Redis `always` and Redis `everysec`, one system after another, each started fresh, on this machine.
//!
//! For each system: start it ([`crate::cluster`]), run every shape of the [`plan::Plan`] with the
//! `kvs_raft::bench` runner through the system's driver while [`crate::resources`] samples its
//! processes, stop it. Then the rows become a markdown table with the goal ratios ([`table`]) and the
//! sweep an SVG ([`plot`]).

pub mod plan;
pub mod plot;
pub mod table;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use kvs_raft::bench::http::{HttpDriver, UpdateMode as HttpMode};
use kvs_raft::bench::{run, Driver};

use crate::cluster::{AofFsync, EtcdCluster, KvsSite, RedisServer};
use crate::drivers::{EtcdDriver, RedisDriver};
use crate::resources::{Sampler, SAMPLE_EVERY};
use plan::{saturated, Plan, Shape, ShapeKind, System, UpdateMode};
use table::{Context, Row};

/// A validated `compare` invocation.
#[derive(Debug, Clone)]
pub struct CompareConfig {
    pub plan: Plan,
    pub kvs_raft: PathBuf,
    pub etcd: PathBuf,
    pub redis_server: PathBuf,
    pub systems: Vec<System>,
    /// The command line as it is printed in the table's header.
    pub command: String,
}

/// What a comparison produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub rows: Vec<Row>,
    pub markdown: String,
    /// `None` when no sweep ran.
    pub svg: Option<String>,
}

/// Runs the whole comparison. Progress lines go to stderr.
pub async fn compare(cfg: &CompareConfig) -> anyhow::Result<Outcome> {
    let ctx = Context {
        command: cfg.command.clone(),
        date: date(),
        machine: machine(),
        versions: versions(cfg),
    };
    let mut rows = Vec::new();
    for &system in &cfg.systems {
        eprintln!("== {}", system.name());
        rows.extend(
            run_system(cfg, system)
                .await
                .with_context(|| format!("measuring {}", system.name()))?,
        );
    }
    let markdown = table::markdown(&ctx, &rows);
    let svg = plot::latency_curves_svg(&rows).map_err(|e| anyhow!("drawing the SVG: {e}"))?;
    Ok(Outcome {
        rows,
        markdown,
        svg,
    })
}

/// Starts `system`, runs every shape against it, stops it (on drop, also on error).
async fn run_system(cfg: &CompareConfig, system: System) -> anyhow::Result<Vec<Row>> {
    let shapes = cfg.plan.shapes();
    match system {
        System::Kvs => {
            let binary = cfg.kvs_raft.clone();
            let site = blocking(move || KvsSite::start(&binary, 3)).await?;
            let driver = |mode| HttpDriver::new(site.client_options(), mode).map(Arc::new);
            let txn = driver(HttpMode::Txn).context("kvs-raft driver")?;
            let two = driver(HttpMode::Two).context("kvs-raft driver")?;
            let mut rows = Vec::new();
            let mut sweep_done = false;
            for shape in &shapes {
                for &mode in &shape.kvs_modes {
                    if shape.kind == ShapeKind::Sweep && sweep_done {
                        continue;
                    }
                    let row = match mode {
                        UpdateMode::Txn => measure(system, &txn, shape, site.pids()).await?,
                        UpdateMode::TwoRequests => {
                            measure(system, &two, shape, site.pids()).await?
                        }
                    };
                    // Only the game shape runs in both modes; the table names the mode there.
                    let row = Row {
                        mode: (shape.kind == ShapeKind::Game50).then_some(mode),
                        ..row
                    };
                    sweep_done |= past_capacity(&row);
                    rows.push(row);
                }
            }
            drop(site);
            Ok(rows)
        }
        System::Etcd => {
            let etcd = cfg.etcd.clone();
            let cluster = blocking(move || EtcdCluster::start(&etcd, 3)).await?;
            let driver = Arc::new(EtcdDriver::new(cluster.endpoints()));
            let rows = measure_all(system, &driver, &shapes, cluster.pids()).await?;
            drop(cluster);
            Ok(rows)
        }
        System::RedisAlways | System::RedisEverysec => {
            let fsync = if system == System::RedisAlways {
                AofFsync::Always
            } else {
                AofFsync::Everysec
            };
            let redis = cfg.redis_server.clone();
            let server = blocking(move || RedisServer::start(&redis, fsync)).await?;
            let driver = Arc::new(RedisDriver::new(&server.url()).context("Redis driver")?);
            let rows = measure_all(system, &driver, &shapes, server.pids()).await?;
            drop(server);
            Ok(rows)
        }
    }
}

/// Runs a blocking launcher off the async workers.
async fn blocking<T: Send + 'static>(
    start: impl Send + 'static + FnOnce() -> Result<T, crate::cluster::LaunchError>,
) -> anyhow::Result<T> {
    Ok(tokio::task::spawn_blocking(start).await??)
}

/// Whether a sweep row shows the system past its capacity (the rest of its sweep is skipped).
fn past_capacity(row: &Row) -> bool {
    row.shape == ShapeKind::Sweep
        && row
            .offered
            .is_some_and(|offered| saturated(offered, row.throughput, row.p99_us))
}

async fn measure_all<D: Driver>(
    system: System,
    driver: &Arc<D>,
    shapes: &[Shape],
    pids: Vec<u32>,
) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    let mut sweep_done = false;
    for shape in shapes {
        if shape.kind == ShapeKind::Sweep && sweep_done {
            continue;
        }
        let row = measure(system, driver, shape, pids.clone()).await?;
        sweep_done |= past_capacity(&row);
        rows.push(row);
    }
    Ok(rows)
}

/// One run of `shape`, with the system's processes sampled from the end of the warm-up on.
async fn measure<D: Driver>(
    system: System,
    driver: &Arc<D>,
    shape: &Shape,
    pids: Vec<u32>,
) -> anyhow::Result<Row> {
    let warmup = shape.cfg.warmup;
    let sampler = tokio::spawn(async move {
        tokio::time::sleep(warmup).await;
        Sampler::start(pids, SAMPLE_EVERY)
    });
    let report = run(
        Arc::clone(driver),
        shape.workload.clone(),
        shape.cfg.clone(),
    )
    .await
    .map_err(|e| anyhow!("{e}"))
    .with_context(|| format!("{} on {}", shape.kind.name(), system.name()))?;
    let usage = match sampler.await {
        Ok(s) => s.finish(),
        Err(e) => return Err(anyhow!("resource sampler: {e}")),
    };
    let row = Row {
        system,
        shape: shape.kind,
        mode: None,
        clients: report.connections,
        batch: report.batch,
        offered: report.offered_rate,
        throughput: report.achieved_rate,
        p50_us: report.latency_us.p50,
        p99_us: report.latency_us.p99,
        p999_us: report.latency_us.p999,
        max_us: report.latency_us.max,
        requests: report.requests,
        errors: report.errors,
        errors_by_label: report.errors_by_label,
        counters: report.counters,
        usage,
    };
    eprintln!(
        "  {:<32} {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  errors {}  RSS {} MiB  CPU {:.1} s",
        shape.kind.name(),
        row.throughput,
        row.p50_us as f64 / 1000.0,
        row.p99_us as f64 / 1000.0,
        row.errors,
        row.usage.peak_rss_bytes / (1024 * 1024),
        row.usage.cpu_seconds,
    );
    Ok(row)
}

/// Now in UTC, `YYYY-MM-DD HH:MM UTC` (from `date`, which every machine here has).
fn date() -> String {
    command_output("date", &["-u", "+%Y-%m-%d %H:%M UTC"]).unwrap_or_else(|| "unknown".into())
}

/// `N cores (model), Linux <release>, M GiB`.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map_or("unknown CPU", |(_, m)| m.trim())
        .to_owned();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|r| r.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / (1024 * 1024));
    format!(
        "nproc {cores} ({model}), Linux {}, {mem_gib} GiB",
        kernel.trim()
    )
}

/// Each program's `--version` (first line), and the path of the kvs-raft binary measured (a debug
/// build's figures are not comparable: the path says which build it was).
fn versions(cfg: &CompareConfig) -> Vec<(String, String)> {
    let first_line = |program: &PathBuf, args: &[&str]| {
        command_output(&program.to_string_lossy(), args)
            .and_then(|o| o.lines().next().map(str::to_owned))
            .unwrap_or_else(|| format!("{} (version unknown)", program.display()))
    };
    vec![
        (
            first_line(&cfg.kvs_raft, &["--version"]),
            format!("({})", cfg.kvs_raft.display()),
        ),
        (first_line(&cfg.etcd, &["--version"]), String::new()),
        (first_line(&cfg.redis_server, &["--version"]), String::new()),
    ]
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new(program)
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// How long `compare` may take at most with `plan` (for the progress header): the shapes' warm-ups
/// and durations for every system.
pub fn planned(plan: &Plan, systems: &[System]) -> Duration {
    let per: Duration = plan
        .shapes()
        .iter()
        .map(|s| s.cfg.warmup + s.cfg.duration)
        .sum();
    per * u32::try_from(systems.len()).unwrap_or(u32::MAX)
}
