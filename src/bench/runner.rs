//! Sending the workload: open loop on a fixed arrival schedule, or closed loop with N clients; every
//! request's latency into HDR histograms; the [`Report`].
//!
//! **Open loop** ([`Mode::Open`]): request `k` (of `batch` ops) is *intended* at
//! `start + k × batch / rate`, whatever happened before. A dispatcher hands each request, at its
//! intended time, to a free connection among [`RunConfig::connections`] (each a worker with its own
//! [`Driver::connect`]); when none is free the requests wait, in order, for the next one. Latency is
//! measured from the intended time, so a stall of the system counts against every request scheduled
//! during it, not just the one that was in flight (no coordinated omission). Requests are evenly spaced
//! (no jitter): a burst at the system never comes from the schedule.
//!
//! **Closed loop** ([`Mode::Closed`]): N clients, each sending its next request as soon as the previous
//! answered (maximum throughput); latency is from the actual send.
//!
//! Requests intended during the `warmup` are sent but not recorded; those intended within the
//! following `duration` are, including their completion after it ends (the run waits for them, each
//! under [`RunConfig::request_timeout`]). A request that times out is an error labelled `timeout`, and
//! its worker opens a new connection before its next request.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Driver, ErrorLabel, Op, Workload};

/// Open loop at a total rate, or closed loop with a number of clients.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// A fixed arrival schedule at `rate` ops per second in total (requests of `batch` ops each are
    /// spaced `batch / rate` apart).
    Open { rate: f64 },
    /// `clients` concurrent clients, each one request at a time, as fast as answers come.
    Closed { clients: usize },
}

/// Called about once a second while the run goes on (the command prints it as a line on stderr).
pub type ProgressFn = Arc<dyn Fn(&Progress) + Send + Sync>;

/// The default measured duration.
pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);
/// The default warm-up (sent, not recorded).
pub const DEFAULT_WARMUP: Duration = Duration::from_secs(5);
/// The default number of open-loop connections.
pub const DEFAULT_CONNECTIONS: usize = 64;
/// The default number of closed-loop clients.
pub const DEFAULT_CLIENTS: usize = 16;
/// The default deadline of one request (one [`Driver::execute`]).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// How to run a workload.
#[derive(Clone)]
pub struct RunConfig {
    pub mode: Mode,
    /// Open loop: the connections (workers) requests queue for. Ignored in closed loop, where each
    /// client has its own.
    pub connections: usize,
    /// Ops per request (per [`Driver::execute`]); 1 = no batching.
    pub batch: usize,
    /// Sent first and not recorded.
    pub warmup: Duration,
    /// The measured part: requests intended (open) or sent (closed) within it are recorded.
    pub duration: Duration,
    /// The deadline of each request; past it the request is an error labelled `timeout`.
    pub request_timeout: Duration,
    /// Keep every recorded request as a [`Sample`] in [`Report::samples`].
    pub record_samples: bool,
    /// Called about once a second with what the last second did.
    pub progress: Option<ProgressFn>,
}

impl std::fmt::Debug for RunConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunConfig")
            .field("mode", &self.mode)
            .field("connections", &self.connections)
            .field("batch", &self.batch)
            .field("warmup", &self.warmup)
            .field("duration", &self.duration)
            .field("request_timeout", &self.request_timeout)
            .field("record_samples", &self.record_samples)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

impl RunConfig {
    /// Open loop at `rate` ops/s with the defaults ([`DEFAULT_CONNECTIONS`], no batching,
    /// [`DEFAULT_WARMUP`], [`DEFAULT_DURATION`], [`DEFAULT_REQUEST_TIMEOUT`], no samples, no progress).
    pub fn open(rate: f64) -> RunConfig {
        RunConfig {
            mode: Mode::Open { rate },
            connections: DEFAULT_CONNECTIONS,
            batch: 1,
            warmup: DEFAULT_WARMUP,
            duration: DEFAULT_DURATION,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            record_samples: false,
            progress: None,
        }
    }

    /// Closed loop with `clients` clients and the other defaults of [`RunConfig::open`].
    pub fn closed(clients: usize) -> RunConfig {
        RunConfig {
            mode: Mode::Closed { clients },
            ..RunConfig::open(1.0)
        }
    }

