//! Engine micro-benchmarks (criterion). `cargo bench -p engine`; results are recorded in BENCHMARKS.md.
//! Writes are unsynced here: fsync cost belongs to the replication benchmarks (group commit).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, BenchmarkId, Criterion};
use engine::{Engine, EngineConfig, ManualClock, Op};

const SEC: u64 = 1_000_000;
const T0: u64 = 1_700_000_000 * SEC;
const BIG: usize = 100_000;

struct Bench {
    _dir: tempfile::TempDir,
    engine: Engine,
    index: u64,
    ts: u64,
}

impl Bench {
    fn new() -> Self {
        let dir = tempfile::TempDir::new().unwrap();
        let config = EngineConfig {
            retention: Duration::from_secs(3600),
            clock: Arc::new(ManualClock::new(T0 + 1800 * SEC)),
            ..EngineConfig::default()
        };
        let engine = Engine::open(dir.path(), config).unwrap();
        Bench {
            _dir: dir,
            engine,
            index: 0,
            ts: T0,
        }
    }

    fn apply(&mut self, ops: &[Op]) -> u64 {
        self.index += 1;
        self.ts += 1;
        self.engine.apply(self.index, self.ts, ops, false).unwrap();
        self.ts
    }

    fn fill(&mut self, entity: &str, keys: usize) {
        let mut done = 0;
        while done < keys {
            let n = (keys - done).min(5_000);
            let ops: Vec<Op> = (done..done + n)
                .map(|k| put(&format!("{entity}/k{k:06}"), 60))
                .collect();
            self.apply(&ops);
            done += n;
        }
    }
}

fn put(key: &str, len: usize) -> Op {
    Op::put(key, vec![b'x'; len])
}

fn checkpoint(entity: &str) -> Op {
    Op::checkpoint(entity, b"cp", vec![])
}

fn writes(c: &mut Criterion) {
    let mut b = Bench::new();
    let mut i = 0u64;
    c.bench_function("put", |bench| {
        bench.iter(|| {
            i += 1;
            b.apply(&[put(&format!("player:{}/pos", i % 100_000), 60)])
        })
    });
    c.bench_function("incr", |bench| {
        bench.iter(|| {
            i += 1;
            let key = format!("player:{}/score", i % 100_000).into_bytes();
            b.apply(&[Op::incr(key, 1)])
        })
    });
}

/// Repeated checkpoints of an entity holding 10 or 100,000 keys, both in the same store (so LSM depth and
/// cache state are the same for both). Only the first checkpoint invalidates live keys; later ones run with
/// those versions still physically present (GC never runs here).
fn checkpoints(c: &mut Criterion) {
    let mut b = Bench::new();
    b.fill("small", 10);
    b.fill("large", BIG);
    b.engine.compact().unwrap();
    let mut group = c.benchmark_group("checkpoint");
    for (name, entity) in [("10_keys", "small"), ("100k_keys", "large")] {
        group.bench_function(BenchmarkId::from_parameter(name), |bench| {
            bench.iter(|| b.apply(&[checkpoint(entity)]))
        });
    }
    group.finish();
}

fn reads(c: &mut Criterion) {
    let mut b = Bench::new();
    for round in 0..50 {
        let ops: Vec<Op> = (0..2_000)
            .map(|p| put(&format!("player:{p}/pos"), 60 + round % 3))
            .collect();
        b.apply(&ops);
    }
    let mid_ts = T0 + 25;
    for p in 0..200 {
        let ops: Vec<Op> = (0..20)
            .map(|k| put(&format!("team:{p}/m{k:02}"), 60))
            .collect();
        b.apply(&ops);
    }
    b.engine.compact().unwrap();
    let mut i = 0u64;
    c.bench_function("get_latest", |bench| {
        bench.iter(|| {
            i += 7919;
            black_box(
                b.engine
                    .get(format!("player:{}/pos", i % 2_000).as_bytes(), u64::MAX)
                    .unwrap(),
            )
        })
    });
    c.bench_function("get_at_older_ts", |bench| {
        bench.iter(|| {
            i += 7919;
            black_box(
                b.engine
                    .get(format!("player:{}/pos", i % 2_000).as_bytes(), mid_ts)
                    .unwrap(),
            )
        })
    });
    c.bench_function("entity_scan_20_keys", |bench| {
        bench.iter(|| {
            i += 7919;
            let page = b
                .engine
                .entity(
                    format!("team:{}", i % 200).as_bytes(),
                    u64::MAX,
                    1_000,
                    usize::MAX,
                )
                .unwrap();
            assert_eq!(page.items.len(), 20);
            black_box(page)
        })
    });
}

/// The first checkpoint of fresh entities holding 10 vs 100,000 *live* keys, timed one by one (criterion
/// cannot refill an entity between iterations cheaply). Both populations live in one store and are
/// measured alternately, so only the entity's own key count differs. Prints the medians and their ratio.
fn first_checkpoint_on_live_keys() {
    let entities = 24;
    let mut b = Bench::new();
    for e in 0..entities {
        b.fill(&format!("small{e:03}"), 10);
        b.fill(&format!("large{e:03}"), BIG);
    }
    b.engine.compact().unwrap();
    let mut time = |entity: String| {
        let op = checkpoint(&entity);
        let start = Instant::now();
        b.apply(&[op]);
        start.elapsed()
    };
    let (mut small, mut large): (Vec<Duration>, Vec<Duration>) = (0..entities)
        .map(|e| (time(format!("small{e:03}")), time(format!("large{e:03}"))))
        .unzip();
    small.sort();
    large.sort();
    let (s, l) = (small[entities / 2], large[entities / 2]);
    println!(
        "first_checkpoint_on_live_keys: median 10 keys {s:?}, 100k keys {l:?}, ratio {:.2} ({entities} fresh entities each)",
        l.as_secs_f64() / s.as_secs_f64()
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = writes, checkpoints, reads
}

fn main() {
    benches();
    if std::env::args().all(|a| a != "--list") {
        first_checkpoint_on_live_keys();
    }
    Criterion::default().configure_from_args().final_summary();
}
