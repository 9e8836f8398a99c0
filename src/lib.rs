//! `kvs-raft` as a library: everything the binary is made of, so integration tests and benchmarks can
//! run replicas and the HTTP API in-process. `main.rs` is a thin shell over [`cli::run`].

pub mod backend;
pub mod check;
pub mod cli;
pub mod config;
pub mod demo;
pub mod http;
pub mod metrics;
pub mod replica;
pub mod serve;
pub mod site;
