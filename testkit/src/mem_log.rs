//! An in-memory [`LogStorage`] over raft-rs's `MemStorage`, for the simulator and tests: `persist` is
//! "durable" in the sense that the storage outlives a simulated crash of the node that owns it (clone it
//! before handing it to the node; clones share the same log). Like `LogStore`, it writes a hard state
//! whose only change is the commit index without a sync; [`MemLog::lose_unsynced`] is the power loss
//! that takes such writes back.

use raft::prelude::{ConfState, Snapshot};
use raft::storage::MemStorage;

use raft_node::storage::{LogWrite, Persisted};
use raft_node::{Error, LogStorage};

#[derive(Clone, Default)]
pub struct MemLog {
    store: MemStorage,
    registered: std::sync::Arc<std::sync::Mutex<Option<Snapshot>>>,
    membership: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Index and term of the last compacted entry: `MemStorage` forgets `term(first_index - 1)` after
    /// `compact`, but raft-rs needs it (as `LogStore` keeps it), e.g. to find a conflict after a rejection.
    boundary: std::sync::Arc<std::sync::Mutex<(u64, u64)>>,
    /// The commit index as of the last synced write.
    synced_commit: std::sync::Arc<std::sync::Mutex<u64>>,
}

impl MemLog {
    /// A fresh log for a node of a new cluster with these voters.
    pub fn bootstrap(voters: Vec<u64>) -> Self {
        MemLog {
            store: MemStorage::new_with_conf_state(ConfState::from((voters, vec![]))),
            ..MemLog::default()
        }
    }

    fn sync_commit(&self, commit: u64) {
        *self
            .synced_commit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = commit;
    }

    /// A power loss: the commit index goes back to what the last synced write left (the writes since
    /// changed nothing else). Call it when the owning node crashes.
    pub fn lose_unsynced(&self) {
        let synced = *self
            .synced_commit
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut core = self.store.wl();
        let mut hs = core.hard_state().clone();
        hs.commit = synced;
        core.set_hardstate(hs);
    }
}

impl raft::Storage for MemLog {
    fn initial_state(&self) -> raft::Result<raft::RaftState> {
        self.store.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: raft::GetEntriesContext,
    ) -> raft::Result<Vec<raft::prelude::Entry>> {
        // An empty range inside the log (`MemStorage` would index an empty vector after a snapshot).
        if low == high && low >= self.store.first_index()? && low <= self.store.last_index()? + 1 {
            return Ok(Vec::new());
        }
        self.store.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        let (index, term) = *self
            .boundary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if idx == index && index > 0 {
            return Ok(term);
        }
        self.store.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        self.store.first_index()
    }
    fn last_index(&self) -> raft::Result<u64> {
        self.store.last_index()
    }
    fn snapshot(&self, request_index: u64, to: u64) -> raft::Result<Snapshot> {
        let registered = self
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match registered.as_ref() {
            Some(s) if s.get_metadata().index >= request_index => Ok(s.clone()),
            _ => self.store.snapshot(request_index, to),
        }
    }
}

impl LogStorage for MemLog {
    fn persist(&self, w: &LogWrite) -> Result<Persisted, Error> {
        let mut core = self.store.wl();
        let err = |e: raft::Error| Error::Storage(e.to_string());
        if *w == LogWrite::default() {
            return Ok(Persisted::Nothing);
        }
        let sync = w.must_sync(core.hard_state());
        if let Some(meta) = &w.snapshot {
            let mut snap = Snapshot::default();
            snap.set_metadata(meta.clone());
            core.apply_snapshot(snap).map_err(err)?;
        }
        if !w.entries.is_empty() {
            core.append(&w.entries).map_err(err)?;
        }
        if let Some(hs) = &w.hard_state {
            core.set_hardstate(hs.clone());
        }
        if let Some(cs) = &w.conf_state {
            core.set_conf_state(cs.clone());
        }
        if let Some(m) = &w.membership {
            *self
                .membership
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = m.clone();
        }
        if !sync {
            return Ok(Persisted::Unsynced);
        }
        self.sync_commit(core.hard_state().commit);
        Ok(Persisted::Synced)
    }
    /// Keeps at least the last entry: an emptied `MemStorage` would answer `last_index` 0 (unlike
    /// `LogStore`, which keeps the last index and term of an empty log). Compaction is advisory, so
    /// dropping one entry fewer changes nothing else.
    fn compact(&self, compact_index: u64) -> Result<(), Error> {
        let err = |e: raft::Error| Error::Storage(e.to_string());
        let compact_index = compact_index.min(raft::Storage::last_index(self).map_err(err)?);
        if compact_index <= raft::Storage::first_index(self).map_err(err)? {
            return Ok(());
        }
        let last = compact_index.saturating_sub(1);
        let term = raft::Storage::term(self, last).map_err(err)?;
        self.store.wl().compact(compact_index).map_err(err)?;
        // A synced write: the commit index written lazily before it is durable now.
        self.sync_commit(self.store.rl().hard_state().commit);
        *self
            .boundary
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = (last, term);
        Ok(())
    }
    fn register_snapshot(&self, snapshot: Snapshot) {
        *self
            .registered
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(snapshot);
    }
    fn membership(&self) -> Vec<u8> {
        self.membership
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use raft::prelude::{Entry, HardState};
    use raft::Storage as _;
    use raft_node::storage::{LogWrite, Persisted};
    use raft_node::LogStorage as _;

    use super::MemLog;

    fn commit(log: &MemLog) -> u64 {
        log.initial_state().unwrap().hard_state.commit
    }

    #[test]
    fn a_power_loss_takes_back_the_commit_index_written_since_the_last_sync() {
        let log = MemLog::bootstrap(vec![1]);
        let entries: Vec<Entry> = (1..=4)
            .map(|index| Entry {
                index,
                term: 1,
                ..Entry::default()
            })
            .collect();
        let hs = |commit| HardState {
            term: 1,
            vote: 1,
            commit,
        };
        let append = LogWrite {
            entries,
            hard_state: Some(hs(1)),
            ..LogWrite::default()
        };
        assert_eq!(log.persist(&append).unwrap(), Persisted::Synced);
        let commit_only = |c| LogWrite {
            hard_state: Some(hs(c)),
            ..LogWrite::default()
        };
        assert_eq!(log.persist(&commit_only(3)).unwrap(), Persisted::Unsynced);
        assert_eq!(commit(&log), 3);
        log.lose_unsynced();
        assert_eq!(commit(&log), 1);
        // A synced write (here a compaction) makes the commit index written before it durable.
        assert_eq!(log.persist(&commit_only(4)).unwrap(), Persisted::Unsynced);
        log.compact(2).unwrap();
        log.lose_unsynced();
        assert_eq!(commit(&log), 4);
    }
}
