//! The runner against a fake driver whose latency, stalls and failures the tests set. Real time: the
//! bounds are generous, and a lower bound on a latency (what the stall test checks) can only be met
//! more easily on a slow machine.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;
use crate::bench::Shape;

/// A system that answers after `latency`, except: every execute that starts within the stall window
/// (`stall.0` after the first execute, for `stall.1`) waits until the window ends; the `fail_every`th
/// calls fail with `boom`; the `hang_call`th call never answers.
#[derive(Default)]
struct Fake {
    latency: Duration,
    stall: Option<(Duration, Duration)>,
    fail_every: Option<u64>,
    hang_call: Option<u64>,
    first: Mutex<Option<Instant>>,
    calls: AtomicU64,
    connects: AtomicU64,
    batch_sizes: Mutex<Vec<usize>>,
}

impl Driver for Fake {
    type Conn = usize;

    async fn connect(&self, worker: usize) -> Result<usize, ErrorLabel> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        Ok(worker)
    }

    async fn execute(&self, _conn: &mut usize, ops: &[Op]) -> Result<(), ErrorLabel> {
        let now = Instant::now();
        let first = *self.first.lock().expect("lock").get_or_insert(now);
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        self.batch_sizes.lock().expect("lock").push(ops.len());
        if self.hang_call == Some(n) {
            std::future::pending::<()>().await;
        }
        if let Some((at, len)) = self.stall {
            let (from, until) = (first + at, first + at + len);
            if now >= from && now < until {
                tokio::time::sleep_until(until).await;
            }
        }
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        match self.fail_every {
            Some(k) if n.is_multiple_of(k) => Err("boom".into()),
            _ => Ok(()),
        }
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![("calls".into(), self.calls.load(Ordering::SeqCst))]
    }
}

fn quick(rate: f64, duration_ms: u64) -> RunConfig {
    RunConfig {
        warmup: Duration::ZERO,
        duration: Duration::from_millis(duration_ms),
        connections: 4,
        record_samples: true,
        ..RunConfig::open(rate)
    }
}

