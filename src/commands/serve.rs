//! `kvs-raft serve`: bind the listeners and run a node until SIGTERM or SIGINT.

use anyhow::Context;
use tokio::net::TcpListener;

use crate::config::ServeConfig;
use crate::node;

/// Run a node on its own runtime until SIGTERM or SIGINT.
pub fn run(cfg: ServeConfig) -> anyhow::Result<()> {
    node::open_files::ensure(node::open_files::needed(&cfg))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("kvs-raft-io")
        .build()
        .context("start the async runtime")?;
    runtime.block_on(async move {
        std::fs::create_dir_all(&cfg.data_dir)
            .with_context(|| format!("create data dir {}", cfg.data_dir.display()))?;
        let client = TcpListener::bind(cfg.listen_client)
            .await
            .with_context(|| format!("listen for clients on {}", cfg.listen_client))?;
        let peer = TcpListener::bind(cfg.listen_peer)
            .await
            .with_context(|| format!("listen for peers on {}", cfg.listen_peer))?;
        node::serve(cfg, client, peer, shutdown_signal()).await
    })
}

/// Resolves on SIGTERM or SIGINT.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
                _ = int.recv() => tracing::info!("SIGINT: shutting down"),
            }
        }
        _ => {
            tracing::error!("cannot install signal handlers; stopping only on Ctrl-C");
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
