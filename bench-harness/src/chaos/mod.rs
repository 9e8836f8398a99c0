//! `bench-harness chaos`: the seed's test (issue 15, item 3). A 3-node kvs-raft site takes the game
//! workload open loop at a steady rate while the [`nemesis`] stops one replica every `stop_every`
//! (alternately the leader and a follower) and restarts it `down` later; afterwards every
//! acknowledged write must be present ([`verify`]).
//!
//! The run: the site starts fresh; the load is `Workload::game(players, rate / players)` with 1 %
//! checkpoints and no late reads (writes only: every update one `/v1/txn`), open loop, **no warm-up**
//! (every request is recorded, which the verification needs), each request's latency from its intended
//! send time. Meanwhile the nemesis runs on its own thread. Then the harness waits until every node is
//! ready, reads every player's position and score back (`/v1/batch` of `get` ops: reads at a Raft
//! entry's commit ts, i.e. linearizable), and reports ([`report`]): p50/p99/p999/max over all
//! requests; per stop the node, whether it was the leader, how it went down, the longest write gap
//! whose end lies between this stop and the next ([`gap`]), the errors of the requests intended in
//! that window and the term changes; the spurious elections (term changes beyond one per leader stop,
//! and any before the first stop); and the verification.
//!
//! Times in the report are seconds since the load started. The runner does not expose its start
//! instant, so the harness takes it from the progress callback (`now − elapsed`, the smallest seen):
//! accurate to the callback's scheduling delay (well below a millisecond on an idle runtime).

pub mod gap;
pub mod nemesis;
pub mod report;
pub mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use kvs_raft::bench::http::{HttpDriver, UpdateMode};
use kvs_raft::bench::report::progress_line;
use kvs_raft::bench::{position_key, run, score_key, RunConfig, Workload};
use kvs_raft::client::{Client, ClientOptions, Request};
use serde_json::{json, Value};

use crate::cluster::{KvsSite, READY_WITHIN};
use nemesis::{lock, site_term, NemesisPlan, SharedSite, StopMode};
use report::{ChaosReport, StopRow, TermSummary};
use verify::Observed;

/// A validated `chaos` invocation.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    pub kvs_raft: PathBuf,
    pub duration: Duration,
    /// Game updates offered per second, in total.
    pub rate: f64,
    pub players: u64,
    pub stop_every: Duration,
    pub down: Duration,
    pub mode: StopMode,
    /// Open-loop connections.
    pub connections: usize,
    /// The command line, for the report.
    pub command: String,
    /// Print a progress line every this many seconds (0: none).
    pub progress_every: u64,
}

