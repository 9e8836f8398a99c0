//! Small file systems for disk-full tests: a size-limited tmpfs mounted on a node's data dir (the tests run
//! as root; where mounting is not permitted they skip loudly), and a filler file that leaves a chosen
//! amount of free space.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Bytes an unprivileged writer may still use on the file system holding `path`.
pub fn available_bytes(path: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(path)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

/// A tmpfs of `bytes` mounted on `path` (created if missing), lazily unmounted on drop.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mount it, or say why not (not root, no CAP_SYS_ADMIN, no `mount` binary).
    pub fn mount(path: &Path, bytes: u64) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(path).map_err(|e| format!("create {}: {e}", path.display()))?;
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(path)
            .output()
            .map_err(|e| format!("run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "mount -t tmpfs on {}: {} {}",
                path.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(Tmpfs {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: the node processes may still hold files in it; it goes once they are gone.
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// Fill the file system holding `dir` with the file `dir/name` (grown if it exists) until about `leave`
/// bytes are free (or fewer: tmpfs counts whole pages). Returns the free bytes after.
pub fn fill_leaving(dir: &Path, name: &str, leave: u64) -> u64 {
    let path = dir.join(name);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .unwrap_or_else(|e| panic!("open filler {}: {e}", path.display()));
    let chunk = vec![0xa5u8; 1 << 20];
    loop {
        let free = available_bytes(dir).expect("statvfs");
        if free <= leave {
            return free;
        }
        let n = usize::try_from((free - leave).min(chunk.len() as u64)).expect("small");
        match f.write_all(&chunk[..n.max(4096).min(chunk.len())]) {
            Ok(()) => {}
            // The node wrote meanwhile and the disk is full: as full as it gets.
            Err(e) if e.raw_os_error() == Some(28) => {
                return available_bytes(dir).expect("statvfs")
            }
            Err(e) => panic!("fill {}: {e}", path.display()),
        }
        f.flush().expect("flush filler");
    }
}

/// Remove the filler `dir/name`.
pub fn free_filler(dir: &Path, name: &str) {
    let path = dir.join(name);
    std::fs::remove_file(&path).unwrap_or_else(|e| panic!("remove {}: {e}", path.display()));
}
