//! Property tests of everything the peer port decodes from the network (issue 10's fuzz target, run as
//! proptest so it needs no nightly toolchain): arbitrary bytes into the hello decoder, the frame reader,
//! the acceptor's whole handshake, and a live listener. Nothing may panic, every declared length is
//! checked against its cap before anything is allocated, and nothing is ever accepted or delivered.
//!
//! Bounded for CI: 256 cases each by default (64 for the live listener); set `PROPTEST_CASES` for a
//! longer run.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use raft::prelude::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::frame::{self, FrameError, FrameKey};
use super::handshake::{self, Hello, Kind, Local, Standing, CHALLENGE, MAX_HELLO, NONCE};
use super::{Inbound, SnapshotImage, SnapshotSource, TcpTransport, TransportConfig};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a test runtime")
}

fn valid_hello() -> Vec<u8> {
    Hello {
        kind: Kind::Raft,
        cluster_id: "site".into(),
        sender: 2,
        receiver: 1,
        advertise_peer: "10.0.0.2:7380".into(),
        advertise_client: "10.0.0.2:7379".into(),
        nonce: [5; NONCE],
    }
    .encode()
}

/// Bytes that are mostly a valid hello with some mutated, or anything at all.
fn hello_like() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            0usize..8
        )
            .prop_map(|(edits, cut)| {
                let mut h = valid_hello();
                for (at, b) in edits {
                    let i = at.index(h.len());
                    h[i] = b;
                }
                h.truncate(h.len().saturating_sub(cut));
                h
            }),
    ]
}

/// A reader that records the largest buffer it was asked to fill: allocation follows only checked
/// lengths.
struct Tracking<'a> {
    data: &'a [u8],
    largest_read: Arc<AtomicUsize>,
}

impl tokio::io::AsyncRead for Tracking<'_> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        self.largest_read
            .fetch_max(buf.remaining(), Ordering::Relaxed);
        let n = buf.remaining().min(self.data.len());
        buf.put_slice(&self.data[..n]);
        self.data = &self.data[n..];
        std::task::Poll::Ready(Ok(()))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(256), ..ProptestConfig::default() })]

    #[test]
    fn hello_decoder_never_panics_and_round_trips_what_it_accepts(bytes in hello_like()) {
        if let Some(hello) = Hello::decode(&bytes) {
            prop_assert_eq!(hello.encode(), bytes);
        }
    }

    #[test]
    fn frame_reader_caps_lengths_before_allocating_and_refuses_unauthenticated_frames(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048),
        max in 1usize..1024,
    ) {
        let largest_read = Arc::new(AtomicUsize::new(0));
        let mut reader = Tracking { data: &bytes, largest_read: largest_read.clone() };
        let mut buf = Vec::new();
        let mut key = FrameKey::new(b"session key nobody guessed");
        let result = runtime().block_on(frame::read(&mut reader, max, &mut buf, &mut key));
        match result {
            Ok(false) => prop_assert!(bytes.is_empty()),
            Ok(true) => prop_assert!(false, "a random frame passed the tag check"),
            Err(FrameError::TooLarge { len, .. }) => {
                prop_assert!(len as usize > max);
                prop_assert!(buf.capacity() == 0, "allocated for a refused length");
            }
            Err(FrameError::Truncated | FrameError::BadTag { .. }) => {}
            Err(FrameError::Io(e)) => prop_assert!(false, "i/o error from a slice: {}", e),
        }
        // A Vec's first allocation holds at least 8 bytes.
        prop_assert!(buf.capacity() <= max.max(8));
        prop_assert!(largest_read.load(Ordering::Relaxed) <= max.max(frame::TAG));
    }

    #[test]
    fn acceptor_handshake_refuses_arbitrary_input(bytes in hello_like(), framed in any::<bool>()) {
        let local = Local { cluster_id: "site", node_id: 1, secret: b"secret" };
        let input = if framed {
            // A length prefix that matches, so the decoder (not the framing) sees the bytes.
            let mut f = u32::try_from(bytes.len() + 32).unwrap_or(u32::MAX).to_be_bytes().to_vec();
            f.extend_from_slice(&bytes);
            f.extend_from_slice(&[0; 32]);
            f
        } else {
            bytes
        };
        let result = runtime().block_on(async {
            let (mut ours, mut theirs) = tokio::io::duplex(MAX_HELLO * 2);
            theirs.write_all(&input).await.expect("the duplex holds the input");
            theirs.shutdown().await.expect("close the writing side");
            let accepted =
                handshake::accept(&mut ours, &local, |_| Standing::Member, |_| true).await;
            let mut challenge = [0u8; CHALLENGE];
            theirs.read_exact(&mut challenge).await.expect("the challenge was sent");
            accepted
        });
        prop_assert!(result.is_err(), "arbitrary input was accepted");
    }
}

struct Nothing(AtomicUsize);

impl Inbound for Nothing {
    fn message(&self, _: Message) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
    fn snapshot(&self, _: Message, image: SnapshotImage) {
        self.0.fetch_add(1, Ordering::Relaxed);
        image.remove();
    }
    fn unreachable(&self, _: u64) {}
    fn snapshot_status(&self, _: u64, _: bool) {}
    fn peer_addresses(&self, _: u64, _: &str, _: &str) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

impl SnapshotSource for Nothing {
    fn stream(&self, _: &mut dyn FnMut(Vec<u8>) -> Result<(), String>) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn live_peer_port_closes_connections_that_send_arbitrary_bytes() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a test runtime");
    let dir = tempfile::tempdir().expect("a temp dir");
    let inbound = Arc::new(Nothing(AtomicUsize::new(0)));
    let (transport, handle, addr) = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let mut cfg = TransportConfig::new(
            "site",
            1,
            b"secret".to_vec(),
            addr.to_string(),
            "c:1",
            dir.path(),
        );
        cfg.handshake_timeout = Duration::from_secs(2);
        let (t, h) = TcpTransport::start(
            cfg,
            listener,
            inbound.clone(),
            Arc::new(Nothing(AtomicUsize::new(0))),
        )
        .await
        .expect("transport starts");
        // Member 2 exists, so a hello that somehow passed the proof would be delivered.
        h.set_peers(vec![super::Peer {
            id: 2,
            addr: "127.0.0.1:1".into(),
        }]);
        (t, h, addr)
    });
    let config = ProptestConfig {
        cases: cases(64),
        ..ProptestConfig::default()
    };
    proptest!(config, |(bytes in hello_like(), framed in any::<bool>())| {
        rt.block_on(async {
            let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
            let mut payload = Vec::new();
            if framed {
                payload.extend_from_slice(&u32::try_from(bytes.len() + 32).unwrap_or(0).to_be_bytes());
            }
            payload.extend_from_slice(&bytes);
            // The peer may close before reading everything: a failed write is an acceptable outcome.
            let _ = s.write_all(&payload).await;
            let _ = s.shutdown().await;
            let mut sink = [0u8; 256];
            let closed = tokio::time::timeout(Duration::from_secs(5), async {
                loop {
                    match s.read(&mut sink).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            assert!(closed.is_ok(), "the peer port kept the connection open");
        });
    });
    let counters = handle.counters();
    assert_eq!(counters.handshakes_accepted, 0, "{counters:?}");
    assert_eq!(inbound.0.load(Ordering::Relaxed), 0);
    rt.block_on(handle.shutdown());
    drop(transport);
}
