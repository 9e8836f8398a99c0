//! etcd members on loopback (Debian's `etcd-server` package, etcd 3.4) with a static initial cluster.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::{free_ports, http_get, LaunchError, Proc, Stopped, READY_WITHIN};

/// The most operations one etcd transaction may hold (etcd's `--max-txn-ops`, default 128). A batch of
/// 100 game updates is one transaction of 200 puts (position and score of each player), so the harness
/// raises the limit; nothing else about etcd's defaults is changed (fsync of the WAL on every commit,
/// snapshot count, quota).
pub const ETCD_MAX_TXN_OPS: u32 = 1024;

/// `n` etcd members (`m1`..`mn`) founding one cluster: `--initial-cluster` static, `--initial-cluster-state
/// new`, data dirs and logs (`m1.log`, ...) in one temporary directory.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<(SocketAddr, Proc)>,
    // Last: removed after the members are killed.
    _root: tempfile::TempDir,
}

impl EtcdCluster {
    /// Starts `n` members of `etcd` (a program name looked up in `PATH`, or a path) and waits until every
    /// member's `/health` answers `{"health":"true"}` (a leader is elected and the member serves).
    pub fn start(etcd: &Path, n: usize) -> Result<EtcdCluster, LaunchError> {
        let root = tempfile::Builder::new()
            .prefix("etcd-bench-")
            .tempdir()
            .map_err(LaunchError::io("create a temporary directory"))?;
        let ports = free_ports(2 * n).map_err(LaunchError::io("pick free ports"))?;
        let url = |port: u16| format!("http://127.0.0.1:{port}");
        let initial = (1..=n)
            .zip(ports.chunks(2))
            .map(|(i, p)| format!("m{i}={}", url(p[1])))
            .collect::<Vec<_>>()
            .join(",");
        let token = root
            .path()
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_else(|| "etcd-bench".into());
        let mut members = Vec::with_capacity(n);
        for (i, p) in (1..=n).zip(ports.chunks(2)) {
            let (client, peer) = (p[0], p[1]);
            let data_dir = root.path().join(format!("m{i}"));
            let args: Vec<String> = vec![
                format!("--name=m{i}"),
                format!("--data-dir={}", data_dir.display()),
                format!("--listen-client-urls={}", url(client)),
                format!("--advertise-client-urls={}", url(client)),
                format!("--listen-peer-urls={}", url(peer)),
                format!("--initial-advertise-peer-urls={}", url(peer)),
                format!("--initial-cluster={initial}"),
                "--initial-cluster-state=new".into(),
                format!("--initial-cluster-token={token}"),
                format!("--max-txn-ops={ETCD_MAX_TXN_OPS}"),
                "--logger=zap".into(),
                "--log-level=warn".into(),
            ];
            let mut proc = Proc::new(
                format!("etcd member m{i}"),
                etcd,
                args,
                root.path().join(format!("m{i}.log")),
            );
            proc.start()?;
            members.push((SocketAddr::from(([127, 0, 0, 1], client)), proc));
        }
        let mut cluster = EtcdCluster {
            members,
            _root: root,
        };
        cluster.wait_ready(READY_WITHIN)?;
        Ok(cluster)
    }

    /// Waits until every running member's `/health` says `true`.
    pub fn wait_ready(&mut self, within: Duration) -> Result<(), LaunchError> {
        for (client, proc) in &mut self.members {
            if !proc.is_running() {
                continue;
            }
            let client = *client;
            proc.wait_until(within, || {
                match http_get(client, "/health", Duration::from_secs(1)) {
                    Ok((200, body)) if body.contains("\"true\"") => Ok(true),
                    Ok((status, body)) => Err(format!("/health {status}: {}", body.trim())),
                    Err(e) => Err(format!("/health: {e}")),
                }
            })?;
        }
        Ok(())
    }

    /// The client endpoints (`http://127.0.0.1:port`), in member order.
    pub fn endpoints(&self) -> Vec<String> {
        self.members
            .iter()
            .map(|(addr, _)| format!("http://{addr}"))
            .collect()
    }

    /// The pids of the running members.
    pub fn pids(&self) -> Vec<u32> {
        self.members.iter().filter_map(|(_, p)| p.pid()).collect()
    }

    fn member_mut(&mut self, index: usize) -> Result<&mut Proc, LaunchError> {
        self.members
            .get_mut(index)
            .map(|(_, p)| p)
            .ok_or(LaunchError::Unknown {
                what: "etcd member index",
                id: u64::try_from(index).unwrap_or(u64::MAX),
            })
    }

    /// Pod-style stop of member `index` (0-based).
    pub fn stop_member(&mut self, index: usize, grace: Duration) -> Result<Stopped, LaunchError> {
        self.member_mut(index)?.stop(grace)
    }

    /// SIGKILL member `index` (0-based).
    pub fn kill_member(&mut self, index: usize) -> Result<(), LaunchError> {
        self.member_mut(index)?.kill()
    }

    /// Starts member `index` again on its data dir (it rejoins the cluster it founded), without waiting.
    pub fn restart_member(&mut self, index: usize) -> Result<(), LaunchError> {
        self.member_mut(index)?.start()
    }
}
