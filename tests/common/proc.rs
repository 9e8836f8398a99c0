//! A cluster of real `kvs-raft serve` processes on loopback: spawn, SIGKILL, SIGSTOP/SIGCONT, SIGTERM,
//! restart on the same ports and data dir. Each node's stderr (`RUST_LOG=info`) goes to `node-N.log` in
//! its directory; when a test panics the tail of every log is printed. Every child is killed on drop.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::http::Http;

pub struct Node {
    pub id: u64,
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    /// How the node finds its cluster: `--initial-cluster …` for the founders, `--join URL` for a node
    /// added later (see [`Cluster::add_node`]); and any further `serve` flags.
    pub args: Vec<String>,
    child: Option<Child>,
    /// Set while SIGSTOPped.
    pub stopped: bool,
    /// Extra environment of the process (`KVS_RAFT_*` settings, `FAILPOINTS`), used on every (re)start.
    pub env: Vec<(String, String)>,
}

pub struct Cluster {
    pub name: String,
    pub cluster_id: String,
    pub nodes: BTreeMap<u64, Node>,
    initial: String,
    _root: tempfile::TempDir,
}

/// `n` distinct free loopback ports (all held at once so they differ, then released for the children).
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

impl Cluster {
    /// Spawn `n` nodes founding a new cluster (returns at once; see [`Cluster::wait_serving`]).
    pub fn start(name: &str, n: u64) -> Cluster {
        Cluster::start_with(name, n, |_| {})
    }

    /// As [`Cluster::start`], with `prepare` run on each node (its directories exist, its data dir does
    /// not yet) before any is spawned: set its environment, mount a file system on its data dir, ...
    pub fn start_with(name: &str, n: u64, mut prepare: impl FnMut(&mut Node)) -> Cluster {
        let ids: Vec<u64> = (1..=n).collect();
        let mut cluster = Cluster::unstarted(name, &format!("proc-{name}"), &ids);
        for node in cluster.nodes.values_mut() {
            prepare(node);
        }
        for id in ids {
            cluster.spawn(id);
        }
        cluster
    }

    /// Nodes `ids` founding cluster `cluster_id` (fresh loopback ports and directories, each started
    /// with `--initial-cluster` of exactly them), none spawned yet: fill their data dirs first (e.g.
    /// `kvs-raft snapshot restore`), then [`Cluster::spawn`] each.
    pub fn unstarted(name: &str, cluster_id: &str, ids: &[u64]) -> Cluster {
        let root = tempfile::Builder::new()
            .prefix(&format!("kvs-proc-{name}-"))
            .tempdir()
            .expect("tempdir");
        let ports = free_ports(2 * ids.len());
        let mut nodes = BTreeMap::new();
        for (i, &id) in ids.iter().enumerate() {
            nodes.insert(
                id,
                new_node(root.path(), id, ports[2 * i], ports[2 * i + 1], Vec::new()),
            );
        }
        let initial = nodes
            .values()
            .map(|n| format!("{}={}", n.id, n.peer))
            .collect::<Vec<_>>()
            .join(",");
        for node in nodes.values_mut() {
            node.args = vec!["--initial-cluster".into(), initial.clone()];
        }
        Cluster {
            name: name.to_owned(),
            cluster_id: cluster_id.to_owned(),
            nodes,
            initial,
            _root: root,
        }
    }

    /// The `--initial-cluster` value the founders were started with.
    pub fn initial_cluster(&self) -> &str {
        &self.initial
    }

    /// Make room for node `id` (fresh ports and directory) started with `args` (e.g. `--join URL`);
    /// it is not spawned.
    pub fn add_node(&mut self, id: u64, args: Vec<String>) {
        assert!(!self.nodes.contains_key(&id), "node {id} exists");
        let root = self._root.path().to_path_buf();
        let ports = free_ports(2);
        self.nodes
            .insert(id, new_node(&root, id, ports[0], ports[1], args));
    }

    /// Start node `id` (first start or restart on the same ports and data dir).
    pub fn spawn(&mut self, id: u64) {
        let args = self.nodes.get(&id).expect("known node").args.clone();
        self.spawn_as(id, id, &args);
    }

    /// Start a process on node `slot`'s ports, data dir and log, but with `--id id` and the given
    /// bootstrap flags (a node started with the wrong id, or with other flags).
    pub fn spawn_as(&mut self, slot: u64, id: u64, args: &[String]) {
        let node = self.nodes.get_mut(&slot).expect("known node");
        assert!(node.child.is_none(), "node {slot} is already running");
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .expect("open node log");
        let child = Command::new(env!("CARGO_BIN_EXE_kvs-raft"))
            .args(["serve", "--id", &id.to_string(), "--cluster-id"])
            .arg(&self.cluster_id)
            .arg("--data-dir")
            .arg(&node.data_dir)
            .args([
                "--listen-client",
                &node.client.to_string(),
                "--listen-peer",
                &node.peer.to_string(),
            ])
            .args(args)
            .env_clear()
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .env("RUST_BACKTRACE", "1")
            .envs(node.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log)
            .spawn()
            .expect("spawn kvs-raft serve");
        node.child = Some(child);
        node.stopped = false;
    }

