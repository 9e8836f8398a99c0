//! The double's regions: one store, one or two regions (split at a configured key), each with one
//! peer that leads it. PD answers with memcomparable-encoded boundaries (what TiKV's transactional
//! API keeps in PD); the store checks requests against the raw ones.

use crate::mvcc::KeyRange;
use crate::proto::metapb;

/// The one store's id.
pub const STORE_ID: u64 = 1;

/// One region of the double.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    pub id: u64,
    pub range: KeyRange,
    pub peer_id: u64,
    pub version: u64,
    pub conf_ver: u64,
}

impl Region {
    pub fn peer(&self) -> metapb::Peer {
        metapb::Peer {
            id: self.peer_id,
            store_id: STORE_ID,
            ..Default::default()
        }
    }

    pub fn epoch(&self) -> metapb::RegionEpoch {
        metapb::RegionEpoch {
            conf_ver: self.conf_ver,
            version: self.version,
        }
    }

    /// The region as PD describes it: encoded boundaries.
    pub fn to_pd(&self) -> metapb::Region {
        metapb::Region {
            id: self.id,
            start_key: encode_bound(&self.range.start),
            end_key: encode_bound(&self.range.end),
            region_epoch: Some(self.epoch()),
            peers: vec![self.peer()],
            ..Default::default()
        }
    }
}

/// The region table (fixed for the double's life).
#[derive(Clone, Debug)]
pub struct Regions {
    regions: Vec<Region>,
}

impl Regions {
    /// One region over the whole keyspace, or two split at `split` (a raw key, not empty).
    pub fn new(split: Option<Vec<u8>>) -> Self {
        let region = |id: u64, start: Vec<u8>, end: Vec<u8>| Region {
            id,
            range: KeyRange { start, end },
            peer_id: 100 + id,
            version: 1,
            conf_ver: 1,
        };
        let regions = match split.filter(|s| !s.is_empty()) {
            None => vec![region(2, Vec::new(), Vec::new())],
            Some(split) => vec![
                region(2, Vec::new(), split.clone()),
                region(3, split, Vec::new()),
            ],
        };
        Self { regions }
    }

    pub fn all(&self) -> &[Region] {
        &self.regions
    }

    pub fn by_id(&self, id: u64) -> Option<&Region> {
        self.regions.iter().find(|r| r.id == id)
    }

    /// The region holding an *encoded* key, as PD's `GetRegion` is asked.
    pub fn by_encoded_key(&self, encoded: &[u8]) -> Option<&Region> {
        self.regions.iter().find(|r| {
            let start = encode_bound(&r.range.start);
            let end = encode_bound(&r.range.end);
            encoded >= start.as_slice() && (end.is_empty() || encoded < end.as_slice())
        })
    }
}

/// Memcomparable encoding of a region boundary; the empty (unbounded) key stays empty.
fn encode_bound(key: &[u8]) -> Vec<u8> {
    if key.is_empty() {
        Vec::new()
    } else {
        encode_bytes(key)
    }
}

/// TiKV's memcomparable bytes encoding (ascending): groups of 8 bytes, zero-padded, each followed
/// by `0xff - padding`. It preserves order, so encoded keys compare like raw ones.
pub fn encode_bytes(key: &[u8]) -> Vec<u8> {
    const GROUP: usize = 8;
    let mut out = Vec::with_capacity((key.len() / GROUP + 1) * (GROUP + 1));
    let mut chunks = key.chunks_exact(GROUP);
    for chunk in &mut chunks {
        out.extend_from_slice(chunk);
        out.push(0xff);
    }
    let rest = chunks.remainder();
    out.extend_from_slice(rest);
    let pad = GROUP - rest.len(); // 1..=8
    out.extend(std::iter::repeat_n(0u8, pad));
    out.push(0xff - u8::try_from(pad).unwrap_or(8));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_matches_tikv_and_keeps_order() {
        assert_eq!(encode_bytes(b""), vec![0, 0, 0, 0, 0, 0, 0, 0, 0xf7]);
        assert_eq!(
            encode_bytes(b"abc"),
            vec![b'a', b'b', b'c', 0, 0, 0, 0, 0, 0xfa]
        );
        let eight = encode_bytes(b"12345678");
        assert_eq!(eight.len(), 18);
        assert_eq!(eight[8], 0xff);
        let mut keys: Vec<&[u8]> = vec![b"", b"a", b"a\0", b"ab", b"abcdefgh", b"abcdefgh\0", b"b"];
        keys.sort();
        let encoded: Vec<Vec<u8>> = keys.iter().map(|k| encode_bytes(k)).collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted);
    }

    #[test]
    fn a_split_routes_encoded_keys_to_two_regions() {
        let regions = Regions::new(Some(b"m".to_vec()));
        assert_eq!(
            regions.by_encoded_key(&encode_bytes(b"a")).map(|r| r.id),
            Some(2)
        );
        assert_eq!(
            regions.by_encoded_key(&encode_bytes(b"m")).map(|r| r.id),
            Some(3)
        );
        assert_eq!(regions.by_encoded_key(b"").map(|r| r.id), Some(2));
        assert_eq!(Regions::new(None).all().len(), 1);
    }
}
