//! HTTP API v1 (SPEC §3), over warp: routes and filters (`routes`), thin handlers (`handlers`, `admin`),
//! JSON models (`dto`), the one error mapping (`error`), the read and write paths (`read`, `propose`),
//! forwarding to the leader (`forward`), client authentication (`auth`: bearer tokens and roles), limits,
//! metrics, the online backup stream (`snapshot`), and the server loop (`server`).
//!
//! The layer talks to the node only through the [`Backend`] trait, so every route is tested in-process
//! against a fake backend over a real engine (`tests/`).
//!
//! Architecture invariant: engine and Raft types are never serialized; every JSON shape is a DTO in
//! `dto.rs`, and every failure becomes `{"error":{"code","message",...}}` in `error.rs`.

mod admin;
pub mod auth;
pub mod backend;
mod body;
mod context;
mod dto;
mod error;
mod forward;
mod handlers;
mod limits;
mod metrics;
mod params;
mod propose;
mod read;
mod routes;
mod server;
mod snapshot;

#[cfg(test)]
mod tests;

pub use backend::{
    AddMember, Applied, Backend, BackendError, ClusterView, Consistency, GlobalCrossing,
    GlobalLookup, ImageOrigin, MemberRefusal, MemberRole, MemberView, ReadInfo, Readiness,
    SyncView,
};
pub use error::Code;
pub use limits::Limits;
pub use routes::{routes, routes_with_auth, Route, ROUTES};
pub use server::{serve, serve_tls};
