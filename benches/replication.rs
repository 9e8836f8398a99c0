//! Three replicas on loopback (real TCP transport, real RocksDB, every Ready fsynced), 1 / 64 / 512
//! concurrent writers of 150-byte values to the leader: writes/s and latency percentiles.
//!
//! `cargo bench --bench replication` (env `KVS_RAFT_BENCH_SECS`, default 5 s per level). Not a test: it
//! asserts nothing about speed; it prints a table for BENCHMARKS.md.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use engine::Op;
use kvs_raft::replica::SyncMode;
use kvs_raft::site::{Site, SiteConfig};
use raft_node::Role;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

async fn start_cluster(dirs: &[tempfile::TempDir]) -> Vec<Arc<Site>> {
    let mut listeners = Vec::new();
    let mut initial = BTreeMap::new();
    for id in 1..=3u64 {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        initial.insert(id, l.local_addr().expect("addr").to_string());
        listeners.push(l);
    }
    let mut sites = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        let id = i as u64 + 1;
        let mut cfg = SiteConfig::new(id, "bench", dirs[i].path());
        cfg.initial_cluster = initial.clone();
        cfg.advertise_peer = initial[&id].clone();
        cfg.sync = SyncMode::Batch;
        sites.push(Arc::new(Site::start(cfg, l).await.expect("start")));
    }
    sites
}

async fn leader(sites: &[Arc<Site>]) -> Arc<Site> {
    loop {
        for s in sites {
            if let Ok(st) = s.status().await {
                if st.role == Role::Leader {
                    return s.clone();
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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
        let dirs: Vec<tempfile::TempDir> =
            (0..3).map(|_| tempfile::tempdir().expect("dir")).collect();
        let sites = start_cluster(&dirs).await;
        let leader = leader(&sites).await;
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
                        match leader.propose(&[op]).await {
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
        let st = leader.status().await.expect("status");
        println!(
            "leader: {} commands in {} log fsyncs ({:.1} per fsync)",
            st.counters.commands_applied,
            st.counters.persists,
            st.counters.commands_applied as f64 / st.counters.persists.max(1) as f64
        );
        for s in sites {
            let _ = s.shutdown().await;
        }
    });
}
