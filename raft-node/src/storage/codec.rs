//! The on-disk layout of the Raft log store: keys and value encodings. Pure: no I/O.
//!
//! One RocksDB keyspace, split by a tag byte:
//!
//! | key                         | value                                              |
//! | --------------------------- | -------------------------------------------------- |
//! | `0x01 "cluster_id"`         | the cluster id, UTF-8                              |
//! | `0x01 "node_id"`            | this node's id, u64 BE (recorded on first start)   |
//! | `0x01 "hard_state"`         | prost `HardState`                                  |
//! | `0x01 "conf_state"`         | prost `ConfState`                                  |
//! | `0x01 "membership"`         | [`crate::membership::Membership`] encoding (addresses, removed ids) |
//! | `0x01 "snapshot"`           | prost `SnapshotMetadata` of the last applied snapshot |
//! | `0x01 "truncated"`          | index and term of the last dropped entry, 2 × u64 BE |
//! | `0x02 index(u64 BE)`        | prost `Entry` (its `index` equals the key's)       |
//!
//! Big-endian index keys sort in log order, so a range of the log is a range of keys. Every decoder
//! returns [`Error::Corruption`] on bad bytes; nothing here panics on data from disk.

use prost::Message;
use raft::prelude::Entry;

use super::log_state::Boundary;
use crate::error::Error;

const META_TAG: u8 = 0x01;
const ENTRY_TAG: u8 = 0x02;

pub(super) const CLUSTER_ID_KEY: &[u8] = b"\x01cluster_id";
pub(super) const NODE_ID_KEY: &[u8] = b"\x01node_id";
pub(super) const HARD_STATE_KEY: &[u8] = b"\x01hard_state";
pub(super) const CONF_STATE_KEY: &[u8] = b"\x01conf_state";
pub(super) const MEMBERSHIP_KEY: &[u8] = b"\x01membership";
pub(super) const SNAPSHOT_KEY: &[u8] = b"\x01snapshot";
pub(super) const TRUNCATED_KEY: &[u8] = b"\x01truncated";

/// Exclusive upper bound of every entry key.
pub(super) const ENTRIES_END: &[u8] = &[ENTRY_TAG + 1];

const ENTRY_KEY_LEN: usize = 9;

// The tag bytes keep metadata keys out of the entry range.
const _: () = assert!(META_TAG < ENTRY_TAG);

