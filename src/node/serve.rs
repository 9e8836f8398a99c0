//! One node of a site — the replica ([`Replica`]) plus the HTTP API — composed from a validated
//! [`ServeConfig`] and run on given listeners until a shutdown signal (the `serve` subcommand, systemd and
//! the tests drive the same [`serve`]).
//!
//! Shutdown, in order: hand leadership to the most caught-up voter if this node leads (the HTTP API
//! still serves meanwhile, forwarding to the new leader once it is elected), give the client
//! connections their close notice, stop accepting and let in-flight requests finish (bounded by the
//! grace period; what is left is answered or cut explicitly by the HTTP layer), make the engine's writes
//! durable, stop the peer transport and the node loop (every waiting request is failed explicitly), exit
//! 0.
//!
//! A node loop that dies on its own (a failed fsync, a full disk, a panic) leaves a process that cannot
//! serve: the same shutdown runs at once, and [`serve`] returns the loop's error, so `kvs-raft serve`
//! exits non-zero and its supervisor (systemd) restarts it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use raft_node::{LoopExit, Role};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::http_backend::ReplicaBackend;
use super::layout::DataDir;
use super::replica::{Replica, ReplicaConfig};
use super::systemd;
use crate::config::{Bootstrap, ClusterState, Secret, ServeConfig};
use crate::federation;
use crate::http::auth::Auth;
use crate::http::{self, Backend};
use crate::tls::{self, ClientPortTls, HttpTls};

/// Reload requests (SIGHUP in `kvs-raft serve`): every change of the counter asks each holder of
/// reloadable files (the TLS certificates of both ports, ...) to read them again. One place, so each
/// feature hooks its own reload into the same signal ([`serve_with`]).
pub type Reload = watch::Receiver<u64>;

/// The replica configuration a validated serve configuration describes.
pub fn replica_config(cfg: &ServeConfig, known_peers: BTreeMap<u64, String>) -> ReplicaConfig {
    let mut r = ReplicaConfig::new(cfg.id, &cfg.cluster_id, &cfg.data_dir);
    let g = &mut r.group;
    if let Bootstrap::InitialCluster(members) = &cfg.bootstrap {
        g.initial_cluster = members.clone();
    }
    g.known_peers = known_peers;
    g.existing_cluster = cfg.initial_cluster_state == ClusterState::Existing;
    g.advertise_peer = cfg.advertise_peer.clone();
    g.advertise_client = cfg.advertise_client.clone();
    g.peer_secret = cfg
        .peer_secret
        .as_ref()
        .map(|s| s.expose().to_vec())
        .unwrap_or_default();
    g.tick = cfg.raft.timing.tick;
    g.node.election_tick = cfg.raft.timing.election_ticks;
    g.node.heartbeat_tick = cfg.raft.timing.heartbeat_ticks;
    g.node.lease_margin_percent = cfg.raft.lease_margin_percent;
    g.node.compact_log_entries = cfg.raft.compact_log_entries;
    g.node.compact_log_bytes = cfg.raft.compact_log_bytes;
    g.node.max_entry_bytes = cfg.raft.max_entry_bytes;
    g.max_peer_connections = cfg.raft.max_peer_connections;
    g.node.max_clock_skew = cfg.raft.max_clock_skew;
    g.node.max_inflight_commands = cfg.limits.max_inflight_proposals;
    g.peer_tls = cfg.peer_tls.clone();
    g.loop_hook = super::systemd::watchdog_hook();
    r.engine_sync = cfg.engine_sync;
    r.reserve_space = cfg.reserve_space;
    r.engine.retention = cfg.retention;
    r.group.log_memory = super::memory::split(cfg.memory_budget, &mut r.engine);
    // With federation every replica keeps the change feed, so whichever node leads can sync.
    r.engine.change_feed = cfg.pd.is_some();
    r
}

/// The part of `GET /v1/cluster` a joining node needs.
#[derive(serde::Deserialize)]
struct ClusterMembers {
    members: Vec<MemberAddress>,
}

