//! A test double of a TiKV cluster (one PD, one TiKV store) for the real `tikv-client` 0.4:
//! in-process gRPC servers on loopback over an in-memory percolator store, with injectable faults.
//! Dev-only: no product crate depends on it (ARCHITECTURE.md).
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use tikv_double::{Fault, Options, Rpc, TikvDouble};
//! let double = TikvDouble::start(Options::default()).await?;
//! let endpoint = double.pd_endpoint(); // give it to `TransactionClient::new(vec![endpoint])`
//! double.faults().inject_times(Rpc::KvCommit, Fault::Unavailable, 1);
//! double.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! # What is modeled
//!
//! - **PD**: `GetMembers` (this PD, leading itself), the `Tso` stream (wall-clock milliseconds and
//!   an 18-bit logical counter, strictly increasing; [`TikvDouble::advance_clock`] moves it forward
//!   so lock TTLs pass without waiting), `GetRegion`, `GetRegionByID` (memcomparable-encoded
//!   boundaries, as PD holds them for the transactional API), `GetStore`, `GetAllStores`,
//!   `UpdateGCSafePoint` (never moves back). Unknown regions and stores answer a header error.
//! - **Regions**: one store; one region over the whole keyspace, or two split at
//!   [`Options::split_key`], each with one leader peer. Every TiKV request is checked like TiKV
//!   does: region id (`RegionNotFound`), epoch (`EpochNotMatch` with the current region), keys
//!   inside the region (`KeyNotInRegion`); scans and lock scans are clipped to the region.
//! - **Percolator** ([`mvcc`]): per key at most one lock and a history of write records (value
//!   kept in the lock until commit, then in the write record: no separate default column).
//!   Prewrite puts locks (primary, TTL, start ts) all-or-nothing, answering `KeyIsLocked` with the
//!   lock's info for another transaction's lock and `WriteConflict` for a write committed at or
//!   after the start ts (`SelfRolledBack` after its own rollback); `Insert` checks existence.
//!   Commit turns locks into write records at the commit ts the client got from this TSO,
//!   idempotently, and answers `TxnLockNotFound` (a retryable key error, as TiKV) when the lock is
//!   gone. Rollback and cleanup leave rollback records. `CheckTxnStatus` rolls back an expired
//!   primary (TTL counted on the timestamps' physical milliseconds) or, when asked, a missing one,
//!   and checks the primary; `ResolveLock` commits or rolls back a transaction's locks in a region;
//!   `CheckSecondaryLocks`, `TxnHeartBeat`, `ScanLock`, `Cleanup`. Reads at ts see writes committed
//!   at ≤ ts and stop at put/delete locks with start ts ≤ ts (`KeyIsLocked`); scans honour range,
//!   limit, reverse and key-only. Pessimistic locks (`PessimisticLock` with a write-conflict check
//!   against `for_update_ts`, `PessimisticRollback`, prewrite converting them) are modeled too.
//! - **Faults** ([`Faults`], per RPC, per server or global, counted or until cleared, changeable at
//!   runtime): `Unavailable`, `Delay`, `Hang`, region errors (`NotLeader` with or without a hint,
//!   `EpochNotMatch`, `ServerIsBusy`, `RegionNotFound`), PD header errors, PD answers without
//!   `header`, `GetMembers` without `leader`, and `DropAfterApply` (a TiKV write is applied, then
//!   its connection is dropped with no reply: an undetermined outcome for the client). Partitions
//!   ([`TikvDouble::stop_serving`]): `Refuse` resets every connection and closes new ones;
//!   `Blackhole` holds them (TCP accepts, nothing moves) until [`TikvDouble::resume`], when held
//!   connections flow again as after a healed partition.
//!
//! # What is not
//!
//! Async commit and 1PC (a prewrite asking for either is refused with an abort key error), pushing
//! `min_commit_ts` for readers (a reader waits for the lock's TTL or its resolution instead),
//! `CommitTsExpired`, large-transaction (`txn_file`) locks, GC of old versions (the safe point is
//! only recorded), raw KV, coprocessor, `BatchCommands`, keyspaces / API v2, TLS, region splits
//! or leader moves at runtime, more than one store or PD, and durability (everything is in memory).
//! Every RPC not listed above answers `Unimplemented` (tonic-build's default stubs).
//!
//! # What the tests show of tikv-client 0.4.0 (for the federation's design)
//!
//! - Connecting (`GetMembers`) and the TSO stream carry no deadline: a silent PD hangs
//!   `TransactionClient::new` and `current_timestamp` until the caller's own timeout. KV RPCs and
//!   PD's unary calls do end at `Config::with_timeout` (tonic enforces the grpc-timeout it sets),
//!   then the region backoff (10 tries, ~1.5 s of sleeps) runs out.
//! - A commit whose reply is lost is retried; as commit is idempotent the retry usually succeeds.
//!   When every try fails the client answers `Error::GrpcAPI`, never `UndeterminedError` (it marks
//!   undetermined only on `Error::Grpc`, a transport error a call never returns), even though the
//!   primary may have committed: every commit error must be treated as undetermined.
//! - PD answers without `header` panic inside the client: in the caller's task for `GetMembers`
//!   and `GetRegion`; for `GetStore` inside a task the client spawns, which it turns into
//!   `Error::JoinError`. `GetMembers` without a leader is an error, not a panic (0.4.0 checks it).
//! - Once the TSO stream breaks, every timestamp fails at once ("TimestampRequest channel is
//!   closed") until a call made at least a second after the last connect reconnects.
//! - Dropping a transaction that is still active (e.g. after a failed read) panics unless its
//!   options say `CheckLevel::Warn`/`None`; after a failed `commit` it is no longer active.
//! - `ServerIsBusy` is returned at once; `NotLeader`/`EpochNotMatch` are retried until the backoff
//!   runs out.

pub mod conn;
mod double;
pub mod faults;
pub mod mvcc;
mod pd;
pub mod regions;
mod tikv;
mod tso;

pub use conn::Partition;
pub use double::{Options, ServerTls, Target, TikvDouble};
pub use faults::{Fault, Faults, RegionError, Rpc, Scope};

/// The PD and TiKV protocol types, generated from the `.proto` files tikv-client 0.4.0 ships.
#[allow(clippy::all, clippy::pedantic, missing_docs, rustdoc::all)]
pub mod proto {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}
