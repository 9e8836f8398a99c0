//! Seeding one node of a new cluster from a backup (`kvs-raft snapshot restore`), as etcdutl does:
//! every node of the new cluster is restored from the same file under its own id, with the same
//! members; then each starts with `serve --id N --data-dir DIR --initial-cluster …`.
//!
//! Order, so a bad file or a refused target creates nothing: the target must be absent or empty; the
//! whole file is verified; only then is the data dir created, the image installed into `state/` by the
//! engine's own install path (which checks it again as it streams), and the Raft log seeded by
//! raft-node ([`raft_node::bootstrap_from_image`]) — last, so a data dir without a log never looks
//! like a started node. A failure after the data dir was created removes what the restore created.
//!
//! Architecture invariant: a restored data dir is exactly what a node of the new cluster holds right
//! after installing a snapshot at the image's applied index A: `state/` at A (its applied ts carried, so
//! the HLC keeps timestamps rising), and a log that starts after A (`first_index = A + 1`, a Raft
//! snapshot at `(A, term 1)` with the new voters, `commit = last_index = A`, the cluster id and node id
//! recorded).

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use engine::{Engine, EngineConfig};

use super::{verify, BackupError, BackupReader, Verified};
use crate::node::DataDir;

/// Where and as whom to restore.
#[derive(Debug, Clone)]
pub struct RestoreTarget {
    pub data_dir: PathBuf,
    pub node_id: u64,
    /// The new cluster's id; `None`: the backup's.
    pub cluster_id: Option<String>,
    /// The new cluster's members (id → peer address), as `--initial-cluster`.
    pub members: BTreeMap<u64, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    /// The target is refused before anything is read or created.
    #[error("{0}")]
    Target(String),
    /// The backup is refused: nothing was created.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// Installing or seeding failed; what the restore had created was removed.
    #[error("restore into {dir} failed (what it created was removed): {why}")]
    Install { dir: PathBuf, why: String },
}

/// Restore one node from the backup that `open` reads (it is called twice: once to verify the whole
/// file, once to install it; a progress display can wrap each reader). Returns what was verified.
pub fn restore<R: Read>(
    target: &RestoreTarget,
    mut open: impl FnMut(&str) -> std::io::Result<R>,
) -> Result<Verified, RestoreError> {
    check_target(target)?;
    let io =
        |e: std::io::Error| RestoreError::Backup(BackupError::Format(super::FormatError::Io(e)));
    let verified = verify(open("verify").map_err(io)?)?;
    let root = &target.data_dir;
    let existed = root.exists();
    let installed = (|| -> Result<(), String> {
        let dir = DataDir::new(root);
        std::fs::create_dir_all(root).map_err(|e| format!("create {}: {e}", root.display()))?;
        let input = open("install").map_err(|e| e.to_string())?;
        install_state(&dir.state(), input, &verified)?;
        raft_node::bootstrap_from_image(
            &dir.raft(),
            target
                .cluster_id
                .as_deref()
                .unwrap_or(&verified.header.cluster_id),
            target.node_id,
            verified.header.applied_index,
            &target.members,
        )
        .map_err(|e| format!("seed the raft log at {}: {e}", dir.raft().display()))?;
        sync_dir(root)
    })();
    if let Err(why) = installed {
        remove_created(root, existed);
        return Err(RestoreError::Install {
            dir: root.clone(),
            why,
        });
    }
    Ok(verified)
}

/// The target is valid and empty: the node is a member, the data dir absent or an empty directory.
fn check_target(target: &RestoreTarget) -> Result<(), RestoreError> {
    let refuse = |why: String| Err(RestoreError::Target(why));
    if !target.members.contains_key(&target.node_id) {
        return refuse(format!(
            "node {} is not in the initial cluster {:?}",
            target.node_id,
            target.members.keys().collect::<Vec<_>>()
        ));
    }
    let dir = &target.data_dir;
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return refuse(format!(
                    "the data dir {} is not empty; restore only into an absent or empty directory \
                     (a restore never overwrites a node's data)",
                    dir.display()
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => refuse(format!("the data dir {}: {e}", dir.display())),
    }
}

/// Install the image into a new engine at `state_dir` and make it durable; the installed image must be
/// the one verified.
fn install_state(state_dir: &Path, input: impl Read, verified: &Verified) -> Result<(), String> {
    let engine = Engine::open(state_dir, EngineConfig::default())
        .map_err(|e| format!("create the engine at {}: {e}", state_dir.display()))?;
    let (mut reader, _) = BackupReader::open(input).map_err(|e| e.to_string())?;
    let installed =
        engine
            .install_snapshot(&mut reader)
            .map_err(|e| match reader.take_error() {
                Some(framing) => framing.to_string(),
                None => format!("install the image: {e}"),
            })?;
    reader.finish().map_err(|e| e.to_string())?;
    if installed != verified.image {
        return Err("the file changed between verifying and installing it".into());
    }
    engine
        .sync()
        .map_err(|e| format!("sync the engine at {}: {e}", state_dir.display()))
}

fn sync_dir(dir: &Path) -> Result<(), String> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(|e| format!("sync {}: {e}", dir.display()))
}

/// Undo a failed restore: the whole dir if the restore made it, else what it put inside.
fn remove_created(root: &Path, existed: bool) {
    let result = if existed {
        std::fs::read_dir(root).and_then(|entries| {
            entries.flatten().try_for_each(|e| {
                let path = e.path();
                if path.is_dir() {
                    std::fs::remove_dir_all(path)
                } else {
                    std::fs::remove_file(path)
                }
            })
        })
    } else {
        std::fs::remove_dir_all(root)
    };
    if let Err(e) = result {
        tracing::error!(dir = %root.display(), error = %e, "could not remove a failed restore's files");
    }
}
