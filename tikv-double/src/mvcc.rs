//! The in-memory percolator store: per key, at most one lock and a history of write records.
//!
//! Pure and synchronous: the TiKV service turns requests into calls here and answers into protobuf.
//! Every mutating call validates all its keys before it changes anything, so a call either applies
//! whole or not at all (as TiKV's prewrite does when it meets a lock or a conflict).

use std::collections::BTreeMap;
use std::ops::Bound;

/// A timestamp from the double's TSO: `physical_ms << 18 | logical`.
pub type Ts = u64;

/// Bits of a timestamp below its physical (millisecond) part.
pub const LOGICAL_BITS: u32 = 18;

/// The physical part of a timestamp, in milliseconds.
pub fn physical_ms(ts: Ts) -> u64 {
    ts >> LOGICAL_BITS
}

/// What a lock will write when its transaction commits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LockKind {
    /// A prewritten put; the value travels in the lock until commit.
    Put(Vec<u8>),
    /// A prewritten delete.
    Delete,
    /// A prewritten read lock (`Op::Lock`): commits a `Lock` record, invisible to reads.
    Lock,
    /// A pessimistic lock, not prewritten yet: blocks writers, never readers.
    Pessimistic,
}

/// A percolator lock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lock {
    pub start_ts: Ts,
    pub primary: Vec<u8>,
    /// Milliseconds after `start_ts`'s physical time at which the lock counts as abandoned.
    pub ttl: u64,
    pub kind: LockKind,
    pub for_update_ts: Ts,
    pub txn_size: u64,
}

impl Lock {
    /// Whether a snapshot read at `ts` must stop at this lock (TiKV ignores `Lock` and pessimistic
    /// locks when reading).
    fn blocks_read_at(&self, ts: Ts) -> bool {
        self.start_ts <= ts && matches!(self.kind, LockKind::Put(_) | LockKind::Delete)
    }

    /// Whether the lock's time to live has passed at `current_ts` (`u64::MAX`: always).
    pub fn expired_at(&self, current_ts: Ts) -> bool {
        current_ts == u64::MAX
            || physical_ms(current_ts) >= physical_ms(self.start_ts).saturating_add(self.ttl)
    }
}

/// A write record, kept at its commit ts (a rollback record at its own start ts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Put(Vec<u8>),
    Delete,
    Lock,
    Rollback,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Write {
    pub start_ts: Ts,
    pub kind: WriteKind,
}

#[derive(Clone, Debug, Default)]
struct KeyState {
    lock: Option<Lock>,
    /// commit ts → record.
    writes: BTreeMap<Ts, Write>,
}

impl KeyState {
    /// The value visible to a snapshot at `ts`, ignoring locks.
    fn visible(&self, ts: Ts) -> Option<&Vec<u8>> {
        for write in self.writes.range(..=ts).rev().map(|(_, w)| w) {
            match &write.kind {
                WriteKind::Put(value) => return Some(value),
                WriteKind::Delete => return None,
                WriteKind::Lock | WriteKind::Rollback => {}
            }
        }
        None
    }

    /// This transaction's own write record, if it committed or was rolled back: (commit ts, kind).
    fn own_write(&self, start_ts: Ts) -> Option<(Ts, &WriteKind)> {
        self.writes
            .range(start_ts..)
            .find(|(_, w)| w.start_ts == start_ts)
            .map(|(ts, w)| (*ts, &w.kind))
    }

    fn own_lock(&self, start_ts: Ts) -> Option<&Lock> {
        self.lock.as_ref().filter(|l| l.start_ts == start_ts)
    }
}

/// Why a write conflicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConflictReason {
    Optimistic,
    PessimisticRetry,
    SelfRolledBack,
}

/// A key-level error, as TiKV reports it in a `KeyError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnError {
    /// The key is locked by another transaction.
    Locked {
        key: Vec<u8>,
        lock: Lock,
    },
    WriteConflict {
        key: Vec<u8>,
        primary: Vec<u8>,
        start_ts: Ts,
        conflict_start_ts: Ts,
        conflict_commit_ts: Ts,
        reason: ConflictReason,
    },
    AlreadyExist {
        key: Vec<u8>,
    },
    /// Commit or pessimistic prewrite found no lock of the transaction (TiKV's `TxnLockNotFound`).
    TxnLockNotFound {
        key: Vec<u8>,
        start_ts: Ts,
    },
    /// Check-status or heartbeat found neither lock nor record of the transaction.
    TxnNotFound {
        key: Vec<u8>,
        start_ts: Ts,
    },
    /// `CheckTxnStatus` reached a lock whose primary is another key.
    PrimaryMismatch {
        key: Vec<u8>,
        lock: Lock,
    },
    /// Anything else the client should abort on.
    Abort(String),
}

