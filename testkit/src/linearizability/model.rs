//! The history's vocabulary — [`Op`], [`Ret`], [`Outcome`], [`Event`] — and the sequential specification
//! every linearization is run against: [`Model`], values by key and an epoch per entity.

use std::collections::BTreeMap;

/// One client operation as submitted to the cluster.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Store `value` under `key`; returns [`Ret::Done`].
    Put { key: Vec<u8>, value: Vec<u8> },
    /// Remove `key` (absent or not); returns [`Ret::Done`].
    Delete { key: Vec<u8> },
    /// Read `key`; returns [`Ret::Value`].
    Get { key: Vec<u8> },
    /// Store `new` if the current value equals `expected` (`None`: the key must be absent);
    /// returns [`Ret::Swapped`].
    Cas {
        key: Vec<u8>,
        expected: Option<Vec<u8>>,
        new: Vec<u8>,
    },
    /// Add `delta` to the integer stored as ASCII decimal under `key` (absent = 0); returns [`Ret::Counter`]
    /// with the new value. On a non-integer value, or on overflow, the operation fails without effect.
    Incr { key: Vec<u8>, delta: i64 },
    /// Increment the entity's epoch and remove every key of the entity; returns [`Ret::Epoch`].
    Checkpoint { entity: Vec<u8> },
}

impl Op {
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
        }
    }

    pub fn delete(key: impl Into<Vec<u8>>) -> Op {
        Op::Delete { key: key.into() }
    }

    pub fn get(key: impl Into<Vec<u8>>) -> Op {
        Op::Get { key: key.into() }
    }

    pub fn cas(key: impl Into<Vec<u8>>, expected: Option<&[u8]>, new: impl Into<Vec<u8>>) -> Op {
        Op::Cas {
            key: key.into(),
            expected: expected.map(<[u8]>::to_vec),
            new: new.into(),
        }
    }

    pub fn incr(key: impl Into<Vec<u8>>, delta: i64) -> Op {
        Op::Incr {
            key: key.into(),
            delta,
        }
    }

    pub fn checkpoint(entity: impl Into<Vec<u8>>) -> Op {
        Op::Checkpoint {
            entity: entity.into(),
        }
    }

    /// Whether the operation never changes the state.
    pub fn is_read_only(&self) -> bool {
        matches!(self, Op::Get { .. })
    }
}

/// What an operation returned.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ret {
    Done,
    Value(Option<Vec<u8>>),
    Swapped(bool),
    Counter(i64),
    Epoch(u64),
}

/// What the client learned about its operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It took effect, once, between invoke and complete, and returned this.
    Ok(Ret),
    /// It definitely had no effect.
    Failed,
    /// It may or may not have taken effect, at any instant after invoke.
    Unknown,
}

/// One operation of one client, with its real-time interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    pub client: u64,
    pub op: Op,
    pub invoke: u64,
    /// When the client saw the answer; `None` if it never did.
    pub complete: Option<u64>,
    pub outcome: Outcome,
}

/// The entity a key belongs to: the part before its first `/`, unless that `/` is the first byte.
pub fn entity_of(key: &[u8]) -> Option<&[u8]> {
    match key.iter().position(|&b| b == b'/') {
        Some(0) | None => None,
        Some(i) => Some(&key[..i]),
    }
}

/// The sequential specification: values by key and an epoch per entity (0 before any checkpoint).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct Model {
    pub(super) values: BTreeMap<Vec<u8>, Vec<u8>>,
    pub(super) epochs: BTreeMap<Vec<u8>, u64>,
}

impl Model {
    /// Applies `op` and returns its result, or `None` if the operation fails without effect: `Incr` on a
    /// value that is not an ASCII decimal `i64`, or whose sum overflows (the engine rejects both).
    pub fn apply(&mut self, op: &Op) -> Option<Ret> {
        match op {
            Op::Put { key, value } => {
                self.values.insert(key.clone(), value.clone());
                Some(Ret::Done)
            }
            Op::Delete { key } => {
                self.values.remove(key);
                Some(Ret::Done)
            }
            Op::Get { key } => Some(Ret::Value(self.values.get(key).cloned())),
            Op::Cas { key, expected, new } => {
                let swapped = self.values.get(key) == expected.as_ref();
                if swapped {
                    self.values.insert(key.clone(), new.clone());
                }
                Some(Ret::Swapped(swapped))
            }
            Op::Incr { key, delta } => self.incr(key, *delta),
            Op::Checkpoint { entity } => self.checkpoint(entity),
        }
    }

    pub fn get(&self, key: &[u8]) -> Option<&[u8]> {
        self.values.get(key).map(Vec::as_slice)
    }

    pub fn epoch(&self, entity: &[u8]) -> u64 {
        self.epochs.get(entity).copied().unwrap_or(0)
    }

    fn incr(&mut self, key: &[u8], delta: i64) -> Option<Ret> {
        let current = match self.values.get(key) {
            None => 0,
            Some(raw) => std::str::from_utf8(raw).ok()?.parse::<i64>().ok()?,
        };
        let value = current.checked_add(delta)?;
        self.values
            .insert(key.to_vec(), value.to_string().into_bytes());
        Some(Ret::Counter(value))
    }

    fn checkpoint(&mut self, entity: &[u8]) -> Option<Ret> {
        let epoch = self.epoch(entity).checked_add(1)?;
        self.epochs.insert(entity.to_vec(), epoch);
        self.values.retain(|key, _| entity_of(key) != Some(entity));
        Some(Ret::Epoch(epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::linearizability::testing::*;

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
}
