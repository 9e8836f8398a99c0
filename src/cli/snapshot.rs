//! `kvs-raft snapshot` subcommands: online backup to a file, its verification, and restoring a new
//! cluster from it (see docs/operations.md).

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Subcommand;

use super::ClientArgs;
use crate::config::{parse_cluster_id, parse_initial_cluster};

#[derive(Debug, Subcommand)]
pub enum SnapshotCommand {
    /// Save an online backup of a node's state to FILE: streamed from the first endpoint that serves it
    /// (any node; role admin) into FILE.part, synced, verified end to end, then renamed to FILE. A
    /// failed or corrupt download leaves no FILE. Prints the applied index, size and SHA-256.
    Save(SaveArgs),
    /// Print a backup file's header and verify the whole file (exit 1 on a flipped byte or a truncation).
    Status(SnapshotStatusArgs),
    /// Seed ONE node of a NEW cluster from a backup (restore every node of the new cluster from the same
    /// file, each with its own --id and the same --initial-cluster), then start each with
    /// `serve --id N --data-dir DIR --initial-cluster …`. The file is verified fully before anything is
    /// created; DIR must be absent or empty.
    Restore(RestoreArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:
  kvs-raft snapshot save site-a.kvsbak --endpoints http://10.0.0.1:7379,http://10.0.0.2:7379
  kvs-raft snapshot save /backups/site-a-$(date +%F).kvsbak --token-file /etc/kvs-raft/admin.token --json")]
pub struct SaveArgs {
    /// Where to write the backup (FILE.part while it downloads).
    pub file: PathBuf,
    /// The node to save from: the first endpoint that answers serves its own applied state (role
    /// admin). --timeout bounds reaching a node and every pause of the download, not its whole length.
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = "Examples:
  kvs-raft snapshot status site-a.kvsbak
  kvs-raft snapshot status site-a.kvsbak --json")]
pub struct SnapshotStatusArgs {
    /// The backup file.
    pub file: PathBuf,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Examples (one per node of the new cluster, then `serve` each with the same flags):
  kvs-raft snapshot restore site-a.kvsbak --data-dir /var/lib/kvs-raft --id 11 \\
      --initial-cluster 11=node1:7380,12=node2:7380,13=node3:7380 --cluster-id site-a-2
  kvs-raft serve --id 11 --cluster-id site-a-2 --data-dir /var/lib/kvs-raft \\
      --initial-cluster 11=node1:7380,12=node2:7380,13=node3:7380"
)]
pub struct RestoreArgs {
    /// The backup file.
    pub file: PathBuf,
    /// The new node's data directory (absent or empty).
    #[arg(long, value_name = "DIR")]
    pub data_dir: PathBuf,
    /// The new node's id (one of --initial-cluster).
    #[arg(long, value_name = "N")]
    pub id: u64,
    /// Every member of the new cluster, as `serve --initial-cluster` takes it: ID=HOST:PORT,...
    #[arg(long, value_name = "ID=HOST:PORT,...", value_parser = parse_initial_cluster)]
    pub initial_cluster: BTreeMap<u64, String>,
    /// The new cluster's id (default: the backup's).
    #[arg(long, value_name = "ID", value_parser = parse_cluster_id)]
    pub cluster_id: Option<String>,
    /// Print JSON (and no progress bar).
    #[arg(long)]
    pub json: bool,
}
