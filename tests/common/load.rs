//! A concurrent client load over HTTP that records every request — invocation, response, outcome — as a
//! history for `raft_node::linearizability::check`, and the end-of-test verification: the cluster
//! settles, every node holds the same data as a linearizable read on the leader, and the whole history
//! (with those final reads) is linearizable.
//!
//! Keys: `shared-0..3` (puts of unique values by every writer, linearizable reads by every reader), `ctr`
//! (incr by 1 from every writer, read too) and `u-C-N` (one put each: an acknowledged one must be there
//! at the end).
//! Keys have no `/`, so the checker checks each key on its own.
//!
//! Outcomes, from what the client saw:
//! * 2xx, and 404 `key_not_found` for a read → `Ok` with the returned value;
//! * 429, 503 (`not_leader`, `no_quorum`, `leader_unreachable`, `shutting_down`, `too_many_connections`),
//!   or a connection that could not be made → `Failed` (definitely no effect);
//! * 504, a client timeout, or a connection that broke mid-request → `Unknown` for a write (it may still
//!   take effect at any later time); a read without an answer is dropped (`Failed`).
//! * anything else is *unexpected* (a server bug): recorded as `Unknown` and reported by the test.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use testkit::linearizability::{check, CheckBudget, CheckResult, Event, Op, Outcome, Ret};
use tokio::task::JoinHandle;

use super::http::{Http, HttpError, Resp};
use super::proc::Cluster;
use super::{await_applied, await_leader, diff, scan_all, secs, view};

pub const SHARED_KEYS: usize = 4;
pub const COUNTER: &str = "ctr";

/// Microseconds since the test's start: the history's time base.
#[derive(Clone, Copy)]
pub struct Clock(Instant);

impl Clock {
    pub fn new() -> Clock {
        Clock(Instant::now())
    }

    pub fn now_us(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}

/// One request of the history with what is known about where it went and how it ended.
#[derive(Clone, Debug)]
pub struct Rec {
    pub event: Event,
    pub node: u64,
    pub status: Option<u16>,
    pub code: Option<String>,
    pub error: Option<String>,
    /// An answer the API does not allow here (a server bug).
    pub unexpected: bool,
}

impl Rec {
    pub fn is_write(&self) -> bool {
        !self.event.op.is_read_only()
    }

    pub fn is_ok(&self) -> bool {
        matches!(self.event.outcome, Outcome::Ok(_))
    }

    pub fn describe(&self) -> String {
        format!(
            "client {} -> node {} op {} [{} .. {}] outcome {:?} status {:?} code {:?} error {:?}",
            self.event.client,
            self.node,
            op_text(&self.event.op),
            self.event.invoke,
            self.event
                .complete
                .map_or("-".to_owned(), |c| c.to_string()),
            self.event.outcome,
            self.status,
            self.code,
            self.error
        )
    }
}

pub fn op_text(op: &Op) -> String {
    let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match op {
        Op::Put { key, value } => format!("put {} = {}", s(key), s(value)),
        Op::Get { key } => format!("get {}", s(key)),
        Op::Incr { key, delta } => format!("incr {} by {delta}", s(key)),
        other => format!("{other:?}"),
    }
}

/// Who sends what where. Writers and readers are separate clients, so a write never waits behind a
/// read that hangs during a failover (and the time writes take to resume is measured on its own).
#[derive(Clone)]
pub struct LoadSpec {
    /// Clients that put and incr, each sending its requests round-robin over `targets`.
    pub writers: u64,
    /// Clients that read linearizably, round-robin over `targets`.
    pub readers: u64,
    pub targets: Vec<(u64, SocketAddr)>,
    /// Extra readers, each sending every request to one node.
    pub probes: Vec<(u64, SocketAddr)>,
    /// Client-side deadline of one request.
    pub timeout: Duration,
}

pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Vec<Rec>>>,
}

/// xorshift64*, seeded per client: the op mix needs no quality, only variety.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn shared_key(i: u64) -> String {
    format!("shared-{i}")
}

fn next_op(rng: &mut Rng, client: u64, n: u64, reader: bool) -> Op {
    if reader {
        return match rng.below(5) {
            0 => Op::get(COUNTER),
            _ => Op::get(shared_key(rng.below(SHARED_KEYS as u64))),
        };
    }
    let value = format!("c{client}-n{n}");
    match rng.below(100) {
        0..=39 => Op::put(shared_key(rng.below(SHARED_KEYS as u64)), value),
        40..=74 => Op::put(format!("u-{client}-{n}"), value),
        _ => Op::incr(COUNTER, 1),
    }
}

/// One simulated client: its id, the nodes it sends to (id, address), and whether it only reads.
type Client = (u64, Vec<(u64, SocketAddr)>, bool);

