//! One Redis server on loopback (Debian's `redis-server` package, Redis 7) with the append-only file on.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use super::net::roundtrip;
use super::{free_ports, LaunchError, Proc, Stopped, READY_WITHIN};

/// When Redis fsyncs its append-only file (`appendfsync`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AofFsync {
    /// Before replying to the clients of one event-loop turn: every acknowledged write is on disk
    /// (the durable setting comparable to a Raft log fsynced per commit, on one machine).
    Always,
    /// Once a second in the background: up to a second of acknowledged writes can be lost.
    Everysec,
}

impl AofFsync {
    pub fn name(self) -> &'static str {
        match self {
            AofFsync::Always => "always",
            AofFsync::Everysec => "everysec",
        }
    }
}

/// One `redis-server`: `--appendonly yes --appendfsync {always|everysec} --save ""` (AOF only, no RDB
/// snapshots), bound to 127.0.0.1 on a free port, its files and log (`redis.log`) in a temporary
/// directory. Nothing else differs from the package's built-in defaults (the Debian config file is not read).
#[derive(Debug)]
pub struct RedisServer {
    addr: SocketAddr,
    fsync: AofFsync,
    proc: Proc,
    // Last: removed after the server is killed.
    _root: tempfile::TempDir,
}

impl RedisServer {
    /// Starts `redis_server` (a program name looked up in `PATH`, or a path) and waits until it answers
    /// `PING` with `PONG`.
    pub fn start(redis_server: &Path, fsync: AofFsync) -> Result<RedisServer, LaunchError> {
        let root = tempfile::Builder::new()
            .prefix("redis-bench-")
            .tempdir()
            .map_err(LaunchError::io("create a temporary directory"))?;
        let port = free_ports(1).map_err(LaunchError::io("pick a free port"))?[0];
        let args: Vec<String> = vec![
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            port.to_string(),
            "--dir".into(),
            root.path().display().to_string(),
            "--appendonly".into(),
            "yes".into(),
            "--appendfsync".into(),
            fsync.name().into(),
            "--save".into(),
            String::new(),
            "--daemonize".into(),
            "no".into(),
            // Log to stdout, i.e. the log file Proc opens.
            "--logfile".into(),
            String::new(),
        ];
        let proc = Proc::new(
            format!("redis-server ({})", fsync.name()),
            redis_server,
            args,
            root.path().join("redis.log"),
        );
        let mut server = RedisServer {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            fsync,
            proc,
            _root: root,
        };
        server.proc.start()?;
        server.wait_ready(READY_WITHIN)?;
        Ok(server)
    }

    /// Waits until the server answers `PING` with `PONG` (it has loaded its AOF).
    pub fn wait_ready(&mut self, within: Duration) -> Result<(), LaunchError> {
        let addr = self.addr;
        self.proc.wait_until(within, || {
            match roundtrip(addr, b"PING\r\n", Duration::from_secs(1)) {
                Ok(reply) if reply.starts_with("+PONG") => Ok(true),
                Ok(reply) => Err(format!("PING answered {:?}", reply.trim())),
                Err(e) => Err(format!("PING: {e}")),
            }
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `redis://127.0.0.1:port/`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub fn fsync(&self) -> AofFsync {
        self.fsync
    }

    /// The server's pid while it runs.
    pub fn pids(&self) -> Vec<u32> {
        self.proc.pid().into_iter().collect()
    }

    /// Pod-style stop: SIGTERM (Redis fsyncs its AOF and exits), SIGKILL after `grace`.
    pub fn stop(&mut self, grace: Duration) -> Result<Stopped, LaunchError> {
        self.proc.stop(grace)
    }

    /// SIGKILL the server.
    pub fn kill(&mut self) -> Result<(), LaunchError> {
        self.proc.kill()
    }

    /// Starts the server again on its port and files (it replays its AOF) and waits until it serves.
    pub fn restart(&mut self, within: Duration) -> Result<(), LaunchError> {
        self.proc.start()?;
        self.wait_ready(within)
    }
}
