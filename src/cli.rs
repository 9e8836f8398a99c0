//! The command line (SPEC §4). One parser; each subcommand's doc comment is its help text.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::SyncMode;

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
    /// Run a node. With no flags: a single-node dev cluster with data in ./kvs-data, the client API on
    /// 127.0.0.1:7379 and the peer port on 127.0.0.1:7380.
    ///
    /// Every setting can also come from the TOML file (--config; keys are the flag names with `_` for `-`,
    /// plus limits and Raft tuning that have no flag) and from environment variables KVS_RAFT_<KEY>
    /// (e.g. KVS_RAFT_DATA_DIR). Precedence, lowest to highest: built-in defaults < config file <
    /// environment < flags. The whole configuration is validated before anything is created or bound;
    /// an invalid one exits with code 2.
    ///
    /// Settings without a flag (file key, or KVS_RAFT_ + the key in upper case), with their defaults:
    /// max_key_bytes 4096, max_value_bytes "1MiB", max_body_bytes "4MiB", max_connections 4096,
    /// header_read_timeout "5s", request_timeout "5s", max_inflight_proposals 20000,
    /// compact_log_entries 10000, compact_log_bytes "64MiB", tick "100ms", election_ticks 10,
    /// heartbeat_ticks 3.
    Serve(ServeArgs),
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

/// `kvs-raft serve` flags. None has a clap default or a clap `env`: defaults, the config file and
/// `KVS_RAFT_*` variables are layered under them by [`crate::config::ServeConfig::from_args`].
#[derive(Debug, Clone, Default, Args)]
pub struct ServeArgs {
    /// TOML config file; unknown keys are refused. [env: KVS_RAFT_CONFIG]
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// This node's id: ≥ 1, unique in the cluster, never reused. [default: 1]
    #[arg(long, value_name = "ID")]
    pub id: Option<u64>,
    /// Cluster name, checked on every peer connection and stored in the data dir; 1-64 of [A-Za-z0-9._-].
    /// [default: dev]
    #[arg(long, value_name = "NAME")]
    pub cluster_id: Option<String>,
    /// Data directory (Raft log and state machine). [default: ./kvs-data]
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Client API listen address (an IP, not a host name). [default: 127.0.0.1:7379]
    #[arg(long, value_name = "IP:PORT")]
    pub listen_client: Option<String>,
    /// Peer (Raft) listen address (an IP, not a host name). [default: 127.0.0.1:7380]
    #[arg(long, value_name = "IP:PORT")]
    pub listen_peer: Option<String>,
    /// Members of a new cluster and their peer addresses, e.g. 1=10.0.0.1:7380,2=10.0.0.2:7380,3=10.0.0.3:7380;
    /// must include --id. Ignored on restart (the data dir holds the membership). Exclusive with --join.
    /// [default: this node alone]
    #[arg(long, value_name = "ID=HOST:PORT,...")]
    pub initial_cluster: Option<String>,
    /// Client URL of a running member, for a node added with `members add`. Exclusive with
    /// --initial-cluster.
    #[arg(long, value_name = "URL")]
    pub join: Option<String>,
    /// Client address other nodes and clients use to reach this node. Required when --listen-client is
    /// 0.0.0.0 or [::]. [default: --listen-client]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_client: Option<String>,
    /// Peer address other nodes use to reach this node. Required when --listen-peer is 0.0.0.0 or [::] and
    /// --initial-cluster does not name it. [default: this node's --initial-cluster entry, else --listen-peer]
    #[arg(long, value_name = "HOST:PORT")]
    pub advertise_peer: Option<String>,
    /// How long old versions stay readable (units us, ms, s, m, h). [default: 5s]
    #[arg(long, value_name = "DURATION")]
    pub retention: Option<String>,
    /// When writes are fsynced: `always` before every acknowledgement, `batch` one fsync per batch of
    /// writes. [default: always]
    #[arg(long, value_name = "MODE")]
    pub sync: Option<SyncMode>,
    /// TiKV placement driver endpoints for upward federation; none = federation off.
    #[arg(long, value_name = "HOST:PORT[,HOST:PORT]")]
    pub pd: Option<String>,
    /// This site's name in the central store; 1-64 of [A-Za-z0-9._-].
    #[arg(long, value_name = "NAME")]
    pub site: Option<String>,
    /// File holding the peer port's shared secret (≥ 16 bytes; trailing whitespace ignored). Required when
    /// --listen-peer is not a loopback address. Alternatively the secret itself in env KVS_RAFT_PEER_SECRET.
    #[arg(long, value_name = "PATH")]
    pub peer_secret_file: Option<PathBuf>,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let cfg = crate::config::ServeConfig::from_args(args)?;
            crate::serve::run(cfg)
        }
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
