//! The operations a Raft entry carries, and their per-operation outcomes.
//!
//! Outcomes are part of the replicated state machine: for the same state, ops and ts every replica computes
//! the same outcome. That is why nothing here depends on configuration (size limits are checked before
//! proposing, not when applying).

/// Preconditions a write may carry. All must hold or the write has no effect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteCond {
    /// Epoch fence: the entity's current epoch must equal this (else `StaleEpoch`).
    pub epoch: Option<u64>,
    /// The key's current version ts must equal this (0 = absent).
    pub if_version: Option<u64>,
    /// The key must not exist.
    pub if_absent: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Put {
        key: Vec<u8>,
        value: Vec<u8>,
        cond: WriteCond,
    },
    Delete {
        key: Vec<u8>,
        cond: WriteCond,
    },
    /// Add `delta` to the ASCII-decimal integer at `key` (absent = 0).
    Incr {
        key: Vec<u8>,
        delta: i64,
        cond: WriteCond,
    },
    /// Invalidate every key of `entity` written before this op, and record the crossing `(entity, name)`.
    Checkpoint {
        entity: Vec<u8>,
        name: Vec<u8>,
        data: Vec<u8>,
        epoch: Option<u64>,
    },
    /// Read the latest state through the log (inside a txn: the state the txn sees).
    Get {
        key: Vec<u8>,
    },
    /// etcd-style transaction: if every compare holds, apply `success`, else `failure`. Atomic: if any op
    /// of the chosen branch fails, none of the branch takes effect. Txns do not nest.
    Txn {
        compares: Vec<Compare>,
        success: Vec<Op>,
        failure: Vec<Op>,
    },
    /// Record that every change of log entries up to `index` has reached the federation's central
    /// store, and trim them from the change feed. Only the leader's sync worker proposes it, after the
    /// central transaction that carried those changes committed; the recorded cursor never moves back
    /// (a lower `index` leaves it as it is). Not allowed inside a txn.
    SyncCursor {
        index: u64,
    },
}

/// Constructors for the common shapes: unconditional writes, reads, and an epoch fence added with
/// [`Op::with_epoch`]. Other conditions are set by building the variant with a [`WriteCond`].
impl Op {
    /// Write `value` at `key`, unconditionally.
    pub fn put(key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) -> Op {
        Op::Put {
            key: key.into(),
            value: value.into(),
            cond: WriteCond::default(),
        }
    }

    /// Delete `key`, unconditionally.
    pub fn delete(key: impl Into<Vec<u8>>) -> Op {
        Op::Delete {
            key: key.into(),
            cond: WriteCond::default(),
        }
    }

    /// Add `delta` to the integer at `key`, unconditionally.
    pub fn incr(key: impl Into<Vec<u8>>, delta: i64) -> Op {
        Op::Incr {
            key: key.into(),
            delta,
            cond: WriteCond::default(),
        }
    }

    /// Checkpoint `entity`, recording the crossing `name` with `data`; not fenced.
    pub fn checkpoint(
        entity: impl Into<Vec<u8>>,
        name: impl Into<Vec<u8>>,
        data: impl Into<Vec<u8>>,
    ) -> Op {
        Op::Checkpoint {
            entity: entity.into(),
            name: name.into(),
            data: data.into(),
            epoch: None,
        }
    }

    /// Read `key` through the log.
    pub fn get(key: impl Into<Vec<u8>>) -> Op {
        Op::Get { key: key.into() }
    }

