//! # testkit — kvs-raft's test tools (dev-only, never published)
//!
//! What tests and benches of the workspace share, kept out of the product crates:
//!
//! - [`linearizability`]: the checker for recorded client histories (Wing–Gong/Lowe with unknown outcomes,
//!   partitioned by entity);
//! - [`mem_log`]: an in-memory Raft log (`LogStorage`) that survives a simulated crash of its node;
//! - [`single_node`]: a one-voter group with no network and an echoing state machine stub, for tests and
//!   benches of the ready loop;
//! - the deterministic simulator's reusable parts (its scenarios stay in `raft-node/tests/sim/`):
//!   [`rng`] (the seeded generator), [`net`] (the simulated network), [`kv_machine`] (the checker's model
//!   as a state machine, with [`op_codec`] its command format) and [`history`] (recording what clients saw
//!   for the checker);
//! - [`certs`]: test certificates (a CA, leaves for given names, rustls client configurations).
//!
//! It depends on `raft-node`, and `raft-node` takes it as a dev-dependency: only integration tests and
//! benches can use it (unit tests inside `raft-node/src` see a different build of `raft-node`).

pub mod certs;
pub mod history;
pub mod kv_machine;
pub mod linearizability;
pub mod mem_log;
pub mod net;
pub mod op_codec;
pub mod rng;
pub mod single_node;
