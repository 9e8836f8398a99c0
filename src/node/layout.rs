//! The data directory's layout: the one place that names its parts.
//!
//! ```text
//! <data-dir>/state/          the engine (state machine + applied index; its own layout inside)
//! <data-dir>/raft/           the Raft log, hard state, conf state, membership table, and the cluster id
//!                            and node id the data dir belongs to (recorded on first start, checked on
//!                            every start)
//! <data-dir>/snapshots/      received snapshot images while they are staged
//! <data-dir>/.kvs-write-probe  written and removed by the readiness probe
//! ```

use std::path::{Path, PathBuf};

/// A node's data directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataDir {
    root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DataDir { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The engine's directory.
    pub fn state(&self) -> PathBuf {
        self.root.join("state")
    }

    /// The Raft log's directory; it exists once the node has started at least once.
    pub fn raft(&self) -> PathBuf {
        self.root.join("raft")
    }

    /// Where received snapshot images are staged.
    pub fn snapshots(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// The file the readiness probe writes and removes to check the disk takes writes.
    pub fn write_probe(&self) -> PathBuf {
        self.root.join(".kvs-write-probe")
    }
}