    /// Set the epoch fence of a write (put, delete, incr, checkpoint): with `Some(n)` the op has no
    /// effect unless the entity's current epoch is `n`; `None` removes the fence. A get or a txn carries
    /// no fence of its own (a txn's ops carry theirs) and is returned unchanged.
    pub fn with_epoch(mut self, fence: Option<u64>) -> Op {
        match &mut self {
            Op::Put { cond, .. } | Op::Delete { cond, .. } | Op::Incr { cond, .. } => {
                cond.epoch = fence
            }
            Op::Checkpoint { epoch, .. } => *epoch = fence,
            Op::Get { .. } | Op::Txn { .. } | Op::SyncCursor { .. } => {}
        }
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    NotEq,
    Less,
    Greater,
}

impl CmpOp {
    pub fn holds<T: Ord + ?Sized>(self, actual: &T, expected: &T) -> bool {
        match self {
            CmpOp::Eq => actual == expected,
            CmpOp::NotEq => actual != expected,
            CmpOp::Less => actual < expected,
            CmpOp::Greater => actual > expected,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Compare {
    /// Compare the current value; false if the key is absent (as in etcd).
    Value {
        key: Vec<u8>,
        op: CmpOp,
        value: Vec<u8>,
    },
    /// Compare the current version ts (0 if absent).
    Version {
        key: Vec<u8>,
        op: CmpOp,
        ts: u64,
    },
    Exists {
        key: Vec<u8>,
        exists: bool,
    },
    /// Compare the entity's current epoch.
    Epoch {
        entity: Vec<u8>,
        op: CmpOp,
        epoch: u64,
    },
}

/// A value as read: the bytes, the commit ts of that version and the entity epoch it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Versioned {
    pub value: Vec<u8>,
    pub ts: u64,
    pub epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpOutcome {
    Written {
        ts: u64,
        epoch: u64,
    },
    Deleted {
        ts: u64,
        existed: bool,
    },
    Incremented {
        value: i64,
        ts: u64,
        epoch: u64,
    },
    Checkpointed {
        epoch: u64,
        ts: u64,
    },
    Read(Option<Versioned>),
    Txn {
        succeeded: bool,
        results: Vec<OpOutcome>,
    },
    /// The sync cursor after an [`Op::SyncCursor`]: the highest index recorded so far.
    CursorRecorded {
        cursor: u64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    #[error("stale epoch: the entity's current epoch is {current}")]
    StaleEpoch { current: u64 },
    #[error("condition failed: the key's current version is {current_version}")]
    ConditionFailed { current_version: u64 },
    #[error("value is not an integer")]
    NotAnInteger,
    #[error("integer overflow")]
    Overflow,
    #[error("invalid key: {0}")]
    InvalidKey(&'static str),
    #[error("invalid operation: {0}")]
    Invalid(&'static str),
}

pub type OpResult = Result<OpOutcome, OpError>;

/// One effect of a committed entry, as the change feed carries it: what a replica of the state needs to
/// reproduce it (the resulting value, never the op), so replaying a change twice is harmless.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `key` got a new version at `ts` in its entity's `epoch` (0 for a key without an entity):
    /// `value`, or `None` when it was deleted.
    Write {
        key: Vec<u8>,
        value: Option<Vec<u8>>,
        ts: u64,
        epoch: u64,
    },
    /// `entity` crossed checkpoint `name` at `ts`: its epoch became `epoch`.
    Checkpoint {
        entity: Vec<u8>,
        name: Vec<u8>,
        data: Vec<u8>,
        epoch: u64,
        ts: u64,
    },
}

impl Change {
    /// The commit ts of the change.
    pub fn ts(&self) -> u64 {
        match self {
            Change::Write { ts, .. } | Change::Checkpoint { ts, .. } => *ts,
        }
    }
}

/// The changes of one log entry, in the order the entry made them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEntry {
    pub index: u64,
    pub changes: Vec<Change>,
    /// Size of the stored record (what it counts for in the backlog).
    pub bytes: u64,
}

/// A recorded checkpoint crossing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub epoch: u64,
    pub ts: u64,
    pub data: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_build_unconditional_ops() {
        assert_eq!(
            Op::put("k", "v"),
            Op::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                cond: WriteCond::default()
            }
        );
        assert_eq!(
            Op::delete(b"k".to_vec()),
            Op::Delete {
                key: b"k".to_vec(),
                cond: WriteCond::default()
            }
        );
        assert_eq!(
            Op::incr(&b"n"[..], -2),
            Op::Incr {
                key: b"n".to_vec(),
                delta: -2,
                cond: WriteCond::default()
            }
        );
        assert_eq!(
            Op::checkpoint("p", "gate", vec![]),
            Op::Checkpoint {
                entity: b"p".to_vec(),
                name: b"gate".to_vec(),
                data: vec![],
                epoch: None
            }
        );
        assert_eq!(Op::get("k"), Op::Get { key: b"k".to_vec() });
    }

    #[test]
    fn with_epoch_fences_every_write_and_leaves_reads_and_txns_alone() {
        let fenced = WriteCond {
            epoch: Some(3),
            ..WriteCond::default()
        };
        assert_eq!(
            Op::put("k", "v").with_epoch(Some(3)),
            Op::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
                cond: fenced.clone()
            }
        );
        assert_eq!(
            Op::delete("k").with_epoch(Some(3)),
            Op::Delete {
                key: b"k".to_vec(),
                cond: fenced.clone()
            }
        );
        assert_eq!(
            Op::incr("n", 1).with_epoch(Some(3)),
            Op::Incr {
                key: b"n".to_vec(),
                delta: 1,
                cond: fenced
            }
        );
        assert_eq!(
            Op::checkpoint("p", "c", "d").with_epoch(Some(3)),
            Op::Checkpoint {
                entity: b"p".to_vec(),
                name: b"c".to_vec(),
                data: b"d".to_vec(),
                epoch: Some(3)
            }
        );
        assert_eq!(
            Op::put("k", "v").with_epoch(Some(3)).with_epoch(None),
            Op::put("k", "v")
        );
        assert_eq!(Op::get("k").with_epoch(Some(3)), Op::get("k"));
        let txn = Op::Txn {
            compares: vec![],
            success: vec![Op::put("k", "v")],
            failure: vec![],
        };
        assert_eq!(txn.clone().with_epoch(Some(3)), txn);
    }
}
