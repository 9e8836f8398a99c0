//! Server resource use during a run: every process's resident set (`VmRSS` in `/proc/PID/status`) and
//! CPU time (`utime + stime` in `/proc/PID/stat`), sampled on a background thread.
//!
//! Peak RSS is the largest *sum* over the system's processes seen in one sample (for a 3-node site: the
//! site's footprint). CPU seconds are each process's CPU time at the last sample minus at the first, summed:
//! the CPU the system spent during the run. A process that exits between samples takes its last
//! interval's CPU time with it (restarted pids are picked up at the next sample, see [`Sampler::set_pids`]).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// What a [`Sampler`] measured.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// The largest sum of the processes' RSS in one sample, in bytes.
    pub peak_rss_bytes: u64,
    /// CPU time (user + system) the processes used between the first and the last sample, in seconds.
    pub cpu_seconds: f64,
    /// How many samples were taken.
    pub samples: u32,
}

/// One process's counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcSample {
    pub rss_bytes: u64,
    /// utime + stime in clock ticks.
    pub cpu_ticks: u64,
}

/// Reads one process's counters; `None` if it is gone or `/proc` says something unexpected.
pub fn sample_process(pid: u32) -> Option<ProcSample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(ProcSample {
        rss_bytes: parse_vm_rss(&status)?,
        cpu_ticks: parse_cpu_ticks(&stat)?,
    })
}

/// `VmRSS:   1234 kB` → bytes. A zombie has no VmRSS line: `None`.
fn parse_vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let mut fields = line.split_whitespace().skip(1);
    let kb: u64 = fields.next()?.parse().ok()?;
    (fields.next()? == "kB").then_some(kb.checked_mul(1024)?)
}

/// utime + stime (fields 14 and 15 of `/proc/PID/stat`). The command name (field 2) is in parentheses
/// and may itself hold spaces or parentheses, so fields are counted after the last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11); // field 3 (state) is the first after ')'
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    utime.checked_add(stime)
}

#[derive(Debug, Default)]
struct State {
    pids: Vec<u32>,
    first: BTreeMap<u32, u64>,
    last: BTreeMap<u32, u64>,
    peak_rss: u64,
    samples: u32,
}

impl State {
    fn sample(&mut self) {
        let mut rss = 0u64;
        for &pid in &self.pids {
            if let Some(s) = sample_process(pid) {
                rss = rss.saturating_add(s.rss_bytes);
                self.first.entry(pid).or_insert(s.cpu_ticks);
                self.last.insert(pid, s.cpu_ticks);
            }
        }
        self.peak_rss = self.peak_rss.max(rss);
        self.samples = self.samples.saturating_add(1);
    }

    fn usage(&self) -> Usage {
        let ticks: u64 = self
            .last
            .iter()
            .map(|(pid, last)| last.saturating_sub(self.first.get(pid).copied().unwrap_or(*last)))
            .sum();
        Usage {
            peak_rss_bytes: self.peak_rss,
            cpu_seconds: ticks_to_seconds(ticks),
            samples: self.samples,
        }
    }
}

fn ticks_to_seconds(ticks: u64) -> f64 {
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    // Exact for any realistic tick count (below 2^53).
    ticks as f64 / per_second as f64
}

/// Samples a set of processes every `every` on its own thread until [`Sampler::finish`] (or drop).
/// The first sample is taken at once, the last one in `finish`.
#[derive(Debug)]
pub struct Sampler {
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How often [`Sampler::start`] samples in the comparison runs.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(1);

impl Sampler {
    pub fn start(pids: Vec<u32>, every: Duration) -> Sampler {
        let state = Arc::new(Mutex::new(State {
            pids,
            ..State::default()
        }));
        lock(&state).sample();
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("rss-cpu-sampler".into())
                .spawn(move || {
                    let tick = Duration::from_millis(20).min(every);
                    let mut waited = Duration::ZERO;
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(tick);
                        waited += tick;
                        if waited >= every {
                            waited = Duration::ZERO;
                            lock(&state).sample();
                        }
                    }
                })
                .ok()
        };
        Sampler {
            state,
            stop,
            thread,
        }
    }

    /// Replaces the sampled pids (a node restarted under a new pid); CPU time of a new pid counts from
    /// its first sample.
    pub fn set_pids(&self, pids: Vec<u32>) {
        lock(&self.state).pids = pids;
    }

    /// The usage so far, without stopping.
    pub fn usage(&self) -> Usage {
        lock(&self.state).usage()
    }

    /// Takes a last sample, stops the thread and returns the usage.
    pub fn finish(mut self) -> Usage {
        self.halt();
        let mut state = lock(&self.state);
        state.sample();
        state.usage()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The sampling loop does not panic; a join error would only repeat a panic already printed.
            let _ = thread.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    // The state stays consistent even if a sampling thread panicked mid-sample (plain counters).
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One process's proportional set size (`Pss` in `/proc/PID/smaps_rollup`): its private pages plus
/// its share of pages shared with others. Summed over a forked parent and child it counts each
/// physical page once (their RSS sum counts shared pages twice). `None` if gone or unreadable.
pub fn pss_bytes(pid: u32) -> Option<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = rollup.lines().find(|l| l.starts_with("Pss:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kb.checked_mul(1024)
}

/// The pids whose parent is `parent` (a scan of `/proc`; e.g. a forked Redis child).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| parse_ppid(&stat))
                == Some(parent)
        })
        .collect()
}

