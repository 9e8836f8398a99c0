//! The TCP transport over real sockets on 127.0.0.1: delivery and batching, reconnects, the queue bound,
//! hostile input on the peer port, and snapshot streaming. The handshake used by the hostile clients is
//! written here from the wire format in the module docs, independently of the implementation.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use prost::Message as _;
use raft::prelude::{Message, MessageType, Snapshot, SnapshotMetadata};
use raft_node::runner::Transport;
use raft_node::transport::{
    Inbound, Peer, SnapshotImage, SnapshotSource, TcpTransport, TlsFiles, TransportConfig,
    TransportCounters, TransportHandle,
};
use sha2::Sha256;
use testkit::certs::{client_config, Ca, Leaf};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const CLUSTER: &str = "site-test";
const SECRET: &[u8] = b"correct horse";

// ---- test scaffolding ----

#[derive(Default)]
struct Recorder {
    messages: Mutex<Vec<Message>>,
    snapshots: Mutex<Vec<(Message, SnapshotImage)>>,
    unreachable: Mutex<Vec<u64>>,
    statuses: Mutex<Vec<(u64, bool)>>,
    addresses: Mutex<Vec<(u64, String, String)>>,
}

impl Inbound for Recorder {
    fn message(&self, msg: Message) {
        self.messages.lock().unwrap().push(msg);
    }
    fn snapshot(&self, msg: Message, image: SnapshotImage) {
        self.snapshots.lock().unwrap().push((msg, image));
    }
    fn unreachable(&self, peer: u64) {
        self.unreachable.lock().unwrap().push(peer);
    }
    fn snapshot_status(&self, peer: u64, delivered: bool) {
        self.statuses.lock().unwrap().push((peer, delivered));
    }
    fn peer_addresses(&self, peer: u64, peer_addr: &str, client_addr: &str) {
        self.addresses
            .lock()
            .unwrap()
            .push((peer, peer_addr.into(), client_addr.into()));
    }
}

impl Recorder {
    fn message_count(&self) -> usize {
        self.messages.lock().unwrap().len()
    }
    fn messages_from(&self, from: u64) -> Vec<u64> {
        let msgs = self.messages.lock().unwrap();
        msgs.iter()
            .filter(|m| m.from == from)
            .map(|m| m.index)
            .collect()
    }
}

/// Emits `chunks` chunks of `size` bytes, each distinct; fails at chunk `fail_at` the first
/// `failures` times.
struct Chunks {
    chunks: usize,
    size: usize,
    fail_at: usize,
    failures: AtomicUsize,
}

impl Chunks {
    fn new(chunks: usize, size: usize) -> Self {
        Chunks {
            chunks,
            size,
            fail_at: usize::MAX,
            failures: AtomicUsize::new(0),
        }
    }
    fn chunk(&self, i: usize) -> Vec<u8> {
        (0..self.size)
            .map(|j| (i.wrapping_mul(131) ^ j.wrapping_mul(7) ^ (j >> 8)) as u8)
            .collect()
    }
    fn expected(&self) -> Vec<Vec<u8>> {
        (0..self.chunks).map(|i| self.chunk(i)).collect()
    }
}

impl SnapshotSource for Chunks {
    fn stream(&self, sink: &mut dyn FnMut(Vec<u8>) -> Result<(), String>) -> Result<(), String> {
        for i in 0..self.chunks {
            if i == self.fail_at
                && self
                    .failures
                    .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                    .is_ok()
            {
                return Err("source broke".into());
            }
            sink(self.chunk(i))?;
        }
        Ok(())
    }
}

