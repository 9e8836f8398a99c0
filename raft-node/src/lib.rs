//! # raft-node — replication for kvs-raft
//!
//! One raft-rs group per site. This crate owns the Raft log storage, the ready loop that owns `RawNode`
//! and the transport; its tests include the deterministic fault simulator (`tests/sim/`), whose reusable
//! tools (linearizability checker, in-memory log) live in the dev-only `testkit` crate. It talks to the state machine through a trait and never names
//! `rocksdb::` types in its public API (`storage/db.rs` is its only file that imports `rocksdb`).

pub mod error;
mod hlc;
pub mod membership;
pub mod node;
mod payload;
pub mod runner;
pub mod storage;
pub mod transport;

pub use error::Error;
pub use hlc::Hlc;
pub use membership::{Member, Membership, MembershipChange};
pub use node::{
    Command, LogStorage, Node, NodeConfig, NodeCounters, NodeStatus, PeerProgress, Reply, Role,
    StagedImage, StateMachine, FSYNC_BUCKETS_MICROS,
};
