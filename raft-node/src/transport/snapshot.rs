//! Snapshot transfer: the sender streams a [`SnapshotSource`](super::SnapshotSource) over its own
//! connection; the receiver stages the chunks in a file, fsyncs it, and hands it over as a
//! [`SnapshotImage`].
//!
//! Staged files are `raft-snapshot-<from>-<n>.partial` while being written and
//! `raft-snapshot-<from>-<n>.img` once complete; each record is `len u32 BE | chunk`. A failed or
//! abandoned transfer removes its file; images left over from an earlier run are removed at start.

use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prost::Message as _;
use raft::prelude::{Message, MessageType};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::timeout;

use super::counters::inc;
use super::frame::{self, FrameKey};
use super::handshake::{Kind, Session};
use super::outbound;
use super::shared::Shared;
use super::Stream;

/// Chunks buffered between the producer (or the file writer) and the socket: the flow-control window.
const WINDOW: usize = 4;
/// First byte of a chunk frame's payload (an empty payload ends the stream).
const CHUNK: u8 = 1;
/// The receiver's answer once the image is durable and delivered.
const ACK: u8 = 1;
const PREFIX: &str = "raft-snapshot-";

/// A received snapshot image, staged in a file under `snapshot_dir`. The file is the consumer's:
/// call [`SnapshotImage::remove`] once installed (leftovers are removed at the next start).
#[derive(Debug)]
pub struct SnapshotImage {
    path: PathBuf,
    chunks: u64,
    bytes: u64,
    max_chunk: usize,
}

impl SnapshotImage {
    /// The chunks exactly as the sender's source emitted them.
    pub fn chunks(&self) -> io::Result<SnapshotChunks> {
        Ok(SnapshotChunks {
            file: BufReader::with_capacity(256 << 10, File::open(&self.path)?),
            left: self.chunks,
            max_chunk: self.max_chunk,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn chunk_count(&self) -> u64 {
        self.chunks
    }

    /// Total bytes of chunk data.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Delete the staged file.
    pub fn remove(self) {
        if let Err(e) = fs::remove_file(&self.path) {
            if e.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %self.path.display(), error = %e, "cannot remove snapshot image");
            }
        }
    }
}

/// Iterator over a staged image's chunks; an I/O error ends it.
pub struct SnapshotChunks {
    file: BufReader<File>,
    left: u64,
    max_chunk: usize,
}

impl SnapshotChunks {
    fn read_chunk(&mut self) -> io::Result<Vec<u8>> {
        let mut len = [0u8; 4];
        self.file.read_exact(&mut len)?;
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len > self.max_chunk {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "snapshot image: chunk longer than any received",
            ));
        }
        let mut chunk = vec![0; len];
        self.file.read_exact(&mut chunk)?;
        Ok(chunk)
    }
}

impl Iterator for SnapshotChunks {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let chunk = self.read_chunk();
        self.left = if chunk.is_ok() { self.left - 1 } else { 0 };
        Some(chunk)
    }
}

/// Create the staging directory and remove images a previous run left behind.
pub(crate) fn prepare_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(PREFIX) {
            fs::remove_file(entry.path())?;
        }
    }
    Ok(())
}

// ---- sending ----

/// Send `msg` (a `MsgSnapshot`) and the source's image to `to`, then report the outcome exactly once.
pub(crate) async fn send(
    shared: Arc<Shared>,
    to: u64,
    addr: String,
    epoch: u64,
    msg: Message,
    busy: Arc<AtomicBool>,
) {
    let result = tokio::select! {
        r = stream_to(&shared, to, &addr, msg) => r,
        () = shared.stopped(|m| !m.is_current(to, epoch)) => Err("peer removed or transport stopping".into()),
    };
    busy.store(false, Ordering::SeqCst);
    match &result {
        Ok(()) => {
            inc(&shared.counters.snapshots_sent);
            tracing::info!(peer = to, "snapshot delivered");
        }
        Err(e) => {
            inc(&shared.counters.snapshots_failed);
            tracing::warn!(peer = to, %addr, error = %e, "snapshot not delivered");
        }
    }
    shared.inbound.snapshot_status(to, result.is_ok());
}

