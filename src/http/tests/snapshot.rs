//! `GET /v1/snapshot`: the streamed backup verifies and holds the engine's state; at most
//! `MAX_BACKUPS` stream at once (429 beyond); a dropped download frees its slot.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use warp::http::StatusCode;

use super::fake::FakeBackend;
use super::{http, Api, Server};
use crate::backup;
use crate::http::snapshot::MAX_BACKUPS;
use crate::http::{Backend, Limits};

const SNAPSHOT: &[u8] = b"GET /v1/snapshot HTTP/1.1\r\nhost: test\r\n\r\n";

#[tokio::test]
async fn the_backup_stream_is_a_whole_verified_image_of_the_engine() {
    let api = Api::new();
    for i in 0..200 {
        api.put_ok(&format!("/v1/kv/p{}/k{i}", i % 7), format!("v{i}"))
            .await;
    }
    let r = api.get("/v1/snapshot").await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    let verified = backup::verify(&r.body[..]).expect("the streamed file verifies");
    let engine = api.fake.engine();
    assert_eq!(verified.header.applied_index, engine.applied().index);
    assert_eq!(verified.header.applied_ts, engine.applied().ts);
    assert_eq!(verified.header.node_id, 1);
    assert_eq!(
        verified.image.sha256,
        engine.verify().expect("verify").content_sha256
    );
    assert_eq!(verified.trailer.file_bytes, r.body.len() as u64);
    // A query parameter it does not take is refused like everywhere else.
    assert_eq!(api.get("/v1/snapshot?x=1").await.err().0, 400);
}

/// Open a backup download and read only its response head; the body stays unread (the producer
/// blocks on the full connection and keeps its slot).
async fn hold_download(addr: std::net::SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(SNAPSHOT).await.expect("send");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut byte))
            .await
            .expect("response head in time")
            .expect("read");
        assert!(n == 1, "connection closed before the head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

#[tokio::test]
async fn a_third_concurrent_backup_is_429_and_a_dropped_download_frees_its_slot() {
    let fake = FakeBackend::new();
    // ~12 MB of values: more than the loopback buffers hold, so an unread download stays open.
    let server = Server::start(fake.clone(), Limits::default()).await;
    let value = vec![b'x'; 200 << 10];
    for i in 0..60 {
        let r = http("PUT", &server.url(&format!("/v1/kv/big/k{i}")), &value, &[]).await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let mut held = Vec::new();
    for _ in 0..MAX_BACKUPS {
        held.push(hold_download(server.addr).await);
    }
    let refused = http("GET", &server.url("/v1/snapshot"), b"", &[]).await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.err().1, "overloaded");
    assert!(refused.header("retry-after").is_some());

    // The downloads go away: their producers stop and a new backup is served, whole.
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = http("GET", &server.url("/v1/snapshot"), b"", &[]).await;
        if r.status == StatusCode::OK {
            let verified = backup::verify(&r.body[..]).expect("verifies");
            assert_eq!(verified.header.applied_index, fake.engine().applied().index);
            break;
        }
        assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the dropped downloads never freed their slots"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.shutdown().await;
}