struct Node {
    id: u64,
    transport: TcpTransport,
    handle: TransportHandle,
    rec: Arc<Recorder>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Node {
    fn counters(&self) -> TransportCounters {
        self.handle.counters()
    }
    fn send(&mut self, msgs: Vec<Message>) {
        self.transport.send(msgs);
    }
    fn staged_files(&self) -> usize {
        staged_files(self.dir.path())
    }
}

fn staged_files(dir: &Path) -> usize {
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

fn config(id: u64, addr: SocketAddr, dir: &Path) -> TransportConfig {
    let mut cfg = TransportConfig::new(
        CLUSTER,
        id,
        SECRET,
        addr.to_string(),
        format!("client-{id}:8080"),
        dir,
    );
    cfg.backoff_min = Duration::from_millis(10);
    cfg.backoff_max = Duration::from_millis(100);
    cfg.handshake_timeout = Duration::from_secs(1);
    cfg
}

async fn start_on(
    id: u64,
    listener: TcpListener,
    source: Arc<dyn SnapshotSource>,
    tweak: impl FnOnce(&mut TransportConfig),
) -> Node {
    let addr = listener.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(id, addr, dir.path());
    tweak(&mut cfg);
    let rec = Arc::new(Recorder::default());
    let (transport, handle) = TcpTransport::start(cfg, listener, rec.clone(), source)
        .await
        .unwrap();
    assert_eq!(handle.local_addr(), addr);
    Node {
        id,
        transport,
        handle,
        rec,
        addr,
        dir,
    }
}

async fn listen() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

/// Start nodes `1..=n`, each knowing all the others.
async fn cluster(n: u64) -> Vec<Node> {
    let mut nodes = Vec::new();
    for id in 1..=n {
        nodes.push(start_on(id, listen().await, Arc::new(Chunks::new(0, 0)), |_| {}).await);
    }
    let peers: Vec<Peer> = nodes
        .iter()
        .map(|n| Peer {
            id: n.id,
            addr: n.addr.to_string(),
        })
        .collect();
    for n in &nodes {
        n.handle.set_peers(peers.clone());
    }
    // A dial that raced a peer's `set_peers` was refused; wait for the redials, so that messages sent
    // next are not discarded as stale.
    let links = peers.len() - 1;
    for n in &nodes {
        wait_for("connected to every peer", || {
            n.counters().connects == links as u64
        })
        .await;
    }
    nodes
}

async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn msg(from: u64, to: u64, index: u64) -> Message {
    Message {
        msg_type: MessageType::MsgAppend as i32,
        from,
        to,
        term: 3,
        index,
        ..Default::default()
    }
}

fn snapshot_msg(from: u64, to: u64) -> Message {
    Message {
        msg_type: MessageType::MsgSnapshot as i32,
        from,
        to,
        term: 3,
        snapshot: Some(Snapshot {
            data: vec![],
            metadata: Some(SnapshotMetadata {
                index: 42,
                term: 3,
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

async fn shutdown_all(nodes: &[Node]) {
    for n in nodes {
        n.handle.shutdown().await;
    }
}

// ---- an independent dialer, for hostile clients ----

struct Hostile {
    cluster: &'static str,
    secret: &'static [u8],
    sender: u64,
    receiver: u64,
    kind: u8,
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap();
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// The dialer's side of an accepted session: seals frames as the wire format says.
struct Sealer {
    key: [u8; 32],
    seq: u64,
}

impl Sealer {
    /// `len u32 BE | payload | HMAC(key, seq u64 BE | len | payload)`.
    fn seal(&mut self, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() as u32).to_be_bytes();
        let tag = hmac(&self.key, &[&self.seq.to_be_bytes(), &len, payload]);
        self.seq += 1;
        let mut f = len.to_vec();
        f.extend_from_slice(payload);
        f.extend_from_slice(&tag);
        f
    }
}

impl Hostile {
    fn member(sender: u64, receiver: u64) -> Self {
        Hostile {
            cluster: CLUSTER,
            secret: SECRET,
            sender,
            receiver,
            kind: 1,
        }
    }

    /// Run the handshake; returns the stream, the acceptor's status byte (0 = accepted) and the
    /// session's sealer (meaningful when accepted).
    async fn dial(&self, addr: SocketAddr) -> (TcpStream, u8, Sealer) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let (status, sealer) = self.dial_on(&mut s).await;
        (s, status, sealer)
    }

    async fn dial_on<S: AsyncRead + AsyncWrite + Unpin>(&self, s: &mut S) -> (u8, Sealer) {
        let mut challenge = [0u8; 37];
        s.read_exact(&mut challenge).await.unwrap();
        assert_eq!(&challenge[..5], b"KVSR\x02");
        let put_str = |out: &mut Vec<u8>, v: &str| {
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        };
        let mut body = b"KVSR\x02".to_vec();
        body.push(self.kind);
        put_str(&mut body, self.cluster);
        body.extend_from_slice(&self.sender.to_be_bytes());
        body.extend_from_slice(&self.receiver.to_be_bytes());
        put_str(&mut body, "evil:1");
        put_str(&mut body, "evil:2");
        body.extend_from_slice(&[9u8; 32]);
        let tag = hmac(self.secret, &[b"kvs-raft/2 hello", &challenge[5..], &body]);
        let mut hello = ((body.len() + 32) as u32).to_be_bytes().to_vec();
        hello.extend_from_slice(&body);
        hello.extend_from_slice(&tag);
        s.write_all(&hello).await.unwrap();
        s.flush().await.unwrap();
        let mut status = [0u8; 1];
        s.read_exact(&mut status).await.unwrap();
        if status[0] == 0 {
            let mut welcome = [0u8; 32];
            s.read_exact(&mut welcome).await.unwrap();
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret).unwrap();
            mac.update(b"kvs-raft/2 welcome");
            mac.update(&[9u8; 32]);
            mac.update(&tag);
            mac.verify_slice(&welcome)
                .expect("acceptor proves the secret");
        }
        let session = hmac(
            self.secret,
            &[b"kvs-raft/2 session", &challenge[5..], &[9u8; 32], &tag],
        );
        let key = hmac(&session, &[b"dialer to acceptor"]);
        (status[0], Sealer { key, seq: 0 })
    }
}

/// Wait until the acceptor has closed `s` (EOF or reset).
async fn closed_by_peer(mut s: TcpStream) {
    let mut sink = [0u8; 64];
    let read_to_end = async {
        loop {
            match s.read(&mut sink).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(5), read_to_end)
        .await
        .expect("connection closed by the transport");
}

/// Victim node 1 with good peer 2; id 7 is a member too (dialing it fails: nothing listens there).
async fn victim() -> (Node, Node) {
    let mut nodes = cluster(2).await;
    let good = nodes.pop().unwrap();
    let victim = nodes.pop().unwrap();
    let gone = listen().await.local_addr().unwrap();
    victim.handle.set_peers(vec![
        Peer {
            id: 2,
            addr: good.addr.to_string(),
        },
        Peer {
            id: 7,
            addr: gone.to_string(),
        },
    ]);
    (victim, good)
}

/// No handshake but the good peer's was accepted.
fn assert_only_good_peer_accepted(victim: &Node) {
    let learned = victim.rec.addresses.lock().unwrap().clone();
    assert!(learned.iter().all(|(id, ..)| *id == 2), "{learned:?}");
}

/// The hostile input left no trace in the victim's Inbound, and the good peer still gets through.
async fn assert_unharmed(victim: &Node, good: &mut Node) {
    assert_unharmed_except_from(victim, good, 2).await;
}

/// As [`assert_unharmed`], allowing what `allowed` sent (before its connection was refused).
async fn assert_unharmed_except_from(victim: &Node, good: &mut Node, allowed: u64) {
    assert!(victim.rec.snapshots.lock().unwrap().is_empty());
    good.send(vec![msg(2, 1, 777)]);
    wait_for("a good message after the attack", || {
        victim.rec.messages_from(2).contains(&777)
    })
    .await;
    let msgs = victim.rec.messages.lock().unwrap();
    assert!(
        msgs.iter().all(|m| m.from == 2 || m.from == allowed),
        "only the good peer got through: {msgs:?}"
    );
    drop(msgs);
    assert_eq!(
        victim.counters().messages_received,
        victim.rec.message_count() as u64
    );
}

async fn rejected_handshake(
    hostile: Hostile,
    expect_status: u8,
    counter: fn(&TransportCounters) -> u64,
) {
    let (victim, mut good) = victim().await;
    let (s, status, _) = hostile.dial(victim.addr).await;
    assert_eq!(status, expect_status);
    closed_by_peer(s).await;
    wait_for("the rejection counter", || counter(&victim.counters()) == 1).await;
    assert_only_good_peer_accepted(&victim);
    assert_unharmed(&victim, &mut good).await;
    shutdown_all(&[victim, good]).await;
}

/// After a good handshake as member 7, send the bytes `build` makes with the session's sealer (then close
/// if `close`); `counter` must reach `expect`.
async fn bad_stream(
    build: impl FnOnce(&mut Sealer) -> Vec<u8>,
    close: bool,
    counter: fn(&TransportCounters) -> u64,
    expect: u64,
) {
    let (victim, mut good) = victim().await;
    let (mut s, status, mut sealer) = Hostile::member(7, 1).dial(victim.addr).await;
    assert_eq!(status, 0);
    s.write_all(&build(&mut sealer)).await.unwrap();
    if close {
        s.shutdown().await.unwrap();
    }
    wait_for("the bad-input counter", || {
        counter(&victim.counters()) == expect
    })
    .await;
    assert_eq!(victim.counters().messages_received, 0);
    assert_unharmed(&victim, &mut good).await;
    shutdown_all(&[victim, good]).await;
}

// ---- 1. delivery ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transport_delivers_both_ways_in_order_with_batching() {
    let mut nodes = cluster(3).await;
    let n = 2000u64;
    for from in 1..=3u64 {
        let msgs = (1..=3)
            .filter(|&to| to != from)
            .flat_map(|to| (1..=n).map(move |i| msg(from, to, i)))
            .collect();
        nodes[usize::try_from(from - 1).unwrap()].send(msgs);
    }
    for node in &nodes {
        // The receiver may see the last batch a moment before the sender counts it as written.
        wait_for("all messages", || {
            node.rec.message_count() == 2 * n as usize
                && nodes.iter().all(|n2| n2.counters().messages_sent == 2 * n)
        })
        .await;
        for from in (1..=3).filter(|&f| f != node.id) {
            assert_eq!(
                node.rec.messages_from(from),
                (1..=n).collect::<Vec<_>>(),
                "in order"
            );
        }
        let c = node.counters();
        assert_eq!(c.messages_sent, 2 * n);
        assert_eq!(c.messages_received, 2 * n);
        assert!(c.batches_written < c.messages_sent, "{c:?}");
        assert_eq!(
            c.messages_dropped_queue_full + c.bad_frames + c.messages_dropped_wrong_sender,
            0
        );
        // Each peer's advertised addresses were learned from its handshake.
        let learned = node.rec.addresses.lock().unwrap().clone();
        for from in (1..=3).filter(|&f| f != node.id) {
            let peer = &nodes[usize::try_from(from - 1).unwrap()];
            assert!(learned.contains(&(
                from,
                peer.addr.to_string(),
                format!("client-{from}:8080")
            )));
        }
    }
    // Unknown destinations are dropped and counted, never block.
    nodes[0].send(vec![msg(1, 9, 1), msg(1, 1, 1)]);
    assert_eq!(nodes[0].counters().messages_dropped_unknown_peer, 2);
    shutdown_all(&nodes).await;
    nodes[0].handle.shutdown().await; // idempotent
}

// ---- 2. reconnect ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transport_reconnects_after_peer_restart() {
    let mut nodes = cluster(2).await;
    let b = nodes.pop().unwrap();
    let mut a = nodes.pop().unwrap();
    a.send(vec![msg(1, 2, 1)]);
    wait_for("first delivery", || b.rec.message_count() == 1).await;

    let b_addr = b.addr;
    b.handle.shutdown().await;
    wait_for("unreachable reported", || {
        a.rec.unreachable.lock().unwrap().contains(&2)
    })
    .await;
    a.send((2..100).map(|i| msg(1, 2, i)).collect()); // nobody is there
    wait_for("a failed redial", || a.counters().connect_failures >= 1).await;

    let b2 = start_on(
        2,
        TcpListener::bind(b_addr).await.unwrap(),
        Arc::new(Chunks::new(0, 0)),
        |_| {},
    )
    .await;
    b2.handle.set_peers(vec![Peer {
        id: 1,
        addr: a.addr.to_string(),
    }]);
    let mut i = 1000;
    wait_for("delivery after restart", || {
        i += 1;
        a.transport.send(vec![msg(1, 2, i)]);
        b2.rec.message_count() > 0
    })
    .await;
    assert!(a.counters().connects >= 2);
    let got = b2.rec.messages_from(1);
    assert!(got.windows(2).all(|w| w[0] < w[1]), "in order: {got:?}");
    shutdown_all(&[a, b2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_forgets_departed_peers() {
    let mut nodes = cluster(2).await;
    let a_addr = nodes[0].addr.to_string();
    nodes[0].handle.set_peers(vec![Peer {
        id: 1,
        addr: a_addr,
    }]); // only itself: 2 departed
    nodes[0].send(vec![msg(1, 2, 1), snapshot_msg(1, 2)]);
    assert_eq!(nodes[0].counters().messages_dropped_unknown_peer, 2);
    assert_eq!(
        nodes[0].rec.statuses.lock().unwrap().as_slice(),
        &[(2, false)]
    );
    // 2's stream into 1 is closed, and its redials are refused.
    wait_for("2 notices", || {
        nodes[1].rec.unreachable.lock().unwrap().contains(&1)
    })
    .await;
    wait_for("redial refused", || {
        nodes[0].counters().handshakes_rejected_unknown_id >= 1
    })
    .await;
    shutdown_all(&nodes).await;
}

// ---- 3. queue bound ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_queue_is_bounded_when_peer_is_unreachable() {
    let dead = listen().await.local_addr().unwrap(); // dropped: connections are refused
    let mut a = start_on(1, listen().await, Arc::new(Chunks::new(0, 0)), |cfg| {
        cfg.peer_queue = 1024;
        cfg.backoff_min = Duration::from_secs(1);
        cfg.backoff_max = Duration::from_secs(1);
    })
    .await;
    a.handle.set_peers(vec![Peer {
        id: 2,
        addr: dead.to_string(),
    }]);
    wait_for("unreachable reported", || {
        a.rec.unreachable.lock().unwrap().contains(&2)
    })
    .await;
    let total = 100_000u64;
    let started = Instant::now();
    for chunk in 0..100 {
        a.send((0..1000).map(|i| msg(1, 2, chunk * 1000 + i)).collect());
    }
    let took = started.elapsed();
    let c = a.counters();
    assert!(
        took < Duration::from_secs(2),
        "send must not block: {took:?}"
    );
    // At most one queue's worth (plus what a redial discarded meanwhile) was ever held.
    assert!(c.messages_dropped_queue_full >= total - 3 * 1024, "{c:?}");
    assert_eq!(c.messages_sent, 0);
    assert_eq!(
        a.rec.unreachable.lock().unwrap().as_slice(),
        &[2],
        "once per episode"
    );
    shutdown_all(&[a]).await;
}

// ---- 4. hostile input ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_rejects_wrong_cluster() {
    let h = Hostile {
        cluster: "another-site",
        ..Hostile::member(7, 1)
    };
    rejected_handshake(h, 2, |c| c.handshakes_rejected_cluster).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_rejects_unknown_sender() {
    rejected_handshake(Hostile::member(9, 1), 6, |c| {
        c.handshakes_rejected_unknown_id
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_rejects_removed_sender_and_closes_its_connections() {
    let (victim, mut good) = victim().await;
    // An established raft stream from 7 is closed once 7 is removed.
    let (open, status, _) = Hostile::member(7, 1).dial(victim.addr).await;
    assert_eq!(status, 0);
    victim.handle.set_removed(vec![7]);
    closed_by_peer(open).await;
    let (s, status, _) = Hostile::member(7, 1).dial(victim.addr).await;
    assert_eq!(status, 5);
    closed_by_peer(s).await;
    wait_for("the rejection counter", || {
        victim.counters().handshakes_rejected_removed == 1
    })
    .await;
    assert_unharmed(&victim, &mut good).await;
    shutdown_all(&[victim, good]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_rejects_bad_proof() {
    let h = Hostile {
        secret: b"wrong secret",
        ..Hostile::member(7, 1)
    };
    rejected_handshake(h, 3, |c| c.handshakes_rejected_proof).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_rejects_hello_for_another_node() {
    rejected_handshake(Hostile::member(7, 2), 4, |c| c.handshakes_rejected_receiver).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_rejects_garbage() {
    let (victim, mut good) = victim().await;
    let mut s = TcpStream::connect(victim.addr).await.unwrap();
    let mut challenge = [0u8; 37];
    s.read_exact(&mut challenge).await.unwrap();
    let garbage: Vec<u8> = (0..200u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    s.write_all(&garbage).await.unwrap();
    s.shutdown().await.unwrap();
    closed_by_peer(s).await;
    wait_for("bad_frames", || victim.counters().bad_frames == 1).await;
    assert_only_good_peer_accepted(&victim);
    assert_unharmed(&victim, &mut good).await;
    shutdown_all(&[victim, good]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_times_out_silent_clients() {
    let a = start_on(1, listen().await, Arc::new(Chunks::new(0, 0)), |cfg| {
        cfg.handshake_timeout = Duration::from_millis(100);
    })
    .await;
    let s = TcpStream::connect(a.addr).await.unwrap();
    closed_by_peer(s).await;
    wait_for("handshakes_timed_out", || {
        a.counters().handshakes_timed_out == 1
    })
    .await;
    shutdown_all(&[a]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_drops_connection_on_truncated_frame() {
    let payload = msg(7, 1, 1).encode_to_vec();
    let truncated = |s: &mut Sealer| {
        let mut bytes = s.seal(&payload);
        bytes.truncate(bytes.len() - 3);
        bytes
    };
    bad_stream(truncated, true, |c| c.bad_frames, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_drops_connection_on_oversized_length() {
    bad_stream(
        |_| u32::MAX.to_be_bytes().to_vec(),
        false,
        |c| c.bad_frames,
        1,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_drops_connection_on_undecodable_payload() {
    bad_stream(|s| s.seal(&[0xff; 20]), false, |c| c.bad_frames, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_refuses_a_frame_with_a_flipped_bit_and_closes() {
    let payload = msg(7, 1, 1).encode_to_vec();
    for bit in [3, 8 * 4 + 5, 8 * (4 + payload.len()) + 1] {
        let payload = payload.clone();
        let flipped = move |s: &mut Sealer| {
            let mut bytes = s.seal(&payload);
            bytes[bit / 8] ^= 1 << (bit % 8);
            bytes
        };
        bad_stream(flipped, false, |c| c.bad_frames, 1).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_refuses_a_frame_without_the_session_key() {
    // An on-path attacker knows the wire format but not the session key: it injects a frame after the
    // handshake.
    let payload = msg(7, 1, 1).encode_to_vec();
    let forged = move |_: &mut Sealer| {
        let mut attacker = Sealer {
            key: [0; 32],
            seq: 0,
        };
        attacker.seal(&payload)
    };
    bad_stream(forged, false, |c| c.bad_frames, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_refuses_a_replayed_or_reordered_frame_and_closes() {
    for reorder in [false, true] {
        let (victim, mut good) = victim().await;
        let (mut s, status, mut sealer) = Hostile::member(7, 1).dial(victim.addr).await;
        assert_eq!(status, 0);
        let first = sealer.seal(&msg(7, 1, 1).encode_to_vec());
        let second = sealer.seal(&msg(7, 1, 2).encode_to_vec());
        let bytes = if reorder {
            second // before the first: its tag was made for sequence number 1
        } else {
            [first.clone(), first].concat() // the same frame again
        };
        s.write_all(&bytes).await.unwrap();
        closed_by_peer(s).await;
        wait_for("bad_frames", || victim.counters().bad_frames == 1).await;
        let expected: Vec<u64> = if reorder { vec![] } else { vec![1] };
        assert_eq!(victim.rec.messages_from(7), expected, "reorder {reorder}");
        assert_unharmed_except_from(&victim, &mut good, 7).await;
        shutdown_all(&[victim, good]).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_drops_messages_not_from_the_authenticated_sender() {
    let frames = |s: &mut Sealer| {
        let mut bytes = s.seal(&msg(2, 1, 5).encode_to_vec()); // claims to be the good peer
        bytes.extend(s.seal(&msg(7, 3, 6).encode_to_vec())); // addressed to someone else
        bytes.extend(s.seal(&snapshot_msg(7, 1).encode_to_vec())); // a snapshot without its image
        bytes
    };
    bad_stream(frames, false, |c| c.messages_dropped_wrong_sender, 3).await;
}

// ---- 5. snapshots ----

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transport_streams_snapshot_in_chunks() {
    let source = Arc::new(Chunks::new(40, 64 << 10));
    let mut a = start_on(1, listen().await, source.clone(), |_| {}).await;
    let b = start_on(2, listen().await, Arc::new(Chunks::new(0, 0)), |_| {}).await;
    a.handle.set_peers(vec![Peer {
        id: 2,
        addr: b.addr.to_string(),
    }]);
    b.handle.set_peers(vec![Peer {
        id: 1,
        addr: a.addr.to_string(),
    }]);

    // A second MsgSnapshot while one is in flight is dropped.
    a.send(vec![snapshot_msg(1, 2), snapshot_msg(1, 2)]);
    wait_for("snapshot status", || {
        !a.rec.statuses.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(a.rec.statuses.lock().unwrap().as_slice(), &[(2, true)]);
    let c = a.counters();
    assert_eq!(
        (
            c.snapshots_sent,
            c.snapshots_dropped_busy,
            c.snapshots_failed
        ),
        (1, 1, 0)
    );
    assert_eq!(
        c.messages_sent, 0,
        "snapshots do not go through the raft queue"
    );

    let (msg, image) = b
        .rec
        .snapshots
        .lock()
        .unwrap()
        .pop()
        .expect("delivered before the ack");
    assert_eq!(msg, snapshot_msg(1, 2));
    assert_eq!(image.chunk_count(), 40);
    assert_eq!(image.bytes(), 40 * (64 << 10));
    let chunks: Vec<Vec<u8>> = image.chunks().unwrap().map(Result::unwrap).collect();
    assert!(chunks == source.expected(), "image differs from the source");
    assert!(image.path().starts_with(b.dir.path()));
    assert_eq!(b.staged_files(), 1);
    image.remove();
    assert_eq!(b.staged_files(), 0);
    assert_eq!(b.counters().snapshots_received, 1);
    assert!(b.rec.messages.lock().unwrap().is_empty());
    shutdown_all(&[a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transport_snapshot_source_failure_is_reported_and_cleaned_up() {
    let source = Arc::new(Chunks {
        fail_at: 20,
        failures: AtomicUsize::new(1),
        ..Chunks::new(40, 16 << 10)
    });
    let mut a = start_on(1, listen().await, source.clone(), |_| {}).await;
    let b = start_on(2, listen().await, Arc::new(Chunks::new(0, 0)), |_| {}).await;
    a.handle.set_peers(vec![Peer {
        id: 2,
        addr: b.addr.to_string(),
    }]);
    b.handle.set_peers(vec![Peer {
        id: 1,
        addr: a.addr.to_string(),
    }]);

    a.send(vec![snapshot_msg(1, 2)]);
    wait_for("failure status", || {
        !a.rec.statuses.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(a.rec.statuses.lock().unwrap().as_slice(), &[(2, false)]);
    assert_eq!(a.counters().snapshots_failed, 1);
    wait_for("receiver gave up", || b.counters().snapshots_failed == 1).await;
    assert!(b.rec.snapshots.lock().unwrap().is_empty());
    assert_eq!(b.staged_files(), 0, "no staged file left");

    // Not stuck: the next attempt goes through.
    a.send(vec![snapshot_msg(1, 2)]);
    wait_for("second status", || {
        a.rec.statuses.lock().unwrap().len() == 2
    })
    .await;
    assert_eq!(a.rec.statuses.lock().unwrap()[1], (2, true));
    let (_, image) = b.rec.snapshots.lock().unwrap().pop().unwrap();
    let chunks: Vec<Vec<u8>> = image.chunks().unwrap().map(Result::unwrap).collect();
    assert!(chunks == source.expected());
    shutdown_all(&[a, b]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_removes_stale_staged_images_at_start() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("raft-snapshot-2-1.partial"), b"x").unwrap();
    std::fs::write(dir.path().join("raft-snapshot-2-2.img"), b"x").unwrap();
    std::fs::write(dir.path().join("unrelated"), b"x").unwrap();
    let listener = listen().await;
    let cfg = config(1, listener.local_addr().unwrap(), dir.path());
    let (_t, handle) = TcpTransport::start(
        cfg,
        listener,
        Arc::new(Recorder::default()),
        Arc::new(Chunks::new(0, 0)),
    )
    .await
    .unwrap();
    assert_eq!(staged_files(dir.path()), 1);
    handle.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_closes_peer_connections_beyond_its_limit_at_once() {
    let a = start_on(1, listen().await, Arc::new(Chunks::new(0, 0)), |cfg| {
        cfg.handshake_timeout = Duration::from_secs(60);
        cfg.max_inbound_connections = 3;
    })
    .await;
    // Three silent dialers hold every slot (their handshakes would only time out after a minute).
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(a.addr).await.unwrap());
    }
    // The fourth is closed at once instead of waiting out its handshake.
    let s = TcpStream::connect(a.addr).await.unwrap();
    closed_by_peer(s).await;
    wait_for("connections_refused", || {
        a.counters().connections_refused == 1
    })
    .await;
    // A freed slot is usable again (once the acceptor has seen the close): a new connection is served,
    // i.e. it gets the handshake's challenge instead of an immediate close.
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut again = TcpStream::connect(a.addr).await.unwrap();
        let mut sink = [0u8; 64];
        match tokio::time::timeout(Duration::from_secs(2), again.read(&mut sink)).await {
            Ok(Ok(n)) if n > 0 => break,
            other => assert!(
                Instant::now() < deadline,
                "a freed slot was never reused: {other:?}"
            ),
        }
    }
    shutdown_all(&[a]).await;
}

// ---- 6. mutual TLS ----

/// A CA written to `dir`, and the peer files of node `id` it signs (the leaf names `node-<id>`).
fn tls_files(dir: &Path, ca: &Ca, id: u64) -> TlsFiles {
    let ca_path = ca.write(dir, &format!("ca-for-{id}"));
    let leaf = ca.issue(&[&format!("node-{id}"), "127.0.0.1"]);
    let (cert, key) = leaf.write(dir, &format!("node-{id}"));
    TlsFiles {
        cert,
        key,
        ca: ca_path,
    }
}

/// Nodes `ids`, each with peer TLS from the CA `ca_of(id)`, all knowing each other (no wait for links).
async fn tls_nodes(
    pki: &Path,
    ids: &[u64],
    ca_of: impl Fn(u64) -> &'static Ca,
    source: Arc<dyn SnapshotSource>,
) -> Vec<Node> {
    let mut nodes = Vec::new();
    for &id in ids {
        let files = tls_files(pki, ca_of(id), id);
        nodes.push(
            start_on(id, listen().await, source.clone(), |cfg| {
                cfg.tls = Some(files)
            })
            .await,
        );
    }
    let peers: Vec<Peer> = nodes
        .iter()
        .map(|n| Peer {
            id: n.id,
            addr: n.addr.to_string(),
        })
        .collect();
    for n in &nodes {
        n.handle.set_peers(peers.clone());
    }
    nodes
}

fn good_ca() -> &'static Ca {
    static CA: std::sync::OnceLock<Ca> = std::sync::OnceLock::new();
    CA.get_or_init(|| Ca::new("kvs test peer CA"))
}

fn other_ca() -> &'static Ca {
    static CA: std::sync::OnceLock<Ca> = std::sync::OnceLock::new();
    CA.get_or_init(|| Ca::new("another CA"))
}

/// A TLS client connection to `addr` expecting `node-<id>`, presenting `identity`.
async fn tls_connect(
    addr: SocketAddr,
    id: u64,
    identity: &Leaf,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let connector = tokio_rustls::TlsConnector::from(client_config(good_ca(), Some(identity)));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = rustls::ServerName::try_from(format!("node-{id}").as_str()).unwrap();
    connector.connect(name, tcp).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn transport_with_mutual_tls_delivers_and_refuses_a_peer_of_another_ca() {
    let pki = tempfile::tempdir().unwrap();
    let source = Arc::new(Chunks::new(8, 16 << 10));
    let mut nodes = tls_nodes(
        pki.path(),
        &[1, 2, 3],
        |id| if id == 3 { other_ca() } else { good_ca() },
        source.clone(),
    )
    .await;
    let n = 500u64;
    nodes[0].send((1..=n).map(|i| msg(1, 2, i)).collect());
    nodes[1].send((1..=n).map(|i| msg(2, 1, i)).collect());
    nodes[2].send((1..=n).map(|i| msg(3, 1, i)).collect());
    wait_for("TLS delivery both ways", || {
        nodes[1].rec.messages_from(1).len() == n as usize
            && nodes[0].rec.messages_from(2).len() == n as usize
    })
    .await;
    assert_eq!(nodes[1].rec.messages_from(1), (1..=n).collect::<Vec<_>>());
    // Snapshots travel over TLS too.
    nodes[0].send(vec![snapshot_msg(1, 2)]);
    wait_for("snapshot delivered over TLS", || {
        nodes[0].rec.statuses.lock().unwrap().contains(&(2, true))
    })
    .await;
    let (_, image) = nodes[1].rec.snapshots.lock().unwrap().pop().unwrap();
    let got: Vec<Vec<u8>> = image.chunks().unwrap().map(Result::unwrap).collect();
    assert_eq!(got, source.expected());
    // Node 3's certificate comes from another CA: refused both ways, nothing of it delivered.
    wait_for("node 3 refused by node 1 and unable to reach it", || {
        nodes[0].counters().handshakes_failed_tls >= 1
            && nodes[0].counters().connect_failures >= 1
            && nodes[2].counters().connect_failures >= 1
    })
    .await;
    assert!(nodes[0].rec.messages_from(3).is_empty());
    assert_eq!(nodes[2].rec.message_count(), 0);
    assert_eq!(nodes[0].counters().handshakes_accepted, 1); // node 2's raft stream only
                                                            // A plain-TCP dialer is refused as well (it cannot even complete the TLS handshake).
    let failed = nodes[0].counters().handshakes_failed_tls;
    let mut s = TcpStream::connect(nodes[0].addr).await.unwrap();
    s.write_all(&[0x16; 64]).await.unwrap();
    closed_by_peer(s).await;
    wait_for("the plain dialer's TLS failure", || {
        nodes[0].counters().handshakes_failed_tls > failed
    })
    .await;
    assert_eq!(nodes[0].counters().handshakes_accepted, 1);
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_tls_binds_the_claimed_id_to_the_certificate() {
    let pki = tempfile::tempdir().unwrap();
    let nodes = tls_nodes(
        pki.path(),
        &[1, 2],
        |_| good_ca(),
        Arc::new(Chunks::new(0, 0)),
    )
    .await;
    nodes[0].handle.set_peers(vec![
        Peer {
            id: 2,
            addr: nodes[1].addr.to_string(),
        },
        Peer {
            id: 7,
            addr: listen().await.local_addr().unwrap().to_string(),
        },
    ]);
    // Member 7's genuine certificate, used to claim member 2's id: refused (reason 7), nothing learned.
    let seven = good_ca().issue(&["node-7"]);
    let mut tls = tls_connect(nodes[0].addr, 1, &seven).await;
    let (status, _) = Hostile::member(2, 1).dial_on(&mut tls).await;
    assert_eq!(status, 7);
    wait_for("the identity rejection", || {
        nodes[0].counters().handshakes_rejected_identity == 1
    })
    .await;
    assert!(nodes[0]
        .rec
        .addresses
        .lock()
        .unwrap()
        .iter()
        .all(|(_, peer, _)| peer != "evil:1"));
    // The same certificate speaking for its own id is accepted.
    let mut tls = tls_connect(nodes[0].addr, 1, &seven).await;
    let (status, _) = Hostile::member(7, 1).dial_on(&mut tls).await;
    assert_eq!(status, 0);
    shutdown_all(&nodes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_tls_reload_serves_new_certificates_and_keeps_them_on_a_broken_file() {
    let pki = tempfile::tempdir().unwrap();
    let files = tls_files(pki.path(), good_ca(), 1);
    let node = start_on(1, listen().await, Arc::new(Chunks::new(0, 0)), |cfg| {
        cfg.tls = Some(files.clone())
    })
    .await;
    let client = good_ca().issue(&["node-9"]);
    let served = |tls: &tokio_rustls::client::TlsStream<TcpStream>| {
        tls.get_ref().1.peer_certificates().unwrap()[0].0.clone()
    };
    let first = served(&tls_connect(node.addr, 1, &client).await);
    assert_eq!(
        first,
        testkit::certs::der_of(&std::fs::read_to_string(&files.cert).unwrap())
    );

    let renewed = good_ca().issue(&["node-1", "127.0.0.1"]);
    renewed.write(pki.path(), "node-1");
    assert!(node.handle.reload_tls().unwrap());
    let open = tls_connect(node.addr, 1, &client).await;
    assert_eq!(served(&open), renewed.der());
    assert_ne!(renewed.der(), first);

    // A broken file: the reload fails and the renewed certificate stays in use.
    std::fs::write(&files.cert, "not a certificate").unwrap();
    assert!(node.handle.reload_tls().is_err());
    assert_eq!(
        served(&tls_connect(node.addr, 1, &client).await),
        renewed.der()
    );
    // A certificate that does not name this node is refused as well.
    other_ca().issue(&["node-2"]).write(pki.path(), "node-1");
    let err = node.handle.reload_tls().unwrap_err().to_string();
    assert!(err.contains("node-1"), "{err}");
    assert_eq!(
        served(&tls_connect(node.addr, 1, &client).await),
        renewed.der()
    );
    drop(open);
    shutdown_all(&[node]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_refuses_to_start_with_a_certificate_for_another_node() {
    let pki = tempfile::tempdir().unwrap();
    let mut files = tls_files(pki.path(), good_ca(), 2);
    let dir = tempfile::tempdir().unwrap();
    let listener = listen().await;
    let addr = listener.local_addr().unwrap();
    let mut cfg = config(1, addr, dir.path());
    cfg.tls = Some(files.clone());
    let err = TcpTransport::start(
        cfg.clone(),
        listener,
        Arc::new(Recorder::default()),
        Arc::new(Chunks::new(0, 0)),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("DNS:node-1"), "{err}");
    files.key = pki.path().join("missing.key");
    cfg.tls = Some(files);
    let err = TcpTransport::start(
        cfg,
        listen().await,
        Arc::new(Recorder::default()),
        Arc::new(Chunks::new(0, 0)),
    )
    .await
    .err()
    .expect("refused");
    assert!(err.to_string().contains("missing.key"), "{err}");
}
