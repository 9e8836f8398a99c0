//! Physical key layout. Pure functions, no I/O.
//!
//! Everything lives in one RocksDB column family, split by a one-byte tag:
//!
//! | tag | key                                              | value                         |
//! |-----|--------------------------------------------------|-------------------------------|
//! | `d` | data: `esc(user key)` (see below) `!ts`          | `0x00` tombstone / `0x01`+val |
//! | `e` | epoch start: `esc(entity) 00 01 epoch`           | start ts                      |
//! | `x` | crossing: `esc(entity) 00 01 name`               | epoch, ts, data               |
//! | `g` | GC queue: `ts esc(entity) 00 01`                 | new epoch                     |
//! | `c` | change feed: `index` (big-endian u64)            | the entry's changes (codec)   |
//! | `m` | metadata (applied index, format)                 |                               |
//! | `z` | snapshot-install marker (outside the data range) |                               |
//!
//! A data key for a user key *without* an entity is `esc(key) 00 01 !ts`; for a key `E/S` of entity `E` it is
//! `esc(E) '/' epoch esc(S) 00 01 !ts`. `esc` maps byte `00` to `00 FF` and leaves every other byte alone, so
//! the encoding is order-preserving and prefix-free. Consequences the engine relies on:
//!
//! * Architecture invariant: encoded order equals user-key order *between* entities and plain keys, and within
//!   one (entity, epoch) block. Only different epochs of one entity interleave, and a scan reads one epoch.
//! * All versions of one entity epoch form one contiguous range, so an old epoch is reclaimed with one range
//!   deletion and a checkpoint never touches the entity's keys.
//! * Versions of one key sort newest first (`!ts` = `u64::MAX - ts`, big-endian).

use crate::error::Error;

pub const DATA: u8 = b'd';
pub const EPOCH: u8 = b'e';
pub const CROSSING: u8 = b'x';
pub const GC_QUEUE: u8 = b'g';
/// The change feed: one record per log entry that changed something, kept until synced.
pub const FEED: u8 = b'c';
pub const META: u8 = b'm';
/// Tag of the snapshot-install marker; must sort after every state tag (an install range-deletes `[0, z)`).
pub const MARKER: u8 = b'z';

pub const APPLIED_KEY: &[u8] = b"mapplied";
/// The GC safepoint: reads below it were refused and the data they needed may be gone.
pub const SAFEPOINT_KEY: &[u8] = b"msafepoint";
/// The replicated sync cursor: every change of entries up to it has reached the central store.
pub const SYNCED_KEY: &[u8] = b"msynced";
pub const INSTALL_MARKER_KEY: &[u8] = b"zinstall";

const SLASH: u8 = b'/';

/// The entity of a user key: the bytes before its first `/`, if that is not the first byte.
pub fn entity_of(key: &[u8]) -> Option<&[u8]> {
    match key.iter().position(|&b| b == SLASH) {
        Some(0) | None => None,
        Some(i) => Some(&key[..i]),
    }
}

fn push_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    for &b in bytes {
        out.push(b);
        if b == 0 {
            out.push(0xFF);
        }
    }
}

fn push_terminated(out: &mut Vec<u8>, bytes: &[u8]) {
    push_escaped(out, bytes);
    out.extend_from_slice(&[0x00, 0x01]);
}

/// Encoded user key without the timestamp: the prefix shared by all versions of `key` in `epoch`.
/// For a key with no entity `epoch` is ignored.
pub fn version_prefix(key: &[u8], epoch: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 20);
    out.push(DATA);
    match entity_of(key) {
        None => push_terminated(&mut out, key),
        Some(entity) => {
            push_escaped(&mut out, entity);
            out.push(SLASH);
            out.extend_from_slice(&epoch.to_be_bytes());
            push_terminated(&mut out, &key[entity.len() + 1..]);
        }
    }
    out
}

pub fn data_key(key: &[u8], epoch: u64, ts: u64) -> Vec<u8> {
    let mut out = version_prefix(key, epoch);
    out.extend_from_slice(&(u64::MAX - ts).to_be_bytes());
    out
}

/// Where a read at `at` of versions sharing `prefix` starts: the newest version with `ts <= at`.
pub fn seek_at(prefix: &[u8], at: u64) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend_from_slice(&(u64::MAX - at).to_be_bytes());
    out
}

/// `d esc(entity) '/'`: every data key of the entity, all epochs, starts with this.
pub fn entity_block(entity: &[u8]) -> Vec<u8> {
    let mut out = vec![DATA];
    push_escaped(&mut out, entity);
    out.push(SLASH);
    out
}

