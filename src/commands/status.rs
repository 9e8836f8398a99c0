//! `status` and `members list`: the site's view from `GET /v1/cluster`, as a table or JSON.

use crate::commands::output::outln;
use serde::Deserialize;
use serde_json::{json, Value};

use super::connect;
use super::output::{api_failure, print_json, table};
use crate::cli::StatusArgs;
use crate::client::{Client, Endpoint, Request};

/// `GET /v1/cluster` (SPEC §3's fixed shape).
#[derive(Debug, Clone, Deserialize)]
pub struct ClusterView {
    pub cluster_id: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub members: Vec<Member>,
    /// Whether the leader answered: only it knows every member's progress and health (another node
    /// knows its own indexes only).
    #[serde(skip)]
    pub from_leader: bool,
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

    /// How far `m`'s applied index is behind the leader's commit index (`None`: unknown — no leader
    /// known, or the view is not the leader's).
    pub fn lag(&self, m: &Member) -> Option<u64> {
        if !self.from_leader {
            return None;
        }
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
            "view_from_leader": self.from_leader,
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
                match (m.healthy, self.from_leader) {
                    (true, _) => "healthy",
                    (false, true) => "UNHEALTHY",
                    (false, false) => "?",
                }
                .to_owned(),
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
        let mut s = format!(
            "cluster {}, term {}, leader {}",
            self.cluster_id,
            self.term,
            self.leader
                .map_or_else(|| "none known".into(), |l| l.to_string())
        );
        if !self.from_leader {
            s.push_str(
                " (the leader did not answer: this is another node's view, which knows only its own \
                 indexes; LAG and the others' health are unknown)",
            );
        }
        s
    }
}

/// One `GET /v1/cluster`: the view, and the endpoint that answered.
async fn view_at(
    client: &Client,
    endpoint: Option<&Endpoint>,
) -> anyhow::Result<(ClusterView, Endpoint)> {
    let req = Request::get("/v1/cluster");
    let res = match endpoint {
        Some(ep) => client.request_at(ep, req).await?,
        None => client.request(req).await?,
    };
    if !res.status.is_success() {
        return Err(api_failure("reading the cluster view", &res));
    }
    Ok((res.json()?, res.endpoint))
}

/// The cluster view, from the leader when it answers (asked at its client address, with the scheme
/// of the endpoint that named it), else from the first endpoint that answers.
pub async fn fetch(client: &Client) -> anyhow::Result<ClusterView> {
    let (mut view, answered) = view_at(client, None).await?;
    let leader_addr = view
        .leader
        .and_then(|l| view.member(l))
        .and_then(|m| m.client_addr.clone());
    match leader_addr {
        Some(addr) if addr == answered.authority => view.from_leader = true,
        Some(addr) => {
            let leader = Endpoint {
                scheme: answered.scheme,
                authority: addr,
            };
            // At most half of what remains of the deadline: a leader this machine cannot reach (a
            // container-internal address) still leaves time for the view in hand.
            let asked = view_at(client, Some(&leader));
            let answer = match client.deadline() {
                Some(d) => {
                    let half = d.saturating_duration_since(tokio::time::Instant::now()) / 2;
                    tokio::time::timeout(half, asked).await.ok()
                }
                None => Some(asked.await),
            };
            if let Some(Ok((mut from_leader, _))) = answer {
                if from_leader.leader == view.leader {
                    from_leader.from_leader = true;
                    view = from_leader;
                }
            }
        }
        None => {}
    }
    Ok(view)
}

pub async fn status(a: StatusArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "status")?;
    let view = fetch(&client).await?;
    if a.client.json {
        print_json(&view.to_json());
    } else {
        outln!("{}", view.summary());
        outln!("{}", view.status_table());
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
        .map(|v: ClusterView| ClusterView {
            from_leader: true,
            ..v
        })
        .unwrap()
    }

    #[test]
    fn lag_is_behind_the_leaders_commit() {
        let v = view();
        let lags: Vec<_> = v.members.iter().map(|m| v.lag(m)).collect();
        assert_eq!(lags, [Some(30), Some(0), Some(120)]);
        let no_leader = ClusterView {
            leader: None,
            ..v.clone()
        };
        assert_eq!(no_leader.lag(&no_leader.members[0]), None);
        let a_followers_view = ClusterView {
            from_leader: false,
            ..v
        };
        assert_eq!(a_followers_view.lag(&a_followers_view.members[0]), None);
        assert!(a_followers_view.status_table().contains('?'));
        assert!(a_followers_view.summary().contains("another node's view"));
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
