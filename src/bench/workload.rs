//! The workload: P players at R Hz each, and the seeded, deterministic stream of [`Op`]s it makes.
//!
//! Op `i` of the stream belongs to player `i mod P` (round robin: at the offered rate `P × R` every
//! player gets exactly R ops per second). What op it is, is drawn from the seeded generator:
//!
//! - a [`Op::LateRead`] of the player's position `late_age` ago, with probability `late_read_fraction`;
//! - otherwise a write: a [`Op::Checkpoint`] of the player (name `c<i>`, unique in the stream) with
//!   probability `checkpoint_fraction`, else the shape's write — an [`Op::Update`] (`game`: the
//!   position, `value_size` bytes, and a score delta of 1..=10) or an [`Op::Put`] of the position
//!   (`put`).
//!
//! So of all ops, `late_read_fraction` are late reads, `(1 − late_read_fraction) × checkpoint_fraction`
//! checkpoints, and the rest updates (or puts). The same workload (seed included) always yields the
//! same stream: values are ASCII letters and digits drawn from it, so they are valid JSON strings.

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde::Serialize;

use super::{position_key, Op};

/// Of the game shape's writes, the fraction that cross a checkpoint (1 %).
pub const DEFAULT_CHECKPOINT_FRACTION: f64 = 0.01;
/// Of the game shape's ops, the fraction that are late reads (5 %).
pub const DEFAULT_LATE_READ_FRACTION: f64 = 0.05;
/// How old a late packet is: late reads read the position this long ago.
pub const DEFAULT_LATE_AGE: Duration = Duration::from_secs(1);
/// Bytes of a position (or a put's value).
pub const DEFAULT_VALUE_SIZE: usize = 150;
/// The seed when none is given.
pub const DEFAULT_SEED: u64 = 1;
/// The largest value size a workload accepts: the node's default value limit (1 MiB).
pub const MAX_VALUE_SIZE: usize = 1 << 20;

/// What each write of the stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// Game updates ([`Op::Update`]: a position put and a score increment).
    Game,
    /// Single key writes ([`Op::Put`] of the player's position key).
    Put,
}

impl Shape {
    /// The name on the command line and in the report.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Game => "game",
            Shape::Put => "put",
        }
    }
}

/// The workload's parameters. Build one with [`Workload::game`] or [`Workload::put`] (the defaults of
/// each shape) and change fields as needed; [`Workload::validate`] says what is wrong with one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Players (P ≥ 1): keys `p<n>/pos` and `p<n>/score` for n in 0..P.
    pub players: u64,
    /// Ops per second per player (R > 0); the open-loop offered rate is P × R.
    pub rate_per_player: f64,
    pub shape: Shape,
    /// Of the writes, the fraction that are checkpoints (0..=1).
    pub checkpoint_fraction: f64,
    /// Of all ops, the fraction that are late reads (0..=1).
    pub late_read_fraction: f64,
    /// How far in the past a late read reads.
    #[serde(rename = "late_age_ms", serialize_with = "millis")]
    pub late_age: Duration,
    /// Bytes of each position or put value (0..=1 MiB).
    pub value_size: usize,
    /// The generator's seed: the same seed, the same stream.
    pub seed: u64,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

impl Workload {
    /// The game workload: updates with [`DEFAULT_CHECKPOINT_FRACTION`] checkpoints and
    /// [`DEFAULT_LATE_READ_FRACTION`] late reads [`DEFAULT_LATE_AGE`] old, [`DEFAULT_VALUE_SIZE`]-byte
    /// positions, [`DEFAULT_SEED`].
    pub fn game(players: u64, rate_per_player: f64) -> Workload {
        Workload {
            players,
            rate_per_player,
            shape: Shape::Game,
            checkpoint_fraction: DEFAULT_CHECKPOINT_FRACTION,
            late_read_fraction: DEFAULT_LATE_READ_FRACTION,
            late_age: DEFAULT_LATE_AGE,
            value_size: DEFAULT_VALUE_SIZE,
            seed: DEFAULT_SEED,
        }
    }

    /// Single puts only (no checkpoints, no late reads): the "single updates" comparison.
    pub fn put(players: u64, rate_per_player: f64) -> Workload {
        Workload {
            shape: Shape::Put,
            checkpoint_fraction: 0.0,
            late_read_fraction: 0.0,
            ..Workload::game(players, rate_per_player)
        }
    }

    /// Ops per second offered in open loop: players × rate per player.
    pub fn offered_rate(&self) -> f64 {
        // Player counts are far below 2^53: the conversion is exact.
        self.players as f64 * self.rate_per_player
    }

    /// What is wrong with this workload, naming the field (as the command line's flag), if anything.
    pub fn validate(&self) -> Result<(), String> {
        if self.players == 0 {
            return Err("--players must be at least 1".into());
        }
        if !(self.rate_per_player.is_finite() && self.rate_per_player > 0.0) {
            return Err("--rate must be a number above 0".into());
        }
        for (flag, f) in [
            ("--checkpoints", self.checkpoint_fraction),
            ("--late-reads", self.late_read_fraction),
        ] {
            if !(0.0..=1.0).contains(&f) {
                return Err(format!("{flag} must be a fraction from 0 to 1, not {f}"));
            }
        }
        if self.value_size > MAX_VALUE_SIZE {
            return Err(format!(
                "--value-size must be at most {MAX_VALUE_SIZE} bytes (the node's value limit)"
            ));
        }
        Ok(())
    }

    /// The op stream (endless; take what you need).
    pub fn stream(&self) -> OpStream {
        OpStream {
            workload: self.clone(),
            rng: StdRng::seed_from_u64(self.seed),
            next: 0,
        }
    }
}

