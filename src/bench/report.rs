//! A [`Report`] for people (a summary and a latency table, milliseconds) and for scripts (one line of
//! JSON, the fields of [`Report`], documented in docs/cli.md), and the progress line.

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::runner::{rate, LatencySummary, Progress, Report};

/// Microseconds as milliseconds with 2 decimals.
fn ms(us: u64) -> String {
    // Latencies are far below 2^53 µs: the conversion is exact.
    format!("{:.2}", us as f64 / 1e3)
}

fn latency_row(name: &str, s: &LatencySummary) -> Vec<String> {
    let mut row = vec![name.to_owned(), s.count.to_string()];
    row.extend([s.p50, s.p90, s.p99, s.p999, s.max].map(ms));
    row.push(format!("{:.2}", s.mean / 1e3));
    row
}

/// The report as people read it: what ran, the rates, the errors and a latency table (ms).
pub fn human(r: &Report) -> String {
    let w = &r.workload;
    let mut out = String::new();
    let loop_ = match r.offered_rate {
        Some(_) => format!("open loop, {} connections", r.connections),
        None => format!("closed loop, {} clients", r.connections),
    };
    out.push_str(&format!(
        "{} workload: {} players, {} ops/s each, {:.1} % checkpoints, {:.1} % late reads ({} ms old), \
         {}-byte values, seed {}\n",
        w.shape.name(),
        w.players,
        w.rate_per_player,
        w.checkpoint_fraction * 100.0,
        w.late_read_fraction * 100.0,
        w.late_age.as_millis(),
        w.value_size,
        w.seed,
    ));
    out.push_str(&format!(
        "{loop_}, batch {}; warm-up {:.1} s, measured {:.1} s (last answer at {:.2} s)\n",
        r.batch, r.warmup_s, r.duration_s, r.elapsed_s
    ));
    let offered = r
        .offered_rate
        .map_or_else(|| "-".to_owned(), |o| format!("{o:.1}"));
    out.push_str(&format!(
        "ops/s: offered {offered}, achieved {:.1}; {} requests, {} ops, {} errors\n",
        r.achieved_rate, r.requests, r.ops, r.errors
    ));
    for (heading, counts) in [("errors", &r.errors_by_label), ("counters", &r.counters)] {
        if !counts.is_empty() {
            let items: Vec<String> = counts
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            out.push_str(&format!("{heading}: {}\n", items.join(", ")));
        }
    }
    if r.offered_rate.is_some() && r.max_queue_wait_us >= 10_000 {
        out.push_str(&format!(
            "note: requests waited up to {} ms for a free connection; latencies include it \
             (more --connections would separate client queueing from the system's latency)\n",
            ms(r.max_queue_wait_us)
        ));
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header([
            "latency (ms)",
            "requests",
            "p50",
            "p90",
            "p99",
            "p99.9",
            "max",
            "mean",
        ]);
    t.add_row(latency_row("all", &r.latency_us));
    if r.latency_by_kind_us.len() > 1 {
        for (kind, s) in &r.latency_by_kind_us {
            t.add_row(latency_row(kind, s));
        }
    }
    for column in t.column_iter_mut().skip(1) {
        column.set_cell_alignment(CellAlignment::Right);
    }
    out.push_str(&t.to_string());
    out
}

/// The report as one line of JSON (see docs/cli.md).
pub fn json(r: &Report) -> String {
    // A `Report` is plain data (strings, numbers, maps with string keys): it always serializes.
    serde_json::to_string(r).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}

/// The progress line: elapsed time, phase, the last second's rate, errors and p99.
pub fn progress_line(p: &Progress) -> String {
    let phase = if p.warmup { "warm-up" } else { "measure" };
    let p99 = p.p99.map_or_else(
        || "-".to_owned(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    );
    format!(
        "bench {:>4}s {phase}: {:.0} ops/s, {} errors, p99 {p99}",
        p.elapsed.as_secs(),
        rate(p.ops, p.interval),
        p.errors
    )
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::bench::Workload;

    fn report() -> Report {
        let lat = LatencySummary {
            count: 10,
            min: 900,
            mean: 2_500.0,
            p50: 2_000,
            p90: 3_000,
            p99: 4_000,
            p999: 5_000,
            max: 6_000,
        };
        Report {
            mode: "open",
            workload: Workload::game(10, 1.0),
            connections: 4,
            batch: 1,
            warmup_s: 0.0,
            duration_s: 1.0,
            elapsed_s: 1.001,
            offered_rate: Some(10.0),
            achieved_rate: 9.99,
            requests: 10,
            ops: 10,
            ok_ops: 10,
            errors: 1,
            errors_by_label: BTreeMap::from([("http-503-no_quorum".to_owned(), 1)]),
            latency_us: lat,
            latency_by_kind_us: BTreeMap::from([
                ("update".to_owned(), lat),
                ("late_read".to_owned(), lat),
            ]),
            max_queue_wait_us: 0,
            counters: BTreeMap::from([("http_requests".to_owned(), 10)]),
            samples: Vec::new(),
        }
    }

    #[test]
    fn people_see_rates_errors_and_a_latency_table_in_ms() {
        let text = human(&report());
        for part in [
            "offered 10.0, achieved 10.0",
            "http-503-no_quorum 1",
            "http_requests 10",
            "p99.9",
            "4.00",
            "late_read",
        ] {
            assert!(text.contains(part), "{part} missing from:\n{text}");
        }
    }

    #[test]
    fn json_has_the_documented_fields_and_no_samples() {
        let v: serde_json::Value = serde_json::from_str(&json(&report())).expect("JSON");
        // Every field of `Report` but `samples` (tests/cli_bench.rs checks each by name).
        assert!(v.get("samples").is_none());
        assert_eq!(v["latency_us"]["p999"], 5_000);
        assert_eq!(v["workload"]["shape"], "game");
        assert_eq!(v["workload"]["late_age_ms"], 1_000.0);
        assert_eq!(v.as_object().map(|o| o.len()), Some(18));
    }

    #[test]
    fn the_progress_line() {
        let line = progress_line(&Progress {
            elapsed: Duration::from_secs(3),
            warmup: false,
            requests: 500,
            ops: 1_000,
            errors: 2,
            p99: Some(Duration::from_micros(4_200)),
            interval: Duration::from_secs(1),
        });
        assert_eq!(
            line,
            "bench    3s measure: 1000 ops/s, 2 errors, p99 4.20 ms"
        );
    }
}