/// Runs the chaos test; the caller prints the report and fails when [`ChaosReport::passed`] is false.
pub async fn chaos(cfg: &ChaosConfig) -> anyhow::Result<ChaosReport> {
    let binary = cfg.kvs_raft.clone();
    let site = tokio::task::spawn_blocking(move || KvsSite::start(&binary, 3))
        .await?
        .context("start the kvs-raft site")?;
    let addrs = site.client_addrs();
    let endpoints = site.endpoints();
    let options = site.client_options();
    let term_start = site_term(&addrs);
    let site: SharedSite = Arc::new(Mutex::new(site));

    let workload = Workload {
        late_read_fraction: 0.0,
        ..Workload::game(cfg.players, cfg.rate / cfg.players.max(1) as f64)
    };
    let driver =
        Arc::new(HttpDriver::new(options, UpdateMode::Txn).context("the kvs-raft driver")?);
    // The runner's start, from the progress callback: the smallest `now − elapsed`.
    let start_seen: Arc<Mutex<Option<Instant>>> = Arc::new(Mutex::new(None));
    let progress = {
        let (start_seen, every) = (Arc::clone(&start_seen), cfg.progress_every);
        Arc::new(move |p: &kvs_raft::bench::Progress| {
            let now = Instant::now();
            let start = now.checked_sub(p.elapsed).unwrap_or(now);
            let mut seen = start_seen.lock().unwrap_or_else(PoisonError::into_inner);
            *seen = Some(seen.map_or(start, |s| s.min(start)));
            if every > 0 && p.elapsed.as_secs().is_multiple_of(every) {
                eprintln!("{}", progress_line(p));
            }
        })
    };
    let run_cfg = RunConfig {
        connections: cfg.connections,
        warmup: Duration::ZERO,
        duration: cfg.duration,
        record_samples: true,
        progress: Some(progress),
        ..RunConfig::open(cfg.rate)
    };
    let plan = NemesisPlan {
        mode: cfg.mode,
        stop_every: cfg.stop_every,
        down: cfg.down,
        duration: cfg.duration,
    };
    let halt = Arc::new(AtomicBool::new(false));
    let t0 = Instant::now();
    let nemesis = nemesis::spawn(Arc::clone(&site), plan, t0, Arc::clone(&halt))
        .context("start the nemesis thread")?;
    let result = run(driver, workload, run_cfg).await;
    halt.store(result.is_err(), Ordering::Relaxed);
    let stops = tokio::task::spawn_blocking(move || nemesis.join())
        .await?
        .map_err(|_| anyhow!("the nemesis thread panicked"))?;
    let report = result.map_err(|e| anyhow!("the load: {e}"))?;
    let start = start_seen
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .unwrap_or(t0)
        .max(t0);

    // Every node back and ready before the final read and the last term.
    {
        let site = Arc::clone(&site);
        tokio::task::spawn_blocking(move || lock(&site).wait_ready(READY_WITHIN))
            .await?
            .context("the site after the run")?;
    }
    let term_end = site_term(&addrs);
    let observed = read_players(&endpoints, cfg.players)
        .await
        .context("read every player back")?;
    let verification = verify::verify(&report.samples, &observed);

    let completions = gap::write_completions(&report.samples);
    let run_end = Duration::from_secs_f64(report.elapsed_s);
    let since = |t: Instant| t.saturating_duration_since(start);
    let mut rows = Vec::with_capacity(stops.len());
    for (i, s) in stops.iter().enumerate() {
        let from = since(s.signalled);
        let to = stops.get(i + 1).map_or(run_end, |n| since(n.signalled));
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        for sample in &report.samples {
            if let (Some(label), true) = (&sample.error, (from..to).contains(&sample.intended)) {
                *errors.entry(label.clone()).or_default() += 1;
            }
        }
        let term_after = stops.get(i + 1).map_or(term_end, |n| n.term_before);
        rows.push(StopRow {
            n: i + 1,
            node: s.node,
            was_leader: s.was_leader,
            pid: s.pid,
            how: s.how,
            pid_gone: s.pid_gone,
            at_s: from.as_secs_f64(),
            exit_ms: ms(s.exited.saturating_duration_since(s.signalled)),
            restarted_at_s: s.restarted.map(|t| since(t).as_secs_f64()),
            ready_ms: s
                .ready
                .zip(s.restarted)
                .map(|(r, st)| ms(r.saturating_duration_since(st))),
            new_pid: s.new_pid,
            longest_gap: gap::longest_gap(&completions, from, to),
            errors,
            term_before: s.term_before,
            term_after,
            error: s.error.clone(),
        });
    }
    let first_term = stops.first().map_or(term_end, |s| s.term_before);
    let terms = TermSummary::new(term_start, first_term, term_end, &rows);
    drop(site);
    Ok(ChaosReport::new(
        cfg,
        &report,
        gap::longest_gap(&completions, Duration::ZERO, run_end),
        rows,
        terms,
        verification,
    ))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Players read back per `/v1/batch` (two `get` ops each).
const READ_CHUNK: u64 = 250;

/// Every player's position and score, read with `/v1/batch` `get` ops (one Raft entry per chunk: a
/// linearizable read). Each chunk is tried up to 5 times (the site may still be settling).
pub async fn read_players(
    endpoints: &str,
    players: u64,
) -> anyhow::Result<BTreeMap<u64, Observed>> {
    let mut observed = BTreeMap::new();
    let mut first = 0;
    while first < players {
        let chunk: Vec<u64> = (first..players.min(first.saturating_add(READ_CHUNK))).collect();
        first = first.saturating_add(READ_CHUNK);
        let mut attempt = 0;
        let values = loop {
            attempt += 1;
            match read_chunk(endpoints, &chunk).await {
                Ok(values) => break values,
                Err(e) if attempt >= 5 => return Err(e),
                Err(e) => {
                    eprintln!("chaos: reading players back: {e:#}; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        };
        observed.extend(values);
    }
    Ok(observed)
}

async fn read_chunk(endpoints: &str, players: &[u64]) -> anyhow::Result<Vec<(u64, Observed)>> {
    let client = Client::new(ClientOptions {
        endpoints: endpoints.to_owned(),
        timeout: Some(Duration::from_secs(30)),
        ..ClientOptions::default()
    })?;
    let ops: Vec<Value> = players
        .iter()
        .flat_map(|&p| {
            [
                json!({"op": "get", "key": position_key(p)}),
                json!({"op": "get", "key": score_key(p)}),
            ]
        })
        .collect();
    let res = client
        .request(Request::post_json("/v1/batch", &json!({ "ops": ops })))
        .await?;
    if !res.status.is_success() {
        return Err(anyhow!(
            "/v1/batch answered {}: {}",
            res.status,
            String::from_utf8_lossy(&res.body)
        ));
    }
    let answer: Value = res.json()?;
    let results = answer
        .get("results")
        .and_then(Value::as_array)
        .filter(|r| r.len() == ops.len())
        .ok_or_else(|| anyhow!("/v1/batch: not one result per get"))?;
    players
        .iter()
        .zip(results.chunks(2))
        .map(|(&p, pair)| {
            let [position, score] = pair else {
                return Err(anyhow!("/v1/batch: not one result per get"));
            };
            let position = get_value(position)?;
            let score = match get_value(score)? {
                None => None,
                Some(bytes) => Some(
                    std::str::from_utf8(&bytes)
                        .ok()
                        .and_then(|s| s.trim().parse::<i64>().ok())
                        .ok_or_else(|| anyhow!("player {p}'s score is not an integer"))?,
                ),
            };
            Ok((p, Observed { position, score }))
        })
        .collect()
}

/// The value of one `get` outcome: `None` when not found.
fn get_value(outcome: &Value) -> anyhow::Result<Option<Vec<u8>>> {
    if let Some(e) = outcome.get("error") {
        return Err(anyhow!("get failed: {e}"));
    }
    match outcome.get("found").and_then(Value::as_bool) {
        Some(false) => Ok(None),
        Some(true) => {
            // The workload's values are ASCII: they come back as text, never as `value_b64`.
            outcome
                .get("value")
                .and_then(Value::as_str)
                .map(|text| Some(text.as_bytes().to_vec()))
                .ok_or_else(|| anyhow!("a found get without a text value: {outcome}"))
        }
        None => Err(anyhow!("not a get outcome: {outcome}")),
    }
}
