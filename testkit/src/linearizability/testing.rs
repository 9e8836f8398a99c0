//! Test helpers of the checker (compiled for tests only): history builders, verdict assertions and
//! generators of random histories that are linearizable by construction.

use super::{check, CheckBudget, CheckResult, Event, Model, Op, Outcome, Ret};

pub(super) fn ok(client: u64, invoke: u64, complete: u64, op: Op, ret: Ret) -> Event {
    Event {
        client,
        op,
        invoke,
        complete: Some(complete),
        outcome: Outcome::Ok(ret),
    }
}

pub(super) fn unknown(client: u64, invoke: u64, op: Op) -> Event {
    Event {
        client,
        op,
        invoke,
        complete: None,
        outcome: Outcome::Unknown,
    }
}

pub(super) fn failed(client: u64, invoke: u64, complete: u64, op: Op) -> Event {
    Event {
        client,
        op,
        invoke,
        complete: Some(complete),
        outcome: Outcome::Failed,
    }
}

pub(super) fn value(v: Option<&str>) -> Ret {
    Ret::Value(v.map(|s| s.as_bytes().to_vec()))
}

pub(super) fn verdict(history: &[Event]) -> CheckResult {
    check(history, CheckBudget::default())
}

pub(super) fn assert_accepted(history: &[Event]) {
    assert_eq!(
        verdict(history),
        CheckResult::Linearizable,
        "history: {history:#?}"
    );
}

/// Asserts the history is refuted and returns (partition, detail).
pub(super) fn assert_rejected(history: &[Event]) -> (String, String) {
    match verdict(history) {
        CheckResult::NotLinearizable { partition, detail } => (partition, detail),
        other => panic!("expected NotLinearizable, got {other:?} for {history:#?}"),
    }
}

/// The simulator's seeded generator (splitmix64), so failing seeds reproduce.
pub(super) use crate::rng::Rng;

/// A random operation on one of `partitions` partitions. Partition `i` is entity `e{i}` (value keys
/// `e{i}/a`, `e{i}/b`, counter `e{i}/n`), except that the last of several is the entity-less key `solo`.
/// Counters are only incremented, read, deleted or checkpointed, so they always hold integers.
pub(super) fn random_op(rng: &mut Rng, partitions: u64) -> Op {
    let p = rng.below(partitions);
    let val = |rng: &mut Rng| format!("v{}", rng.below(4)).into_bytes();
    if partitions > 1 && p == partitions - 1 {
        return match rng.below(4) {
            0 => Op::put("solo", val(rng)),
            1 => Op::delete("solo"),
            2 => Op::get("solo"),
            _ => Op::Cas {
                key: b"solo".to_vec(),
                expected: rng.chance(70).then(|| val(rng)),
                new: val(rng),
            },
        };
    }
    let entity = format!("e{p}");
    let key = format!("{entity}/{}", if rng.chance(50) { "a" } else { "b" });
    let counter = format!("{entity}/n");
    match rng.below(20) {
        0..=3 => Op::put(key, val(rng)),
        4 => Op::delete(key),
        5..=8 => Op::get(key),
        9..=10 => Op::Cas {
            key: key.into_bytes(),
            expected: rng.chance(70).then(|| val(rng)),
            new: val(rng),
        },
        11..=13 => Op::incr(counter, rng.below(7) as i64 - 2),
        14..=15 => Op::get(counter),
        16 => Op::delete(counter),
        _ => Op::checkpoint(entity),
    }
}

/// A concurrent history, linearizable by construction: each op gets a random linearization point in its
/// interval and the model runs the ops in that order. `Unknown` ops take effect or not (50%), possibly
/// after their client moved on; `Failed` ops never take effect.
pub(super) fn generate(
    rng: &mut Rng,
    count: usize,
    clients: u64,
    partitions: u64,
    unknown_pct: u64,
    failed_pct: u64,
) -> Vec<Event> {
    let (mut events, mut points) = (Vec::new(), Vec::new());
    let mut free_at = vec![0u64; clients as usize];
    let mut now = 0;
    for _ in 0..count {
        let client = rng.below(clients);
        let invoke = now.max(free_at[client as usize]);
        now = invoke + rng.below(3);
        let duration = if clients == 1 {
            rng.below(5)
        } else {
            1 + rng.below(30)
        };
        let complete = invoke + duration;
        free_at[client as usize] = complete + 1;
        let op = random_op(rng, partitions);
        let (outcome, point) = if rng.chance(failed_pct) {
            (Outcome::Failed, None)
        } else if rng.chance(unknown_pct) {
            (
                Outcome::Unknown,
                rng.chance(50).then(|| invoke + rng.below(3 * duration + 1)),
            )
        } else {
            (
                Outcome::Ok(Ret::Done),
                Some(invoke + rng.below(duration + 1)),
            )
        };
        events.push(Event {
            client,
            op,
            invoke,
            complete: Some(complete),
            outcome,
        });
        points.push(point);
    }
    fill_returns(&mut events, &points);
    events
}

/// Applies the ops that took effect in linearization-point order and records the model's results.
pub(super) fn fill_returns(events: &mut [Event], points: &[Option<u64>]) {
    let mut order: Vec<(u64, usize)> = points
        .iter()
        .enumerate()
        .filter_map(|(i, p)| p.map(|p| (p, i)))
        .collect();
    order.sort_unstable();
    let mut model = Model::default();
    for (_, i) in order {
        let event = &mut events[i];
        let ret = model.apply(&event.op).expect("generated ops always apply");
        if matches!(event.outcome, Outcome::Ok(_)) {
            event.outcome = Outcome::Ok(ret);
        }
    }
}

/// A sequential, all-`Ok` history: one op at a time, strictly disjoint intervals.
pub(super) fn sequential(rng: &mut Rng, count: usize, partitions: u64) -> Vec<Event> {
    let mut model = Model::default();
    (0..count as u64)
        .map(|i| {
            let op = random_op(rng, partitions);
            let ret = model.apply(&op).expect("generated ops always apply");
            ok(i % 3, 10 * i, 10 * i + 5, op, ret)
        })
        .collect()
}

/// A different return value of the same kind, or `None` for `Done` (nothing to perturb).
pub(super) fn perturb(ret: &Ret, rng: &mut Rng) -> Option<Ret> {
    Some(match ret {
        Ret::Done => return None,
        Ret::Value(None) => Ret::Value(Some(b"phantom".to_vec())),
        Ret::Value(Some(_)) if rng.chance(50) => Ret::Value(None),
        Ret::Value(Some(v)) => Ret::Value(Some([v.as_slice(), b"x"].concat())),
        Ret::Swapped(s) => Ret::Swapped(!s),
        Ret::Counter(n) => Ret::Counter(n + 1 + rng.below(3) as i64),
        Ret::Epoch(e) => Ret::Epoch(e + 1),
    })
}