/// `d esc(entity) '/' epoch`: start of one epoch's block.
pub fn epoch_block(entity: &[u8], epoch: u64) -> Vec<u8> {
    let mut out = entity_block(entity);
    out.extend_from_slice(&epoch.to_be_bytes());
    out
}

/// The change-feed record of log entry `index`; feed keys sort in log order.
pub fn feed_key(index: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(9);
    out.push(FEED);
    out.extend_from_slice(&index.to_be_bytes());
    out
}

/// The log index of a change-feed key.
pub fn decode_feed_key(enc: &[u8]) -> Result<u64, Error> {
    match enc.split_first() {
        Some((&FEED, rest)) => read_u64(rest)
            .filter(|_| rest.len() == 8)
            .ok_or_else(|| corrupt("change-feed key", enc)),
        _ => Err(corrupt("change-feed key", enc)),
    }
}

/// The first key after every key that starts with `prefix` (`None` if there is none, i.e. all `FF`).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Where a scan over user keys `>= key` starts, for a given epoch of `key`'s entity.
pub fn scan_start(key: &[u8], epoch: u64) -> Vec<u8> {
    let mut out = vec![DATA];
    match entity_of(key) {
        None => push_escaped(&mut out, key),
        Some(entity) => {
            push_escaped(&mut out, entity);
            out.push(SLASH);
            out.extend_from_slice(&epoch.to_be_bytes());
            push_escaped(&mut out, &key[entity.len() + 1..]);
        }
    }
    out
}

fn entity_meta_prefix(tag: u8, entity: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_terminated(&mut out, entity);
    out
}

pub fn epoch_prefix(entity: &[u8]) -> Vec<u8> {
    entity_meta_prefix(EPOCH, entity)
}

pub fn epoch_key(entity: &[u8], epoch: u64) -> Vec<u8> {
    let mut out = epoch_prefix(entity);
    out.extend_from_slice(&epoch.to_be_bytes());
    out
}

pub fn crossing_prefix(entity: &[u8]) -> Vec<u8> {
    entity_meta_prefix(CROSSING, entity)
}

pub fn crossing_key(entity: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = crossing_prefix(entity);
    out.extend_from_slice(name);
    out
}

pub fn gc_queue_key(ts: u64, entity: &[u8]) -> Vec<u8> {
    let mut out = vec![GC_QUEUE];
    out.extend_from_slice(&ts.to_be_bytes());
    push_terminated(&mut out, entity);
    out
}

/// A decoded data key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataKey {
    pub user_key: Vec<u8>,
    /// The entity epoch the version belongs to (0 for keys without an entity).
    pub epoch: u64,
    pub has_entity: bool,
    pub ts: u64,
    /// Length of the version prefix (everything but the timestamp) in the encoded key.
    pub prefix_len: usize,
}

