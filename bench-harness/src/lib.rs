//! The comparison harness of issue 15 (a dev-only crate; nothing that ships depends on it).
//!
//! * [`cluster`]: the servers under test as child processes on loopback — a kvs-raft site, etcd ×3 and
//!   Redis — each in its own temporary directory on free ports, stopped and cleaned up on drop. Shared
//!   with the chaos and soak runs, which stop, kill and restart single nodes.
//! * [`drivers`]: `kvs_raft::bench::Driver` for etcd (gRPC) and Redis (RESP): how each system executes
//!   the workload's operations, and where a mapping is not one to one.
//! * [`resources`]: per-process RSS and CPU time from `/proc`, sampled once a second while a run runs.
//! * [`compare`]: the `compare` subcommand — the workload shapes, one system after another, into a
//!   markdown table and an SVG plot.

pub mod cluster;
pub mod compare;
pub mod drivers;
pub mod resources;
