//! `leader transfer`: ask for a leader transfer (`POST /v1/cluster/leader`) and wait, within the
//! command's deadline, until the site has the new leader.

use crate::commands::output::outln;
use std::time::Duration;

use serde_json::json;

use super::connect;
use super::output::{api_failure, print_json};
use super::status::fetch;
use crate::cli::LeaderTransferArgs;
use crate::client::Request;

/// How often the cluster view is read while waiting.
const POLL: Duration = Duration::from_millis(50);

pub async fn transfer(a: LeaderTransferArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "leader transfer")?;
    let before = fetch(&client).await?;
    let body = json!({"to": a.to});
    let res = client
        .request(Request::post_json("/v1/cluster/leader", &body))
        .await?;
    if !res.status.is_success() {
        return Err(api_failure("leader transfer", &res));
    }
    let moved = |leader: Option<u64>| match a.to {
        Some(to) => leader == Some(to),
        None => leader.is_some() && leader != before.leader,
    };
    let view = loop {
        let view = fetch(&client).await;
        if let Ok(v) = &view {
            let leads = v
                .leader
                .and_then(|l| v.member(l))
                .is_some_and(|m| m.role == "leader");
            if moved(v.leader) && leads {
                break v.clone();
            }
        }
        let passed = client
            .deadline()
            .is_some_and(|d| tokio::time::Instant::now() + POLL >= d);
        if passed {
            let now = view.ok().and_then(|v| v.leader);
            anyhow::bail!(
                "leader transfer requested, but the leader is still {} at the deadline (--timeout); \
                 see `kvs-raft status`",
                now.map_or_else(|| "unknown".into(), |l| l.to_string())
            );
        }
        tokio::time::sleep(POLL).await;
    };
    if a.client.json {
        print_json(&json!({
            "from": before.leader,
            "to": view.leader,
            "term": view.term,
        }));
    } else {
        outln!(
            "leadership moved from {} to {} (term {})",
            before
                .leader
                .map_or_else(|| "none".into(), |l| l.to_string()),
            view.leader.map_or_else(|| "none".into(), |l| l.to_string()),
            view.term
        );
    }
    Ok(())
}
