//! The offline consistency check of an [`Engine`] (`kvs-raft check`).

use crate::error::Error;
use crate::keys;
use crate::snapshot::RecordHasher;
use crate::values::{self, Applied};

use super::{Engine, FORMAT_KEY};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub applied: Applied,
    pub data_entries: u64,
    pub entities_with_epochs: u64,
    pub crossings: u64,
    pub gc_queue: u64,
    pub content_sha256: [u8; 32],
}

impl Engine {
    /// Offline consistency check: every key and value decodes, no entity has data in an epoch it has not
    /// reached, crossings match epochs, no install is half done. Returns counts and the content hash.
    pub fn verify(&self) -> Result<VerifyReport, Error> {
        let reader = self.reader();
        let applied = self.load_applied()?;
        let mut report = VerifyReport {
            applied,
            data_entries: 0,
            entities_with_epochs: 0,
            crossings: 0,
            gc_queue: 0,
            content_sha256: [0; 32],
        };
        let mut hasher = RecordHasher::default();
        let mut cur = reader.view.cursor(None);
        cur.seek(&[]);
        let mut last_epoch_entity: Option<Vec<u8>> = None;
        while let Some((k, v)) = cur.entry()? {
            let corrupt = |detail: String| Error::Corruption {
                at: format!("key {}", keys::hex(k)),
                detail,
            };
            match k.first().copied() {
                Some(keys::DATA) => {
                    let dk = keys::decode_data_key(k)?;
                    values::decode_version(v)?;
                    if dk.ts > applied.ts {
                        return Err(corrupt(format!(
                            "version ts {} above applied ts {}",
                            dk.ts, applied.ts
                        )));
                    }
                    if let Some(entity) = keys::entity_of(&dk.user_key) {
                        let current = reader.epoch_at(entity, u64::MAX)?;
                        if dk.epoch > current {
                            return Err(corrupt(format!(
                                "data in epoch {} above current {current}",
                                dk.epoch
                            )));
                        }
                    }
                    report.data_entries += 1;
                }
                Some(keys::EPOCH) => {
                    let (entity, _) = keys::decode_epoch_key(k)?;
                    if keys::decode_u64(v, "epoch start")? > applied.ts {
                        return Err(corrupt("epoch starts after the applied ts".into()));
                    }
                    if last_epoch_entity.as_ref() != Some(&entity) {
                        report.entities_with_epochs += 1;
                        last_epoch_entity = Some(entity);
                    }
                }
                Some(keys::CROSSING) => {
                    let (entity, _) = keys::decode_entity_meta(keys::CROSSING, k)?;
                    let crossing = values::decode_crossing(v)?;
                    if crossing.epoch > reader.epoch_at(&entity, u64::MAX)? {
                        return Err(corrupt("crossing epoch above the entity's epoch".into()));
                    }
                    report.crossings += 1;
                }
                Some(keys::GC_QUEUE) => {
                    keys::decode_gc_queue_key(k)?;
                    keys::decode_u64(v, "gc queue epoch")?;
                    report.gc_queue += 1;
                }
                Some(keys::META) if k == keys::SAFEPOINT_KEY => {
                    keys::decode_u64(v, "gc safepoint")?;
                }
                Some(keys::META) if k == keys::SYNCED_KEY => {
                    keys::decode_u64(v, "sync cursor")?;
                }
                Some(keys::FEED) => {
                    let index = keys::decode_feed_key(k)?;
                    crate::codec::decode_changes(v).map_err(|e| {
                        corrupt(format!("change-feed record of entry {index}: {e}"))
                    })?;
                }
                Some(keys::META) if k == keys::APPLIED_KEY || k == FORMAT_KEY => {}
                Some(keys::MARKER) => {
                    return Err(corrupt("a snapshot install is half done".into()))
                }
                _ => return Err(corrupt("unknown key".into())),
            }
            hasher.add(k, v);
            cur.next();
        }
        report.content_sha256 = hasher.finish();
        Ok(report)
    }
}
