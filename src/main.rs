//! `kvs-raft`: the edge key-value appliance. `main` only parses arguments and maps the outcome to an exit
//! code (0 success, 1 operation failed, 2 usage error); the work is in [`commands::run`].

use std::process::ExitCode;

use kvs_raft::{cli, commands, config};

fn main() -> ExitCode {
    kvs_raft::node::memory::limit_malloc_arenas();
    // Test builds only (`--features failpoints`): failpoints named in FAILPOINTS fire for this process.
    #[cfg(feature = "failpoints")]
    let _failpoints = fail::FailScenario::setup();
    let args = cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    match commands::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // An invalid `serve` configuration is a usage error, like a bad flag (which clap exits with 2).
        Err(e) if e.downcast_ref::<config::ConfigError>().is_some() => {
            eprintln!("error: {e:#}\n\nFor more information, try 'kvs-raft serve --help'.");
            ExitCode::from(2)
        }
        // A bad argument found after parsing: a usage error too, like clap's own.
        Err(e) if e.downcast_ref::<commands::UsageError>().is_some() => {
            let command = e
                .downcast_ref::<commands::UsageError>()
                .map_or("", |u| u.command);
            eprintln!("error: {e:#}\n\nFor more information, try 'kvs-raft {command} --help'.");
            ExitCode::from(2)
        }
        // The command printed its answer (not crossed, not ready): exit 1 without more words.
        Err(e) if e.downcast_ref::<commands::Quiet>().is_some() => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}
