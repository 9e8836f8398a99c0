//! etcd over its v3 gRPC API (`etcd-client`).
//!
//! | op | etcd requests |
//! | --- | --- |
//! | `Put` | one `Put` |
//! | `Update` | a `Range` of the score key, then one `Txn`: if the score's `mod_revision` is still the one read, put the new score and the position; on a failed compare (another writer got in between) read and try again (counted in `cas_retries`) |
//! | `Checkpoint` | one `Txn` deleting the prefix `p{n}/` (every key of the player) |
//! | `LateRead` | one `Range` of the position: **etcd has no event-time reads** (a read at a past revision is not a read at a past event time, and the compaction that keeps etcd's database bounded removes old revisions), so it reads the latest value |
//! | batch of N | runs of `Put`/`Update` between checkpoints become one read `Txn` (the scores' `Range`s) and one write `Txn` (all compares, all puts; several updates of one player in a run are folded into one: last position, summed deltas, since etcd refuses a `Txn` that writes one key twice); a checkpoint is its own delete `Txn`; late reads are `Range`s in the read `Txn` |
//!
//! Scores are decimal ASCII integers (what `etcdctl` users store). Each worker connects to one member
//! (worker `w` to member `w mod n`); followers forward writes to the leader, as etcd does for any client.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

use etcd_client::{Compare, CompareOp, DeleteOptions, KvClient, Txn, TxnOp, TxnOpResponse};
use kvs_raft::bench::{entity, position_key, score_key, Driver, ErrorLabel, Op};

/// How often one update retries its compare-and-put before it counts as an error (`etcd-cas-conflict`).
/// Conflicts only come from another worker updating the same player's score at the same moment.
pub const MAX_CAS_ATTEMPTS: u32 = 100;

/// The etcd driver: endpoints `http://127.0.0.1:port`, one per member.
#[derive(Debug)]
pub struct EtcdDriver {
    endpoints: Vec<String>,
    cas_retries: AtomicU64,
}

impl EtcdDriver {
    pub fn new(endpoints: Vec<String>) -> EtcdDriver {
        EtcdDriver {
            endpoints,
            cas_retries: AtomicU64::new(0),
        }
    }
}

impl Driver for EtcdDriver {
    type Conn = KvClient;

    async fn connect(&self, worker: usize) -> Result<KvClient, ErrorLabel> {
        let Some(endpoint) = self.endpoints.get(worker % self.endpoints.len().max(1)) else {
            return Err("etcd-no-endpoint".into());
        };
        let client = etcd_client::Client::connect([endpoint.as_str()], None)
            .await
            .map_err(|e| label(&e))?;
        Ok(client.kv_client())
    }

    async fn execute(&self, conn: &mut KvClient, ops: &[Op]) -> Result<(), ErrorLabel> {
        match ops {
            [Op::Put { key, value }] => {
                conn.put(key.clone(), value.clone(), None)
                    .await
                    .map_err(|e| label(&e))?;
                Ok(())
            }
            [Op::Checkpoint { player, .. }] => checkpoint(conn, *player).await,
            [Op::LateRead { player, .. }] => {
                conn.get(position_key(*player), None)
                    .await
                    .map_err(|e| label(&e))?;
                Ok(())
            }
            // A single update is a batch of one: the same read + compare-and-put.
            _ => self.batch(conn, ops).await,
        }
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![(
            "cas_retries".into(),
            self.cas_retries.load(Ordering::Relaxed),
        )]
    }
}

/// The writes of one run of ops between checkpoints, folded per key.
#[derive(Debug, Default)]
struct Run {
    /// Final value of each plain put and position.
    puts: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Summed score deltas per score key.
    deltas: BTreeMap<String, i64>,
    /// Keys of late reads.
    reads: Vec<String>,
}

impl Run {
    fn is_empty(&self) -> bool {
        self.puts.is_empty() && self.deltas.is_empty() && self.reads.is_empty()
    }
}

impl EtcdDriver {
    async fn batch(&self, conn: &mut KvClient, ops: &[Op]) -> Result<(), ErrorLabel> {
        let mut run = Run::default();
        for op in ops {
            match op {
                Op::Put { key, value } => {
                    run.puts.insert(key.clone(), value.clone());
                }
                Op::Update {
                    player,
                    position,
                    score_delta,
                } => {
                    run.puts
                        .insert(position_key(*player).into_bytes(), position.clone());
                    let delta = run.deltas.entry(score_key(*player)).or_insert(0);
                    *delta = delta.saturating_add(*score_delta);
                }
                Op::LateRead { player, .. } => run.reads.push(position_key(*player)),
                Op::Checkpoint { player, .. } => {
                    self.write_run(conn, std::mem::take(&mut run)).await?;
                    checkpoint(conn, *player).await?;
                }
            }
        }
        self.write_run(conn, run).await
    }

