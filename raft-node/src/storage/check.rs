//! The offline check of a stopped node's log store (`kvs-raft check`), and the seed of a restored one
//! (`kvs-raft snapshot restore`).
//!
//! [`check_log`] never refuses early the way [`LogStore::open`] does: it reads the whole store once —
//! every block with its checksum verified (RocksDB's per-block CRC is the log's only checksum: an entry
//! carries none of its own) — and reports each invariant as its own [`Finding`], so a truncated tail, a
//! hole or a foreign store is named instead of stopping the check.
//!
//! [`LogStore::seed`] writes, in one synced batch into an empty store, the state a node of a *new*
//! cluster has right after installing a snapshot at the image's applied index: what `Group::start`
//! then opens as an existing log (see the function's contract).

use std::collections::BTreeMap;
use std::path::Path;

use raft::prelude::{ConfState, HardState, SnapshotMetadata};

use super::codec::{
    decode_boundary, decode_cluster_id, decode_entry, decode_message, decode_node_id, is_entry_key,
    CLUSTER_ID_KEY, CONF_STATE_KEY, ENTRIES_END, HARD_STATE_KEY, MEMBERSHIP_KEY, NODE_ID_KEY,
    SNAPSHOT_KEY, TRUNCATED_KEY,
};
use super::db::{Batch, Db, LogMemory};
use super::log_state::{plan_persist, LogState};
use super::{encode_plan, LogStore, LogWrite};
use crate::error::Error;
use crate::membership::{check_id, Membership};

/// The term of the Raft snapshot a seeded log starts from: the new cluster's first term.
pub const SEED_TERM: u64 = 1;

/// One invariant of the log store and whether it holds (`problem: None`), with what was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// A stable name (`log_readable`, `entries_decode`, ...).
    pub check: &'static str,
    /// What was seen, for the report.
    pub detail: String,
    /// Why the invariant does not hold; `None` when it does.
    pub problem: Option<String>,
}

/// What [`check_log`] found: the facts of the store (as far as they could be read) and one
/// [`Finding`] per invariant.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogReport {
    pub cluster_id: Option<String>,
    pub node_id: Option<u64>,
    /// One past the truncation boundary: the first entry the store should hold.
    pub first_index: u64,
    /// The last entry's index (the boundary's when the log is empty).
    pub last_index: u64,
    pub entries: u64,
    pub hard_state: HardState,
    pub conf_state: ConfState,
    pub membership: Option<Membership>,
    /// The last Raft snapshot the store applied (index, term); (0, 0) if none.
    pub snapshot: (u64, u64),
    pub findings: Vec<Finding>,
}

impl LogReport {
    /// Every invariant holds.
    pub fn ok(&self) -> bool {
        self.findings.iter().all(|f| f.problem.is_none())
    }

    fn found(&mut self, check: &'static str, detail: String, problem: Option<String>) {
        self.findings.push(Finding {
            check,
            detail,
            problem,
        });
    }
}

