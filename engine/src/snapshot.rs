//! The snapshot stream format. Pure framing; `engine` reads the state into it and installs it.
//!
//! A snapshot is a sequence of chunks, each self-checking:
//! `"KVSC" | version u8 | seq u32 | kind u8 | len u32 | payload | crc32 u32` (integers big-endian, the crc
//! covers everything before it). Chunk 0 is the header (applied index and ts), then record chunks
//! (`klen u32 | key | vlen u32 | value` repeated, keys strictly increasing), then one end chunk with the
//! record count and the SHA-256 of every record. A receiver rejects the stream on any gap, reorder, bad
//! crc, unsorted key or hash mismatch, before anything is installed.

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::values::Applied;

const MAGIC: &[u8; 4] = b"KVSC";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 4 + 1 + 4 + 1 + 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkKind {
    Header = 0,
    Records = 1,
    End = 2,
}

/// Summary of a produced or installed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMeta {
    pub applied: Applied,
    pub records: u64,
    pub chunks: u32,
    pub bytes: u64,
    pub sha256: [u8; 32],
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadSnapshot(msg.into())
}

pub fn encode_chunk(seq: u32, kind: ChunkKind, payload: &[u8]) -> Result<Vec<u8>, Error> {
    let len = u32::try_from(payload.len()).map_err(|_| bad("chunk too large"))?;
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len() + 4);
    out.extend_from_slice(MAGIC);
    out.push(VERSION);
    out.extend_from_slice(&seq.to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// Check a chunk's framing and crc; returns its seq, kind and payload.
pub fn decode_chunk(chunk: &[u8]) -> Result<(u32, ChunkKind, &[u8]), Error> {
    if chunk.len() < HEADER_LEN + 4 || &chunk[..4] != MAGIC {
        return Err(bad("not a snapshot chunk"));
    }
    if chunk[4] != VERSION {
        return Err(bad(format!("unknown snapshot format version {}", chunk[4])));
    }
    let len = be_u32(&chunk[10..14]) as usize;
    if chunk.len() != HEADER_LEN + len + 4 {
        return Err(bad("chunk length mismatch (truncated?)"));
    }
    let body_end = HEADER_LEN + len;
    if crc32fast::hash(&chunk[..body_end]) != be_u32(&chunk[body_end..]) {
        return Err(bad("chunk checksum mismatch"));
    }
    let kind = match chunk[9] {
        0 => ChunkKind::Header,
        1 => ChunkKind::Records,
        2 => ChunkKind::End,
        k => return Err(bad(format!("unknown chunk kind {k}"))),
    };
    Ok((be_u32(&chunk[5..9]), kind, &chunk[HEADER_LEN..body_end]))
}

pub fn header_payload(applied: Applied) -> Vec<u8> {
    crate::values::encode_applied(applied)
}

pub fn parse_header(payload: &[u8]) -> Result<Applied, Error> {
    crate::values::decode_applied(payload).map_err(|_| bad("bad header chunk"))
}

pub fn end_payload(records: u64, sha256: &[u8; 32]) -> Vec<u8> {
    let mut out = records.to_be_bytes().to_vec();
    out.extend_from_slice(sha256);
    out
}

pub fn parse_end(payload: &[u8]) -> Result<(u64, [u8; 32]), Error> {
    if payload.len() != 40 {
        return Err(bad("bad end chunk"));
    }
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&payload[8..]);
    Ok((be_u64(payload), hash))
}

/// Running hash over records in stream order: the snapshot's integrity check and the state's content hash.
#[derive(Default)]
pub struct RecordHasher {
    sha: Sha256,
    pub records: u64,
}

impl RecordHasher {
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        for part in [key, value] {
            self.sha.update((part.len() as u64).to_be_bytes());
            self.sha.update(part);
        }
        self.records += 1;
    }

    pub fn finish(self) -> [u8; 32] {
        self.sha.finalize().into()
    }
}

pub fn push_record(payload: &mut Vec<u8>, key: &[u8], value: &[u8]) -> Result<(), Error> {
    for part in [key, value] {
        let len = u32::try_from(part.len()).map_err(|_| bad("record too large"))?;
        payload.extend_from_slice(&len.to_be_bytes());
        payload.extend_from_slice(part);
    }
    Ok(())
}

/// One record of a snapshot: a key and its value, borrowed from the payload.
pub type Record<'a> = (&'a [u8], &'a [u8]);

/// Split a records payload into `(key, value)` pairs.
pub fn parse_records(mut payload: &[u8]) -> Result<Vec<Record<'_>>, Error> {
    let mut out = Vec::new();
    let take = |p: &mut &[u8]| -> Result<usize, Error> {
        if p.len() < 4 {
            return Err(bad("truncated record"));
        }
        let n = be_u32(p) as usize;
        *p = &p[4..];
        if p.len() < n {
            return Err(bad("truncated record"));
        }
        Ok(n)
    };
    while !payload.is_empty() {
        let klen = take(&mut payload)?;
        let key = &payload[..klen];
        payload = &payload[klen..];
        let vlen = take(&mut payload)?;
        let value = &payload[..vlen];
        payload = &payload[vlen..];
        out.push((key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_roundtrip_and_every_corruption_is_caught() {
        let chunk = encode_chunk(7, ChunkKind::Records, b"payload").unwrap();
        assert_eq!(
            decode_chunk(&chunk).unwrap(),
            (7, ChunkKind::Records, &b"payload"[..])
        );
        for i in 0..chunk.len() {
            let mut c = chunk.clone();
            c[i] ^= 0x40;
            assert!(decode_chunk(&c).is_err(), "flipped byte {i} not detected");
        }
        assert!(decode_chunk(&chunk[..chunk.len() - 1]).is_err());
        assert!(decode_chunk(b"").is_err());
    }

    #[test]
    fn records_roundtrip_and_truncation() {
        let mut p = Vec::new();
        push_record(&mut p, b"k1", b"v1").unwrap();
        push_record(&mut p, b"", b"").unwrap();
        assert_eq!(
            parse_records(&p).unwrap(),
            vec![(&b"k1"[..], &b"v1"[..]), (&b""[..], &b""[..])]
        );
        for cut in 1..p.len() {
            if cut != 12 {
                assert!(parse_records(&p[..cut]).is_err(), "cut at {cut}");
            }
        }
    }
}
