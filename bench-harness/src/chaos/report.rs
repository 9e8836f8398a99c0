//! The chaos run's report: a markdown summary for people and the same as JSON.

use std::collections::BTreeMap;

use kvs_raft::bench::Report;
use serde::Serialize;

use super::gap::Gap;
use super::nemesis::StopMode;
use super::verify::Verification;
use super::ChaosConfig;

/// Issue 15's goals for the chaos run.
pub const GOAL_POD_P99_MS: f64 = 12.0;
pub const GOAL_KILL_LEADER_GAP_MS: f64 = 600.0;

/// One stop of the nemesis.
#[derive(Debug, Clone, Serialize)]
pub struct StopRow {
    pub n: usize,
    pub node: u64,
    pub was_leader: bool,
    pub pid: Option<u32>,
    /// `graceful`, `killed-after-grace`, `sigkill` or `failed`.
    pub how: &'static str,
    /// The old pid was gone from `/proc` after the stop.
    pub pid_gone: bool,
    /// When the signal was sent, seconds since the load started.
    pub at_s: f64,
    /// From the signal to the process's exit.
    pub exit_ms: f64,
    pub restarted_at_s: Option<f64>,
    /// From the restart to `/readyz` 200.
    pub ready_ms: Option<f64>,
    pub new_pid: Option<u32>,
    /// The longest write gap ending between this stop and the next.
    pub longest_gap: Option<Gap>,
    /// Errors of the requests intended between this stop and the next, by label.
    pub errors: BTreeMap<String, u64>,
    pub term_before: Option<u64>,
    /// The term at the next stop (or at the end).
    pub term_after: Option<u64>,
    /// A stop or restart that failed.
    pub error: Option<String>,
}

impl StopRow {
    pub fn gap_ms(&self) -> Option<f64> {
        self.longest_gap.map(|g| g.len().as_secs_f64() * 1e3)
    }

    /// Term changes in this stop's window (`None` when a term was not readable).
    pub fn term_changes(&self) -> Option<u64> {
        Some(self.term_after?.saturating_sub(self.term_before?))
    }
}

/// Term changes over the run: one per leader stop is expected (an election, or the leadership
/// transfer of a graceful stop); anything beyond, and any change before the first stop, is spurious.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct TermSummary {
    pub start: Option<u64>,
    pub end: Option<u64>,
    pub changes: Option<u64>,
    pub leader_stops: u64,
    pub spurious: Option<u64>,
}

impl TermSummary {
    pub fn new(
        start: Option<u64>,
        before_first_stop: Option<u64>,
        end: Option<u64>,
        rows: &[StopRow],
    ) -> TermSummary {
        let leader_stops = rows.iter().filter(|r| r.was_leader).count() as u64;
        let quiet = before_first_stop
            .zip(start)
            .map(|(b, s)| b.saturating_sub(s));
        let per_stop: Option<u64> = rows
            .iter()
            .map(|r| {
                r.term_changes()
                    .map(|c| c.saturating_sub(u64::from(r.was_leader)))
            })
            .sum();
        TermSummary {
            start,
            end,
            changes: end.zip(start).map(|(e, s)| e.saturating_sub(s)),
            leader_stops,
            spurious: quiet.zip(per_stop).map(|(q, p)| q + p),
        }
    }
}

/// Latency over every request of the run, milliseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

/// What `chaos` measured (the `--json` output).
#[derive(Debug, Clone, Serialize)]
pub struct ChaosReport {
    pub command: String,
    pub binary: String,
    /// `pod` or `kill`.
    pub mode: &'static str,
    /// The pod-style grace period (`null` for `kill`).
    pub grace_s: Option<f64>,
    pub duration_s: f64,
    pub offered_rate: f64,
    pub achieved_rate: f64,
    pub players: u64,
    pub stop_every_s: f64,
    pub down_s: f64,
    pub requests: u64,
    pub errors: u64,
    pub errors_by_label: BTreeMap<String, u64>,
    pub latency_ms: LatencyMs,
    /// The longest write gap of the whole run.
    pub longest_gap: Option<Gap>,
    pub stops: Vec<StopRow>,
    pub terms: TermSummary,
    pub verification: Verification,
}

fn ms(us: u64) -> f64 {
    us as f64 / 1e3
}

impl ChaosReport {
    pub fn new(
        cfg: &ChaosConfig,
        r: &Report,
        longest_gap: Option<Gap>,
        stops: Vec<StopRow>,
        terms: TermSummary,
        verification: Verification,
    ) -> ChaosReport {
        ChaosReport {
            command: cfg.command.clone(),
            binary: cfg.kvs_raft.display().to_string(),
            mode: cfg.mode.name(),
            grace_s: match cfg.mode {
                StopMode::Pod { grace } => Some(grace.as_secs_f64()),
                StopMode::Kill => None,
            },
            duration_s: cfg.duration.as_secs_f64(),
            offered_rate: cfg.rate,
            achieved_rate: r.achieved_rate,
            players: cfg.players,
            stop_every_s: cfg.stop_every.as_secs_f64(),
            down_s: cfg.down.as_secs_f64(),
            requests: r.requests,
            errors: r.errors,
            errors_by_label: r.errors_by_label.clone(),
            latency_ms: LatencyMs {
                p50: ms(r.latency_us.p50),
                p99: ms(r.latency_us.p99),
                p999: ms(r.latency_us.p999),
                max: ms(r.latency_us.max),
            },
            longest_gap,
            stops,
            terms,
            verification,
        }
    }

    /// Every acknowledged write present, and every stop really stopped and restarted its node.
    pub fn passed(&self) -> bool {
        self.verification.ok()
            && self
                .stops
                .iter()
                .all(|s| s.pid_gone && s.error.is_none() && s.new_pid.is_some())
    }

