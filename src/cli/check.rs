//! `kvs-raft check` flags.

use std::path::PathBuf;

/// Verify a stopped node's data directory offline and print one line per check (exit 1 if any fails):
/// the engine (every record decodes, its invariants hold, every block's checksum), the Raft log (every
/// entry decodes, no holes, terms never go back, the log reaches the commit index, cluster and node id
/// recorded, the membership table decodes), and that the state is not behind the log.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:
  kvs-raft check --data-dir /var/lib/kvs-raft
  kvs-raft check --data-dir /var/lib/kvs-raft --id 2 --cluster-id site-a --json")]
pub struct CheckArgs {
    /// The node's data directory (as given to `serve --data-dir`).
    #[arg(long, env = "KVS_RAFT_DATA_DIR", default_value = "./kvs-data")]
    pub data_dir: PathBuf,
    /// Print the report as JSON (stable field names).
    #[arg(long)]
    pub json: bool,
    /// Fail unless the data dir belongs to this node id.
    #[arg(long, value_name = "N")]
    pub id: Option<u64>,
    /// Fail unless the data dir belongs to this cluster.
    #[arg(long, value_name = "ID")]
    pub cluster_id: Option<String>,
}
