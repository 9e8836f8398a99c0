//! Snapshot I/O of the [`Engine`]: producing a consistent image as a chunk stream, and installing one
//! (verify and stage the whole stream, then switch atomically; `open` finishes an interrupted switch).
//! The chunk framing itself is the pure [`crate::snapshot`] module.

use std::path::Path;
use std::sync::PoisonError;

use crate::bloom::CrossingFilter;
use crate::error::Error;
use crate::keys;
use crate::snapshot::{self, ChunkKind, RecordHasher, SnapshotMeta};
use crate::store::WriteOp;
use crate::values::{self, Applied};

use super::{lock, Engine};

/// The staged snapshot SST, in the engine directory, while an install is in flight.
const STAGING_SST: &str = "snapshot-staging.sst";

impl Engine {
    /// At open, before anything else: finish an install whose switch had started (its marker is present),
    /// or drop a partially staged file whose switch never started (the old state stands).
    pub(super) fn recover_install(&self) -> Result<(), Error> {
        let staging = self.dir.join(STAGING_SST);
        if self.reader().view.get(keys::INSTALL_MARKER_KEY)?.is_some() {
            tracing::warn!(dir = %self.dir.display(), "finishing an interrupted snapshot install");
            self.swap_in_staged()
        } else if staging.exists() {
            std::fs::remove_file(&staging).map_err(Error::io(&staging))
        } else {
            Ok(())
        }
    }

    /// Stream a consistent snapshot of the whole state machine to `sink`, chunk by chunk (the sink may
    /// block for flow control). Writers are not blocked while it runs.
    pub fn write_snapshot(
        &self,
        sink: &mut dyn FnMut(Vec<u8>) -> Result<(), Error>,
    ) -> Result<SnapshotMeta, Error> {
        let reader = self.reader();
        let applied = match reader.view.get(keys::APPLIED_KEY)? {
            Some(raw) => values::decode_applied(&raw)?,
            None => Applied::default(),
        };
        let mut seq = 0u32;
        let mut bytes = 0u64;
        let mut emit = |kind: ChunkKind, payload: &[u8]| -> Result<(), Error> {
            let chunk = snapshot::encode_chunk(seq, kind, payload)?;
            seq += 1;
            bytes += chunk.len() as u64;
            sink(chunk)
        };
        emit(ChunkKind::Header, &snapshot::header_payload(applied))?;
        let mut hasher = RecordHasher::default();
        let mut payload = Vec::new();
        let mut cur = reader.view.cursor(Some(vec![keys::MARKER]));
        cur.seek(&[]);
        while let Some((k, v)) = cur.entry()? {
            hasher.add(k, v);
            snapshot::push_record(&mut payload, k, v)?;
            if payload.len() >= self.config.snapshot_chunk_bytes {
                emit(ChunkKind::Records, &payload)?;
                payload.clear();
            }
            cur.next();
        }
        if !payload.is_empty() {
            emit(ChunkKind::Records, &payload)?;
        }
        let records = hasher.records;
        let sha256 = hasher.finish();
        emit(ChunkKind::End, &snapshot::end_payload(records, &sha256))?;
        Ok(SnapshotMeta {
            applied,
            records,
            chunks: seq,
            bytes,
            sha256,
        })
    }

    /// Replace the whole state with a snapshot stream. The stream is verified completely (framing, order,
    /// checksums) before anything changes; the switch itself is atomic across crashes (a marker makes
    /// `open` finish an interrupted switch). On error the previous state is untouched.
    pub fn install_snapshot(
        &self,
        chunks: &mut dyn Iterator<Item = Vec<u8>>,
    ) -> Result<SnapshotMeta, Error> {
        let _writer = lock(&self.writer);
        let staging = self.dir.join(STAGING_SST);
        let (meta, filter) = match self.stage_snapshot(chunks, &staging) {
            Ok(staged) => staged,
            Err(e) => {
                let _ = std::fs::remove_file(&staging);
                return Err(e);
            }
        };
        // Lookups wait during the switch, so no crossing is ever readable without being in the filter.
        let mut bloom = self.bloom.write().unwrap_or_else(PoisonError::into_inner);
        self.store.write(
            [
                WriteOp::DeleteRange(vec![0], vec![keys::MARKER]),
                WriteOp::Put(
                    keys::INSTALL_MARKER_KEY.to_vec(),
                    STAGING_SST.as_bytes().to_vec(),
                ),
            ],
            true,
        )?;
        self.swap_in_staged()?;
        self.bloom_size.record(&filter);
        *bloom = filter;
        *lock(&self.applied) = self.load_applied()?;
        self.load_safepoint()?;
        self.load_feed()?;
        Ok(meta)
    }

