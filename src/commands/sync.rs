//! `sync status|pause|resume`: upward federation as an operator sees it. `status` asks the leader (the
//! one node whose worker syncs) for `GET /v1/sync`; `pause` and `resume` set the per-node flag on every
//! member, so a leader elected later is paused (or not) like the one before it.

use futures_util::future::join_all;
use serde_json::{json, Value};

use super::output::{api_failure, outln, print_json, table};
use super::status::fetch;
use super::{connect, Quiet};
use crate::cli::StatusArgs;
use crate::client::{Client, Endpoint, Request, Response};

/// The client address of every member of the site's view, as an endpoint with the scheme the command
/// was given (`None` for a member whose client address is not known yet), and the leader's id.
async fn members(client: &Client) -> anyhow::Result<(Vec<(u64, Option<Endpoint>)>, Option<u64>)> {
    let view = fetch(client).await?;
    let scheme = client
        .endpoints()
        .first()
        .map_or("http", |e: &Endpoint| e.scheme);
    let members = view
        .members
        .iter()
        .map(|m| {
            let ep = m
                .client_addr
                .clone()
                .map(|authority| Endpoint { scheme, authority });
            (m.id, ep)
        })
        .collect();
    Ok((members, view.leader))
}

/// `GET /v1/sync` from the leader when it answers, else from the first endpoint that does (whose
/// worker is idle unless it leads): the answer and whether it is the leader's.
async fn sync_view(client: &Client) -> anyhow::Result<(Response, Option<u64>)> {
    let req = Request::get("/v1/sync");
    if let Ok((members, Some(leader))) = members(client).await {
        let at = members.into_iter().find(|(id, _)| *id == leader);
        if let Some((_, Some(ep))) = at {
            if let Ok(res) = client.request_at(&ep, req.clone()).await {
                return Ok((res, Some(leader)));
            }
        }
    }
    Ok((client.request(req).await?, None))
}

pub async fn status(a: StatusArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "sync status")?;
    let (res, leader) = sync_view(&client).await?;
    if !res.status.is_success() {
        return Err(api_failure("sync status", &res));
    }
    let mut body: Value = res.json()?;
    let configured = body["configured"].as_bool() == Some(true);
    if a.client.json {
        if let Value::Object(m) = &mut body {
            m.insert("endpoint".into(), Value::from(res.endpoint.base()));
            m.insert("from_leader".into(), Value::from(leader.is_some()));
            m.insert("leader".into(), json!(leader));
        }
        print_json(&body);
    } else if !configured {
        outln!(
            "upward federation is not configured on this site ({}); start the nodes with --pd and --site",
            res.endpoint
        );
    } else {
        outln!("{}", describe(&body, &res.endpoint, leader));
    }
    if configured {
        Ok(())
    } else {
        Err(Quiet.into())
    }
}

/// The human form of a configured `/v1/sync` answer.
fn describe(b: &Value, endpoint: &Endpoint, leader: Option<u64>) -> String {
    let num = |k: &str| b[k].as_u64().map_or_else(|| "-".into(), |n| n.to_string());
    let source = match leader {
        Some(id) => format!("the leader, node {id} at {endpoint}"),
        None => format!(
            "{endpoint}, which is not known to lead: its worker is idle and its backlog may be behind"
        ),
    };
    let quota = b["backlog_quota_bytes"].as_u64().unwrap_or(0);
    let backlog = b["backlog_bytes"].as_u64().unwrap_or(0);
    let over = if b["over_quota"].as_bool() == Some(true) {
        "  OVER QUOTA: /readyz reports degraded"
    } else {
        ""
    };
    let rows: Vec<[String; 2]> = vec![
        ["site".into(), b["site"].as_str().unwrap_or("-").to_owned()],
        [
            "state".into(),
            b["state"].as_str().unwrap_or("-").to_owned(),
        ],
        [
            "cursor".into(),
            format!("{} (central {})", num("cursor"), num("central_cursor")),
        ],
        [
            "lag".into(),
            format!(
                "{} entries, {:.1} s",
                num("lag_entries"),
                b["lag_seconds"].as_f64().unwrap_or(0.0)
            ),
        ],
        [
            "backlog".into(),
            format!("{backlog} of {quota} bytes{over}"),
        ],
        [
            "last error".into(),
            b["last_error"].as_str().unwrap_or("-").to_owned(),
        ],
        [
            "backoff".into(),
            format!(
                "{} ms, breaker {}",
                num("backoff_ms"),
                if b["breaker_open"].as_bool() == Some(true) {
                    "open"
                } else {
                    "closed"
                }
            ),
        ],
        ["worker restarts".into(), num("restarts")],
    ];
    let mut out = format!("sync status from {source}");
    for row in rows {
        out.push_str(&format!("\n{:<16}{}", row[0], row[1]));
    }
    out
}

pub async fn pause(a: StatusArgs) -> anyhow::Result<()> {
    set_paused(a, true).await
}

pub async fn resume(a: StatusArgs) -> anyhow::Result<()> {
    set_paused(a, false).await
}

/// `POST /v1/sync/pause|resume` to every member at once (one stopped member costs the deadline, not
/// every member after it); the outcome per member.
async fn set_paused(a: StatusArgs, paused: bool) -> anyhow::Result<()> {
    let command = if paused { "sync pause" } else { "sync resume" };
    let client = connect(&a.client, command)?;
    let (members, _) = members(&client).await?;
    let path = if paused {
        "/v1/sync/pause"
    } else {
        "/v1/sync/resume"
    };
    let outcomes = join_all(members.iter().map(|(_, ep)| {
        let client = &client;
        async move {
            let Some(ep) = ep else {
                return Err("its client address is not known (it has not joined yet)".to_owned());
            };
            match client.request_at(ep, Request::post(path)).await {
                Ok(res) if res.status.is_success() => Ok(()),
                Ok(res) => Err(api_failure(command, &res).to_string()),
                Err(e) => Err(e.to_string()),
            }
        }
    }))
    .await;
    let failed = outcomes.iter().filter(|o| o.is_err()).count();
    let address = |ep: &Option<Endpoint>| ep.as_ref().map_or_else(|| "-".into(), Endpoint::base);
    if a.client.json {
        let nodes: Vec<Value> = members
            .iter()
            .zip(&outcomes)
            .map(|((id, ep), o)| {
                json!({
                    "id": id,
                    "endpoint": ep.as_ref().map(Endpoint::base),
                    "ok": o.is_ok(),
                    "error": o.as_ref().err(),
                })
            })
            .collect();
        print_json(&json!({"paused": paused, "nodes": nodes}));
    } else {
        let rows = members.iter().zip(&outcomes).map(|((id, ep), o)| {
            vec![
                id.to_string(),
                address(ep),
                match o {
                    Ok(()) if paused => "paused".to_owned(),
                    Ok(()) => "syncing".to_owned(),
                    Err(e) => format!("FAILED: {e}"),
                },
            ]
        });
        outln!("{}", table(&["ID", "CLIENT", "SYNC"], rows));
    }
    if failed == 0 {
        Ok(())
    } else {
        anyhow::bail!(
            "{failed} of {} members did not {}; run the command again once they answer",
            members.len(),
            if paused { "pause" } else { "resume" }
        )
    }
}