    /// What is wrong with this configuration, naming the command line's flag, if anything.
    pub fn validate(&self) -> Result<(), String> {
        match self.mode {
            Mode::Open { rate } if !(rate.is_finite() && rate > 0.0) => {
                return Err("the offered rate (--players × --rate) must be above 0".into())
            }
            Mode::Open { .. } if self.connections == 0 => {
                return Err("--connections must be at least 1".into())
            }
            Mode::Closed { clients: 0 } => return Err("--clients must be at least 1".into()),
            _ => {}
        }
        if self.batch == 0 {
            return Err("--batch must be at least 1".into());
        }
        if self.duration.is_zero() {
            return Err("--duration must be more than 0".into());
        }
        if self.request_timeout.is_zero() {
            return Err("--timeout must be more than 0".into());
        }
        Ok(())
    }
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The workload or the configuration is invalid (nothing was sent).
    #[error("{0}")]
    Invalid(String),
    /// A worker could not open its connection (nothing was sent).
    #[error("worker {worker} could not connect: {label}")]
    Connect { worker: usize, label: ErrorLabel },
}

/// One recorded request ([`RunConfig::record_samples`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// When it was meant to be sent (open loop) or was sent (closed loop), since the measurement
    /// started (the end of the warm-up).
    pub intended: Duration,
    /// From `intended` to its answer (or its failure).
    pub latency: Duration,
    /// `None` when the system acknowledged every op.
    pub error: Option<ErrorLabel>,
    /// The ops it carried, in order (one, or `batch`).
    pub ops: Vec<Op>,
}

/// Latency percentiles of a set of requests, in microseconds (HDR histogram, 3 significant digits:
/// each value within 0.1 %). All zero when `count` is 0.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub count: u64,
    pub min: u64,
    pub mean: f64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl LatencySummary {
    /// The summary of a histogram of microseconds.
    pub fn of(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

/// What a run measured. Serialized as the `--json` output (docs/cli.md names every field); `samples`
/// is not serialized.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// `open` or `closed`.
    pub mode: &'static str,
    pub workload: Workload,
    /// Open loop: the connections; closed loop: the clients.
    pub connections: usize,
    pub batch: usize,
    pub warmup_s: f64,
    pub duration_s: f64,
    /// From the start of the measurement to the last recorded answer (≥ `duration_s`).
    pub elapsed_s: f64,
    /// Open loop: ops/s offered; closed loop: `null`.
    pub offered_rate: Option<f64>,
    /// Ops of successful requests per second of `elapsed_s`.
    pub achieved_rate: f64,
    /// Recorded requests (`execute` calls), failed ones included.
    pub requests: u64,
    /// Ops in recorded requests, failed ones included.
    pub ops: u64,
    /// Ops in successful requests.
    pub ok_ops: u64,
    /// Failed requests.
    pub errors: u64,
    /// Failed requests by label (`timeout`, `http-503-no_quorum`, ...).
    pub errors_by_label: BTreeMap<String, u64>,
    /// Latency of every recorded request, failed ones included (a failure is no faster than its
    /// answer), from its intended time.
    pub latency_us: LatencySummary,
    /// The same by request kind: the op's kind for single ops (`update`, `put`, `checkpoint`,
    /// `late_read`), `batch` for several.
    pub latency_by_kind_us: BTreeMap<String, LatencySummary>,
    /// Open loop: the longest any request waited past its intended time for a free connection (µs);
    /// above a few ms it means too few `connections` for the system's latency at this rate.
    pub max_queue_wait_us: u64,
    /// The driver's counters over the measurement ([`Driver::counters`]).
    pub counters: BTreeMap<String, u64>,
    /// Every recorded request, when [`RunConfig::record_samples`] (not serialized).
    #[serde(skip)]
    pub samples: Vec<Sample>,
}

/// What the last second did (for [`RunConfig::progress`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// Since the run started (warm-up included).
    pub elapsed: Duration,
    /// Still in the warm-up.
    pub warmup: bool,
    /// Requests answered in the last interval, and their ops.
    pub requests: u64,
    pub ops: u64,
    /// Failed requests in the last interval.
    pub errors: u64,
    /// Of the requests answered in the last interval (from their intended time); `None` if none.
    pub p99: Option<Duration>,
    /// The interval's length (about a second).
    pub interval: Duration,
}

/// Ops/s of `ops` over `d`.
pub fn rate(ops: u64, d: Duration) -> f64 {
    if d.is_zero() {
        return 0.0;
    }
    // Op counts are far below 2^53: the conversion is exact.
    ops as f64 / d.as_secs_f64()
}

