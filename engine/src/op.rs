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

/// A recorded checkpoint crossing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub epoch: u64,
    pub ts: u64,
    pub data: Vec<u8>,
}