fn workload() -> Workload {
    Workload {
        value_size: 8,
        ..Workload::game(50, 1.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_counts_against_every_op_scheduled_during_it() {
    let stall_at = Duration::from_millis(1_000);
    let stall = Duration::from_millis(300);
    let fake = Arc::new(Fake {
        latency: Duration::from_millis(1),
        stall: Some((stall_at, stall)),
        ..Fake::default()
    });
    // 200 ops/s for 3 s: one request every 5 ms, 600 in all.
    let report = run(Arc::clone(&fake), workload(), quick(200.0, 3_000))
        .await
        .expect("run");
    assert_eq!(report.requests, 600, "{report:?}");
    assert_eq!(report.errors, 0);
    assert_eq!(report.samples.len(), 600);
    // The request that met the stall first waited all of it.
    assert!(
        report.latency_us.max >= 280_000,
        "max {} µs",
        report.latency_us.max
    );
    // Every request intended during the stall (the first execute is at the schedule's start, within a
    // few ms) waited at least until the stall ended: its latency includes that wait. A closed-loop
    // measurement would have charged it to one request only.
    let stall_end = stall_at + stall;
    let during: Vec<&Sample> = report
        .samples
        .iter()
        .filter(|s| {
            s.intended >= stall_at + Duration::from_millis(15)
                && s.intended + Duration::from_millis(15) < stall_end
        })
        .collect();
    assert!(
        during.len() >= 50,
        "{} requests intended during the stall",
        during.len()
    );
    for s in &during {
        let waited_for_the_stall = stall_end - s.intended;
        assert!(
            s.latency + Duration::from_millis(20) >= waited_for_the_stall,
            "intended at {:?}: latency {:?} < the {:?} left of the stall",
            s.intended,
            s.latency,
            waited_for_the_stall
        );
    }
    // After the stall the backlog clears: the achieved rate is the offered one.
    let offered = report.offered_rate.expect("open loop");
    assert_eq!(offered, 200.0);
    assert!(
        (report.achieved_rate - offered).abs() / offered < 0.1,
        "achieved {} of {offered}",
        report.achieved_rate
    );
    assert!(report.elapsed_s >= 3.0);
    assert!(report.max_queue_wait_us >= 200_000, "{report:?}");
    assert_eq!(report.counters["calls"], 600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_carry_consecutive_ops_of_the_stream() {
    let fake = Arc::new(Fake::default());
    let cfg = RunConfig {
        batch: 5,
        ..quick(500.0, 1_000)
    };
    // 500 ops/s in requests of 5: 100 requests, one every 10 ms.
    let report = run(Arc::clone(&fake), workload(), cfg).await.expect("run");
    assert_eq!(
        (report.requests, report.ops, report.ok_ops),
        (100, 500, 500)
    );
    assert!(fake
        .batch_sizes
        .lock()
        .expect("lock")
        .iter()
        .all(|&n| n == 5));
    let mut samples = report.samples.clone();
    samples.sort_by_key(|s| s.intended);
    let sent: Vec<Op> = samples.into_iter().flat_map(|s| s.ops).collect();
    let expected: Vec<Op> = workload().stream().take(500).collect();
    assert_eq!(sent, expected);
    assert_eq!(report.latency_by_kind_us["batch"].count, 100);
    assert_eq!(report.latency_by_kind_us.len(), 1);

    // Closed loop: every request is a full batch too.
    let fake = Arc::new(Fake {
        latency: Duration::from_millis(2),
        ..Fake::default()
    });
    let cfg = RunConfig {
        batch: 3,
        warmup: Duration::ZERO,
        duration: Duration::from_millis(500),
        ..RunConfig::closed(4)
    };
    let report = run(Arc::clone(&fake), workload(), cfg).await.expect("run");
    assert_eq!(report.mode, "closed");
    assert_eq!(report.offered_rate, None);
    assert_eq!(report.connections, 4);
    // 4 clients, ~2 ms a request, for 0.5 s: about 1,000 requests; at least a tenth of that.
    assert!(report.requests >= 100, "{report:?}");
    assert_eq!(report.ops, 3 * report.requests);
    assert!(fake
        .batch_sizes
        .lock()
        .expect("lock")
        .iter()
        .all(|&n| n == 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_warmup_is_sent_but_not_recorded() {
    let fake = Arc::new(Fake::default());
    let ticks = Arc::new(Mutex::new(Vec::<Progress>::new()));
    let seen = Arc::clone(&ticks);
    let cfg = RunConfig {
        warmup: Duration::from_millis(1_200),
        progress: Some(Arc::new(move |p: &Progress| {
            seen.lock().expect("lock").push(p.clone())
        })),
        ..quick(100.0, 1_000)
    };
    let report = run(Arc::clone(&fake), workload(), cfg).await.expect("run");
    // 120 requests in the warm-up, 100 measured.
    assert_eq!(report.requests, 100);
    assert_eq!(fake.calls.load(Ordering::SeqCst), 220);
    assert!(report
        .samples
        .iter()
        .all(|s| s.intended < Duration::from_millis(1_000)));
    // The driver's counters cover the measurement only (the baseline is read as it starts).
    let calls = report.counters["calls"];
    assert!((98..=102).contains(&calls), "{calls}");
    // Progress came about once a second: the first during the warm-up, then one in the measurement.
    let ticks = ticks.lock().expect("lock").clone();
    assert!(ticks.len() >= 2, "{ticks:?}");
    assert!(ticks[0].warmup && !ticks[1].warmup, "{ticks:?}");
    assert!(ticks[0].requests >= 50, "{ticks:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_counted_by_label_and_a_timeout_reconnects() {
    let fake = Arc::new(Fake {
        fail_every: Some(10),
        hang_call: Some(5),
        ..Fake::default()
    });
    let cfg = RunConfig {
        request_timeout: Duration::from_millis(100),
        ..quick(100.0, 1_000)
    };
    let report = run(Arc::clone(&fake), workload(), cfg).await.expect("run");
    assert_eq!(report.requests, 100);
    assert_eq!(report.errors_by_label["boom"], 10);
    assert_eq!(report.errors_by_label["timeout"], 1);
    assert_eq!(report.errors, 11);
    assert_eq!(report.ok_ops, 89);
    let timed_out: Vec<&Sample> = report
        .samples
        .iter()
        .filter(|s| s.error.as_deref() == Some("timeout"))
        .collect();
    assert_eq!(timed_out.len(), 1);
    assert!(timed_out[0].latency >= Duration::from_millis(100));
    // 4 connections at the start, one more after the timeout.
    assert_eq!(fake.connects.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn invalid_configurations_are_refused_before_anything_is_sent() {
    let fake = Arc::new(Fake::default());
    let refused = |cfg: RunConfig, w: Workload| {
        let fake = Arc::clone(&fake);
        async move {
            match run(fake, w, cfg).await {
                Err(RunError::Invalid(message)) => message,
                other => panic!("not refused: {other:?}"),
            }
        }
    };
    assert!(refused(RunConfig::open(0.0), workload())
        .await
        .contains("rate"));
    assert!(refused(RunConfig::closed(0), workload())
        .await
        .contains("--clients"));
    let no_batch = RunConfig {
        batch: 0,
        ..RunConfig::open(1.0)
    };
    assert!(refused(no_batch, workload()).await.contains("--batch"));
    let no_players = Workload {
        players: 0,
        shape: Shape::Put,
        ..workload()
    };
    assert!(refused(RunConfig::open(1.0), no_players)
        .await
        .contains("--players"));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);

    struct Refusing;
    impl Driver for Refusing {
        type Conn = ();
        async fn connect(&self, _worker: usize) -> Result<(), ErrorLabel> {
            Err("connect".into())
        }
        async fn execute(&self, _conn: &mut (), _ops: &[Op]) -> Result<(), ErrorLabel> {
            Ok(())
        }
    }
    match run(Arc::new(Refusing), workload(), quick(10.0, 100)).await {
        Err(RunError::Connect { label, .. }) => assert_eq!(label, "connect"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn percentiles_are_within_the_histograms_precision() {
    let mut h = histogram();
    // 1 ms .. 1 s in 1 ms steps.
    for ms in 1..=1_000u64 {
        h.saturating_record(ms * 1_000);
    }
    let s = LatencySummary::of(&h);
    let near = |got: u64, want: u64| {
        let err = got.abs_diff(want) as f64 / want as f64;
        assert!(err <= 0.001, "{got} vs {want}");
    };
    assert_eq!(s.count, 1_000);
    near(s.min, 1_000);
    near(s.p50, 500_000);
    near(s.p90, 900_000);
    near(s.p99, 990_000);
    near(s.p999, 999_000);
    near(s.max, 1_000_000);
    assert!((s.mean - 500_500.0).abs() / 500_500.0 < 0.001, "{}", s.mean);
    // Nothing recorded: zeros, not a panic.
    assert_eq!(LatencySummary::of(&histogram()), LatencySummary::default());
    // An hour and more saturates instead of failing.
    let mut h = histogram();
    h.saturating_record(u64::MAX);
    assert!(LatencySummary::of(&h).max >= 3_600_000_000);
}

/// A system that answers at once: each latency is the client's own delay in sending on schedule. With
/// tokio's millisecond timer the requests went out about a millisecond late (p50 1.3 ms measured against a
/// real site that answered in 0.6 ms); a thread that sleeps to each intended time sends within a fraction
/// of that.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_leave_at_their_intended_time_not_at_the_next_timer_tick() {
    let fake = Arc::new(Fake::default());
    let report = run(fake, workload(), quick(500.0, 1_000))
        .await
        .expect("run");
    assert!(report.requests >= 450, "{} requests", report.requests);
    let p50 = report.latency_us.p50;
    assert!(
        p50 < 500,
        "a system that answers at once measured p50 {p50} us: the client sent late"
    );
}