/// What `CheckTxnStatus` concluded and did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    NoAction,
    TtlExpireRollback,
    LockNotExistRollback,
    TtlExpirePessimisticRollback,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TxnStatus {
    Committed(Ts),
    RolledBack(Action),
    Locked { key: Vec<u8>, lock: Lock },
}

/// One mutation of a prewrite.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MutationOp {
    Put(Vec<u8>),
    Delete,
    Lock,
    /// Put, failing with `AlreadyExist` if the key has a value.
    Insert(Vec<u8>),
    /// Only check that the key has no value; leaves no lock.
    CheckNotExists,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mutation {
    pub key: Vec<u8>,
    pub op: MutationOp,
    /// A pessimistic transaction's key that must already hold its pessimistic lock.
    pub pessimistic_check: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prewrite {
    pub mutations: Vec<Mutation>,
    pub primary: Vec<u8>,
    pub start_ts: Ts,
    pub ttl: u64,
    /// 0 for an optimistic transaction.
    pub for_update_ts: Ts,
    pub txn_size: u64,
}

/// A key range `[start, end)`; an empty `end` means unbounded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyRange {
    pub start: Vec<u8>,
    pub end: Vec<u8>,
}

impl KeyRange {
    pub fn contains(&self, key: &[u8]) -> bool {
        key >= self.start.as_slice() && (self.end.is_empty() || key < self.end.as_slice())
    }

    fn bounds(&self) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
        let end = if self.end.is_empty() {
            Bound::Unbounded
        } else {
            Bound::Excluded(self.end.clone())
        };
        (Bound::Included(self.start.clone()), end)
    }

    /// The intersection with `other`, if not empty.
    pub fn intersect(&self, other: &KeyRange) -> Option<KeyRange> {
        let start = self.start.clone().max(other.start.clone());
        let end = match (self.end.is_empty(), other.end.is_empty()) {
            (true, _) => other.end.clone(),
            (_, true) => self.end.clone(),
            _ => self.end.clone().min(other.end.clone()),
        };
        (end.is_empty() || start < end).then_some(KeyRange { start, end })
    }
}

/// A scanned key: its value, or the lock that stopped the read.
pub type ScanItem = (Vec<u8>, Result<Vec<u8>, TxnError>);

/// The store.
#[derive(Debug, Default)]
pub struct Mvcc {
    keys: BTreeMap<Vec<u8>, KeyState>,
}

impl Mvcc {
    pub fn new() -> Self {
        Self::default()
    }

    /// Snapshot read at `ts`.
    pub fn get(&self, key: &[u8], ts: Ts) -> Result<Option<Vec<u8>>, TxnError> {
        let Some(state) = self.keys.get(key) else {
            return Ok(None);
        };
        if let Some(lock) = state.lock.as_ref().filter(|l| l.blocks_read_at(ts)) {
            return Err(TxnError::Locked {
                key: key.to_vec(),
                lock: lock.clone(),
            });
        }
        Ok(state.visible(ts).cloned())
    }

