//! The thin RocksDB shell of the log store — the **only** file in `raft-node` that names `rocksdb`.
//! Keys and values are opaque bytes here; `codec` gives them meaning.

use std::path::Path;

use rocksdb::{
    BlockBasedOptions, Cache, DBCompressionType, Options, ReadOptions, WriteBatch, WriteOptions, DB,
};

use crate::error::Error;

/// What the log's RocksDB may hold in memory: two memtables of `write_buffer_bytes` (the log is written
/// sequentially and read mostly near its tail, from the memtables) and a block cache for the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMemory {
    pub write_buffer_bytes: usize,
    pub block_cache_bytes: usize,
}

impl Default for LogMemory {
    /// Small: the log is read almost only near its tail, from the memtables.
    fn default() -> Self {
        LogMemory {
            write_buffer_bytes: 2 << 20,
            block_cache_bytes: 2 << 20,
        }
    }
}
/// Files the log's RocksDB keeps open at most (SST table readers).
pub const MAX_OPEN_FILES: usize = 64;
/// WAL files the log's RocksDB keeps for reuse ([`Db::open`]): one write buffer's worth each.
pub const WAL_FILES_RECYCLED: usize = 4;

fn storage(context: &'static str) -> impl FnOnce(rocksdb::Error) -> Error {
    move |e| Error::Storage(format!("{context}: {e}"))
}

/// An owned key and value.
pub(super) type KeyValue = (Vec<u8>, Vec<u8>);

pub(super) struct Db {
    db: DB,
}

/// One atomic write under construction.
#[derive(Default)]
pub(super) struct Batch {
    batch: WriteBatch,
}

impl Batch {
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.batch.put(key, value);
    }

    /// Delete every key in `[from, to)`.
    pub fn delete_range(&mut self, from: &[u8], to: &[u8]) {
        self.batch.delete_range(from, to);
    }
}

impl Db {
    /// Open (creating if missing) the RocksDB at `dir`.
    pub fn open(dir: &Path, memory: LogMemory) -> Result<Db, Error> {
        Db::open_with(dir, true, memory)
    }

    /// Open an existing RocksDB at `dir` for an offline check: never creates one, and RocksDB's paranoid
    /// checks are on (a corrupt manifest or file found at open is an error, not a repair).
    pub fn open_existing(dir: &Path) -> Result<Db, Error> {
        // RocksDB creates the directory (for its LOCK and LOG) before it finds there is no database.
        if !dir.join("CURRENT").is_file() {
            return Err(Error::Storage(format!(
                "no raft log store at {}",
                dir.display()
            )));
        }
        Db::open_with(dir, false, LogMemory::default())
    }

    fn open_with(dir: &Path, create: bool, memory: LogMemory) -> Result<Db, Error> {
        let mut opts = Options::default();
        let cache = Cache::new_lru_cache(memory.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        opts.set_block_based_table_factory(&table);
        opts.create_if_missing(create);
        opts.set_paranoid_checks(true);
        opts.set_compression_type(DBCompressionType::Lz4);
        opts.set_write_buffer_size(memory.write_buffer_bytes);
        opts.set_max_write_buffer_number(2);
        opts.set_max_background_jobs(2);
        opts.set_keep_log_file_num(2);
        // Reuse old WAL files instead of creating new ones: an fdatasync of an overwritten file flushes the
        // data alone, while one that grew the file writes its inode too (one more I/O per Ready on the
        // write path). RocksDB's recyclable record format names the log in every record, so a crash
        // never replays an older file's leftovers (`kPointInTimeRecovery`, the default, supports it).
        opts.set_recycle_log_file_num(WAL_FILES_RECYCLED);
        opts.set_max_open_files(i32::try_from(MAX_OPEN_FILES).unwrap_or(i32::MAX));
        let db = DB::open(&opts, dir).map_err(storage("open raft log RocksDB"))?;
        Ok(Db { db })
    }

    /// Write `batch` atomically and fsync the WAL before returning.
    pub fn write_synced(&self, batch: Batch) -> Result<(), Error> {
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        self.db
            .write_opt(batch.batch, &wo)
            .map_err(storage("write raft log batch"))
    }

    /// Write `batch` atomically without an fsync: it reaches the OS before returning (a process crash
    /// keeps it) and the disk with the next synced write.
    pub fn write_unsynced(&self, batch: Batch) -> Result<(), Error> {
        self.db
            .write(batch.batch)
            .map_err(storage("write raft log batch"))
    }

    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.db.get(key).map_err(storage("read raft log"))
    }

    /// The first key-value pair in `[lower, upper)`, if any.
    pub fn first_in(&self, lower: &[u8], upper: &[u8]) -> Result<Option<KeyValue>, Error> {
        let mut it = self.db.raw_iterator_opt(bounded(lower, upper));
        it.seek_to_first();
        current(&it)
    }

    /// The last key-value pair in `[lower, upper)`, if any.
    pub fn last_in(&self, lower: &[u8], upper: &[u8]) -> Result<Option<KeyValue>, Error> {
        let mut it = self.db.raw_iterator_opt(bounded(lower, upper));
        it.seek_to_last();
        current(&it)
    }

    /// Whether the store holds no key at all.
    pub fn is_empty(&self) -> Result<bool, Error> {
        let mut it = self.db.raw_iterator();
        it.seek_to_first();
        Ok(current(&it)?.is_none())
    }

    /// Visit every pair of the store in key order, reading each block with its checksum verified and
    /// without filling the block cache (an offline check's full read).
    pub fn scan_verified(
        &self,
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<(), Error>,
    ) -> Result<(), Error> {
        let mut ro = ReadOptions::default();
        ro.set_verify_checksums(true);
        ro.fill_cache(false);
        let mut it = self.db.raw_iterator_opt(ro);
        it.seek_to_first();
        while let Some((key, value)) = it.key().zip(it.value()) {
            visit(key, value)?;
            it.next();
        }
        it.status().map_err(storage("read the whole raft log"))
    }

    /// Visit the pairs in `[from, upper)` in key order while `visit` returns `Ok(true)`.
    pub fn scan(
        &self,
        from: &[u8],
        upper: &[u8],
        mut visit: impl FnMut(&[u8], &[u8]) -> Result<bool, Error>,
    ) -> Result<(), Error> {
        let mut it = self.db.raw_iterator_opt(bounded(from, upper));
        it.seek(from);
        while let Some((key, value)) = it.key().zip(it.value()) {
            if !visit(key, value)? {
                return Ok(());
            }
            it.next();
        }
        it.status().map_err(storage("scan raft log"))
    }
}

fn bounded(lower: &[u8], upper: &[u8]) -> ReadOptions {
    let mut ro = ReadOptions::default();
    ro.set_iterate_lower_bound(lower);
    ro.set_iterate_upper_bound(upper);
    ro
}

type RawIter<'a> = rocksdb::DBRawIteratorWithThreadMode<'a, DB>;

/// The iterator's current pair, `None` at the end; an I/O error is returned, not hidden.
fn current(it: &RawIter<'_>) -> Result<Option<KeyValue>, Error> {
    match it.key().zip(it.value()) {
        Some((k, v)) => Ok(Some((k.to_vec(), v.to_vec()))),
        None => {
            it.status().map_err(storage("iterate raft log"))?;
            Ok(None)
        }
    }
}
