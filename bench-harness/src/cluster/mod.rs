//! Servers under test as child processes on loopback.
//!
//! Every launcher owns a temporary directory (data dirs and one log file per process) and free loopback
//! ports, starts its processes, waits until they serve, and on drop SIGKILLs whatever still runs, reaps
//! it and removes the directory — also when the harness returns an error or panics (unwinding). A
//! harness killed by SIGKILL itself cannot clean up: its children then outlive it.
//!
//! * [`KvsSite`]: `n` `kvs-raft serve` nodes founding one cluster (fsync of the Raft log on every
//!   commit, the default); stop one node gracefully, SIGKILL it, restart it on the same ports and data.
//! * [`EtcdCluster`]: etcd members (Debian's `etcd-server`, 3.4) with a static `--initial-cluster`.
//! * [`RedisServer`]: one `redis-server` with the AOF on, fsync `always` or `everysec`.
//!
//! The lower layer, [`Proc`], is one child process with its log, usable for any other server.

mod error;
mod etcd;
mod kvs;
mod net;
mod process;
mod redis;

pub use error::LaunchError;
pub use etcd::EtcdCluster;
pub use kvs::{KvsNode, KvsSite};
pub use net::{free_ports, http_get};
pub use process::{alive, Proc, Stopped};
pub use redis::{AofFsync, RedisServer};

use std::time::Duration;

/// How long a launcher waits for its processes to serve after starting them.
pub const READY_WITHIN: Duration = Duration::from_secs(30);

/// How long [`Proc::stop`] waits after SIGTERM before it sends SIGKILL, unless told otherwise (the
/// grace period of a pod-style stop).
pub const STOP_GRACE: Duration = Duration::from_secs(10);
