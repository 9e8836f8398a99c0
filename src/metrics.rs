//! The node's metrics — Raft status and counters, the log fsync histogram, the transport, the engine and
//! the process — as one `prometheus` [`Collector`] that the HTTP layer's registry reads at scrape time
//! (`/metrics`). This module is the one home of these metrics' names, types and HELP texts.
//!
//! The collector holds no values of its own: a sampling closure returns a [`NodeSample`] (the cached
//! node status, transport and engine counters, RSS) and [`families`] turns it into metric families, a
//! pure function tested by its exact text. Raft families are absent until the node has reported a
//! status; RSS is absent where `/proc` cannot be read.

use std::collections::HashMap;

use engine::EngineStats;
use prometheus::core::{Collector, Desc};
use prometheus::proto::{self, MetricFamily, MetricType};
use raft_node::{Latency, NodeStatus, Role, TransportCounters, LATENCY_BUCKETS_MICROS};

/// What one scrape reads.
#[derive(Debug, Clone)]
pub struct NodeSample {
    /// The latest node status, `None` until the node loop has answered once.
    pub status: Option<NodeStatus>,
    pub transport: TransportCounters,
    pub engine: EngineStats,
    pub rss_bytes: Option<u64>,
    /// The federation's state, when it is configured.
    pub sync: Option<crate::http::SyncView>,
}

/// One metric family's definition.
struct Family {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    /// The one variable label, for the labelled families.
    label: Option<&'static str>,
}

const fn gauge(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        kind: MetricType::GAUGE,
        label: None,
    }
}

const fn counter(name: &'static str, help: &'static str) -> Family {
    Family {
        name,
        help,
        kind: MetricType::COUNTER,
        label: None,
    }
}

const fn labelled(family: Family, label: &'static str) -> Family {
    Family {
        label: Some(label),
        ..family
    }
}

const RAFT_TERM: Family = gauge("kvs_raft_term", "Current Raft term.");
const RAFT_COMMIT: Family = gauge("kvs_raft_commit_index", "Raft commit index.");
const RAFT_APPLIED: Family = gauge("kvs_raft_applied_index", "Index applied to the engine.");
const RAFT_FIRST: Family = gauge("kvs_raft_first_index", "First index still in the Raft log.");
const RAFT_IS_LEADER: Family = gauge("kvs_raft_is_leader", "1 if this node leads.");
const RAFT_QUEUE: Family = gauge(
    "kvs_raft_proposal_queue_depth",
    "Commands queued or in flight in the node.",
);
const RAFT_FSYNC: Family = Family {
    name: "kvs_raft_log_fsync_seconds",
    help: "Latency of the synced Raft log writes (one per Ready).",
    kind: MetricType::HISTOGRAM,
    label: None,
};
const RAFT_APPEND_ACK: Family = Family {
    name: "kvs_raft_follower_append_ack_seconds",
    help:
        "On a follower: from taking an append with entries to handing its acknowledgement to the \
           transport (its log write and fsync included).",
    kind: MetricType::HISTOGRAM,
    label: None,
};
const RAFT_APPLIED_TOTAL: Family = counter(
    "kvs_raft_commands_applied_total",
    "Client commands applied.",
);
const RAFT_ENTRIES_PROPOSED: Family = counter(
    "kvs_raft_entries_proposed_total",
    "Log entries proposed by this node.",
);
const RAFT_COMMANDS_PROPOSED: Family = counter(
    "kvs_raft_commands_proposed_total",
    "Client commands proposed by this node.",
);
const RAFT_COMPACTIONS: Family = counter("kvs_raft_log_compactions_total", "Raft log compactions.");
const RAFT_SNAPSHOTS: Family = counter(
    "kvs_raft_snapshots_installed_total",
    "Snapshots received and installed.",
);
const RAFT_READ_INDEX_ROUNDS: Family = counter(
    "kvs_raft_read_index_rounds_total",
    "ReadIndex rounds started: one per batch of reads arriving together, re-sends, lease renewals.",
);
const RAFT_OPS_PER_FSYNC: Family = gauge(
    "kvs_raft_ops_per_fsync",
    "Commands proposed per Raft log fsync since start.",
);
const RAFT_TS_CLAMPED: Family = counter(
    "kvs_raft_commit_ts_clamped_total",
    "Proposal batches this leader stamped at the cluster's clock plus max_clock_skew because its own clock ran further ahead (clock-skew alarm).",
);
const RAFT_TS_AHEAD: Family = counter(
    "kvs_raft_entries_ts_ahead_of_clock_total",
    "Entries received stamped more than max_clock_skew ahead of this node's clock (clock-skew alarm).",
);
const RAFT_UNAPPLIABLE: Family = counter(
    "kvs_raft_entries_unappliable_total",
    "Committed entries that could not be applied (they do not decode, or Raft refuses the conf change) and were applied as no-ops on every replica (alarm: never expected).",
);
const RAFT_CLOCK_AHEAD: Family = gauge(
    "kvs_raft_clock_ahead_seconds",
    "How far this leader's clock is ahead of the cluster's median clock (0 when behind or not leading).",
);
const PEER_CONNECTIONS_REFUSED: Family = counter(
    "kvs_peer_connections_refused_total",
    "Inbound peer connections closed at once because max_peer_connections were open.",
);
const PEER_MESSAGES: Family = labelled(
    counter(
        "kvs_peer_messages_total",
        "Raft messages by direction and fate.",
    ),
    "fate",
);
const PEER_HANDSHAKES_REJECTED: Family = labelled(
    counter(
        "kvs_peer_handshakes_rejected_total",
        "Refused peer connections by reason.",
    ),
    "reason",
);
const ENGINE_CROSSED_LOOKUPS: Family =
    counter("kvs_engine_crossed_lookups_total", "Checkpoint lookups.");
