//! The nemesis of the chaos run: every `stop_every` it stops one replica of the site, waits `down`,
//! starts it again on the same ports and data and waits until it is ready. Stops alternate between the
//! leader (even stops: 0, 2, ...) and a follower (odd stops; the follower stopped least often so far,
//! lowest id first), so a run of `n` stops takes the leader ⌈n/2⌉ times.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cluster::{alive, http_get, KvsSite, Stopped, READY_WITHIN};

/// How a replica is stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopMode {
    /// Like a Kubernetes pod deletion: SIGTERM, SIGKILL if still running after `grace`.
    Pod { grace: Duration },
    /// SIGKILL only (a crash, an OOM kill, a power cut of one process).
    Kill,
}

/// The grace period of a pod-style stop: Kubernetes' default `terminationGracePeriodSeconds` is 30 s;
/// a kvs-raft node hands over leadership and exits within a second or two, so 10 s is ample and keeps a
/// stop that hangs from stretching the run.
pub const POD_GRACE: Duration = Duration::from_secs(10);

impl StopMode {
    pub fn name(self) -> &'static str {
        match self {
            StopMode::Pod { .. } => "pod",
            StopMode::Kill => "kill",
        }
    }
}

/// When and how the nemesis strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NemesisPlan {
    pub mode: StopMode,
    /// Stop `k` (1-based) is due `k × stop_every` after the start.
    pub stop_every: Duration,
    /// From the process's exit to its restart.
    pub down: Duration,
    /// No stop is due later than `duration − down` (each node is back before the load ends).
    pub duration: Duration,
}

impl NemesisPlan {
    /// When each stop is due, since the start.
    pub fn schedule(&self) -> Vec<Duration> {
        if self.stop_every.is_zero() {
            return Vec::new();
        }
        (1u32..)
            .map(|k| self.stop_every.saturating_mul(k))
            .take_while(|&at| at.saturating_add(self.down) < self.duration)
            .collect()
    }
}

/// What one stop did (instants on the harness's clock; the report turns them into run times).
#[derive(Debug, Clone)]
pub struct StopRecord {
    pub node: u64,
    /// The node was the leader the site reported just before the stop.
    pub was_leader: bool,
    pub pid: Option<u32>,
    /// The highest term any node reported just before the stop.
    pub term_before: Option<u64>,
    /// When the signal (SIGTERM or SIGKILL) was sent.
    pub signalled: Instant,
    /// When the process had exited (and was reaped).
    pub exited: Instant,
    /// `graceful` (exited after SIGTERM), `killed-after-grace`, or `sigkill`.
    pub how: &'static str,
    /// `/proc` no longer has the old pid after the stop.
    pub pid_gone: bool,
    /// When it was started again, and when it answered `/readyz` 200.
    pub restarted: Option<Instant>,
    pub ready: Option<Instant>,
    pub new_pid: Option<u32>,
    /// A stop or restart that failed.
    pub error: Option<String>,
}

/// The site, shared between the nemesis and the run's end.
pub type SharedSite = Arc<Mutex<KvsSite>>;

pub fn lock(site: &SharedSite) -> MutexGuard<'_, KvsSite> {
    // The site is only processes and paths: usable after a panic elsewhere.
    site.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The highest Raft term any answering node reports in `GET /v1/cluster` (`None` if none answers).
pub fn site_term(addrs: &[SocketAddr]) -> Option<u64> {
    addrs
        .iter()
        .filter_map(|&addr| {
            let (status, body) = http_get(addr, "/v1/cluster", Duration::from_secs(1)).ok()?;
            if status != 200 {
                return None;
            }
            let view: serde_json::Value = serde_json::from_str(&body).ok()?;
            view.get("term")?.as_u64()
        })
        .max()
}

