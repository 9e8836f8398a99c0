//! Applying a Raft entry, as a pure decision: given a read-only view of the committed state, the entry's
//! ops and its commit ts, compute every op's outcome and the exact key/value puts that realise them.
//! The engine writes those puts (plus the applied index) in one `WriteBatch`; nothing here does I/O beyond
//! reading the view. Determinism: the outcome depends only on the view's content, the ops and `ts`.

use std::cell::RefCell;
use std::collections::HashMap;

use crate::error::Error;
use crate::keys;
use crate::op::{
    Change, Compare, Crossing, Op, OpError, OpOutcome, OpResult, Versioned, WriteCond,
};
use crate::values;

/// The newest version of a key: its value (`None` for a tombstone) and its ts.
pub type Version = (Option<Vec<u8>>, u64);

/// Read access to the committed state, as of the last applied entry.
pub trait StateView {
    /// The entity's current epoch (0 if it never crossed a checkpoint).
    fn current_epoch(&self, entity: &[u8]) -> Result<u64, Error>;
    /// The newest version of `key` in `epoch`: `Some(None)` is a tombstone.
    fn latest(&self, key: &[u8], epoch: u64) -> Result<Option<Version>, Error>;
    /// The recorded sync cursor (0 if none).
    fn sync_cursor(&self) -> Result<u64, Error>;
}

/// What applying one entry does.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub results: Vec<OpResult>,
    /// Key/value puts, in order (a later put of the same key wins).
    pub puts: Vec<(Vec<u8>, Vec<u8>)>,
    /// Checkpoint crossings this entry records: `(entity, name)`, to add to the bloom filter before writing.
    pub crossings: Vec<(Vec<u8>, Vec<u8>)>,
    /// The entry's effects as change-feed records, in order (only when asked to record them).
    pub changes: Vec<Change>,
    /// The sync cursor this entry records (the highest so far), if it carries an `Op::SyncCursor`.
    pub cursor: Option<u64>,
}

/// Plan `ops` (one command) at `ts`.
#[cfg(test)]
pub fn plan<V: StateView>(view: &V, ts: u64, ops: &[Op]) -> Result<Plan, Error> {
    plan_commands(view, &[(ts, ops)], true)
}

/// Plan an entry of several commands, each `(ts, ops)` at its own ts (non-decreasing, in log order): a
/// later command sees the earlier ones' effects, and every version keeps the ts of the command that
/// wrote it. The results of all the commands' ops, in order. With `record_changes` the plan also lists
/// the entry's effects as [`Change`]s (the change feed).
pub fn plan_commands<V: StateView>(
    view: &V,
    commands: &[(u64, &[Op])],
    record_changes: bool,
) -> Result<Plan, Error> {
    let mut p = Planner {
        view,
        record_changes,
        ts: 0,
        epochs: HashMap::new(),
        stored_epochs: RefCell::default(),
        data: HashMap::new(),
        undo: None,
        plan: Plan::default(),
    };
    for &(ts, ops) in commands {
        p.ts = ts;
        for op in ops {
            let r = p.op(op, false)?;
            p.plan.results.push(r);
        }
    }
    Ok(p.plan)
}

struct Planner<'v, V> {
    view: &'v V,
    record_changes: bool,
    ts: u64,
    /// Epochs changed by earlier ops of this entry.
    epochs: HashMap<Vec<u8>, u64>,
    /// Epochs read from the view, which does not change while an entry is planned: each entity's is
    /// looked up once (a RocksDB seek; an update's put and incr asked for it three times, and these seeks
    /// were 45 % of the node loop's time under batched updates: BENCHMARKS.md, "Batches").
    stored_epochs: RefCell<HashMap<Vec<u8>, u64>>,
    /// Versions written by earlier ops of this entry, by (key, epoch), with their ts; `None` is a
    /// tombstone.
    data: HashMap<(Vec<u8>, u64), Version>,
    /// Inside a transaction: what each of its writes to `epochs` and `data` replaced, in order, so a
    /// failing branch is undone in the time of its own ops (cloning both maps per transaction made a
    /// batch of transactions quadratic in the entry's writes: BENCHMARKS.md, "Batches").
    undo: Option<Vec<Undo>>,
    plan: Plan,
}