/// A histogram of microseconds from 1 µs to an hour, 3 significant digits; larger values saturate.
fn histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts (low ≥ 1, high ≥ 2 × low, sigfig ≤ 5).
    Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap_or_else(|_| unreachable!())
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The recorded state, behind one mutex each worker holds only to record (never across an `.await`).
struct Recorder {
    measure_from: Instant,
    measure_until: Instant,
    all: Histogram<u64>,
    by_kind: BTreeMap<&'static str, Histogram<u64>>,
    requests: u64,
    ops: u64,
    ok_ops: u64,
    errors: BTreeMap<String, u64>,
    last_answer: Option<Instant>,
    max_queue_wait: Duration,
    samples: Option<Vec<Sample>>,
    // The current progress interval (warm-up included).
    tick: Histogram<u64>,
    tick_requests: u64,
    tick_ops: u64,
    tick_errors: u64,
}

impl Recorder {
    fn new(measure_from: Instant, measure_until: Instant, samples: bool) -> Recorder {
        Recorder {
            measure_from,
            measure_until,
            all: histogram(),
            by_kind: BTreeMap::new(),
            requests: 0,
            ops: 0,
            ok_ops: 0,
            errors: BTreeMap::new(),
            last_answer: None,
            max_queue_wait: Duration::ZERO,
            samples: samples.then(Vec::new),
            tick: histogram(),
            tick_requests: 0,
            tick_ops: 0,
            tick_errors: 0,
        }
    }

    /// One answered request: sent `queued` after it was intended, answered at `done`.
    fn record(
        &mut self,
        intended: Instant,
        queued: Duration,
        done: Instant,
        ops: Vec<Op>,
        result: Result<(), ErrorLabel>,
    ) {
        let latency = done.saturating_duration_since(intended);
        let us = micros(latency);
        let n = u64::try_from(ops.len()).unwrap_or(u64::MAX);
        self.tick.saturating_record(us);
        self.tick_requests += 1;
        self.tick_ops += n;
        self.tick_errors += u64::from(result.is_err());
        if intended < self.measure_from || intended >= self.measure_until {
            return;
        }
        self.all.saturating_record(us);
        let kind = match ops.as_slice() {
            [op] => op.kind(),
            _ => "batch",
        };
        self.by_kind
            .entry(kind)
            .or_insert_with(histogram)
            .saturating_record(us);
        self.requests += 1;
        self.ops += n;
        self.max_queue_wait = self.max_queue_wait.max(queued);
        self.last_answer = Some(self.last_answer.map_or(done, |t| t.max(done)));
        match &result {
            Ok(()) => self.ok_ops += n,
            Err(label) => *self.errors.entry(label.clone()).or_default() += 1,
        }
        if let Some(samples) = &mut self.samples {
            samples.push(Sample {
                intended: intended.saturating_duration_since(self.measure_from),
                latency,
                error: result.err(),
                ops,
            });
        }
    }

    /// The interval's progress, and a fresh interval.
    fn take_tick(&mut self, elapsed: Duration, warmup: bool, interval: Duration) -> Progress {
        let p = Progress {
            elapsed,
            warmup,
            requests: self.tick_requests,
            ops: self.tick_ops,
            errors: self.tick_errors,
            p99: (!self.tick.is_empty())
                .then(|| Duration::from_micros(self.tick.value_at_quantile(0.99))),
            interval,
        };
        self.tick.reset();
        self.tick_requests = 0;
        self.tick_ops = 0;
        self.tick_errors = 0;
        p
    }
}

fn lock(r: &Mutex<Recorder>) -> MutexGuard<'_, Recorder> {
    // A worker that panicked while recording leaves counts that are still counts: go on with them.
    r.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One request handed to a worker.
struct Job {
    intended: Instant,
    ops: Vec<Op>,
}

/// A worker's connection: opened at the start, re-opened after a request timed out.
struct Worker<D: Driver> {
    driver: Arc<D>,
    id: usize,
    conn: Option<D::Conn>,
    timeout: Duration,
}

impl<D: Driver> Worker<D> {
    async fn execute(&mut self, ops: &[Op]) -> Result<(), ErrorLabel> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None => tokio::time::timeout(self.timeout, self.driver.connect(self.id))
                .await
                .map_err(|_| ErrorLabel::from("timeout"))??,
        };
        let conn = self.conn.insert(conn);
        match tokio::time::timeout(self.timeout, self.driver.execute(conn, ops)).await {
            Ok(result) => result,
            Err(_) => {
                // The request was cancelled midway: its connection may be in any state.
                self.conn = None;
                Err("timeout".into())
            }
        }
    }
}

