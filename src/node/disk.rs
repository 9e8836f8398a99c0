//! The free-space guard (SPEC §9, a full disk). Replicas of one site take the same writes, so their disks
//! fill together; a Raft log or RocksDB that hits ENOSPC mid-write stops the node loop (and the process).
//! So, as TiKV does with its reserve space, the guard measures the free space of the data dir
//! (`statvfs`, off the async workers) every [`CHECK_EVERY`] and sets the node's [`LowSpace`] switch:
//! below the configured reserve ([`DiskSpace::Low`]) the node refuses new proposals (HTTP 507
//! `insufficient_storage`, nothing applied) and a leader hands leadership to another voter, but it still
//! appends what is in flight (replicas fill together, so a follower a little ahead of its leader must not
//! stall the leader's last proposals into 504s); below half the reserve ([`DiskSpace::Critical`]) it takes
//! no new log entries at all. Reads, heartbeats and elections go on; the reserve is the room for what is
//! already in flight — entries committed but not applied yet, RocksDB flushes and compactions. When space
//! is freed the switch clears and the node catches up by itself. The check also runs once before the
//! replica serves, so a node restarted on a full disk refuses writes instead of failing on them.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use raft_node::{DiskSpace, LowSpace};
use tokio_util::sync::CancellationToken;

/// Default free space kept in reserve on the data dir's file system (1 GiB).
pub const DEFAULT_RESERVE: u64 = 1 << 30;
/// How often the guard measures the free space.
pub const CHECK_EVERY: Duration = Duration::from_millis(200);

/// Bytes an unprivileged writer may still use on the file system holding `path`.
pub fn available_bytes(path: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// The least free space among `dirs` (the data dir and its parts, which an operator may have put on other
/// file systems); dirs that do not exist yet are skipped. `Ok(None)` if none exists.
fn least_available(dirs: &[PathBuf]) -> io::Result<Option<u64>> {
    let mut least: Option<u64> = None;
    for dir in dirs.iter().filter(|d| d.exists()) {
        let free = available_bytes(dir)?;
        least = Some(least.map_or(free, |l| l.min(free)));
    }
    Ok(least)
}

/// Below `reserve` free bytes: low; below half of it: critical.
pub fn level(free: u64, reserve: u64) -> DiskSpace {
    if free < reserve / 2 {
        DiskSpace::Critical
    } else if free < reserve {
        DiskSpace::Low
    } else {
        DiskSpace::Ample
    }
}

/// The level after measuring `free` bytes when it was `previous`. It gets better only past a margin of
/// 1/16 of the reserve: RocksDB preallocates its log files, so space freed by a restart or a compaction
/// can be taken right back, and the level must not flap around the line.
pub fn next_level(free: u64, reserve: u64, previous: DiskSpace) -> DiskSpace {
    let now = level(free, reserve);
    if now < previous {
        level(free.saturating_sub(reserve / 16), reserve).min(previous)
    } else {
        now
    }
}

/// Measures the free space under `dirs` against `reserve` and sets `switch`.
#[derive(Clone)]
pub struct SpaceGuard {
    pub dirs: Vec<PathBuf>,
    pub reserve: u64,
    pub switch: LowSpace,
}

impl SpaceGuard {
    /// One measurement (off the async workers); sets the switch and returns the free bytes. A failed
    /// measurement leaves the switch as it was.
    pub async fn check(&self) -> Option<u64> {
        let dirs = self.dirs.clone();
        let free = match tokio::task::spawn_blocking(move || least_available(&dirs)).await {
            Ok(Ok(free)) => free?,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot measure the data dir's free space");
                return None;
            }
            Err(e) => {
                tracing::warn!(error = %e, "the free-space check did not run");
                return None;
            }
        };
        let space = next_level(free, self.reserve, self.switch.get());
        if space != self.switch.get() {
            if space == DiskSpace::Ample {
                tracing::warn!(
                    free_bytes = free,
                    reserve_bytes = self.reserve,
                    "data dir back above its free-space reserve: writes accepted again"
                );
            } else {
                tracing::error!(
                    free_bytes = free,
                    reserve_bytes = self.reserve,
                    level = ?space,
                    "data dir below its free-space reserve: writes are refused (507) until space is freed"
                );
            }
        }
        self.switch.set(space);
        Some(free)
    }

    /// Check every [`CHECK_EVERY`] until `shutdown` is cancelled.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            self.check().await;
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(CHECK_EVERY) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_switch_follows_free_space_against_the_reserve() {
        let dir = tempfile::tempdir().expect("tempdir");
        let free = available_bytes(dir.path()).expect("statvfs");
        assert!(free > 0);
        let mut guard = SpaceGuard {
            dirs: vec![dir.path().to_path_buf(), dir.path().join("absent")],
            reserve: 0,
            switch: LowSpace::default(),
        };
        assert!(guard.check().await.is_some());
        assert_eq!(guard.switch.get(), DiskSpace::Ample);
        guard.reserve = u64::MAX;
        guard.check().await;
        assert_eq!(guard.switch.get(), DiskSpace::Critical);
        guard.reserve = 0;
        guard.check().await;
        assert_eq!(guard.switch.get(), DiskSpace::Ample);
    }

    #[test]
    fn below_the_reserve_is_low_below_half_of_it_critical() {
        assert_eq!(level(100, 100), DiskSpace::Ample);
        assert_eq!(level(99, 100), DiskSpace::Low);
        assert_eq!(level(50, 100), DiskSpace::Low);
        assert_eq!(level(49, 100), DiskSpace::Critical);
        assert_eq!(level(0, 0), DiskSpace::Ample);
        assert_eq!(level(0, 1), DiskSpace::Low);
        assert_eq!(level(0, 2), DiskSpace::Critical);
    }

    #[test]
    fn the_level_gets_better_only_past_a_margin() {
        use DiskSpace::{Ample, Critical, Low};
        // Worse at once.
        assert_eq!(next_level(99, 160, Ample), Low);
        assert_eq!(next_level(79, 160, Ample), Critical);
        // Better only 1/16 of the reserve (10 bytes here) past the line.
        assert_eq!(next_level(165, 160, Low), Low);
        assert_eq!(next_level(170, 160, Low), Ample);
        assert_eq!(next_level(85, 160, Critical), Critical);
        assert_eq!(next_level(90, 160, Critical), Low);
        assert_eq!(next_level(500, 160, Critical), Ample);
        assert_eq!(next_level(165, 160, Ample), Ample);
    }
}
