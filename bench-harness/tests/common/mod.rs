//! Shared by the integration tests that run real servers.

use std::path::{Path, PathBuf};

/// The kvs-raft binary of this build (`cargo build --bin kvs-raft` puts it beside the test's `deps/`).
pub fn kvs_raft_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|dir| dir.join("kvs-raft"))
        .expect("target dir");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (cargo build --bin kvs-raft)",
        bin.display()
    );
    bin
}
