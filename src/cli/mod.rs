//! The command line (SPEC §4): clap definitions only. One parser; each subcommand's doc comment is its
//! help text. The `serve` flags are [`ServeArgs`], defined beside the configuration they feed; the client
//! and operations subcommands' flags are in [`client`] (their shared connection flags: [`ClientArgs`]).

pub mod client;

use std::path::PathBuf;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

pub use self::client::{
    CheckpointArgs, ClientArgs, Consistency, CrossedArgs, DelArgs, GetArgs, HealthArgs, IncrArgs,
    LeaderCommand, LeaderTransferArgs, MemberIdArgs, MembersAddArgs, MembersCommand, PutArgs,
    ReadOptions, ScanArgs, Shell, StatusArgs, SyncCommand, TxnArgs, WriteConditions,
};
use crate::config::{defaults, ServeArgs};
use crate::http::auth::Role;

mod bench;
mod check;
mod snapshot;

pub use bench::{BenchArgs, DurationArg, UpdateArg, WorkloadArg};
pub use check::CheckArgs;
pub use snapshot::{RestoreArgs, SaveArgs, SnapshotCommand, SnapshotStatusArgs};

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

// `Serve` carries every serve flag, the other variants a few; the command line is parsed once at start,
// so the size difference costs nothing and boxing would only complicate the clap derive.
#[allow(clippy::large_enum_variant)]
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
    /// The settings without a flag, with their defaults, are listed at the end of `serve --help`.
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
    /// Verify a stopped node's data directory offline: the engine, the Raft log, and how they fit.
    Check(CheckArgs),
    /// Online backup and restore: `save` a node's state to a file, `status` to verify one, `restore` to
    /// seed a node of a new cluster from one.
    #[command(subcommand)]
    Snapshot(SnapshotCommand),
    /// Print the version.
    #[command(after_long_help = "Examples:\n  kvs-raft version")]
    Version,
    /// Write a value (PUT /v1/kv/KEY).
    Put(PutArgs),
    /// Read a value: its raw bytes to stdout (GET /v1/kv/KEY); exit 1 if the key is absent.
    Get(GetArgs),
    /// Delete a key (DELETE /v1/kv/KEY).
    Del(DelArgs),
    /// List keys and values by prefix or range, following pages up to --limit.
    Scan(ScanArgs),
    /// Add to an integer value atomically; prints the new value.
    Incr(IncrArgs),
    /// Cross a checkpoint: the entity's epoch increments and all its earlier keys become invisible.
    Checkpoint(CheckpointArgs),
    /// Whether an entity has crossed a checkpoint: exit 0 if it has, 1 if not.
    Crossed(CrossedArgs),
    /// Run an atomic transaction (compares, then the success or failure ops) from a JSON file.
    Txn(TxnArgs),
    /// The site at a glance: members, roles, leader, term, commit and applied indexes, lag, health.
    Status(StatusArgs),
    /// Membership: list, add a learner, promote it, remove a member.
    #[command(subcommand)]
    Members(MembersCommand),
    /// Leadership: hand it to another voter.
    #[command(subcommand)]
    Leader(LeaderCommand),
    /// Upward federation to the central TiKV: status, pause, resume.
    #[command(subcommand)]
    Sync(SyncCommand),
    /// Load-test a site with the game workload: open loop at a fixed rate (or closed loop), latency
    /// percentiles from HDR histograms, errors by code, achieved vs offered rate.
    Bench(BenchArgs),
    /// Readiness of one node (GET /readyz): exit 0 only when it is ready; for container health checks.
    Health(HealthArgs),
    /// Print a shell completion script (bash, zsh or fish) to stdout.
    #[command(after_long_help = "Examples:
  kvs-raft completions bash > /etc/bash_completion.d/kvs-raft
  kvs-raft completions zsh > \"${fpath[1]}/_kvs-raft\"
  kvs-raft completions fish > ~/.config/fish/completions/kvs-raft.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff) to stdout.
    #[command(after_long_help = "Examples:
  kvs-raft man > /usr/share/man/man1/kvs-raft.1
  kvs-raft man | man -l -")]
    Man,
    /// Client API tokens (see docs/security.md).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Make a new random token (256 bits). Prints the token once (give it to the client; it is stored
    /// nowhere) and the line for the token file (`NAME ROLE sha256:HEX`, which holds only its hash). Add
    /// the line to the token file of every node, then send each node SIGHUP.
    Create {
        /// The token's name in the file (1-64 of [A-Za-z0-9._-]); unique within the file.
        #[arg(long, value_name = "NAME")]
        name: String,
        /// read (reads), write (reads and writes) or admin (also membership and leader transfer).
        #[arg(long, value_name = "ROLE", value_parser = parse_role)]
        role: Role,
        /// Append the line to this token file (created with mode 600 if missing; refused if the name is
        /// taken or the file is malformed) and print only the token.
        #[arg(long, value_name = "PATH")]
        append: Option<PathBuf>,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "expected read, write or admin".to_string())
}

/// The command line as clap sees it: [`Cli`], with each `serve` flag's help ending in its built-in
/// default and the settings that have no flag listed after the flags — all taken from
/// [`crate::config::defaults`], the one definition of every default.
pub fn command() -> clap::Command {
    Cli::command().mut_subcommand("serve", |mut serve| {
        let mut without_flag = Vec::new();
        for (key, value) in defaults() {
            if serve.get_arguments().any(|a| a.get_id() == key) {
                serve = serve.mut_arg(key, |arg| {
                    let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
                    arg.help(format!("{help} [default: {value}]"))
                });
            } else {
                without_flag.push(format!("  {key:<24} {value}"));
            }
        }
        serve.after_long_help(format!(
            "Settings without a flag (config file key, or KVS_RAFT_ + the key in upper case) and their \
             defaults:\n{}",
            without_flag.join("\n")
        ))
    })
}

/// Parse the process's arguments with [`command`]; exits with clap's message (code 2) on a usage error.
pub fn parse() -> Cli {
    let matches = command().get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}
