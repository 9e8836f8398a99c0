//! A stand-in for systemd's notify socket: a datagram socket a `kvs-raft serve` process is pointed at
//! with `NOTIFY_SOCKET`, recording every message it sends (`READY=1`, `WATCHDOG=1`, `STATUS=…`,
//! `STOPPING=1`) with the time it arrived.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One line of a notify datagram, and when its datagram arrived.
#[derive(Debug, Clone)]
pub struct Note {
    pub at: Instant,
    pub line: String,
}

pub struct NotifySocket {
    pub path: PathBuf,
    notes: Arc<Mutex<Vec<Note>>>,
}

impl NotifySocket {
    /// Bind `dir/notify.sock` and record what arrives on it (a reader thread, for the test's lifetime).
    pub fn bind(dir: &Path) -> NotifySocket {
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).expect("bind the notify socket");
        let notes = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&notes);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let at = Instant::now();
                let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                let mut notes = sink.lock().expect("notes");
                for line in text.lines().filter(|l| !l.is_empty()) {
                    notes.push(Note {
                        at,
                        line: line.to_owned(),
                    });
                }
            }
        });
        NotifySocket { path, notes }
    }

    /// The environment that points a process at this socket (and asks for a watchdog every `watchdog`).
    pub fn env(&self, watchdog: Option<Duration>) -> Vec<(String, String)> {
        let mut env = vec![("NOTIFY_SOCKET".to_owned(), self.path.display().to_string())];
        if let Some(w) = watchdog {
            env.push(("WATCHDOG_USEC".to_owned(), w.as_micros().to_string()));
        }
        env
    }

    pub fn notes(&self) -> Vec<Note> {
        self.notes.lock().expect("notes").clone()
    }

    /// Arrival times of the messages equal to `line`.
    pub fn times(&self, line: &str) -> Vec<Instant> {
        self.notes()
            .into_iter()
            .filter(|n| n.line == line)
            .map(|n| n.at)
            .collect()
    }

    /// Wait up to `within` for a message equal to `line`; when it arrived.
    pub async fn wait_for(&self, line: &str, within: Duration) -> Option<Instant> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(&at) = self.times(line).first() {
                return Some(at);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}
