//! Tests of [`check`]: hand-made histories it must accept or refute, and the budget.

use super::testing::*;
use super::*;

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
fn exhausted_budget_is_unknown_never_linearizable() {
    let mut rng = Rng::new(7);
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
