//! The backup file format (`kvs-raft snapshot save|status|restore`, `GET /v1/snapshot`). Pure framing
//! over `Read`/bytes: no engine, no Raft.
//!
//! ```text
//! magic "KVSRBAK\n" (8) | version u16 | header_len u32 | header (JSON, header_len bytes)
//! frame*:  kind 1 u8 | len u32 | one chunk of the engine's snapshot stream (len bytes)
//! end:     kind 2 u8 | frames u64 | image bytes u64 | SHA-256 of every byte of the file before it (32)
//! ```
//! Integers are big-endian. The image inside is the engine's own self-checking chunk stream (a CRC per
//! chunk, a SHA-256 over its records); the trailer's SHA-256 covers the whole file, header included,
//! so a flipped byte anywhere or a truncation at any point is detected. Lengths are bounded before
//! anything is allocated (a flipped length byte cannot ask for gigabytes), and nothing here panics on
//! bad bytes.

use std::io::Read;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

pub const MAGIC: &[u8; 8] = b"KVSRBAK\n";
pub const VERSION: u16 = 1;
/// The largest header a reader accepts.
pub const MAX_HEADER: u32 = 1 << 20;
/// The largest frame a reader accepts: an engine chunk is ~1 MiB of records, plus at most one record
/// (key ≤ 4 KiB, value ≤ 1 MiB by default) that crossed the target size.
pub const MAX_FRAME: u32 = 64 << 20;
const FRAME: u8 = 1;
const END: u8 = 2;

/// What a backup says about itself: where and when it was taken, and the state it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupHeader {
    /// The cluster the image was taken from.
    pub cluster_id: String,
    /// The node that served it (any replica's image is consistent: it is its applied state).
    pub node_id: u64,
    /// The last Raft entry the image holds, and its commit ts.
    pub applied_index: u64,
    pub applied_ts: u64,
    /// When the image was taken (µs since the Unix epoch, the serving node's clock).
    pub created_micros: u64,
    /// The group's configuration as the serving node knew it when the image was taken (for the record:
    /// a restore founds a new cluster with the members it is given).
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub members: Vec<BackupMember>,
    /// The log index the membership table reflects.
    pub membership_index: u64,
    /// The `kvs-raft` version that wrote the file.
    pub writer: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupMember {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: String,
}

/// Why a backup file cannot be read. Every variant means: the file is not a whole, intact backup.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("not a kvs-raft backup file (bad magic)")]
    NotABackup,
    #[error("backup format version {0} is not supported (this binary reads version {VERSION})")]
    Version(u16),
    #[error("the backup file is truncated: it ends {0}")]
    Truncated(&'static str),
    #[error("the backup file is corrupt: {0}")]
    Corrupt(String),
    #[error("reading the backup file: {0}")]
    Io(std::io::Error),
}

/// Produces the file's bytes in order (the server side), hashing them for the trailer.
pub struct BackupWriter {
    sha: Sha256,
    frames: u64,
    image_bytes: u64,
}

impl BackupWriter {
    /// The writer and the file's first bytes (magic, version, header).
    pub fn start(header: &BackupHeader) -> Result<(BackupWriter, Vec<u8>), FormatError> {
        let json = serde_json::to_vec(header)
            .map_err(|e| FormatError::Corrupt(format!("header does not encode: {e}")))?;
        let len = u32::try_from(json.len())
            .ok()
            .filter(|&l| l <= MAX_HEADER)
            .ok_or_else(|| FormatError::Corrupt("header too large".into()))?;
        let mut out = Vec::with_capacity(14 + json.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&json);
        let mut sha = Sha256::new();
        sha.update(&out);
        Ok((
            BackupWriter {
                sha,
                frames: 0,
                image_bytes: 0,
            },
            out,
        ))
    }

    /// The prefix that goes before `chunk` (the chunk itself follows it unchanged).
    pub fn frame(&mut self, chunk: &[u8]) -> Result<[u8; 5], FormatError> {
        let len = u32::try_from(chunk.len())
            .ok()
            .filter(|&l| l <= MAX_FRAME)
            .ok_or_else(|| FormatError::Corrupt("image chunk too large".into()))?;
        let mut prefix = [FRAME, 0, 0, 0, 0];
        prefix[1..].copy_from_slice(&len.to_be_bytes());
        self.sha.update(prefix);
        self.sha.update(chunk);
        self.frames += 1;
        self.image_bytes += u64::from(len);
        Ok(prefix)
    }

