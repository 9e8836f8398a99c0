//! The results as a markdown table, and issue 15's goal ratios computed from them. Pure.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::plan::{ShapeKind, System, UpdateMode};
use crate::resources::Usage;

/// One measured run of one system.
#[derive(Debug, Clone)]
pub struct Row {
    pub system: System,
    pub shape: ShapeKind,
    /// kvs-raft's update mode for game shapes (`None` for other systems and shapes).
    pub mode: Option<UpdateMode>,
    /// Clients (closed) or connections (open).
    pub clients: usize,
    pub batch: usize,
    pub offered: Option<f64>,
    /// Acknowledged ops per second.
    pub throughput: f64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub requests: u64,
    pub errors: u64,
    pub errors_by_label: BTreeMap<String, u64>,
    pub counters: BTreeMap<String, u64>,
    pub usage: Usage,
}

impl Row {
    fn label(&self) -> String {
        let mut s = self.shape.name().to_owned();
        if let Some(rate) = self.offered {
            let _ = write!(s, " @ {rate:.0}/s");
        }
        match self.mode {
            Some(UpdateMode::Txn) => s.push_str(" (`/v1/txn`)"),
            Some(UpdateMode::TwoRequests) => s.push_str(" (2 requests)"),
            None => {}
        }
        s
    }
}

/// What the table's header says about the run.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub command: String,
    pub date: String,
    pub machine: String,
    /// Each program's version line and a note (may be empty).
    pub versions: Vec<(String, String)>,
}

fn ms(us: u64) -> String {
    // Microsecond latencies are far below 2^53: exact.
    let v = us as f64 / 1000.0;
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / (1024.0 * 1024.0))
}

/// The whole markdown section: header, table, goals, notes.
pub fn markdown(ctx: &Context, rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "Command: `{}`  ", ctx.command);
    let _ = writeln!(out, "Date: {}  ", ctx.date);
    let _ = writeln!(out, "Machine: {}  ", ctx.machine);
    let versions: Vec<String> = ctx
        .versions
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let _ = writeln!(out, "Versions: {}\n", versions.join(" · "));
    out.push_str(
        "| system | shape | clients | ops/s | p50 ms | p99 ms | p999 ms | max ms | errors | peak RSS MiB | CPU s |\n\
         | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for r in rows {
        let errors = if r.errors == 0 {
            "0".to_owned()
        } else {
            let by: Vec<String> = r
                .errors_by_label
                .iter()
                .map(|(l, n)| format!("{l} {n}"))
                .collect();
            format!("{} ({})", r.errors, by.join(", "))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.0} | {} | {} | {} | {} | {} | {} | {:.1} |",
            r.system.name(),
            r.label(),
            r.clients,
            r.throughput,
            ms(r.p50_us),
            ms(r.p99_us),
            ms(r.p999_us),
            ms(r.max_us),
            errors,
            mib(r.usage.peak_rss_bytes),
            r.usage.cpu_seconds,
        );
    }
    out.push_str("\nGoals (issue 15), from this run:\n\n| goal | measured | target | met |\n| --- | ---: | ---: | --- |\n");
    for g in goals(rows) {
        let (measured, met) = match g.measured {
            Some(v) => (format!("{v:.2}×"), if g.met(v) { "yes" } else { "**no**" }),
            None => ("–".to_owned(), "not measured"),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} {:.1}× | {} |",
            g.name,
            measured,
            if g.at_least { "≥" } else { "≤" },
            g.target,
            met
        );
    }
    let retries: u64 = rows
        .iter()
        .filter(|r| r.system == System::Etcd)
        .filter_map(|r| r.counters.get("cas_retries"))
        .sum();
    let _ = writeln!(
        out,
        "\netcd compare-and-put retries over all runs: {retries}. Peak RSS is the sum over a system's \
         processes; CPU s is their user + system time over the run (from /proc, sampled every second)."
    );
    out
}

/// One goal ratio.
#[derive(Debug, Clone, PartialEq)]
pub struct Goal {
    pub name: &'static str,
    pub measured: Option<f64>,
    pub target: f64,
    /// `measured ≥ target` is the goal (else `≤`).
    pub at_least: bool,
}

impl Goal {
    pub fn met(&self, v: f64) -> bool {
        if self.at_least {
            v >= self.target
        } else {
            v <= self.target
        }
    }
}

fn find(rows: &[Row], system: System, shape: ShapeKind, mode: Option<UpdateMode>) -> Option<&Row> {
    rows.iter()
        .find(|r| r.system == system && r.shape == shape && (mode.is_none() || r.mode == mode))
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

fn tput(rows: &[Row], system: System, shape: ShapeKind, mode: Option<UpdateMode>) -> Option<f64> {
    find(rows, system, shape, mode).map(|r| r.throughput)
}

/// The target of a goal ratio.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
}
use Target::{AtLeast, AtMost};

