//! `put`, `get`, `del`, `scan`, `incr`, `txn`: the key-value subcommands over `/v1/kv` and `/v1/txn`.

use crate::commands::output::outln;
use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;
use engine::prefix_end;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::output::{
    api_failure, bytes_of, cell_bytes, print_json, put_bytes, table, write_stdout,
};
use super::{connect, UsageError};
use crate::cli::{DelArgs, GetArgs, IncrArgs, PutArgs, ScanArgs, TxnArgs};
use crate::client::{encode_path, Query, Request, Response};

/// The path of `key` under `/v1/kv/` (every byte but the unreserved ones percent-encoded).
pub fn key_path(key: &str) -> String {
    format!("/v1/kv/{}", encode_path(key.as_bytes()))
}

/// Read a value or a file argument: `-` is stdin.
fn read_input(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    if path == Path::new("-") {
        std::io::stdin().read_to_end(&mut bytes)?;
    } else {
        bytes = std::fs::read(path)?;
    }
    Ok(bytes)
}

/// A success answer of a write: `{"ts","epoch"}` (+ `"value"` for incr, `"existed"` for delete).
#[derive(Debug, Deserialize)]
struct Written {
    ts: u64,
    #[serde(default)]
    epoch: u64,
    #[serde(default)]
    value: Option<i64>,
    #[serde(default)]
    existed: Option<bool>,
}

/// The answer of a write request, or the failure naming `what`.
fn written(res: &Response, what: &str) -> anyhow::Result<Written> {
    if !res.status.is_success() {
        return Err(api_failure(what, res));
    }
    Ok(res.json()?)
}

pub async fn put(a: PutArgs) -> anyhow::Result<()> {
    let value = match (&a.value, &a.value_file) {
        (Some(v), None) if v == "-" => {
            read_input(Path::new("-")).context("read the value from stdin")?
        }
        (Some(v), None) => v.clone().into_bytes(),
        (None, Some(path)) => read_input(path).map_err(|e| {
            UsageError::new(
                "put",
                format!("invalid --value-file: read {}: {e}", path.display()),
            )
        })?,
        _ => return Err(UsageError::new("put", "give a VALUE or --value-file").into()),
    };
    let client = connect(&a.client, "put")?;
    let mut q = Query::default();
    q.opt("epoch", a.conditions.epoch)
        .opt("if_version", a.conditions.if_version);
    if a.if_absent {
        q.push("if_absent", true);
    }
    let res = client
        .request(Request::put(format!("{}{q}", key_path(&a.key)), value))
        .await?;
    let w = written(&res, &format!("put {}", a.key))?;
    if a.client.json {
        print_json(&json!({"key": a.key, "ts": w.ts, "epoch": w.epoch}));
    } else {
        outln!("OK ts={} epoch={}", w.ts, w.epoch);
    }
    Ok(())
}

pub async fn get(a: GetArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "get")?;
    let mut q = Query::default();
    q.opt("at", a.read.at)
        .opt("consistency", a.read.consistency.map(|c| c.name()));
    let res = client
        .request(Request::get(format!("{}{q}", key_path(&a.key))))
        .await?;
    if res.api_error().is_some_and(|e| e.code == "key_not_found") {
        anyhow::bail!("key {:?} not found", a.key);
    }
    if !res.status.is_success() {
        return Err(api_failure(&format!("get {}", a.key), &res));
    }
    if a.client.json {
        let mut m = Map::new();
        m.insert("key".into(), Value::from(a.key.as_str()));
        put_bytes(&mut m, "value", &res.body);
        for (field, header) in [
            ("ts", "kvs-ts"),
            ("epoch", "kvs-epoch"),
            ("stale_ms", "kvs-stale-ms"),
        ] {
            if let Some(n) = res.header_u64(header) {
                m.insert(field.into(), Value::from(n));
            }
        }
        print_json(&Value::Object(m));
    } else {
        write_stdout(&res.body);
    }
    Ok(())
}

pub async fn del(a: DelArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "del")?;
    let mut q = Query::default();
    q.opt("epoch", a.conditions.epoch)
        .opt("if_version", a.conditions.if_version);
    let res = client
        .request(Request::delete(format!("{}{q}", key_path(&a.key))))
        .await?;
    let w = written(&res, &format!("del {}", a.key))?;
    let existed = w.existed.unwrap_or(true);
    if a.client.json {
        print_json(&json!({"key": a.key, "ts": w.ts, "existed": existed}));
    } else if existed {
        outln!("deleted ts={}", w.ts);
    } else {
        outln!("not found (nothing to delete) ts={}", w.ts);
    }
    Ok(())
}

pub async fn incr(a: IncrArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "incr")?;
    let mut q = Query::default();
    q.push("delta", a.delta).opt("epoch", a.epoch);
    let res = client
        .request(Request::post(format!("{}/incr{q}", key_path(&a.key))))
        .await?;
    let w = written(&res, &format!("incr {}", a.key))?;
    let value = w
        .value
        .ok_or_else(|| anyhow::anyhow!("the answer has no value"))?;
    if a.client.json {
        print_json(&json!({"key": a.key, "value": value, "ts": w.ts, "epoch": w.epoch}));
    } else {
        outln!("{value}");
    }
    Ok(())
}

