//! Model-based test: the engine over real RocksDB (tiny memtables, so flushes and compactions happen)
//! against an independent in-memory model — a `BTreeMap` of every version plus an epoch table — under
//! random sequences of writes, reads at past timestamps, scans, GC, compactions and restarts.
//! Runs 1,000 cases by default; set `PROPTEST_CASES` for more.

use std::collections::BTreeMap;
use std::sync::Arc;

use engine::{
    Clock, CmpOp, Compare, Crossing, Engine, EngineConfig, Error, ManualClock, Op, OpError,
    OpOutcome, ScanRequest, Versioned,
};
use proptest::prelude::*;
use tempfile::TempDir;

const SEC: u64 = 1_000_000;
const RETENTION: u64 = 5 * SEC;
const T0: u64 = 1_000 * SEC;
const KEYS: &[&str] = &[
    "e0/a", "e0/b", "e0", "e0-x", "e1/a", "e1/b/c", "k0", "k1", "e2/a",
];
const ENTITIES: &[&str] = &["e0", "e1", "e2"];

#[derive(Debug, Clone)]
enum Step {
    Put {
        key: usize,
        value: Value,
        fence: Option<u64>,
    },
    Delete {
        key: usize,
    },
    Incr {
        key: usize,
        delta: i64,
    },
    Checkpoint {
        entity: usize,
        name: u8,
        fence: Option<u64>,
    },
    Txn {
        cmp: TxnCmp,
        put_key: usize,
        incr_key: usize,
        else_key: usize,
    },
    Get {
        key: usize,
    },
    GetAt {
        key: usize,
        back: u64,
    },
    Scan {
        prefix: usize,
        back: u64,
        limit: usize,
    },
    Entity {
        entity: usize,
        back: u64,
    },
    Crossed {
        entity: usize,
        name: u8,
    },
    Gc {
        back: u64,
    },
    Compact,
    Restart,
}

#[derive(Debug, Clone)]
enum Value {
    Int(i64),
    Text(usize),
}

impl Value {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Value::Int(i) => i.to_string().into_bytes(),
            // Sometimes large, to fill the tiny memtables.
            Value::Text(n) => format!("v{}", "x".repeat(*n)).into_bytes(),
        }
    }
}

#[derive(Debug, Clone)]
enum TxnCmp {
    Exists(usize, bool),
    VersionIsCurrent(usize),
    Epoch(usize, u64),
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        (-50i64..50).prop_map(Value::Int),
        prop_oneof![0usize..8, 1000usize..3000].prop_map(Value::Text)
    ]
}

fn step() -> impl Strategy<Value = Step> {
    let key = 0..KEYS.len();
    let entity = 0..ENTITIES.len();
    let back = prop_oneof![Just(0u64), 0..7 * SEC];
    prop_oneof![
        6 => (key.clone(), value(), proptest::option::weighted(0.2, 0u64..3))
            .prop_map(|(key, value, fence)| Step::Put { key, value, fence }),
        2 => key.clone().prop_map(|key| Step::Delete { key }),
        3 => (key.clone(), -5i64..5).prop_map(|(key, delta)| Step::Incr { key, delta }),
        2 => (entity.clone(), 0u8..3, proptest::option::weighted(0.2, 0u64..3))
            .prop_map(|(entity, name, fence)| Step::Checkpoint { entity, name, fence }),
        2 => (prop_oneof![
                (key.clone(), any::<bool>()).prop_map(|(k, b)| TxnCmp::Exists(k, b)),
                key.clone().prop_map(TxnCmp::VersionIsCurrent),
                (entity.clone(), 0u64..3).prop_map(|(e, n)| TxnCmp::Epoch(e, n)),
            ], key.clone(), key.clone(), key.clone())
            .prop_map(|(cmp, put_key, incr_key, else_key)| Step::Txn { cmp, put_key, incr_key, else_key }),
        2 => key.clone().prop_map(|key| Step::Get { key }),
        3 => (key.clone(), back.clone()).prop_map(|(key, back)| Step::GetAt { key, back }),
        2 => (0..4usize, back.clone(), 1usize..6).prop_map(|(prefix, back, limit)| Step::Scan { prefix, back, limit }),
        2 => (entity.clone(), back.clone()).prop_map(|(entity, back)| Step::Entity { entity, back }),
        1 => (entity, 0u8..3).prop_map(|(entity, name)| Step::Crossed { entity, name }),
        1 => (0..8 * SEC).prop_map(|back| Step::Gc { back }),
        1 => Just(Step::Compact),
        1 => Just(Step::Restart),
    ]
}