/// One write of a transaction's branch to the planner's maps, with the entry it replaced.
enum Undo {
    Epoch(Vec<u8>, Option<u64>),
    Data((Vec<u8>, u64), Option<Version>),
}

fn validate_key(key: &[u8]) -> Result<(), OpError> {
    if key.is_empty() {
        return Err(OpError::InvalidKey("empty key"));
    }
    Ok(())
}

fn validate_entity(entity: &[u8]) -> Result<(), OpError> {
    if entity.is_empty() {
        return Err(OpError::InvalidKey("empty entity"));
    }
    if entity.contains(&b'/') {
        return Err(OpError::InvalidKey("entity contains '/'"));
    }
    Ok(())
}

impl<V: StateView> Planner<'_, V> {
    fn epoch(&self, entity: &[u8]) -> Result<u64, Error> {
        if let Some(&e) = self.epochs.get(entity) {
            return Ok(e);
        }
        if let Some(&e) = self.stored_epochs.borrow().get(entity) {
            return Ok(e);
        }
        let e = self.view.current_epoch(entity)?;
        self.stored_epochs.borrow_mut().insert(entity.to_vec(), e);
        Ok(e)
    }

    fn key_epoch(&self, key: &[u8]) -> Result<u64, Error> {
        match keys::entity_of(key) {
            Some(entity) => self.epoch(entity),
            None => Ok(0),
        }
    }

    /// The key's current visible value (`None` if absent or deleted).
    fn current(&self, key: &[u8]) -> Result<Option<Versioned>, Error> {
        let epoch = self.key_epoch(key)?;
        let (value, ts) = match self.data.get(&(key.to_vec(), epoch)) {
            Some(pending) => pending.clone(),
            None => match self.view.latest(key, epoch)? {
                Some(v) => v,
                None => return Ok(None),
            },
        };
        Ok(value.map(|value| Versioned { value, ts, epoch }))
    }

    /// Check a write's preconditions; on success returns the epoch the write goes to.
    fn check(&self, key: &[u8], cond: &WriteCond) -> Result<Result<u64, OpError>, Error> {
        if let Err(e) = validate_key(key) {
            return Ok(Err(e));
        }
        let epoch = self.key_epoch(key)?;
        if let Some(expected) = cond.epoch {
            if expected != epoch {
                return Ok(Err(OpError::StaleEpoch { current: epoch }));
            }
        }
        if cond.if_version.is_some() || cond.if_absent {
            let version = self.current(key)?.map_or(0, |v| v.ts);
            if cond.if_absent && version != 0 || cond.if_version.is_some_and(|want| want != version)
            {
                return Ok(Err(OpError::ConditionFailed {
                    current_version: version,
                }));
            }
        }
        Ok(Ok(epoch))
    }

    fn write(&mut self, key: &[u8], epoch: u64, value: Option<Vec<u8>>) {
        self.plan.puts.push((
            keys::data_key(key, epoch, self.ts),
            values::encode_version(value.as_deref()),
        ));
        if self.record_changes {
            self.plan.changes.push(Change::Write {
                key: key.to_vec(),
                value: value.clone(),
                ts: self.ts,
                epoch,
            });
        }
        let slot = (key.to_vec(), epoch);
        match &mut self.undo {
            Some(undo) => {
                let before = self.data.insert(slot.clone(), (value, self.ts));
                undo.push(Undo::Data(slot, before));
            }
            None => {
                self.data.insert(slot, (value, self.ts));
            }
        }
    }

    fn set_epoch(&mut self, entity: &[u8], epoch: u64) {
        let before = self.epochs.insert(entity.to_vec(), epoch);
        if let Some(undo) = &mut self.undo {
            undo.push(Undo::Epoch(entity.to_vec(), before));
        }
    }

    /// Put back what a failed branch's writes replaced, newest first.
    fn undo(&mut self, undo: Vec<Undo>) {
        for u in undo.into_iter().rev() {
            match u {
                Undo::Epoch(entity, Some(e)) => {
                    self.epochs.insert(entity, e);
                }
                Undo::Epoch(entity, None) => {
                    self.epochs.remove(&entity);
                }
                Undo::Data(slot, Some(v)) => {
                    self.data.insert(slot, v);
                }
                Undo::Data(slot, None) => {
                    self.data.remove(&slot);
                }
            }
        }
    }

    fn op(&mut self, op: &Op, in_txn: bool) -> Result<OpResult, Error> {
        let ts = self.ts;
        Ok(match op {
            Op::Put { key, value, cond } => match self.check(key, cond)? {
                Err(e) => Err(e),
                Ok(epoch) => {
                    self.write(key, epoch, Some(value.clone()));
                    Ok(OpOutcome::Written { ts, epoch })
                }
            },
            Op::Delete { key, cond } => match self.check(key, cond)? {
                Err(e) => Err(e),
                Ok(epoch) => {
                    let existed = self.current(key)?.is_some();
                    if existed {
                        self.write(key, epoch, None);
                    }
                    Ok(OpOutcome::Deleted { ts, existed })
                }
            },
            Op::Incr { key, delta, cond } => match self.check(key, cond)? {
                Err(e) => Err(e),
                Ok(epoch) => match self.current(key)?.map_or(Ok(0), |v| parse_i64(&v.value)) {
                    Err(e) => Err(e),
                    Ok(old) => match old.checked_add(*delta) {
                        None => Err(OpError::Overflow),
                        Some(value) => {
                            self.write(key, epoch, Some(value.to_string().into_bytes()));
                            Ok(OpOutcome::Incremented { value, ts, epoch })
                        }
                    },
                },
            },
            Op::Checkpoint {
                entity,
                name,
                data,
                epoch: fence,
            } => self.checkpoint(entity, name, data, *fence)?,
            Op::Get { key } => match validate_key(key) {
                Err(e) => Err(e),
                Ok(()) => Ok(OpOutcome::Read(self.current(key)?)),
            },
            Op::SyncCursor { .. } if in_txn => {
                Err(OpError::Invalid("a sync cursor inside a transaction"))
            }
            Op::SyncCursor { index } => {
                let cursor = match self.plan.cursor {
                    Some(c) => c,
                    None => self.view.sync_cursor()?,
                }
                .max(*index);
                self.plan.cursor = Some(cursor);
                Ok(OpOutcome::CursorRecorded { cursor })
            }
            Op::Txn { .. } if in_txn => Err(OpError::Invalid("transactions do not nest")),
            Op::Txn {
                compares,
                success,
                failure,
            } => self.txn(compares, success, failure)?,
        })
    }

    fn checkpoint(
        &mut self,
        entity: &[u8],
        name: &[u8],
        data: &[u8],
        fence: Option<u64>,
    ) -> Result<OpResult, Error> {
        if let Err(e) = validate_entity(entity) {
            return Ok(Err(e));
        }
        if name.is_empty() {
            return Ok(Err(OpError::Invalid("empty checkpoint name")));
        }
        let current = self.epoch(entity)?;
        if fence.is_some_and(|want| want != current) {
            return Ok(Err(OpError::StaleEpoch { current }));
        }
        let Some(epoch) = current.checked_add(1) else {
            return Ok(Err(OpError::Overflow));
        };
        let ts = self.ts;
        // Three constant-size puts, whatever the number of keys the entity has: the new epoch's start,
        // the crossing record, and a GC-queue entry that later range-deletes the old epochs.
        let puts = &mut self.plan.puts;
        puts.push((keys::epoch_key(entity, epoch), ts.to_be_bytes().to_vec()));
        let crossing = Crossing {
            epoch,
            ts,
            data: data.to_vec(),
        };
        puts.push((
            keys::crossing_key(entity, name),
            values::encode_crossing(&crossing),
        ));
        puts.push((keys::gc_queue_key(ts, entity), epoch.to_be_bytes().to_vec()));
        self.plan.crossings.push((entity.to_vec(), name.to_vec()));
        if self.record_changes {
            self.plan.changes.push(Change::Checkpoint {
                entity: entity.to_vec(),
                name: name.to_vec(),
                data: data.to_vec(),
                epoch,
                ts,
            });
        }
        self.set_epoch(entity, epoch);
        Ok(Ok(OpOutcome::Checkpointed { epoch, ts }))
    }

    fn compare(&self, c: &Compare) -> Result<Result<bool, OpError>, Error> {
        Ok(Ok(match c {
            Compare::Value { key, op, value } => match self.current(key)? {
                Some(v) => op.holds(v.value.as_slice(), value.as_slice()),
                None => false,
            },
            Compare::Version { key, op, ts } => {
                op.holds(&self.current(key)?.map_or(0, |v| v.ts), ts)
            }
            Compare::Exists { key, exists } => self.current(key)?.is_some() == *exists,
            Compare::Epoch { entity, op, epoch } => {
                if let Err(e) = validate_entity(entity) {
                    return Ok(Err(e));
                }
                op.holds(&self.epoch(entity)?, epoch)
            }
        }))
    }

    fn txn(
        &mut self,
        compares: &[Compare],
        success: &[Op],
        failure: &[Op],
    ) -> Result<OpResult, Error> {
        let mut succeeded = true;
        for c in compares {
            match self.compare(c)? {
                Err(e) => return Ok(Err(e)),
                Ok(false) => succeeded = false,
                Ok(true) => {}
            }
        }
        let branch = if succeeded { success } else { failure };
        let saved = (
            self.plan.puts.len(),
            self.plan.crossings.len(),
            self.plan.changes.len(),
        );
        self.undo = Some(Vec::new());
        let mut results = Vec::with_capacity(branch.len());
        for op in branch {
            let failed = match self.op(op, true) {
                Ok(Ok(r)) => {
                    results.push(r);
                    continue;
                }
                failed => failed,
            };
            // All or nothing: undo the branch's earlier ops.
            let undo = self.undo.take().unwrap_or_default();
            self.undo(undo);
            self.plan.puts.truncate(saved.0);
            self.plan.crossings.truncate(saved.1);
            self.plan.changes.truncate(saved.2);
            return failed;
        }
        self.undo = None;
        Ok(Ok(OpOutcome::Txn { succeeded, results }))
    }
}

