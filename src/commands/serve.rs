//! `kvs-raft serve`: bind the listeners and run a node until SIGTERM or SIGINT; SIGHUP asks it to read
//! its reloadable files again (the TLS certificates of both ports, ...).

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
        node::serve_with(cfg, client, peer, shutdown_signal(), reload_signal()?).await
    })
}

/// A reload request (the counter changes) on every SIGHUP, for as long as the process runs.
fn reload_signal() -> anyhow::Result<node::Reload> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("install the SIGHUP handler")?;
    let (tx, rx) = tokio::sync::watch::channel(0u64);
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the token file and certificates");
            tx.send_modify(|n| *n += 1);
        }
    });
    Ok(rx)
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
