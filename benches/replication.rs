//! Three replicas on loopback (real TCP transport, real RocksDB, every Ready fsynced), 1 / 64 / 512
//! concurrent writers of 150-byte values to the leader: writes/s and latency percentiles.
//!
//! `cargo bench --bench replication` (env `KVS_RAFT_BENCH_SECS`, default 5 s per level). Not a test: it
//! asserts nothing about speed; it prints a table for BENCHMARKS.md.

#[path = "../tests/common/replicas.rs"]
mod replicas;

use std::time::{Duration, Instant};

use engine::Op;
use kvs_raft::config::SyncMode;
use replicas::{soon, Site};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() {
    let secs: u64 = std::env::var("KVS_RAFT_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let mut site = Site::start(3, "bench", |cfg| cfg.engine_sync = SyncMode::Batch).await;
        let leader = site.replica(site.leader(Duration::from_secs(30)).await);
        let value = vec![b'x'; 150];
        println!("| writers | writes | writes/s | p50 | p99 | max | errors |");
        println!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        for &writers in &[1usize, 64, 512] {
            let started = Instant::now();
            let until = started + Duration::from_secs(secs);
            let mut tasks = Vec::new();
            for w in 0..writers {
                let leader = leader.clone();
                let value = value.clone();
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    let mut errors = 0u64;
                    let mut i = 0u64;
                    while Instant::now() < until {
                        let op = Op::put(format!("bench/{w}/{i}"), value.clone());
                        let t = Instant::now();
                        match leader.propose(&[op], soon()).await {
                            Ok(_) => lat.push(t.elapsed()),
                            Err(_) => errors += 1,
                        }
                        i += 1;
                    }
                    (lat, errors)
                }));
            }
            let mut all = Vec::new();
            let mut errors = 0;
            for t in tasks {
                let (lat, e) = t.await.expect("writer");
                all.extend(lat);
                errors += e;
            }
            let elapsed = started.elapsed();
            all.sort_unstable();
            println!(
                "| {writers} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {errors} |",
                all.len(),
                all.len() as f64 / elapsed.as_secs_f64(),
                percentile(&all, 0.50).as_secs_f64() * 1e3,
                percentile(&all, 0.99).as_secs_f64() * 1e3,
                all.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
            );
        }
        let st = leader.status(soon()).await.expect("status");
        println!(
            "leader: {} commands in {} log fsyncs ({:.1} per fsync)",
            st.counters.commands_applied,
            st.counters.fsync.count,
            st.counters.commands_applied as f64 / st.counters.fsync.count.max(1) as f64
        );
        drop(leader);
        site.stop_all().await;
    });
}