fn parse_i64(raw: &[u8]) -> Result<i64, OpError> {
    std::str::from_utf8(raw)
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .ok_or(OpError::NotAnInteger)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::CmpOp;
    use std::collections::BTreeMap;

    /// A view over a plain map of the physical keyspace, to test planning without RocksDB.
    #[derive(Default)]
    struct MapView(BTreeMap<Vec<u8>, Vec<u8>>);

    impl StateView for MapView {
        fn current_epoch(&self, entity: &[u8]) -> Result<u64, Error> {
            let prefix = keys::epoch_prefix(entity);
            match self
                .0
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .last()
            {
                Some((k, _)) => Ok(keys::decode_epoch_key(k)?.1),
                None => Ok(0),
            }
        }
        fn latest(&self, key: &[u8], epoch: u64) -> Result<Option<Version>, Error> {
            let prefix = keys::version_prefix(key, epoch);
            match self
                .0
                .range(prefix.clone()..)
                .next()
                .filter(|(k, _)| k.starts_with(&prefix))
            {
                Some((k, v)) => Ok(Some((
                    values::decode_version(v)?.map(<[u8]>::to_vec),
                    keys::decode_data_key(k)?.ts,
                ))),
                None => Ok(None),
            }
        }
        fn sync_cursor(&self) -> Result<u64, Error> {
            match self.0.get(keys::SYNCED_KEY) {
                Some(raw) => keys::decode_u64(raw, "sync cursor"),
                None => Ok(0),
            }
        }
    }

    impl MapView {
        fn apply(&mut self, ts: u64, ops: &[Op]) -> Vec<OpResult> {
            let p = plan(self, ts, ops).unwrap();
            self.0.extend(p.puts);
            p.results
        }
    }

    fn put(key: &str, value: &str) -> Op {
        Op::put(key, value)
    }

    fn checkpoint(entity: &str, fence: Option<u64>) -> Op {
        Op::Checkpoint {
            entity: entity.into(),
            name: b"cp".to_vec(),
            data: vec![],
            epoch: fence,
        }
    }

    #[test]
    fn checkpoint_emits_exactly_three_constant_puts() {
        let mut view = MapView::default();
        let few: Vec<Op> = (0..3).map(|i| put(&format!("p/{i}"), "v")).collect();
        view.apply(1, &few);
        let small = plan(&view, 2, &[checkpoint("p", None)]).unwrap();
        let many: Vec<Op> = (0..1000).map(|i| put(&format!("p/{i}"), "v")).collect();
        view.apply(3, &many);
        let big = plan(&view, 4, &[checkpoint("p", None)]).unwrap();
        assert_eq!(small.puts.len(), 3);
        assert_eq!(big.puts.len(), 3);
        let bytes = |p: &Plan| p.puts.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>();
        assert_eq!(bytes(&small), bytes(&big));
        assert_eq!(big.crossings, vec![(b"p".to_vec(), b"cp".to_vec())]);
    }

    #[test]
    fn stale_epoch_rejected_without_effect() {
        let mut view = MapView::default();
        view.apply(1, &[checkpoint("p", None)]);
        let stale = Op::put("p/x", "v").with_epoch(Some(0));
        let p = plan(&view, 2, &[stale]).unwrap();
        assert_eq!(p.results, vec![Err(OpError::StaleEpoch { current: 1 })]);
        assert!(p.puts.is_empty());
        assert_eq!(
            view.apply(3, &[checkpoint("p", Some(0))]),
            vec![Err(OpError::StaleEpoch { current: 1 })]
        );
    }

    #[test]
    fn later_ops_see_earlier_ops_of_the_same_entry() {
        let mut view = MapView::default();
        let incr = Op::incr("p/score", 5);
        let r = view.apply(
            1,
            &[incr.clone(), incr.clone(), checkpoint("p", None), incr],
        );
        assert_eq!(
            r[1],
            Ok(OpOutcome::Incremented {
                value: 10,
                ts: 1,
                epoch: 0
            })
        );
        assert_eq!(
            r[3],
            Ok(OpOutcome::Incremented {
                value: 5,
                ts: 1,
                epoch: 1
            })
        );
    }

    /// Commands of one entry at their own ts: a later command sees an earlier one's write with the ts
    /// it was written at, and a put before a checkpoint stays in the old epoch, under its own ts.
    #[test]
    fn commands_of_one_entry_keep_their_own_ts() {
        let view = MapView::default();
        let put_k = [put("p/k", "v")];
        let cp = [checkpoint("p", None)];
        let cond = [Op::Txn {
            compares: vec![Compare::Version {
                key: b"k".to_vec(),
                op: CmpOp::Eq,
                ts: 10,
            }],
            success: vec![put("k", "w")],
            failure: vec![],
        }];
        let put_plain = [put("k", "v")];
        let p = plan_commands(
            &view,
            &[(10, &put_plain), (11, &put_k), (12, &cp), (13, &cond)],
            true,
        )
        .unwrap();
        assert_eq!(p.results[0], Ok(OpOutcome::Written { ts: 10, epoch: 0 }));
        assert_eq!(p.results[1], Ok(OpOutcome::Written { ts: 11, epoch: 0 }));
        assert_eq!(
            p.results[2],
            Ok(OpOutcome::Checkpointed { epoch: 1, ts: 12 })
        );
        assert!(
            matches!(
                &p.results[3],
                Ok(OpOutcome::Txn {
                    succeeded: true,
                    ..
                })
            ),
            "the version written by the first command is the one at ts 10: {:?}",
            p.results[3]
        );
        assert!(p
            .puts
            .iter()
            .any(|(k, _)| *k == keys::data_key(b"p/k", 0, 11)));
    }

    #[test]
    fn failed_txn_branch_has_no_effect() {
        let mut view = MapView::default();
        view.apply(1, &[put("k", "1")]);
        let txn = Op::Txn {
            compares: vec![Compare::Value {
                key: "k".into(),
                op: CmpOp::Eq,
                value: "1".into(),
            }],
            success: vec![put("a", "x"), Op::incr("k2", 1), Op::incr("a", 1)],
            failure: vec![],
        };
        let p = plan(&view, 2, &[txn]).unwrap();
        assert_eq!(p.results, vec![Err(OpError::NotAnInteger)]);
        assert!(p.puts.is_empty());
    }

    /// A failed branch leaves the ops after it in the same entry seeing what was there before it: the
    /// values written earlier in the entry (overwritten by the branch) and the entity's epoch (moved by a
    /// checkpoint in the branch), and keys the branch created are absent again.
    #[test]
    fn ops_after_a_failed_branch_see_the_state_before_it() {
        let mut view = MapView::default();
        view.apply(1, &[put("p/k", "stored")]);
        let failing = Op::Txn {
            compares: vec![],
            success: vec![
                put("a", "branch"),
                put("new", "branch"),
                checkpoint("p", None),
                put("p/k", "branch"),
                Op::incr("a", 1),
            ],
            failure: vec![],
        };
        let get = |k: &str| Op::Get { key: k.into() };
        let p = plan(
            &view,
            2,
            &[
                put("a", "before"),
                failing,
                get("a"),
                get("new"),
                get("p/k"),
                Op::Txn {
                    compares: vec![Compare::Epoch {
                        entity: "p".into(),
                        op: CmpOp::Eq,
                        epoch: 0,
                    }],
                    success: vec![],
                    failure: vec![put("wrong", "epoch")],
                },
            ],
        )
        .unwrap();
        let read = |r: &OpResult| match r {
            Ok(OpOutcome::Read(v)) => v.as_ref().map(|v| v.value.clone()),
            other => panic!("not a read: {other:?}"),
        };
        assert_eq!(p.results[1], Err(OpError::NotAnInteger));
        assert_eq!(read(&p.results[2]), Some(b"before".to_vec()));
        assert_eq!(read(&p.results[3]), None);
        assert_eq!(read(&p.results[4]), Some(b"stored".to_vec()));
        assert!(matches!(
            p.results[5],
            Ok(OpOutcome::Txn {
                succeeded: true,
                ..
            })
        ));
        // Only the first put reached the plan.
        assert_eq!(p.puts.len(), 1);
    }

    #[test]
    fn txn_compares_choose_the_branch() {
        let mut view = MapView::default();
        view.apply(1, &[put("k", "1")]);
        let txn = |cmp| Op::Txn {
            compares: vec![cmp],
            success: vec![put("s", "1")],
            failure: vec![Op::Get { key: "k".into() }],
        };
        let r = view.apply(
            2,
            &[
                txn(Compare::Version {
                    key: "k".into(),
                    op: CmpOp::Eq,
                    ts: 1,
                }),
                txn(Compare::Exists {
                    key: "nope".into(),
                    exists: true,
                }),
                txn(Compare::Epoch {
                    entity: "p".into(),
                    op: CmpOp::Eq,
                    epoch: 0,
                }),
                txn(Compare::Value {
                    key: "k".into(),
                    op: CmpOp::Greater,
                    value: "0".into(),
                }),
            ],
        );
        assert_eq!(
            r[0],
            Ok(OpOutcome::Txn {
                succeeded: true,
                results: vec![OpOutcome::Written { ts: 2, epoch: 0 }]
            })
        );
        assert_eq!(
            r[1],
            Ok(OpOutcome::Txn {
                succeeded: false,
                results: vec![OpOutcome::Read(Some(Versioned {
                    value: b"1".to_vec(),
                    ts: 1,
                    epoch: 0
                }))]
            })
        );
        assert!(matches!(
            r[2],
            Ok(OpOutcome::Txn {
                succeeded: true,
                ..
            })
        ));
        assert!(matches!(
            r[3],
            Ok(OpOutcome::Txn {
                succeeded: true,
                ..
            })
        ));
    }

    #[test]
    fn conditions_and_validation() {
        let mut view = MapView::default();
        view.apply(1, &[put("k", "v")]);
        let r = view.apply(
            2,
            &[
                Op::Put {
                    key: "k".into(),
                    value: "w".into(),
                    cond: WriteCond {
                        if_absent: true,
                        ..Default::default()
                    },
                },
                Op::Put {
                    key: "k".into(),
                    value: "w".into(),
                    cond: WriteCond {
                        if_version: Some(7),
                        ..Default::default()
                    },
                },
                Op::Delete {
                    key: "k".into(),
                    cond: WriteCond {
                        if_version: Some(1),
                        ..Default::default()
                    },
                },
                put("", "x"),
                Op::checkpoint("a/b", "n", vec![]),
                Op::incr("n", i64::MAX),
                Op::incr("n", 1),
            ],
        );
        assert_eq!(r[0], Err(OpError::ConditionFailed { current_version: 1 }));
        assert_eq!(r[1], Err(OpError::ConditionFailed { current_version: 1 }));
        assert_eq!(
            r[2],
            Ok(OpOutcome::Deleted {
                ts: 2,
                existed: true
            })
        );
        assert_eq!(r[3], Err(OpError::InvalidKey("empty key")));
        assert_eq!(r[4], Err(OpError::InvalidKey("entity contains '/'")));
        assert_eq!(r[6], Err(OpError::Overflow));
    }
}
