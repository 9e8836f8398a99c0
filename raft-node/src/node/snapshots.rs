//! Snapshots and log compaction: installing a received image, registering the snapshot raft-rs hands
//! to followers behind the log, and compacting the log by entry count and bytes.

use raft::prelude::{Snapshot, SnapshotMetadata};

use super::{raft_err, LogStorage, Node, StateMachine};
use crate::error::Error;
use crate::membership::Membership;

impl<L: LogStorage, S: StateMachine> Node<L, S> {
    /// Install the image staged for `snap` into the state machine; returns what the log write must
    /// record (the snapshot metadata and the membership table it carries).
    pub(super) fn install_snapshot(
        &mut self,
        snap: Snapshot,
    ) -> Result<(SnapshotMetadata, Vec<u8>), Error> {
        let meta = snap.get_metadata().clone();
        let image = match self.staged.take() {
            Some((index, image)) if index == meta.index => image,
            _ => {
                return Err(Error::StateMachine(
                    format!(
                        "raft accepted snapshot {} but no image is staged for it",
                        meta.index
                    )
                    .into(),
                ))
            }
        };
        let mut membership = Membership::decode(&snap.data)?;
        membership.conf_index = membership.conf_index.max(meta.index);
        let (applied, applied_ts) = self.sm.install_snapshot(&mut image.chunks())?;
        if applied < meta.index {
            return Err(Error::StateMachine(
                format!(
                    "snapshot image is at index {applied}, older than the raft snapshot {}",
                    meta.index
                )
                .into(),
            ));
        }
        self.hlc.observe(applied_ts);
        // Proposals of ours the snapshot covers are settled by identity now: a later entry would
        // otherwise meet them below its index (entries between the snapshot and the image's index are
        // skipped as applied, and settled one by one in `apply_committed`).
        self.resolve_below_snapshot(meta.index, meta.term);
        self.set_membership(membership);
        self.log_bytes = 0;
        self.counters.snapshots_installed += 1;
        // Registered so this node, if it leads, can send the same snapshot on.
        self.raw.store().register_snapshot(snap);
        tracing::info!(
            node = self.cfg.id,
            index = meta.index,
            image_index = applied,
            "installed snapshot"
        );
        Ok((meta, self.membership.encode()?))
    }

    /// Register a snapshot at the applied index: its conf state and membership table are the node's
    /// current ones, which are exactly those at the applied index (conf changes are applied in this loop).
    pub(super) fn register_snapshot(&mut self) -> Result<u64, Error> {
        let applied = self.raw.raft.raft_log.applied;
        let term = self.raw.raft.raft_log.term(applied).map_err(raft_err)?;
        let mut snap = Snapshot::default();
        let meta = snap.mut_metadata();
        meta.index = applied;
        meta.term = term;
        meta.set_conf_state(self.raw.raft.prs().conf().to_conf_state());
        snap.data = self.membership.encode()?;
        self.raw.store().register_snapshot(snap);
        Ok(applied)
    }

    /// Compact the log once the applied part is long (entries) or large (bytes). A leader keeps the
    /// entries its active followers still need, up to twice the limits; followers behind that get a
    /// snapshot.
    pub(super) fn maybe_compact(&mut self) -> Result<(), Error> {
        let first = self.raw.raft.raft_log.first_index();
        if std::mem::take(&mut self.conf_changed) && first > 1 {
            self.register_snapshot()?;
        }
        let applied = self.raw.raft.raft_log.applied;
        let kept = applied.saturating_add(1).saturating_sub(first);
        if kept < self.cfg.compact_log_entries && self.log_bytes < self.cfg.compact_log_bytes {
            return Ok(());
        }
        let mut target = applied;
        if self.is_leader() {
            let id = self.cfg.id;
            let slowest = self
                .raw
                .raft
                .prs()
                .iter()
                .filter(|&(&peer, pr)| peer != id && pr.recent_active)
                .map(|(_, pr)| pr.matched)
                .min();
            if let Some(slowest) = slowest {
                let hard_floor =
                    applied.saturating_sub(self.cfg.compact_log_entries.saturating_mul(2));
                let oversized = self.log_bytes >= self.cfg.compact_log_bytes.saturating_mul(2);
                if !oversized {
                    target = target.min(slowest.max(hard_floor));
                }
            }
        }
        if target < first {
            return Ok(());
        }
        // The state machine must hold everything the dropped entries carried.
        self.sm.flush()?;
        self.register_snapshot()?;
        self.raw.store().compact(target + 1)?;
        self.counters.compactions += 1;
        let dropped = target + 1 - first;
        self.log_bytes = self
            .log_bytes
            .saturating_sub(self.log_bytes.saturating_mul(dropped) / kept.max(1));
        tracing::debug!(
            node = self.cfg.id,
            first_index = target + 1,
            "compacted raft log"
        );
        Ok(())
    }
}
