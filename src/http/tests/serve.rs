//! `serve()` over a real listener: the connection limit, graceful shutdown, the header read timeout.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::fake::FakeBackend;
use super::{http, Server};
use crate::http::Limits;

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n";

/// Read from `s` until `needle` appears or the stream ends; everything read so far.
async fn read_until(s: &mut TcpStream, needle: &str) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if String::from_utf8_lossy(&got).contains(needle) {
                break;
            }
        }
    })
    .await;
    assert!(read.is_ok(), "timed out waiting for {needle:?}");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn connections_over_the_limit_get_503_and_are_closed() {
    let limits = Limits {
        max_connections: 1,
        ..Limits::default()
    };
    let server = Server::start(FakeBackend::new(), limits).await;
    let mut first = TcpStream::connect(server.addr).await.unwrap();
    first.write_all(HEALTHZ).await.unwrap();
    let answer = read_until(&mut first, "\"ok\"").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // The first connection is still open (keep-alive): a second one is refused with a reason.
    let mut second = TcpStream::connect(server.addr).await.unwrap();
    second.write_all(HEALTHZ).await.unwrap();
    let refused = read_until(&mut second, "\u{0}never").await;
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.contains("too_many_connections"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("retry-after: 1"),
        "{refused}"
    );

    // Once the first one closes, new connections are served again.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(HEALTHZ).await.unwrap();
        let answer = read_until(&mut s, "\"ok\"").await;
        if answer.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never served again: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish_then_stops_accepting() {
    let fake = FakeBackend::new();
    fake.set_delay(Duration::from_millis(300));
    let mut server = Server::start(fake.clone(), Limits::default()).await;
    // An idle keep-alive connection must not hold shutdown up.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(HEALTHZ).await.unwrap();
    read_until(&mut idle, "\"ok\"").await;

    let url = server.url("/v1/kv/k");
    let in_flight = tokio::spawn(async move { http("PUT", &url, b"v", &[]).await });
    // Shut down while the proposal is inside the backend.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while fake.proposals() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the PUT never arrived"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = tokio::time::Instant::now();
    let _ = server.stop.take().unwrap().send(());

    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(fake.value(b"k").unwrap(), b"v");
    tokio::time::timeout(Duration::from_secs(4), &mut server.task)
        .await
        .expect("serve returned")
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(4));
    // The idle connection was closed and the listener is gone.
    let mut buf = [0u8; 16];
    let n = tokio::time::timeout(Duration::from_secs(2), idle.read(&mut buf))
        .await
        .expect("idle connection closed");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    assert!(TcpStream::connect(server.addr).await.is_err());
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let limits = Limits {
        header_read_timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let server = Server::start(FakeBackend::new(), limits).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nhost: te")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(3), async {
        let mut got = Vec::new();
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the slow connection was not closed");
    let text = String::from_utf8_lossy(&read);
    assert!(!text.contains("200 OK"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn a_body_sent_too_slowly_is_answered_408_and_its_connection_closed() {
    let limits = Limits {
        body_read_timeout: Duration::from_millis(300),
        ..Limits::default()
    };
    let server = Server::start(FakeBackend::new(), limits).await;
    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    // The head promises 4 MiB; only a few bytes of it ever arrive.
    slow.write_all(
        b"PUT /v1/kv/k HTTP/1.1\r\nhost: test\r\ncontent-length: 1048576\r\n\r\nsome bytes",
    )
    .await
    .unwrap();
    let mut buf = [0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(3), async {
        let mut got = Vec::new();
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
    .expect("the slow body was neither answered nor closed within 3 s");
    let text = String::from_utf8_lossy(&read);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("body_timeout"), "{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_close_notice_ends_keep_alive_connections_after_an_answer() {
    let mut server = Server::start(FakeBackend::new(), Limits::default()).await;
    let mut kept = TcpStream::connect(server.addr).await.unwrap();
    kept.write_all(HEALTHZ).await.unwrap();
    let before = read_until(&mut kept, "\"ok\"").await.to_ascii_lowercase();
    assert!(before.starts_with("http/1.1 200"), "{before}");
    assert!(!before.contains("connection: close"), "{before}");

    let _ = server.stop.take().unwrap().send(());
    tokio::time::sleep(Duration::from_millis(50)).await;
    // During the notice the listener still accepts, and every answer ends its connection.
    let mut fresh = TcpStream::connect(server.addr).await.unwrap();
    fresh.write_all(HEALTHZ).await.unwrap();
    let answer = read_until(&mut fresh, "\"ok\"").await.to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    // The kept-alive connection: its next request is answered, then it is closed by the server.
    kept.write_all(HEALTHZ).await.unwrap();
    let answer = read_until(&mut kept, "\"ok\"").await.to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
    for s in [&mut kept, &mut fresh] {
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
            .await
            .expect("the server closes the connection after its answer");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
    // No connection is open any more: the notice ends and serve returns.
    tokio::time::timeout(Duration::from_secs(5), &mut server.task)
        .await
        .expect("serve returned")
        .unwrap();
    assert!(TcpStream::connect(server.addr).await.is_err());
}
