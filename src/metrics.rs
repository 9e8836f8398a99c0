//! Prometheus text for the engine's counters and the process, shared by `/metrics`.

use std::fmt::Write as _;

use engine::EngineStats;

/// Engine counters: bloom filter, GC, RocksDB reads and memory by component.
pub fn engine_metrics(e: &EngineStats) -> String {
    let mut out = String::new();
    let mut one = |name: &str, kind: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
        );
    };
    one(
        "kvs_engine_crossed_lookups_total",
        "counter",
        "Checkpoint lookups.",
        e.crossed_lookups,
    );
    one(
        "kvs_engine_bloom_negatives_total",
        "counter",
        "Checkpoint lookups answered by the bloom filter without reading RocksDB.",
        e.bloom_negatives,
    );
    one(
        "kvs_engine_bloom_false_positives_total",
        "counter",
        "Bloom filter positives that RocksDB refuted.",
        e.bloom_false_positives,
    );
    one(
        "kvs_engine_bloom_items",
        "gauge",
        "Crossings in the bloom filter.",
        e.bloom_items,
    );
    one(
        "kvs_engine_bloom_bytes",
        "gauge",
        "Bloom filter size.",
        e.bloom_bytes,
    );
    one(
        "kvs_engine_gc_safepoint_micros",
        "gauge",
        "Versions below this ts may be reclaimed.",
        e.gc_safepoint,
    );
    one(
        "kvs_engine_gc_epochs_reclaimed_total",
        "counter",
        "Invalidated entity epochs range-deleted.",
        e.gc_epochs_reclaimed,
    );
    one(
        "kvs_engine_gc_versions_dropped_total",
        "counter",
        "Old versions dropped by the compaction filter.",
        e.gc_versions_dropped,
    );
    one(
        "kvs_engine_store_reads_total",
        "counter",
        "RocksDB point lookups and seeks.",
        e.store_reads,
    );
    let _ = writeln!(
        out,
        "# HELP kvs_rocksdb_memory_bytes RocksDB memory by component.\n# TYPE kvs_rocksdb_memory_bytes gauge"
    );
    for (part, v) in [
        ("block_cache", e.memory.block_cache_bytes),
        ("memtables", e.memory.memtable_bytes),
        ("table_readers", e.memory.table_readers_bytes),
    ] {
        let _ = writeln!(out, "kvs_rocksdb_memory_bytes{{component=\"{part}\"}} {v}");
    }
    let _ = writeln!(
        out,
        "# HELP kvs_rocksdb_live_sst_bytes Size of live SST files.\n# TYPE kvs_rocksdb_live_sst_bytes gauge\nkvs_rocksdb_live_sst_bytes {}",
        e.memory.live_sst_bytes
    );
    out
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere or on a parse failure.
pub fn process_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(4096))
}