#[derive(serde::Deserialize)]
struct MemberAddress {
    id: u64,
    peer_addr: String,
}

/// A node joining with `--join URL` learns the current members' peer addresses from that member (over
/// https when the URL says so, verified with `tls`; with `token` as its bearer token when the site has
/// client auth on).
async fn fetch_members(
    join: &str,
    token: Option<&Secret>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> anyhow::Result<BTreeMap<u64, String>> {
    let url: hyper::Uri = format!("{}/v1/cluster", join.trim_end_matches('/'))
        .parse()
        .with_context(|| format!("join URL {join}"))?;
    let mut req = hyper::Request::get(url);
    if let Some(token) = token {
        let mut value = hyper::header::HeaderValue::from_bytes(
            &[b"Bearer ".as_slice(), token.expose()].concat(),
        )
        .context("the join token is not a valid header value")?;
        value.set_sensitive(true);
        req = req.header(hyper::header::AUTHORIZATION, value);
    }
    let req = req
        .body(hyper::Body::empty())
        .context("build the join request")?;
    let client = tls::https_client(tls, Duration::from_secs(10), Duration::from_secs(1));
    let resp = tokio::time::timeout(Duration::from_secs(10), client.request(req))
        .await
        .context("timed out asking the cluster for its members")?
        .with_context(|| format!("ask {join} for the cluster's members"))?;
    let status = resp.status();
    anyhow::ensure!(
        status != hyper::StatusCode::UNAUTHORIZED && status != hyper::StatusCode::FORBIDDEN,
        "{join} answered {status} to GET /v1/cluster: the site has client auth on; give a token of role \
         read or more with --join-token-file"
    );
    anyhow::ensure!(
        status.is_success(),
        "{join} answered {status} to GET /v1/cluster"
    );
    let body = hyper::body::to_bytes(resp.into_body()).await?;
    let view: ClusterMembers = serde_json::from_slice(&body)
        .context("the cluster view does not have the expected shape")?;
    let peers: BTreeMap<u64, String> = view
        .members
        .into_iter()
        .filter(|m| !m.peer_addr.is_empty())
        .map(|m| (m.id, m.peer_addr))
        .collect();
    anyhow::ensure!(!peers.is_empty(), "{join} listed no members");
    Ok(peers)
}

/// The members a `--join` node may talk to until its log holds the membership table (its first snapshot
/// brings it). On the first start they must be fetched. On a restart they are fetched again — the node
/// may have stopped before its first snapshot arrived, and with no peers known it would refuse the
/// leader's connections for ever — but a failure there is only a warning: a node whose log has the
/// table does not need them.
async fn join_peers(
    join: &str,
    token: Option<&Secret>,
    tls: Option<&Arc<rustls::ClientConfig>>,
    restarted: bool,
) -> anyhow::Result<BTreeMap<u64, String>> {
    match fetch_members(join, token, tls).await {
        Ok(peers) => Ok(peers),
        Err(e) if restarted => {
            tracing::warn!(
                error = format!("{e:#}"),
                join,
                "cannot ask the cluster for its members; continuing with the data dir's membership"
            );
            Ok(BTreeMap::new())
        }
        Err(e) => Err(e),
    }
}

/// The client API's authentication as configured; says on every start when it is off.
fn client_auth(cfg: &ServeConfig) -> Auth {
    match &cfg.client_auth {
        Some(a) => {
            tracing::info!(
                file = %a.file.display(),
                tokens = a.tokens.len(),
                metrics = cfg.metrics_auth.name(),
                "client auth on"
            );
            Auth::with_tokens(a.file.clone(), a.tokens.clone(), cfg.metrics_auth)
        }
        None if cfg.insecure_no_auth => {
            tracing::warn!(
                client = %cfg.listen_client,
                advertised = %cfg.advertise_client,
                "--insecure-no-auth: the client API is open to anyone who can reach it (reads, writes \
                 and membership changes); set --auth-token-file"
            );
            Auth::off()
        }
        None => {
            tracing::info!(client = %cfg.listen_client, "client auth off (loopback only)");
            Auth::off()
        }
    }
}

/// How long a stopping leader tries to hand leadership to another voter.
const HAND_OFF_WITHIN: Duration = Duration::from_secs(2);

/// Serve on the given listeners until `shutdown` resolves (systemd, tests and `run` share this), or until
/// the node loop dies on its own: then the same shutdown runs and the loop's error is returned.
pub async fn serve(
    cfg: ServeConfig,
    client: TcpListener,
    peer: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // Nobody ever asks for a reload (the sender lives until `serve` returns).
    let (_never, reload) = watch::channel(0);
    serve_with(cfg, client, peer, shutdown, reload).await
}

/// The client port's TLS (loaded from the files), and the client configuration towards the other
/// nodes' client ports (forwarding, `--join https://`).
type ClientSide = (
    Option<Arc<ClientPortTls>>,
    Option<Arc<rustls::ClientConfig>>,
);

fn client_side(cfg: &ServeConfig) -> anyhow::Result<ClientSide> {
    let own = cfg
        .client_tls
        .as_ref()
        .map(|files| ClientPortTls::load(files).map(Arc::new))
        .transpose()
        .context("client-port TLS")?;
    let outgoing = cfg
        .trusted_ca
        .as_ref()
        .map(|ca| tls::client_config(ca, own.as_deref()))
        .transpose()
        .context("trusted CA for the other nodes' client ports")?;
    Ok((own, outgoing))
}

/// Read the reloadable files again on every reload request — the token file, the TLS files of both
/// ports; a file that does not load keeps what is in use and logs an error.
fn reload_files(
    mut reload: Reload,
    auth: Auth,
    client_tls: Option<Arc<ClientPortTls>>,
    replica: Arc<Replica>,
) {
    let stopped = replica.shutdown_token();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                changed = reload.changed() => if changed.is_err() { return },
                () = stopped.cancelled() => return,
            }
            // The files are read on the blocking pool, not on an async worker.
            let (auth, client_tls, replica) =
                (auth.clone(), client_tls.clone(), Arc::clone(&replica));
            let read = tokio::task::spawn_blocking(move || {
                if auth.enabled() {
                    // `reload` logs its outcome.
                    let _ = auth.reload();
                } else {
                    tracing::info!("no token file to reload (client auth is off)");
                }
                if let Some(tls) = &client_tls {
                    match tls.reload() {
                        Ok(()) => tracing::info!("client-port TLS certificates reloaded"),
                        Err(e) => {
                            tracing::error!(error = %e, "client-port TLS reload failed; keeping the certificates in use")
                        }
                    }
                }
                match replica.reload_peer_tls() {
                    Ok(true) => tracing::info!("peer TLS certificates reloaded"),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "peer TLS reload failed; keeping the certificates in use")
                    }
                }
            });
            if let Err(e) = read.await {
                tracing::error!(error = %e, "the reload task failed");
            }
        }
    });
}

