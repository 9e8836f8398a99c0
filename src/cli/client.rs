//! The client and operations subcommands' flags: [`ClientArgs`], the connection flags every one of them
//! shares (flattened into each), and one `Args` struct per subcommand. Their doc comments are the help.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

/// The flags every client subcommand takes: where the nodes are, how to authenticate, the deadline,
/// and the output format.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Connection")]
pub struct ClientArgs {
    /// Node client URLs, tried in order (failover), e.g. http://10.0.0.1:7379,http://10.0.0.2:7379; https:// needs --cacert.
    #[arg(long, value_name = "URL[,URL...]", env = "KVS_RAFT_ENDPOINTS",
          default_value = crate::client::default_endpoint(), value_parser = endpoints)]
    pub endpoints: String,
    /// Bearer token (sites with auth); prefer --token-file or the environment (a flag shows in `ps`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "KVS_RAFT_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// File whose first line is the bearer token.
    #[arg(long, value_name = "PATH", env = "KVS_RAFT_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// CA certificate (PEM) that signed the nodes' client-port certificates; needed for https:// endpoints.
    #[arg(long, value_name = "PATH", env = "KVS_RAFT_CACERT")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for a client port with mutual TLS (--client-ca on the nodes); with --key.
    #[arg(long, value_name = "PATH", env = "KVS_RAFT_CERT")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) of --cert.
    // `id`: the subcommands' KEY argument is `key`.
    #[arg(
        long = "key",
        id = "tls_key",
        value_name = "PATH",
        env = "KVS_RAFT_KEY"
    )]
    pub key: Option<PathBuf>,
    /// Deadline of the whole command, every endpoint tried included (units ms, s, m).
    #[arg(long, value_name = "DURATION", env = "KVS_RAFT_TIMEOUT", default_value = "10s",
          value_parser = timeout)]
    pub timeout: Duration,
    /// Print the result as JSON on one line (field names are stable: docs/cli.md).
    #[arg(long, help_heading = "Output")]
    pub json: bool,
}

/// `--endpoints`, checked (the client parses it again: [`crate::client::endpoint`]).
fn endpoints(raw: &str) -> Result<String, String> {
    crate::client::endpoint::parse_endpoints(raw).map(|_| raw.to_owned())
}

/// `--timeout`: a duration above zero.
fn timeout(raw: &str) -> Result<Duration, String> {
    match crate::config::parse_duration(raw)? {
        Duration::ZERO => Err("must be more than 0".into()),
        d => Ok(d),
    }
}

/// `--consistency` of reads (SPEC §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Consistency {
    /// A ReadIndex round: the latest committed state (the default).
    Linearizable,
    /// The leader's lease: no round trip while the lease holds.
    Lease,
    /// This node's applied state, which may lag (the answer says by how much).
    Stale,
}

impl Consistency {
    pub fn name(self) -> &'static str {
        match self {
            Consistency::Linearizable => "linearizable",
            Consistency::Lease => "lease",
            Consistency::Stale => "stale",
        }
    }
}

/// The conditions of `put` and `del`.
#[derive(Debug, Clone, Args)]
pub struct WriteConditions {
    /// Epoch fence: refused (409 stale_epoch) unless the key's entity is at this epoch.
    #[arg(long, value_name = "N")]
    pub epoch: Option<u64>,
    /// Refused (409 condition_failed) unless the key's current version (ts) is this.
    #[arg(long, value_name = "TS")]
    pub if_version: Option<u64>,
}