fn corrupt(what: &str, key: &[u8]) -> Error {
    Error::Corruption {
        at: format!("{what} key {}", hex(key)),
        detail: "undecodable key".into(),
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn read_u64(bytes: &[u8]) -> Option<u64> {
    let arr: [u8; 8] = bytes.get(..8)?.try_into().ok()?;
    Some(u64::from_be_bytes(arr))
}

/// Unescape from `pos` up to the `00 01` terminator (or, if `stop_at_slash`, a first `/` not at position 0).
/// Returns the bytes, the position after the stop, and whether a slash stopped it.
fn unescape(enc: &[u8], mut pos: usize, stop_at_slash: bool) -> Option<(Vec<u8>, usize, bool)> {
    let mut out = Vec::new();
    loop {
        let b = *enc.get(pos)?;
        if b == 0 {
            match *enc.get(pos + 1)? {
                0xFF => out.push(0),
                0x01 => return Some((out, pos + 2, false)),
                _ => return None,
            }
            pos += 2;
        } else if b == SLASH && stop_at_slash && !out.is_empty() {
            return Some((out, pos + 1, true));
        } else {
            out.push(b);
            pos += 1;
        }
    }
}

pub fn decode_data_key(enc: &[u8]) -> Result<DataKey, Error> {
    if enc.first() != Some(&DATA) {
        return Err(corrupt("data", enc));
    }
    let (head, mut pos, is_entity) = unescape(enc, 1, true).ok_or_else(|| corrupt("data", enc))?;
    let (user_key, epoch) = if is_entity {
        let epoch = read_u64(&enc[pos..]).ok_or_else(|| corrupt("data", enc))?;
        let (suffix, next, _) =
            unescape(enc, pos + 8, false).ok_or_else(|| corrupt("data", enc))?;
        pos = next;
        let mut key = head;
        key.push(SLASH);
        key.extend_from_slice(&suffix);
        (key, epoch)
    } else {
        (head, 0)
    };
    let inv = read_u64(&enc[pos..]).ok_or_else(|| corrupt("data", enc))?;
    if enc.len() != pos + 8 {
        return Err(corrupt("data", enc));
    }
    Ok(DataKey {
        user_key,
        epoch,
        has_entity: is_entity,
        ts: u64::MAX - inv,
        prefix_len: pos,
    })
}

/// Decode `tag esc(entity) 00 01 rest` into (entity, rest).
pub fn decode_entity_meta(tag: u8, enc: &[u8]) -> Result<(Vec<u8>, &[u8]), Error> {
    if enc.first() != Some(&tag) {
        return Err(corrupt("metadata", enc));
    }
    let (entity, pos, _) = unescape(enc, 1, false).ok_or_else(|| corrupt("metadata", enc))?;
    Ok((entity, &enc[pos..]))
}

pub fn decode_epoch_key(enc: &[u8]) -> Result<(Vec<u8>, u64), Error> {
    let (entity, rest) = decode_entity_meta(EPOCH, enc)?;
    match (rest.len(), read_u64(rest)) {
        (8, Some(epoch)) => Ok((entity, epoch)),
        _ => Err(corrupt("epoch", enc)),
    }
}

pub fn decode_gc_queue_key(enc: &[u8]) -> Result<(u64, Vec<u8>), Error> {
    let ts = enc
        .get(1..9)
        .and_then(read_u64)
        .filter(|_| enc[0] == GC_QUEUE)
        .ok_or_else(|| corrupt("gc", enc))?;
    let (entity, pos, _) = unescape(enc, 9, false).ok_or_else(|| corrupt("gc", enc))?;
    if pos != enc.len() {
        return Err(corrupt("gc", enc));
    }
    Ok((ts, entity))
}

pub fn decode_u64(bytes: &[u8], what: &str) -> Result<u64, Error> {
    match (bytes.len(), read_u64(bytes)) {
        (8, Some(v)) => Ok(v),
        _ => Err(Error::Corruption {
            at: what.into(),
            detail: format!("expected 8 bytes, got {}", bytes.len()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_split() {
        assert_eq!(entity_of(b"player:42/pos"), Some(&b"player:42"[..]));
        assert_eq!(entity_of(b"a/b/c"), Some(&b"a"[..]));
        assert_eq!(entity_of(b"plain"), None);
        assert_eq!(entity_of(b"/leading"), None);
    }

    #[test]
    fn data_keys_roundtrip() {
        for key in [
            &b"a"[..],
            b"a\0b",
            b"p/x",
            b"p/\0/y",
            b"/z",
            b"\0\0/\0",
            b"p/",
        ] {
            for (epoch, ts) in [(0u64, 0u64), (3, 17), (u64::MAX, u64::MAX)] {
                let d = decode_data_key(&data_key(key, epoch, ts)).unwrap();
                assert_eq!(d.user_key, key);
                assert_eq!(d.ts, ts);
                assert_eq!(d.epoch, if entity_of(key).is_some() { epoch } else { 0 });
                assert_eq!(d.prefix_len, version_prefix(key, epoch).len());
            }
        }
    }

    #[test]
    fn order_matches_user_key_order_within_an_epoch() {
        let mut keys: Vec<&[u8]> = vec![
            b"a", b"a\0", b"a-b", b"a/", b"a/x", b"a/x\0", b"a/y", b"a0", b"ab", b"b", b"\0",
            b"/a", b"a\0/q",
        ];
        keys.sort();
        let enc: Vec<Vec<u8>> = keys.iter().map(|k| data_key(k, 7, 5)).collect();
        let mut sorted = enc.clone();
        sorted.sort();
        assert_eq!(enc, sorted);
    }

    #[test]
    fn versions_sort_newest_first_and_seek_lands_on_newest_visible() {
        let (k1, k2) = (data_key(b"k", 0, 10), data_key(b"k", 0, 20));
        assert!(k2 < k1);
        let s = seek_at(&version_prefix(b"k", 0), 15);
        assert!(k2 < s && s <= k1);
    }

    #[test]
    fn garbage_keys_are_errors_not_panics() {
        for bad in [
            &b""[..],
            b"d",
            b"d\0",
            b"d\0\x05",
            b"dabc\0\x01",
            b"da/\x01",
            b"x",
        ] {
            assert!(decode_data_key(bad).is_err(), "{bad:?}");
        }
        assert!(decode_epoch_key(b"eab\0\x01\x01").is_err());
        assert!(decode_gc_queue_key(b"g12").is_err());
    }

    #[test]
    fn prefix_end_increments() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(&[1, 0xFF]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xFF]), None);
    }
}
