//! `bench-harness`: the comparison harness of issue 15 (dev-only). `scripts/compare.sh` installs the
//! servers, builds kvs-raft in release and runs `bench-harness compare`; `chaos` and `soak` are the
//! chaos run and the memory soak.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bench_harness::chaos::nemesis::{StopMode, POD_GRACE};
use bench_harness::chaos::{chaos, ChaosConfig};
use bench_harness::compare::plan::{Plan, System};
use bench_harness::compare::{compare, planned, CompareConfig};
use bench_harness::soak::{soak, SoakConfig};
use clap::{Parser, Subcommand};
use kvs_raft::config::parse_duration;

/// Side-by-side measurements of kvs-raft, etcd and Redis on this machine.
#[derive(Debug, Parser)]
#[command(name = "bench-harness", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the workload shapes of issue 15's goals against kvs-raft ×3, etcd ×3, Redis `appendfsync
    /// always` and Redis `everysec`, one after another, and print a markdown table (throughput,
    /// p50/p99/p999, errors, peak RSS, CPU seconds, the goal ratios) and write the latency curves.
    Compare(CompareArgs),
    /// The chaos run: a kvs-raft site ×3 under the game workload (open loop, one `/v1/txn` per update,
    /// 1 % checkpoints) while one replica is stopped every `--stop-every` (alternately the leader and
    /// a follower) and restarted `--down` after it exited; then every acknowledged write is checked to
    /// be present. Prints latency percentiles, per stop the longest write gap, errors and term changes,
    /// and the verification; exits 1 when a write was lost or a stop did not happen. The record:
    /// `--duration 15m --rate 1000 --stop-every 30s` (the defaults); `--smoke` (CI): 60 s at 300/s, a
    /// stop every 15 s (leader, follower, leader).
    Chaos(ChaosArgs),
    /// The memory soak: checkpoint churn (the game workload with many checkpoints and many players) on
    /// a kvs-raft site ×3 with every node's RSS sampled each second — slope and peak vs steady state —
    /// then Redis (`appendfsync everysec`) with the same data, its RSS during a `BGREWRITEAOF`. The
    /// record: 30 min at 1000 ops/s over 100,000 players, 5 min of warm-up (the defaults); `--smoke`
    /// (CI): 45 s at 300 ops/s over 10,000 players, 10 s of warm-up.
    Soak(SoakArgs),
}

/// The kvs-raft binary: the flag, else `release/kvs-raft` in `$CARGO_TARGET_DIR` (or `target/`).
fn kvs_raft_binary(flag: Option<&PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = flag.cloned().unwrap_or_else(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map_or_else(|| PathBuf::from("target"), PathBuf::from);
        target.join("release").join("kvs-raft")
    });
    if !bin.is_file() {
        anyhow::bail!(
            "--kvs-raft {}: no such file (build it: cargo build --release --bin kvs-raft)",
            bin.display()
        );
    }
    Ok(bin)
}

fn duration_arg(s: &str) -> Result<std::time::Duration, String> {
    parse_duration(s)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Nemesis {
    /// SIGTERM, then SIGKILL if the node still runs after a 10 s grace period (a Kubernetes pod
    /// deletion, with the default 30 s grace scaled down).
    Pod,
    /// SIGKILL only.
    Kill,
}

/// The flags `chaos` and `soak` share: what to run and how hard.
#[derive(Debug, clap::Args)]
struct LoadArgs {
    /// The kvs-raft binary (default: `release/kvs-raft` in `$CARGO_TARGET_DIR`, else in `target/`).
    #[arg(long, value_name = "PATH")]
    kvs_raft: Option<PathBuf>,
    /// How long the load runs (default: the record's length, or the smoke's).
    #[arg(long, value_parser = duration_arg, value_name = "DURATION")]
    duration: Option<std::time::Duration>,
    /// Ops offered per second, in total (default: 1000; smoke 300).
    #[arg(long, value_name = "OPS")]
    rate: Option<f64>,
    /// Players (the updates go round robin over them).
    #[arg(long, value_name = "N")]
    players: Option<u64>,
    /// The CI mode: shorter and lighter (see the command's description).
    #[arg(long)]
    smoke: bool,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write the markdown report to FILE.
    #[arg(long, value_name = "FILE")]
    out_md: Option<PathBuf>,
}

impl LoadArgs {
    /// The rate, the flag's or the default, checked.
    fn rate(&self) -> anyhow::Result<f64> {
        let rate = self
            .rate
            .unwrap_or(if self.smoke { 300.0 } else { 1_000.0 });
        if !(rate.is_finite() && rate > 0.0) {
            anyhow::bail!("--rate must be a number above 0");
        }
        Ok(rate)
    }

    fn write_reports(&self, markdown: &str, json: &str) -> anyhow::Result<()> {
        for (path, text) in [(&self.out_md, markdown), (&self.json, json)] {
            if let Some(path) = path {
                std::fs::write(path, text).with_context(|| format!("write {}", path.display()))?;
            }
        }
        Ok(())
    }
}

#[derive(Debug, clap::Args)]
struct ChaosArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// A replica is stopped every this long (default 30s; smoke 15s).
    #[arg(long, value_parser = duration_arg, value_name = "DURATION")]
    stop_every: Option<std::time::Duration>,
    /// How long a stopped replica stays down, from its exit to its restart.
    #[arg(long, value_parser = duration_arg, value_name = "DURATION", default_value = "5s")]
    down: std::time::Duration,
    /// How replicas are stopped.
    #[arg(long, value_enum, default_value = "pod")]
    nemesis: Nemesis,
    /// Open-loop connections.
    #[arg(long, value_name = "N", default_value_t = 64)]
    connections: usize,
}