impl Load {
    pub fn start(http: &Http, clock: Clock, spec: &LoadSpec) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let http = http.with_timeout(spec.timeout);
        let mut tasks = Vec::new();
        let mut clients: Vec<Client> = (0..spec.writers)
            .map(|c| (c, spec.targets.clone(), false))
            .collect();
        for c in 0..spec.readers {
            clients.push((50 + c, spec.targets.clone(), true));
        }
        for (i, probe) in spec.probes.iter().enumerate() {
            clients.push((100 + i as u64, vec![*probe], true));
        }
        for (client, targets, reader) in clients {
            let stop = Arc::clone(&stop);
            let http = http.clone();
            tasks.push(tokio::spawn(async move {
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ (client + 1).wrapping_mul(0x1234_5678_9ABC_DEF1));
                let mut recs = Vec::new();
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let (node, addr) = targets[(n + client) as usize % targets.len()];
                    let op = next_op(&mut rng, client, n, reader);
                    let rec = execute(&http, clock, client, node, addr, op).await;
                    let pause = !rec.is_ok();
                    recs.push(rec);
                    n += 1;
                    if pause {
                        // Pacing after a failure, so a dead node does not turn the client into a busy loop.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
                recs
            }));
        }
        Load { stop, tasks }
    }

    /// Stop every client after its current request; the merged history.
    pub async fn finish(self) -> Vec<Rec> {
        self.stop.store(true, Ordering::Relaxed);
        let mut all = Vec::new();
        for t in self.tasks {
            all.extend(t.await.expect("client task"));
        }
        all
    }
}

async fn execute(
    http: &Http,
    clock: Clock,
    client: u64,
    node: u64,
    addr: SocketAddr,
    op: Op,
) -> Rec {
    let invoke = clock.now_us();
    let result = match &op {
        Op::Put { key, value } => {
            let key = String::from_utf8_lossy(key);
            http.put(addr, &format!("/v1/kv/{key}"), value).await
        }
        Op::Incr { key, delta } => {
            let key = String::from_utf8_lossy(key);
            http.post(addr, &format!("/v1/kv/{key}/incr?delta={delta}"))
                .await
        }
        Op::Get { key } => {
            let key = String::from_utf8_lossy(key);
            http.get(addr, &format!("/v1/kv/{key}?consistency=linearizable"))
                .await
        }
        other => panic!("the load does not send {other:?}"),
    };
    let complete = clock.now_us();
    classify(client, node, op, invoke, complete, result)
}

fn classify(
    client: u64,
    node: u64,
    op: Op,
    invoke: u64,
    complete: u64,
    result: Result<Resp, HttpError>,
) -> Rec {
    let write = !op.is_read_only();
    let lost = if write {
        Outcome::Unknown
    } else {
        Outcome::Failed
    };
    let (outcome, status, code, error, unexpected) = match result {
        Err(e @ HttpError::Connect(_)) => (Outcome::Failed, None, None, Some(e.to_string()), false),
        Err(e) => (lost, None, None, Some(e.to_string()), false),
        Ok(r) => {
            let code = r.error_code();
            let (outcome, unexpected) = match (r.status, code.as_deref(), &op) {
                (200, _, Op::Put { .. }) => (Outcome::Ok(Ret::Done), false),
                (200, _, Op::Incr { .. }) => match r.json()["value"].as_i64() {
                    Some(v) => (Outcome::Ok(Ret::Counter(v)), false),
                    None => (Outcome::Unknown, true),
                },
                (200, _, Op::Get { .. }) if r.header_u64("kvs-ts").is_some() => {
                    (Outcome::Ok(Ret::Value(Some(r.body.to_vec()))), false)
                }
                (404, Some("key_not_found"), Op::Get { .. }) => {
                    (Outcome::Ok(Ret::Value(None)), false)
                }
                (429, Some("overloaded"), _) => (Outcome::Failed, false),
                (
                    503,
                    Some(
                        "not_leader"
                        | "no_quorum"
                        | "leader_unreachable"
                        | "shutting_down"
                        | "too_many_connections",
                    ),
                    _,
                ) => (Outcome::Failed, false),
                (504, Some("unknown_outcome"), _) if write => (Outcome::Unknown, false),
                (504, Some("timeout"), Op::Get { .. }) => (Outcome::Failed, false),
                _ => (lost.clone(), true),
            };
            let error = (r.status != 200).then(|| r.text());
            (outcome, Some(r.status), code, error, unexpected)
        }
    };
    Rec {
        event: Event {
            client,
            op,
            invoke,
            complete: Some(complete),
            outcome,
        },
        node,
        status,
        code,
        error,
        unexpected,
    }
}

