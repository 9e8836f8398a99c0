//! Tests of the search on generated histories: accepted when linearizable by construction, refuted when
//! one return is perturbed, in agreement with exhaustive enumeration on small ones, and fast on long ones.

use std::time::Instant;

use crate::linearizability::partition::Partition;
use crate::linearizability::testing::*;
use crate::linearizability::{CheckResult, Event, Model, Outcome, Ret};

#[test]
fn generated_sequential_histories_are_accepted() {
    for seed in 0..300 {
        let h = sequential(&mut Rng::new(seed), 60, 3);
        assert_eq!(verdict(&h), CheckResult::Linearizable, "seed {seed}");
    }
}

#[test]
fn generated_concurrent_histories_with_unknown_and_failed_outcomes_are_accepted() {
    for seed in 0..200 {
        let h = generate(&mut Rng::new(seed), 120, 5, 3, 10, 5);
        assert_eq!(verdict(&h), CheckResult::Linearizable, "seed {seed}");
    }
}

#[test]
fn perturbing_one_return_of_a_sequential_history_is_rejected() {
    let mut perturbed = 0;
    for seed in 0..300 {
        let mut rng = Rng::new(seed);
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
        let mut rng = Rng::new(seed);
        let mut h = generate(&mut rng, 8, 4, 1, 35, 10);
        for event in h.iter_mut() {
            if let Outcome::Ok(ret) = &event.outcome {
                if rng.chance(15) {
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
    let h = generate(&mut Rng::new(2024), 2_000, 5, 10, 5, 5);
    let started = Instant::now();
    let result = verdict(&h);
    println!("checked {} events in {:?}", h.len(), started.elapsed());
    assert_eq!(result, CheckResult::Linearizable);
}
