//! One child process: its command line, its log file, start, graceful stop, SIGKILL, and SIGKILL on drop.

use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::LaunchError;

/// How a [`Proc::stop`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The process exited within the grace period after SIGTERM.
    Graceful,
    /// It was still running at the end of the grace period and was SIGKILLed.
    Killed,
}

/// One server process: the same command line on every (re)start, stdout and stderr appended to one log
/// file. Not running until [`Proc::start`]; SIGKILLed and reaped on drop.
#[derive(Debug)]
pub struct Proc {
    name: String,
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    log: PathBuf,
    child: Option<Child>,
}

impl Proc {
    /// A process called `name` (in errors and logs) running `program args`, logging to `log`.
    pub fn new(
        name: impl Into<String>,
        program: impl Into<PathBuf>,
        args: impl IntoIterator<Item = impl Into<OsString>>,
        log: impl Into<PathBuf>,
    ) -> Proc {
        Proc {
            name: name.into(),
            program: program.into(),
            args: args.into_iter().map(Into::into).collect(),
            env: Vec::new(),
            log: log.into(),
            child: None,
        }
    }

    /// Adds an environment variable for every (re)start (the environment is otherwise the harness's).
    pub fn env(mut self, key: impl Into<OsString>, value: impl Into<OsString>) -> Proc {
        self.env.push((key.into(), value.into()));
        self
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Starts the process (returns at once; readiness is the launcher's business).
    pub fn start(&mut self) -> Result<(), LaunchError> {
        if self.is_running() {
            return Err(LaunchError::State {
                what: self.name.clone(),
                state: "already running",
            });
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(LaunchError::io(format!("open {}", self.log.display())))?;
        let stderr = log
            .try_clone()
            .map_err(LaunchError::io(format!("clone {}", self.log.display())))?;
        let child = Command::new(&self.program)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(|source| LaunchError::Spawn {
                what: self.name.clone(),
                program: self.program.clone(),
                source,
            })?;
        self.child = Some(child);
        Ok(())
    }

    /// The pid while the process runs (or has exited but not been reaped yet).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process runs; reaps it if it has exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(Ok(Some(_)) | Err(_)) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// `Err(Exited)` with the log's tail if the process is not running (it died on its own), else `Ok`.
    pub fn check_alive(&mut self) -> Result<(), LaunchError> {
        let Some(child) = self.child.as_mut() else {
            return Err(LaunchError::State {
                what: self.name.clone(),
                state: "not started",
            });
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => {
                self.child = None;
                Err(LaunchError::Exited {
                    what: self.name.clone(),
                    status: status.to_string(),
                    log_tail: self.log_tail(4096),
                })
            }
            Err(e) => Err(LaunchError::io(format!("wait for {}", self.name))(e)),
        }
    }

    /// SIGKILL and reap. A process that is not running is left as it is.
    pub fn kill(&mut self) -> Result<(), LaunchError> {
        if let Some(mut child) = self.child.take() {
            // `kill` fails only when the child was already reaped, which `take` rules out; a child that
            // exited on its own is still a zombie and is reaped by `wait`.
            let _ = child.kill();
            child
                .wait()
                .map_err(LaunchError::io(format!("reap {}", self.name)))?;
        }
        Ok(())
    }

    /// Pod-style stop: SIGTERM, then SIGKILL if the process still runs after `grace`. Returns how it
    /// ended; a process that is not running is left as it is (`Graceful`).
    pub fn stop(&mut self, grace: Duration) -> Result<Stopped, LaunchError> {
        let Some(child) = self.child.as_mut() else {
            return Ok(Stopped::Graceful);
        };
        let pid = rustix::process::Pid::from_child(child);
        // ESRCH: it exited just now; the wait below reaps it.
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let deadline = Instant::now() + grace;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => {
                    self.child = None;
                    return Ok(Stopped::Graceful);
                }
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Ok(None) => {
                    self.kill()?;
                    return Ok(Stopped::Killed);
                }
                Err(e) => return Err(LaunchError::io(format!("wait for {}", self.name))(e)),
            }
        }
    }

    /// The last `bytes` of the log file (lossy UTF-8), for error messages.
    pub fn log_tail(&self, bytes: u64) -> String {
        let read = || -> std::io::Result<String> {
            let mut f = File::open(&self.log)?;
            let len = f.metadata()?.len();
            f.seek(SeekFrom::Start(len.saturating_sub(bytes)))?;
            let mut buf = Vec::new();
            f.read_to_end(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf).into_owned())
        };
        read().unwrap_or_else(|e| format!("(cannot read {}: {e})", self.log.display()))
    }

    /// Polls `check` every 50 ms until it returns `Ok(true)` or `within` passes; fails at once with
    /// `Exited` if the process dies meanwhile. `check`'s `Err` text is the last reason in `NotReady`.
    pub fn wait_until(
        &mut self,
        within: Duration,
        mut check: impl FnMut() -> Result<bool, String>,
    ) -> Result<(), LaunchError> {
        let deadline = Instant::now() + within;
        loop {
            self.check_alive()?;
            let last = match check() {
                Ok(true) => return Ok(()),
                Ok(false) => "not ready".to_owned(),
                Err(e) => e,
            };
            if Instant::now() >= deadline {
                return Err(LaunchError::NotReady {
                    what: self.name.clone(),
                    within,
                    last,
                    log_tail: self.log_tail(4096),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `true` while `/proc` has `pid` as a process that is not a zombie (to check that a stop or a kill
/// really ended a process).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rfind(')')
            .and_then(|i| stat.get(i + 1..))
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z"),
        Err(_) => false,
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Nothing to report to in a drop: a child that cannot be reaped is left to init.
        let _ = self.kill();
    }
}