/// One version in the model: (epoch, ts, value; `None` for a delete).
type ModelVersion = (u64, u64, Option<Vec<u8>>);

/// The reference model: every version ever written, plus each entity's epoch history.
#[derive(Clone, Default)]
struct Model {
    versions: BTreeMap<Vec<u8>, Vec<ModelVersion>>,
    epochs: BTreeMap<Vec<u8>, Vec<(u64, u64)>>,
    crossings: BTreeMap<(Vec<u8>, Vec<u8>), Crossing>,
    safepoint: u64,
}

fn entity(key: &[u8]) -> Option<&[u8]> {
    engine::entity_of(key)
}

impl Model {
    fn epoch_at(&self, e: &[u8], at: u64) -> u64 {
        self.epochs
            .get(e)
            .and_then(|h| h.iter().rev().find(|(_, start)| *start <= at))
            .map_or(0, |(n, _)| *n)
    }

    fn read(&self, key: &[u8], at: u64) -> Option<Versioned> {
        let epoch = entity(key).map_or(0, |e| self.epoch_at(e, at));
        let (ts, _, v) = self
            .versions
            .get(key)?
            .iter()
            .rev()
            .find(|(ts, ep, _)| *ts <= at && *ep == epoch)?;
        v.clone().map(|value| Versioned {
            value,
            ts: *ts,
            epoch,
        })
    }

    fn write(&mut self, key: &[u8], ts: u64, value: Option<Vec<u8>>) -> u64 {
        let epoch = entity(key).map_or(0, |e| self.epoch_at(e, u64::MAX));
        self.versions
            .entry(key.to_vec())
            .or_default()
            .push((ts, epoch, value));
        epoch
    }

    fn fence(&self, key: &[u8], fence: Option<u64>) -> Result<(), OpError> {
        let current = entity(key).map_or(0, |e| self.epoch_at(e, u64::MAX));
        match fence {
            Some(n) if n != current => Err(OpError::StaleEpoch { current }),
            _ => Ok(()),
        }
    }

    fn apply(&mut self, op: &Op, ts: u64) -> Result<OpOutcome, OpError> {
        match op {
            Op::Put { key, value, cond } => {
                self.fence(key, cond.epoch)?;
                Ok(OpOutcome::Written {
                    ts,
                    epoch: self.write(key, ts, Some(value.clone())),
                })
            }
            Op::Delete { key, cond } => {
                self.fence(key, cond.epoch)?;
                let existed = self.read(key, u64::MAX).is_some();
                if existed {
                    self.write(key, ts, None);
                }
                Ok(OpOutcome::Deleted { ts, existed })
            }
            Op::Incr { key, delta, .. } => {
                let old = match self.read(key, u64::MAX) {
                    None => 0,
                    Some(v) => String::from_utf8(v.value)
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                        .ok_or(OpError::NotAnInteger)?,
                };
                let value = old.checked_add(*delta).ok_or(OpError::Overflow)?;
                let epoch = self.write(key, ts, Some(value.to_string().into_bytes()));
                Ok(OpOutcome::Incremented { value, ts, epoch })
            }
            Op::Checkpoint {
                entity,
                name,
                data,
                epoch: fence,
            } => {
                let current = self.epoch_at(entity, u64::MAX);
                if fence.is_some_and(|n| n != current) {
                    return Err(OpError::StaleEpoch { current });
                }
                self.epochs
                    .entry(entity.clone())
                    .or_default()
                    .push((current + 1, ts));
                let crossing = Crossing {
                    epoch: current + 1,
                    ts,
                    data: data.clone(),
                };
                self.crossings
                    .insert((entity.clone(), name.clone()), crossing);
                Ok(OpOutcome::Checkpointed {
                    epoch: current + 1,
                    ts,
                })
            }
            Op::Get { key } => Ok(OpOutcome::Read(self.read(key, u64::MAX))),
            Op::SyncCursor { .. } => unreachable!("the model's generator makes no sync cursors"),
            Op::Txn {
                compares,
                success,
                failure,
            } => {
                let holds = compares.iter().all(|c| match c {
                    Compare::Exists { key, exists } => {
                        self.read(key, u64::MAX).is_some() == *exists
                    }
                    Compare::Version { key, ts: want, .. } => {
                        self.read(key, u64::MAX).map_or(0, |v| v.ts) == *want
                    }
                    Compare::Epoch { entity, epoch, .. } => {
                        self.epoch_at(entity, u64::MAX) == *epoch
                    }
                    Compare::Value { .. } => unreachable!("not generated"),
                });
                let mut scratch = self.clone();
                let mut results = Vec::new();
                for op in if holds { success } else { failure } {
                    results.push(scratch.apply(op, ts)?);
                }
                *self = scratch;
                Ok(OpOutcome::Txn {
                    succeeded: holds,
                    results,
                })
            }
        }
    }