    /// Verify the stream and write it to the staging SST.
    fn stage_snapshot(
        &self,
        chunks: &mut dyn Iterator<Item = Vec<u8>>,
        staging: &Path,
    ) -> Result<(SnapshotMeta, CrossingFilter), Error> {
        let mut sst = self.store.sst_writer(staging)?;
        let mut filter = CrossingFilter::new(
            self.config.bloom_fp_rate,
            self.config.bloom_expected_crossings,
        );
        let meta = check_stream(chunks, &mut |k, v| {
            if k[0] == keys::CROSSING {
                let (entity, name) = keys::decode_entity_meta(keys::CROSSING, k)?;
                filter.insert(&entity, name);
            }
            sst.put(k, v)
        })?;
        sst.finish()?;
        Ok((meta, filter))
    }

    /// Second half of an install, also run by `open` after a crash: clear the state range, ingest the
    /// staged SST, drop the marker. Idempotent.
    fn swap_in_staged(&self) -> Result<(), Error> {
        let staging = self.dir.join(STAGING_SST);
        if !staging.exists() {
            return Err(Error::Corruption {
                at: staging.display().to_string(),
                detail: "snapshot install marker present but the staged snapshot is missing".into(),
            });
        }
        fail::fail_point!("engine::snapshot_switch_before_ingest", |_| Err(
            Error::Storage("failpoint".into())
        ));
        self.store
            .write([WriteOp::DeleteRange(vec![0], vec![keys::MARKER])], true)?;
        self.store.ingest(&staging)?;
        fail::fail_point!("engine::snapshot_switch_after_ingest", |_| Err(
            Error::Storage("failpoint".into())
        ));
        self.store
            .write([WriteOp::Delete(keys::INSTALL_MARKER_KEY.to_vec())], true)?;
        std::fs::remove_file(&staging).map_err(Error::io(&staging))?;
        Ok(())
    }
}

/// Verify a whole snapshot stream without installing it: framing, chunk order, key order and range,
/// crossing keys, record count and SHA-256. What an install would refuse, this refuses. Reads the stream
/// once, holding one chunk at a time.
pub fn verify_image(chunks: &mut dyn Iterator<Item = Vec<u8>>) -> Result<SnapshotMeta, Error> {
    check_stream(chunks, &mut |k, _| {
        if k[0] == keys::CROSSING {
            keys::decode_entity_meta(keys::CROSSING, k)?;
        }
        Ok(())
    })
}

/// The applied index and ts a snapshot stream holds, from its first chunk (checked: framing, crc, kind).
pub fn image_applied(first_chunk: &[u8]) -> Result<Applied, Error> {
    match snapshot::decode_chunk(first_chunk)? {
        (0, ChunkKind::Header, payload) => snapshot::parse_header(payload),
        (seq, kind, _) => Err(Error::BadSnapshot(format!(
            "the first chunk is chunk {seq} of kind {kind:?}, not the header"
        ))),
    }
}

/// What [`check_stream`] hands each record to (a key and its value); an error stops the walk.
type OnRecord<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), Error> + 'a;

/// Walk a snapshot stream, checking everything, and hand each record (keys strictly increasing, each
/// inside the state range) to `on_record`. Returns the stream's summary once its end chunk checked out.
fn check_stream(
    chunks: &mut dyn Iterator<Item = Vec<u8>>,
    on_record: &mut OnRecord<'_>,
) -> Result<SnapshotMeta, Error> {
    let mut hasher = RecordHasher::default();
    let mut applied = None;
    let mut last_key: Option<Vec<u8>> = None;
    let (mut seq, mut bytes) = (0u32, 0u64);
    for chunk in chunks {
        let (got, kind, payload) = snapshot::decode_chunk(&chunk)?;
        if got != seq {
            return Err(Error::BadSnapshot(format!(
                "expected chunk {seq}, got {got}"
            )));
        }
        seq += 1;
        bytes += chunk.len() as u64;
        match (kind, applied) {
            (ChunkKind::Header, None) => applied = Some(snapshot::parse_header(payload)?),
            (ChunkKind::Records, Some(_)) => {
                for (k, v) in snapshot::parse_records(payload)? {
                    if k.is_empty()
                        || k[0] >= keys::MARKER
                        || last_key.as_deref().is_some_and(|l| l >= k)
                    {
                        return Err(Error::BadSnapshot(
                            "record keys out of order or out of range".into(),
                        ));
                    }
                    last_key = Some(k.to_vec());
                    hasher.add(k, v);
                    on_record(k, v)?;
                }
            }
            (ChunkKind::End, Some(applied)) => {
                let (records, sha256) = snapshot::parse_end(payload)?;
                if records != hasher.records || sha256 != hasher.finish() {
                    return Err(Error::BadSnapshot(
                        "record count or checksum mismatch".into(),
                    ));
                }
                if last_key.is_none() {
                    return Err(Error::BadSnapshot("snapshot holds no records".into()));
                }
                return Ok(SnapshotMeta {
                    applied,
                    records,
                    chunks: seq,
                    bytes,
                    sha256,
                });
            }
            _ => {
                return Err(Error::BadSnapshot(format!(
                    "chunk {got} of kind {kind:?} out of place"
                )))
            }
        }
    }
    Err(Error::BadSnapshot(
        "stream ended before its end chunk".into(),
    ))
}