    /// The file's last bytes: the end marker, the counts and the SHA-256 of everything before it.
    pub fn finish(mut self) -> Vec<u8> {
        let mut out = vec![END];
        out.extend_from_slice(&self.frames.to_be_bytes());
        out.extend_from_slice(&self.image_bytes.to_be_bytes());
        self.sha.update(&out);
        out.extend_from_slice(&self.sha.finalize());
        out
    }
}

/// What the trailer of an intact file says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Trailer {
    pub frames: u64,
    pub image_bytes: u64,
    /// The SHA-256 of the whole file (what `sha256sum` prints).
    pub file_sha256: [u8; 32],
    pub file_bytes: u64,
}

/// Reads a backup file in one pass: the header, then the image's chunks as an iterator (so the engine
/// checks or installs them as they come, one chunk in memory), then [`BackupReader::finish`] checks the
/// trailer. A framing error ends the iteration early and is kept for `finish`, which reports it first.
pub struct BackupReader<R: Read> {
    input: R,
    /// Over every byte read so far except the trailer's hash.
    sha: Sha256,
    /// Over every byte read so far (the whole file's hash once done).
    file_sha: Sha256,
    bytes: u64,
    frames: u64,
    image_bytes: u64,
    error: Option<FormatError>,
    /// The end marker has been read.
    ended: bool,
}

impl<R: Read> BackupReader<R> {
    /// Read and check the magic, version and header.
    pub fn open(input: R) -> Result<(BackupReader<R>, BackupHeader), FormatError> {
        let mut reader = BackupReader {
            input,
            sha: Sha256::new(),
            file_sha: Sha256::new(),
            bytes: 0,
            frames: 0,
            image_bytes: 0,
            error: None,
            ended: false,
        };
        let mut magic = [0u8; 8];
        reader.read_hashed(&mut magic, "inside its magic")?;
        if &magic != MAGIC {
            return Err(FormatError::NotABackup);
        }
        let mut word = [0u8; 2];
        reader.read_hashed(&mut word, "inside its version")?;
        let version = u16::from_be_bytes(word);
        if version != VERSION {
            return Err(FormatError::Version(version));
        }
        let len = reader.read_u32("inside its header length")?;
        if len > MAX_HEADER {
            return Err(FormatError::Corrupt(format!(
                "header length {len} exceeds {MAX_HEADER}"
            )));
        }
        let mut json = vec![0u8; len as usize];
        reader.read_hashed(&mut json, "inside its header")?;
        let header = serde_json::from_slice(&json)
            .map_err(|e| FormatError::Corrupt(format!("the header does not decode: {e}")))?;
        Ok((reader, header))
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes
    }

    /// The framing error that ended the iteration early, if one did.
    pub fn take_error(&mut self) -> Option<FormatError> {
        self.error.take()
    }

    fn read_raw(&mut self, buf: &mut [u8], at: &'static str) -> Result<(), FormatError> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                FormatError::Truncated(at)
            } else {
                FormatError::Io(e)
            }
        })?;
        self.file_sha.update(&*buf);
        self.bytes += buf.len() as u64;
        Ok(())
    }

    fn read_hashed(&mut self, buf: &mut [u8], at: &'static str) -> Result<(), FormatError> {
        self.read_raw(buf, at)?;
        self.sha.update(&*buf);
        Ok(())
    }

    fn read_u32(&mut self, at: &'static str) -> Result<u32, FormatError> {
        let mut b = [0u8; 4];
        self.read_hashed(&mut b, at)?;
        Ok(u32::from_be_bytes(b))
    }

    fn read_u64(&mut self, at: &'static str) -> Result<u64, FormatError> {
        let mut b = [0u8; 8];
        self.read_hashed(&mut b, at)?;
        Ok(u64::from_be_bytes(b))
    }

    /// The next frame's chunk, `None` at the end marker.
    fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FormatError> {
        let mut kind = [0u8; 1];
        self.read_hashed(&mut kind, "before its end marker")?;
        match kind[0] {
            FRAME => {
                let len = self.read_u32("inside a frame header")?;
                if len > MAX_FRAME {
                    return Err(FormatError::Corrupt(format!(
                        "frame {} claims {len} bytes, more than {MAX_FRAME}",
                        self.frames
                    )));
                }
                let mut chunk = vec![0u8; len as usize];
                self.read_hashed(&mut chunk, "inside an image chunk")?;
                self.frames += 1;
                self.image_bytes += u64::from(len);
                Ok(Some(chunk))
            }
            END => {
                self.ended = true;
                Ok(None)
            }
            other => Err(FormatError::Corrupt(format!(
                "unknown frame kind {other} after frame {}",
                self.frames
            ))),
        }
    }

    /// After the image: no further frame, the counts match, the hash matches, nothing follows.
    pub fn finish(mut self) -> Result<Trailer, FormatError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if !self.ended && self.next_frame()?.is_some() {
            return Err(FormatError::Corrupt(
                "the image continues after its end chunk".into(),
            ));
        }
        let frames = self.read_u64("inside its trailer")?;
        let image_bytes = self.read_u64("inside its trailer")?;
        let expected: [u8; 32] = self.sha.clone().finalize().into();
        let mut stored = [0u8; 32];
        self.read_raw(&mut stored, "inside its checksum")?;
        if stored != expected {
            return Err(FormatError::Corrupt(
                "the file's SHA-256 does not match its trailer (a byte changed)".into(),
            ));
        }
        if frames != self.frames || image_bytes != self.image_bytes {
            return Err(FormatError::Corrupt(format!(
                "the trailer counts {frames} frames / {image_bytes} bytes, the file holds {} / {}",
                self.frames, self.image_bytes
            )));
        }
        let mut extra = [0u8; 1];
        match self.input.read(&mut extra) {
            Ok(0) => {}
            Ok(_) => return Err(FormatError::Corrupt("bytes follow the trailer".into())),
            Err(e) => return Err(FormatError::Io(e)),
        }
        Ok(Trailer {
            frames,
            image_bytes,
            file_sha256: self.file_sha.finalize().into(),
            file_bytes: self.bytes,
        })
    }
}