/// Read a stopped node's whole log store at `dir` and check it: the store opens; every block reads
/// with a valid checksum; every metadata value and entry decodes (an entry under its own index); the
/// entries are exactly `first_index..=last_index` with no hole, their terms never decreasing and none
/// below the truncation boundary's; `last_index ≥ commit`; the cluster id and node id are recorded;
/// the membership table decodes and names every voter. `Err` only when the store cannot be opened at
/// all (missing, locked by a running node, unreadable manifest); everything else is a finding.
pub fn check_log(dir: &Path) -> Result<LogReport, Error> {
    let db = Db::open_existing(dir)?;
    let mut report = LogReport::default();
    let mut meta = Meta::default();
    let mut walk = Walk::default();
    let read = db.scan_verified(|key, value| {
        if is_entry_key(key) {
            walk.entry(key, value);
        } else {
            meta.record(key, value);
        }
        Ok(())
    });
    let read_whole = read.is_ok();
    report.found(
        "log_readable",
        "every block of the store read with its checksum verified".into(),
        read.err().map(|e| {
            format!("{e} (a block is corrupt or unreadable; restore this node from a backup or replace it)")
        }),
    );
    let boundary = meta.boundary.unwrap_or_default();
    meta.report(&mut report, read_whole);
    report.first_index = boundary.index.saturating_add(1);
    report.last_index = walk.last.map_or(boundary.index, |(i, _)| i);
    report.entries = walk.count;
    report.found(
        "entries_decode",
        format!("{} entries", walk.count),
        walk.undecodable.clone().map(|e| {
            format!("{e}; the log is corrupt: restore this node from a backup or replace it")
        }),
    );
    let contiguous = match walk.first {
        Some(first) if first != report.first_index => Some(format!(
            "the first entry is {first}, but the log should start at {} (after the truncation boundary)",
            report.first_index
        )),
        _ => walk.hole.map(|(after, next)| {
            format!("entries {}..{next} are missing (a hole after {after})", after + 1)
        }),
    };
    report.found(
        "entries_contiguous",
        format!("entries {}..={}", report.first_index, report.last_index),
        contiguous,
    );
    let terms = match walk.term_back {
        Some((index, term, before)) => Some(format!(
            "entry {index} has term {term}, below the {before} of the entry before it"
        )),
        None => walk.first_term.filter(|&t| t < boundary.term).map(|t| {
            format!(
                "the first entry's term {t} is below the truncation boundary's {}",
                boundary.term
            )
        }),
    };
    report.found(
        "terms_non_decreasing",
        format!("last term {}", walk.last.map_or(boundary.term, |(_, t)| t)),
        terms,
    );
    let commit = report.hard_state.commit;
    report.found(
        "commit_within_log",
        format!("last index {} ≥ commit {commit}", report.last_index),
        (report.last_index < commit).then(|| {
            format!(
                "the log ends at {} but entries up to {commit} were committed: its tail was lost. \
                 Do not start this node; wipe its data dir and add it back under a new id",
                report.last_index
            )
        }),
    );
    Ok(report)
}

/// The metadata values of the store as read (each decoded on its own).
#[derive(Default)]
struct Meta {
    cluster_id: Option<Result<String, Error>>,
    node_id: Option<Result<u64, Error>>,
    hard_state: Option<Result<HardState, Error>>,
    conf_state: Option<Result<ConfState, Error>>,
    membership: Option<Result<Membership, Error>>,
    snapshot: Option<Result<SnapshotMetadata, Error>>,
    boundary: Option<super::log_state::Boundary>,
    boundary_error: Option<Error>,
    unknown: Vec<String>,
    /// Added to "not recorded" findings when the full read stopped early.
    unread: &'static str,
}

impl Meta {
    fn record(&mut self, key: &[u8], value: &[u8]) {
        match key {
            CLUSTER_ID_KEY => self.cluster_id = Some(decode_cluster_id(value)),
            NODE_ID_KEY => self.node_id = Some(decode_node_id(value)),
            HARD_STATE_KEY => self.hard_state = Some(decode_message(key, value)),
            CONF_STATE_KEY => self.conf_state = Some(decode_message(key, value)),
            SNAPSHOT_KEY => self.snapshot = Some(decode_message(key, value)),
            MEMBERSHIP_KEY => self.membership = Some(Membership::decode(value)),
            TRUNCATED_KEY => match decode_boundary(value) {
                Ok(b) => self.boundary = Some(b),
                Err(e) => self.boundary_error = Some(e),
            },
            _ => self
                .unknown
                .push(String::from_utf8_lossy(key).escape_debug().to_string()),
        }
    }