fn goal(name: &'static str, measured: Option<f64>, target: Target) -> Goal {
    let (target, at_least) = match target {
        AtLeast(t) => (t, true),
        AtMost(t) => (t, false),
    };
    Goal {
        name,
        measured,
        target,
        at_least,
    }
}

/// Issue 15's goal ratios that the comparison measures (the chaos and memory goals have their own runs).
pub fn goals(rows: &[Row]) -> Vec<Goal> {
    use ShapeKind::*;
    use System::*;
    let txn = Some(UpdateMode::Txn);
    let two = Some(UpdateMode::TwoRequests);
    let p99 = |s| find(rows, s, OpenCommon, None).map(|r| r.p99_us as f64);
    vec![
        goal(
            "single puts, 50 clients: kvs-raft / etcd throughput",
            ratio(tput(rows, Kvs, Put50, None), tput(rows, Etcd, Put50, None)),
            AtLeast(2.0),
        ),
        goal(
            "single puts at the common open-loop load: kvs-raft / etcd p99",
            ratio(p99(Kvs), p99(Etcd)),
            AtMost(0.5),
        ),
        goal(
            "game update (`/v1/txn`): kvs-raft / etcd throughput",
            ratio(tput(rows, Kvs, Game50, txn), tput(rows, Etcd, Game50, None)),
            AtLeast(10.0),
        ),
        goal(
            "game update (`/v1/txn`): kvs-raft / Redis always throughput",
            ratio(
                tput(rows, Kvs, Game50, txn),
                tput(rows, RedisAlways, Game50, None),
            ),
            AtLeast(0.5),
        ),
        goal(
            "game update (2 requests): kvs-raft / etcd throughput",
            ratio(tput(rows, Kvs, Game50, two), tput(rows, Etcd, Game50, None)),
            AtLeast(10.0),
        ),
        goal(
            "game update (2 requests): kvs-raft / Redis always throughput",
            ratio(
                tput(rows, Kvs, Game50, two),
                tput(rows, RedisAlways, Game50, None),
            ),
            AtLeast(0.5),
        ),
        goal(
            "batches of 100: kvs-raft / Redis always non-pipelined (game update, 50 clients)",
            ratio(
                tput(rows, Kvs, Batch100, None),
                tput(rows, RedisAlways, Game50, None),
            ),
            AtLeast(1.0),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(
        system: System,
        shape: ShapeKind,
        mode: Option<UpdateMode>,
        throughput: f64,
        p99_us: u64,
    ) -> Row {
        Row {
            system,
            shape,
            mode,
            clients: 50,
            batch: 1,
            offered: None,
            throughput,
            p50_us: p99_us / 2,
            p99_us,
            p999_us: p99_us * 2,
            max_us: p99_us * 3,
            requests: 100,
            errors: 0,
            errors_by_label: BTreeMap::new(),
            counters: BTreeMap::new(),
            usage: Usage::default(),
        }
    }

    #[test]
    fn goal_ratios_come_from_the_matching_rows() {
        use ShapeKind::*;
        use System::*;
        let rows = vec![
            row(Kvs, Put50, None, 3000.0, 5_000),
            row(Etcd, Put50, None, 1000.0, 9_000),
            row(Kvs, OpenCommon, None, 500.0, 4_000),
            row(Etcd, OpenCommon, None, 500.0, 10_000),
            row(Kvs, Game50, Some(UpdateMode::Txn), 2000.0, 5_000),
            row(Kvs, Game50, Some(UpdateMode::TwoRequests), 900.0, 5_000),
            row(Etcd, Game50, None, 250.0, 9_000),
            row(RedisAlways, Game50, None, 5000.0, 1_000),
        ];
        let g = goals(&rows);
        assert_eq!(g[0].measured, Some(3.0));
        assert!(g[0].met(3.0));
        assert_eq!(g[1].measured, Some(0.4));
        assert!(g[1].met(0.4));
        assert_eq!(g[2].measured, Some(8.0));
        assert!(!g[2].met(8.0));
        assert_eq!(g[3].measured, Some(0.4));
        assert_eq!(g[4].measured, Some(3.6));
        assert_eq!(g[6].measured, None, "no batch row");
        let md = markdown(&Context::default(), &rows);
        assert!(
            md.contains(
                "| kvs-raft ×3 | game update, 50 clients (`/v1/txn`) | 50 | 2000 | 2.50 | 5.00 |"
            ),
            "{md}"
        );
        assert!(md.contains("| 8.00× | ≥ 10.0× | **no** |"), "{md}");
        assert!(md.contains("| – | ≥ 1.0× | not measured |"), "{md}");
    }
}
