//! `GET /v1/snapshot`: an online backup, streamed. Any node serves its own applied state (a follower's
//! image is consistent too; the file's header names the node and the applied index it holds).
//!
//! The image is produced on the blocking pool ([`crate::backup::produce`]: one RocksDB snapshot, one
//! chunk at a time) into a bounded channel that the response body drains; a full channel makes the
//! producer wait for the client, and a dropped download closes the channel, which stops the producer.
//! At most [`MAX_BACKUPS`] run at once on a node; more are answered 429. A failure after the first
//! byte can no longer change the status: the connection is cut, so the client sees a short file,
//! which its verification refuses.

use bytes::Bytes;
use tokio::sync::mpsc;
use warp::http::{header, HeaderValue};
use warp::reply::Response;

use super::backend::{Backend, ImageOrigin};
use super::context::{Ctx, Origin};
use super::error::{ApiError, Code};
use super::params::Query;
use crate::backup::{self, BackupHeader, BackupMember, ProduceError};

/// Backups a node streams at once; a further request is answered 429 `overloaded`.
pub const MAX_BACKUPS: usize = 2;
/// Pieces buffered between the producer and the connection (each at most one engine chunk, ~1 MiB).
const BUFFERED_PIECES: usize = 4;

type Piece = Result<Bytes, std::io::Error>;

/// `GET /v1/snapshot` → `application/octet-stream`, the backup file.
pub async fn snapshot<B: Backend>(ctx: &Ctx<B>, origin: &Origin) -> Result<Response, ApiError> {
    Query::parse(origin.query(), &[])?;
    let permit = ctx.backups.clone().try_acquire_owned().map_err(|_| {
        ApiError::overloaded(
            format!("{MAX_BACKUPS} backups are already streaming from this node; retry later"),
            ctx.limits.retry_after_secs,
        )
    })?;
    let (tx, mut rx) = mpsc::channel::<Piece>(BUFFERED_PIECES);
    let backend = ctx.backend.clone();
    let node_origin = backend.image_origin();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let sent = backup::produce(
            backend.engine(),
            |applied| header(node_origin, applied),
            &mut |piece| {
                tx.blocking_send(Ok(Bytes::from(piece)))
                    .map_err(|_| ProduceError::Dropped)
            },
        );
        match sent {
            Ok(meta) => tracing::info!(
                applied_index = meta.applied.index,
                bytes = meta.bytes,
                records = meta.records,
                "backup streamed"
            ),
            Err(ProduceError::Dropped) => tracing::info!("backup download dropped; stopped"),
            Err(e) => {
                tracing::error!(error = %e, "backup failed");
                let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
            }
        }
    });
    // The first piece (the file header) or the failure that came instead: until then the status can
    // still say what went wrong.
    let first = match rx.recv().await {
        Some(Ok(first)) => first,
        Some(Err(e)) => {
            return Err(ApiError::new(
                Code::Internal,
                format!("the backup could not start: {e}"),
            ))
        }
        None => {
            return Err(ApiError::new(
                Code::Internal,
                "the backup producer stopped before its first byte",
            ))
        }
    };
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    });
    let body = futures_util::StreamExt::chain(
        futures_util::stream::iter([Ok::<_, std::io::Error>(first)]),
        rest,
    );
    let mut res = Response::new(hyper::Body::wrap_stream(body));
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    Ok(res)
}

/// The file header for an image at `applied` served by `origin`.
fn header(origin: ImageOrigin, applied: engine::Applied) -> BackupHeader {
    BackupHeader {
        cluster_id: origin.cluster_id,
        node_id: origin.node_id,
        applied_index: applied.index,
        applied_ts: applied.ts,
        created_micros: engine::clock::wall_micros(),
        voters: origin.voters,
        learners: origin.learners,
        members: origin
            .members
            .into_iter()
            .map(|(id, peer_addr, client_addr)| BackupMember {
                id,
                peer_addr,
                client_addr,
            })
            .collect(),
        membership_index: origin.membership_index,
        writer: format!("kvs-raft {}", env!("CARGO_PKG_VERSION")),
    }
}
