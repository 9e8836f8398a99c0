//! Tests of the checker: hand-made histories it must refute, agreement with brute force, budgets.

use super::*;
use std::time::Instant;

// ---- helpers ----

fn ok(client: u64, invoke: u64, complete: u64, op: Op, ret: Ret) -> Event {
    Event {
        client,
        op,
        invoke,
        complete: Some(complete),
        outcome: Outcome::Ok(ret),
    }
}

fn unknown(client: u64, invoke: u64, op: Op) -> Event {
    Event {
        client,
        op,
        invoke,
        complete: None,
        outcome: Outcome::Unknown,
    }
}

fn failed(client: u64, invoke: u64, complete: u64, op: Op) -> Event {
    Event {
        client,
        op,
        invoke,
        complete: Some(complete),
        outcome: Outcome::Failed,
    }
}

fn value(v: Option<&str>) -> Ret {
    Ret::Value(v.map(|s| s.as_bytes().to_vec()))
}

fn verdict(history: &[Event]) -> CheckResult {
    check(history, CheckBudget::default())
}

fn assert_accepted(history: &[Event]) {
    assert_eq!(
        verdict(history),
        CheckResult::Linearizable,
        "history: {history:#?}"
    );
}

/// Asserts the history is refuted and returns (partition, detail).
fn assert_rejected(history: &[Event]) -> (String, String) {
    match verdict(history) {
        CheckResult::NotLinearizable { partition, detail } => (partition, detail),
        other => panic!("expected NotLinearizable, got {other:?} for {history:#?}"),
    }
}

/// splitmix64: a tiny deterministic generator, so failing seeds reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn percent(&mut self, p: u64) -> bool {
        self.below(100) < p
    }
}