impl ChaosArgs {
    fn config(&self, command: String) -> anyhow::Result<ChaosConfig> {
        use std::time::Duration;
        let load = &self.load;
        let duration = load.duration.unwrap_or(if load.smoke {
            Duration::from_secs(60)
        } else {
            Duration::from_secs(15 * 60)
        });
        let rate = load.rate()?;
        let players = load.players.unwrap_or_else(|| (rate.ceil() as u64).max(1));
        if players == 0 {
            anyhow::bail!("--players must be at least 1");
        }
        let stop_every = self.stop_every.unwrap_or(if load.smoke {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(30)
        });
        if stop_every <= self.down {
            anyhow::bail!("--stop-every must be longer than --down");
        }
        if duration.is_zero() || self.connections == 0 {
            anyhow::bail!("--duration and --connections must be above 0");
        }
        Ok(ChaosConfig {
            kvs_raft: kvs_raft_binary(load.kvs_raft.as_ref())?,
            duration,
            rate,
            players,
            stop_every,
            down: self.down,
            mode: match self.nemesis {
                Nemesis::Pod => StopMode::Pod { grace: POD_GRACE },
                Nemesis::Kill => StopMode::Kill,
            },
            connections: self.connections,
            command,
            progress_every: 10,
        })
    }
}

#[derive(Debug, clap::Args)]
struct SoakArgs {
    #[command(flatten)]
    load: LoadArgs,
    /// Of the writes, the fraction that cross a checkpoint.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.2)]
    checkpoints: f64,
    /// The Redis server for the `BGREWRITEAOF` contrast (Debian's `redis-server`); `none` skips it.
    #[arg(long, value_name = "PATH", default_value = "redis-server")]
    redis_server: PathBuf,
}

impl SoakArgs {
    fn config(&self, command: String) -> anyhow::Result<SoakConfig> {
        let load = &self.load;
        let binary = kvs_raft_binary(load.kvs_raft.as_ref())?;
        let mut cfg = if load.smoke {
            SoakConfig::smoke(binary)
        } else {
            SoakConfig::full(binary)
        };
        if let Some(d) = load.duration {
            cfg.duration = d;
            cfg.warmup = cfg.warmup.min(d / 3);
        }
        cfg.rate = load.rate()?;
        if let Some(players) = load.players {
            cfg.players = players;
        }
        cfg.checkpoint_fraction = self.checkpoints;
        cfg.redis_server =
            (self.redis_server.as_os_str() != "none").then(|| self.redis_server.clone());
        cfg.command = command;
        cfg.validate().map_err(|e| anyhow::anyhow!(e))?;
        Ok(cfg)
    }
}

