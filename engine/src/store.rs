//! The only module that imports `rocksdb` (architecture invariant). It offers the rest of the engine a
//! byte-keyed store with atomic batches, consistent read views, SST building/ingestion and the hooks for the
//! GC compaction filter, and maps RocksDB errors to typed [`Error`]s ([`storage_error`]).

use std::ffi::{CStr, CString};
use std::path::Path;
use std::sync::Arc;

use rocksdb::compaction_filter::{CompactionFilter, Decision};
use rocksdb::compaction_filter_factory::{CompactionFilterContext, CompactionFilterFactory};
use rocksdb::statistics::Ticker;
use rocksdb::{
    BlockBasedOptions, Cache, DBRawIteratorWithThreadMode, IngestExternalFileOptions, Options,
    ReadOptions, SnapshotWithThreadMode, SstFileWriter, WriteBatch, WriteBufferManager,
    WriteOptions, DB,
};

use crate::error::Error;

/// A key and its value, borrowed from a cursor.
pub type Entry<'a> = (&'a [u8], &'a [u8]);
use crate::gc::{GcShared, VersionGc};

/// Sizes that bound RocksDB's memory (see the crate docs for the budget formula).
#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub block_cache_bytes: usize,
    pub write_buffer_bytes: usize,
    pub max_write_buffers: usize,
    /// Smaller SST files and level sizes, so tests exercise flushes and compactions with little data.
    pub tiny_levels: bool,
    /// Files RocksDB keeps open at most.
    pub max_open_files: usize,
}

pub enum WriteOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// Delete every key in `[from, to)`.
    DeleteRange(Vec<u8>, Vec<u8>),
}

pub struct Store {
    db: DB,
    opts: Options,
    cache: Cache,
    write_buffers: WriteBufferManager,
}

fn storage(context: &str) -> impl FnOnce(rocksdb::Error) -> Error + '_ {
    move |e| storage_error(context, &e.kind(), e.as_ref())
}

/// What RocksDB writes for a full disk or quota: the `NoSpace` and `SpaceLimit` sub-codes of an I/O
/// error ("IO error: No space left on device: ..."), and the OS's messages for `ENOSPC` and `EDQUOT`.
const DISK_FULL_MARKERS: [&str; 3] = [
    "No space left on device",
    "Space limit reached",
    "Disk quota exceeded",
];

/// A RocksDB error of `kind` with `message`, from the call described by `context`, as an engine error:
/// [`Error::Corruption`] for a corrupt block or file, [`Error::DiskFull`] for no space, [`Error::Storage`]
/// for everything else.
fn storage_error(context: &str, kind: &rocksdb::ErrorKind, message: &str) -> Error {
    if *kind == rocksdb::ErrorKind::Corruption {
        Error::Corruption {
            at: format!("RocksDB {context}"),
            detail: message.to_string(),
        }
    } else if DISK_FULL_MARKERS.iter().any(|m| message.contains(m)) {
        Error::DiskFull(format!("{context}: {message}"))
    } else {
        Error::Storage(format!("{context}: {message}"))
    }
}

struct GcFilterFactory {
    shared: Arc<GcShared>,
    name: CString,
}

struct GcFilter {
    gc: VersionGc,
    shared: Arc<GcShared>,
    name: CString,
}

impl CompactionFilterFactory for GcFilterFactory {
    type Filter = GcFilter;

    fn create(&mut self, context: CompactionFilterContext) -> GcFilter {
        GcFilter {
            gc: VersionGc::new(self.shared.safepoint(), context.is_full_compaction),
            shared: Arc::clone(&self.shared),
            name: self.name.clone(),
        }
    }

    fn name(&self) -> &CStr {
        &self.name
    }
}

impl CompactionFilter for GcFilter {
    fn filter(&mut self, _level: u32, key: &[u8], value: &[u8]) -> Decision {
        if self.gc.keep(key, value) {
            Decision::Keep
        } else {
            self.shared.count_dropped_version();
            Decision::Remove
        }
    }

    fn name(&self) -> &CStr {
        &self.name
    }
}