    fn floor(&self, now: u64) -> u64 {
        now.saturating_sub(RETENTION).max(self.safepoint)
    }
}

struct Harness {
    dir: TempDir,
    clock: Arc<ManualClock>,
    engine: Option<Engine>,
    model: Model,
    index: u64,
    /// The ts of the last applied entry (GC never moves the safepoint past it, minus retention).
    applied_ts: u64,
}

impl Harness {
    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("engine open")
    }

    fn reopen(&mut self) {
        self.engine = None;
        self.engine = Some(
            Engine::open(self.dir.path(), EngineConfig::tiny(self.clock.clone())).expect("reopen"),
        );
    }

    fn entry(&mut self, op: Op) {
        let now = self.clock.now_micros();
        self.index += 1;
        let got = self
            .engine()
            .apply(self.index, now, std::slice::from_ref(&op), false)
            .expect("apply")
            .results;
        let want = self.model.apply(&op, now);
        self.applied_ts = now;
        assert_eq!(got, vec![want], "outcome of {op:?}");
    }

    fn check_read<T: PartialEq + std::fmt::Debug>(
        &self,
        at: u64,
        got: Result<T, Error>,
        want: impl FnOnce() -> T,
    ) {
        let floor = self.model.floor(self.clock.now_micros());
        match got {
            Err(Error::VersionGone { .. }) if at < floor => {}
            Ok(v) if at >= floor => assert_eq!(v, want(), "read at {at}"),
            other => panic!("read at {at} (floor {floor}): unexpected {other:?}"),
        }
    }

    fn step(&mut self, step: &Step) {
        let now = self.clock.now_micros();
        let key = |i: usize| KEYS[i].as_bytes().to_vec();
        match step {
            Step::Put {
                key: k,
                value,
                fence,
            } => self.entry(Op::put(key(*k), value.bytes()).with_epoch(*fence)),
            Step::Delete { key: k } => self.entry(Op::delete(key(*k))),
            Step::Incr { key: k, delta } => self.entry(Op::incr(key(*k), *delta)),
            Step::Checkpoint {
                entity,
                name,
                fence,
            } => self.entry(Op::Checkpoint {
                entity: ENTITIES[*entity].into(),
                name: format!("cp{name}").into_bytes(),
                data: now.to_string().into_bytes(),
                epoch: *fence,
            }),
            Step::Txn {
                cmp,
                put_key,
                incr_key,
                else_key,
            } => {
                let compare = match cmp {
                    TxnCmp::Exists(k, b) => Compare::Exists {
                        key: key(*k),
                        exists: *b,
                    },
                    TxnCmp::VersionIsCurrent(k) => Compare::Version {
                        key: key(*k),
                        op: CmpOp::Eq,
                        ts: self.model.read(&key(*k), u64::MAX).map_or(0, |v| v.ts),
                    },
                    TxnCmp::Epoch(e, n) => Compare::Epoch {
                        entity: ENTITIES[*e].into(),
                        op: CmpOp::Eq,
                        epoch: *n,
                    },
                };
                self.entry(Op::Txn {
                    compares: vec![compare],
                    success: vec![Op::put(key(*put_key), b"t"), Op::incr(key(*incr_key), 1)],
                    failure: vec![Op::delete(key(*else_key))],
                })
            }
            Step::Get { key: k } => {
                let got = self.engine().get(&key(*k), u64::MAX);
                self.check_read(u64::MAX, got, || self.model.read(&key(*k), u64::MAX));
            }
            Step::GetAt { key: k, back } => {
                let at = now.saturating_sub(*back);
                let got = self.engine().get(&key(*k), at);
                self.check_read(at, got, || self.model.read(&key(*k), at));
            }
            Step::Scan {
                prefix,
                back,
                limit,
            } => {
                let at = now.saturating_sub(*back);
                let prefix: &[u8] = [&b""[..], b"e0", b"e1/", b"k"][*prefix];
                let got = self
                    .engine()
                    .scan(&ScanRequest::prefix(prefix, *limit, at))
                    .map(|p| (p.items, p.more));
                self.check_read(at, got, || {
                    let mut items: Vec<(Vec<u8>, Versioned)> = self
                        .model
                        .versions
                        .keys()
                        .filter(|k| k.starts_with(prefix))
                        .filter_map(|k| self.model.read(k, at).map(|v| (k.clone(), v)))
                        .collect();
                    let more = items.len() > *limit;
                    items.truncate(*limit);
                    (items, more)
                });
            }
            Step::Entity { entity, back } => {
                let at = now.saturating_sub(*back);
                let e = ENTITIES[*entity].as_bytes();
                let got = self
                    .engine()
                    .entity(e, at, 100, usize::MAX)
                    .map(|v| (v.epoch, v.items));
                self.check_read(at, got, || {
                    let mut prefix = e.to_vec();
                    prefix.push(b'/');
                    let items = self
                        .model
                        .versions
                        .keys()
                        .filter(|k| k.starts_with(&prefix))
                        .filter_map(|k| self.model.read(k, at).map(|v| (k.clone(), v)))
                        .collect();
                    (self.model.epoch_at(e, at), items)
                });
            }
            Step::Crossed { entity, name } => {
                let (e, n) = (
                    ENTITIES[*entity].as_bytes().to_vec(),
                    format!("cp{name}").into_bytes(),
                );
                let got = self.engine().crossed(&e, &n).expect("crossed");
                assert_eq!(got, self.model.crossings.get(&(e, n)).cloned());
            }
            Step::Gc { back } => {
                let report = self
                    .engine()
                    .gc_step(now.saturating_sub(*back), 100)
                    .expect("gc");
                self.model.safepoint = self.model.safepoint.max(
                    now.saturating_sub(*back)
                        .min(now.min(self.applied_ts).saturating_sub(RETENTION)),
                );
                assert_eq!(report.safepoint, self.model.safepoint);
            }
            Step::Compact => self.engine().compact().expect("compact"),
            Step::Restart => self.reopen(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(1000),
        max_shrink_iters: 2000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_matches_model(steps in proptest::collection::vec((step(), prop_oneof![Just(0u64), 0..1_500_000u64]), 1..60)) {
        let dir = TempDir::new().unwrap();
        let clock = Arc::new(ManualClock::new(T0));
        let engine = Engine::open(dir.path(), EngineConfig::tiny(clock.clone())).unwrap();
        let mut h = Harness { dir, clock, engine: Some(engine), model: Model::default(), index: 0, applied_ts: 0 };
        for (step, dt) in &steps {
            h.clock.set(h.clock.now_micros() + dt);
            h.step(step);
        }
        // Whatever happened, the store verifies, and a restart changes nothing visible. (Physical entries
        // may differ: background compactions drop versions below the safepoint at any time.)
        let before = h.engine().verify().unwrap();
        h.reopen();
        let after = h.engine().verify().unwrap();
        prop_assert_eq!((after.applied, after.crossings, after.gc_queue), (before.applied, before.crossings, before.gc_queue));
        let now = h.clock.now_micros();
        let floor = h.model.floor(now);
        for at in [now, now - SEC, now - 3 * SEC, floor] {
            for k in KEYS {
                let got = h.engine().get(k.as_bytes(), at);
                h.check_read(at, got, || h.model.read(k.as_bytes(), at));
            }
        }
    }
}