/// The snapshot and consistency of `get` and `scan`.
#[derive(Debug, Clone, Args)]
pub struct ReadOptions {
    /// Read what was visible at this commit ts (µs since the epoch; within the retention window)
    /// instead of the latest state; a scan reads every page at it.
    #[arg(long, value_name = "TS")]
    pub at: Option<u64>,
    /// Read consistency.
    #[arg(long, value_enum)]
    pub consistency: Option<Consistency>,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  kvs-raft put player:42/pos 48.85,2.29
  kvs-raft put player:42/pos --value-file pos.bin --epoch 3
  echo -n hello | kvs-raft put greeting -
  kvs-raft put lock:a me --if-absent --json")]
pub struct PutArgs {
    /// The key (1-4096 bytes; its entity is the part before the first `/`).
    pub key: String,
    /// The value; `-` reads it from stdin. Or use --value-file.
    #[arg(required_unless_present = "value_file", conflicts_with = "value_file")]
    pub value: Option<String>,
    /// Read the value from this file (`-`: stdin), bytes as they are.
    #[arg(long, value_name = "PATH")]
    pub value_file: Option<PathBuf>,
    #[command(flatten)]
    pub conditions: WriteConditions,
    /// Refused (409 condition_failed) if the key exists.
    #[arg(long)]
    pub if_absent: bool,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  kvs-raft get player:42/pos
  kvs-raft get player:42/pos --at 1767225600000000
  kvs-raft get player:42/pos --consistency stale --json
  kvs-raft get blob > blob.bin")]
pub struct GetArgs {
    /// The key.
    pub key: String,
    #[command(flatten)]
    pub read: ReadOptions,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  kvs-raft del player:42/pos
  kvs-raft del player:42/pos --epoch 3 --if-version 1767225600000000 --json")]
pub struct DelArgs {
    /// The key.
    pub key: String,
    #[command(flatten)]
    pub conditions: WriteConditions,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  kvs-raft scan --prefix player:42/
  kvs-raft scan --start a --end b --limit 0 --json
  kvs-raft scan --prefix player: --limit 50 --consistency stale")]
pub struct ScanArgs {
    /// Keys starting with this (exclusive with --start/--end).
    #[arg(long, value_name = "PREFIX", conflicts_with_all = ["start", "end"])]
    pub prefix: Option<String>,
    /// First key of the range (inclusive; default: the first key).
    #[arg(long, value_name = "KEY")]
    pub start: Option<String>,
    /// End of the range (exclusive; default: no end).
    #[arg(long, value_name = "KEY")]
    pub end: Option<String>,
    /// At most this many keys, fetched page by page; 0: all of them.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    pub limit: usize,
    #[command(flatten)]
    pub read: ReadOptions,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  kvs-raft incr player:42/score
  kvs-raft incr player:42/score --delta -5 --json")]
pub struct IncrArgs {
    /// The key (its value is a decimal integer, absent counts as 0).
    pub key: String,
    /// Amount to add (may be negative).
    #[arg(
        long,
        value_name = "N",
        default_value_t = 1,
        allow_negative_numbers = true
    )]
    pub delta: i64,
    /// Epoch fence: refused (409 stale_epoch) unless the key's entity is at this epoch.
    #[arg(long, value_name = "N")]
    pub epoch: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  kvs-raft checkpoint player:42 --name cp1
  kvs-raft checkpoint player:42 --name cp2 --data 'lap 2' --epoch 1 --json")]
pub struct CheckpointArgs {
    /// The entity (a key's part before its first `/`, e.g. player:42).
    pub entity: String,
    /// The checkpoint's name.
    #[arg(long, value_name = "NAME")]
    pub name: String,
    /// Data recorded with the crossing.
    #[arg(long, value_name = "TEXT")]
    pub data: Option<String>,
    /// Epoch fence: refused (409 stale_epoch) unless the entity is at this epoch.
    #[arg(long, value_name = "N")]
    pub epoch: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  kvs-raft crossed player:42 cp1 && echo crossed
  kvs-raft crossed player:42 cp1 --json")]
pub struct CrossedArgs {
    /// The entity.
    pub entity: String,
    /// The checkpoint's name.
    pub name: String,
    /// Answer as of this commit ts (µs).
    #[arg(long, value_name = "TS")]
    pub at: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = r#"Examples:
  kvs-raft txn txn.json
  echo '{"compares":[{"key":"a","target":"exists","exists":false}],
         "success":[{"op":"put","key":"a","value":"1"}]}' | kvs-raft txn - --json"#)]
pub struct TxnArgs {
    /// JSON file with {"compares":[...],"success":[...],"failure":[...]} (docs/openapi.yaml, POST /v1/txn); `-`: stdin.
    pub file: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(after_long_help = "Examples:
  kvs-raft status
  kvs-raft status --endpoints http://10.0.0.1:7379,http://10.0.0.2:7379 --json")]
pub struct StatusArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List the members: id, role, peer and client addresses.
    #[command(after_long_help = "Examples:
  kvs-raft members list
  kvs-raft members list --json")]
    List(StatusArgs),
    /// Add a node as a learner and print the `kvs-raft serve --join` command to start it with; promote
    /// it once it has caught up.
    #[command(after_long_help = "Examples:
  kvs-raft members add --id 4 --peer-addr 10.0.0.4:7380 --client-addr 10.0.0.4:7379
  kvs-raft members add --peer-addr node4:7380 --client-addr node4:7379 --data-dir /var/lib/kvs-raft --json")]
    Add(MembersAddArgs),
    /// Remove a member (voter or learner); its id is never reused.
    #[command(after_long_help = "Examples:
  kvs-raft members remove 3
  kvs-raft members remove 3 --json")]
    Remove(MemberIdArgs),
    /// Promote a learner to voter (refused with 409 learner_not_caught_up until it has caught up).
    #[command(after_long_help = "Examples:
  kvs-raft members promote 4
  kvs-raft members promote 4 --timeout 30s --json")]
    Promote(MemberIdArgs),
}

#[derive(Debug, Args)]
pub struct MembersAddArgs {
    /// The new node's id (default: the leader picks the next unused one).
    #[arg(long, value_name = "ID")]
    pub id: Option<u64>,
    /// The address the other nodes dial for the new node's peer port.
    #[arg(long, value_name = "HOST:PORT")]
    pub peer_addr: String,
    /// The new node's client address (used to forward to it when it leads).
    #[arg(long, value_name = "HOST:PORT")]
    pub client_addr: Option<String>,
    /// The new node's data directory, only for the printed `serve` command.
    #[arg(long, value_name = "DIR", default_value = "/var/lib/kvs-raft")]
    pub data_dir: PathBuf,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
pub struct MemberIdArgs {
    /// The member's id.
    pub id: u64,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub enum LeaderCommand {
    /// Hand leadership to a voter and wait (within --timeout) until it leads.
    #[command(after_long_help = "Examples:
  kvs-raft leader transfer --to 2
  kvs-raft leader transfer --json")]
    Transfer(LeaderTransferArgs),
}

#[derive(Debug, Subcommand)]
pub enum SyncCommand {
    /// Upward federation at a glance, as the leader (whose worker syncs) reports it: state, central
    /// cursor, lag in entries and seconds, backlog against its quota, last error, backoff, restarts.
    /// Exit 1 when the site has no federation configured.
    #[command(after_long_help = "Examples:
  kvs-raft sync status
  kvs-raft sync status --json --endpoints http://10.0.0.1:7379,http://10.0.0.2:7379")]
    Status(StatusArgs),
    /// Stop syncing to the central store on every member (the flag is per node, so a new leader stays
    /// paused too); changes keep accumulating in the backlog. Not kept across a node's restart. Needs an
    /// admin token when auth is on. Exit 1 unless every member acknowledged.
    #[command(after_long_help = "Examples:
  kvs-raft sync pause
  kvs-raft sync pause --json")]
    Pause(StatusArgs),
    /// Sync again on every member (undoes `sync pause`). Exit 1 unless every member acknowledged.
    #[command(after_long_help = "Examples:
  kvs-raft sync resume")]
    Resume(StatusArgs),
}

#[derive(Debug, Args)]
pub struct LeaderTransferArgs {
    /// The voter to hand leadership to (default: the most caught-up other voter).
    #[arg(long, value_name = "ID")]
    pub to: Option<u64>,
    #[command(flatten)]
    pub client: ClientArgs,
}

#[derive(Debug, Args)]
#[command(
    after_long_help = "Exit status 0 only when the node is ready; 1 when it is not, or does not answer.

Examples:
  kvs-raft health
  kvs-raft health --endpoints http://127.0.0.1:7379 --timeout 2s --json
  # Dockerfile (no curl in the image):
  HEALTHCHECK --interval=10s --timeout=3s CMD [\"/kvs-raft\", \"health\", \"--timeout\", \"2s\"]"
)]
pub struct HealthArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

/// Shells `completions` can write for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use crate::cli::{Cli, Command};

    #[test]
    fn the_command_line_is_consistent() {
        crate::cli::command().debug_assert();
    }

    #[test]
    fn connection_flags_follow_the_arguments() {
        let cli = Cli::try_parse_from([
            "kvs-raft",
            "put",
            "k",
            "v",
            "--key",
            "k.pem",
            "--cert",
            "c.pem",
            "--timeout",
            "3s",
            "--json",
        ])
        .expect("parses");
        let Command::Put(put) = cli.command else {
            panic!("not put");
        };
        assert_eq!((put.key.as_str(), put.value.as_deref()), ("k", Some("v")));
        assert_eq!(
            put.client.key.as_deref(),
            Some(std::path::Path::new("k.pem"))
        );
        assert_eq!(put.client.timeout, std::time::Duration::from_secs(3));
        assert!(put.client.json);
    }
}