const ENGINE_BLOOM_NEGATIVES: Family = counter(
    "kvs_engine_bloom_negatives_total",
    "Checkpoint lookups answered by the bloom filter without reading RocksDB.",
);
const ENGINE_BLOOM_FALSE_POSITIVES: Family = counter(
    "kvs_engine_bloom_false_positives_total",
    "Bloom filter positives that RocksDB refuted.",
);
const ENGINE_BLOOM_ITEMS: Family =
    gauge("kvs_engine_bloom_items", "Crossings in the bloom filter.");
const ENGINE_BLOOM_BYTES: Family = gauge("kvs_engine_bloom_bytes", "Bloom filter size.");
const ENGINE_GC_SAFEPOINT: Family = gauge(
    "kvs_engine_gc_safepoint_micros",
    "Versions below this ts may be reclaimed.",
);
const ENGINE_GC_EPOCHS_RECLAIMED: Family = counter(
    "kvs_engine_gc_epochs_reclaimed_total",
    "Invalidated entity epochs range-deleted.",
);
const ENGINE_GC_VERSIONS_DROPPED: Family = counter(
    "kvs_engine_gc_versions_dropped_total",
    "Old versions dropped by the compaction filter.",
);
const ENGINE_STORE_READS: Family = counter(
    "kvs_engine_store_reads_total",
    "RocksDB point lookups and seeks.",
);
const ROCKSDB_MEMORY: Family = labelled(
    gauge("kvs_rocksdb_memory_bytes", "RocksDB memory by component."),
    "component",
);
const ROCKSDB_LIVE_SST: Family = gauge("kvs_rocksdb_live_sst_bytes", "Size of live SST files.");
const PROCESS_RSS: Family = gauge("process_resident_memory_bytes", "Resident set size.");
const SYNC_CURSOR: Family = gauge(
    "kvs_sync_cursor",
    "Log index up to which every change is in the central store (replicated cursor).",
);
const SYNC_BACKLOG_ENTRIES: Family = gauge(
    "kvs_sync_backlog_entries",
    "Change-feed entries not yet synced upward.",
);
const SYNC_BACKLOG_BYTES: Family = gauge(
    "kvs_sync_backlog_bytes",
    "Change-feed bytes not yet synced upward.",
);
const SYNC_BACKLOG_OVER_QUOTA: Family = gauge(
    "kvs_sync_backlog_over_quota",
    "1 while the unsynced backlog is over its quota (alarm; the site keeps serving).",
);
const SYNC_LAG_SECONDS: Family = gauge(
    "kvs_sync_lag_seconds",
    "Age of the oldest unsynced change (as the sync worker last saw it).",
);
const SYNC_BACKOFF_MS: Family = gauge(
    "kvs_sync_backoff_milliseconds",
    "The sync worker's current backoff delay.",
);
const SYNC_BREAKER_OPEN: Family = gauge(
    "kvs_sync_breaker_open",
    "1 while the circuit breaker keeps the worker from calling the central store.",
);
const SYNC_BATCHES: Family = counter(
    "kvs_sync_batches_total",
    "Batches committed centrally (one TiKV transaction each).",
);
const SYNC_ENTRIES: Family = counter(
    "kvs_sync_entries_total",
    "Change-feed entries synced upward.",
);
const SYNC_ERRORS: Family = labelled(
    counter("kvs_sync_errors_total", "Failed sync attempts, by kind."),
    "kind",
);
const SYNC_GLOBAL_LOOKUPS: Family = counter(
    "kvs_sync_global_lookups_total",
    "Central crossing lookups (crossed?scope=global that this site could not answer).",
);
const SYNC_GLOBAL_BLOOM_NEGATIVES: Family = counter(
    "kvs_sync_global_bloom_negatives_total",
    "Central crossing lookups the bloom filter answered without a round trip.",
);
const SYNC_GLOBAL_REMOTE_READS: Family = counter(
    "kvs_sync_global_remote_reads_total",
    "Central crossing lookups that read TiKV.",
);
const SYNC_RECLAIMED: Family = counter(
    "kvs_sync_reclaimed_keys_total",
    "Central keys of invalidated epochs deleted by this node's sync worker.",
);
const SYNC_RESTARTS: Family = counter(
    "kvs_sync_worker_restarts_total",
    "Sync worker restarts after a panic (inside tikv-client or ours).",
);