/// Counts for the report: requests, and per kind ok / failed / unknown.
pub fn summary(recs: &[Rec]) -> String {
    let mut counts: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for r in recs {
        let kind = match r.event.op {
            Op::Put { .. } => "put",
            Op::Incr { .. } => "incr",
            Op::Get { .. } => "get",
            _ => "other",
        };
        let slot = match r.event.outcome {
            Outcome::Ok(_) => 0,
            Outcome::Failed => 1,
            Outcome::Unknown => 2,
        };
        counts.entry(kind).or_default()[slot] += 1;
    }
    let parts: Vec<String> = counts
        .iter()
        .map(|(k, [ok, failed, unknown])| {
            format!("{k}: {ok} ok / {failed} failed / {unknown} unknown")
        })
        .collect();
    format!("{} requests ({})", recs.len(), parts.join(", "))
}

/// Panics on any answer the API does not allow (a server bug), listing them.
pub fn assert_no_unexpected(name: &str, recs: &[Rec]) {
    let bad: Vec<String> = recs
        .iter()
        .filter(|r| r.unexpected)
        .take(20)
        .map(Rec::describe)
        .collect();
    assert!(
        bad.is_empty(),
        "[{name}] {} unexpected answers, e.g.:\n{}",
        recs.iter().filter(|r| r.unexpected).count(),
        bad.join("\n")
    );
}

/// The first acknowledged write invoked at or after `since` on a node other than `excluded`:
/// (its completion − `since`, the node).
pub fn first_ack_after(recs: &[Rec], since: u64, excluded: u64) -> Option<(u64, u64)> {
    recs.iter()
        .filter(|r| r.is_write() && r.is_ok() && r.node != excluded && r.event.invoke >= since)
        .filter_map(|r| Some((r.event.complete? - since, r.node)))
        .min()
}

/// Every key the history touched.
fn keys_of(recs: &[Rec]) -> BTreeSet<Vec<u8>> {
    recs.iter()
        .filter_map(|r| match &r.event.op {
            Op::Put { key, .. } | Op::Get { key } | Op::Incr { key, .. } => Some(key.clone()),
            _ => None,
        })
        .collect()
}

/// The end state, once the cluster has settled: the leader's linearizable view.
pub struct Settled {
    pub leader: u64,
    pub truth: BTreeMap<String, String>,
    /// Final linearizable reads (one scan through each node), as history events over every key.
    pub final_reads: Vec<Event>,
}

/// With the load stopped: wait for a leader among `nodes`, wait until each has applied the leader's commit
/// index, then require that each node's local (stale) scan and its linearizable scan (served through it)
/// equal the leader's linearizable scan. Retries if the log moved meanwhile (a write abandoned by its
/// client may still commit late).
pub async fn settle_and_compare(
    cluster: &Cluster,
    http: &Http,
    clock: Clock,
    nodes: &[u64],
    recs: &[Rec],
) -> Settled {
    let name = &cluster.name;
    let keys = keys_of(recs);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (leader, _) = await_leader(cluster, http, nodes, Duration::from_secs(15)).await;
        let commit_of = |v: &super::View| v.member(leader).map(|m| m.commit).unwrap_or(0);
        let leader_view = view(http, cluster.addr(leader))
            .await
            .unwrap_or_else(|e| panic!("[{name}] leader {leader}'s view: {e}"));
        let commit = commit_of(&leader_view);
        for &id in nodes {
            await_applied(cluster, http, id, commit, Duration::from_secs(20)).await;
        }
        let invoke = clock.now_us();
        let truth = scan_all(http, cluster.addr(leader), "linearizable")
            .await
            .unwrap_or_else(|e| panic!("[{name}] linearizable scan on leader {leader}: {e}"));
        let complete = clock.now_us();
        let mut final_reads = reads_of(&keys, &truth, 1000, invoke, complete);
        let mut problems = Vec::new();
        for (i, &id) in nodes.iter().enumerate() {
            let local = scan_all(http, cluster.addr(id), "stale")
                .await
                .unwrap_or_else(|e| panic!("[{name}] stale scan on node {id}: {e}"));
            let d = diff(&truth, &local, 10);
            if !d.is_empty() {
                problems.push(format!(
                    "node {id}'s own (stale) data after applying index {commit} differs from the leader's \
                     linearizable read: {d:?}"
                ));
            }
            let invoke = clock.now_us();
            let lin = scan_all(http, cluster.addr(id), "linearizable")
                .await
                .unwrap_or_else(|e| panic!("[{name}] linearizable scan through node {id}: {e}"));
            let complete = clock.now_us();
            final_reads.extend(reads_of(&keys, &lin, 1001 + i as u64, invoke, complete));
        }
        let moved = view(http, cluster.addr(leader))
            .await
            .map(|v| commit_of(&v) != commit || v.leader != Some(leader))
            .unwrap_or(true);
        if problems.is_empty() {
            return Settled {
                leader,
                truth,
                final_reads,
            };
        }
        assert!(
            moved && attempt < 5,
            "[{name}] after settling (leader {leader}, commit {commit}, attempt {attempt}):\n{}",
            problems.join("\n")
        );
    }
}