impl<R: Read> Iterator for BackupReader<R> {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.ended || self.error.is_some() {
            return None;
        }
        match self.next_frame() {
            Ok(chunk) => chunk,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> BackupHeader {
        BackupHeader {
            cluster_id: "site-a".into(),
            node_id: 2,
            applied_index: 42,
            applied_ts: 1_700_000_000_000_000,
            created_micros: 1_700_000_000_500_000,
            voters: vec![1, 2, 3],
            learners: vec![],
            members: vec![BackupMember {
                id: 1,
                peer_addr: "n1:7380".into(),
                client_addr: "n1:7379".into(),
            }],
            membership_index: 3,
            writer: "test".into(),
        }
    }

    fn file(chunks: &[&[u8]]) -> Vec<u8> {
        let (mut w, mut out) = BackupWriter::start(&header()).unwrap();
        for c in chunks {
            out.extend_from_slice(&w.frame(c).unwrap());
            out.extend_from_slice(c);
        }
        out.extend(w.finish());
        out
    }

    fn read(bytes: &[u8]) -> Result<(BackupHeader, Vec<Vec<u8>>, Trailer), FormatError> {
        let (mut r, h) = BackupReader::open(bytes)?;
        let chunks: Vec<Vec<u8>> = r.by_ref().collect();
        let t = r.finish()?;
        Ok((h, chunks, t))
    }

    #[test]
    fn a_file_round_trips_and_its_hash_is_the_files() {
        let bytes = file(&[b"one", b"", b"three"]);
        let (h, chunks, t) = read(&bytes).unwrap();
        assert_eq!(h, header());
        assert_eq!(chunks, vec![b"one".to_vec(), vec![], b"three".to_vec()]);
        assert_eq!((t.frames, t.image_bytes), (3, 8));
        assert_eq!(t.file_bytes, bytes.len() as u64);
        let whole: [u8; 32] = Sha256::digest(&bytes).into();
        assert_eq!(t.file_sha256, whole);
    }

    #[test]
    fn every_flipped_byte_and_every_truncation_is_refused() {
        let bytes = file(&[b"chunk-a", b"chunk-b"]);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x04;
            assert!(read(&bad).is_err(), "flipped byte {i} not detected");
        }
        for cut in 0..bytes.len() {
            assert!(
                read(&bytes[..cut]).is_err(),
                "truncation at {cut} not detected"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(read(&longer).is_err());
    }

    #[test]
    fn a_huge_length_is_refused_before_allocating() {
        let mut bytes = file(&[b"x"]);
        // The frame's length field follows the 14-byte preamble, the header and the kind byte.
        let header_len = u32::from_be_bytes([bytes[10], bytes[11], bytes[12], bytes[13]]) as usize;
        let at = 14 + header_len + 1;
        bytes[at..at + 4].copy_from_slice(&u32::MAX.to_be_bytes());
        match read(&bytes) {
            Err(FormatError::Corrupt(m)) => assert!(m.contains("claims"), "{m}"),
            other => panic!("expected corrupt, got {other:?}"),
        }
    }
}
