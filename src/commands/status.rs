//! `status` and `members list`: the site's view from `GET /v1/cluster`, as a table or JSON.

use serde::Deserialize;
use serde_json::{json, Value};

use super::connect;
use super::output::{api_failure, print_json, table};
use crate::cli::StatusArgs;
use crate::client::{Client, Request};

/// `GET /v1/cluster` (SPEC §3's fixed shape).
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterView {
    pub cluster_id: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub members: Vec<Member>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Member {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: Option<String>,
    pub role: String,
    pub commit: u64,
    pub applied: u64,
    pub healthy: bool,
}

impl ClusterView {
    pub fn member(&self, id: u64) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    /// How far `m`'s applied index is behind the leader's commit index (`None`: no leader known).
    pub fn lag(&self, m: &Member) -> Option<u64> {
        let leader = self.member(self.leader?)?;
        Some(leader.commit.saturating_sub(m.applied))
    }

    /// The view as `status --json` prints it: the API's fields, and `lag` per member.
    pub fn to_json(&self) -> Value {
        let members: Vec<Value> = self
            .members
            .iter()
            .map(|m| {
                json!({
                    "id": m.id,
                    "peer_addr": m.peer_addr,
                    "client_addr": m.client_addr,
                    "role": m.role,
                    "commit": m.commit,
                    "applied": m.applied,
                    "lag": self.lag(m),
                    "healthy": m.healthy,
                })
            })
            .collect();
        json!({
            "cluster_id": self.cluster_id,
            "leader": self.leader,
            "term": self.term,
            "members": members,
        })
    }

    /// The status table: one row per member, the leader marked `*`.
    pub fn status_table(&self) -> String {
        let rows = self.members.iter().map(|m| {
            vec![
                if Some(m.id) == self.leader {
                    format!("{} *", m.id)
                } else {
                    m.id.to_string()
                },
                m.peer_addr.clone(),
                m.client_addr.clone().unwrap_or_else(|| "-".into()),
                m.role.clone(),
                self.term.to_string(),
                m.commit.to_string(),
                m.applied.to_string(),
                self.lag(m).map_or_else(|| "-".into(), |l| l.to_string()),
                if m.healthy { "healthy" } else { "UNHEALTHY" }.to_owned(),
            ]
        });
        table(
            &[
                "ID", "PEER", "CLIENT", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "HEALTH",
            ],
            rows,
        )
    }

    /// The heading above the table.
    pub fn summary(&self) -> String {
        format!(
            "cluster {}, term {}, leader {}",
            self.cluster_id,
            self.term,
            self.leader
                .map_or_else(|| "none known".into(), |l| l.to_string())
        )
    }
}

/// The cluster view from the first endpoint that answers.
pub async fn fetch(client: &Client) -> anyhow::Result<ClusterView> {
    let res = client.request(Request::get("/v1/cluster")).await?;
    if !res.status.is_success() {
        return Err(api_failure("reading the cluster view", &res));
    }
    Ok(res.json()?)
}

pub async fn status(a: StatusArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "status")?;
    let view = fetch(&client).await?;
    if a.client.json {
        print_json(&view.to_json());
    } else {
        println!("{}", view.summary());
        println!("{}", view.status_table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view() -> ClusterView {
        serde_json::from_value(json!({
            "cluster_id": "site-a", "leader": 2, "term": 7,
            "members": [
                {"id": 1, "peer_addr": "p1:7380", "client_addr": "c1:7379", "role": "follower",
                 "commit": 100, "applied": 90, "healthy": true},
                {"id": 2, "peer_addr": "p2:7380", "client_addr": null, "role": "leader",
                 "commit": 120, "applied": 120, "healthy": true},
                {"id": 4, "peer_addr": "p4:7380", "client_addr": "c4:7379", "role": "learner",
                 "commit": 0, "applied": 0, "healthy": false}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn lag_is_behind_the_leaders_commit() {
        let v = view();
        let lags: Vec<_> = v.members.iter().map(|m| v.lag(m)).collect();
        assert_eq!(lags, [Some(30), Some(0), Some(120)]);
        let no_leader = ClusterView { leader: None, ..v };
        assert_eq!(no_leader.lag(&no_leader.members[0]), None);
    }

    #[test]
    fn the_table_marks_the_leader_and_health() {
        let v = view();
        let t = v.status_table();
        let row = |id: &str| {
            t.lines()
                .find(|l| l.split(['│', '┆']).nth(1).is_some_and(|c| c.trim() == id))
                .unwrap_or_else(|| panic!("no row {id} in\n{t}"))
                .to_owned()
        };
        assert!(row("2 *").contains("leader"), "{t}");
        assert!(
            row("1").contains("c1:7379") && row("1").contains("30"),
            "{t}"
        );
        assert!(row("4").contains("UNHEALTHY"), "{t}");
        assert_eq!(v.summary(), "cluster site-a, term 7, leader 2");
        let j = v.to_json();
        assert_eq!(j["members"][0]["lag"], 30);
        assert_eq!(j["members"][1]["client_addr"], Value::Null);
        assert_eq!(j["leader"], 2);
    }
}
