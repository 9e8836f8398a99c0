//! The engine as raft-node's state machine, and as the source of the snapshot images the leader streams.
//!
//! A command (one client request) is an encoded list of engine ops (`engine::codec`); an entry carries
//! many commands (group commit) and is applied as one engine batch, so the entry's effects and the applied
//! index land in one atomic RocksDB write. Each command is applied at its own commit ts
//! ([`CommitTs::at`]), so requests batched together are ordered in time as in the log. What a command gives back is handed to its proposer in-process,
//! typed ([`CommandOutput`]): one result per op, or [`Undecodable`] for a command whose bytes do not
//! decode — a deterministic outcome (every replica decodes the same bytes the same way), so it is a
//! per-command answer, not a node failure.

use std::sync::Arc;

use engine::{codec, Engine, Op, OpResult};
use raft_node::transport::SnapshotSource;
use raft_node::{CommitTs, Error, StateMachine};

use crate::config::SyncMode;

/// A command whose bytes do not decode as an op list; it was applied as nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the command did not decode")]
pub struct Undecodable;

/// What applying one command gives back: one result per op, in order.
pub type CommandOutput = Result<Vec<OpResult>, Undecodable>;

/// The engine driven by the Raft loop.
pub struct EngineMachine {
    engine: Arc<Engine>,
    sync: SyncMode,
}

impl EngineMachine {
    pub fn new(engine: Arc<Engine>, sync: SyncMode) -> Self {
        EngineMachine { engine, sync }
    }
}

/// The engine's error, kept whole for whoever reads why the loop stopped.
fn sm_err(e: engine::Error) -> Error {
    Error::StateMachine(Box::new(e))
}

impl StateMachine for EngineMachine {
    type Output = CommandOutput;

    fn applied(&self) -> (u64, u64) {
        let a = self.engine.applied();
        (a.index, a.ts)
    }

    fn apply(
        &mut self,
        index: u64,
        ts: CommitTs,
        commands: &[&[u8]],
    ) -> Result<Vec<CommandOutput>, Error> {
        let last = ts
            .last(commands.len())
            .ok_or(Error::Invalid("commit ts out of range"))?;
        let mut decoded: Vec<(u64, Vec<Op>)> = Vec::with_capacity(commands.len());
        let mut spans: Vec<Option<usize>> = Vec::with_capacity(commands.len());
        for (i, command) in commands.iter().enumerate() {
            match codec::decode_ops(command) {
                Ok(ops) => {
                    spans.push(Some(ops.len()));
                    decoded.push((ts.at(i), ops));
                }
                Err(_) => spans.push(None),
            }
        }
        let groups: Vec<(u64, &[Op])> = decoded
            .iter()
            .map(|(ts, ops)| (*ts, ops.as_slice()))
            .collect();
        let out = self
            .engine
            .apply_commands(index, last, &groups, self.sync == SyncMode::Always)
            .map_err(sm_err)?;
        let mut results = out.results.into_iter();
        Ok(spans
            .into_iter()
            .map(|span| match span {
                Some(n) => Ok(results.by_ref().take(n).collect()),
                None => Err(Undecodable),
            })
            .collect())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.engine.sync().map_err(sm_err)
    }

    fn install_snapshot(
        &mut self,
        image: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> Result<(u64, u64), Error> {
        let meta = self.engine.install_snapshot(image).map_err(sm_err)?;
        Ok((meta.applied.index, meta.applied.ts))
    }
}

/// The leader's side of snapshot streaming: a consistent image of the engine, chunk by chunk. The image
/// is taken when the stream starts, so its applied index is at least that of the registered Raft snapshot.
pub struct EngineSource(pub Arc<Engine>);

impl SnapshotSource for EngineSource {
    fn stream(&self, sink: &mut dyn FnMut(Vec<u8>) -> Result<(), String>) -> Result<(), String> {
        self.0
            .write_snapshot(&mut |chunk| sink(chunk).map_err(engine::Error::Storage))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use engine::{codec, Engine, EngineConfig, ManualClock, Op, OpOutcome};
    use raft_node::{CommitTs, StateMachine};

    use super::EngineMachine;
    use crate::config::SyncMode;

    /// Issue 9 item 13: a put and a checkpoint of the same entity batched into one entry. The put's
    /// reply names its ts; a read at that ts must see it (at the checkpoint's ts it is gone). Entries of
    /// the older payload version, whose commands share one ts, still replay as they were first applied.
    #[test]
    fn a_put_batched_before_a_checkpoint_is_visible_at_its_own_ts() {
        let now = 1_000_000_000_000;
        for (step, visible) in [(1, true), (0, false)] {
            let dir = tempfile::tempdir().unwrap();
            let clock = Arc::new(ManualClock::new(now));
            let engine = Arc::new(Engine::open(dir.path(), EngineConfig::tiny(clock)).unwrap());
            let mut machine = EngineMachine::new(engine.clone(), SyncMode::Always);
            let put = codec::encode_ops(&[Op::put("e/k", "v")]).unwrap();
            let checkpoint = codec::encode_ops(&[Op::checkpoint("e", "gate", "")]).unwrap();
            let out = machine
                .apply(1, CommitTs { first: now, step }, &[&put, &checkpoint])
                .unwrap();
            let put_ts = match out[0].as_deref() {
                Ok([Ok(OpOutcome::Written { ts, .. })]) => *ts,
                other => panic!("put: {other:?}"),
            };
            let checkpoint_ts = match out[1].as_deref() {
                Ok([Ok(OpOutcome::Checkpointed { ts, .. })]) => *ts,
                other => panic!("checkpoint: {other:?}"),
            };
            assert_eq!(engine.applied().ts, checkpoint_ts);
            assert_eq!(
                engine.get(b"e/k", put_ts).unwrap().is_some(),
                visible,
                "step {step}: the put at {put_ts}, checkpoint at {checkpoint_ts}"
            );
            assert!(engine.get(b"e/k", checkpoint_ts).unwrap().is_none());
        }
    }
}