    /// Turn what was read into the report's facts and its metadata findings.
    /// `read_whole`: the full read reached the end (else a value not found may lie past where it
    /// stopped, and its finding says so).
    fn report(mut self, report: &mut LogReport, read_whole: bool) {
        if !read_whole {
            self.unread =
                " (or past the unreadable block where the read stopped: see log_readable)";
        }
        let (detail, problem) = recorded(
            self.cluster_id,
            |id| format!("cluster {id:?}"),
            "no cluster id is recorded (this is not a kvs-raft log store)",
            self.unread,
        );
        report.cluster_id = detail.as_ref().map(|(id, _)| id.clone());
        report.found(
            "cluster_id_recorded",
            detail.map(|d| d.1).unwrap_or_default(),
            problem,
        );
        let (detail, problem) = recorded(
            self.node_id,
            |id| format!("node {id}"),
            "no node id is recorded (the node never started on this data dir)",
            self.unread,
        );
        report.node_id = detail.as_ref().map(|(id, _)| *id);
        report.found(
            "node_id_recorded",
            detail.map(|d| d.1).unwrap_or_default(),
            problem,
        );
        let mut problems = Vec::new();
        match self.hard_state.transpose() {
            Ok(hs) => report.hard_state = hs.unwrap_or_default(),
            Err(e) => problems.push(e.to_string()),
        }
        match self.conf_state.transpose() {
            Ok(cs) => report.conf_state = cs.unwrap_or_default(),
            Err(e) => problems.push(e.to_string()),
        }
        match self.snapshot.transpose() {
            Ok(s) => report.snapshot = s.map_or((0, 0), |s| (s.index, s.term)),
            Err(e) => problems.push(e.to_string()),
        }
        if let Some(e) = self.boundary_error {
            problems.push(e.to_string());
        }
        if !self.unknown.is_empty() {
            problems.push(format!("unknown keys {:?}", self.unknown));
        }
        report.found(
            "metadata_decodes",
            format!(
                "hard state term {} vote {} commit {}; voters {:?}, learners {:?}",
                report.hard_state.term,
                report.hard_state.vote,
                report.hard_state.commit,
                report.conf_state.voters,
                report.conf_state.learners
            ),
            (!problems.is_empty()).then(|| problems.join("; ")),
        );
        let membership = match self.membership {
            Some(Ok(m)) => {
                let missing: Vec<u64> = report
                    .conf_state
                    .voters
                    .iter()
                    .chain(&report.conf_state.learners)
                    .copied()
                    .filter(|id| !m.members.contains_key(id))
                    .collect();
                let detail = format!(
                    "{} members, {} removed ids, as of index {}",
                    m.members.len(),
                    m.removed.len(),
                    m.conf_index
                );
                report.membership = Some(m);
                let problem = (!missing.is_empty())
                    .then(|| format!("members {missing:?} of the conf state have no entry"));
                (detail, problem)
            }
            Some(Err(e)) => (String::new(), Some(e.to_string())),
            None if report.conf_state.voters.is_empty() => (
                "no membership table (the node never started)".into(),
                Some(format!("no membership table and no voters{}", self.unread)),
            ),
            None => (
                String::new(),
                Some(format!(
                    "voters are recorded but no membership table{}",
                    self.unread
                )),
            ),
        };
        report.found("membership_decodes", membership.0, membership.1);
    }
}

/// An identity value as read: `Some((value, detail))` and no problem, or why it is missing or bad.
fn recorded<T>(
    read: Option<Result<T, Error>>,
    describe: impl Fn(&T) -> String,
    missing: &str,
    unread: &str,
) -> (Option<(T, String)>, Option<String>) {
    match read {
        Some(Ok(v)) => {
            let detail = describe(&v);
            (Some((v, detail)), None)
        }
        Some(Err(e)) => (None, Some(e.to_string())),
        None => (None, Some(format!("{missing}{unread}"))),
    }
}

/// The entries as the full read met them, in key order.
#[derive(Default)]
struct Walk {
    count: u64,
    first: Option<u64>,
    first_term: Option<u64>,
    last: Option<(u64, u64)>,
    /// The first hole: (the entry before it, the entry after it).
    hole: Option<(u64, u64)>,
    /// The first term that went back: (index, term, the term before it).
    term_back: Option<(u64, u64, u64)>,
    undecodable: Option<String>,
}

impl Walk {
    fn entry(&mut self, key: &[u8], value: &[u8]) {
        let entry = match decode_entry(key, value) {
            Ok(e) => e,
            Err(e) => {
                self.undecodable.get_or_insert_with(|| e.to_string());
                return;
            }
        };
        self.count += 1;
        if self.first.is_none() {
            self.first = Some(entry.index);
            self.first_term = Some(entry.term);
        }
        if let Some((index, term)) = self.last {
            if entry.index != index.saturating_add(1) && self.hole.is_none() {
                self.hole = Some((index, entry.index));
            }
            if entry.term < term && self.term_back.is_none() {
                self.term_back = Some((entry.index, entry.term, term));
            }
        }
        self.last = Some((entry.index, entry.term));
    }
}