    /// The longest write gap after a leader stop, ms.
    pub fn leader_gap_ms(&self) -> Option<f64> {
        self.stops
            .iter()
            .filter(|s| s.was_leader)
            .filter_map(StopRow::gap_ms)
            .reduce(f64::max)
    }

    pub fn json(&self) -> String {
        // Plain data (strings, numbers, maps with string keys): it always serializes.
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The report as markdown: a summary, the stops table, the verification and the goals.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let grace = self.grace_s.map_or_else(String::new, |g| {
            format!(" (SIGTERM, SIGKILL after {g:.0} s)")
        });
        out.push_str(&format!(
            "### Chaos run: `{}` stops{grace}\n\n`{}`\n\nkvs-raft: `{}`; 3 nodes on loopback; game \
             updates as one `/v1/txn` each, 1 % checkpoints, {} players, open loop at {:.0}/s for \
             {:.0} s; one replica stopped every {:.0} s (alternately the leader and a follower) and \
             restarted {:.0} s after it exited.\n\n",
            self.mode,
            self.command,
            self.binary,
            self.players,
            self.offered_rate,
            self.duration_s,
            self.stop_every_s,
            self.down_s,
        ));
        let l = &self.latency_ms;
        out.push_str(&format!(
            "{} requests, achieved {:.1}/s, {} errors{}; latency from the intended send time: \
             p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms; longest write gap {}.\n\n",
            self.requests,
            self.achieved_rate,
            self.errors,
            labels(&self.errors_by_label, " (", ")"),
            l.p50,
            l.p99,
            l.p999,
            l.max,
            gap_text(self.longest_gap),
        ));
        out.push_str(
            "| stop | at (s) | node | leader | how | exit (ms) | pid gone | ready after restart (ms) \
             | longest write gap (ms) | terms | errors in window |\n\
             | ---: | ---: | ---: | --- | --- | ---: | --- | ---: | ---: | --- | --- |\n",
        );
        for s in &self.stops {
            let terms = match (s.term_before, s.term_after) {
                (Some(b), Some(a)) => format!("{b} → {a}"),
                _ => "-".to_owned(),
            };
            out.push_str(&format!(
                "| {} | {:.1} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |\n",
                s.n,
                s.at_s,
                s.node,
                if s.was_leader { "yes" } else { "no" },
                s.how,
                s.exit_ms,
                if s.pid_gone { "yes" } else { "**no**" },
                s.ready_ms
                    .map_or_else(|| "-".to_owned(), |r| format!("{r:.0}")),
                s.gap_ms()
                    .map_or_else(|| "-".to_owned(), |g| format!("{g:.0}")),
                terms,
                match &s.error {
                    Some(e) => format!("**{e}**"),
                    None => labels(&s.errors, "", ""),
                },
            ));
        }
        let t = &self.terms;
        let opt = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
        out.push_str(&format!(
            "\nTerms: {} → {} ({} changes, {} leader stops): **{} spurious elections**.\n\n",
            opt(t.start),
            opt(t.end),
            opt(t.changes),
            t.leader_stops,
            opt(t.spurious),
        ));
        let v = &self.verification;
        out.push_str(&format!(
            "Verification: {} players, {} acknowledged writes, {} failed writes (may or may not have \
             taken effect){}: ",
            v.players,
            v.acked_writes,
            v.failed_writes,
            labels(
                &v.failed_but_visible,
                "; failed but visible: ",
                ""
            ),
        ));
        if v.ok() {
            out.push_str("**every acknowledged write is present (0 lost)**.\n");
        } else {
            out.push_str(&format!(
                "**{} players with lost or unexplained writes** ({}):\n\n",
                v.anomalies.len(),
                v.by_kind()
                    .iter()
                    .map(|(k, n)| format!("{k} {n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            for a in v.anomalies.iter().take(10) {
                out.push_str(&format!(
                    "- player {}: {}: {}\n",
                    a.player,
                    a.kind.name(),
                    a.detail
                ));
            }
        }
        out.push_str("\nGoals (issue 15): ");
        match self.mode {
            "pod" => out.push_str(&format!(
                "p99 < {GOAL_POD_P99_MS} ms: {} ({:.2} ms); 0 lost: {}.\n",
                met(l.p99 < GOAL_POD_P99_MS),
                l.p99,
                met(v.ok())
            )),
            _ => out.push_str(&format!(
                "longest write gap after a leader kill ≤ {GOAL_KILL_LEADER_GAP_MS} ms: {}; p99 {:.2} ms; \
                 0 lost: {}.\n",
                self.leader_gap_ms().map_or_else(
                    || "no leader was stopped".to_owned(),
                    |g| format!("{} ({g:.0} ms)", met(g <= GOAL_KILL_LEADER_GAP_MS))
                ),
                l.p99,
                met(v.ok())
            )),
        }
        out
    }
}

fn met(yes: bool) -> &'static str {
    if yes {
        "met"
    } else {
        "**missed**"
    }
}

fn labels(counts: &BTreeMap<String, u64>, before: &str, after: &str) -> String {
    if counts.is_empty() {
        return if before.is_empty() {
            "-".to_owned()
        } else {
            String::new()
        };
    }
    let items: Vec<String> = counts.iter().map(|(k, n)| format!("{k} {n}")).collect();
    format!("{before}{}{after}", items.join(", "))
}

fn gap_text(g: Option<Gap>) -> String {
    match g {
        None => "-".to_owned(),
        Some(g) => format!(
            "{:.0} ms (from {:.3} s{})",
            g.len().as_secs_f64() * 1e3,
            g.from.as_secs_f64(),
            if g.open { ", never ended" } else { "" }
        ),
    }
}
