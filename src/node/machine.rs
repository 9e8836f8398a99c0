//! The engine as raft-node's state machine, and as the source of the snapshot images the leader streams.
//!
//! A command (one client request) is an encoded list of engine ops (`engine::codec`); an entry carries
//! many commands (group commit) and is applied as one engine batch, so the entry's effects and the applied
//! index land in one atomic RocksDB write. What a command gives back is handed to its proposer in-process,
//! typed ([`CommandOutput`]): one result per op, or [`Undecodable`] for a command whose bytes do not
//! decode — a deterministic outcome (every replica decodes the same bytes the same way), so it is a
//! per-command answer, not a node failure.

use std::sync::Arc;

use engine::{codec, Engine, Op, OpResult};
use raft_node::transport::SnapshotSource;
use raft_node::{Error, StateMachine};

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
        ts: u64,
        commands: &[&[u8]],
    ) -> Result<Vec<CommandOutput>, Error> {
        let mut ops: Vec<Op> = Vec::new();
        let mut spans: Vec<Option<usize>> = Vec::with_capacity(commands.len());
        for command in commands {
            match codec::decode_ops(command) {
                Ok(decoded) => {
                    spans.push(Some(decoded.len()));
                    ops.extend(decoded);
                }
                Err(_) => spans.push(None),
            }
        }
        let out = self
            .engine
            .apply(index, ts, &ops, self.sync == SyncMode::Always)
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