/// [`serve`], reading reloadable files again whenever `reload` changes.
pub async fn serve_with(
    cfg: ServeConfig,
    client: TcpListener,
    peer: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
    reload: Reload,
) -> anyhow::Result<()> {
    if cfg.insecure_peer_no_auth && cfg.peer_secret.is_none() && cfg.peer_tls.is_none() {
        tracing::warn!(
            peer = %cfg.listen_peer,
            advertised = %cfg.advertise_peer,
            "INSECURE: the peer port runs without TLS and without a secret (--insecure-peer-no-auth); \
             anyone who can reach it can take part in the Raft group"
        );
    }
    let auth = client_auth(&cfg);
    let (client_tls, outgoing_tls) = client_side(&cfg)?;
    let known_peers = match &cfg.bootstrap {
        Bootstrap::Join(url) => {
            let restarted = DataDir::new(&cfg.data_dir).raft().exists();
            join_peers(
                url,
                cfg.join_token.as_ref(),
                outgoing_tls.as_ref(),
                restarted,
            )
            .await?
        }
        Bootstrap::InitialCluster(_) => BTreeMap::new(),
    };
    let replica = Arc::new(
        Replica::start(replica_config(&cfg, known_peers), peer)
            .await
            .context("start the replica")?,
    );
    reload_files(reload, auth.clone(), client_tls.clone(), replica.clone());
    let mut backend = ReplicaBackend::new(replica.clone());
    if let Some(pd) = &cfg.pd {
        let site = cfg.site.clone().unwrap_or_else(|| cfg.cluster_id.clone());
        let central = federation::CentralConfig {
            pd: pd.clone(),
            tls: cfg
                .pd_tls
                .as_ref()
                .map(|t| (t.ca.clone(), t.cert.clone(), t.key.clone())),
            // tikv-client's own per-RPC timeout, inside the batch deadline.
            rpc_timeout: federation::DEFAULT_RPC_TIMEOUT.min(cfg.sync_timeout),
        };
        tracing::info!(site = %site, pd = ?pd, tls = cfg.pd_tls.is_some(), "upward federation on");
        let mut worker = federation::WorkerConfig::new(central, site);
        worker.batch_entries = cfg.sync_batch_entries;
        worker.batch_bytes = cfg.sync_batch_bytes;
        worker.batch_deadline = cfg.sync_timeout;
        let fed = federation::Federation::start(
            Arc::new(super::sync_site::NodeSite(replica.clone())),
            worker,
            cfg.sync_backlog_quota,
            replica.shutdown_token(),
        );
        backend = backend.with_federation(fed);
    }
    let limits = cfg.limits.clone();
    let http_tls = match (client_tls, outgoing_tls) {
        (Some(server), Some(client)) => Some(HttpTls { server, client }),
        _ => None,
    };
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(http::serve_tls(
        client,
        backend.clone(),
        limits,
        auth,
        http_tls,
        async move {
            let _ = http_stopped.await;
        },
    ));
    tracing::info!(
        node = cfg.id,
        cluster = %cfg.cluster_id,
        client = %cfg.listen_client,
        peer = %cfg.listen_peer,
        "serving"
    );
    tokio::spawn(systemd::ready_when_serving(
        backend.clone(),
        replica.shutdown_token(),
    ));
    let died = tokio::select! {
        () = shutdown => None,
        exit = replica.loop_ended() => match exit {
            LoopExit::Failed(why) => Some(why),
            LoopExit::Shutdown => Some("the node loop stopped".to_owned()),
        },
    };
    match &died {
        Some(why) => {
            tracing::error!(error = %why, "the node loop died: shutting down to be restarted");
            systemd::stopping("the node loop died: stopping to be restarted");
        }
        None => systemd::stopping("shutting down"),
    }

    // 1. Hand off leadership while the HTTP API still serves: requests that reach this node meanwhile
    //    wait for the new leader and are forwarded there (`http::forward`), and the other nodes' forwards
    //    find the new leader as soon as it is elected, so the site keeps serving without an election
    //    timeout and without errors.
    if let Ok(status) = replica.status(Instant::now() + HAND_OFF_WITHIN).await {
        if status.role == Role::Leader && status.voters.len() > 1 {
            let started = Instant::now();
            match backend
                .transfer_leader(None, started + HAND_OFF_WITHIN)
                .await
            {
                Ok(()) => tracing::info!(took = ?started.elapsed(), "leadership handed off"),
                Err(e) => {
                    tracing::warn!(error = %e, within = ?HAND_OFF_WITHIN, "leadership hand-off failed")
                }
            }
        }
    }
    // 2. The close notice, then stop accepting; in-flight requests finish within the grace period.
    let _ = stop_http.send(());
    if let Err(e) = server.await {
        tracing::error!(error = %e, "HTTP server task failed");
    }
    // 3. Stop the replica (it makes the engine durable last).
    let stopped = replica.shutdown().await;
    if let Some(why) = died {
        return Err(anyhow::anyhow!("{why}").context("the node loop died"));
    }
    stopped?;
    tracing::info!("stopped");
    Ok(())
}
