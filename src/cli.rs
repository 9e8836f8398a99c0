//! The command line (SPEC §4). One parser; each subcommand's doc comment is its help text.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kvs-raft",
    version,
    about = "Edge key-value appliance: a Raft group over RocksDB with per-entity invalidation"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the storage engine through the game workload on a scratch directory and print what happens:
    /// versioned reads, a checkpoint crossing, epoch fencing, bloom lookups, GC and throughput.
    Demo {
        /// Directory for the demo's data (default: a fresh directory under the system temp dir, removed after).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Number of simulated players.
        #[arg(long, default_value_t = 10_000)]
        players: u32,
        /// GPS updates per player.
        #[arg(long, default_value_t = 5)]
        updates: u32,
    },
    /// Verify a stopped node's data directory offline: every record decodes, invariants hold.
    Check {
        /// The node's data directory (as given to `serve --data-dir`).
        #[arg(long, env = "KVS_RAFT_DATA_DIR", default_value = "./kvs-data")]
        data_dir: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print the version.
    Version,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo {
            data_dir,
            players,
            updates,
        } => crate::demo::run(data_dir, players, updates),
        Command::Check { data_dir, json } => crate::check::run(&data_dir, json),
        Command::Version => {
            println!("kvs-raft {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