impl Store {
    pub fn open(path: &Path, cfg: &StoreConfig, gc: Arc<GcShared>) -> Result<Store, Error> {
        let cache = Cache::new_lru_cache(cfg.block_cache_bytes);
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&cache);
        // Index and filter blocks live in (and are bounded by) the block cache.
        table.set_cache_index_and_filter_blocks(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_bloom_filter(10.0, false);
        let write_buffers = WriteBufferManager::new_write_buffer_manager(
            cfg.write_buffer_bytes * cfg.max_write_buffers,
            true,
        );

        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.set_block_based_table_factory(&table);
        opts.set_write_buffer_size(cfg.write_buffer_bytes);
        opts.set_max_write_buffer_number(i32::try_from(cfg.max_write_buffers).unwrap_or(i32::MAX));
        opts.set_write_buffer_manager(&write_buffers);
        opts.set_max_background_jobs(2);
        opts.set_max_open_files(i32::try_from(cfg.max_open_files).unwrap_or(i32::MAX));
        opts.set_compression_type(rocksdb::DBCompressionType::Lz4);
        opts.enable_statistics();
        opts.set_compaction_filter_factory(GcFilterFactory {
            shared: gc,
            name: CString::from(c"kvs-raft-version-gc"),
        });
        if cfg.tiny_levels {
            opts.set_target_file_size_base(64 << 10);
            opts.set_max_bytes_for_level_base(256 << 10);
            opts.set_level_zero_file_num_compaction_trigger(2);
        }
        let db = DB::open(&opts, path).map_err(storage("open RocksDB"))?;
        Ok(Store {
            db,
            opts,
            cache,
            write_buffers,
        })
    }

    /// Write `ops` atomically; with `sync` the WAL is fsynced before this returns. Returns the batch size.
    pub fn write(
        &self,
        ops: impl IntoIterator<Item = WriteOp>,
        sync: bool,
    ) -> Result<usize, Error> {
        let mut batch = WriteBatch::default();
        for op in ops {
            match op {
                WriteOp::Put(k, v) => batch.put(k, v),
                WriteOp::Delete(k) => batch.delete(k),
                WriteOp::DeleteRange(from, to) => batch.delete_range(from, to),
            }
        }
        let bytes = batch.size_in_bytes();
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        self.db
            .write_opt(batch, &wo)
            .map_err(storage("write batch"))?;
        Ok(bytes)
    }

    /// A consistent point-in-time view for reads.
    pub fn view(&self) -> View<'_> {
        View {
            snap: self.db.snapshot(),
        }
    }

    /// Make every write so far durable (fsync the WAL), for writes made with `sync = false`.
    pub fn sync_wal(&self) -> Result<(), Error> {
        self.db.flush_wal(true).map_err(storage("flush_wal"))
    }

    pub fn flush(&self) -> Result<(), Error> {
        self.db.flush().map_err(storage("flush"))
    }

    /// Flush, then compact the whole keyspace (runs the GC compaction filter over everything).
    pub fn compact_all(&self) -> Result<(), Error> {
        self.flush()?;
        self.db.compact_range::<&[u8], &[u8]>(None, None);
        Ok(())
    }

    /// Point lookups plus iterator seeks served since open (RocksDB statistics, not our own counting).
    pub fn reads_served(&self) -> u64 {
        self.opts.get_ticker_count(Ticker::NumberKeysRead)
            + self.opts.get_ticker_count(Ticker::NumberDbSeek)
    }

    pub fn memory(&self) -> StoreMemory {
        let prop = |name: &str| self.db.property_int_value(name).ok().flatten().unwrap_or(0);
        StoreMemory {
            block_cache_bytes: self.cache.get_usage() as u64,
            memtable_bytes: self.write_buffers.get_usage() as u64,
            table_readers_bytes: prop("rocksdb.estimate-table-readers-mem"),
            live_sst_bytes: prop("rocksdb.live-sst-files-size"),
        }
    }

    pub fn sst_writer(&self, path: &Path) -> Result<SstBuilder<'_>, Error> {
        let writer = SstFileWriter::create(&self.opts);
        writer.open(path).map_err(storage("create SST"))?;
        Ok(SstBuilder { writer, entries: 0 })
    }

    /// Ingest a finished SST (copied, so the file stays for a retry until the caller deletes it).
    pub fn ingest(&self, path: &Path) -> Result<(), Error> {
        let mut io = IngestExternalFileOptions::default();
        io.set_move_files(false);
        self.db
            .ingest_external_file_opts(&io, vec![path])
            .map_err(storage("ingest snapshot SST"))
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreMemory {
    pub block_cache_bytes: u64,
    pub memtable_bytes: u64,
    pub table_readers_bytes: u64,
    pub live_sst_bytes: u64,
}

pub struct SstBuilder<'a> {
    writer: SstFileWriter<'a>,
    entries: u64,
}

