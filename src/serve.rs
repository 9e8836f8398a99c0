//! `kvs-raft serve`: one node of a site — the replica ([`Site`]) plus the HTTP API — until SIGTERM/SIGINT.
//!
//! Shutdown, in order: stop accepting client connections and let in-flight requests finish (bounded by
//! the grace period; what is left is answered or cut explicitly by the HTTP layer), hand leadership to
//! the most caught-up voter if this node leads, make the engine's writes durable, stop the peer
//! transport and the node loop (every waiting request is failed explicitly), exit 0.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use engine::EngineConfig;
use raft_node::Role;
use tokio::net::TcpListener;

use crate::backend::SiteBackend;
use crate::config::{Bootstrap, ServeConfig};
use crate::http::{self, Backend};
use crate::site::{Site, SiteConfig};

/// Run a node on its own runtime until SIGTERM or SIGINT.
pub fn run(cfg: ServeConfig) -> anyhow::Result<()> {
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
        serve(cfg, client, peer, shutdown_signal()).await
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

/// The site configuration a validated serve configuration describes.
pub fn site_config(cfg: &ServeConfig, known_peers: BTreeMap<u64, String>) -> SiteConfig {
    let mut site = SiteConfig::new(cfg.id, &cfg.cluster_id, &cfg.data_dir);
    if let Bootstrap::InitialCluster(members) = &cfg.bootstrap {
        site.initial_cluster = members.clone();
    }
    site.known_peers = known_peers;
    site.advertise_peer = cfg.advertise_peer.clone();
    site.advertise_client = cfg.advertise_client.clone();
    site.peer_secret = cfg
        .peer_secret
        .as_ref()
        .map(|s| s.expose().to_vec())
        .unwrap_or_default();
    site.sync = cfg.sync;
    site.engine = EngineConfig {
        retention: cfg.retention,
        ..EngineConfig::default()
    };
    site.tick = cfg.raft.tick;
    site.election_ticks = cfg.raft.election_ticks;
    site.heartbeat_ticks = cfg.raft.heartbeat_ticks;
    site.compact_log_entries = cfg.raft.compact_log_entries;
    site.compact_log_bytes = cfg.raft.compact_log_bytes;
    site.max_inflight_commands = cfg.limits.max_inflight_proposals;
    site.request_timeout = cfg.limits.request_timeout;
    site
}

/// The HTTP limits a validated serve configuration describes.
pub fn http_limits(cfg: &ServeConfig) -> http::Limits {
    http::Limits {
        max_body: u64::try_from(cfg.limits.max_body_bytes).unwrap_or(u64::MAX),
        max_key: cfg.limits.max_key_bytes,
        max_value: cfg.limits.max_value_bytes,
        request_timeout: cfg.limits.request_timeout,
        header_read_timeout: cfg.limits.header_read_timeout,
        max_connections: cfg.limits.max_connections,
        max_inflight_proposals: cfg.limits.max_inflight_proposals,
        // Drain (2 s) + hand-off (≤ 2 s) + flush stay within the 5 s a supervisor waits before SIGKILL.
        shutdown_grace: Duration::from_secs(2),
        ..http::Limits::default()
    }
}

/// A node joining with `--join URL` learns the current members' peer addresses from that member.
async fn fetch_members(join: &str) -> anyhow::Result<BTreeMap<u64, String>> {
    let url: hyper::Uri = format!("{}/v1/cluster", join.trim_end_matches('/'))
        .parse()
        .with_context(|| format!("join URL {join}"))?;
    let client = hyper::Client::new();
    let resp = tokio::time::timeout(Duration::from_secs(10), client.get(url))
        .await
        .context("timed out asking the cluster for its members")?
        .with_context(|| format!("ask {join} for the cluster's members"))?;
    anyhow::ensure!(
        resp.status().is_success(),
        "{join} answered {} to GET /v1/cluster",
        resp.status()
    );
    let body = hyper::body::to_bytes(resp.into_body()).await?;
    let view: serde_json::Value =
        serde_json::from_slice(&body).context("the cluster view is not JSON")?;
    let mut peers = BTreeMap::new();
    for m in view["members"].as_array().into_iter().flatten() {
        if let (Some(id), Some(addr)) = (m["id"].as_u64(), m["peer_addr"].as_str()) {
            if !addr.is_empty() {
                peers.insert(id, addr.to_string());
            }
        }
    }
    anyhow::ensure!(!peers.is_empty(), "{join} listed no members");
    Ok(peers)
}

/// Serve on the given listeners until `shutdown` resolves (systemd, tests and `run` share this).
pub async fn serve(
    cfg: ServeConfig,
    client: TcpListener,
    peer: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let known_peers = match &cfg.bootstrap {
        Bootstrap::Join(url) if !crate::site::raft_dir(&cfg.data_dir).exists() => {
            fetch_members(url).await?
        }
        _ => BTreeMap::new(),
    };
    let site = Arc::new(
        Site::start(site_config(&cfg, known_peers), peer)
            .await
            .context("start the replica")?,
    );
    let backend = SiteBackend::new(site.clone(), cfg.data_dir.clone());
    let limits = http_limits(&cfg);
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve(client, backend.clone(), limits, async move {
        let _ = http_stopped.await;
    }));
    tracing::info!(
        node = cfg.id,
        cluster = %cfg.cluster_id,
        client = %cfg.listen_client,
        peer = %cfg.listen_peer,
        "serving"
    );
    shutdown.await;

    // 1. Stop accepting; in-flight requests finish within the grace period.
    let _ = stop_http.send(());
    if let Err(e) = server.await {
        tracing::error!(error = %e, "HTTP server task failed");
    }
    // 2. Hand off leadership so the site keeps serving without waiting for an election timeout.
    if let Ok(status) = site.status().await {
        if status.role == Role::Leader && status.voters.len() > 1 {
            let started = Instant::now();
            match tokio::time::timeout(Duration::from_secs(2), backend.transfer_leader(None)).await
            {
                Ok(Ok(())) => tracing::info!(took = ?started.elapsed(), "leadership handed off"),
                Ok(Err(e)) => tracing::warn!(error = %e, "leadership hand-off failed"),
                Err(_) => tracing::warn!("leadership hand-off did not finish within 2 s"),
            }
        }
    }
    // 3. Flush and stop.
    if let Err(e) = site.engine().sync() {
        tracing::error!(error = %e, "final engine sync failed");
    }
    site.shutdown().await?;
    tracing::info!("stopped");
    Ok(())
}