/// The key of entry `index`.
pub(super) fn entry_key(index: u64) -> [u8; ENTRY_KEY_LEN] {
    let mut key = [0; ENTRY_KEY_LEN];
    key[0] = ENTRY_TAG;
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Whether `key` lies in the entry range (its tag byte; [`decode_entry_key`] checks the rest).
pub(super) fn is_entry_key(key: &[u8]) -> bool {
    key.first() == Some(&ENTRY_TAG)
}

/// The index an entry key names.
pub(super) fn decode_entry_key(key: &[u8]) -> Result<u64, Error> {
    match key {
        [ENTRY_TAG, rest @ ..] => match <[u8; 8]>::try_from(rest) {
            Ok(be) => Ok(u64::from_be_bytes(be)),
            Err(_) => Err(corruption(key, "entry key is not 9 bytes")),
        },
        _ => Err(corruption(key, "not an entry key")),
    }
}

/// Decode the entry stored under `key`, checking that it is the entry the key names.
pub(super) fn decode_entry(key: &[u8], value: &[u8]) -> Result<Entry, Error> {
    let index = decode_entry_key(key)?;
    let entry: Entry = decode_message(key, value)?;
    if entry.index != index {
        return Err(corruption(
            key,
            &format!("entry under key {index} carries index {}", entry.index),
        ));
    }
    Ok(entry)
}

/// Decode a prost message stored under `key`.
pub(super) fn decode_message<M: Message + Default>(key: &[u8], value: &[u8]) -> Result<M, Error> {
    M::decode(value).map_err(|e| corruption(key, &e.to_string()))
}

/// Encode a prost message.
pub(super) fn encode_message<M: Message>(m: &M) -> Vec<u8> {
    m.encode_to_vec()
}

/// Encode the truncation boundary.
pub(super) fn encode_boundary(b: Boundary) -> [u8; 16] {
    let mut v = [0; 16];
    v[..8].copy_from_slice(&b.index.to_be_bytes());
    v[8..].copy_from_slice(&b.term.to_be_bytes());
    v
}

/// Decode the truncation boundary.
pub(super) fn decode_boundary(value: &[u8]) -> Result<Boundary, Error> {
    let bytes = <[u8; 16]>::try_from(value)
        .map_err(|_| corruption(TRUNCATED_KEY, "truncation boundary is not 16 bytes"))?;
    let (index, term) = bytes.split_at(8);
    let word = |b: &[u8]| {
        <[u8; 8]>::try_from(b)
            .map(u64::from_be_bytes)
            .map_err(|_| corruption(TRUNCATED_KEY, "bad truncation boundary"))
    };
    Ok(Boundary {
        index: word(index)?,
        term: word(term)?,
    })
}

/// Decode the cluster id.
pub(super) fn decode_cluster_id(value: &[u8]) -> Result<String, Error> {
    String::from_utf8(value.to_vec()).map_err(|e| corruption(CLUSTER_ID_KEY, &e.to_string()))
}

/// Decode the node id.
pub(super) fn decode_node_id(value: &[u8]) -> Result<u64, Error> {
    <[u8; 8]>::try_from(value)
        .map(u64::from_be_bytes)
        .map_err(|_| corruption(NODE_ID_KEY, "node id is not 8 bytes"))
}

/// A [`Error::Corruption`] at `key`, rendered readably (`entry 42`, `hard_state`, or hex).
pub(super) fn corruption(key: &[u8], detail: &str) -> Error {
    Error::Corruption {
        at: describe_key(key),
        detail: detail.to_string(),
    }
}

fn describe_key(key: &[u8]) -> String {
    match key {
        [ENTRY_TAG, rest @ ..] if rest.len() == 8 => match <[u8; 8]>::try_from(rest) {
            Ok(be) => format!("raft log entry {}", u64::from_be_bytes(be)),
            Err(_) => hex(key),
        },
        [META_TAG, name @ ..] => match std::str::from_utf8(name) {
            Ok(name) => format!("raft log {name}"),
            Err(_) => hex(key),
        },
        _ => hex(key),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_keys_sort_in_log_order_and_round_trip() {
        let indices = [0u64, 1, 255, 256, 1 << 32, u64::MAX - 1];
        for w in indices.windows(2) {
            assert!(entry_key(w[0]) < entry_key(w[1]));
        }
        for i in indices {
            assert_eq!(decode_entry_key(&entry_key(i)).ok(), Some(i));
            assert!(entry_key(i).as_slice() < ENTRIES_END);
        }
        for meta in [
            CLUSTER_ID_KEY,
            NODE_ID_KEY,
            HARD_STATE_KEY,
            CONF_STATE_KEY,
            SNAPSHOT_KEY,
            TRUNCATED_KEY,
        ] {
            assert!(meta < entry_key(0).as_slice());
        }
    }

    #[test]
    fn bad_keys_and_values_are_corruption_not_panics() {
        assert!(matches!(
            decode_entry_key(&[ENTRY_TAG, 1, 2]),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            decode_entry_key(HARD_STATE_KEY),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            decode_entry(&entry_key(3), &[0xff, 0xff, 0xff]),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            decode_boundary(&[1, 2, 3]),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            decode_cluster_id(&[0xc3, 0x28]),
            Err(Error::Corruption { .. })
        ));
        assert!(matches!(
            decode_node_id(&[1, 2, 3]),
            Err(Error::Corruption { .. })
        ));
        assert_eq!(decode_node_id(&7u64.to_be_bytes()).ok(), Some(7));
    }

    #[test]
    fn an_entry_under_the_wrong_key_is_corruption() {
        let entry = Entry {
            index: 7,
            term: 2,
            ..Default::default()
        };
        let bytes = encode_message(&entry);
        assert_eq!(decode_entry(&entry_key(7), &bytes).ok(), Some(entry));
        match decode_entry(&entry_key(8), &bytes) {
            Err(Error::Corruption { at, .. }) => assert_eq!(at, "raft log entry 8"),
            other => panic!("expected corruption, got {other:?}"),
        }
    }

    #[test]
    fn boundary_round_trips() {
        let b = Boundary {
            index: 41,
            term: u64::MAX,
        };
        assert_eq!(decode_boundary(&encode_boundary(b)).ok(), Some(b));
    }
}
