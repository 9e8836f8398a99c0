//! Helpers of the integration tests: a cluster of `kvs-raft serve` processes ([`proc`]), the binary run as
//! a client ([`cli`]), an in-process
//! site of replicas ([`replicas`]), a small HTTP client ([`http`]), a concurrent client load that records
//! its history for the linearizability checker ([`load`]), a systemd notify socket ([`notify`]), and the cluster-level waits and checks below.
//!
//! Waits poll a condition under a deadline; nothing sleeps to wait for something to happen.

#![allow(dead_code)]

pub mod cli;
pub mod disk;
pub mod http;
pub mod load;
pub mod notify;
pub mod proc;
pub mod replicas;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;

use self::http::{encode_query, Http};
use self::proc::Cluster;

/// One member as a node's `GET /v1/cluster` shows it.
#[derive(Debug, Clone)]
pub struct MemberView {
    pub id: u64,
    pub role: String,
    pub commit: u64,
    pub applied: u64,
}

/// A node's `GET /v1/cluster`.
#[derive(Debug, Clone)]
pub struct View {
    pub leader: Option<u64>,
    pub term: u64,
    pub members: Vec<MemberView>,
}

impl View {
    pub fn member(&self, id: u64) -> Option<&MemberView> {
        self.members.iter().find(|m| m.id == id)
    }
}

