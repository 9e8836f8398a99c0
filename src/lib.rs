//! `kvs-raft` as a library: everything the binary is made of, so integration tests and benchmarks can
//! run replicas and the HTTP API in-process. `main.rs` is a thin shell over [`commands::run`].
//!
//! Dependencies point one way: `main` → `cli`, `config` → `commands` → `node` → `http`, `engine`,
//! `raft-node`; `commands` → `client` (the HTTP client of the client subcommands). `http` defines the backend trait that `node` implements, so `http` never imports `node`.

pub mod backup;
pub mod bench;
pub mod cli;
pub mod client;
pub mod commands;
pub mod config;
pub mod federation;
pub mod http;
pub mod metrics;
pub mod node;
pub mod tls;
