//! The built-in default of every setting, written in the setting's own syntax. Each value is taken from
//! the owner of the thing it configures — the HTTP layer's [`Limits`], raft-node's [`Timing`],
//! [`NodeConfig`] and [`GroupConfig`], the engine's [`EngineConfig`], [`SyncMode`], the free-space guard's reserve — so a default is defined once; the
//! configuration's layering and the `serve --help` text are both generated from this table.

use std::time::Duration;

use engine::EngineConfig;
use raft_node::{GroupConfig, NodeConfig, Timing};

use super::{ClusterState, SyncMode};
use crate::http::auth::MetricsAccess;
use crate::http::Limits;

/// The dev cluster's name when none is given.
const CLUSTER_ID: &str = "dev";
const DATA_DIR: &str = "./kvs-data";
const LISTEN_CLIENT: &str = "127.0.0.1:7379";
const LISTEN_PEER: &str = "127.0.0.1:7380";
/// The id of the dev cluster's single node.
const ID: u64 = 1;

/// Every setting that has a built-in default, with that default, in the order `--help` lists them.
/// Settings without one (`initial_cluster`, `join`, the advertised addresses, `pd`, `site`, the peer
/// secret, the TLS files) are derived from others or off when unset.
pub fn defaults() -> Vec<(&'static str, String)> {
    let limits = Limits::default();
    let timing = Timing::default();
    let node = NodeConfig::new(ID);
    let group = GroupConfig::new(ID, CLUSTER_ID, DATA_DIR.into(), DATA_DIR.into());
    let engine = EngineConfig::default();
    vec![
        ("id", ID.to_string()),
        ("cluster_id", CLUSTER_ID.to_string()),
        ("data_dir", DATA_DIR.to_string()),
        ("listen_client", LISTEN_CLIENT.to_string()),
        ("listen_peer", LISTEN_PEER.to_string()),
        (
            "initial_cluster_state",
            ClusterState::default().name().to_string(),
        ),
        ("retention", duration(engine.retention)),
        ("engine_sync", SyncMode::default().name().to_string()),
        (
            "max_key_bytes",
            size(u64::try_from(limits.max_key).unwrap_or(u64::MAX)),
        ),
        (
            "max_value_bytes",
            size(u64::try_from(limits.max_value).unwrap_or(u64::MAX)),
        ),
        ("max_body_bytes", size(limits.max_body)),
        ("max_connections", limits.max_connections.to_string()),
        ("header_read_timeout", duration(limits.header_read_timeout)),
        ("body_read_timeout", duration(limits.body_read_timeout)),
        ("request_timeout", duration(limits.request_timeout)),
        (
            "max_inflight_proposals",
            limits.max_inflight_proposals.to_string(),
        ),
        (
            "max_scan_bytes",
            size(u64::try_from(limits.max_scan_bytes).unwrap_or(u64::MAX)),
        ),
        ("compact_log_entries", node.compact_log_entries.to_string()),
        ("compact_log_bytes", size(node.compact_log_bytes)),
        (
            "max_entry_bytes",
            size(u64::try_from(node.max_entry_bytes).unwrap_or(u64::MAX)),
        ),
        (
            "max_peer_connections",
            group.max_peer_connections.to_string(),
        ),
        ("max_clock_skew", duration(node.max_clock_skew)),
        ("reserve_space", size(crate::node::disk::DEFAULT_RESERVE)),
        (
            "memory_budget",
            size(crate::node::memory::DEFAULT_MEMORY_BUDGET),
        ),
        (
            "sync_backlog_quota",
            size(crate::federation::DEFAULT_BACKLOG_QUOTA),
        ),
        (
            "sync_batch_entries",
            crate::federation::DEFAULT_BATCH_ENTRIES.to_string(),
        ),
        (
            "sync_batch_bytes",
            size(u64::try_from(crate::federation::DEFAULT_BATCH_BYTES).unwrap_or(u64::MAX)),
        ),
        (
            "sync_timeout",
            duration(crate::federation::DEFAULT_BATCH_DEADLINE),
        ),
        ("tick", duration(timing.tick)),
        ("election_ticks", timing.election_ticks.to_string()),
        ("heartbeat_ticks", timing.heartbeat_ticks.to_string()),
        (
            "lease_margin_percent",
            node.lease_margin_percent.to_string(),
        ),
        ("insecure_no_auth", false.to_string()),
        ("metrics_auth", MetricsAccess::default().name().to_string()),
        ("insecure_peer_no_auth", false.to_string()),
    ]
}

/// The default of `key`, if it has one.
pub fn default_of(key: &str) -> Option<String> {
    defaults()
        .into_iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// A duration in the largest unit that states it exactly (`5s`, `20ms`, `250us`).
pub fn duration(d: Duration) -> String {
    let us = d.as_micros();
    match () {
        _ if us.is_multiple_of(3_600_000_000) && us > 0 => format!("{}h", us / 3_600_000_000),
        _ if us.is_multiple_of(60_000_000) && us > 0 => format!("{}m", us / 60_000_000),
        _ if us.is_multiple_of(1_000_000) => format!("{}s", us / 1_000_000),
        _ if us.is_multiple_of(1_000) => format!("{}ms", us / 1_000),
        _ => format!("{us}us"),
    }
}

/// A size in the largest binary unit that states it exactly (`1MiB`, `64MiB`, `4KiB`, `1000`).
pub fn size(n: u64) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n > 0 && n.is_multiple_of(1 << shift) {
            return format!("{}{unit}", n >> shift);
        }
    }
    n.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_are_written_exactly_and_read_back() {
        assert_eq!(duration(Duration::from_secs(5)), "5s");
        assert_eq!(duration(Duration::from_millis(20)), "20ms");
        assert_eq!(duration(Duration::from_micros(1500)), "1500us");
        assert_eq!(duration(Duration::from_secs(120)), "2m");
        assert_eq!(size(4096), "4KiB");
        assert_eq!(size(1 << 20), "1MiB");
        assert_eq!(size(1000), "1000");
        for d in [5_000_000u64, 20_000, 1_500, 7_200_000_000] {
            let d = Duration::from_micros(d);
            assert_eq!(super::super::values::duration(&duration(d)), Ok(d));
        }
        for n in [4096u64, 1 << 20, 64 << 20, 1000, 3 << 30] {
            assert_eq!(super::super::values::size(&size(n)), Ok(n));
        }
    }

    #[test]
    fn every_default_is_a_known_key_once() {
        let d = defaults();
        for (i, (k, _)) in d.iter().enumerate() {
            assert!(super::super::KEYS.contains(k), "{k} is not a setting");
            assert!(d[..i].iter().all(|(other, _)| other != k), "{k} twice");
        }
    }
}
