//! The node's memory budget (`--memory-budget`): one number an operator sizes for the box, split over
//! everything that holds data in memory. Nothing else in the process grows with the data set: the
//! engine and the Raft log keep their data on disk, and every queue is bounded by a count.
//!
//! ```text
//! budget B (default 32 MiB)
//!   engine block cache (data, index and filter blocks)   3/8 B
//!   engine memtables (2, capped by a WriteBufferManager)  2/8 B
//!   Raft log memtables (2)                                1/8 B
//!   Raft log block cache                                  1/16 B
//!   left for the crossing filter (≈ 2.4 MiB per million crossings) and per-request buffers   3/16 B
//! ```
//!
//! The process's RSS is about the budget once the caches have filled, plus what does not depend on it:
//! the binary's pages (~11 MiB), the runtime's and RocksDB's threads and the allocator's slack (which
//! depends on the malloc arenas, see [`limit_malloc_arenas`]; BENCHMARKS.md has what was measured).

use engine::EngineConfig;
use raft_node::LogMemory;

/// The default budget: an edge box runs several services beside its node. With it, a node held 38-40 MiB
/// of RSS after 100,000 keys, 51 MiB under a few minutes of checkpoint churn with one malloc arena, and
/// 59-62 MiB after 30 minutes of it with two, as shipped, still rising about 1 MiB per 10 minutes
/// (BENCHMARKS.md, "The memory soak").
pub const DEFAULT_MEMORY_BUDGET: u64 = 32 << 20;
/// The smallest budget accepted: below it the memtables get so small that flushes dominate writes.
pub const MIN_MEMORY_BUDGET: u64 = 16 << 20;
/// The largest budget accepted (1 TiB).
pub const MAX_MEMORY_BUDGET: u64 = 1 << 40;

/// Two malloc arenas for the whole process, set before any thread starts (the first thing `main` does).
/// glibc gives threads arenas of their own (up to 8 per core), and RocksDB's block-cache churn leaves
/// each of them fragmented: a node with 100,000 keys under checkpoint churn kept growing past 64 MiB of
/// RSS with the default arenas, and stayed flat at 51 MiB with one — but one arena put every thread
/// behind one lock and cost the write path its tail (p99 of sequential PUTs 2-4× worse, 50-client
/// throughput down). Two keep most of the latency (BENCHMARKS.md has both measurements). An operator's
/// own `GLIBC_TUNABLES=glibc.malloc.arena_max=N` still applies (glibc reads it at start, before this).
pub fn limit_malloc_arenas() {
    if std::env::var_os("GLIBC_TUNABLES").is_some_and(|t| t.to_string_lossy().contains("arena_max"))
    {
        return;
    }
    // SAFETY: mallopt only sets a malloc parameter; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS);
    }
}

/// See [`limit_malloc_arenas`].
pub const MALLOC_ARENAS: i32 = 2;

/// The engine's and the Raft log's shares of `budget` bytes (see the module docs).
pub fn split(budget: u64, engine: &mut EngineConfig) -> LogMemory {
    let share = |num: u64, den: u64| usize::try_from(budget / den * num).unwrap_or(usize::MAX);
    engine.block_cache_bytes = share(3, 8);
    engine.write_buffer_bytes = share(1, 8);
    engine.max_write_buffers = 2;
    LogMemory {
        write_buffer_bytes: share(1, 16),
        block_cache_bytes: share(1, 16),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_budget_splits_into_whole_shares() {
        let mut engine = EngineConfig::default();
        let log = split(DEFAULT_MEMORY_BUDGET, &mut engine);
        assert_eq!(engine.block_cache_bytes, 12 << 20);
        assert_eq!(
            (engine.write_buffer_bytes, engine.max_write_buffers),
            (4 << 20, 2)
        );
        assert_eq!(log.write_buffer_bytes, 2 << 20);
        assert_eq!(log.block_cache_bytes, 2 << 20);
        // Everything RocksDB may hold: 13/16 of the budget; the rest is left for the filter and buffers.
        let rocksdb = engine.block_cache_bytes
            + engine.write_buffer_bytes * engine.max_write_buffers
            + log.write_buffer_bytes * 2
            + log.block_cache_bytes;
        assert_eq!(rocksdb as u64, DEFAULT_MEMORY_BUDGET / 16 * 13);
    }

    #[test]
    fn shares_scale_with_the_budget() {
        let mut engine = EngineConfig::default();
        let log = split(1 << 30, &mut engine);
        assert_eq!(engine.block_cache_bytes, 384 << 20);
        assert_eq!(engine.write_buffer_bytes, 128 << 20);
        assert_eq!(log.write_buffer_bytes, 64 << 20);
        let mut small = EngineConfig::default();
        let log = split(MIN_MEMORY_BUDGET, &mut small);
        assert_eq!(small.write_buffer_bytes, 2 << 20);
        assert_eq!(log.block_cache_bytes, 1 << 20);
    }
}
