//! `members list|add|remove|promote` over `/v1/cluster/members`. `add` prints the `kvs-raft serve
//! --join` command line that starts the new node.

use crate::commands::output::outln;
use std::net::IpAddr;
use std::path::Path;

use serde_json::{json, Value};

use super::connect;
use super::output::{api_failure, print_json, table};
use super::status::{fetch, ClusterView};
use crate::cli::{MemberIdArgs, MembersAddArgs, StatusArgs};
use crate::client::{Client, Request, Response};

fn members_table(view: &ClusterView) -> String {
    let rows = view.members.iter().map(|m| {
        vec![
            m.id.to_string(),
            m.role.clone(),
            m.peer_addr.clone(),
            m.client_addr.clone().unwrap_or_else(|| "-".into()),
        ]
    });
    table(&["ID", "ROLE", "PEER", "CLIENT"], rows)
}

pub async fn list(a: StatusArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "members list")?;
    let view = fetch(&client).await?;
    if a.client.json {
        print_json(&view.to_json());
    } else {
        outln!("{}", members_table(&view));
    }
    Ok(())
}

/// The new cluster view a membership change answers with, or the failure naming `what`.
fn changed(res: &Response, what: &str) -> anyhow::Result<ClusterView> {
    if !res.status.is_success() {
        return Err(api_failure(what, res));
    }
    // A membership change is carried out, and answered, by the leader (forwarded there if need be).
    Ok(ClusterView {
        from_leader: true,
        ..res.json()?
    })
}

/// `--listen-X` (and `--advertise-X` when the address is a host name, which a listen address may not
/// be) for a node reachable at `addr`.
fn listen_flags(kind: &str, addr: &str) -> Vec<String> {
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, ""));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.parse::<IpAddr>().is_ok() {
        vec![format!("--listen-{kind}"), addr.to_owned()]
    } else {
        vec![
            format!("--listen-{kind}"),
            format!("0.0.0.0:{port}"),
            format!("--advertise-{kind}"),
            addr.to_owned(),
        ]
    }
}

/// The `kvs-raft serve` command line that starts member `id` of `cluster_id` and joins through `join`.
pub fn join_command(
    id: u64,
    cluster_id: &str,
    data_dir: &Path,
    peer_addr: &str,
    client_addr: Option<&str>,
    join: &str,
) -> String {
    let mut args: Vec<String> = vec![
        "kvs-raft".into(),
        "serve".into(),
        "--id".into(),
        id.to_string(),
        "--cluster-id".into(),
        cluster_id.into(),
        "--data-dir".into(),
        data_dir.display().to_string(),
    ];
    if let Some(client) = client_addr {
        args.extend(listen_flags("client", client));
    }
    args.extend(listen_flags("peer", peer_addr));
    args.extend(["--join".to_owned(), join.to_owned()]);
    args.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `s` as one shell word.
fn shell_quote(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=,@[]".contains(&b));
    if plain {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// What else the new node's command line needs on a site with auth or TLS.
fn join_notes(client: &Client, join: &str) -> Vec<String> {
    let mut notes = Vec::new();
    if client.has_token() {
        notes.push(
            "auth is on: add --join-token-file FILE (a token with role read or more) and the site's \
             --auth-token-file"
                .to_owned(),
        );
    }
    if join.starts_with("https://") {
        notes.push(
            "TLS is on: add --client-cert, --client-key and --trusted-ca-file (or --client-ca) as on \
             the other nodes"
                .to_owned(),
        );
    }
    notes
}

pub async fn add(a: MembersAddArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "members add")?;
    let mut body = json!({"peer_addr": a.peer_addr, "learner": true});
    if let Some(id) = a.id {
        body["id"] = Value::from(id);
    }
    if let Some(c) = &a.client_addr {
        body["client_addr"] = Value::from(c.as_str());
    }
    let res = client
        .request(Request::post_json("/v1/cluster/members", &body))
        .await?;
    let view = changed(&res, "members add")?;
    let added = match a.id {
        Some(id) => view.member(id),
        None => view
            .members
            .iter()
            .rev()
            .find(|m| m.peer_addr == a.peer_addr),
    }
    .ok_or_else(|| {
        anyhow::anyhow!("the node accepted the change but its view lacks the new member")
    })?;
    let join = res.endpoint.base();
    let command = join_command(
        added.id,
        &view.cluster_id,
        &a.data_dir,
        &added.peer_addr,
        added.client_addr.as_deref(),
        &join,
    );
    let notes = join_notes(&client, &join);
    if a.client.json {
        print_json(&json!({
            "id": added.id,
            "role": added.role,
            "peer_addr": added.peer_addr,
            "client_addr": added.client_addr,
            "join_command": command,
            "notes": notes,
            "members": view.to_json()["members"],
        }));
    } else {
        outln!(
            "added node {} as a learner. Start it with:\n\n  {command}\n",
            added.id
        );
        for note in notes {
            outln!("  ({note})");
        }
        outln!(
            "Once it has caught up (`kvs-raft status`: LAG near 0), make it a voter:\n\n  kvs-raft members promote {}",
            added.id
        );
    }
    Ok(())
}

pub async fn remove(a: MemberIdArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "members remove")?;
    let res = client
        .request(Request::delete(format!("/v1/cluster/members/{}", a.id)))
        .await?;
    let view = changed(&res, &format!("members remove {}", a.id))?;
    if a.client.json {
        print_json(&json!({"removed": a.id, "members": view.to_json()["members"]}));
    } else {
        outln!("removed node {} (its id is never reused)", a.id);
        outln!("{}", members_table(&view));
    }
    Ok(())
}

pub async fn promote(a: MemberIdArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "members promote")?;
    let view = fetch(&client).await?;
    let member = view.member(a.id).ok_or_else(|| {
        anyhow::anyhow!(
            "members promote {0} failed: node {0} is not a member (see `kvs-raft members list`)",
            a.id
        )
    })?;
    let body = json!({"id": a.id, "peer_addr": member.peer_addr, "learner": false});
    let res = client
        .request(Request::post_json("/v1/cluster/members", &body))
        .await?;
    let view = changed(&res, &format!("members promote {}", a.id))?;
    let role = view
        .member(a.id)
        .map(|m| m.role.clone())
        .unwrap_or_default();
    if a.client.json {
        print_json(&json!({"promoted": a.id, "role": role, "members": view.to_json()["members"]}));
    } else {
        outln!("promoted node {} (now {role})", a.id);
        outln!("{}", members_table(&view));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_join_command_listens_on_ips_and_advertises_names() {
        assert_eq!(
            join_command(
                4,
                "site-a",
                Path::new("/var/lib/kvs-raft"),
                "10.0.0.4:7380",
                Some("10.0.0.4:7379"),
                "http://10.0.0.1:7379"
            ),
            "kvs-raft serve --id 4 --cluster-id site-a --data-dir /var/lib/kvs-raft \
             --listen-client 10.0.0.4:7379 --listen-peer 10.0.0.4:7380 --join http://10.0.0.1:7379"
        );
        assert_eq!(
            join_command(
                5,
                "s",
                Path::new("my data"),
                "node5:7380",
                None,
                "https://n1:7379"
            ),
            "kvs-raft serve --id 5 --cluster-id s --data-dir 'my data' --listen-peer 0.0.0.0:7380 \
             --advertise-peer node5:7380 --join https://n1:7379"
        );
        assert_eq!(
            listen_flags("peer", "[::1]:7380"),
            ["--listen-peer", "[::1]:7380"]
        );
    }
}