#[derive(Debug, clap::Args)]
struct CompareArgs {
    /// The CI mode: 2 s per shape, fewer shapes, a two-point sweep (≤ 90 s in all).
    #[arg(long)]
    smoke: bool,
    /// Also write the markdown (header, table, goals) to FILE.
    #[arg(long, value_name = "FILE")]
    out_md: Option<PathBuf>,
    /// Write the latency-vs-throughput curves of the sweep to FILE (SVG).
    #[arg(long, value_name = "FILE")]
    out_svg: Option<PathBuf>,
    /// The kvs-raft binary to measure (build it with `cargo build --release --bin kvs-raft`; default:
    /// `release/kvs-raft` in `$CARGO_TARGET_DIR`, else in `target/`).
    #[arg(long, value_name = "PATH")]
    kvs_raft: Option<PathBuf>,
    /// The etcd binary (Debian's `etcd-server`).
    #[arg(long, value_name = "PATH", default_value = "etcd")]
    etcd: PathBuf,
    /// The Redis server binary (Debian's `redis-server`).
    #[arg(long, value_name = "PATH", default_value = "redis-server")]
    redis_server: PathBuf,
    /// The common offered load of the open-loop put shape, puts/s (default: 1000, smoke 300).
    #[arg(long, value_name = "OPS")]
    open_rate: Option<f64>,
    /// Only these systems (comma-separated: kvs, etcd, redis-always, redis-everysec).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    only: Vec<String>,
}

impl CompareArgs {
    fn config(&self, command: String) -> anyhow::Result<CompareConfig> {
        let open_rate = self
            .open_rate
            .unwrap_or(if self.smoke { 300.0 } else { 1_000.0 });
        if !(open_rate.is_finite() && open_rate > 0.0) {
            anyhow::bail!("--open-rate must be a number above 0");
        }
        let plan = if self.smoke {
            Plan::smoke(open_rate)
        } else {
            Plan::full(open_rate)
        };
        let systems = if self.only.is_empty() {
            System::ALL.to_vec()
        } else {
            self.only
                .iter()
                .map(|s| match s.trim() {
                    "kvs" | "kvs-raft" => Ok(System::Kvs),
                    "etcd" => Ok(System::Etcd),
                    "redis-always" => Ok(System::RedisAlways),
                    "redis-everysec" => Ok(System::RedisEverysec),
                    other => Err(anyhow::anyhow!(
                        "--only: unknown system {other:?} (kvs, etcd, redis-always, redis-everysec)"
                    )),
                })
                .collect::<anyhow::Result<Vec<_>>>()?
        };
        let kvs_raft = if systems.contains(&System::Kvs) {
            kvs_raft_binary(self.kvs_raft.as_ref())?
        } else {
            self.kvs_raft.clone().unwrap_or_default()
        };
        Ok(CompareConfig {
            plan,
            kvs_raft,
            etcd: self.etcd.clone(),
            redis_server: self.redis_server.clone(),
            systems,
            command,
        })
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench-harness: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("start the async runtime")
    };
    match cli.command {
        Command::Chaos(args) => {
            let cfg = args.config(command_line)?;
            eprintln!(
                "chaos: {} stops, {:?} of load at {}/s; kvs-raft {}",
                cfg.mode.name(),
                cfg.duration,
                cfg.rate,
                cfg.kvs_raft.display()
            );
            let report = runtime()?.block_on(chaos(&cfg))?;
            let markdown = report.markdown();
            println!("{markdown}");
            args.load.write_reports(&markdown, &report.json())?;
            if !report.passed() {
                anyhow::bail!("the chaos run failed: a write was lost or a stop did not happen");
            }
            Ok(())
        }
        Command::Soak(args) => {
            let cfg = args.config(command_line)?;
            eprintln!(
                "soak: {:?} of checkpoint churn at {}/s over {} players; kvs-raft {}",
                cfg.duration,
                cfg.rate,
                cfg.players,
                cfg.kvs_raft.display()
            );
            let report = runtime()?.block_on(soak(&cfg))?;
            let markdown = report.markdown();
            println!("{markdown}");
            args.load.write_reports(&markdown, &report.json())?;
            Ok(())
        }
        Command::Compare(args) => {
            let cfg = args.config(command_line)?;
            eprintln!(
                "compare: {} systems, about {:?} of measurement",
                cfg.systems.len(),
                planned(&cfg.plan, &cfg.systems)
            );
            let outcome = runtime()?.block_on(compare(&cfg))?;
            println!("{}", outcome.markdown);
            if let Some(path) = &args.out_md {
                std::fs::write(path, &outcome.markdown)
                    .with_context(|| format!("write {}", path.display()))?;
            }
            match (&args.out_svg, &outcome.svg) {
                (Some(path), Some(svg)) => std::fs::write(path, svg)
                    .with_context(|| format!("write {}", path.display()))?,
                (Some(path), None) => eprintln!("no sweep ran: {} not written", path.display()),
                (None, _) => {}
            }
            Ok(())
        }
    }
}