    /// One read `Txn` (scores and late reads) and one write `Txn` guarded by the scores' revisions;
    /// both again while a compare fails.
    async fn write_run(&self, conn: &mut KvClient, run: Run) -> Result<(), ErrorLabel> {
        if run.is_empty() {
            return Ok(());
        }
        if run.deltas.is_empty() && run.reads.is_empty() {
            // Plain puts need no read: one unconditional Txn (one Put when there is only one).
            let puts: Vec<TxnOp> = run
                .puts
                .into_iter()
                .map(|(k, v)| TxnOp::put(k, v, None))
                .collect();
            conn.txn(Txn::new().and_then(puts))
                .await
                .map_err(|e| label(&e))?;
            return Ok(());
        }
        for attempt in 0..MAX_CAS_ATTEMPTS {
            if attempt > 0 {
                self.cas_retries.fetch_add(1, Ordering::Relaxed);
            }
            let reads: Vec<TxnOp> = run
                .deltas
                .keys()
                .chain(&run.reads)
                .map(|k| TxnOp::get(k.as_bytes(), None))
                .collect();
            let read = conn
                .txn(Txn::new().and_then(reads))
                .await
                .map_err(|e| label(&e))?;
            let mut compares = Vec::with_capacity(run.deltas.len());
            let mut writes: Vec<TxnOp> = Vec::with_capacity(run.deltas.len() + run.puts.len());
            // The first responses answer the score reads, in `deltas` order.
            for ((key, delta), response) in run.deltas.iter().zip(read.op_responses()) {
                let TxnOpResponse::Get(got) = response else {
                    return Err("etcd-bad-response".into());
                };
                let (current, revision) = match got.kvs().first() {
                    Some(kv) => (parse_counter(kv.value())?, kv.mod_revision()),
                    // A missing key has mod_revision 0 in a compare.
                    None => (0, 0),
                };
                compares.push(Compare::mod_revision(
                    key.as_bytes(),
                    CompareOp::Equal,
                    revision,
                ));
                writes.push(TxnOp::put(
                    key.as_bytes(),
                    current.saturating_add(*delta).to_string(),
                    None,
                ));
            }
            writes.extend(
                run.puts
                    .iter()
                    .map(|(k, v)| TxnOp::put(k.clone(), v.clone(), None)),
            );
            let written = conn
                .txn(Txn::new().when(compares).and_then(writes))
                .await
                .map_err(|e| label(&e))?;
            if written.succeeded() {
                return Ok(());
            }
        }
        Err("etcd-cas-conflict".into())
    }
}

/// Deletes every key of `player` (the prefix `p{n}/`) in one `Txn`.
async fn checkpoint(conn: &mut KvClient, player: u64) -> Result<(), ErrorLabel> {
    let prefix = format!("{}/", entity(player));
    let delete = TxnOp::delete(prefix, Some(DeleteOptions::new().with_prefix()));
    conn.txn(Txn::new().and_then(vec![delete]))
        .await
        .map_err(|e| label(&e))?;
    Ok(())
}

fn parse_counter(value: &[u8]) -> Result<i64, ErrorLabel> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| "etcd-bad-counter".to_string())
}

/// The report's label of an etcd error: `grpc-<code>` for a status (`grpc-unavailable`,
/// `grpc-deadline-exceeded`, ...), `connect` for transport errors, else `etcd-<kind>`.
fn label(e: &etcd_client::Error) -> ErrorLabel {
    match e {
        etcd_client::Error::GRpcStatus(status) => {
            let code = format!("{:?}", status.code());
            let mut out = String::from("grpc-");
            for (i, c) in code.chars().enumerate() {
                if c.is_ascii_uppercase() && i > 0 {
                    out.push('-');
                }
                out.push(c.to_ascii_lowercase());
            }
            out
        }
        etcd_client::Error::TransportError(_) => "connect".into(),
        etcd_client::Error::IoError(_) => "io".into(),
        _ => "etcd-other".into(),
    }
}
