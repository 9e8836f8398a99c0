//! Online backups: the file format ([`format`]), the producer behind `GET /v1/snapshot` ([`produce`]),
//! verifying a file end to end ([`verify`]) and seeding a node of a new cluster from one ([`restore`]).
//!
//! A backup is one engine image (the chunk stream the leader also sends lagging followers, taken at
//! one RocksDB snapshot) inside a file with a header (cluster, node, applied index and ts, membership,
//! time) and a trailer whose SHA-256 covers the whole file. Knows the engine and raft-node's seeding
//! function; nothing of HTTP or clap.

pub mod format;
mod restore;

use std::io::Read;

use engine::{Engine, SnapshotMeta};

pub use format::{BackupHeader, BackupMember, BackupReader, BackupWriter, FormatError, Trailer};
pub use restore::{restore, RestoreError, RestoreTarget};

/// Why a backup file is refused. Nothing was created or changed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Format(#[from] FormatError),
    /// The image inside the file fails the engine's own checks (chunk CRC, order, record hash).
    #[error("the backup file is corrupt: its image fails its checks: {0}")]
    Image(engine::Error),
    #[error(
        "the backup file is corrupt: its header says applied index {header_index} (ts {header_ts}), \
         its image holds {image_index} (ts {image_ts})"
    )]
    Mismatch {
        header_index: u64,
        header_ts: u64,
        image_index: u64,
        image_ts: u64,
    },
}

/// A backup file that checked out end to end.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: BackupHeader,
    /// The image's own summary: records, chunks and the SHA-256 over its records — the state's content
    /// hash, which `kvs-raft check` prints as `content_sha256` for a node holding exactly this state.
    pub image: SnapshotMeta,
    pub trailer: Trailer,
}

/// Read a whole backup from `input` and check everything: magic, version, header, every frame, the
/// engine image (chunk CRCs, key order, record count and hash), the header against the image, the
/// trailer's counts and the file's SHA-256, and that nothing follows. One chunk in memory at a time.
pub fn verify(input: impl Read) -> Result<Verified, BackupError> {
    let (mut reader, header) = BackupReader::open(input)?;
    let image = match engine::verify_image(&mut reader) {
        Ok(image) => image,
        // A framing error ended the stream early: that is the cause, not the engine's "truncated".
        Err(e) => {
            return Err(reader
                .take_error()
                .map_or(BackupError::Image(e), Into::into))
        }
    };
    let trailer = reader.finish()?;
    check_header(&header, &image)?;
    Ok(Verified {
        header,
        image,
        trailer,
    })
}

/// The header must describe the image it carries.
fn check_header(header: &BackupHeader, image: &SnapshotMeta) -> Result<(), BackupError> {
    if header.applied_index != image.applied.index || header.applied_ts != image.applied.ts {
        return Err(BackupError::Mismatch {
            header_index: header.applied_index,
            header_ts: header.applied_ts,
            image_index: image.applied.index,
            image_ts: image.applied.ts,
        });
    }
    Ok(())
}

/// Why producing a backup stopped.
#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    /// The receiver went away (the download was dropped): the producer stopped.
    #[error("the download was dropped")]
    Dropped,
    #[error("engine: {0}")]
    Engine(#[from] engine::Error),
    #[error(transparent)]
    Format(#[from] FormatError),
}

/// Stream a backup of `engine` to `sink`, piece by piece (the sink blocks for flow control; an `Err`
/// from it stops everything): the file header — made by `header` from the image's applied index and
/// ts, once the image's RocksDB snapshot is taken — then each engine chunk with its frame prefix, then
/// the trailer. Holds one chunk at a time. Returns the image's summary.
pub fn produce(
    engine: &Engine,
    header: impl FnOnce(engine::Applied) -> BackupHeader,
    sink: &mut dyn FnMut(Vec<u8>) -> Result<(), ProduceError>,
) -> Result<SnapshotMeta, ProduceError> {
    let mut header = Some(header);
    let mut writer: Option<BackupWriter> = None;
    let mut failure: Option<ProduceError> = None;
    let mut emit = |chunk: Vec<u8>| -> Result<(), ProduceError> {
        if writer.is_none() {
            let applied = engine::image_applied(&chunk)?;
            let make = header.take().ok_or(ProduceError::Dropped)?;
            let (w, first) = BackupWriter::start(&make(applied))?;
            writer = Some(w);
            sink(first)?;
        }
        let w = writer.as_mut().ok_or(ProduceError::Dropped)?;
        let prefix = w.frame(&chunk)?;
        sink(prefix.to_vec())?;
        sink(chunk)
    };
    let meta = engine.write_snapshot(&mut |chunk| {
        emit(chunk).map_err(|e| {
            let message = e.to_string();
            failure = Some(e);
            engine::Error::Storage(message)
        })
    });
    let meta = match (meta, failure) {
        (Ok(meta), _) => meta,
        (Err(_), Some(cause)) => return Err(cause),
        (Err(e), None) => return Err(e.into()),
    };
    let writer = writer.ok_or_else(|| {
        ProduceError::Format(FormatError::Corrupt("the image had no chunk".into()))
    })?;
    sink(writer.finish())?;
    Ok(meta)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use engine::{EngineConfig, ManualClock, Op};

    use super::*;

    fn header(applied: engine::Applied) -> BackupHeader {
        BackupHeader {
            cluster_id: "site-a".into(),
            node_id: 1,
            applied_index: applied.index,
            applied_ts: applied.ts,
            created_micros: 5,
            voters: vec![1],
            learners: vec![],
            members: vec![],
            membership_index: 1,
            writer: "test".into(),
        }
    }

    fn engine_with_data(dir: &std::path::Path) -> Engine {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let engine = Engine::open(dir, EngineConfig::tiny(clock)).unwrap();
        for i in 0..20u64 {
            let ops: Vec<Op> = (0..50)
                .map(|k| Op::put(format!("e{}/k{k}", k % 4), format!("v{i}")))
                .collect();
            engine.apply(i + 1, 1_000_000 + i, &ops, false).unwrap();
        }
        engine
    }

    #[test]
    fn a_produced_backup_verifies_and_a_bad_one_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with_data(dir.path());
        let mut file = Vec::new();
        let meta = produce(&engine, header, &mut |piece| {
            file.extend_from_slice(&piece);
            Ok(())
        })
        .unwrap();
        let verified = verify(&file[..]).unwrap();
        assert_eq!(verified.image, meta);
        assert_eq!(verified.header.applied_index, 20);
        assert_eq!(
            verified.image.sha256,
            engine.verify().unwrap().content_sha256
        );

        let mut flipped = file.clone();
        let mid = flipped.len() / 2;
        flipped[mid] ^= 0x01;
        assert!(verify(&flipped[..]).is_err());
        let truncated = &file[..file.len() - 100];
        let err = verify(truncated).unwrap_err().to_string();
        assert!(
            err.contains("truncated") || err.contains("corrupt"),
            "{err}"
        );
    }

    #[test]
    fn a_dropped_download_stops_the_producer() {
        let dir = tempfile::tempdir().unwrap();
        let engine = engine_with_data(dir.path());
        let mut pieces = 0;
        let result = produce(&engine, header, &mut |_| {
            pieces += 1;
            if pieces == 3 {
                Err(ProduceError::Dropped)
            } else {
                Ok(())
            }
        });
        assert!(matches!(result, Err(ProduceError::Dropped)), "{result:?}");
        assert_eq!(pieces, 3);
    }
}
