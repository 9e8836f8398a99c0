//! `checkpoint` and `crossed`: the entity subcommands over `/v1/entities`.

use crate::commands::output::outln;
use serde_json::{json, Map, Value};

use super::output::{api_failure, bytes_of, cell_bytes, print_json, put_bytes};
use super::{connect, Quiet};
use crate::cli::{CheckpointArgs, CrossedArgs};
use crate::client::{encode_path, Query, Request};

pub async fn checkpoint(a: CheckpointArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "checkpoint")?;
    let mut body = json!({"name": a.name});
    if let Some(data) = &a.data {
        body["data"] = Value::from(data.as_str());
    }
    if let Some(epoch) = a.epoch {
        body["epoch"] = Value::from(epoch);
    }
    let path = format!(
        "/v1/entities/{}/checkpoint",
        encode_path(a.entity.as_bytes())
    );
    let res = client.request(Request::post_json(path, &body)).await?;
    if !res.status.is_success() {
        return Err(api_failure(
            &format!("checkpoint {} {}", a.entity, a.name),
            &res,
        ));
    }
    let answer: Value = res.json()?;
    let (epoch, ts) = (answer["epoch"].as_u64(), answer["ts"].as_u64());
    let (Some(epoch), Some(ts)) = (epoch, ts) else {
        anyhow::bail!("the checkpoint answer lacks epoch or ts: {answer}");
    };
    if a.client.json {
        print_json(&json!({"entity": a.entity, "name": a.name, "epoch": epoch, "ts": ts}));
    } else {
        outln!("{} crossed {}: epoch {epoch}, ts {ts}", a.entity, a.name);
    }
    Ok(())
}

pub async fn crossed(a: CrossedArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "crossed")?;
    let mut q = Query::default();
    q.opt("at", a.at);
    let path = format!(
        "/v1/entities/{}/checkpoints/{}{q}",
        encode_path(a.entity.as_bytes()),
        encode_path(a.name.as_bytes())
    );
    let res = client.request(Request::get(path)).await?;
    let mut out = Map::new();
    out.insert("entity".into(), Value::from(a.entity.as_str()));
    out.insert("name".into(), Value::from(a.name.as_str()));
    if res
        .api_error()
        .is_some_and(|e| e.code == "checkpoint_not_found")
    {
        out.insert("crossed".into(), Value::from(false));
        if a.client.json {
            print_json(&Value::Object(out));
        } else {
            outln!("{} has not crossed {}", a.entity, a.name);
        }
        return Err(Quiet.into());
    }
    if !res.status.is_success() {
        return Err(api_failure(
            &format!("crossed {} {}", a.entity, a.name),
            &res,
        ));
    }
    let answer: Value = res.json()?;
    let data = bytes_of(&answer, "data").unwrap_or_default();
    out.insert("crossed".into(), Value::from(true));
    out.insert("epoch".into(), answer["epoch"].clone());
    out.insert("ts".into(), answer["ts"].clone());
    put_bytes(&mut out, "data", &data);
    if a.client.json {
        print_json(&Value::Object(out));
    } else {
        outln!(
            "{} crossed {} at ts {} (epoch {}){}",
            a.entity,
            a.name,
            answer["ts"],
            answer["epoch"],
            if data.is_empty() {
                String::new()
            } else {
                format!(", data: {}", cell_bytes(&data))
            }
        );
    }
    Ok(())
}
