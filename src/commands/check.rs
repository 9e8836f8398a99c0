//! `kvs-raft check`: offline verification of a stopped node's data directory — the engine (`state/`,
//! [`engine::Engine::verify`]), the Raft log (`raft/`, [`raft_node::check_log`]) and how the two fit:
//! the state is not behind the log's first index, applied against commit, and the identity the log
//! records (optionally asserted with `--id` / `--cluster-id`). One line per check; exit 1 if any fails.

use crate::commands::output::outln;
use std::path::{Path, PathBuf};

use anyhow::bail;
use engine::{Engine, EngineConfig, VerifyReport};
use raft_node::LogReport;
use serde::Serialize;

use crate::backup::format::hex;
use crate::node::DataDir;

/// What to check, and the identity to assert.
#[derive(Debug, Clone)]
pub struct CheckRequest {
    pub data_dir: PathBuf,
    pub json: bool,
    /// The node id the data dir must belong to.
    pub id: Option<u64>,
    /// The cluster the data dir must belong to.
    pub cluster_id: Option<String>,
}

/// One check's outcome, as printed (the JSON field names are stable).
#[derive(Debug, Clone, Serialize)]
pub struct Line {
    pub name: &'static str,
    pub ok: bool,
    pub detail: String,
    /// Why it failed and what to do; absent when it passed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// The whole report; `--json` prints it as is.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub data_dir: String,
    pub node_id: Option<u64>,
    pub cluster_id: Option<String>,
    pub applied_index: Option<u64>,
    pub applied_ts: Option<u64>,
    pub first_index: Option<u64>,
    pub last_index: Option<u64>,
    pub commit: Option<u64>,
    pub term: Option<u64>,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub log_entries: Option<u64>,
    pub data_entries: Option<u64>,
    pub entities_with_epochs: Option<u64>,
    pub crossings: Option<u64>,
    pub gc_queue: Option<u64>,
    /// SHA-256 over every record of the state: equal on replicas holding the same applied state, and
    /// equal to the image hash `snapshot status` prints for the backup a restored node came from.
    pub content_sha256: Option<String>,
    pub checks: Vec<Line>,
}

pub fn run(req: &CheckRequest) -> anyhow::Result<()> {
    let report = check(req);
    if req.json {
        outln!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
    }
    let failed = report.checks.iter().filter(|c| !c.ok).count();
    if failed > 0 {
        bail!(
            "{failed} of {} checks failed on {}",
            report.checks.len(),
            req.data_dir.display()
        );
    }
    Ok(())
}

/// Run every check on the data dir; never stops at the first failure.
pub fn check(req: &CheckRequest) -> Report {
    let dir = DataDir::new(&req.data_dir);
    let mut lines = Vec::new();
    let state = check_state(&dir.state(), &mut lines);
    let log = check_raft(&dir.raft(), &mut lines);
    if let (Some(state), Some(log)) = (&state, &log) {
        cross_checks(state, log, &mut lines);
    }
    identity_checks(req, log.as_ref(), &mut lines);
    Report {
        ok: lines.iter().all(|l| l.ok),
        data_dir: req.data_dir.display().to_string(),
        node_id: log.as_ref().and_then(|l| l.node_id),
        cluster_id: log.as_ref().and_then(|l| l.cluster_id.clone()),
        applied_index: state.as_ref().map(|s| s.applied.index),
        applied_ts: state.as_ref().map(|s| s.applied.ts),
        first_index: log.as_ref().map(|l| l.first_index),
        last_index: log.as_ref().map(|l| l.last_index),
        commit: log.as_ref().map(|l| l.hard_state.commit),
        term: log.as_ref().map(|l| l.hard_state.term),
        voters: log
            .as_ref()
            .map(|l| l.conf_state.voters.clone())
            .unwrap_or_default(),
        learners: log
            .as_ref()
            .map(|l| l.conf_state.learners.clone())
            .unwrap_or_default(),
        log_entries: log.as_ref().map(|l| l.entries),
        data_entries: state.as_ref().map(|s| s.data_entries),
        entities_with_epochs: state.as_ref().map(|s| s.entities_with_epochs),
        crossings: state.as_ref().map(|s| s.crossings),
        gc_queue: state.as_ref().map(|s| s.gc_queue),
        content_sha256: state.as_ref().map(|s| hex(&s.content_sha256)),
        checks: lines,
    }
}

fn pass(lines: &mut Vec<Line>, name: &'static str, detail: String) {
    lines.push(Line {
        name,
        ok: true,
        detail,
        problem: None,
    });
}

fn fail(lines: &mut Vec<Line>, name: &'static str, detail: String, problem: String) {
    lines.push(Line {
        name,
        ok: false,
        detail,
        problem: Some(problem),
    });
}

