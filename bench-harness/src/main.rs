//! `bench-harness`: the comparison harness of issue 15 (dev-only). `scripts/compare.sh` installs the
//! servers, builds kvs-raft in release and runs `bench-harness compare`.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use bench_harness::compare::plan::{Plan, System};
use bench_harness::compare::{compare, planned, CompareConfig};
use clap::{Parser, Subcommand};

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
        let kvs_raft = self.kvs_raft.clone().unwrap_or_else(|| {
            let target = std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from);
            target.join("release").join("kvs-raft")
        });
        if systems.contains(&System::Kvs) && !kvs_raft.is_file() {
            anyhow::bail!(
                "--kvs-raft {}: no such file (build it: cargo build --release --bin kvs-raft)",
                kvs_raft.display()
            );
        }
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
    match cli.command {
        Command::Compare(args) => {
            let cfg = args.config(command_line)?;
            eprintln!(
                "compare: {} systems, about {:?} of measurement",
                cfg.systems.len(),
                planned(&cfg.plan, &cfg.systems)
            );
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("start the async runtime")?;
            let outcome = runtime.block_on(compare(&cfg))?;
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