/// Run `workload` against `driver` as `cfg` says and report what was measured.
///
/// Every worker connects first (a failure is [`RunError::Connect`], before anything is sent); then the
/// warm-up, the measurement, and the wait for the requests still in flight.
pub async fn run<D: Driver>(
    driver: Arc<D>,
    workload: Workload,
    cfg: RunConfig,
) -> Result<Report, RunError> {
    workload.validate().map_err(RunError::Invalid)?;
    cfg.validate().map_err(RunError::Invalid)?;
    let n_workers = match cfg.mode {
        Mode::Open { .. } => cfg.connections,
        Mode::Closed { clients } => clients,
    };
    let timeout = cfg.request_timeout;
    let connects = (0..n_workers).map(|id| {
        let driver = Arc::clone(&driver);
        async move {
            match tokio::time::timeout(timeout, driver.connect(id)).await {
                Ok(Ok(conn)) => Ok(conn),
                Ok(Err(label)) => Err(RunError::Connect { worker: id, label }),
                Err(_) => Err(RunError::Connect {
                    worker: id,
                    label: "timeout".into(),
                }),
            }
        }
    });
    let conns = futures_util::future::try_join_all(connects).await?;
    let workers: Vec<Worker<D>> = conns
        .into_iter()
        .enumerate()
        .map(|(id, conn)| Worker {
            driver: Arc::clone(&driver),
            id,
            conn: Some(conn),
            timeout: cfg.request_timeout,
        })
        .collect();

    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let measure_until = measure_from + cfg.duration;
    let recorder = Arc::new(Mutex::new(Recorder::new(
        measure_from,
        measure_until,
        cfg.record_samples,
    )));
    let ticker = cfg
        .progress
        .clone()
        .map(|progress| tokio::spawn(tick(progress, Arc::clone(&recorder), start, measure_from)));
    // The driver's counters at the start of the measurement: the open loop's pacer takes them right before
    // it sends the first measured request; the closed loop at `measure_from` (now, without a warm-up).
    let (baseline_tx, baseline) = tokio::sync::oneshot::channel();
    match cfg.mode {
        Mode::Open { rate } => {
            let schedule = Schedule {
                start,
                measure_from,
                end: measure_until,
                baseline: baseline_tx,
            };
            open_loop(workers, &workload, &cfg, rate, schedule, &recorder).await
        }
        Mode::Closed { .. } => {
            if cfg.warmup.is_zero() {
                let _ = baseline_tx.send(driver.counters());
            } else {
                let driver = Arc::clone(&driver);
                tokio::spawn(async move {
                    tokio::time::sleep_until(measure_from).await;
                    let _ = baseline_tx.send(driver.counters());
                });
            }
            closed_loop(workers, &workload, &cfg, measure_until, &recorder).await
        }
    }
    if let Some(t) = ticker {
        t.abort();
    }
    let before: BTreeMap<String, u64> = baseline.await.unwrap_or_default().into_iter().collect();
    let counters = driver
        .counters()
        .into_iter()
        .map(|(name, total)| {
            let since = total.saturating_sub(before.get(&name).copied().unwrap_or(0));
            (name, since)
        })
        .collect();

    let mut r = lock(&recorder);
    let elapsed = r
        .last_answer
        .map_or(cfg.duration, |t| t.saturating_duration_since(measure_from))
        .max(cfg.duration);
    Ok(Report {
        mode: match cfg.mode {
            Mode::Open { .. } => "open",
            Mode::Closed { .. } => "closed",
        },
        workload,
        connections: n_workers,
        batch: cfg.batch,
        warmup_s: cfg.warmup.as_secs_f64(),
        duration_s: cfg.duration.as_secs_f64(),
        elapsed_s: elapsed.as_secs_f64(),
        offered_rate: match cfg.mode {
            Mode::Open { rate } => Some(rate),
            Mode::Closed { .. } => None,
        },
        achieved_rate: rate(r.ok_ops, elapsed),
        requests: r.requests,
        ops: r.ops,
        ok_ops: r.ok_ops,
        errors: r.errors.values().sum(),
        errors_by_label: std::mem::take(&mut r.errors),
        latency_us: LatencySummary::of(&r.all),
        latency_by_kind_us: r
            .by_kind
            .iter()
            .map(|(kind, h)| ((*kind).to_owned(), LatencySummary::of(h)))
            .collect(),
        max_queue_wait_us: micros(r.max_queue_wait),
        counters,
        samples: r.samples.take().unwrap_or_default(),
    })
}