/// `state/`: it exists, opens, and every record decodes with the engine's invariants holding (a full
/// read: every block's checksum is verified on the way).
fn check_state(state: &Path, lines: &mut Vec<Line>) -> Option<VerifyReport> {
    let db = state.join("db");
    if !db.is_dir() {
        fail(
            lines,
            "state_verifies",
            format!("{}", state.display()),
            format!(
                "no engine at {} (not a kvs-raft data dir, or the wrong path)",
                db.display()
            ),
        );
        return None;
    }
    let verified = Engine::open(state, EngineConfig::default())
        .map_err(|e| format!("open: {e}"))
        .and_then(|engine| engine.verify().map_err(|e| format!("verify: {e}")));
    match verified {
        Ok(report) => {
            pass(
                lines,
                "state_verifies",
                format!(
                    "applied index {} (ts {}), {} versions, {} entities with checkpoints, {} crossings",
                    report.applied.index,
                    report.applied.ts,
                    report.data_entries,
                    report.entities_with_epochs,
                    report.crossings
                ),
            );
            Some(report)
        }
        Err(why) => {
            fail(
                lines,
                "state_verifies",
                format!("{}", state.display()),
                format!(
                    "{why} — the engine's files are damaged: do not start this node; replace it (wipe \
                     the data dir, add it back under a new id) or restore the site from a backup"
                ),
            );
            None
        }
    }
}

/// `raft/`: raft-node's own checks, one line each.
fn check_raft(raft: &Path, lines: &mut Vec<Line>) -> Option<LogReport> {
    if !raft.is_dir() {
        fail(
            lines,
            "log_opens",
            format!("{}", raft.display()),
            "no raft log (the node never started on this data dir, or the wrong path)".into(),
        );
        return None;
    }
    match raft_node::check_log(raft) {
        Ok(report) => {
            pass(lines, "log_opens", format!("{}", raft.display()));
            for f in &report.findings {
                match &f.problem {
                    None => pass(lines, f.check, f.detail.clone()),
                    Some(problem) => fail(lines, f.check, f.detail.clone(), problem.clone()),
                }
            }
            Some(report)
        }
        Err(e) => {
            fail(
                lines,
                "log_opens",
                format!("{}", raft.display()),
                format!("{e} (is the node still running? stop it first)"),
            );
            None
        }
    }
}

/// How the state and the log fit together.
fn cross_checks(state: &VerifyReport, log: &LogReport, lines: &mut Vec<Line>) {
    let applied = state.applied.index;
    let detail = format!("applied {applied}, log starts at {}", log.first_index);
    if applied.saturating_add(1) < log.first_index {
        fail(
            lines,
            "state_not_behind_log",
            detail,
            format!(
                "entries {}..={} were compacted out of the log but never applied to this state (it \
                 was lost or restored from an older copy): the node refuses to start. Wipe the whole \
                 data dir and add the node back under a new id",
                applied + 1,
                log.first_index - 1
            ),
        );
    } else {
        pass(lines, "state_not_behind_log", detail);
    }
    let commit = log.hard_state.commit;
    let detail = if applied <= commit {
        format!("applied {applied} ≤ commit {commit}")
    } else {
        format!(
            "applied {applied} is ahead of the persisted commit {commit}: allowed (the commit index is \
             persisted lazily, and an installed image may be newer than its Raft snapshot); entries up \
             to {applied} are skipped when replayed"
        )
    };
    pass(lines, "applied_vs_commit", detail);
}

/// `--id` / `--cluster-id`: the data dir belongs to that node of that cluster.
fn identity_checks(req: &CheckRequest, log: Option<&LogReport>, lines: &mut Vec<Line>) {
    if let Some(id) = req.id {
        let found = log.and_then(|l| l.node_id);
        let detail = format!("expected node {id}");
        match found {
            Some(f) if f == id => pass(lines, "node_id_matches", format!("node {id}")),
            Some(f) => fail(
                lines,
                "node_id_matches",
                detail,
                format!("the data dir belongs to node {f}, not node {id}: start node {f} on it"),
            ),
            None => fail(
                lines,
                "node_id_matches",
                detail,
                "no node id is recorded".into(),
            ),
        }
    }
    if let Some(cluster) = &req.cluster_id {
        let found = log.and_then(|l| l.cluster_id.clone());
        let detail = format!("expected cluster {cluster:?}");
        match found {
            Some(f) if &f == cluster => {
                pass(lines, "cluster_id_matches", format!("cluster {cluster:?}"))
            }
            Some(f) => fail(
                lines,
                "cluster_id_matches",
                detail,
                format!("the data dir belongs to cluster {f:?}, not {cluster:?}"),
            ),
            None => fail(
                lines,
                "cluster_id_matches",
                detail,
                "no cluster id is recorded".into(),
            ),
        }
    }
}

fn print_human(r: &Report) {
    outln!("data dir        {}", r.data_dir);
    if let (Some(id), Some(cluster)) = (r.node_id, &r.cluster_id) {
        outln!("identity        node {id} of cluster {cluster:?}");
    }
    for line in &r.checks {
        let mark = if line.ok { "OK  " } else { "FAIL" };
        match &line.problem {
            None => outln!("{mark}  {:<22} {}", line.name, line.detail),
            Some(problem) => outln!("{mark}  {:<22} {}: {problem}", line.name, line.detail),
        }
    }
    if let Some(sha) = &r.content_sha256 {
        outln!("content sha256  {sha}");
    }
    outln!("{}", if r.ok { "OK" } else { "FAILED" });
}
