//! The kvs-raft [`Driver`]: the workload's ops as requests of the HTTP API v1 (docs/openapi.yaml), over
//! [`crate::client`] — its endpoint failover, token and TLS.
//!
//! Each worker's connection is its own [`Client`] (its own connection pool, used one request at a time:
//! one keep-alive connection per node it talks to). The clients have no deadline of their own: the
//! runner's per-request timeout is the one deadline (CONVENTIONS 17).
//!
//! | op | requests |
//! | --- | --- |
//! | `Put` | `PUT /v1/kv/{key}` |
//! | `Update`, [`UpdateMode::Two`] | `PUT /v1/kv/p<n>%2Fpos`, then `POST /v1/kv/p<n>%2Fscore/incr?delta=d` |
//! | `Update`, [`UpdateMode::Txn`] | `POST /v1/txn` `{"success":[put, incr]}` (one Raft entry) |
//! | `Checkpoint` | `POST /v1/entities/p<n>/checkpoint` `{"name":…}` |
//! | `LateRead` | `GET /v1/kv/p<n>%2Fpos?at=<now − age, µs>` |
//! | several ops (batch mode) | one `POST /v1/batch` with every write (an update is a put and an incr op, or one `txn` op in txn mode; a checkpoint a `checkpoint` op), then each late read as its own `GET` (a batch's reads happen at its own commit ts, not `at`) |
//!
//! Outcomes: a 2xx is success (in a batch, every op's result must be one: the first op error fails
//! the request as `op-<code>`); another status is the error `http-<status>-<code>` (`http-<status>`
//! when the body has no API error); a request without an answer is `unreachable`, `outcome-unknown`,
//! `timeout`, `broken` or `bad-answer` (see [`ClientError`]). A late read answered 404
//! `key_not_found` is **not** an error — the player's position did not exist yet at `at` (early in a
//! run), or a checkpoint had just invalidated it — and is counted in the `late_read_missing` counter.
//! The `http_requests` counter counts the HTTP requests sent.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{json, Map, Value};

use super::{entity, position_key, score_key, Driver, ErrorLabel, Op};
use crate::client::{
    encode_path, put_bytes, Client, ClientError, ClientOptions, Query, Request, Response,
};

/// How a game update is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpdateMode {
    /// Two requests: a PUT of the position and a POST incr of the score.
    Two,
    /// One `/v1/txn` with both (atomic, one Raft entry).
    Txn,
}

impl UpdateMode {
    pub fn name(self) -> &'static str {
        match self {
            UpdateMode::Two => "two",
            UpdateMode::Txn => "txn",
        }
    }
}

/// The kvs-raft driver (see the module docs).
pub struct HttpDriver {
    options: ClientOptions,
    update: UpdateMode,
    http_requests: AtomicU64,
    late_read_missing: AtomicU64,
}

impl HttpDriver {
    /// A driver whose workers connect with `options` (its `timeout` is ignored: the runner's
    /// per-request timeout bounds each request). The options are checked now: an invalid one is
    /// [`ClientError::InvalidOption`].
    pub fn new(options: ClientOptions, update: UpdateMode) -> Result<HttpDriver, ClientError> {
        let options = ClientOptions {
            timeout: None,
            ..options
        };
        Client::new(options.clone())?;
        Ok(HttpDriver {
            options,
            update,
            http_requests: AtomicU64::new(0),
            late_read_missing: AtomicU64::new(0),
        })
    }

    async fn send(&self, conn: &Client, req: Request) -> Result<Response, ErrorLabel> {
        self.http_requests.fetch_add(1, Ordering::Relaxed);
        conn.request(req).await.map_err(|e| label_of(&e))
    }

    /// Send `req` and accept a 2xx answer.
    async fn write(&self, conn: &Client, req: Request) -> Result<Response, ErrorLabel> {
        let res = self.send(conn, req).await?;
        if res.status.is_success() {
            Ok(res)
        } else {
            Err(status_label(&res))
        }
    }

