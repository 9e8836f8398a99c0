use std::path::PathBuf;
use std::time::Duration;

/// Why a launcher could not start, stop or reach a process. Every variant that concerns a running
/// process carries the tail of its log, since that is where the reason is.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The program is missing or not executable (install it: `scripts/compare.sh` does).
    #[error("cannot start {what} ({program}): {source}")]
    Spawn {
        what: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The process exited while it was expected to run.
    #[error("{what} exited ({status}); its log ends with:\n{log_tail}")]
    Exited {
        what: String,
        status: String,
        log_tail: String,
    },
    /// The process runs but did not become ready in time.
    #[error("{what} was not ready within {within:?} (last check: {last}); its log ends with:\n{log_tail}")]
    NotReady {
        what: String,
        within: Duration,
        last: String,
        log_tail: String,
    },
    /// A node id or index that the launcher does not have.
    #[error("no such {what}: {id}")]
    Unknown { what: &'static str, id: u64 },
    /// Starting a process that already runs, or signalling one that does not.
    #[error("{what} is {state}")]
    State { what: String, state: &'static str },
    /// Local I/O: temporary directories, log files, signals, waiting for a child.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

impl LaunchError {
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> LaunchError {
        let what = what.into();
        move |source| LaunchError::Io { what, source }
    }
}