/// The progress callback, once a second until aborted.
async fn tick(
    progress: ProgressFn,
    recorder: Arc<Mutex<Recorder>>,
    start: Instant,
    measure_from: Instant,
) {
    let period = Duration::from_secs(1);
    let mut last = start;
    let mut every = tokio::time::interval_at(start + period, period);
    loop {
        let now = every.tick().await;
        let p = lock(&recorder).take_tick(now - start, now <= measure_from, now - last);
        last = now;
        progress(&p);
    }
}

/// When the open loop's requests are due: from `start` until `end`, measured from `measure_from`, where
/// the driver's counters are handed to `baseline`.
struct Schedule {
    start: Instant,
    measure_from: Instant,
    end: Instant,
    baseline: tokio::sync::oneshot::Sender<Vec<(String, u64)>>,
}

/// The open loop: a dispatcher on the fixed schedule, `workers` taking requests in turn.
async fn open_loop<D: Driver>(
    workers: Vec<Worker<D>>,
    workload: &Workload,
    cfg: &RunConfig,
    rate: f64,
    schedule: Schedule,
    recorder: &Arc<Mutex<Recorder>>,
) {
    let driver = workers.first().map(|w| Arc::clone(&w.driver));
    // Free workers announce themselves here; each has its own job channel.
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel::<usize>();
    let mut jobs = Vec::with_capacity(workers.len());
    let mut tasks = Vec::with_capacity(workers.len());
    for mut worker in workers {
        let (job_tx, mut job_rx) = mpsc::channel::<Job>(1);
        jobs.push(job_tx);
        let (idle_tx, recorder) = (idle_tx.clone(), Arc::clone(recorder));
        let _ = idle_tx.send(worker.id);
        tasks.push(tokio::spawn(async move {
            while let Some(job) = job_rx.recv().await {
                let queued = Instant::now().saturating_duration_since(job.intended);
                let result = worker.execute(&job.ops).await;
                let done = Instant::now();
                lock(&recorder).record(job.intended, queued, done, job.ops, result);
                if idle_tx.send(worker.id).is_err() {
                    break;
                }
            }
        }));
    }
    drop(idle_tx);
    // Batch sizes are small integers: the conversion is exact.
    let period = cfg.batch as f64 / rate;
    let mut stream = workload.stream();
    let batch = cfg.batch;
    let (start, measure_from, end) = (
        schedule.start.into_std(),
        schedule.measure_from.into_std(),
        schedule.end.into_std(),
    );
    let mut baseline = Some(schedule.baseline);
    // The schedule is kept by a thread of its own that sleeps to each intended time: tokio's timer wakes
    // at millisecond ticks, rounded up, which sent requests about a millisecond late, and that lateness
    // (the client's, not the system's) was counted in every latency.
    let pacer = tokio::task::spawn_blocking(move || {
        for k in 0u64.. {
            let intended = start + Duration::from_secs_f64(k as f64 * period);
            if intended >= end {
                break;
            }
            std::thread::sleep(intended.saturating_duration_since(std::time::Instant::now()));
            if intended >= measure_from {
                if let (Some(tx), Some(driver)) = (baseline.take(), &driver) {
                    let _ = tx.send(driver.counters());
                }
            }
            let ops: Vec<Op> = stream.by_ref().take(batch).collect();
            let Some(w) = idle_rx.blocking_recv() else {
                break;
            };
            let job = Job {
                intended: Instant::from_std(intended),
                ops,
            };
            if jobs[w].blocking_send(job).is_err() {
                break;
            }
        }
    });
    let _ = pacer.await;
    for t in tasks {
        let _ = t.await;
    }
}

/// The closed loop: each client sends its next request when the previous one answered.
async fn closed_loop<D: Driver>(
    workers: Vec<Worker<D>>,
    workload: &Workload,
    cfg: &RunConfig,
    end: Instant,
    recorder: &Arc<Mutex<Recorder>>,
) {
    let stream = Arc::new(Mutex::new(workload.stream()));
    let batch = cfg.batch;
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|mut worker| {
            let (stream, recorder) = (Arc::clone(&stream), Arc::clone(recorder));
            tokio::spawn(async move {
                loop {
                    let sent = Instant::now();
                    if sent >= end {
                        break;
                    }
                    let ops: Vec<Op> = {
                        let mut s = stream.lock().unwrap_or_else(|p| p.into_inner());
                        s.by_ref().take(batch).collect()
                    };
                    let result = worker.execute(&ops).await;
                    let done = Instant::now();
                    lock(&recorder).record(sent, Duration::ZERO, done, ops, result);
                }
            })
        })
        .collect();
    for t in tasks {
        let _ = t.await;
    }
}

#[cfg(test)]
mod tests;
