//! Length-delimited frames: `len u32 BE | payload`, with `len` bounded before anything is allocated.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes of the length prefix.
pub(crate) const HEADER: usize = 4;

#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    #[error("frame length {len} exceeds the limit of {max} bytes")]
    TooLarge { len: u32, max: usize },
    #[error("connection closed in the middle of a frame")]
    Truncated,
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// The peer sent something invalid (as opposed to the network failing).
    pub(crate) fn is_bad_input(&self) -> bool {
        !matches!(self, FrameError::Io(_))
    }
}

/// The length prefix for a payload of `len` bytes, or `None` if it exceeds `max`.
pub(crate) fn header(len: usize, max: usize) -> Option<[u8; HEADER]> {
    if len > max {
        return None;
    }
    u32::try_from(len).ok().map(u32::to_be_bytes)
}

/// Read one frame into `buf` (replacing its contents). `Ok(false)`: the peer closed cleanly between frames.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
    buf: &mut Vec<u8>,
) -> Result<bool, FrameError> {
    let mut header = [0u8; HEADER];
    let mut got = 0;
    while got < HEADER {
        let n = r.read(&mut header[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(false)
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
    match r.read_exact(buf).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Err(FrameError::Truncated),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(mut input: &[u8], max: usize) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut frames = Vec::new();
        let mut buf = Vec::new();
        while read(&mut input, max, &mut buf).await? {
            frames.push(buf.clone());
        }
        Ok(frames)
    }

    #[tokio::test]
    async fn frames_round_trip_and_clean_eof_ends() {
        let mut wire = Vec::new();
        for payload in [&b"abc"[..], b"", b"0123456789"] {
            wire.extend_from_slice(&header(payload.len(), 16).unwrap());
            wire.extend_from_slice(payload);
        }
        let frames = read_all(&wire, 16).await.unwrap();
        assert_eq!(
            frames,
            vec![b"abc".to_vec(), vec![], b"0123456789".to_vec()]
        );
    }

    #[tokio::test]
    async fn oversized_length_is_rejected_before_reading() {
        let wire = 17u32.to_be_bytes();
        assert!(matches!(
            read_all(&wire, 16).await,
            Err(FrameError::TooLarge { len: 17, max: 16 })
        ));
        assert!(header(17, 16).is_none());
    }

    #[tokio::test]
    async fn truncation_in_header_or_payload_is_detected() {
        assert!(matches!(
            read_all(&[0, 0], 16).await,
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            read_all(&[0, 0, 0, 5, 1, 2], 16).await,
            Err(FrameError::Truncated)
        ));
    }
}