/// The endless, deterministic op stream of a [`Workload`] (see the module docs).
#[derive(Debug, Clone)]
pub struct OpStream {
    workload: Workload,
    rng: StdRng,
    next: u64,
}

/// A fraction as a probability `gen_bool` takes (an unvalidated NaN is 0).
fn probability(f: f64) -> f64 {
    if f.is_nan() {
        0.0
    } else {
        f.clamp(0.0, 1.0)
    }
}

/// The characters values are drawn from.
const VALUE_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

impl OpStream {
    fn value(&mut self) -> Vec<u8> {
        (0..self.workload.value_size)
            .map(|_| VALUE_CHARS[self.rng.gen_range(0..VALUE_CHARS.len())])
            .collect()
    }
}

impl Iterator for OpStream {
    type Item = Op;

    fn next(&mut self) -> Option<Op> {
        let i = self.next;
        self.next += 1;
        let w = &self.workload;
        let player = i % w.players.max(1);
        let (late, checkpoint) = (
            probability(w.late_read_fraction),
            probability(w.checkpoint_fraction),
        );
        if self.rng.gen_bool(late) {
            return Some(Op::LateRead {
                player,
                age: w.late_age,
            });
        }
        if self.rng.gen_bool(checkpoint) {
            return Some(Op::Checkpoint {
                player,
                name: format!("c{i}"),
            });
        }
        Some(match w.shape {
            Shape::Game => {
                let score_delta = self.rng.gen_range(1..=10);
                Op::Update {
                    player,
                    position: self.value(),
                    score_delta,
                }
            }
            Shape::Put => Op::Put {
                key: position_key(player).into_bytes(),
                value: self.value(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(w: &Workload, n: usize) -> std::collections::BTreeMap<&'static str, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for op in w.stream().take(n) {
            *counts.entry(op.kind()).or_default() += 1;
        }
        counts
    }

    #[test]
    fn the_op_mix_matches_the_fractions() {
        let n = 200_000;
        let w = Workload {
            checkpoint_fraction: 0.02,
            late_read_fraction: 0.1,
            value_size: 4,
            seed: 7,
            ..Workload::game(100, 1.0)
        };
        let counts = kinds(&w, n);
        let share = |kind| counts.get(kind).copied().unwrap_or(0) as f64 / n as f64;
        // Expected: 10 % late reads, 0.9 × 2 % = 1.8 % checkpoints, the rest updates. With n = 200,000
        // the standard error of each share is below 0.07 %; allow 0.4 %.
        assert!((share("late_read") - 0.10).abs() < 0.004, "{counts:?}");
        assert!((share("checkpoint") - 0.018).abs() < 0.004, "{counts:?}");
        assert!((share("update") - 0.882).abs() < 0.004, "{counts:?}");
        assert_eq!(counts.get("put"), None);

        // The put shape: puts only, unless asked for more.
        let counts = kinds(&Workload::put(10, 1.0), 10_000);
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![("put", 10_000)]
        );
        // No late reads and no checkpoints when both fractions are 0; all of them when 1.
        let all_late = Workload {
            late_read_fraction: 1.0,
            ..Workload::game(3, 1.0)
        };
        assert_eq!(kinds(&all_late, 1_000).get("late_read"), Some(&1_000));
    }

    #[test]
    fn the_stream_is_a_function_of_the_seed() {
        let w = Workload::game(5, 2.0);
        let a: Vec<Op> = w.stream().take(1_000).collect();
        let b: Vec<Op> = w.stream().take(1_000).collect();
        assert_eq!(a, b);
        let other = Workload { seed: 2, ..w };
        let c: Vec<Op> = other.stream().take(1_000).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn players_take_turns_and_values_have_the_size_asked() {
        let w = Workload {
            checkpoint_fraction: 0.0,
            late_read_fraction: 0.0,
            value_size: 33,
            ..Workload::game(4, 1.0)
        };
        for (i, op) in w.stream().take(40).enumerate() {
            match op {
                Op::Update {
                    player,
                    position,
                    score_delta,
                } => {
                    assert_eq!(player, i as u64 % 4);
                    assert_eq!(position.len(), 33);
                    assert!(position.iter().all(|b| VALUE_CHARS.contains(b)));
                    assert!((1..=10).contains(&score_delta));
                }
                other => panic!("not an update: {other:?}"),
            }
        }
        // Checkpoint names are unique.
        let names: std::collections::BTreeSet<String> = Workload {
            checkpoint_fraction: 1.0,
            late_read_fraction: 0.0,
            ..Workload::game(2, 1.0)
        }
        .stream()
        .take(100)
        .map(|op| match op {
            Op::Checkpoint { name, .. } => name,
            other => panic!("not a checkpoint: {other:?}"),
        })
        .collect();
        assert_eq!(names.len(), 100);
    }

    #[test]
    fn invalid_workloads_name_the_flag() {
        let bad = |w: Workload| w.validate().expect_err("refused");
        assert!(bad(Workload::game(0, 1.0)).contains("--players"));
        assert!(bad(Workload::game(1, 0.0)).contains("--rate"));
        assert!(bad(Workload::game(1, f64::NAN)).contains("--rate"));
        assert!(bad(Workload {
            checkpoint_fraction: 1.5,
            ..Workload::game(1, 1.0)
        })
        .contains("--checkpoints"));
        assert!(bad(Workload {
            late_read_fraction: -0.1,
            ..Workload::game(1, 1.0)
        })
        .contains("--late-reads"));
        assert!(bad(Workload {
            value_size: MAX_VALUE_SIZE + 1,
            ..Workload::game(1, 1.0)
        })
        .contains("--value-size"));
        assert_eq!(Workload::game(1, 1.0).validate(), Ok(()));
        assert_eq!(Workload::game(1_000, 2.5).offered_rate(), 2_500.0);
    }
}
