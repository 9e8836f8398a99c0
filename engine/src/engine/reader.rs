//! [`Reader`]: the read path against one consistent RocksDB snapshot — an entity's epoch at a ts, a key's
//! version at a ts, point reads and scans — and the apply planner's view of the latest state.

use crate::apply::{StateView, Version};
use crate::error::Error;
use crate::keys;
use crate::op::Versioned;
use crate::store::View;
use crate::values;

use super::{ScanPage, ScanRequest};

/// Reads against one consistent RocksDB snapshot.
pub(super) struct Reader<'a> {
    pub(super) view: View<'a>,
}

impl Reader<'_> {
    /// The epoch of `entity` in force at `at`: the newest epoch whose start ts is `<= at`.
    pub(super) fn epoch_at(&self, entity: &[u8], at: u64) -> Result<u64, Error> {
        let prefix = keys::epoch_prefix(entity);
        let mut cur = self.view.cursor(None);
        cur.seek_for_prev(&keys::epoch_key(entity, u64::MAX));
        while let Some((k, v)) = cur.entry()? {
            if !k.starts_with(&prefix) {
                break;
            }
            let (_, epoch) = keys::decode_epoch_key(k)?;
            if keys::decode_u64(v, "epoch start")? <= at {
                return Ok(epoch);
            }
            cur.prev();
        }
        Ok(0)
    }

    /// The newest version of `key` in `epoch` with ts `<= at`: `Some((None, ts))` is a tombstone.
    pub(super) fn version_at(
        &self,
        key: &[u8],
        epoch: u64,
        at: u64,
    ) -> Result<Option<Version>, Error> {
        let prefix = keys::version_prefix(key, epoch);
        let mut cur = self.view.cursor(keys::prefix_end(&prefix));
        cur.seek(&keys::seek_at(&prefix, at));
        match cur.entry()? {
            Some((k, v)) => {
                let ts = keys::decode_data_key(k)?.ts;
                Ok(Some((values::decode_version(v)?.map(<[u8]>::to_vec), ts)))
            }
            None => Ok(None),
        }
    }

    pub(super) fn get(&self, key: &[u8], at: u64) -> Result<Option<Versioned>, Error> {
        let epoch = match keys::entity_of(key) {
            Some(entity) => self.epoch_at(entity, at)?,
            None => 0,
        };
        Ok(match self.version_at(key, epoch, at)? {
            Some((Some(value), ts)) => Some(Versioned { value, ts, epoch }),
            _ => None,
        })
    }

    pub(super) fn scan(&self, req: &ScanRequest) -> Result<ScanPage, Error> {
        let mut items = Vec::new();
        let mut bytes = 0usize;
        let start_entity = keys::entity_of(&req.start);
        let mut cur = self.view.cursor(Some(vec![keys::DATA + 1]));
        let start_epoch = match start_entity {
            Some(e) => self.epoch_at(e, req.at)?,
            None => 0,
        };
        cur.seek(&keys::scan_start(&req.start, start_epoch));
        // The epoch in force at `at` for the entity block the cursor is in.
        let mut block: Option<(Vec<u8>, u64)> = None;
        while let Some((k, v)) = cur.entry()? {
            let dk = keys::decode_data_key(k)?;
            if dk.has_entity {
                let entity = keys::entity_of(&dk.user_key).unwrap_or_default();
                if block.as_ref().is_none_or(|(e, _)| e.as_slice() != entity) {
                    block = Some((entity.to_vec(), self.epoch_at(entity, req.at)?));
                }
                let visible = block.as_ref().map_or(0, |b| b.1);
                if dk.epoch < visible {
                    let mut target = keys::epoch_block(entity, visible);
                    if start_entity == Some(entity) {
                        target = target.max(keys::scan_start(&req.start, visible));
                    }
                    cur.seek(&target);
                    continue;
                }
                if dk.epoch > visible {
                    match keys::prefix_end(&keys::entity_block(entity)) {
                        Some(next) => cur.seek(&next),
                        None => break,
                    }
                    continue;
                }
            }
            if req.end.as_ref().is_some_and(|end| dk.user_key >= *end) {
                break;
            }
            if dk.user_key < req.start || dk.ts > req.at {
                cur.next();
                continue;
            }
            if let Some(value) = values::decode_version(v)? {
                if items.len() == req.limit || bytes >= req.max_bytes {
                    return Ok(ScanPage { items, more: true });
                }
                bytes = bytes.saturating_add(dk.user_key.len() + value.len());
                let versioned = Versioned {
                    value: value.to_vec(),
                    ts: dk.ts,
                    epoch: dk.epoch,
                };
                items.push((dk.user_key, versioned));
            }
            // Skip the older versions of this key.
            match keys::prefix_end(&k[..dk.prefix_len]) {
                Some(next) => cur.seek(&next),
                None => break,
            }
        }
        Ok(ScanPage { items, more: false })
    }
}

/// The apply-time view: the latest committed state.
impl StateView for Reader<'_> {
    fn current_epoch(&self, entity: &[u8]) -> Result<u64, Error> {
        self.epoch_at(entity, u64::MAX)
    }

    fn latest(&self, key: &[u8], epoch: u64) -> Result<Option<Version>, Error> {
        self.version_at(key, epoch, u64::MAX)
    }

    fn sync_cursor(&self) -> Result<u64, Error> {
        match self.view.get(keys::SYNCED_KEY)? {
            Some(raw) => keys::decode_u64(&raw, "sync cursor"),
            None => Ok(0),
        }
    }
}
