//! The glue between `raft-node` and `engine`: the engine as Raft's state machine, as the source of the
//! snapshot images the leader streams, and the staged image a follower installs.
//!
//! A command (one client request) is an encoded list of engine ops (`engine::codec`); an entry carries
//! many commands (group commit) and is applied as one engine batch, so the entry's effects and the applied
//! index land in one atomic RocksDB write. The reply to a command is `REPLY_OK | ts u64 BE | encoded
//! results`, or `REPLY_UNDECODABLE` for a command whose bytes do not decode: that outcome is deterministic
//! (every replica decodes the same bytes the same way), so it is a per-command answer, not a node failure.

use std::sync::Arc;

use engine::{codec, Engine, Op, OpResult};
use raft_node::transport::{SnapshotImage, SnapshotSource};
use raft_node::{Error, StagedImage, StateMachine};

const REPLY_OK: u8 = 0;
const REPLY_UNDECODABLE: u8 = 1;
const REPLY_UNENCODABLE: u8 = 2;

/// When the engine's writes reach the disk (`--sync`). The Raft log is always fsynced before anything is
/// acknowledged, so a crash never loses an acknowledged write either way: `Batch` leaves engine writes
/// to the OS and fsyncs them once before the log is compacted past them (and at shutdown); `Always`
/// additionally makes every apply durable (less replay after a crash, one more fsync per Ready).
pub use crate::config::SyncMode;

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

fn sm_err(e: engine::Error) -> Error {
    Error::StateMachine(e.to_string())
}

impl StateMachine for EngineMachine {
    fn applied(&self) -> (u64, u64) {
        let a = self.engine.applied();
        (a.index, a.ts)
    }

    fn apply(&mut self, index: u64, ts: u64, commands: &[&[u8]]) -> Result<Vec<Vec<u8>>, Error> {
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
                Some(n) => {
                    let mine: Vec<OpResult> = results.by_ref().take(n).collect();
                    encode_reply(ts, &mine)
                }
                None => vec![REPLY_UNDECODABLE],
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

pub fn encode_reply(ts: u64, results: &[OpResult]) -> Vec<u8> {
    match codec::encode_results(results) {
        Ok(encoded) => {
            let mut out = vec![REPLY_OK];
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&encoded);
            out
        }
        Err(_) => vec![REPLY_UNENCODABLE],
    }
}

/// A command's reply: the entry's commit ts and one result per op.
pub fn decode_reply(bytes: &[u8]) -> Result<(u64, Vec<OpResult>), Error> {
    match bytes.split_first() {
        Some((&REPLY_OK, rest)) if rest.len() >= 8 => {
            let (ts, results) = rest.split_at(8);
            let mut raw = [0u8; 8];
            raw.copy_from_slice(ts);
            let results = codec::decode_results(results)
                .map_err(|_| Error::Invalid("undecodable reply from the state machine"))?;
            Ok((u64::from_be_bytes(raw), results))
        }
        Some((&REPLY_UNDECODABLE, _)) => Err(Error::Invalid("the command did not decode")),
        Some((&REPLY_UNENCODABLE, _)) => Err(Error::Invalid("the results could not be encoded")),
        _ => Err(Error::Invalid("undecodable reply from the state machine")),
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

/// A received image, removed from disk once the node is done with it (installed or refused).
pub struct StagedFile(Option<SnapshotImage>);

impl StagedFile {
    pub fn new(image: SnapshotImage) -> Self {
        StagedFile(Some(image))
    }
}

impl StagedImage for StagedFile {
    fn chunks(&self) -> Box<dyn Iterator<Item = Vec<u8>> + '_> {
        let Some(image) = &self.0 else {
            return Box::new(std::iter::empty());
        };
        match image.chunks() {
            // A read error ends the stream; the engine then refuses the truncated image.
            Ok(chunks) => Box::new(chunks.map_while(Result::ok)),
            Err(e) => {
                tracing::warn!(error = %e, path = %image.path().display(), "cannot read staged snapshot");
                Box::new(std::iter::empty())
            }
        }
    }
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if let Some(image) = self.0.take() {
            image.remove();
        }
    }
}
