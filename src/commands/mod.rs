//! One module per subcommand; [`run`] dispatches the parsed command line to them.

pub mod check;
pub mod demo;
pub mod serve;
pub mod snapshot;
pub mod token;

use crate::cli::{Cli, Command, TokenCommand};
use check::CheckRequest;

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
            println!("kvs-raft {}", env!("CARGO_PKG_VERSION"));
            Ok(())
        }
    }
}
