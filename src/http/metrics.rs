//! The HTTP layer's metrics, registered in the one `prometheus::Registry` its context owns: requests by
//! route template (from the route table, `routes::route_template`), method and status code; a latency
//! histogram per route with fixed buckets; connection and proposal gauges. The backend registers the
//! node's own metrics (raft, transport, engine, process) in the same registry
//! ([`Backend::register_metrics`](super::backend::Backend::register_metrics)), and `/metrics` encodes
//! the whole registry with [`render`].

use std::time::Duration;

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder,
};

/// Histogram bucket upper bounds, seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Bucket upper bounds of the write-stage histogram, seconds: stages take microseconds.
const STAGE_BUCKETS: [f64; 14] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.25, 1.0,
];

/// The `Content-Type` of the text exposition format served at `/metrics`.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub struct Metrics {
    requests: IntCounterVec,
    latency: HistogramVec,
    write_stages: HistogramVec,
    pub connections_active: IntGauge,
    pub connections_rejected: IntCounter,
    pub proposals_inflight: IntGauge,
    pub proposals_rejected: IntCounter,
    pub forwarded: IntCounter,
    pub forward_failures: IntCounter,
}

impl Metrics {
    /// Create this layer's metrics and register them in `registry`. Fails only on an invalid or
    /// already registered definition.
    pub fn register(registry: &Registry) -> prometheus::Result<Metrics> {
        let requests = IntCounterVec::new(
            Opts::new(
                "kvs_http_requests_total",
                "HTTP requests by route template, method and status code.",
            ),
            &["route", "method", "code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "kvs_http_request_duration_seconds",
                "HTTP request latency by route template.",
            )
            .buckets(BUCKETS.to_vec()),
            &["route"],
        )?;
        let write_stages = HistogramVec::new(
            HistogramOpts::new(
                "kvs_write_stage_seconds",
                "Time each write proposed on this node spent in each stage of the write path \
                 (docs/operations.md lists the stages).",
            )
            .buckets(STAGE_BUCKETS.to_vec()),
            &["stage"],
        )?;
        let m = Metrics {
            requests,
            latency,
            write_stages,
            connections_active: IntGauge::new(
                "kvs_http_connections_active",
                "Client connections being served.",
            )?,
            connections_rejected: IntCounter::new(
                "kvs_http_connections_rejected_total",
                "Connections refused over the connection limit.",
            )?,
            proposals_inflight: IntGauge::new(
                "kvs_http_proposals_inflight",
                "Proposals in flight from the HTTP layer.",
            )?,
            proposals_rejected: IntCounter::new(
                "kvs_http_proposals_rejected_total",
                "Proposals refused with 429 because the in-flight bound was reached.",
            )?,
            forwarded: IntCounter::new(
                "kvs_http_forwarded_total",
                "Requests forwarded to the leader.",
            )?,
            forward_failures: IntCounter::new(
                "kvs_http_forward_failures_total",
                "Forwards that got no answer from the leader.",
            )?,
        };
        registry.register(Box::new(m.requests.clone()))?;
        registry.register(Box::new(m.latency.clone()))?;
        registry.register(Box::new(m.write_stages.clone()))?;
        registry.register(Box::new(m.connections_active.clone()))?;
        registry.register(Box::new(m.connections_rejected.clone()))?;
        registry.register(Box::new(m.proposals_inflight.clone()))?;
        registry.register(Box::new(m.proposals_rejected.clone()))?;
        registry.register(Box::new(m.forwarded.clone()))?;
        registry.register(Box::new(m.forward_failures.clone()))?;
        Ok(m)
    }

    /// One stage of one write took `took` (`stage` from a fixed set of names).
    pub fn observe_stage(&self, stage: &'static str, took: Duration) {
        self.write_stages
            .with_label_values(&[stage])
            .observe(took.as_secs_f64());
    }

    pub fn observe(&self, route: &'static str, method: &str, code: u16, elapsed: Duration) {
        self.requests
            .with_label_values(&[route, method, &code.to_string()])
            .inc();
        self.latency
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
    }
}

/// Everything in `registry`, in the Prometheus text format.
pub fn render(registry: &Registry) -> prometheus::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 << 10);
    TextEncoder::new().encode(&registry.gather(), &mut out)?;
    Ok(out)
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

    fn rendered(registry: &Registry) -> String {
        String::from_utf8(render(registry).expect("render")).expect("utf-8")
    }

    #[test]
    fn histogram_is_cumulative() {
        let registry = Registry::new();
        let m = Metrics::register(&registry).expect("register");
        m.observe("/v1/kv", "GET", 200, Duration::from_micros(100));
        m.observe("/v1/kv", "GET", 200, Duration::from_millis(30));
        m.observe("/v1/kv", "GET", 404, Duration::from_secs(60));
        let out = rendered(&registry);
        assert!(
            out.contains("kvs_http_requests_total{code=\"200\",method=\"GET\",route=\"/v1/kv\"} 2")
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

    /// Names, types and HELP texts are what dashboards know; the scalar families are there (at 0)
    /// before anything happened.
    #[test]
    fn families_keep_their_names_types_and_help() {
        let registry = Registry::new();
        let m = Metrics::register(&registry).expect("register");
        m.observe("/healthz", "GET", 200, Duration::from_millis(1));
        m.connections_active.inc();
        let out = rendered(&registry);
        for line in [
            "# HELP kvs_http_requests_total HTTP requests by route template, method and status code.",
            "# TYPE kvs_http_requests_total counter",
            "# HELP kvs_http_request_duration_seconds HTTP request latency by route template.",
            "# TYPE kvs_http_request_duration_seconds histogram",
            "# HELP kvs_http_connections_active Client connections being served.",
            "# TYPE kvs_http_connections_active gauge",
            "kvs_http_connections_active 1",
            "# HELP kvs_http_connections_rejected_total Connections refused over the connection limit.",
            "# TYPE kvs_http_connections_rejected_total counter",
            "kvs_http_connections_rejected_total 0",
            "# HELP kvs_http_proposals_inflight Proposals in flight from the HTTP layer.",
            "# TYPE kvs_http_proposals_inflight gauge",
            "kvs_http_proposals_inflight 0",
            "# HELP kvs_http_proposals_rejected_total Proposals refused with 429 because the in-flight bound was reached.",
            "# TYPE kvs_http_proposals_rejected_total counter",
            "kvs_http_proposals_rejected_total 0",
            "# HELP kvs_http_forwarded_total Requests forwarded to the leader.",
            "# TYPE kvs_http_forwarded_total counter",
            "kvs_http_forwarded_total 0",
            "# HELP kvs_http_forward_failures_total Forwards that got no answer from the leader.",
            "# TYPE kvs_http_forward_failures_total counter",
            "kvs_http_forward_failures_total 0",
        ] {
            assert!(
                out.lines().any(|l| l == line),
                "missing {line:?} in\n{out}"
            );
        }
    }
}