/// The parent pid (field 4 of `/proc/PID/stat`, counted after the command name's last `)`).
fn parse_ppid(stat: &str) -> Option<u32> {
    stat.get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Every process's RSS at each sample of an [`RssSeries`]; `None` where a process was not readable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    /// Seconds since the series started, one per sample.
    pub t: Vec<f64>,
    /// Per process (in the order given), its RSS in bytes at each sample.
    pub rss: Vec<Vec<Option<u64>>>,
}

/// Samples the RSS of a fixed list of processes every `every` on its own thread, keeping every sample
/// (for slopes and medians, where [`Sampler`] keeps only the peak).
#[derive(Debug)]
pub struct RssSeries {
    series: Arc<Mutex<Series>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RssSeries {
    pub fn start(pids: Vec<u32>, every: Duration) -> RssSeries {
        let series = Arc::new(Mutex::new(Series {
            t: Vec::new(),
            rss: vec![Vec::new(); pids.len()],
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (series, stop) = (Arc::clone(&series), Arc::clone(&stop));
            std::thread::Builder::new()
                .name("rss-series".into())
                .spawn(move || {
                    let start = std::time::Instant::now();
                    let mut next = start;
                    while !stop.load(Ordering::Relaxed) {
                        let now = std::time::Instant::now();
                        if now >= next {
                            let mut s = series.lock().unwrap_or_else(PoisonError::into_inner);
                            s.t.push(now.duration_since(start).as_secs_f64());
                            for (column, &pid) in s.rss.iter_mut().zip(&pids) {
                                column.push(sample_process(pid).map(|p| p.rss_bytes));
                            }
                            next += every;
                        }
                        std::thread::sleep(Duration::from_millis(20).min(every));
                    }
                })
                .ok()
        };
        RssSeries {
            series,
            stop,
            thread,
        }
    }

    /// Stops the thread and returns every sample.
    pub fn finish(mut self) -> Series {
        self.halt();
        std::mem::take(&mut *self.series.lock().unwrap_or_else(PoisonError::into_inner))
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RssSeries {
    fn drop(&mut self) {
        self.halt();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_awkward_command_names() {
        let stat =
            "4242 (a) b (c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0 100 1000 50";
        assert_eq!(parse_cpu_ticks(stat), Some(22));
        assert_eq!(parse_cpu_ticks("garbage"), None);
    }

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmRSS:\t   1234 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(status), Some(1234 * 1024));
        assert_eq!(parse_vm_rss("Name:\tzombie\nState:\tZ\n"), None);
    }

    #[test]
    fn parses_ppid_and_finds_children() {
        assert_eq!(parse_ppid("42 (a) b) S 7 42 42 0"), Some(7));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .expect("spawn sleep");
        assert!(children_of(std::process::id()).contains(&child.id()));
        let _ = child.kill();
        let _ = child.wait();
        assert!(pss_bytes(std::process::id()).is_some_and(|b| b > 0));
        let series = RssSeries::start(vec![std::process::id()], Duration::from_millis(20));
        std::thread::sleep(Duration::from_millis(150));
        let s = series.finish();
        assert!(s.t.len() >= 3, "{s:?}");
        assert!(s.rss[0].iter().all(|r| r.is_some_and(|b| b > 0)));
    }

    #[test]
    fn samples_this_process() {
        let own = sample_process(std::process::id()).expect("own /proc entry");
        assert!(own.rss_bytes > 0);
        let sampler = Sampler::start(vec![std::process::id()], Duration::from_millis(20));
        // Burn some CPU so the delta is positive.
        let deadline = std::time::Instant::now() + Duration::from_millis(300);
        let mut x = 0u64;
        while std::time::Instant::now() < deadline {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let usage = sampler.finish();
        assert!(usage.samples >= 3, "{usage:?}");
        assert!(usage.peak_rss_bytes >= own.rss_bytes / 2, "{usage:?}");
        assert!(usage.cpu_seconds > 0.05, "{usage:?}");
    }
}
