//! Length-delimited frames, each authenticated: `len u32 BE | payload | tag [32]`, with `len` (the payload's
//! length) bounded before anything is allocated, and `tag = HMAC-SHA256(direction key, seq u64 BE | len u32
//! BE | payload)`. `seq` counts the frames of one direction of one connection from 0 and is never sent: a
//! flipped bit, a replayed, dropped, reordered or injected frame fails the tag. The direction keys come from
//! the handshake ([`super::handshake`]); the hello itself is the one unauthenticated frame
//! ([`read_plain`]).

use std::io;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of the length prefix.
pub(crate) const HEADER: usize = 4;
/// Bytes of a frame's tag.
pub(crate) const TAG: usize = 32;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: u32, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("frame {seq} fails its authentication tag (altered, replayed, reordered or injected)")]
    BadTag { seq: u64 },
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// The peer sent something invalid (as opposed to the network failing).
    pub(crate) fn is_bad_input(&self) -> bool {
        !matches!(self, FrameError::Io(_))
    }
}

/// One direction's frame key and the number of frames tagged (or checked) with it so far.
pub(crate) struct FrameKey {
    mac: Hmac<Sha256>,
    seq: u64,
}

impl FrameKey {
    pub(crate) fn new(key: &[u8]) -> FrameKey {
        FrameKey {
            // HMAC takes keys of any length: `new_from_slice` cannot fail for it.
            mac: <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length"),
            seq: 0,
        }
    }

    fn mac(&self, header: &[u8; HEADER], parts: &[&[u8]]) -> Hmac<Sha256> {
        let mut mac = self.mac.clone();
        mac.update(&self.seq.to_be_bytes());
        mac.update(header);
        for part in parts {
            mac.update(part);
        }
        mac
    }

    /// The next frame's tag; advances the sequence.
    pub(crate) fn tag(&mut self, header: &[u8; HEADER], parts: &[&[u8]]) -> [u8; TAG] {
        let tag = self.mac(header, parts).finalize().into_bytes().into();
        self.seq += 1;
        tag
    }

    /// Check the next frame's tag (constant time); advances the sequence only when it holds.
    pub(crate) fn check(
        &mut self,
        header: &[u8; HEADER],
        payload: &[u8],
        tag: &[u8],
    ) -> Result<(), FrameError> {
        self.mac(header, &[payload])
            .verify_slice(tag)
            .map_err(|_| FrameError::BadTag { seq: self.seq })?;
        self.seq += 1;
        Ok(())
    }
}

/// The length prefix for a payload of `len` bytes, or `None` if it exceeds `max`.
pub(crate) fn header(len: usize, max: usize) -> Option<[u8; HEADER]> {
    if len > max {
        return None;
    }
    u32::try_from(len).ok().map(u32::to_be_bytes)
}

/// Append one authenticated frame holding the concatenated `parts`; `false` (nothing appended) if it
/// exceeds `max`.
pub(crate) fn seal_into(
    out: &mut Vec<u8>,
    key: &mut FrameKey,
    parts: &[&[u8]],
    max: usize,
) -> bool {
    let len = parts.iter().map(|p| p.len()).sum();
    let Some(header) = header(len, max) else {
        return false;
    };
    out.extend_from_slice(&header);
    for part in parts {
        out.extend_from_slice(part);
    }
    out.extend_from_slice(&key.tag(&header, parts));
    true
}

/// Read a length prefix and that many bytes into `buf` (replacing its contents). `Ok(None)`: the peer
/// closed cleanly before the first byte.
async fn read_body<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<Option<[u8; HEADER]>, FrameError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let len = u32::from_be_bytes(header);
    let size = match usize::try_from(len) {
        Ok(size) if size <= max => size,
        _ => return Err(FrameError::TooLarge { len, max }),
    };
    buf.clear();
    buf.resize(size, 0);
    read_exact(r, buf).await?;
    Ok(Some(header))
}