    async fn late_read(
        &self,
        conn: &Client,
        player: u64,
        age: std::time::Duration,
    ) -> Result<(), ErrorLabel> {
        let at = engine::clock::wall_micros()
            .saturating_sub(u64::try_from(age.as_micros()).unwrap_or(u64::MAX));
        let mut q = Query::default();
        q.push("at", at);
        let res = self
            .send(
                conn,
                Request::get(format!("{}{q}", key_path(&position_key(player)))),
            )
            .await?;
        if res.status.is_success() {
            return Ok(());
        }
        if res.api_error().is_some_and(|e| e.code == "key_not_found") {
            self.late_read_missing.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        Err(status_label(&res))
    }

    async fn single(&self, conn: &Client, op: &Op) -> Result<(), ErrorLabel> {
        match op {
            Op::Put { key, value } => {
                self.write(conn, Request::put(kv_path(key), value.clone()))
                    .await?;
            }
            Op::Update {
                player,
                position,
                score_delta,
            } => match self.update {
                UpdateMode::Two => {
                    self.write(
                        conn,
                        Request::put(key_path(&position_key(*player)), position.clone()),
                    )
                    .await?;
                    let mut q = Query::default();
                    q.push("delta", score_delta);
                    let path = format!("{}/incr{q}", key_path(&score_key(*player)));
                    self.write(conn, Request::post(path)).await?;
                }
                UpdateMode::Txn => {
                    let body = json!({ "success": update_ops(*player, position, *score_delta) });
                    let res = self
                        .write(conn, Request::post_json("/v1/txn", &body))
                        .await?;
                    let answer: Value = res.json().map_err(|e| label_of(&e))?;
                    if answer.get("succeeded") != Some(&Value::Bool(true)) {
                        return Err("txn-not-succeeded".into());
                    }
                }
            },
            Op::Checkpoint { player, name } => {
                let path = format!(
                    "/v1/entities/{}/checkpoint",
                    encode_path(entity(*player).as_bytes())
                );
                self.write(conn, Request::post_json(&path, &json!({ "name": name })))
                    .await?;
            }
            Op::LateRead { player, age } => self.late_read(conn, *player, *age).await?,
        }
        Ok(())
    }

    /// Batch mode: every write in one `/v1/batch`, then the late reads one by one.
    async fn batch(&self, conn: &Client, ops: &[Op]) -> Result<(), ErrorLabel> {
        let mut body = Vec::new();
        for op in ops {
            match op {
                Op::Put { key, value } => body.push(put_op(key, value)),
                Op::Update {
                    player,
                    position,
                    score_delta,
                } => {
                    let both = update_ops(*player, position, *score_delta);
                    match self.update {
                        UpdateMode::Two => body.extend(both),
                        UpdateMode::Txn => body.push(json!({ "op": "txn", "success": both })),
                    }
                }
                Op::Checkpoint { player, name } => body.push(json!({
                    "op": "checkpoint", "entity": entity(*player), "name": name
                })),
                Op::LateRead { .. } => {}
            }
        }
        if !body.is_empty() {
            let res = self
                .write(
                    conn,
                    Request::post_json("/v1/batch", &json!({ "ops": body })),
                )
                .await?;
            let answer: Value = res.json().map_err(|e| label_of(&e))?;
            let results = answer
                .get("results")
                .and_then(Value::as_array)
                .ok_or_else(|| ErrorLabel::from("bad-answer"))?;
            if results.len() != body.len() {
                return Err("bad-answer".into());
            }
            if let Some(code) = results.iter().find_map(|r| {
                let e = r.get("error")?;
                Some(e.get("code").and_then(Value::as_str).unwrap_or("unknown"))
            }) {
                return Err(format!("op-{code}"));
            }
        }
        for op in ops {
            if let Op::LateRead { player, age } = op {
                self.late_read(conn, *player, *age).await?;
            }
        }
        Ok(())
    }
}

impl Driver for HttpDriver {
    type Conn = Client;

    /// Worker `w` starts at endpoint `w mod n` of the list (then fails over in list order), so the
    /// workers spread over every node given, as a site's game servers would.
    async fn connect(&self, worker: usize) -> Result<Client, ErrorLabel> {
        let mut options = self.options.clone();
        options.endpoints = rotate_endpoints(&options.endpoints, worker);
        Client::new(options).map_err(|e| label_of(&e))
    }

    async fn execute(&self, conn: &mut Client, ops: &[Op]) -> Result<(), ErrorLabel> {
        match ops {
            [op] => self.single(conn, op).await,
            _ => self.batch(conn, ops).await,
        }
    }