/// Starts the nemesis on its own thread: it follows `plan` from `t0` until the schedule ends or
/// `halt` is set, and returns what it did. It holds the site's lock only while it stops or restarts.
pub fn spawn(
    site: SharedSite,
    plan: NemesisPlan,
    t0: Instant,
    halt: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<Vec<StopRecord>>> {
    std::thread::Builder::new()
        .name("nemesis".into())
        .spawn(move || run(&site, plan, t0, &halt))
}

fn run(site: &SharedSite, plan: NemesisPlan, t0: Instant, halt: &AtomicBool) -> Vec<StopRecord> {
    let ids = lock(site).ids();
    let addrs = lock(site).client_addrs();
    let mut stops_of: Vec<u32> = vec![0; ids.len()];
    let mut records = Vec::new();
    for (k, due) in plan.schedule().into_iter().enumerate() {
        if !sleep_until(t0 + due, halt) {
            break;
        }
        let leader = lock(site).leader();
        let target = if k % 2 == 0 { leader } else { None }.or_else(|| {
            // The follower stopped least often (lowest id on ties).
            ids.iter()
                .zip(&stops_of)
                .filter(|(id, _)| Some(**id) != leader)
                .min_by_key(|(id, n)| (**n, **id))
                .map(|(id, _)| *id)
        });
        let Some(node) = target else { break };
        if let Some(i) = ids.iter().position(|&id| id == node) {
            stops_of[i] += 1;
        }
        let term_before = site_term(&addrs);
        records.push(stop_and_restart(
            site,
            node,
            leader == Some(node),
            term_before,
            plan,
            halt,
        ));
    }
    records
}

fn stop_and_restart(
    site: &SharedSite,
    node: u64,
    was_leader: bool,
    term_before: Option<u64>,
    plan: NemesisPlan,
    halt: &AtomicBool,
) -> StopRecord {
    let pid = lock(site).pid(node);
    let signalled = Instant::now();
    let stopped = match plan.mode {
        StopMode::Pod { grace } => lock(site).stop_node(node, grace).map(|s| match s {
            Stopped::Graceful => "graceful",
            Stopped::Killed => "killed-after-grace",
        }),
        StopMode::Kill => lock(site).kill_node(node).map(|()| "sigkill"),
    };
    let exited = Instant::now();
    let mut record = StopRecord {
        node,
        was_leader,
        pid,
        term_before,
        signalled,
        exited,
        how: "failed",
        pid_gone: pid.is_some_and(|p| !alive(p)),
        restarted: None,
        ready: None,
        new_pid: None,
        error: None,
    };
    match stopped {
        Ok(how) => record.how = how,
        Err(e) => {
            record.error = Some(format!("stop: {e}"));
            return record;
        }
    }
    // Down for `down` (cut short only if the run is being abandoned; the node is restarted anyway).
    sleep_until(exited + plan.down, halt);
    let mut guard = lock(site);
    record.restarted = Some(Instant::now());
    match guard.restart_node(node, READY_WITHIN) {
        Ok(()) => {
            record.ready = Some(Instant::now());
            record.new_pid = guard.pid(node);
        }
        Err(e) => record.error = Some(format!("restart: {e}")),
    }
    record
}

/// Sleeps until `when` in short steps; `false` if `halt` was set first.
fn sleep_until(when: Instant, halt: &AtomicBool) -> bool {
    loop {
        if halt.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= when {
            return true;
        }
        std::thread::sleep((when - now).min(Duration::from_millis(50)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_leaves_room_for_the_last_restart() {
        let plan = |every: u64, down: u64, duration: u64| NemesisPlan {
            mode: StopMode::Kill,
            stop_every: Duration::from_secs(every),
            down: Duration::from_secs(down),
            duration: Duration::from_secs(duration),
        };
        let secs =
            |p: NemesisPlan| -> Vec<u64> { p.schedule().iter().map(Duration::as_secs).collect() };
        assert_eq!(secs(plan(15, 5, 60)), vec![15, 30, 45]);
        assert_eq!(secs(plan(30, 5, 900)).len(), 29);
        assert_eq!(secs(plan(10, 3, 20)), vec![10]);
        assert_eq!(secs(plan(30, 5, 20)), Vec::<u64>::new());
        assert_eq!(secs(plan(0, 5, 20)), Vec::<u64>::new());
    }
}