/// A random operation on one of `partitions` partitions. Partition `i` is entity `e{i}` (value keys
/// `e{i}/a`, `e{i}/b`, counter `e{i}/n`), except that the last of several is the entity-less key `solo`.
/// Counters are only incremented, read, deleted or checkpointed, so they always hold integers.
fn random_op(rng: &mut Rng, partitions: u64) -> Op {
    let p = rng.below(partitions);
    let val = |rng: &mut Rng| format!("v{}", rng.below(4)).into_bytes();
    if partitions > 1 && p == partitions - 1 {
        return match rng.below(4) {
            0 => Op::put("solo", val(rng)),
            1 => Op::delete("solo"),
            2 => Op::get("solo"),
            _ => Op::Cas {
                key: b"solo".to_vec(),
                expected: rng.percent(70).then(|| val(rng)),
                new: val(rng),
            },
        };
    }
    let entity = format!("e{p}");
    let key = format!("{entity}/{}", if rng.percent(50) { "a" } else { "b" });
    let counter = format!("{entity}/n");
    match rng.below(20) {
        0..=3 => Op::put(key, val(rng)),
        4 => Op::delete(key),
        5..=8 => Op::get(key),
        9..=10 => Op::Cas {
            key: key.into_bytes(),
            expected: rng.percent(70).then(|| val(rng)),
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
fn generate(
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
        let (outcome, point) = if rng.percent(failed_pct) {
            (Outcome::Failed, None)
        } else if rng.percent(unknown_pct) {
            (
                Outcome::Unknown,
                rng.percent(50)
                    .then(|| invoke + rng.below(3 * duration + 1)),
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
fn fill_returns(events: &mut [Event], points: &[Option<u64>]) {
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
fn sequential(rng: &mut Rng, count: usize, partitions: u64) -> Vec<Event> {
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
fn perturb(ret: &Ret, rng: &mut Rng) -> Option<Ret> {
    Some(match ret {
        Ret::Done => return None,
        Ret::Value(None) => Ret::Value(Some(b"phantom".to_vec())),
        Ret::Value(Some(_)) if rng.percent(50) => Ret::Value(None),
        Ret::Value(Some(v)) => Ret::Value(Some([v.as_slice(), b"x"].concat())),
        Ret::Swapped(s) => Ret::Swapped(!s),
        Ret::Counter(n) => Ret::Counter(n + 1 + rng.below(3) as i64),
        Ret::Epoch(e) => Ret::Epoch(e + 1),
    })
}

// ---- histories that must be accepted ----

#[test]
fn sequential_history_is_accepted() {
    let h = [
        ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
        ok(2, 2, 3, Op::get("a/x"), value(Some("1"))),
        ok(1, 4, 5, Op::cas("a/x", Some(b"1"), "2"), Ret::Swapped(true)),
        ok(
            2,
            6,
            7,
            Op::cas("a/x", Some(b"1"), "3"),
            Ret::Swapped(false),
        ),
        ok(1, 8, 9, Op::incr("a/n", 5), Ret::Counter(5)),
        ok(1, 10, 11, Op::incr("a/n", -2), Ret::Counter(3)),
        ok(2, 12, 13, Op::get("a/n"), value(Some("3"))),
        ok(2, 14, 15, Op::delete("a/x"), Ret::Done),
        ok(1, 16, 17, Op::get("a/x"), value(None)),
        ok(1, 18, 19, Op::cas("a/x", None, "z"), Ret::Swapped(true)),
        ok(2, 20, 21, Op::checkpoint("a"), Ret::Epoch(1)),
        ok(2, 22, 23, Op::checkpoint("a"), Ret::Epoch(2)),
        ok(1, 24, 25, Op::get("a/x"), value(None)),
    ];
    assert_accepted(&h);
}

#[test]
fn concurrent_puts_may_be_seen_in_either_order() {
    let puts = || {
        vec![
            ok(1, 0, 10, Op::put("k", "1"), Ret::Done),
            ok(2, 1, 9, Op::put("k", "2"), Ret::Done),
        ]
    };
    for seen in ["1", "2"] {
        let mut h = puts();
        h.push(ok(3, 11, 12, Op::get("k"), value(Some(seen))));
        assert_accepted(&h);
    }
    // A read overlapping both may also see neither.
    let mut h = puts();
    h.push(ok(3, 2, 3, Op::get("k"), value(None)));
    assert_accepted(&h);
    // But once both completed, reads cannot flip between them.
    let mut h = puts();
    h.push(ok(3, 11, 12, Op::get("k"), value(Some("2"))));
    h.push(ok(3, 13, 14, Op::get("k"), value(Some("1"))));
    assert_rejected(&h);
}

#[test]
fn unknown_put_may_or_may_not_take_effect() {
    let base = || {
        vec![
            ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
            unknown(2, 2, Op::put("k", "2")),
        ]
    };
    for seen in ["1", "2"] {
        let mut h = base();
        h.push(ok(3, 3, 4, Op::get("k"), value(Some(seen))));
        assert_accepted(&h);
    }
    // It may take effect late, after reads that did not see it.
    let mut h = base();
    h.push(ok(3, 3, 4, Op::get("k"), value(Some("1"))));
    h.push(ok(3, 50, 51, Op::get("k"), value(Some("2"))));
    assert_accepted(&h);
    // Once seen it has happened: it cannot be undone.
    let mut h = base();
    h.push(ok(3, 3, 4, Op::get("k"), value(Some("2"))));
    h.push(ok(3, 5, 6, Op::get("k"), value(Some("1"))));
    assert_rejected(&h);
    // It cannot take effect before it was invoked.
    let h = [
        ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
        ok(3, 2, 3, Op::get("k"), value(Some("2"))),
        unknown(2, 4, Op::put("k", "2")),
    ];
    assert_rejected(&h);
}

#[test]
fn checkpoint_removes_the_entity_keys_only() {
    let h = [
        ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
        ok(1, 2, 3, Op::put("a/y/z", "2"), Ret::Done),
        ok(1, 4, 5, Op::put("a", "plain"), Ret::Done),
        ok(1, 6, 7, Op::put("b/x", "3"), Ret::Done),
        ok(2, 8, 9, Op::checkpoint("a"), Ret::Epoch(1)),
        ok(3, 10, 11, Op::get("a/x"), value(None)),
        ok(3, 12, 13, Op::get("a/y/z"), value(None)),
        ok(3, 14, 15, Op::get("a"), value(Some("plain"))),
        ok(3, 16, 17, Op::get("b/x"), value(Some("3"))),
        ok(3, 18, 19, Op::incr("a/n", 1), Ret::Counter(1)),
    ];
    assert_accepted(&h);
}

#[test]
fn unknown_incr_leaves_the_counter_at_one_of_the_possible_values() {
    let history = |last: i64| {
        vec![
            ok(1, 0, 1, Op::incr("c/n", 1), Ret::Counter(1)),
            unknown(2, 2, Op::incr("c/n", 10)),
            ok(1, 3, 4, Op::incr("c/n", 1), Ret::Counter(last)),
        ]
    };
    assert_accepted(&history(2));
    assert_accepted(&history(12));
    assert_rejected(&history(7));
    assert_rejected(&history(1));
}

#[test]
fn unknown_only_partitions_and_unknown_reads_are_accepted() {
    let h = [
        unknown(1, 0, Op::put("u/x", "1")),
        unknown(2, 1, Op::get("u/x")),
        unknown(2, 2, Op::checkpoint("u")),
        ok(3, 5, 6, Op::get("v/x"), value(None)),
    ];
    assert_accepted(&h);
    assert_accepted(&[]);
}

#[test]
fn operations_touching_at_one_instant_are_concurrent() {
    let h = [
        ok(1, 0, 5, Op::put("k", "1"), Ret::Done),
        ok(2, 5, 6, Op::get("k"), value(None)),
    ];
    assert_accepted(&h);
    let h = [
        ok(1, 0, 5, Op::put("k", "1"), Ret::Done),
        ok(2, 6, 7, Op::get("k"), value(None)),
    ];
    assert_rejected(&h);
}

// ---- histories that must be rejected ----

#[test]
fn stale_read_after_completed_write_is_rejected() {
    let h = [
        ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
        ok(1, 2, 3, Op::put("k", "2"), Ret::Done),
        ok(2, 4, 5, Op::get("k"), value(Some("1"))),
    ];
    let (partition, detail) = assert_rejected(&h);
    assert_eq!(partition, "key \"k\"");
    assert!(
        detail.contains("longest linearizable prefix: 2 of 3"),
        "{detail}"
    );
    assert!(
        detail.contains("#2 client 2 [4, 5] get \"k\" -> value \"1\""),
        "{detail}"
    );
    assert!(
        detail.contains("state after it: {\"k\": \"2\"}"),
        "{detail}"
    );
}

#[test]
fn read_of_a_value_never_written_is_rejected() {
    let h = [
        ok(1, 0, 1, Op::put("k", "1"), Ret::Done),
        ok(2, 0, 5, Op::get("k"), value(Some("9"))),
    ];
    assert_rejected(&h);
}

#[test]
fn two_sequential_incrs_both_returning_one_are_rejected() {
    let h = [
        ok(1, 0, 1, Op::incr("c/n", 1), Ret::Counter(1)),
        ok(2, 2, 3, Op::incr("c/n", 1), Ret::Counter(1)),
    ];
    assert_rejected(&h);
}

#[test]
fn lost_update_visible_through_a_later_read_is_rejected() {
    let h = [
        ok(1, 0, 10, Op::incr("c/n", 1), Ret::Counter(1)),
        ok(2, 0, 10, Op::incr("c/n", 1), Ret::Counter(2)),
        ok(3, 11, 12, Op::get("c/n"), value(Some("1"))),
    ];
    assert_rejected(&h);
    let h = [
        ok(1, 0, 10, Op::put("k", "1"), Ret::Done),
        ok(2, 0, 10, Op::cas("k", Some(b"1"), "2"), Ret::Swapped(true)),
        ok(3, 11, 12, Op::get("k"), value(Some("1"))),
    ];
    assert_rejected(&h);
}

#[test]
fn cas_succeeding_twice_on_the_same_expected_value_is_rejected() {
    let h = [
        ok(1, 0, 1, Op::put("k", "a"), Ret::Done),
        ok(1, 2, 3, Op::cas("k", Some(b"a"), "b"), Ret::Swapped(true)),
        ok(2, 4, 5, Op::cas("k", Some(b"a"), "c"), Ret::Swapped(true)),
    ];
    assert_rejected(&h);
}

#[test]
fn read_after_completed_checkpoint_seeing_the_old_value_is_rejected() {
    let h = [
        ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
        ok(2, 2, 3, Op::checkpoint("a"), Ret::Epoch(1)),
        ok(3, 4, 5, Op::get("a/x"), value(Some("1"))),
    ];
    assert_eq!(assert_rejected(&h).0, "entity \"a\"");
    // Concurrent with the checkpoint, the old value is fine.
    let h = [
        ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
        ok(2, 2, 6, Op::checkpoint("a"), Ret::Epoch(1)),
        ok(3, 4, 5, Op::get("a/x"), value(Some("1"))),
    ];
    assert_accepted(&h);
}

#[test]
fn failed_put_whose_value_is_read_later_is_rejected() {
    let h = [
        failed(1, 0, 1, Op::put("k", "1")),
        ok(2, 2, 3, Op::get("k"), value(Some("1"))),
    ];
    assert_rejected(&h);
    let h = [
        failed(1, 0, 1, Op::put("k", "1")),
        ok(2, 2, 3, Op::get("k"), value(None)),
    ];
    assert_accepted(&h);
}

#[test]
fn ok_without_completion_is_still_checked() {
    let pending = |seen| Event {
        client: 2,
        op: Op::get("k"),
        invoke: 2,
        complete: None,
        outcome: Outcome::Ok(value(Some(seen))),
    };
    assert_accepted(&[ok(1, 0, 1, Op::put("k", "1"), Ret::Done), pending("1")]);
    assert_rejected(&[ok(1, 0, 1, Op::put("k", "1"), Ret::Done), pending("2")]);
}

#[test]
fn ok_op_completing_before_its_invoke_is_rejected() {
    let (_, detail) = assert_rejected(&[ok(1, 5, 4, Op::put("k", "1"), Ret::Done)]);
    assert!(
        detail.contains("completes before it is invoked"),
        "{detail}"
    );
}

#[test]
fn incr_on_a_non_integer_can_only_fail() {
    let mut model = Model::default();
    model.apply(&Op::put("k", "abc"));
    assert_eq!(model.apply(&Op::incr("k", 1)), None);
    assert_eq!(model.get(b"k"), Some(&b"abc"[..]));
    model.apply(&Op::put("k", i64::MAX.to_string()));
    assert_eq!(model.apply(&Op::incr("k", 1)), None);
    let put = ok(1, 0, 1, Op::put("k", "abc"), Ret::Done);
    assert_rejected(&[put.clone(), ok(2, 2, 3, Op::incr("k", 1), Ret::Counter(1))]);
    assert_accepted(&[
        put.clone(),
        unknown(2, 2, Op::incr("k", 1)),
        ok(3, 4, 5, Op::get("k"), value(Some("abc"))),
    ]);
    assert_accepted(&[put, failed(2, 2, 3, Op::incr("k", 1))]);
}

#[test]
fn model_checkpoint_bumps_the_epoch_and_clears_the_entity() {
    let mut model = Model::default();
    for key in ["p/x", "p/y/z", "p", "q/x", "/p"] {
        model.apply(&Op::put(key, "v"));
    }
    assert_eq!(model.epoch(b"p"), 0);
    assert_eq!(model.apply(&Op::checkpoint("p")), Some(Ret::Epoch(1)));
    assert_eq!(model.epoch(b"p"), 1);
    let left: Vec<&[u8]> = ["p/x", "p/y/z", "p", "q/x", "/p"]
        .iter()
        .map(|k| k.as_bytes())
        .filter(|k| model.get(k).is_some())
        .collect();
    assert_eq!(left, [&b"p"[..], b"q/x", b"/p"]);
}

#[test]
fn entity_of_splits_at_the_first_slash() {
    assert_eq!(entity_of(b"player:42/pos"), Some(&b"player:42"[..]));
    assert_eq!(entity_of(b"a/b/c"), Some(&b"a"[..]));
    assert_eq!(entity_of(b"plain"), None);
    assert_eq!(entity_of(b"/leading"), None);
    assert_eq!(
        Partition::of(&Op::get("/leading")),
        Partition::Key(b"/leading".to_vec())
    );
    assert_eq!(
        Partition::of(&Op::checkpoint("a")),
        Partition::of(&Op::get("a/x"))
    );
    assert_ne!(Partition::of(&Op::get("a")), Partition::of(&Op::get("a/x")));
}

#[test]
fn violation_is_reported_for_its_own_partition() {
    let h = [
        ok(1, 0, 1, Op::put("a/x", "1"), Ret::Done),
        ok(1, 0, 1, Op::put("b/x", "1"), Ret::Done),
        ok(2, 2, 3, Op::get("a/x"), value(Some("1"))),
        ok(2, 2, 3, Op::get("b/x"), value(Some("2"))),
    ];
    let (partition, detail) = assert_rejected(&h);
    assert_eq!(partition, "entity \"b\"");
    assert!(detail.contains("get \"b/x\" -> value \"2\""), "{detail}");
    assert!(!detail.contains("a/x"), "{detail}");
}

#[test]
fn exhausted_budget_is_unknown_never_linearizable() {
    let mut rng = Rng(7);
    let h = generate(&mut rng, 60, 4, 1, 10, 0);
    assert_eq!(verdict(&h), CheckResult::Linearizable);
    let tiny = CheckBudget {
        max_states_per_partition: 3,
    };
    assert_eq!(
        check(&h, tiny),
        CheckResult::Unknown {
            partition: "entity \"e0\"".to_string()
        }
    );
    // A refutation elsewhere still wins over an exhausted budget.
    let mut h = h;
    h.push(ok(9, 0, 1, Op::get("zz"), value(Some("never"))));
    assert!(
        matches!(check(&h, tiny), CheckResult::NotLinearizable { partition, .. } if partition == "key \"zz\"")
    );
}

// ---- generated histories ----

#[test]
fn generated_sequential_histories_are_accepted() {
    for seed in 0..300 {
        let h = sequential(&mut Rng(seed), 60, 3);
        assert_eq!(verdict(&h), CheckResult::Linearizable, "seed {seed}");
    }
}

#[test]
fn generated_concurrent_histories_with_unknown_and_failed_outcomes_are_accepted() {
    for seed in 0..200 {
        let h = generate(&mut Rng(seed), 120, 5, 3, 10, 5);
        assert_eq!(verdict(&h), CheckResult::Linearizable, "seed {seed}");
    }
}

#[test]
fn perturbing_one_return_of_a_sequential_history_is_rejected() {
    let mut perturbed = 0;
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let mut h = sequential(&mut rng, 40, 3);
        let candidates: Vec<usize> = (0..h.len())
            .filter(|&i| !matches!(h[i].outcome, Outcome::Ok(Ret::Done)))
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let i = candidates[rng.below(candidates.len() as u64) as usize];
        let Outcome::Ok(original) = h[i].outcome.clone() else {
            unreachable!("sequential is all Ok")
        };
        let changed = perturb(&original, &mut rng).expect("candidates return more than Done");
        assert_ne!(changed, original, "seed {seed}");
        h[i].outcome = Outcome::Ok(changed);
        match verdict(&h) {
            CheckResult::NotLinearizable { partition, .. } => {
                assert_eq!(
                    partition,
                    Partition::of(&h[i].op).to_string(),
                    "seed {seed}"
                );
            }
            other => panic!("seed {seed}: perturbing #{i} gave {other:?}"),
        }
        perturbed += 1;
    }
    assert!(
        perturbed > 250,
        "only {perturbed} histories had a return to perturb"
    );
}

/// Whether some order of a subset of `events` (all `Ok` ones, any `Unknown` ones) respects real time and
/// the model: tries every next op whose start no pending `Ok` op's end precedes. Exponential; tiny inputs.
fn brute_force(events: &[&Event], done: u64, state: &Model) -> bool {
    let pending = |i: usize| done & (1 << i) == 0;
    let definite = |e: &Event| matches!(e.outcome, Outcome::Ok(_));
    if (0..events.len()).all(|i| !pending(i) || !definite(events[i])) {
        return true;
    }
    (0..events.len()).filter(|&i| pending(i)).any(|i| {
        let x = events[i];
        let blocked = (0..events.len()).any(|j| {
            pending(j) && definite(events[j]) && events[j].complete.is_some_and(|c| c < x.invoke)
        });
        let mut next = state.clone();
        let fits = match (next.apply(&x.op), &x.outcome) {
            (Some(ret), Outcome::Ok(expected)) => ret == *expected,
            (Some(_), _) => true,
            (None, _) => false,
        };
        !blocked && fits && brute_force(events, done | (1 << i), &next)
    })
}

#[test]
fn agrees_with_brute_force_on_small_histories() {
    let (mut rejected, mut accepted) = (0, 0);
    for seed in 0..2_000 {
        let mut rng = Rng(seed);
        let mut h = generate(&mut rng, 8, 4, 1, 35, 10);
        for event in h.iter_mut() {
            if let Outcome::Ok(ret) = &event.outcome {
                if rng.percent(15) {
                    if let Some(changed) = perturb(ret, &mut rng) {
                        event.outcome = Outcome::Ok(changed);
                    }
                }
            }
        }
        let kept: Vec<&Event> = h.iter().filter(|e| e.outcome != Outcome::Failed).collect();
        let expected = brute_force(&kept, 0, &Model::default());
        let got = verdict(&h);
        assert_eq!(
            got == CheckResult::Linearizable,
            expected,
            "seed {seed}: {got:?} for {h:#?}"
        );
        if expected {
            accepted += 1
        } else {
            rejected += 1
        }
    }
    println!("brute force agreed on {accepted} accepted and {rejected} rejected histories");
    assert!(
        accepted > 300 && rejected > 300,
        "{accepted} accepted, {rejected} rejected"
    );
}

#[test]
fn two_thousand_ops_over_ten_partitions_check_quickly() {
    let h = generate(&mut Rng(2024), 2_000, 5, 10, 5, 5);
    let started = Instant::now();
    let result = verdict(&h);
    println!("checked {} events in {:?}", h.len(), started.elapsed());
    assert_eq!(result, CheckResult::Linearizable);
}