/// A scan's answer as one linearizable `get` per key (absent keys read `None`).
fn reads_of(
    keys: &BTreeSet<Vec<u8>>,
    seen: &BTreeMap<String, String>,
    client: u64,
    invoke: u64,
    complete: u64,
) -> Vec<Event> {
    keys.iter()
        .map(|k| Event {
            client,
            op: Op::Get { key: k.clone() },
            invoke,
            complete: Some(complete),
            outcome: Outcome::Ok(Ret::Value(
                seen.get(&*String::from_utf8_lossy(k))
                    .map(|v| v.as_bytes().to_vec()),
            )),
        })
        .collect()
}

/// Every acknowledged put of a `u-` key (written once) must be in `truth` with its value.
pub fn assert_acknowledged_unique_writes_present(
    name: &str,
    recs: &[Rec],
    truth: &BTreeMap<String, String>,
) -> usize {
    let mut checked = 0;
    let mut lost = Vec::new();
    for r in recs.iter().filter(|r| r.is_ok()) {
        if let Op::Put { key, value } = &r.event.op {
            let key = String::from_utf8_lossy(key).into_owned();
            if !key.starts_with("u-") {
                continue;
            }
            checked += 1;
            let value = String::from_utf8_lossy(value).into_owned();
            if truth.get(&key) != Some(&value) {
                lost.push(format!("{} — now {:?}", r.describe(), truth.get(&key)));
            }
        }
    }
    assert!(
        lost.is_empty(),
        "[{name}] {} of {checked} acknowledged writes of once-written keys are lost:\n{}",
        lost.len(),
        lost.iter().take(20).cloned().collect::<Vec<_>>().join("\n")
    );
    checked
}

/// Run the checker on the history plus the final reads; panics unless it is linearizable (an exhausted
/// budget fails too). Returns the number of events checked.
pub fn assert_linearizable(name: &str, recs: &[Rec], final_reads: &[Event]) -> usize {
    let mut history: Vec<Event> = recs.iter().map(|r| r.event.clone()).collect();
    history.extend(final_reads.iter().cloned());
    let started = Instant::now();
    let result = check(
        &history,
        CheckBudget {
            max_states_per_partition: 200_000,
        },
    );
    let took = started.elapsed();
    match result {
        CheckResult::Linearizable => {
            println!(
                "[{name}] history of {} events ({} client requests + {} final reads) is linearizable (checked in {took:?})",
                history.len(),
                recs.len(),
                final_reads.len()
            );
            history.len()
        }
        CheckResult::NotLinearizable { partition, detail } => {
            let key_recs: Vec<String> = recs
                .iter()
                .filter(|r| partition.contains(&*op_key(&r.event.op)))
                .take(300)
                .map(Rec::describe)
                .collect();
            panic!(
                "[{name}] history of {} events is NOT linearizable in partition {partition}:\n{detail}\n\
                 requests on it (first 300):\n{}",
                history.len(),
                key_recs.join("\n")
            )
        }
        CheckResult::Unknown { partition } => panic!(
            "[{name}] the checker could not decide the history of {} events within its budget \
             (partition {partition}, {took:?}); {}",
            history.len(),
            summary(recs)
        ),
    }
}

fn op_key(op: &Op) -> String {
    match op {
        Op::Put { key, .. } | Op::Get { key } | Op::Incr { key, .. } => {
            format!("\"{}\"", String::from_utf8_lossy(key))
        }
        _ => String::new(),
    }
}

/// For reports: the duration between two history times.
pub fn span(from: u64, to: u64) -> String {
    secs(to.saturating_sub(from))
}

/// With `KVS_PROC_DUMP=DIR` set, write the history (sorted by invocation) to `DIR/<name>.history`.
pub fn dump_if_asked(name: &str, recs: &[Rec]) {
    let Some(dir) = std::env::var_os("KVS_PROC_DUMP") else {
        return;
    };
    let mut sorted: Vec<&Rec> = recs.iter().collect();
    sorted.sort_by_key(|r| r.event.invoke);
    let text: Vec<String> = sorted.iter().map(|r| r.describe()).collect();
    let path = std::path::Path::new(&dir).join(format!("{name}.history"));
    std::fs::write(&path, text.join("\n")).expect("write the history dump");
    println!("[{name}] history written to {}", path.display());
}
