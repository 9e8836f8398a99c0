//! An in-memory [`LogStorage`] over raft-rs's `MemStorage`, for the simulator and tests: `persist` is
//! "durable" in the sense that the storage outlives a simulated crash of the node that owns it (clone it
//! before handing it to the node; clones share the same log).

use raft::prelude::{ConfState, Snapshot};
use raft::storage::MemStorage;

use raft_node::storage::LogWrite;
use raft_node::{Error, LogStorage};

#[derive(Clone, Default)]
pub struct MemLog {
    store: MemStorage,
    registered: std::sync::Arc<std::sync::Mutex<Option<Snapshot>>>,
    membership: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
    /// Index and term of the last compacted entry: `MemStorage` forgets `term(first_index - 1)` after
    /// `compact`, but raft-rs needs it (as `LogStore` keeps it), e.g. to find a conflict after a rejection.
    boundary: std::sync::Arc<std::sync::Mutex<(u64, u64)>>,
}

impl MemLog {
    /// A fresh log for a node of a new cluster with these voters.
    pub fn bootstrap(voters: Vec<u64>) -> Self {
        MemLog {
            store: MemStorage::new_with_conf_state(ConfState::from((voters, vec![]))),
            ..MemLog::default()
        }
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
    fn persist(&self, w: &LogWrite) -> Result<(), Error> {
        let mut core = self.store.wl();
        let err = |e: raft::Error| Error::Storage(e.to_string());
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
        Ok(())
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
