//! One module per subcommand (group); [`run`] dispatches the parsed command line to them.
//!
//! The client subcommands ([`kv`], [`entity`], [`status`], [`members`], [`leader`], [`health`]) talk to
//! the nodes through [`crate::client`], made from the shared flags by [`connect`], and print through
//! [`output`]. Errors decide the exit code in `main`: a [`UsageError`] is 2 (like clap's own), a
//! [`Quiet`] failure 1 without a message (the command printed its answer), anything else 1.

pub mod bench;
pub mod check;
pub mod completions;
pub mod demo;
pub mod entity;
pub mod health;
pub mod kv;
pub mod leader;
pub mod members;
pub mod output;
pub mod serve;
pub mod snapshot;
pub mod status;
pub mod sync;
pub mod token;

use crate::cli::{
    Cli, ClientArgs, Command, LeaderCommand, MembersCommand, SyncCommand, TokenCommand,
};
use crate::client::{Client, ClientError, ClientOptions};
use crate::commands::output::outln;
use check::CheckRequest;

/// A bad argument found after parsing (exit 2): what is wrong, naming the flag, and the subcommand
/// whose `--help` explains it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct UsageError {
    pub message: String,
    /// The subcommand, as typed (`put`, `members add`).
    pub command: &'static str,
}

impl UsageError {
    pub fn new(command: &'static str, message: impl Into<String>) -> UsageError {
        UsageError {
            message: message.into(),
            command,
        }
    }
}

/// The command failed and has said so on stdout (exit 1, nothing more to print): `crossed` when the
/// entity has not crossed, `health` when the node is not ready.
#[derive(Debug, thiserror::Error)]
#[error("failed")]
pub struct Quiet;

/// The client options of a subcommand's connection flags (unchecked: [`Client::new`] checks them).
pub fn client_options(args: &ClientArgs) -> ClientOptions {
    ClientOptions {
        endpoints: args.endpoints.clone(),
        token: args.token.clone(),
        token_file: args.token_file.clone(),
        cacert: args.cacert.clone(),
        cert: args.cert.clone(),
        key: args.key.clone(),
        timeout: Some(args.timeout),
    }
}

/// A client error of `command`: an invalid option is a [`UsageError`] (exit 2).
pub fn client_error(e: ClientError, command: &'static str) -> anyhow::Error {
    match e {
        ClientError::InvalidOption { .. } => UsageError::new(command, e.to_string()).into(),
        other => anyhow::Error::new(other),
    }
}

/// The client of a subcommand, from its connection flags; an invalid option is a [`UsageError`].
pub fn connect(args: &ClientArgs, command: &'static str) -> anyhow::Result<Client> {
    Client::new(client_options(args)).map_err(|e| client_error(e, command))
}

/// Run a client subcommand's future on a runtime of this thread.
fn block_on<F: std::future::Future<Output = anyhow::Result<()>>>(fut: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| anyhow::anyhow!("cannot start the async runtime: {e}"))?
        .block_on(fut)
}

/// Run the parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => {
            let cfg = crate::config::ServeConfig::from_args(args)?;
            serve::run(cfg)
        }
        Command::Demo {
            data_dir,
            players,
            updates,
        } => demo::run(data_dir, players, updates),
        Command::Check(args) => check::run(&CheckRequest {
            data_dir: args.data_dir,
            json: args.json,
            id: args.id,
            cluster_id: args.cluster_id,
        }),
        Command::Snapshot(command) => snapshot::run(command),
        Command::Token(TokenCommand::Create { name, role, append }) => {
            token::create(&name, role, append.as_deref())
        }
        Command::Version => {
            outln!("kvs-raft {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
        Command::Put(a) => block_on(kv::put(a)),
        Command::Get(a) => block_on(kv::get(a)),
        Command::Del(a) => block_on(kv::del(a)),
        Command::Scan(a) => block_on(kv::scan(a)),
        Command::Incr(a) => block_on(kv::incr(a)),
        Command::Txn(a) => block_on(kv::txn(a)),
        Command::Checkpoint(a) => block_on(entity::checkpoint(a)),
        Command::Crossed(a) => block_on(entity::crossed(a)),
        Command::Status(a) => block_on(status::status(a)),
        Command::Members(MembersCommand::List(a)) => block_on(members::list(a)),
        Command::Members(MembersCommand::Add(a)) => block_on(members::add(a)),
        Command::Members(MembersCommand::Remove(a)) => block_on(members::remove(a)),
        Command::Members(MembersCommand::Promote(a)) => block_on(members::promote(a)),
        Command::Leader(LeaderCommand::Transfer(a)) => block_on(leader::transfer(a)),
        Command::Sync(SyncCommand::Status(a)) => block_on(sync::status(a)),
        Command::Sync(SyncCommand::Pause(a)) => block_on(sync::pause(a)),
        Command::Sync(SyncCommand::Resume(a)) => block_on(sync::resume(a)),
        Command::Health(a) => block_on(health::health(a)),
        Command::Bench(a) => bench::run(a),
        Command::Completions { shell } => completions::completions(shell),
        Command::Man => completions::man(),
    }
}