impl SstBuilder<'_> {
    /// Keys must be added in strictly increasing order.
    pub fn put(&mut self, key: &[u8], value: &[u8]) -> Result<(), Error> {
        self.entries += 1;
        self.writer.put(key, value).map_err(storage("write SST"))
    }

    pub fn finish(mut self) -> Result<u64, Error> {
        self.writer.finish().map_err(storage("finish SST"))?;
        Ok(self.entries)
    }
}

pub struct View<'a> {
    snap: SnapshotWithThreadMode<'a, DB>,
}

impl View<'_> {
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        self.snap.get(key).map_err(storage("get"))
    }

    /// A cursor over `[.., upper)` (no bound if `None`).
    pub fn cursor(&self, upper: Option<Vec<u8>>) -> Cursor<'_> {
        let mut ro = ReadOptions::default();
        if let Some(upper) = upper {
            ro.set_iterate_upper_bound(upper);
        }
        Cursor {
            it: self.snap.raw_iterator_opt(ro),
        }
    }
}

pub struct Cursor<'a> {
    it: DBRawIteratorWithThreadMode<'a, DB>,
}

impl Cursor<'_> {
    pub fn seek(&mut self, key: &[u8]) {
        self.it.seek(key)
    }
    pub fn seek_for_prev(&mut self, key: &[u8]) {
        self.it.seek_for_prev(key)
    }
    pub fn next(&mut self) {
        self.it.next()
    }
    pub fn prev(&mut self) {
        self.it.prev()
    }
    /// The current entry, or `None` at the end; an I/O error of the iterator is returned, not hidden.
    pub fn entry(&self) -> Result<Option<Entry<'_>>, Error> {
        if self.it.valid() {
            return Ok(self.it.key().zip(self.it.value()));
        }
        self.it.status().map_err(storage("iterate"))?;
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use rocksdb::ErrorKind;

    use super::*;

    #[test]
    fn rocksdb_errors_map_to_what_the_caller_can_do() {
        // Messages as RocksDB's Status::ToString renders them.
        let no_space = "IO error: No space left on device: While appending to file: \
                        /d/state/db/000012.log: No space left on device";
        assert!(matches!(
            storage_error("write batch", &ErrorKind::IOError, no_space),
            Error::DiskFull(m) if m == format!("write batch: {no_space}")
        ));
        let quota = "IO error: Space limit reached: Max allowed space was reached";
        assert!(matches!(
            storage_error("flush", &ErrorKind::IOError, quota),
            Error::DiskFull(_)
        ));
        let edquot = "IO error: While appending to file: /d/000012.log: Disk quota exceeded";
        assert!(matches!(
            storage_error("flush", &ErrorKind::IOError, edquot),
            Error::DiskFull(_)
        ));
        let corrupt = "Corruption: block checksum mismatch: stored = 1, computed = 2";
        match storage_error("get", &ErrorKind::Corruption, corrupt) {
            Error::Corruption { at, detail } => {
                assert_eq!(at, "RocksDB get");
                assert_eq!(detail, corrupt);
            }
            other => panic!("expected corruption, got {other:?}"),
        }
        let eio = "IO error: While reading file: /d/000007.sst: Input/output error";
        assert!(matches!(
            storage_error("get", &ErrorKind::IOError, eio),
            Error::Storage(m) if m == format!("get: {eio}")
        ));
        let busy = "Resource busy: ";
        assert!(matches!(
            storage_error("ingest snapshot SST", &ErrorKind::Busy, busy),
            Error::Storage(_)
        ));
    }

    #[test]
    fn the_mapping_reads_the_kind_from_a_real_rocksdb_error() {
        // A real error from the library (the directory is a file), through the same conversion.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let mut opts = Options::default();
        opts.create_if_missing(true);
        let err = DB::open(&opts, &file)
            .map(drop)
            .map_err(storage("open RocksDB"));
        assert!(
            matches!(err, Err(Error::Storage(ref m)) if m.starts_with("open RocksDB: ")),
            "{err:?}"
        );
    }
}
