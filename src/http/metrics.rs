//! HTTP metrics in Prometheus text format, hand-written (no metrics crate): requests by route template
//! (from the route table, `routes::route_template`), method and status code; a latency histogram per route with fixed buckets; connection and proposal
//! gauges. `/metrics` renders these, then appends the backend's own (raft, engine, process).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Non-cumulative counts per bucket; the last slot is +Inf.
    counts: [u64; BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(&'static str, String, u16), u64>>,
    latency: Mutex<BTreeMap<&'static str, Histogram>>,
    pub connections_active: AtomicU64,
    pub connections_rejected: AtomicU64,
    pub proposals_inflight: AtomicU64,
    pub proposals_rejected: AtomicU64,
    pub forwarded: AtomicU64,
    pub forward_failures: AtomicU64,
}

impl Metrics {
    pub fn observe(&self, route: &'static str, method: &str, code: u16, elapsed: Duration) {
        *self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((route, method.to_owned(), code))
            .or_default() += 1;
        let secs = elapsed.as_secs_f64();
        let mut latency = self.latency.lock().unwrap_or_else(PoisonError::into_inner);
        let h = latency.entry(route).or_default();
        let slot = BUCKETS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(BUCKETS.len());
        h.counts[slot] += 1;
        h.sum += secs;
        h.count += 1;
    }

    /// Append this layer's metrics to `out`.
    pub fn render(&self, out: &mut String) {
        let requests = self
            .requests
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        out.push_str("# HELP kvs_http_requests_total HTTP requests by route template, method and status code.\n");
        out.push_str("# TYPE kvs_http_requests_total counter\n");
        for ((route, method, code), n) in &requests {
            let _ = writeln!(
                out,
                "kvs_http_requests_total{{route=\"{route}\",method=\"{method}\",code=\"{code}\"}} {n}"
            );
        }
        let latency = self
            .latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        out.push_str(
            "# HELP kvs_http_request_duration_seconds HTTP request latency by route template.\n",
        );
        out.push_str("# TYPE kvs_http_request_duration_seconds histogram\n");
        for (route, h) in &latency {
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i];
                let _ = writeln!(
                    out,
                    "kvs_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            cumulative += h.counts[BUCKETS.len()];
            let _ = writeln!(
                out,
                "kvs_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {cumulative}"
            );
            let _ = writeln!(
                out,
                "kvs_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "kvs_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                h.count
            );
        }
        let gauges: [(&str, &str, &str, &AtomicU64); 6] = [
            (
                "kvs_http_connections_active",
                "gauge",
                "Client connections being served.",
                &self.connections_active,
            ),
            (
                "kvs_http_connections_rejected_total",
                "counter",
                "Connections refused over the connection limit.",
                &self.connections_rejected,
            ),
            (
                "kvs_http_proposals_inflight",
                "gauge",
                "Proposals in flight from the HTTP layer.",
                &self.proposals_inflight,
            ),
            (
                "kvs_http_proposals_rejected_total",
                "counter",
                "Proposals refused with 429 because the in-flight bound was reached.",
                &self.proposals_rejected,
            ),
            (
                "kvs_http_forwarded_total",
                "counter",
                "Requests forwarded to the leader.",
                &self.forwarded,
            ),
            (
                "kvs_http_forward_failures_total",
                "counter",
                "Forwards that got no answer from the leader.",
                &self.forward_failures,
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {}",
                v.load(Ordering::Relaxed)
            );
        }
    }
}

/// A method label with bounded cardinality.
pub fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "PATCH" => "PATCH",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_is_cumulative() {
        let m = Metrics::default();
        m.observe("/v1/kv", "GET", 200, Duration::from_micros(100));
        m.observe("/v1/kv", "GET", 200, Duration::from_millis(30));
        m.observe("/v1/kv", "GET", 404, Duration::from_secs(60));
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("kvs_http_requests_total{route=\"/v1/kv\",method=\"GET\",code=\"200\"} 2")
        );
        assert!(out.contains(
            "kvs_http_request_duration_seconds_bucket{route=\"/v1/kv\",le=\"0.0005\"} 1"
        ));
        assert!(out
            .contains("kvs_http_request_duration_seconds_bucket{route=\"/v1/kv\",le=\"0.05\"} 2"));
        assert!(out
            .contains("kvs_http_request_duration_seconds_bucket{route=\"/v1/kv\",le=\"+Inf\"} 3"));
        assert!(out.contains("kvs_http_request_duration_seconds_count{route=\"/v1/kv\"} 3"));
    }
}