async fn timed<T>(
    limit: Duration,
    what: &str,
    f: impl std::future::Future<Output = io::Result<T>>,
) -> Result<T, String> {
    match timeout(limit, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(_) => Err(format!("{what}: timed out after {limit:?}")),
    }
}

async fn write_frame<W: AsyncWrite + Unpin>(
    shared: &Shared,
    w: &mut W,
    key: &mut FrameKey,
    parts: &[&[u8]],
) -> Result<(), String> {
    let len = parts.iter().map(|p| p.len()).sum();
    let header = frame::header(len, shared.cfg.max_frame)
        .ok_or_else(|| format!("frame of {len} bytes exceeds max_frame"))?;
    let tag = key.tag(&header, parts);
    timed(shared.cfg.io_timeout, "write", async {
        w.write_all(&header).await?;
        for part in parts {
            w.write_all(part).await?;
        }
        w.write_all(&tag).await
    })
    .await?;
    inc(&shared.counters.frames_sent);
    Ok(())
}

async fn stream_to(shared: &Shared, to: u64, addr: &str, msg: Message) -> Result<(), String> {
    let (stream, session) = outbound::connect(shared, to, addr, Kind::Snapshot)
        .await
        .map_err(|e| {
            inc(&shared.counters.connect_failures);
            e.to_string()
        })?;
    let Session {
        send: mut key,
        recv: mut ack_key,
    } = session;
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writer = tokio::io::BufWriter::with_capacity(128 << 10, writer);
    write_frame(shared, &mut writer, &mut key, &[&msg.encode_to_vec()]).await?;

    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(WINDOW);
    let source = shared.source.clone();
    let producer = tokio::task::spawn_blocking(move || {
        source.stream(&mut |chunk| {
            tx.blocking_send(chunk)
                .map_err(|_| "snapshot transfer abandoned".to_string())
        })
    });
    while let Some(chunk) = rx.recv().await {
        // On error, returning drops `rx`: the producer's next `sink` call fails and it stops.
        write_frame(shared, &mut writer, &mut key, &[&[CHUNK], &chunk]).await?;
    }
    match producer.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("snapshot source failed: {e}")),
        Err(e) => return Err(format!("snapshot source panicked: {e}")),
    }
    write_frame(shared, &mut writer, &mut key, &[]).await?;
    timed(shared.cfg.io_timeout, "flush", writer.flush()).await?;
    let mut ack = Vec::new();
    let got = timed(shared.cfg.snapshot_ack_timeout, "wait for ack", async {
        frame::read(&mut reader, 1, &mut ack, &mut ack_key)
            .await
            .map_err(io::Error::other)
    })
    .await?;
    if !got || ack != [ACK] {
        return Err(format!("no valid ack from the receiver (got {ack:?})"));
    }
    Ok(())
}

// ---- receiving ----

enum Staging {
    Chunk(Vec<u8>),
    Finish,
}

