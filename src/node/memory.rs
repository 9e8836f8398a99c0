//! The node's memory budget (`--memory-budget`): one number an operator sizes for the box, split over
//! everything that holds data in memory. Nothing else in the process grows with the data set: the
//! engine and the Raft log keep their data on disk, and every queue is bounded by a count.
//!
//! ```text
//! budget B (default 40 MiB)
//!   engine block cache (data, index and filter blocks)   3/8 B
//!   engine memtables (2, capped by a WriteBufferManager)  2/8 B
//!   Raft log memtables (2)                                1/8 B
//!   Raft log block cache                                  1/16 B
//!   left for the crossing filter (≈ 2.4 MiB per million crossings) and per-request buffers   3/16 B
//! ```
//!
//! The process's RSS is about the budget once the caches have filled, plus what does not depend on it:
//! the binary's pages, the runtime's and RocksDB's threads and the allocator's slack (about 20 MiB,
//! see BENCHMARKS.md for measurements).

use engine::EngineConfig;
use raft_node::LogMemory;

/// The default budget: an edge box runs several services beside its three nodes.
pub const DEFAULT_MEMORY_BUDGET: u64 = 40 << 20;
/// The smallest budget accepted: below it the memtables get so small that flushes dominate writes.
pub const MIN_MEMORY_BUDGET: u64 = 16 << 20;
/// The largest budget accepted (1 TiB).
pub const MAX_MEMORY_BUDGET: u64 = 1 << 40;

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
        assert_eq!(engine.block_cache_bytes, 15 << 20);
        assert_eq!(
            (engine.write_buffer_bytes, engine.max_write_buffers),
            (5 << 20, 2)
        );
        assert_eq!(log.write_buffer_bytes, 5 << 19);
        assert_eq!(log.block_cache_bytes, 5 << 19);
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