/// Every family the collector may return (its descriptors); a test checks it against [`families`].
const ALL: [&Family; 49] = [
    &RAFT_TERM,
    &RAFT_COMMIT,
    &RAFT_APPLIED,
    &RAFT_FIRST,
    &RAFT_IS_LEADER,
    &RAFT_QUEUE,
    &RAFT_FSYNC,
    &RAFT_APPEND_ACK,
    &RAFT_APPLIED_TOTAL,
    &RAFT_ENTRIES_PROPOSED,
    &RAFT_COMMANDS_PROPOSED,
    &RAFT_COMPACTIONS,
    &RAFT_SNAPSHOTS,
    &RAFT_READ_INDEX_ROUNDS,
    &RAFT_OPS_PER_FSYNC,
    &RAFT_TS_CLAMPED,
    &RAFT_TS_AHEAD,
    &RAFT_CLOCK_AHEAD,
    &RAFT_UNAPPLIABLE,
    &PEER_CONNECTIONS_REFUSED,
    &PEER_MESSAGES,
    &PEER_HANDSHAKES_REJECTED,
    &ENGINE_CROSSED_LOOKUPS,
    &ENGINE_BLOOM_NEGATIVES,
    &ENGINE_BLOOM_FALSE_POSITIVES,
    &ENGINE_BLOOM_ITEMS,
    &ENGINE_BLOOM_BYTES,
    &ENGINE_GC_SAFEPOINT,
    &ENGINE_GC_EPOCHS_RECLAIMED,
    &ENGINE_GC_VERSIONS_DROPPED,
    &ENGINE_STORE_READS,
    &ROCKSDB_MEMORY,
    &ROCKSDB_LIVE_SST,
    &PROCESS_RSS,
    &SYNC_CURSOR,
    &SYNC_BACKLOG_ENTRIES,
    &SYNC_BACKLOG_BYTES,
    &SYNC_BACKLOG_OVER_QUOTA,
    &SYNC_LAG_SECONDS,
    &SYNC_BACKOFF_MS,
    &SYNC_BREAKER_OPEN,
    &SYNC_BATCHES,
    &SYNC_ENTRIES,
    &SYNC_ERRORS,
    &SYNC_GLOBAL_LOOKUPS,
    &SYNC_GLOBAL_BLOOM_NEGATIVES,
    &SYNC_GLOBAL_REMOTE_READS,
    &SYNC_RESTARTS,
    &SYNC_RECLAIMED,
];

/// Prometheus sample values are `f64`; counters and gauges here stay exact below 2^53.
#[allow(clippy::cast_precision_loss)]
fn float(v: u64) -> f64 {
    v as f64
}

impl Family {
    fn desc(&self) -> prometheus::Result<Desc> {
        Desc::new(
            self.name.to_owned(),
            self.help.to_owned(),
            self.label.iter().map(|l| (*l).to_owned()).collect(),
            HashMap::new(),
        )
    }

    fn with(&self, metrics: Vec<proto::Metric>) -> MetricFamily {
        let mut f = MetricFamily::default();
        f.set_name(self.name.to_owned());
        f.set_help(self.help.to_owned());
        f.set_field_type(self.kind);
        f.set_metric(metrics);
        f
    }

    fn sample(&self, label_value: Option<&str>, v: f64) -> proto::Metric {
        let mut m = proto::Metric::default();
        if let (Some(name), Some(value)) = (self.label, label_value) {
            let mut pair = proto::LabelPair::default();
            pair.set_name(name.to_owned());
            pair.set_value(value.to_owned());
            m.set_label(vec![pair]);
        }
        if self.kind == MetricType::COUNTER {
            let mut c = proto::Counter::default();
            c.set_value(v);
            m.set_counter(c);
        } else {
            let mut g = proto::Gauge::default();
            g.set_value(v);
            m.set_gauge(g);
        }
        m
    }

    /// An unlabelled counter or gauge.
    fn value(&self, v: f64) -> MetricFamily {
        self.with(vec![self.sample(None, v)])
    }

    /// A counter or gauge with one sample per value of its label.
    fn values(&self, samples: &[(&str, u64)]) -> MetricFamily {
        self.with(
            samples
                .iter()
                .map(|(label, v)| self.sample(Some(label), float(*v)))
                .collect(),
        )
    }
}