/// Receive one snapshot on an authenticated snapshot stream from `sender`.
pub(crate) async fn receive(
    shared: &Shared,
    stream: Stream,
    session: Session,
    sender: u64,
    remote: SocketAddr,
) {
    let c = &shared.counters;
    let Session {
        send: mut ack_key,
        recv: mut key,
    } = session;
    let (reader, mut writer) = tokio::io::split(stream);
    let mut reader = tokio::io::BufReader::with_capacity(128 << 10, reader);
    let mut buf = Vec::new();
    let limit = shared.cfg.io_timeout;
    let max = shared.cfg.max_frame;

    // The MsgSnapshot itself.
    match timeout(limit, frame::read(&mut reader, max, &mut buf, &mut key)).await {
        Ok(Ok(true)) => {}
        Ok(Ok(false)) => return,
        Ok(Err(e)) if e.is_bad_input() => {
            inc(&c.bad_frames);
            tracing::warn!(%remote, peer = sender, error = %e, "bad snapshot frame, closing");
            return;
        }
        Ok(Err(_)) | Err(_) => return,
    }
    let msg = match Message::decode(buf.as_slice()) {
        Ok(msg) if msg.get_msg_type() == MessageType::MsgSnapshot => msg,
        _ => {
            inc(&c.bad_frames);
            tracing::warn!(%remote, peer = sender, "snapshot stream does not start with a MsgSnapshot");
            return;
        }
    };
    if msg.from != sender || msg.to != shared.cfg.node_id {
        inc(&c.messages_dropped_wrong_sender);
        tracing::warn!(%remote, peer = sender, from = msg.from, to = msg.to, "misaddressed snapshot dropped");
        return;
    }

    // The chunks, through a bounded channel to a blocking file writer.
    let n = shared.next_id();
    let dir = &shared.cfg.snapshot_dir;
    let partial = dir.join(format!("{PREFIX}{sender}-{n}.partial"));
    let done = dir.join(format!("{PREFIX}{sender}-{n}.img"));
    let (tx, rx) = mpsc::channel(WINDOW);
    let stager = tokio::task::spawn_blocking(move || stage(rx, partial, done));
    let streamed = async {
        loop {
            match timeout(limit, frame::read(&mut reader, max, &mut buf, &mut key)).await {
                Ok(Ok(true)) => {}
                Ok(Ok(false)) => return Err("sender closed before the end".to_string()),
                Ok(Err(e)) if e.is_bad_input() => {
                    inc(&c.bad_frames);
                    return Err(format!("bad frame: {e}"));
                }
                Ok(Err(e)) => return Err(e.to_string()),
                Err(_) => return Err(format!("no data for {limit:?}")),
            }
            let item = match buf.split_first() {
                None => Staging::Finish,
                Some((&CHUNK, chunk)) => Staging::Chunk(chunk.to_vec()),
                Some(_) => {
                    inc(&c.bad_frames);
                    return Err("bad frame: unknown chunk tag".to_string());
                }
            };
            let finish = matches!(item, Staging::Finish);
            if tx.send(item).await.is_err() {
                return Err("staging stopped".to_string()); // the stager's own error follows
            }
            if finish {
                return Ok(());
            }
        }
    };
    let streamed = streamed.await;
    drop(tx); // without `Finish`, the stager deletes its file
    let staged = match stager.await {
        Ok(result) => result.map_err(|e| format!("staging: {e}")),
        Err(e) => Err(format!("staging panicked: {e}")),
    };
    let image = match (streamed, staged) {
        (Ok(()), Ok(image)) => image,
        (Err(e), _) | (Ok(()), Err(e)) => {
            inc(&c.snapshots_failed);
            tracing::warn!(%remote, peer = sender, error = %e, "snapshot receive failed");
            return;
        }
    };
    inc(&c.snapshots_received);
    tracing::info!(
        peer = sender,
        chunks = image.chunks,
        bytes = image.bytes,
        "snapshot received"
    );
    shared.inbound.snapshot(msg, image);
    let mut ack = Vec::new();
    frame::seal_into(&mut ack, &mut ack_key, &[&[ACK]], max);
    let _ = timeout(limit, async {
        writer.write_all(&ack).await?;
        writer.flush().await
    })
    .await;
}

/// The blocking side of a receive: write records to `partial` until `Finish`, then fsync, rename to `done`
/// and fsync the directory. Any failure, or the channel closing without `Finish`, removes the file.
fn stage(
    mut rx: mpsc::Receiver<Staging>,
    partial: PathBuf,
    done: PathBuf,
) -> io::Result<SnapshotImage> {
    let result = (|| {
        let mut out = BufWriter::with_capacity(256 << 10, File::create(&partial)?);
        let (mut chunks, mut bytes, mut max_chunk) = (0u64, 0u64, 0usize);
        loop {
            match rx.blocking_recv() {
                Some(Staging::Chunk(chunk)) => {
                    let len = u32::try_from(chunk.len()).map_err(|_| {
                        io::Error::new(io::ErrorKind::InvalidData, "chunk too long")
                    })?;
                    out.write_all(&len.to_be_bytes())?;
                    out.write_all(&chunk)?;
                    chunks += 1;
                    bytes += u64::from(len);
                    max_chunk = max_chunk.max(chunk.len());
                }
                Some(Staging::Finish) => break,
                None => return Err(io::Error::other("transfer aborted")),
            }
        }
        let file = out.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&partial, &done)?;
        if let Some(dir) = done.parent() {
            File::open(dir)?.sync_all()?;
        }
        Ok(SnapshotImage {
            path: done.clone(),
            chunks,
            bytes,
            max_chunk,
        })
    })();
    if result.is_err() {
        let _ = fs::remove_file(&partial);
        let _ = fs::remove_file(&done);
    }
    result
}
