//! Redis's memory during an AOF rewrite: the contrast of the soak (see the parent module).

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context as _};
use kvs_raft::bench::{position_key, run, score_key, RunConfig};
use serde::Serialize;

use super::SoakConfig;
use crate::cluster::{AofFsync, RedisServer};
use crate::drivers::RedisDriver;
use crate::resources::{children_of, pss_bytes, sample_process};

/// What the rewrite cost in memory.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ForkReport {
    pub players: u64,
    /// Bytes of each position value.
    pub value_size: usize,
    /// The server's RSS and PSS just before `BGREWRITEAOF`, MiB.
    pub before_rss_mib: f64,
    pub before_pss_mib: f64,
    /// The largest parent + child RSS sum while the rewrite ran, MiB.
    pub peak_rss_sum_mib: f64,
    /// The largest parent + child PSS sum (each physical page counted once), MiB.
    pub peak_pss_sum_mib: f64,
    /// The largest RSS of the child alone, MiB.
    pub peak_child_rss_mib: f64,
    /// Whether a child process was seen at all (a very fast rewrite can finish between samples).
    pub child_seen: bool,
    /// From `BGREWRITEAOF` to `aof_rewrite_in_progress:0`.
    pub rewrite_ms: f64,
    /// Samples taken during the rewrite (every 10 ms).
    pub samples: u32,
    /// The workload against Redis meanwhile: requests and errors.
    pub requests: u64,
    pub errors: u64,
}

const MIB: f64 = 1024.0 * 1024.0;

impl ForkReport {
    pub fn markdown(&self) -> String {
        format!(
            "\n**Redis `appendfsync everysec`, same data** ({} players, {}-byte positions and scores), \
             `BGREWRITEAOF` under the same workload: RSS before {:.1} MiB (PSS {:.1}); during the \
             rewrite ({:.0} ms, {} samples{}) parent + child RSS peaked at {:.1} MiB ({:.2}× before; \
             the child alone {:.1} MiB), PSS sum at {:.1} MiB ({:.2}× before).\n",
            self.players,
            self.value_size,
            self.before_rss_mib,
            self.before_pss_mib,
            self.rewrite_ms,
            self.samples,
            if self.child_seen { "" } else { ", no child seen" },
            self.peak_rss_sum_mib,
            ratio(self.peak_rss_sum_mib, self.before_rss_mib),
            self.peak_child_rss_mib,
            self.peak_pss_sum_mib,
            ratio(self.peak_pss_sum_mib, self.before_pss_mib),
        )
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Starts Redis `everysec`, loads every player, runs the soak's workload for `redis_load` and starts
/// `BGREWRITEAOF` a third of the way in, sampling the server and its child every 10 ms until the
/// rewrite is over.
pub async fn measure(redis_server: &Path, cfg: &SoakConfig) -> anyhow::Result<ForkReport> {
    let bin = redis_server.to_owned();
    let server = tokio::task::spawn_blocking(move || RedisServer::start(&bin, AofFsync::Everysec))
        .await?
        .context("start redis-server")?;
    let pid = server
        .pids()
        .first()
        .copied()
        .ok_or_else(|| anyhow!("redis-server is not running"))?;
    let client = redis::Client::open(server.url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let workload = cfg.workload();
    // The same data: every player's position and score, pipelined in chunks.
    let position = vec![b'x'; workload.value_size];
    let mut first = 0;
    while first < cfg.players {
        let mut pipe = redis::pipe();
        for p in first..cfg.players.min(first + 1_000) {
            pipe.cmd("SET")
                .arg(position_key(p))
                .arg(&position)
                .ignore()
                .cmd("SET")
                .arg(score_key(p))
                .arg(1)
                .ignore();
        }
        pipe.query_async::<()>(&mut conn)
            .await
            .context("load the players")?;
        first += 1_000;
    }

    let driver = Arc::new(RedisDriver::new(&server.url())?);
    let load = tokio::spawn(run(
        driver,
        workload.clone(),
        RunConfig {
            warmup: Duration::ZERO,
            duration: cfg.redis_load,
            ..RunConfig::open(cfg.rate)
        },
    ));
    tokio::time::sleep(cfg.redis_load / 3).await;

    let before = sample_process(pid).map_or(0, |s| s.rss_bytes);
    let before_pss = pss_bytes(pid).unwrap_or(0);
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = Arc::clone(&done);
        std::thread::Builder::new()
            .name("fork-watch".into())
            .spawn(move || watch(pid, &done))?
    };
    let started = Instant::now();
    redis::cmd("BGREWRITEAOF")
        .query_async::<String>(&mut conn)
        .await
        .context("BGREWRITEAOF")?;
    let deadline = started + Duration::from_secs(120);
    loop {
        tokio::time::sleep(Duration::from_millis(10)).await;
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query_async(&mut conn)
            .await
            .context("INFO persistence")?;
        let busy = info.lines().any(|l| {
            let l = l.trim();
            l == "aof_rewrite_in_progress:1" || l == "aof_rewrite_scheduled:1"
        });
        if !busy || Instant::now() > deadline {
            break;
        }
    }
    let rewrite = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let watched = watcher
        .join()
        .map_err(|_| anyhow!("the fork watcher panicked"))?;
    let report = load.await?.map_err(|e| anyhow!("the load on Redis: {e}"))?;
    drop(server);
    Ok(ForkReport {
        players: cfg.players,
        value_size: workload.value_size,
        before_rss_mib: before as f64 / MIB,
        before_pss_mib: before_pss as f64 / MIB,
        peak_rss_sum_mib: watched.peak_rss as f64 / MIB,
        peak_pss_sum_mib: watched.peak_pss as f64 / MIB,
        peak_child_rss_mib: watched.peak_child_rss as f64 / MIB,
        child_seen: watched.child_seen,
        rewrite_ms: rewrite.as_secs_f64() * 1e3,
        samples: watched.samples,
        requests: report.requests,
        errors: report.errors,
    })
}

#[derive(Debug, Default)]
struct Watched {
    peak_rss: u64,
    peak_pss: u64,
    peak_child_rss: u64,
    child_seen: bool,
    samples: u32,
}

/// Samples `parent` and its children every 10 ms until `done`.
fn watch(parent: u32, done: &AtomicBool) -> Watched {
    let mut w = Watched::default();
    while !done.load(Ordering::Relaxed) {
        let children = children_of(parent);
        w.child_seen |= !children.is_empty();
        let (mut rss, mut pss, mut child_rss) = (0u64, 0u64, 0u64);
        for pid in std::iter::once(parent).chain(children.iter().copied()) {
            let r = sample_process(pid).map_or(0, |s| s.rss_bytes);
            rss = rss.saturating_add(r);
            pss = pss.saturating_add(pss_bytes(pid).unwrap_or(0));
            if pid != parent {
                child_rss = child_rss.saturating_add(r);
            }
        }
        w.peak_rss = w.peak_rss.max(rss);
        w.peak_pss = w.peak_pss.max(pss);
        w.peak_child_rss = w.peak_child_rss.max(child_rss);
        w.samples += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    w
}