/// The range of a scan: `(start, end)`.
fn scan_range(a: &ScanArgs) -> (Vec<u8>, Option<Vec<u8>>) {
    match &a.prefix {
        Some(p) => (p.as_bytes().to_vec(), prefix_end(p.as_bytes())),
        None => (
            a.start.clone().unwrap_or_default().into_bytes(),
            a.end.clone().map(String::into_bytes),
        ),
    }
}

/// The page size the API serves at most.
const MAX_PAGE: usize = 1000;

pub async fn scan(a: ScanArgs) -> anyhow::Result<()> {
    let client = connect(&a.client, "scan")?;
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let (mut start, end) = scan_range(&a);
    let mut items: Vec<Value> = Vec::new();
    loop {
        let want = if a.limit == 0 {
            MAX_PAGE
        } else {
            (a.limit - items.len()).min(MAX_PAGE)
        };
        let mut q = Query::default();
        q.push("start_b64", b64(&start))
            .opt("end_b64", end.as_deref().map(b64))
            .push("limit", want)
            .opt("at", a.read.at)
            .opt("consistency", a.read.consistency.map(|c| c.name()));
        let res = client.request(Request::get(format!("/v1/kv{q}"))).await?;
        if !res.status.is_success() {
            return Err(api_failure("scan", &res));
        }
        let page: Value = res.json()?;
        let got = page["items"]
            .as_array()
            .ok_or_else(|| anyhow::anyhow!("the scan answer has no items: {page}"))?;
        let last_key = got.last().and_then(|item| bytes_of(item, "key"));
        items.extend(got.iter().cloned());
        let more = page["more"].as_bool().unwrap_or(false);
        match last_key {
            Some(last) if more && (a.limit == 0 || items.len() < a.limit) => {
                start = last;
                start.push(0);
            }
            _ => {
                let truncated = more || (a.limit != 0 && items.len() > a.limit);
                items.truncate(if a.limit == 0 { items.len() } else { a.limit });
                return print_scan(&items, truncated, a.client.json);
            }
        }
    }
}

fn print_scan(items: &[Value], more: bool, json: bool) -> anyhow::Result<()> {
    if json {
        print_json(&json!({"items": items, "more": more}));
        return Ok(());
    }
    let rows = items.iter().map(|item| {
        vec![
            cell_bytes(&bytes_of(item, "key").unwrap_or_default()),
            cell_bytes(&bytes_of(item, "value").unwrap_or_default()),
            item["ts"].to_string(),
            item["epoch"].to_string(),
        ]
    });
    outln!("{}", table(&["KEY", "VALUE", "TS", "EPOCH"], rows));
    outln!(
        "{} key(s){}",
        items.len(),
        if more {
            "; more exist (raise --limit, or 0 for all)"
        } else {
            ""
        }
    );
    Ok(())
}

pub async fn txn(a: TxnArgs) -> anyhow::Result<()> {
    let body = read_input(&a.file).map_err(|e| {
        UsageError::new(
            "txn",
            format!("invalid FILE: read {}: {e}", a.file.display()),
        )
    })?;
    serde_json::from_slice::<Value>(&body).map_err(|e| {
        UsageError::new(
            "txn",
            format!("invalid FILE {}: not JSON: {e}", a.file.display()),
        )
    })?;
    let client = connect(&a.client, "txn")?;
    let res = client
        .request(Request::post_json_bytes("/v1/txn", body))
        .await?;
    if !res.status.is_success() {
        return Err(api_failure("txn", &res));
    }
    let answer: Value = res.json()?;
    let succeeded = answer["succeeded"].as_bool().unwrap_or(false);
    if a.client.json {
        print_json(&answer);
    } else {
        outln!(
            "{} ts={}",
            if succeeded {
                "compares held: success ops applied"
            } else {
                "compares failed: failure ops applied"
            },
            answer["ts"]
        );
        let results = answer["results"].as_array().cloned().unwrap_or_default();
        if !results.is_empty() {
            let rows = results.iter().map(|r| {
                let mut rest = r.as_object().cloned().unwrap_or_default();
                let op = rest
                    .remove("op")
                    .and_then(|v| v.as_str().map(str::to_owned));
                vec![op.unwrap_or_default(), Value::Object(rest).to_string()]
            });
            outln!("{}", table(&["OP", "RESULT"], rows));
        }
    }
    // A txn whose compares failed did what it was told (its failure branch): exit 0 either way.
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ends() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
        assert_eq!(prefix_end(b""), None);
    }

    #[test]
    fn keys_are_one_path_segment() {
        assert_eq!(key_path("player:42/pos"), "/v1/kv/player%3A42%2Fpos");
    }
}