/// The node's families for one sample, in a fixed order.
pub fn families(s: &NodeSample) -> Vec<MetricFamily> {
    let mut out = Vec::with_capacity(ALL.len());
    if let Some(status) = &s.status {
        raft_families(status, &mut out);
    }
    let t = &s.transport;
    out.push(PEER_CONNECTIONS_REFUSED.value(float(t.connections_refused)));
    out.push(PEER_MESSAGES.values(&[
        ("sent", t.messages_sent),
        ("received", t.messages_received),
        ("dropped_queue_full", t.messages_dropped_queue_full),
        ("dropped_unknown_peer", t.messages_dropped_unknown_peer),
        ("dropped_disconnected", t.messages_dropped_disconnected),
    ]));
    out.push(PEER_HANDSHAKES_REJECTED.values(&[
        ("cluster", t.handshakes_rejected_cluster),
        ("unknown_id", t.handshakes_rejected_unknown_id),
        ("removed", t.handshakes_rejected_removed),
        ("proof", t.handshakes_rejected_proof),
        ("bad_frame", t.bad_frames),
        ("identity", t.handshakes_rejected_identity),
        ("tls", t.handshakes_failed_tls),
    ]));
    let e = &s.engine;
    for (family, v) in [
        (&ENGINE_CROSSED_LOOKUPS, e.crossed_lookups),
        (&ENGINE_BLOOM_NEGATIVES, e.bloom_negatives),
        (&ENGINE_BLOOM_FALSE_POSITIVES, e.bloom_false_positives),
        (&ENGINE_BLOOM_ITEMS, e.bloom_items),
        (&ENGINE_BLOOM_BYTES, e.bloom_bytes),
        (&ENGINE_GC_SAFEPOINT, e.gc_safepoint),
        (&ENGINE_GC_EPOCHS_RECLAIMED, e.gc_epochs_reclaimed),
        (&ENGINE_GC_VERSIONS_DROPPED, e.gc_versions_dropped),
        (&ENGINE_STORE_READS, e.store_reads),
    ] {
        out.push(family.value(float(v)));
    }
    out.push(ROCKSDB_MEMORY.values(&[
        ("block_cache", e.memory.block_cache_bytes),
        ("memtables", e.memory.memtable_bytes),
        ("table_readers", e.memory.table_readers_bytes),
    ]));
    out.push(ROCKSDB_LIVE_SST.value(float(e.memory.live_sst_bytes)));
    if let Some(rss) = s.rss_bytes {
        out.push(PROCESS_RSS.value(float(rss)));
    }
    if let Some(y) = &s.sync {
        for (family, v) in [
            (&SYNC_CURSOR, y.cursor),
            (&SYNC_BACKLOG_ENTRIES, y.lag_entries),
            (&SYNC_BACKLOG_BYTES, y.backlog_bytes),
            (
                &SYNC_BACKLOG_OVER_QUOTA,
                u64::from(y.backlog_bytes > y.backlog_quota_bytes),
            ),
        ] {
            out.push(family.value(float(v)));
        }
        out.push(SYNC_LAG_SECONDS.value(y.lag_seconds));
        for (family, v) in [
            (&SYNC_BACKOFF_MS, y.backoff_ms),
            (&SYNC_BREAKER_OPEN, u64::from(y.breaker_open)),
            (&SYNC_BATCHES, y.batches),
            (&SYNC_ENTRIES, y.entries_synced),
        ] {
            out.push(family.value(float(v)));
        }
        let other = y.errors.saturating_sub(y.undetermined + y.fenced);
        out.push(SYNC_ERRORS.values(&[
            ("undetermined", y.undetermined),
            ("fenced", y.fenced),
            ("other", other),
        ]));
        for (family, v) in [
            (&SYNC_GLOBAL_LOOKUPS, y.global_lookups),
            (&SYNC_GLOBAL_BLOOM_NEGATIVES, y.global_bloom_negatives),
            (&SYNC_GLOBAL_REMOTE_READS, y.global_remote_reads),
            (&SYNC_RESTARTS, y.restarts),
            (&SYNC_RECLAIMED, y.reclaimed_keys),
        ] {
            out.push(family.value(float(v)));
        }
    }
    out
}

fn raft_families(s: &NodeStatus, out: &mut Vec<MetricFamily>) {
    let c = &s.counters;
    for (family, v) in [
        (&RAFT_TERM, s.term),
        (&RAFT_COMMIT, s.commit),
        (&RAFT_APPLIED, s.applied),
        (&RAFT_FIRST, s.first_index),
        (&RAFT_IS_LEADER, u64::from(s.role == Role::Leader)),
        (
            &RAFT_QUEUE,
            u64::try_from(s.inflight_commands).unwrap_or(u64::MAX),
        ),
    ] {
        out.push(family.value(float(v)));
    }
    out.push(RAFT_FSYNC.with(vec![histogram(&c.fsync)]));
    out.push(RAFT_APPEND_ACK.with(vec![histogram(&c.append_ack)]));
    for (family, v) in [
        (&RAFT_APPLIED_TOTAL, c.commands_applied),
        (&RAFT_ENTRIES_PROPOSED, c.entries_proposed),
        (&RAFT_COMMANDS_PROPOSED, c.commands_proposed),
        (&RAFT_COMPACTIONS, c.compactions),
        (&RAFT_SNAPSHOTS, c.snapshots_installed),
        (&RAFT_READ_INDEX_ROUNDS, c.read_index_rounds),
    ] {
        out.push(family.value(float(v)));
    }
    let per_fsync = if c.fsync.count == 0 {
        0.0
    } else {
        float(c.commands_proposed) / float(c.fsync.count)
    };
    out.push(RAFT_OPS_PER_FSYNC.value(per_fsync));
    out.push(RAFT_TS_CLAMPED.value(float(c.ts_clamped)));
    out.push(RAFT_TS_AHEAD.value(float(c.ts_ahead_of_clock)));
    out.push(RAFT_CLOCK_AHEAD.value(float(c.clock_ahead_micros) / 1e6));
    out.push(RAFT_UNAPPLIABLE.value(float(c.entries_unappliable)));
}