/// Poll `check` until it holds, for at most `within`.
pub async fn wait_for(what: &str, within: Duration, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn view(http: &Http, addr: SocketAddr) -> Result<View, String> {
    let r = http
        .get(addr, "/v1/cluster")
        .await
        .map_err(|e| e.to_string())?;
    if r.status != 200 {
        return Err(format!("GET /v1/cluster: {r}"));
    }
    let v = r.json();
    let members = v["members"]
        .as_array()
        .ok_or_else(|| format!("no members in {v}"))?
        .iter()
        .map(|m| MemberView {
            id: m["id"].as_u64().unwrap_or(0),
            role: m["role"].as_str().unwrap_or("").to_owned(),
            commit: m["commit"].as_u64().unwrap_or(0),
            applied: m["applied"].as_u64().unwrap_or(0),
        })
        .collect();
    Ok(View {
        leader: v["leader"].as_u64(),
        term: v["term"]
            .as_u64()
            .ok_or_else(|| format!("no term in {v}"))?,
        members,
    })
}

/// The leader (and its term) that every node in `among` agrees on, the leader being one of them and
/// calling itself leader; waits up to `within`.
pub async fn await_leader(
    cluster: &Cluster,
    http: &Http,
    among: &[u64],
    within: Duration,
) -> (u64, u64) {
    let deadline = Instant::now() + within;
    let mut last = Vec::new();
    loop {
        last.clear();
        for &id in among {
            last.push((id, view(http, cluster.addr(id)).await));
        }
        let agreed = last
            .first()
            .and_then(|(_, v)| v.as_ref().ok())
            .and_then(|v0| {
                let leader = v0.leader?;
                let all_agree = last.iter().all(|(_, v)| {
                    v.as_ref()
                        .is_ok_and(|v| v.leader == Some(leader) && v.term == v0.term)
                });
                let leader_says_so = last.iter().any(|(id, v)| {
                    *id == leader
                        && v.as_ref()
                            .is_ok_and(|v| v.member(leader).is_some_and(|m| m.role == "leader"))
                });
                (all_agree && leader_says_so).then_some((leader, v0.term))
            });
        if let Some(found) = agreed {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "[{}] nodes {among:?} agree on no leader among them after {within:?}; last views: {last:?}",
            cluster.name
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until node `id` has applied at least `index` (its own entry in its `/v1/cluster`).
pub async fn await_applied(
    cluster: &Cluster,
    http: &Http,
    id: u64,
    index: u64,
    within: Duration,
) -> u64 {
    let deadline = Instant::now() + within;
    loop {
        let v = view(http, cluster.addr(id)).await;
        if let Ok(applied) = v
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|v| v.member(id).map(|m| m.applied).ok_or_else(String::new))
        {
            if applied >= index {
                return applied;
            }
        }
        assert!(
            Instant::now() < deadline,
            "[{}] node {id} has not applied index {index} after {within:?}; its view: {v:?}",
            cluster.name
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every key → value of the store, by a paged prefix scan (`consistency` = `linearizable` or `stale`).
pub async fn scan_all(
    http: &Http,
    addr: SocketAddr,
    consistency: &str,
) -> Result<BTreeMap<String, String>, String> {
    scan_all_with(http, addr, &format!("consistency={consistency}")).await
}

/// As [`scan_all`], with `query` (e.g. `at=TS`, `consistency=stale`) added to every page's request.
pub async fn scan_all_with(
    http: &Http,
    addr: SocketAddr,
    query: &str,
) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    let mut start: Option<String> = None;
    loop {
        let path = match &start {
            None => format!("/v1/kv?prefix=&limit=5000&{query}"),
            Some(s) => format!(
                "/v1/kv?start={}&limit=5000&{query}",
                encode_query(format!("{s}\0").as_bytes())
            ),
        };
        let r = http.get(addr, &path).await.map_err(|e| e.to_string())?;
        if r.status != 200 {
            return Err(format!("GET {path} on {addr}: {r}"));
        }
        let v = r.json();
        let items = v["items"]
            .as_array()
            .ok_or_else(|| format!("no items in scan answer {v}"))?;
        for item in items {
            let (Some(k), Some(val)) = (item["key"].as_str(), item["value"].as_str()) else {
                return Err(format!("scan item without a UTF-8 key and value: {item}"));
            };
            out.insert(k.to_owned(), val.to_owned());
        }
        match (v["more"].as_bool(), out.keys().next_back()) {
            (Some(true), Some(last)) => start = Some(last.clone()),
            _ => return Ok(out),
        }
    }
}

/// Differences between two key → value maps, at most `limit` of them, for failure messages.
pub fn diff(
    expected: &BTreeMap<String, String>,
    got: &BTreeMap<String, String>,
    limit: usize,
) -> Vec<String> {
    let mut out = Vec::new();
    for (k, v) in expected {
        match got.get(k) {
            None => out.push(format!("{k:?}: expected {v:?}, absent")),
            Some(g) if g != v => out.push(format!("{k:?}: expected {v:?}, got {g:?}")),
            _ => {}
        }
    }
    for (k, g) in got {
        if !expected.contains_key(k) {
            out.push(format!("{k:?}: expected absent, got {g:?}"));
        }
    }
    out.truncate(limit);
    out
}

/// `GET /v1/kv/{key}` with the given query; `Ok(None)` on 404 `key_not_found`.
pub async fn get_value(
    http: &Http,
    addr: SocketAddr,
    key: &str,
    query: &str,
) -> Result<Option<String>, String> {
    let path = format!("/v1/kv/{key}{query}");
    let r = http.get(addr, &path).await.map_err(|e| e.to_string())?;
    match r.status {
        200 => Ok(Some(r.text())),
        404 if r.error_code().as_deref() == Some("key_not_found") => Ok(None),
        _ => Err(format!("GET {path} on {addr}: {r}")),
    }
}

pub fn json_u64(v: &Value, field: &str) -> u64 {
    v[field]
        .as_u64()
        .unwrap_or_else(|| panic!("no u64 {field:?} in {v}"))
}

/// Seconds with millisecond precision, for reports.
pub fn secs(us: u64) -> String {
    format!("{:.3} s", us as f64 / 1e6)
}

/// Wait until every node in `ids` holds every acknowledged write of `acked` (key → value), read with a
/// stale scan of its own state; panics after `within` with what is missing where.
pub async fn await_writes_everywhere(
    cluster: &Cluster,
    http: &Http,
    ids: &[u64],
    acked: &BTreeMap<String, String>,
    within: Duration,
) {
    let deadline = Instant::now() + within;
    for &id in ids {
        loop {
            let missing: Vec<String> = match scan_all(http, cluster.addr(id), "stale").await {
                Ok(got) => acked
                    .iter()
                    .filter(|(k, v)| got.get(*k) != Some(*v))
                    .map(|(k, v)| format!("{k}={v} (has {:?})", got.get(k)))
                    .take(5)
                    .collect(),
                Err(e) => vec![e],
            };
            if missing.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "[{}] node {id} lacks acknowledged writes after {within:?}: {missing:?}",
                cluster.name
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
