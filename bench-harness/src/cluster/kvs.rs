//! A kvs-raft site: `n` `kvs-raft serve` processes on loopback founding one cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{free_ports, http_get, LaunchError, Proc, Stopped, READY_WITHIN};

/// One node of a [`KvsSite`].
#[derive(Debug)]
pub struct KvsNode {
    pub id: u64,
    /// The HTTP client API (`http://{client}/v1/...`).
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub data_dir: PathBuf,
    proc: Proc,
}

/// `n` `kvs-raft serve` nodes (ids 1..=n) founding cluster `bench` with `--initial-cluster`, each with
/// its data dir and log (`node-N.log`) in one temporary directory. Defaults as shipped: the Raft log is
/// fsynced before every commit is acknowledged; client auth is off because the client API listens on
/// loopback only. `RUST_LOG` is `warn` unless the harness's environment sets `KVS_RAFT_BENCH_LOG`.
#[derive(Debug)]
pub struct KvsSite {
    nodes: Vec<KvsNode>,
    binary: PathBuf,
    // Last: removed after the nodes are killed.
    _root: tempfile::TempDir,
}

impl KvsSite {
    /// Starts the site from `binary` and waits until every node answers `/readyz` with 200.
    pub fn start(binary: &Path, n: u64) -> Result<KvsSite, LaunchError> {
        let mut site = KvsSite::unstarted(binary, n)?;
        for node in &mut site.nodes {
            node.proc.start()?;
        }
        site.wait_ready(READY_WITHIN)?;
        Ok(site)
    }

    /// The site with its directories and ports chosen, nothing running (start each with
    /// [`KvsSite::restart_node`], or all with [`KvsSite::start`]).
    pub fn unstarted(binary: &Path, n: u64) -> Result<KvsSite, LaunchError> {
        let root = tempfile::Builder::new()
            .prefix("kvs-bench-")
            .tempdir()
            .map_err(LaunchError::io("create a temporary directory"))?;
        let count = usize::try_from(n).map_err(|_| LaunchError::Unknown {
            what: "site size",
            id: n,
        })?;
        let ports = free_ports(2 * count).map_err(LaunchError::io("pick free ports"))?;
        let addr = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        let initial = (1..=n)
            .zip(ports.chunks(2))
            .map(|(id, p)| format!("{id}={}", addr(p[1])))
            .collect::<Vec<_>>()
            .join(",");
        let log_level = std::env::var("KVS_RAFT_BENCH_LOG").unwrap_or_else(|_| "warn".into());
        let nodes = (1..=n)
            .zip(ports.chunks(2))
            .map(|(id, p)| {
                let (client, peer) = (addr(p[0]), addr(p[1]));
                let data_dir = root.path().join(format!("node-{id}"));
                let args: Vec<String> = vec![
                    "serve".into(),
                    "--id".into(),
                    id.to_string(),
                    "--cluster-id".into(),
                    "bench".into(),
                    "--data-dir".into(),
                    data_dir.display().to_string(),
                    "--listen-client".into(),
                    client.to_string(),
                    "--listen-peer".into(),
                    peer.to_string(),
                    "--initial-cluster".into(),
                    initial.clone(),
                ];
                let proc = Proc::new(
                    format!("kvs-raft node {id}"),
                    binary,
                    args,
                    root.path().join(format!("node-{id}.log")),
                )
                .env("RUST_LOG", &log_level)
                .env("NO_COLOR", "1");
                KvsNode {
                    id,
                    client,
                    peer,
                    data_dir,
                    proc,
                }
            })
            .collect();
        Ok(KvsSite {
            nodes,
            binary: binary.to_owned(),
            _root: root,
        })
    }

    pub fn binary(&self) -> &Path {
        &self.binary
    }

    pub fn nodes(&self) -> &[KvsNode] {
        &self.nodes
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// The client API address of every node, in id order.
    pub fn client_addrs(&self) -> Vec<SocketAddr> {
        self.nodes.iter().map(|n| n.client).collect()
    }

    /// The nodes' client URLs, comma-separated (`http://127.0.0.1:port,...`): the `--endpoints` of the
    /// kvs-raft client.
    pub fn endpoints(&self) -> String {
        self.nodes
            .iter()
            .map(|n| format!("http://{}", n.client))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client options for the whole site (every node an endpoint, the client's defaults otherwise).
    pub fn client_options(&self) -> kvs_raft::client::ClientOptions {
        kvs_raft::client::ClientOptions {
            endpoints: self.endpoints(),
            ..kvs_raft::client::ClientOptions::default()
        }
    }

    /// The pids of the running nodes (for resource sampling).
    pub fn pids(&self) -> Vec<u32> {
        self.nodes.iter().filter_map(|n| n.proc.pid()).collect()
    }

    pub fn pid(&self, id: u64) -> Option<u32> {
        self.nodes
            .iter()
            .find(|n| n.id == id)
            .and_then(|n| n.proc.pid())
    }

    fn node_mut(&mut self, id: u64) -> Result<&mut KvsNode, LaunchError> {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .ok_or(LaunchError::Unknown {
                what: "kvs-raft node",
                id,
            })
    }

    /// Waits until every running node answers `/readyz` with 200 (a leader known, applied caught up).
    pub fn wait_ready(&mut self, within: Duration) -> Result<(), LaunchError> {
        for node in &mut self.nodes {
            if node.proc.is_running() {
                wait_node_ready(node, within)?;
            }
        }
        Ok(())
    }

    /// Pod-style stop of node `id`: SIGTERM, SIGKILL after `grace`.
    pub fn stop_node(&mut self, id: u64, grace: Duration) -> Result<Stopped, LaunchError> {
        self.node_mut(id)?.proc.stop(grace)
    }

    /// SIGKILL node `id` (and reap it).
    pub fn kill_node(&mut self, id: u64) -> Result<(), LaunchError> {
        self.node_mut(id)?.proc.kill()
    }

    /// Starts node `id` again on its ports and data dir (it must not be running) without waiting.
    pub fn spawn_node(&mut self, id: u64) -> Result<(), LaunchError> {
        self.node_mut(id)?.proc.start()
    }

    /// Starts node `id` again and waits up to `within` until it answers `/readyz` with 200.
    pub fn restart_node(&mut self, id: u64, within: Duration) -> Result<(), LaunchError> {
        let node = self.node_mut(id)?;
        node.proc.start()?;
        wait_node_ready(node, within)
    }

    /// The leader as node `id` sees it (`GET /v1/cluster`), `None` if it knows none or does not answer.
    pub fn leader_seen_by(&self, id: u64) -> Option<u64> {
        let node = self.nodes.iter().find(|n| n.id == id)?;
        let (status, body) = http_get(node.client, "/v1/cluster", Duration::from_secs(1)).ok()?;
        if status != 200 {
            return None;
        }
        let view: serde_json::Value = serde_json::from_str(&body).ok()?;
        view.get("leader")?.as_u64()
    }

    /// The leader as the first answering node sees it.
    pub fn leader(&self) -> Option<u64> {
        self.nodes.iter().find_map(|n| self.leader_seen_by(n.id))
    }
}

fn wait_node_ready(node: &mut KvsNode, within: Duration) -> Result<(), LaunchError> {
    let client = node.client;
    node.proc.wait_until(within, || {
        match http_get(client, "/readyz", Duration::from_secs(1)) {
            Ok((200, _)) => Ok(true),
            Ok((status, body)) => Err(format!("/readyz {status}: {}", body.trim())),
            Err(e) => Err(format!("/readyz: {e}")),
        }
    })
}