/// One of the node's latency histograms: it keeps cumulative counts per bound, the +Inf bucket being the
/// sample count.
fn histogram(l: &Latency) -> proto::Metric {
    let mut h = proto::Histogram::default();
    h.set_bucket(
        LATENCY_BUCKETS_MICROS
            .iter()
            .zip(l.buckets)
            .map(|(bound, cumulative)| {
                let mut b = proto::Bucket::default();
                b.set_upper_bound(float(*bound) / 1e6);
                b.set_cumulative_count(cumulative);
                b
            })
            .collect(),
    );
    h.set_sample_count(l.count);
    h.set_sample_sum(float(l.total_micros) / 1e6);
    let mut m = proto::Metric::default();
    m.set_histogram(h);
    m
}

/// The node's metrics, read through `sample` at every scrape.
pub struct NodeCollector<F> {
    descs: Vec<Desc>,
    sample: F,
}

impl<F: Fn() -> NodeSample + Send + Sync> NodeCollector<F> {
    pub fn new(sample: F) -> prometheus::Result<Self> {
        let descs = ALL.iter().map(|f| f.desc()).collect::<Result<_, _>>()?;
        Ok(NodeCollector { descs, sample })
    }
}

impl<F: Fn() -> NodeSample + Send + Sync> Collector for NodeCollector<F> {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        families(&(self.sample)())
    }
}

/// Resident set size from `/proc/self/statm` (Linux); `None` elsewhere or on a parse failure.
pub fn process_rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages.saturating_mul(4096))
}

#[cfg(test)]
mod tests {
    use prometheus::{Encoder as _, Registry, TextEncoder};
    use raft_node::{Membership, NodeCounters};

    use super::*;

    fn sample() -> NodeSample {
        let mut fsync = Latency {
            count: 7,
            total_micros: 3_516,
            ..Latency::default()
        };
        for (i, n) in [0, 0, 0, 4, 5, 6, 6, 6, 6, 6, 6, 6, 6, 7]
            .into_iter()
            .enumerate()
        {
            fsync.buckets[i] = n;
        }
        let mut append_ack = Latency::default();
        append_ack.record(std::time::Duration::from_micros(80));
        let status = NodeStatus {
            id: 1,
            role: Role::Leader,
            term: 3,
            leader: Some(1),
            commit: 12,
            applied: 11,
            last_index: 12,
            voters: vec![1],
            learners: vec![],
            membership: Membership::default(),
            first_index: 2,
            progress: vec![],
            inflight_commands: 4,
            counters: NodeCounters {
                entries_proposed: 5,
                commands_proposed: 8,
                commands_applied: 6,
                compactions: 1,
                fsync,
                append_ack,
                snapshots_installed: 2,
                read_index_rounds: 4,
                ts_clamped: 0,
                ts_ahead_of_clock: 0,
                clock_ahead_micros: 0,
                entries_unappliable: 0,
            },
            ticks_since_leader: 0,
        };
        let transport = TransportCounters {
            messages_sent: 10,
            messages_received: 9,
            messages_dropped_queue_full: 1,
            handshakes_rejected_proof: 2,
            bad_frames: 3,
            ..TransportCounters::default()
        };
        let mut engine = EngineStats {
            crossed_lookups: 1,
            bloom_negatives: 2,
            bloom_false_positives: 3,
            bloom_items: 4,
            bloom_bytes: 2_396_264,
            gc_safepoint: 1_796_054_103_590_108,
            gc_epochs_reclaimed: 5,
            gc_versions_dropped: 6,
            store_reads: 19,
            ..EngineStats::default()
        };
        engine.memory.block_cache_bytes = 87;
        engine.memory.memtable_bytes = 2048;
        engine.memory.table_readers_bytes = 0;
        engine.memory.live_sst_bytes = 1234;
        NodeSample {
            status: Some(status),
            transport,
            engine,
            rss_bytes: Some(39_673_856),
            sync: Some(crate::http::SyncView {
                cursor: 40,
                lag_entries: 3,
                backlog_bytes: 2_000,
                backlog_quota_bytes: 1_000,
                lag_seconds: 1.5,
                backoff_ms: 250,
                breaker_open: false,
                batches: 7,
                entries_synced: 40,
                errors: 4,
                undetermined: 1,
                fenced: 2,
                restarts: 1,
                global_lookups: 5,
                global_bloom_negatives: 3,
                global_remote_reads: 2,
                ..crate::http::SyncView::default()
            }),
        }
    }