    pub fn ids(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    pub fn addr(&self, id: u64) -> SocketAddr {
        self.nodes[&id].client
    }

    /// `(id, client address)` of every node.
    pub fn targets(&self) -> Vec<(u64, SocketAddr)> {
        self.nodes.values().map(|n| (n.id, n.client)).collect()
    }

    pub fn pid(&self, id: u64) -> u32 {
        self.nodes[&id]
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("node {id} is not running"))
            .id()
    }

    fn signal(&self, id: u64, sig: &str) {
        let pid = self.pid(id).to_string();
        let status = Command::new("kill")
            .args([sig, &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill {sig} {pid} (node {id}) failed");
    }

    /// SIGKILL node `id` and reap it; returns when the process is gone.
    pub fn kill9(&mut self, id: u64) {
        let node = self.nodes.get_mut(&id).expect("known node");
        let mut child = node
            .child
            .take()
            .unwrap_or_else(|| panic!("node {id} is not running"));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        node.stopped = false;
    }

    pub fn sigstop(&mut self, id: u64) {
        self.signal(id, "-STOP");
        self.nodes.get_mut(&id).expect("node").stopped = true;
    }

    pub fn sigcont(&mut self, id: u64) {
        self.signal(id, "-CONT");
        self.nodes.get_mut(&id).expect("node").stopped = false;
    }

    pub fn sigterm(&mut self, id: u64) {
        self.signal(id, "-TERM");
    }

    /// SIGHUP: the node reloads its token file and reads its certificates again.
    pub fn sighup(&self, id: u64) {
        self.signal(id, "-HUP");
    }

    /// The exit status if node `id` has exited (the child is reaped and forgotten then).
    pub fn try_exit(&mut self, id: u64) -> Option<ExitStatus> {
        let node = self.nodes.get_mut(&id).expect("known node");
        let status = node.child.as_mut()?.try_wait().expect("try_wait")?;
        node.child = None;
        Some(status)
    }

    /// Wait up to `within` for node `id` to exit; its exit status, or `None` if it is still running.
    pub async fn wait_exit(&mut self, id: u64, within: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.try_exit(id) {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Node `id`'s whole log.
    pub fn log_text(&self, id: u64) -> String {
        std::fs::read(&self.nodes[&id].log)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// Wait until every listed node answers `/healthz`; panics (with the node's log) if one exits first.
    pub async fn wait_serving(&mut self, http: &Http, ids: &[u64], within: Duration) {
        let deadline = Instant::now() + within;
        for &id in ids {
            loop {
                if let Some(status) = self.try_exit(id) {
                    panic!(
                        "[{}] node {id} exited with {status} before serving:\n{}",
                        self.name,
                        self.log_tail(id, 40)
                    );
                }
                if let Ok(r) = http.get(self.addr(id), "/healthz").await {
                    if r.status == 200 {
                        break;
                    }
                }
                assert!(
                    Instant::now() < deadline,
                    "[{}] node {id} is not serving after {within:?}:\n{}",
                    self.name,
                    self.log_tail(id, 40)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }

    /// The last `lines` lines of node `id`'s log.
    pub fn log_tail(&self, id: u64, lines: usize) -> String {
        let path = &self.nodes[&id].log;
        let mut text = String::new();
        if let Ok(mut f) = File::open(path) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
            let mut bytes = Vec::new();
            let _ = f.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        let all: Vec<&str> = text.lines().collect();
        let from = all.len().saturating_sub(lines);
        format!(
            "---- node {id} log ({}), last {} lines ----\n{}",
            path.display(),
            all.len() - from,
            all[from..].join("\n")
        )
    }
}

/// Node `id` on loopback ports `client` and `peer`, with its directory under `root`.
fn new_node(root: &std::path::Path, id: u64, client: u16, peer: u16, args: Vec<String>) -> Node {
    let dir = root.join(format!("node-{id}"));
    std::fs::create_dir_all(&dir).expect("node dir");
    Node {
        id,
        client: SocketAddr::from(([127, 0, 0, 1], client)),
        peer: SocketAddr::from(([127, 0, 0, 1], peer)),
        data_dir: dir.join("data"),
        log: dir.join(format!("node-{id}.log")),
        args,
        child: None,
        stopped: false,
        env: Vec::new(),
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for id in self.ids() {
                eprintln!("[{}] {}", self.name, self.log_tail(id, 60));
            }
        }
        for node in self.nodes.values_mut() {
            if let Some(mut child) = node.child.take() {
                // SIGKILL also ends a stopped process.
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}