    /// Snapshot scan at `ts` over `range`, at most `limit` items (0: no limit). `reverse` walks from
    /// the end down. A key whose lock stops the read is an item carrying the error.
    pub fn scan(&self, range: &KeyRange, limit: usize, ts: Ts, reverse: bool) -> Vec<ScanItem> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        let iter = self.keys.range(range.bounds());
        let iter: Box<dyn Iterator<Item = (&Vec<u8>, &KeyState)>> = if reverse {
            Box::new(iter.rev())
        } else {
            Box::new(iter)
        };
        let mut out = Vec::new();
        for (key, state) in iter {
            if out.len() >= limit {
                break;
            }
            if let Some(lock) = state.lock.as_ref().filter(|l| l.blocks_read_at(ts)) {
                let err = TxnError::Locked {
                    key: key.clone(),
                    lock: lock.clone(),
                };
                out.push((key.clone(), Err(err)));
            } else if let Some(value) = state.visible(ts) {
                out.push((key.clone(), Ok(value.clone())));
            }
        }
        out
    }

    /// Percolator prewrite: lock every key (or none, answering every error found).
    pub fn prewrite(&mut self, p: &Prewrite) -> Result<(), Vec<TxnError>> {
        let mut errors = Vec::new();
        let mut locks = Vec::new();
        for m in &p.mutations {
            match self.check_prewrite(m, p) {
                Ok(Some(lock)) => locks.push((m.key.clone(), lock)),
                Ok(None) => {}
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for (key, lock) in locks {
            self.keys.entry(key).or_default().lock = Some(lock);
        }
        Ok(())
    }

    /// The lock `m` should leave, `None` if it leaves nothing (already prewritten or committed, or
    /// a pure existence check).
    fn check_prewrite(&self, m: &Mutation, p: &Prewrite) -> Result<Option<Lock>, TxnError> {
        let empty = KeyState::default();
        let state = self.keys.get(&m.key).unwrap_or(&empty);
        let kind = match &m.op {
            MutationOp::Put(v) | MutationOp::Insert(v) => LockKind::Put(v.clone()),
            MutationOp::Delete => LockKind::Delete,
            MutationOp::Lock => LockKind::Lock,
            MutationOp::CheckNotExists => LockKind::Lock,
        };
        let new_lock = Lock {
            start_ts: p.start_ts,
            primary: p.primary.clone(),
            ttl: p.ttl,
            kind,
            for_update_ts: p.for_update_ts,
            txn_size: p.txn_size,
        };
        if let Some(lock) = &state.lock {
            if lock.start_ts != p.start_ts {
                return Err(TxnError::Locked {
                    key: m.key.clone(),
                    lock: lock.clone(),
                });
            }
            return match lock.kind {
                // The pessimistic lock this transaction took becomes its prewrite lock.
                LockKind::Pessimistic => Ok(Some(Lock {
                    for_update_ts: lock.for_update_ts,
                    ..new_lock
                })),
                _ => Ok(None), // a repeated prewrite
            };
        }
        if m.pessimistic_check {
            // Conflicts were checked when the pessimistic lock was taken; it is gone now.
            return match state.own_write(p.start_ts) {
                Some((_, WriteKind::Rollback)) | None => Err(TxnError::TxnLockNotFound {
                    key: m.key.clone(),
                    start_ts: p.start_ts,
                }),
                Some(_) => Ok(None),
            };
        }
        match state.own_write(p.start_ts) {
            Some((_, WriteKind::Rollback)) => {
                return Err(TxnError::WriteConflict {
                    key: m.key.clone(),
                    primary: p.primary.clone(),
                    start_ts: p.start_ts,
                    conflict_start_ts: p.start_ts,
                    conflict_commit_ts: 0,
                    reason: ConflictReason::SelfRolledBack,
                })
            }
            Some(_) => return Ok(None), // committed already: a late, repeated prewrite
            None => {}
        }
        if let Some((commit_ts, w)) = state.writes.range(p.start_ts..).next_back() {
            return Err(TxnError::WriteConflict {
                key: m.key.clone(),
                primary: p.primary.clone(),
                start_ts: p.start_ts,
                conflict_start_ts: w.start_ts,
                conflict_commit_ts: *commit_ts,
                reason: ConflictReason::Optimistic,
            });
        }
        if matches!(m.op, MutationOp::Insert(_) | MutationOp::CheckNotExists)
            && state.visible(u64::MAX).is_some()
        {
            return Err(TxnError::AlreadyExist { key: m.key.clone() });
        }
        if m.op == MutationOp::CheckNotExists {
            return Ok(None);
        }
        Ok(Some(new_lock))
    }

    /// Commit `keys` of the transaction `start_ts` at `commit_ts` (all or nothing).
    pub fn commit(
        &mut self,
        keys: &[Vec<u8>],
        start_ts: Ts,
        commit_ts: Ts,
    ) -> Result<(), TxnError> {
        if commit_ts <= start_ts {
            return Err(TxnError::Abort(format!(
                "invalid commit ts {commit_ts} for start ts {start_ts}"
            )));
        }
        let mut to_commit = Vec::new();
        for key in keys {
            let state = self.keys.get(key);
            match state.and_then(|s| s.own_lock(start_ts)) {
                Some(lock) if lock.kind == LockKind::Pessimistic => {
                    return Err(TxnError::TxnLockNotFound {
                        key: key.clone(),
                        start_ts,
                    })
                }
                Some(_) => to_commit.push(key.clone()),
                None => match state.and_then(|s| s.own_write(start_ts)) {
                    Some((_, WriteKind::Rollback)) | None => {
                        return Err(TxnError::TxnLockNotFound {
                            key: key.clone(),
                            start_ts,
                        })
                    }
                    Some(_) => {} // committed already: commit is idempotent
                },
            }
        }
        for key in to_commit {
            self.commit_key(&key, start_ts, commit_ts);
        }
        Ok(())
    }

    /// Turn `key`'s lock of `start_ts` (checked by the caller) into a write record at `commit_ts`.
    fn commit_key(&mut self, key: &[u8], start_ts: Ts, commit_ts: Ts) {
        let Some(state) = self.keys.get_mut(key) else {
            return;
        };
        let Some(lock) = state.lock.take_if(|l| l.start_ts == start_ts) else {
            return;
        };
        let kind = match lock.kind {
            LockKind::Put(v) => WriteKind::Put(v),
            LockKind::Delete => WriteKind::Delete,
            LockKind::Lock => WriteKind::Lock,
            // A pessimistic lock never prewritten has nothing to commit.
            LockKind::Pessimistic => return,
        };
        state.writes.insert(commit_ts, Write { start_ts, kind });
    }

    /// Remove `key`'s lock of `start_ts`, if any, and leave a rollback record (so a late prewrite
    /// of the same transaction fails). Refuses a transaction that committed this key.
    fn rollback_key(&mut self, key: &[u8], start_ts: Ts) -> Result<(), TxnError> {
        let state = self.keys.entry(key.to_vec()).or_default();
        match state.own_write(start_ts) {
            Some((_, WriteKind::Rollback)) => {
                state.lock.take_if(|l| l.start_ts == start_ts);
                return Ok(());
            }
            Some((commit_ts, _)) => {
                return Err(TxnError::Abort(format!(
                    "transaction {start_ts} already committed at {commit_ts}"
                )))
            }
            None => {}
        }
        state.lock.take_if(|l| l.start_ts == start_ts);
        state.writes.insert(
            start_ts,
            Write {
                start_ts,
                kind: WriteKind::Rollback,
            },
        );
        Ok(())
    }

    /// Roll back `keys` of `start_ts` (all or nothing).
    pub fn rollback(&mut self, keys: &[Vec<u8>], start_ts: Ts) -> Result<(), TxnError> {
        for key in keys {
            if let Some((commit_ts, kind)) = self.keys.get(key).and_then(|s| s.own_write(start_ts))
            {
                if *kind != WriteKind::Rollback {
                    return Err(TxnError::Abort(format!(
                        "transaction {start_ts} already committed at {commit_ts}"
                    )));
                }
            }
        }
        for key in keys {
            self.rollback_key(key, start_ts)?;
        }
        Ok(())
    }

    /// Legacy cleanup of one key: the commit ts if committed (`Ok(Some)`), rolled back now or
    /// before (`Ok(None)`), or the lock if still alive at `current_ts` (0: roll back regardless).
    pub fn cleanup(
        &mut self,
        key: &[u8],
        start_ts: Ts,
        current_ts: Ts,
    ) -> Result<Option<Ts>, TxnError> {
        let state = self.keys.get(key);
        if let Some(lock) = state.and_then(|s| s.own_lock(start_ts)) {
            if current_ts != 0 && !lock.expired_at(current_ts) {
                return Err(TxnError::Locked {
                    key: key.to_vec(),
                    lock: lock.clone(),
                });
            }
        } else if let Some((commit_ts, kind)) = state.and_then(|s| s.own_write(start_ts)) {
            if *kind != WriteKind::Rollback {
                return Ok(Some(commit_ts));
            }
        }
        self.rollback_key(key, start_ts)?;
        Ok(None)
    }

    /// `CheckTxnStatus` on the primary: rolls back an expired lock, or a missing one when asked.
    pub fn check_txn_status(
        &mut self,
        primary: &[u8],
        lock_ts: Ts,
        current_ts: Ts,
        rollback_if_not_exist: bool,
        verify_is_primary: bool,
    ) -> Result<TxnStatus, TxnError> {
        let state = self.keys.get(primary);
        if let Some(lock) = state.and_then(|s| s.own_lock(lock_ts)).cloned() {
            if verify_is_primary && lock.primary != primary {
                return Err(TxnError::PrimaryMismatch {
                    key: primary.to_vec(),
                    lock,
                });
            }
            if !lock.expired_at(current_ts) {
                return Ok(TxnStatus::Locked {
                    key: primary.to_vec(),
                    lock,
                });
            }
            if lock.kind == LockKind::Pessimistic {
                if let Some(state) = self.keys.get_mut(primary) {
                    state.lock = None;
                }
                return Ok(TxnStatus::RolledBack(Action::TtlExpirePessimisticRollback));
            }
            self.rollback_key(primary, lock_ts)?;
            return Ok(TxnStatus::RolledBack(Action::TtlExpireRollback));
        }
        match state.and_then(|s| s.own_write(lock_ts)) {
            Some((_, WriteKind::Rollback)) => Ok(TxnStatus::RolledBack(Action::NoAction)),
            Some((commit_ts, _)) => Ok(TxnStatus::Committed(commit_ts)),
            None if rollback_if_not_exist => {
                self.rollback_key(primary, lock_ts)?;
                Ok(TxnStatus::RolledBack(Action::LockNotExistRollback))
            }
            None => Err(TxnError::TxnNotFound {
                key: primary.to_vec(),
                start_ts: lock_ts,
            }),
        }
    }

    /// `CheckSecondaryLocks`: the locks still held, and the commit ts if some key committed. A key
    /// neither locked nor committed is rolled back (protecting it), and then the whole transaction
    /// counts as rolled back: no locks, commit ts 0.
    pub fn check_secondary_locks(
        &mut self,
        keys: &[Vec<u8>],
        start_ts: Ts,
    ) -> (Vec<(Vec<u8>, Lock)>, Ts) {
        let mut locks = Vec::new();
        let mut commit_ts = 0;
        let mut rolled_back = false;
        for key in keys {
            let state = self.keys.get(key);
            match state.and_then(|s| s.own_lock(start_ts)).cloned() {
                Some(lock) if lock.kind == LockKind::Pessimistic => {
                    if let Some(state) = self.keys.get_mut(key) {
                        state.lock = None;
                    }
                    rolled_back = true;
                }
                Some(lock) => locks.push((key.clone(), lock)),
                None => match state.and_then(|s| s.own_write(start_ts)) {
                    Some((ts, kind)) if *kind != WriteKind::Rollback => commit_ts = ts,
                    Some(_) => rolled_back = true,
                    None => {
                        // Cannot fail: the key has no committed record of this transaction.
                        let _ = self.rollback_key(key, start_ts);
                        rolled_back = true;
                    }
                },
            }
        }
        if rolled_back {
            (Vec::new(), 0)
        } else {
            (locks, commit_ts)
        }
    }

    /// `ResolveLock`: settle every lock of the given transactions (start ts → commit ts, 0 = roll
    /// back) within `range` (or only on `keys`, when not empty).
    pub fn resolve_locks(
        &mut self,
        txns: &BTreeMap<Ts, Ts>,
        range: &KeyRange,
        keys: &[Vec<u8>],
    ) -> Result<(), TxnError> {
        let targets: Vec<(Vec<u8>, Ts)> = self
            .keys
            .range(range.bounds())
            .filter(|(k, _)| keys.is_empty() || keys.contains(k))
            .filter_map(|(k, s)| {
                let lock = s.lock.as_ref()?;
                txns.contains_key(&lock.start_ts)
                    .then(|| (k.clone(), lock.start_ts))
            })
            .collect();
        for (key, start_ts) in targets {
            match txns.get(&start_ts).copied().unwrap_or(0) {
                0 => self.rollback_key(&key, start_ts)?,
                commit_ts => self.commit_key(&key, start_ts, commit_ts),
            }
        }
        Ok(())
    }

    /// `TxnHeartBeat`: extend the primary lock's ttl to at least `advise_ttl`; the ttl now.
    pub fn heartbeat(
        &mut self,
        primary: &[u8],
        start_ts: Ts,
        advise_ttl: u64,
    ) -> Result<u64, TxnError> {
        let lock = self
            .keys
            .get_mut(primary)
            .and_then(|s| s.lock.as_mut())
            .filter(|l| l.start_ts == start_ts);
        match lock {
            Some(lock) => {
                lock.ttl = lock.ttl.max(advise_ttl);
                Ok(lock.ttl)
            }
            None => Err(TxnError::TxnNotFound {
                key: primary.to_vec(),
                start_ts,
            }),
        }
    }

    /// Locks with `start_ts <= max_ts` in `range`, at most `limit` (0: no limit).
    pub fn scan_locks(&self, range: &KeyRange, max_ts: Ts, limit: usize) -> Vec<(Vec<u8>, Lock)> {
        let limit = if limit == 0 { usize::MAX } else { limit };
        self.keys
            .range(range.bounds())
            .filter_map(|(k, s)| {
                let lock = s.lock.as_ref().filter(|l| l.start_ts <= max_ts)?;
                Some((k.clone(), lock.clone()))
            })
            .take(limit)
            .collect()
    }

    /// Pessimistic lock (all or nothing): fails on another transaction's lock and on any write
    /// committed after `for_update_ts`. Returns each key's latest value.
    #[allow(clippy::too_many_arguments)]
    pub fn pessimistic_lock(
        &mut self,
        keys: &[Vec<u8>],
        primary: &[u8],
        start_ts: Ts,
        for_update_ts: Ts,
        ttl: u64,
    ) -> Result<Vec<Option<Vec<u8>>>, Vec<TxnError>> {
        let mut errors = Vec::new();
        let mut values = Vec::new();
        let empty = KeyState::default();
        for key in keys {
            let state = self.keys.get(key).unwrap_or(&empty);
            if let Some(lock) = state.lock.as_ref().filter(|l| l.start_ts != start_ts) {
                errors.push(TxnError::Locked {
                    key: key.clone(),
                    lock: lock.clone(),
                });
                continue;
            }
            if let Some((commit_ts, kind)) = state.own_write(start_ts) {
                errors.push(TxnError::Abort(if *kind == WriteKind::Rollback {
                    format!("pessimistic lock of transaction {start_ts} was rolled back")
                } else {
                    format!("transaction {start_ts} already committed at {commit_ts}")
                }));
                continue;
            }
            if let Some((commit_ts, w)) = state
                .writes
                .range(for_update_ts.saturating_add(1)..)
                .next_back()
            {
                errors.push(TxnError::WriteConflict {
                    key: key.clone(),
                    primary: primary.to_vec(),
                    start_ts,
                    conflict_start_ts: w.start_ts,
                    conflict_commit_ts: *commit_ts,
                    reason: ConflictReason::PessimisticRetry,
                });
                continue;
            }
            values.push(state.visible(u64::MAX).cloned());
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for key in keys {
            let state = self.keys.entry(key.clone()).or_default();
            match &mut state.lock {
                Some(lock) => lock.for_update_ts = lock.for_update_ts.max(for_update_ts),
                None => {
                    state.lock = Some(Lock {
                        start_ts,
                        primary: primary.to_vec(),
                        ttl,
                        kind: LockKind::Pessimistic,
                        for_update_ts,
                        txn_size: 0,
                    })
                }
            }
        }
        Ok(values)
    }

    /// Remove this transaction's pessimistic (not yet prewritten) locks on `keys`.
    pub fn pessimistic_rollback(&mut self, keys: &[Vec<u8>], start_ts: Ts, for_update_ts: Ts) {
        for key in keys {
            if let Some(state) = self.keys.get_mut(key) {
                state.lock.take_if(|l| {
                    l.start_ts == start_ts
                        && l.kind == LockKind::Pessimistic
                        && l.for_update_ts <= for_update_ts
                });
            }
        }
    }

    /// The lock on `key`, if any (for tests and diagnostics).
    pub fn lock_of(&self, key: &[u8]) -> Option<Lock> {
        self.keys.get(key).and_then(|s| s.lock.clone())
    }
}

#[cfg(test)]
mod tests;