    fn text(families: &[MetricFamily]) -> String {
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(families, &mut out)
            .expect("encode");
        String::from_utf8(out).expect("utf-8")
    }

    /// The exact exposition, as the hand-written writer produced it before (dashboards depend on the
    /// names, labels, types and HELP texts); only `kvs_raft_ops_per_fsync` is no longer rounded.
    #[test]
    fn families_render_the_documented_exposition() {
        let expected = r#"# HELP kvs_raft_term Current Raft term.
# TYPE kvs_raft_term gauge
kvs_raft_term 3
# HELP kvs_raft_commit_index Raft commit index.
# TYPE kvs_raft_commit_index gauge
kvs_raft_commit_index 12
# HELP kvs_raft_applied_index Index applied to the engine.
# TYPE kvs_raft_applied_index gauge
kvs_raft_applied_index 11
# HELP kvs_raft_first_index First index still in the Raft log.
# TYPE kvs_raft_first_index gauge
kvs_raft_first_index 2
# HELP kvs_raft_is_leader 1 if this node leads.
# TYPE kvs_raft_is_leader gauge
kvs_raft_is_leader 1
# HELP kvs_raft_proposal_queue_depth Commands queued or in flight in the node.
# TYPE kvs_raft_proposal_queue_depth gauge
kvs_raft_proposal_queue_depth 4
# HELP kvs_raft_log_fsync_seconds Latency of the synced Raft log writes (one per Ready).
# TYPE kvs_raft_log_fsync_seconds histogram
kvs_raft_log_fsync_seconds_bucket{le="0.00005"} 0
kvs_raft_log_fsync_seconds_bucket{le="0.0001"} 0
kvs_raft_log_fsync_seconds_bucket{le="0.00025"} 0
kvs_raft_log_fsync_seconds_bucket{le="0.0005"} 4
kvs_raft_log_fsync_seconds_bucket{le="0.001"} 5
kvs_raft_log_fsync_seconds_bucket{le="0.002"} 6
kvs_raft_log_fsync_seconds_bucket{le="0.005"} 6
kvs_raft_log_fsync_seconds_bucket{le="0.01"} 6
kvs_raft_log_fsync_seconds_bucket{le="0.02"} 6
kvs_raft_log_fsync_seconds_bucket{le="0.05"} 6
kvs_raft_log_fsync_seconds_bucket{le="0.1"} 6
kvs_raft_log_fsync_seconds_bucket{le="0.25"} 6
kvs_raft_log_fsync_seconds_bucket{le="1"} 6
kvs_raft_log_fsync_seconds_bucket{le="+Inf"} 7
kvs_raft_log_fsync_seconds_sum 0.003516
kvs_raft_log_fsync_seconds_count 7
# HELP kvs_raft_follower_append_ack_seconds On a follower: from taking an append with entries to handing its acknowledgement to the transport (its log write and fsync included).
# TYPE kvs_raft_follower_append_ack_seconds histogram
kvs_raft_follower_append_ack_seconds_bucket{le="0.00005"} 0
kvs_raft_follower_append_ack_seconds_bucket{le="0.0001"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.00025"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.0005"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.001"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.002"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.005"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.01"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.02"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.05"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.1"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="0.25"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="1"} 1
kvs_raft_follower_append_ack_seconds_bucket{le="+Inf"} 1
kvs_raft_follower_append_ack_seconds_sum 0.00008
kvs_raft_follower_append_ack_seconds_count 1
# HELP kvs_raft_commands_applied_total Client commands applied.
# TYPE kvs_raft_commands_applied_total counter
kvs_raft_commands_applied_total 6
# HELP kvs_raft_entries_proposed_total Log entries proposed by this node.
# TYPE kvs_raft_entries_proposed_total counter
kvs_raft_entries_proposed_total 5
# HELP kvs_raft_commands_proposed_total Client commands proposed by this node.
# TYPE kvs_raft_commands_proposed_total counter
kvs_raft_commands_proposed_total 8
# HELP kvs_raft_log_compactions_total Raft log compactions.
# TYPE kvs_raft_log_compactions_total counter
kvs_raft_log_compactions_total 1
# HELP kvs_raft_snapshots_installed_total Snapshots received and installed.
# TYPE kvs_raft_snapshots_installed_total counter
kvs_raft_snapshots_installed_total 2
# HELP kvs_raft_read_index_rounds_total ReadIndex rounds started: one per batch of reads arriving together, re-sends, lease renewals.
# TYPE kvs_raft_read_index_rounds_total counter
kvs_raft_read_index_rounds_total 4
# HELP kvs_raft_ops_per_fsync Commands proposed per Raft log fsync since start.
# TYPE kvs_raft_ops_per_fsync gauge
kvs_raft_ops_per_fsync 1.1428571428571428
# HELP kvs_raft_commit_ts_clamped_total Proposal batches this leader stamped at the cluster's clock plus max_clock_skew because its own clock ran further ahead (clock-skew alarm).
# TYPE kvs_raft_commit_ts_clamped_total counter
kvs_raft_commit_ts_clamped_total 0
# HELP kvs_raft_entries_ts_ahead_of_clock_total Entries received stamped more than max_clock_skew ahead of this node's clock (clock-skew alarm).
# TYPE kvs_raft_entries_ts_ahead_of_clock_total counter
kvs_raft_entries_ts_ahead_of_clock_total 0
# HELP kvs_raft_clock_ahead_seconds How far this leader's clock is ahead of the cluster's median clock (0 when behind or not leading).
# TYPE kvs_raft_clock_ahead_seconds gauge
kvs_raft_clock_ahead_seconds 0
# HELP kvs_raft_entries_unappliable_total Committed entries that could not be applied (they do not decode, or Raft refuses the conf change) and were applied as no-ops on every replica (alarm: never expected).
# TYPE kvs_raft_entries_unappliable_total counter
kvs_raft_entries_unappliable_total 0
# HELP kvs_peer_connections_refused_total Inbound peer connections closed at once because max_peer_connections were open.
# TYPE kvs_peer_connections_refused_total counter
kvs_peer_connections_refused_total 0
# HELP kvs_peer_messages_total Raft messages by direction and fate.
# TYPE kvs_peer_messages_total counter
kvs_peer_messages_total{fate="sent"} 10
kvs_peer_messages_total{fate="received"} 9
kvs_peer_messages_total{fate="dropped_queue_full"} 1
kvs_peer_messages_total{fate="dropped_unknown_peer"} 0
kvs_peer_messages_total{fate="dropped_disconnected"} 0
# HELP kvs_peer_handshakes_rejected_total Refused peer connections by reason.
# TYPE kvs_peer_handshakes_rejected_total counter
kvs_peer_handshakes_rejected_total{reason="cluster"} 0
kvs_peer_handshakes_rejected_total{reason="unknown_id"} 0
kvs_peer_handshakes_rejected_total{reason="removed"} 0
kvs_peer_handshakes_rejected_total{reason="proof"} 2
kvs_peer_handshakes_rejected_total{reason="bad_frame"} 3
kvs_peer_handshakes_rejected_total{reason="identity"} 0
kvs_peer_handshakes_rejected_total{reason="tls"} 0
# HELP kvs_engine_crossed_lookups_total Checkpoint lookups.
# TYPE kvs_engine_crossed_lookups_total counter
kvs_engine_crossed_lookups_total 1
# HELP kvs_engine_bloom_negatives_total Checkpoint lookups answered by the bloom filter without reading RocksDB.
# TYPE kvs_engine_bloom_negatives_total counter
kvs_engine_bloom_negatives_total 2
# HELP kvs_engine_bloom_false_positives_total Bloom filter positives that RocksDB refuted.
# TYPE kvs_engine_bloom_false_positives_total counter
kvs_engine_bloom_false_positives_total 3
# HELP kvs_engine_bloom_items Crossings in the bloom filter.
# TYPE kvs_engine_bloom_items gauge
kvs_engine_bloom_items 4
# HELP kvs_engine_bloom_bytes Bloom filter size.
# TYPE kvs_engine_bloom_bytes gauge
kvs_engine_bloom_bytes 2396264
# HELP kvs_engine_gc_safepoint_micros Versions below this ts may be reclaimed.
# TYPE kvs_engine_gc_safepoint_micros gauge
kvs_engine_gc_safepoint_micros 1796054103590108
# HELP kvs_engine_gc_epochs_reclaimed_total Invalidated entity epochs range-deleted.
# TYPE kvs_engine_gc_epochs_reclaimed_total counter
kvs_engine_gc_epochs_reclaimed_total 5
# HELP kvs_engine_gc_versions_dropped_total Old versions dropped by the compaction filter.
# TYPE kvs_engine_gc_versions_dropped_total counter
kvs_engine_gc_versions_dropped_total 6
# HELP kvs_engine_store_reads_total RocksDB point lookups and seeks.
# TYPE kvs_engine_store_reads_total counter
kvs_engine_store_reads_total 19
# HELP kvs_rocksdb_memory_bytes RocksDB memory by component.
# TYPE kvs_rocksdb_memory_bytes gauge
kvs_rocksdb_memory_bytes{component="block_cache"} 87
kvs_rocksdb_memory_bytes{component="memtables"} 2048
kvs_rocksdb_memory_bytes{component="table_readers"} 0
# HELP kvs_rocksdb_live_sst_bytes Size of live SST files.
# TYPE kvs_rocksdb_live_sst_bytes gauge
kvs_rocksdb_live_sst_bytes 1234
# HELP process_resident_memory_bytes Resident set size.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 39673856
# HELP kvs_sync_cursor Log index up to which every change is in the central store (replicated cursor).
# TYPE kvs_sync_cursor gauge
kvs_sync_cursor 40
# HELP kvs_sync_backlog_entries Change-feed entries not yet synced upward.
# TYPE kvs_sync_backlog_entries gauge
kvs_sync_backlog_entries 3
# HELP kvs_sync_backlog_bytes Change-feed bytes not yet synced upward.
# TYPE kvs_sync_backlog_bytes gauge
kvs_sync_backlog_bytes 2000
# HELP kvs_sync_backlog_over_quota 1 while the unsynced backlog is over its quota (alarm; the site keeps serving).
# TYPE kvs_sync_backlog_over_quota gauge
kvs_sync_backlog_over_quota 1
# HELP kvs_sync_lag_seconds Age of the oldest unsynced change (as the sync worker last saw it).
# TYPE kvs_sync_lag_seconds gauge
kvs_sync_lag_seconds 1.5
# HELP kvs_sync_backoff_milliseconds The sync worker's current backoff delay.
# TYPE kvs_sync_backoff_milliseconds gauge
kvs_sync_backoff_milliseconds 250
# HELP kvs_sync_breaker_open 1 while the circuit breaker keeps the worker from calling the central store.
# TYPE kvs_sync_breaker_open gauge
kvs_sync_breaker_open 0
# HELP kvs_sync_batches_total Batches committed centrally (one TiKV transaction each).
# TYPE kvs_sync_batches_total counter
kvs_sync_batches_total 7
# HELP kvs_sync_entries_total Change-feed entries synced upward.
# TYPE kvs_sync_entries_total counter
kvs_sync_entries_total 40
# HELP kvs_sync_errors_total Failed sync attempts, by kind.
# TYPE kvs_sync_errors_total counter
kvs_sync_errors_total{kind="undetermined"} 1
kvs_sync_errors_total{kind="fenced"} 2
kvs_sync_errors_total{kind="other"} 1
# HELP kvs_sync_global_lookups_total Central crossing lookups (crossed?scope=global that this site could not answer).
# TYPE kvs_sync_global_lookups_total counter
kvs_sync_global_lookups_total 5
# HELP kvs_sync_global_bloom_negatives_total Central crossing lookups the bloom filter answered without a round trip.
# TYPE kvs_sync_global_bloom_negatives_total counter
kvs_sync_global_bloom_negatives_total 3
# HELP kvs_sync_global_remote_reads_total Central crossing lookups that read TiKV.
# TYPE kvs_sync_global_remote_reads_total counter
kvs_sync_global_remote_reads_total 2
# HELP kvs_sync_worker_restarts_total Sync worker restarts after a panic (inside tikv-client or ours).
# TYPE kvs_sync_worker_restarts_total counter
kvs_sync_worker_restarts_total 1
# HELP kvs_sync_reclaimed_keys_total Central keys of invalidated epochs deleted by this node's sync worker.
# TYPE kvs_sync_reclaimed_keys_total counter
kvs_sync_reclaimed_keys_total 0
"#;
        assert_eq!(text(&families(&sample())), expected);
    }

    #[test]
    fn descriptors_name_exactly_the_families_returned() {
        let returned: Vec<_> = families(&sample())
            .iter()
            .map(|f| f.name().to_owned())
            .collect();
        let described: Vec<_> = ALL.iter().map(|f| f.name.to_owned()).collect();
        assert_eq!(returned, described);
    }

    #[test]
    fn without_a_status_or_rss_only_transport_and_engine_are_reported() {
        let s = NodeSample {
            status: None,
            rss_bytes: None,
            ..sample()
        };
        let out = text(&families(&s));
        assert!(!out.contains("kvs_raft_"), "{out}");
        assert!(!out.contains("process_resident_memory_bytes"), "{out}");
        assert!(out.contains("kvs_peer_messages_total{fate=\"sent\"} 10"));
        assert!(out.contains("kvs_engine_store_reads_total 19"));
    }

    #[test]
    fn the_collector_registers_and_is_read_at_scrape_time() {
        let registry = Registry::new();
        let reads = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = reads.clone();
        let collector = NodeCollector::new(move || {
            let n = counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut s = sample();
            s.engine.store_reads = n;
            s
        })
        .expect("valid descriptors");
        registry.register(Box::new(collector)).expect("register");
        for n in 0..2 {
            let out = text(&registry.gather());
            assert!(
                out.contains(&format!("kvs_engine_store_reads_total {n}\n")),
                "{out}"
            );
        }
        assert_eq!(reads.load(std::sync::atomic::Ordering::Relaxed), 2);
    }
}
