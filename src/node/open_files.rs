//! The process's open-file limit (`RLIMIT_NOFILE`) against what a node may hold open at once: client
//! connections, peer connections, the files of both RocksDBs, and a reserve for everything else
//! (listeners, WALs, manifests, info logs, staged snapshots, outbound peer connections, stdio). Checked
//! once at start: the soft limit is raised when the hard limit allows, else the node refuses to start
//! with a message naming both numbers — instead of failing `accept` or a RocksDB open under load.

use anyhow::bail;

use crate::config::ServeConfig;

/// Descriptors for everything the other terms do not count.
pub const RESERVE: u64 = 256;

/// Descriptors a node with this configuration may hold open at once.
pub fn needed(cfg: &ServeConfig) -> u64 {
    let engine = engine::EngineConfig::default().max_open_files;
    [
        cfg.limits.max_connections,
        cfg.raft.max_peer_connections,
        engine,
        raft_node::storage::LOG_MAX_OPEN_FILES,
    ]
    .into_iter()
    .map(|n| u64::try_from(n).unwrap_or(u64::MAX))
    .fold(RESERVE, u64::saturating_add)
}

/// What to do about the limit (pure).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// The soft limit already covers it.
    Enough,
    /// Raise the soft limit to this (the hard limit allows it).
    Raise(u64),
    /// The hard limit is too low: refuse to start.
    Refuse { needed: u64, hard: u64 },
}

pub fn plan(soft: u64, hard: u64, needed: u64) -> Plan {
    if soft >= needed {
        Plan::Enough
    } else if hard >= needed {
        Plan::Raise(needed)
    } else {
        Plan::Refuse { needed, hard }
    }
}

/// Make sure the process may open `needed` descriptors: raise the soft limit if it is lower, or fail
/// with a message that says what to change.
pub fn ensure(needed: u64) -> anyhow::Result<()> {
    let (soft, hard) = current()?;
    match plan(soft, hard, needed) {
        Plan::Enough => Ok(()),
        Plan::Raise(to) => {
            set_soft(to, hard)?;
            tracing::info!(from = soft, to, "raised the open-file soft limit");
            Ok(())
        }
        Plan::Refuse { needed, hard } => bail!(
            "the open-file limit is too low: this configuration may hold {needed} files and sockets \
             open at once (max_connections + max_peer_connections + RocksDB's open files + {RESERVE}), \
             but the hard limit (RLIMIT_NOFILE) is {hard}; raise it (e.g. LimitNOFILE= in the systemd \
             unit, or ulimit -Hn) or lower max_connections"
        ),
    }
}

#[cfg(unix)]
fn current() -> anyhow::Result<(u64, u64)> {
    use rustix::process::{getrlimit, Resource};
    // `None` is RLIM_INFINITY.
    let rl = getrlimit(Resource::Nofile);
    Ok((
        rl.current.unwrap_or(u64::MAX),
        rl.maximum.unwrap_or(u64::MAX),
    ))
}

#[cfg(unix)]
fn set_soft(to: u64, hard: u64) -> anyhow::Result<()> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let finite = |x: u64| (x != u64::MAX).then_some(x);
    let rl = Rlimit {
        current: finite(to),
        maximum: finite(hard),
    };
    setrlimit(Resource::Nofile, rl)
        .map_err(|e| anyhow::anyhow!("raise the open-file soft limit to {to}: {e}"))
}

#[cfg(not(unix))]
fn current() -> anyhow::Result<(u64, u64)> {
    Ok((u64::MAX, u64::MAX))
}

#[cfg(not(unix))]
fn set_soft(_to: u64, _hard: u64) -> anyhow::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_soft_limit_is_raised_when_the_hard_limit_allows_else_start_is_refused() {
        assert_eq!(plan(10_000, 10_000, 5_000), Plan::Enough);
        assert_eq!(plan(5_000, 5_000, 5_000), Plan::Enough);
        assert_eq!(plan(1_024, 65_536, 5_000), Plan::Raise(5_000));
        assert_eq!(plan(1_024, u64::MAX, 5_000), Plan::Raise(5_000));
        assert_eq!(
            plan(1_024, 4_096, 5_000),
            Plan::Refuse {
                needed: 5_000,
                hard: 4_096
            }
        );
    }
}