async fn read_exact<R: AsyncRead + Unpin>(r: &mut R, buf: &mut [u8]) -> Result<(), FrameError> {
    match r.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

/// Read one unauthenticated frame (the hello) into `buf`. `Ok(false)`: the peer closed cleanly between
/// frames.
pub(crate) async fn read_plain<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    Ok(read_body(r, max, buf).await?.is_some())
}

/// Read one authenticated frame's payload into `buf` and check its tag with `key`. `Ok(false)`: the peer
/// closed cleanly between frames.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
    key: &mut FrameKey,
) -> Result<bool, FrameError> {
    let Some(header) = read_body(r, max, buf).await? else {
        return Ok(false);
    };
    let mut tag = [0u8; TAG];
    read_exact(r, &mut tag).await?;
    key.check(&header, buf, &tag)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(mut input: &[u8], max: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        let mut buf = Vec::new();
        let mut key = FrameKey::new(b"k");
        while read(&mut input, max, &mut buf, &mut key).await? {
            frames.push(buf.clone());
        }
        Ok(frames)
    }

    fn sealed(payloads: &[&[u8]]) -> Vec<u8> {
        let mut key = FrameKey::new(b"k");
        let mut wire = Vec::new();
        for p in payloads {
            assert!(seal_into(&mut wire, &mut key, &[p], 16));
        }
        wire
    }

    #[tokio::test]
    async fn frames_round_trip_and_clean_eof_ends() {
        let wire = sealed(&[b"abc", b"", b"0123456789"]);
        let frames = read_all(&wire, 16).await.unwrap();
        assert_eq!(
            frames,
            vec![b"abc".to_vec(), vec![], b"0123456789".to_vec()]
        );
    }

    #[tokio::test]
    async fn a_flipped_bit_a_replay_a_reorder_or_another_key_fails_the_tag() {
        let wire = sealed(&[b"abc", b"def"]);
        let one = HEADER + 3 + TAG;
        for bit in [0, 8 * HEADER, 8 * (one - 1)] {
            let mut flipped = wire.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let r = read_all(&flipped, 16).await;
            assert!(
                matches!(
                    r,
                    Err(FrameError::BadTag { seq: 0 }) | Err(FrameError::TooLarge { .. })
                ),
                "bit {bit}: {r:?}"
            );
        }
        let mut replayed = wire[..one].to_vec();
        replayed.extend_from_slice(&wire[..one]);
        assert!(matches!(
            read_all(&replayed, 16).await,
            Err(FrameError::BadTag { seq: 1 })
        ));
        let mut reordered = wire[one..].to_vec();
        reordered.extend_from_slice(&wire[..one]);
        assert!(matches!(
            read_all(&reordered, 16).await,
            Err(FrameError::BadTag { seq: 0 })
        ));
        let mut other = FrameKey::new(b"other");
        let mut forged = Vec::new();
        seal_into(&mut forged, &mut other, &[b"abc"], 16);
        assert!(matches!(
            read_all(&forged, 16).await,
            Err(FrameError::BadTag { seq: 0 })
        ));
    }

    #[tokio::test]
    async fn oversized_length_is_rejected_before_reading() {
        let wire = 17u32.to_be_bytes();
        assert!(matches!(
            read_all(&wire, 16).await,
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
        assert!(header(17, 16).is_none());
        let mut key = FrameKey::new(b"k");
        let mut out = Vec::new();
        assert!(!seal_into(&mut out, &mut key, &[&[0; 17]], 16));
        assert!(out.is_empty());
    }

    #[tokio::test]
    async fn truncation_in_header_payload_or_tag_is_detected() {
        assert!(matches!(
            read_all(&[0, 0], 16).await,
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_all(&[0, 0, 0, 5, 1, 2], 16).await,
            Err(FrameError::Truncated)
        ));
        let wire = sealed(&[b"abc"]);
        assert!(matches!(
            read_all(&wire[..wire.len() - 1], 16).await,
            Err(FrameError::Truncated)
        ));
    }
}