    fn counters(&self) -> Vec<(String, u64)> {
        vec![
            (
                "http_requests".into(),
                self.http_requests.load(Ordering::Relaxed),
            ),
            (
                "late_read_missing".into(),
                self.late_read_missing.load(Ordering::Relaxed),
            ),
        ]
    }
}

/// The comma-separated endpoint list `raw` rotated left by `by` entries (empty entries dropped).
fn rotate_endpoints(raw: &str, by: usize) -> String {
    let mut list: Vec<&str> = raw
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    if !list.is_empty() {
        let n = by % list.len();
        list.rotate_left(n);
    }
    list.join(",")
}

/// The path of a key given as text.
fn key_path(key: &str) -> String {
    kv_path(key.as_bytes())
}

/// The path of a key's bytes under `/v1/kv/`.
fn kv_path(key: &[u8]) -> String {
    format!("/v1/kv/{}", encode_path(key))
}

/// A `put` op of `/v1/batch` or `/v1/txn`.
fn put_op(key: &[u8], value: &[u8]) -> Value {
    let mut op = Map::new();
    op.insert("op".into(), Value::from("put"));
    put_bytes(&mut op, "key", key);
    put_bytes(&mut op, "value", value);
    Value::Object(op)
}

/// A game update as ops: the position put and the score incr.
fn update_ops(player: u64, position: &[u8], score_delta: i64) -> Vec<Value> {
    vec![
        put_op(position_key(player).as_bytes(), position),
        json!({ "op": "incr", "key": score_key(player), "delta": score_delta }),
    ]
}

/// The label of an answer that is not a success: `http-<status>-<code>`, or `http-<status>`.
fn status_label(res: &Response) -> ErrorLabel {
    match res.api_error() {
        Some(e) => format!("http-{}-{}", res.status.as_u16(), e.code),
        None => format!("http-{}", res.status.as_u16()),
    }
}

/// The label of a request without an answer.
fn label_of(e: &ClientError) -> ErrorLabel {
    match e {
        ClientError::InvalidOption { .. } => "invalid-option",
        ClientError::Unreachable { .. } => "unreachable",
        ClientError::OutcomeUnknown { .. } => "outcome-unknown",
        ClientError::Timeout { .. } => "timeout",
        ClientError::Broken { .. } => "broken",
        ClientError::BadAnswer { .. } => "bad-answer",
    }
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updates_become_a_put_and_an_incr() {
        let ops = update_ops(7, b"xy", 3);
        assert_eq!(
            Value::Array(ops),
            json!([
                {"op": "put", "key": "p7/pos", "value": "xy"},
                {"op": "incr", "key": "p7/score", "delta": 3}
            ])
        );
        // Bytes that are not UTF-8 travel as base64.
        assert_eq!(
            put_op(b"k", &[0xff]),
            json!({"op": "put", "key": "k", "value_b64": "/w=="})
        );
        assert_eq!(key_path("p7/pos"), "/v1/kv/p7%2Fpos");
    }

    #[test]
    fn options_are_checked_when_the_driver_is_made() {
        let bad = ClientOptions {
            endpoints: "ftp://x:1".into(),
            ..ClientOptions::default()
        };
        assert!(matches!(
            HttpDriver::new(bad, UpdateMode::Txn),
            Err(ClientError::InvalidOption {
                option: "endpoints",
                ..
            })
        ));
        let ok = HttpDriver::new(ClientOptions::default(), UpdateMode::Two).expect("defaults");
        assert_eq!(ok.options.timeout, None);
        assert_eq!(
            ok.counters(),
            vec![("http_requests".into(), 0), ("late_read_missing".into(), 0)]
        );
    }

    #[test]
    fn workers_start_at_different_endpoints() {
        let all = "http://a:1, http://b:2,http://c:3";
        assert_eq!(
            super::rotate_endpoints(all, 0),
            "http://a:1,http://b:2,http://c:3"
        );
        assert_eq!(
            super::rotate_endpoints(all, 1),
            "http://b:2,http://c:3,http://a:1"
        );
        assert_eq!(
            super::rotate_endpoints(all, 5),
            "http://c:3,http://a:1,http://b:2"
        );
        assert_eq!(super::rotate_endpoints("", 3), "");
    }
}
