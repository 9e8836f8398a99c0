//! The engine's one error type. Variants say what the caller can do; per-operation outcomes that are part
//! of the replicated state (stale epoch, failed condition, ...) are [`crate::OpError`], not errors.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The read asked for a version older than the retention floor: retry at a newer `at`.
    #[error("version gone: read at {at} is older than the retention floor {floor}")]
    VersionGone { at: u64, floor: u64 },
    /// Stored bytes do not decode or break an invariant: stop and run `check`.
    #[error("corruption at {at}: {detail}")]
    Corruption { at: String, detail: String },
    /// RocksDB reported an error (I/O, disk full, ...). Nothing of the failed call was applied.
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
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
