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
    Inbound, Peer, SnapshotImage, SnapshotSource, TcpTransport, TransportConfig, TransportCounters,
    TransportHandle,
};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

    /// Run the handshake; returns the stream and the acceptor's status byte (0 = accepted).
    async fn dial(&self, addr: SocketAddr) -> (TcpStream, u8) {
        let mut s = TcpStream::connect(addr).await.unwrap();
        let mut challenge = [0u8; 37];
        s.read_exact(&mut challenge).await.unwrap();
        assert_eq!(&challenge[..5], b"KVSR\x01");
        let put_str = |out: &mut Vec<u8>, v: &str| {
            out.extend_from_slice(&(v.len() as u16).to_be_bytes());
            out.extend_from_slice(v.as_bytes());
        };
        let mut body = b"KVSR\x01".to_vec();
        body.push(self.kind);
        put_str(&mut body, self.cluster);
        body.extend_from_slice(&self.sender.to_be_bytes());
        body.extend_from_slice(&self.receiver.to_be_bytes());
        put_str(&mut body, "evil:1");
        put_str(&mut body, "evil:2");
        body.extend_from_slice(&[9u8; 32]);
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret).unwrap();
        mac.update(b"kvs-raft/1 hello");
        mac.update(&challenge[5..]);
        mac.update(&body);
        let tag = mac.finalize().into_bytes();
        let mut hello = ((body.len() + 32) as u32).to_be_bytes().to_vec();
        hello.extend_from_slice(&body);
        hello.extend_from_slice(&tag);
        s.write_all(&hello).await.unwrap();
        let mut status = [0u8; 1];
        s.read_exact(&mut status).await.unwrap();
        if status[0] == 0 {
            let mut welcome = [0u8; 32];
            s.read_exact(&mut welcome).await.unwrap();
            let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret).unwrap();
            mac.update(b"kvs-raft/1 welcome");
            mac.update(&[9u8; 32]);
            mac.update(&tag);
            mac.verify_slice(&welcome)
                .expect("acceptor proves the secret");
        }
        (s, status[0])
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

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut f = (payload.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(payload);
    f
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
    assert!(victim.rec.snapshots.lock().unwrap().is_empty());
    good.send(vec![msg(2, 1, 777)]);
    wait_for("a good message after the attack", || {
        victim.rec.messages_from(2).contains(&777)
    })
    .await;
    let msgs = victim.rec.messages.lock().unwrap();
    assert!(
        msgs.iter().all(|m| m.from == 2),
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
    let (s, status) = hostile.dial(victim.addr).await;
    assert_eq!(status, expect_status);
    closed_by_peer(s).await;
    wait_for("the rejection counter", || counter(&victim.counters()) == 1).await;
    assert_only_good_peer_accepted(&victim);
    assert_unharmed(&victim, &mut good).await;
    shutdown_all(&[victim, good]).await;
}

/// After a good handshake as member 7, send `bytes` (then close if `close`); `counter` must reach `expect`.
async fn bad_stream(
    bytes: Vec<u8>,
    close: bool,
    counter: fn(&TransportCounters) -> u64,
    expect: u64,
) {
    let (victim, mut good) = victim().await;
    let (mut s, status) = Hostile::member(7, 1).dial(victim.addr).await;
    assert_eq!(status, 0);
    s.write_all(&bytes).await.unwrap();
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
    let (open, status) = Hostile::member(7, 1).dial(victim.addr).await;
    assert_eq!(status, 0);
    victim.handle.set_removed(vec![7]);
    closed_by_peer(open).await;
    let (s, status) = Hostile::member(7, 1).dial(victim.addr).await;
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
    let mut bytes = frame(&payload);
    bytes.truncate(bytes.len() - 3);
    bad_stream(bytes, true, |c| c.bad_frames, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_drops_connection_on_oversized_length() {
    bad_stream(u32::MAX.to_be_bytes().to_vec(), false, |c| c.bad_frames, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_drops_connection_on_undecodable_payload() {
    bad_stream(frame(&[0xff; 20]), false, |c| c.bad_frames, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transport_drops_messages_not_from_the_authenticated_sender() {
    let mut bytes = frame(&msg(2, 1, 5).encode_to_vec()); // claims to be the good peer
    bytes.extend(frame(&msg(7, 3, 6).encode_to_vec())); // addressed to someone else
    bytes.extend(frame(&snapshot_msg(7, 1).encode_to_vec())); // a snapshot without its image
    bad_stream(bytes, false, |c| c.messages_dropped_wrong_sender, 3).await;
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