impl LogStore {
    /// Seed an **empty** store at `dir` (created if missing) as node `node_id` of a new cluster
    /// `cluster_id` whose voters are `voters` (id → peer address), starting from a state-machine image
    /// whose applied index is `index` — the state a node of that cluster has right after installing a
    /// snapshot at `index`. One synced batch holds: the cluster id and node id; the truncation boundary
    /// and a Raft snapshot's metadata at `(index, SEED_TERM)` with the voters as conf state; the hard
    /// state `{term: SEED_TERM, vote: none, commit: index}`; the conf state; and the membership table
    /// (the voters' peer addresses, as of `index`). So: `first_index = index + 1 = applied + 1` (not
    /// behind), `commit = last_index = index`, and every node seeded from the same image with the same
    /// voters has the same log up to `index`: they elect a leader in term 2 and continue the log after
    /// `index`. With `index` 0 (an image of nothing) this is the ordinary bootstrap. Refuses a store
    /// that holds anything, and a `node_id` that is not among the voters; nothing is written then.
    pub fn seed(
        dir: &Path,
        cluster_id: &str,
        node_id: u64,
        index: u64,
        voters: &BTreeMap<u64, String>,
    ) -> Result<LogStore, Error> {
        check_id(node_id).map_err(|_| Error::Invalid("a node id must be 1..=i64::MAX"))?;
        if !voters.contains_key(&node_id) {
            return Err(Error::Invalid("the seeded node must be one of the voters"));
        }
        let db = Db::open(dir, LogMemory::default())?;
        if !db.is_empty()? {
            return Err(Error::Invalid(
                "the raft log store to seed is not empty (restore only into an empty data dir)",
            ));
        }
        let conf_state = ConfState::from((voters.keys().copied().collect::<Vec<u64>>(), vec![]));
        let mut membership = Membership::initial(voters.clone());
        membership.conf_index = index;
        let snapshot = (index > 0).then(|| {
            let mut meta = SnapshotMetadata {
                index,
                term: SEED_TERM,
                ..Default::default()
            };
            meta.set_conf_state(conf_state.clone());
            meta
        });
        let write = LogWrite {
            snapshot,
            conf_state: Some(conf_state),
            membership: Some(membership.encode()?),
            ..LogWrite::default()
        };
        let (plan, _) = plan_persist(&LogState::default(), &write)?;
        let mut batch: Batch = encode_plan(&plan);
        batch.put(CLUSTER_ID_KEY, cluster_id.as_bytes());
        batch.put(NODE_ID_KEY, &node_id.to_be_bytes());
        db.write_synced(batch)?;
        drop(db);
        let store = LogStore::open(dir, cluster_id)?;
        store.check_node_id(node_id)?;
        Ok(store)
    }
}

/// Seed the log of node `node_id` of a new cluster from a state-machine image at `applied_index`
/// (`kvs-raft snapshot restore`): [`LogStore::seed`] into `log_dir`, which must be empty or absent.
/// `Group::start` with the same cluster id and node id then opens it as an existing log.
pub fn bootstrap_from_image(
    log_dir: &Path,
    cluster_id: &str,
    node_id: u64,
    applied_index: u64,
    voters: &BTreeMap<u64, String>,
) -> Result<(), Error> {
    LogStore::seed(log_dir, cluster_id, node_id, applied_index, voters).map(drop)
}

/// Test support: drop the log's entries from `from` on in a stopped node's store, leaving everything
/// else (the hard state's commit included) as it was — a log whose tail was lost. Never used by the
/// product.
#[doc(hidden)]
pub fn drop_log_tail_for_tests(dir: &Path, from: u64) -> Result<(), Error> {
    let db = Db::open_existing(dir)?;
    let mut batch = Batch::default();
    batch.delete_range(&super::codec::entry_key(from), ENTRIES_END);
    db.write_synced(batch)
}
