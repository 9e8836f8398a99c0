//! The engine's one error type. Variants say what the caller can do; per-operation outcomes that are part
//! of the replicated state (stale epoch, failed condition, ...) are [`crate::OpError`], not errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The read asked for a version older than the retention floor: retry at a newer `at`.
    #[error("version gone: read at {at} is older than the retention floor {floor}")]
    VersionGone { at: u64, floor: u64 },
    /// Stored bytes do not decode or break an invariant, or RocksDB found a corrupt block or file (then
    /// `at` names the RocksDB call): stop and run `check`.
    #[error("corruption at {at}: {detail}")]
    Corruption { at: String, detail: String },
    /// The disk or the space quota is full (RocksDB's `NoSpace`/`SpaceLimit`, `ENOSPC`, `EDQUOT`). Nothing
    /// of the failed call was applied; free space, then retry. RocksDB may stop accepting writes until
    /// it is reopened.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// Any other storage failure RocksDB reported (I/O error, busy, shut down, ...). Nothing of the failed
    /// call was applied.
    #[error("storage: {0}")]
    Storage(String),
    /// The caller tried to apply an entry at or below the applied index (a replay bug in the caller).
    #[error("entry {index} is already applied (applied index {applied})")]
    AlreadyApplied { index: u64, applied: u64 },
    /// Commit timestamps must not go back in log order.
    #[error("commit ts {ts} is below the applied ts {applied_ts}")]
    TsWentBack { ts: u64, applied_ts: u64 },
    /// A snapshot stream was malformed, truncated or failed its checksum; nothing was installed.
    #[error("invalid snapshot: {0}")]
    BadSnapshot(String),
    /// The directory holds something other than a kvs-raft engine of a known format.
    #[error("not a kvs-raft engine directory ({0})")]
    ForeignDir(String),
    #[error("I/O at {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl Error {
    /// A file-system error at `path`; a full disk or quota becomes [`Error::DiskFull`].
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| match source.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Error::DiskFull(format!("{}: {source}", path.display()))
            }
            _ => Error::Io { path, source },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn a_full_disk_or_quota_in_file_io_is_disk_full() {
        let full = Error::io("/d")(std::io::Error::from(std::io::ErrorKind::StorageFull)); // ENOSPC
        assert!(
            matches!(full, Error::DiskFull(ref m) if m.starts_with("/d: ")),
            "{full:?}"
        );
        let quota = Error::io("/d")(std::io::Error::from(std::io::ErrorKind::QuotaExceeded));
        assert!(matches!(quota, Error::DiskFull(_)), "{quota:?}");
        let other = Error::io("/d")(std::io::Error::from(std::io::ErrorKind::PermissionDenied));
        assert!(
            matches!(other, Error::Io { ref path, .. } if path == Path::new("/d")),
            "{other:?}"
        );
    }
}
