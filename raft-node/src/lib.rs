//! # raft-node — replication for kvs-raft
//!
//! One raft-rs group per site. This crate owns the Raft log storage, the ready loop that owns `RawNode`,
//! the peer transport, and the wiring of all three behind one entry point, [`Group::start`]. Its tests
//! include the deterministic fault simulator (`tests/sim/`), whose reusable tools (linearizability
//! checker, in-memory log, stub state machines) live in the dev-only `testkit` crate. It talks to the
//! state machine through a trait and never names `rocksdb::` types in its public API (`storage/db.rs` is
//! its only file that imports `rocksdb`).

pub mod error;
mod group;
mod hlc;
pub mod membership;
pub mod node;
mod payload;
pub mod runner;
pub mod storage;
pub mod transport;

pub use error::Error;
pub use group::{max_entry_bytes, Configuration, Group, GroupConfig, StartError, WallClock};
pub use hlc::{wall_clock_micros, Hlc};
pub use membership::{Member, Membership, MembershipChange};
pub use node::{
    Command, CommitTs, Committed, DiskSpace, Latency, Node, NodeConfig, NodeCounters, NodeStatus,
    PeerProgress, ReadySink, Reply, Role, StagedImage, StateMachine, Timing, UncheckedEntry,
    WriteTrace, LATENCY_BUCKETS_MICROS,
};
pub use runner::{LeaderView, LoopExit, LoopHook, LowSpace};
pub use storage::{bootstrap_from_image, check_log, Finding, LogMemory, LogReport, LogStorage};
pub use transport::TransportCounters;
