//! The chaos run's checks on synthetic runs: the acknowledged-write verification (a model of the
//! store applies a real op stream; a lost write must be detected), the write gaps, the RSS slope.

use std::collections::BTreeMap;
use std::time::Duration;

use bench_harness::chaos::gap::{longest_gap, write_completions};
use bench_harness::chaos::verify::{verify, AnomalyKind, Observed};
use bench_harness::soak::stats::{slope, NodeMemory};
use kvs_raft::bench::{Op, Sample, Workload};

/// A run of `n` requests of the game workload over `players` players, 10 ms apart, each taking
/// 15 ms (so neighbours overlap); every 7th fails with `outcome-unknown` (never one of player 0's),
/// and of those every other one took effect anyway. Returns the samples and the state a correct store ends in (`skip`: the
/// indexes of acknowledged requests the store "loses").
fn run(players: u64, n: usize, skip: &[usize]) -> (Vec<Sample>, BTreeMap<u64, Observed>) {
    let workload = Workload {
        checkpoint_fraction: 0.1,
        late_read_fraction: 0.0,
        ..Workload::game(players, 1.0)
    };
    let mut samples = Vec::new();
    let mut state: BTreeMap<u64, Observed> = BTreeMap::new();
    for (i, op) in workload.stream().take(n).enumerate() {
        let failed = i % 7 == 3 && !(i as u64).is_multiple_of(players);
        let applied = (!failed || i % 14 == 3) && !skip.contains(&i);
        // Effects in intended order: for overlapping requests this is one valid linearization.
        if applied {
            match &op {
                Op::Update {
                    player,
                    position,
                    score_delta,
                } => {
                    let s = state.entry(*player).or_default();
                    s.position = Some(position.clone());
                    s.score = Some(s.score.unwrap_or(0) + score_delta);
                }
                Op::Checkpoint { player, .. } => {
                    state.insert(*player, Observed::default());
                }
                _ => {}
            }
        }
        samples.push(Sample {
            intended: Duration::from_millis(10 * i as u64),
            latency: Duration::from_millis(15),
            error: failed.then(|| "outcome-unknown".to_owned()),
            ops: vec![op],
        });
    }
    (samples, state)
}

fn player(s: &Sample) -> u64 {
    match s.ops[0] {
        Op::Update { player, .. } | Op::Checkpoint { player, .. } => player,
        _ => unreachable!("writes only"),
    }
}

fn is_update(s: &Sample) -> bool {
    matches!(s.ops[0], Op::Update { .. })
}

fn same_player<'a>(among: &'a [Sample], of: &Sample) -> Vec<&'a Sample> {
    among.iter().filter(|s| player(s) == player(of)).collect()
}

#[test]
fn a_correct_store_passes_and_a_lost_acknowledged_write_is_caught() {
    let (samples, observed) = run(20, 2_000, &[]);
    let v = verify(&samples, &observed);
    assert!(v.ok(), "{:?}", v.anomalies);
    assert_eq!(v.players, 20);
    assert!(v.failed_writes > 200 && v.acked_writes > 1_500, "{v:?}");

    let samples = &samples;
    let later = |i: usize| same_player(&samples[i + 1..], &samples[i]);
    let earlier = |i: usize| same_player(&samples[..i], &samples[i]);

    // Lose an acknowledged update that is its player's last write: the position rolls back.
    let last = (0..samples.len())
        .rev()
        .find(|&i| samples[i].error.is_none() && is_update(&samples[i]) && later(i).is_empty())
        .expect("an acknowledged last update");
    let v = verify(samples, &run(20, 2_000, &[last]).1);
    let kinds: Vec<AnomalyKind> = v.anomalies.iter().map(|a| a.kind).collect();
    assert!(
        matches!(
            kinds.as_slice(),
            [AnomalyKind::StalePosition | AnomalyKind::LostPosition]
        ),
        "{:?}",
        v.anomalies
    );

    // Lose an acknowledged update followed by more acknowledged updates of its player (and no
    // checkpoint), in a history without failed writes (a failed write that took effect could make up
    // for it: the check is sound, not complete): the position is still right, the score is short.
    let middle = (0..samples.len())
        .find(|&i| {
            samples[i].error.is_none()
                && is_update(&samples[i])
                && !later(i).is_empty()
                && later(i).iter().all(|s| is_update(s) && s.error.is_none())
                && earlier(i).iter().all(|s| s.error.is_none())
        })
        .expect("an acknowledged update, later only acknowledged updates, earlier nothing failed");
    let v = verify(samples, &run(20, 2_000, &[middle]).1);
    let kinds: Vec<AnomalyKind> = v.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AnomalyKind::LostIncrement], "{:?}", v.anomalies);

    // A checkpoint that never took effect, followed by updates: the score still holds the increments
    // from before it.
    let checkpoint = (0..samples.len())
        .find(|&i| {
            !is_update(&samples[i])
                && earlier(i).last().is_some_and(|s| is_update(s))
                && !later(i).is_empty()
                && later(i).iter().all(|s| is_update(s))
                && earlier(i)
                    .iter()
                    .chain(&later(i))
                    .all(|s| s.error.is_none())
                && samples[i].error.is_none()
        })
        .expect("an acknowledged checkpoint between updates, in a history without failures");
    let v = verify(samples, &run(20, 2_000, &[checkpoint]).1);
    let kinds: Vec<AnomalyKind> = v.anomalies.iter().map(|a| a.kind).collect();
    assert_eq!(kinds, vec![AnomalyKind::ExcessScore], "{:?}", v.anomalies);
}

#[test]
fn write_gaps_from_samples() {
    let (samples, _) = run(5, 300, &[]);
    let done = write_completions(&samples);
    // Requests every 10 ms, every 7th failed: the longest gap between successes is 20 ms.
    let g = longest_gap(&done, Duration::ZERO, Duration::from_secs(3)).expect("a gap");
    assert_eq!(g.len(), Duration::from_millis(20));
    // Remove the successes between 1.0 s and 1.6 s: a 600+ ms gap straddling 1.2 s.
    let holed: Vec<Duration> = done
        .iter()
        .copied()
        .filter(|d| !(Duration::from_millis(1_000)..Duration::from_millis(1_600)).contains(d))
        .collect();
    let g = longest_gap(&holed, Duration::from_millis(1_200), Duration::from_secs(2)).expect("gap");
    assert!(g.from < Duration::from_millis(1_000) && g.to >= Duration::from_millis(1_600));
    assert!(g.len() >= Duration::from_millis(600), "{g:?}");
}

#[test]
fn rss_slope_flags_a_leak_and_not_a_flat_line() {
    let t: Vec<f64> = (0..600).map(f64::from).collect();
    // 200 MiB growing 3 % per 10 minutes, with ±1 MiB noise.
    let mib = 1024.0 * 1024.0;
    let leak: Vec<Option<u64>> = t
        .iter()
        .map(|&s| {
            let noise = if (s as u64).is_multiple_of(2) {
                1.0
            } else {
                -1.0
            };
            Some(((200.0 + 6.0 * s / 600.0 + noise) * mib) as u64)
        })
        .collect();
    let m = NodeMemory::of(&t, &leak, 60.0).expect("figures");
    let pct = m.slope_pct_per_10min.expect("slope");
    assert!((2.8..3.1).contains(&pct), "{m:?}");
    let flat: Vec<f64> = t.iter().map(|&s| 100.0 + (s as u64 % 2) as f64).collect();
    assert!(slope(&t, &flat).expect("slope").abs() < 1e-3);
}
