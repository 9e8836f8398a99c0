//! The JSON shapes of API v1 (SPEC §3), and their conversion from/to engine and backend types. Engine and
//! Raft types are never serialized directly: a field renamed inside the engine cannot change the API.
//!
//! Byte strings are JSON strings when they are UTF-8, else base64 in a `*_b64` sibling field (`key_b64`,
//! `value_b64`, `data_b64`, ...). Requests may use either form; giving both is a 400.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::backend::{ClusterView, MemberRole, MemberView, Readiness};
use super::error::{ApiError, Code};
use super::limits::Limits;
use super::params::{decode_b64, encode_b64};

// ---------------------------------------------------------------------------------------------------
// Requests

/// `POST /v1/entities/{entity}/checkpoint`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckpointReq {
    pub name: Option<String>,
    pub name_b64: Option<String>,
    pub data: Option<String>,
    pub data_b64: Option<String>,
    /// Epoch fence: the entity's current epoch must be this.
    pub epoch: Option<u64>,
}

/// One op of a txn branch or a batch: `{"op":"put","key":..,"value":..}`.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum OpReq {
    Put {
        key: Option<String>,
        key_b64: Option<String>,
        value: Option<String>,
        value_b64: Option<String>,
        epoch: Option<u64>,
        if_version: Option<u64>,
        #[serde(default)]
        if_absent: bool,
    },
    Delete {
        key: Option<String>,
        key_b64: Option<String>,
        epoch: Option<u64>,
        if_version: Option<u64>,
    },
    Incr {
        key: Option<String>,
        key_b64: Option<String>,
        delta: Option<i64>,
        epoch: Option<u64>,
    },
    Checkpoint {
        entity: Option<String>,
        entity_b64: Option<String>,
        name: Option<String>,
        name_b64: Option<String>,
        data: Option<String>,
        data_b64: Option<String>,
        epoch: Option<u64>,
    },
    Get {
        key: Option<String>,
        key_b64: Option<String>,
    },
    /// Only at the top level of a batch: txns do not nest.
    Txn(TxnReq),
}

/// `POST /v1/txn` (and a batch's `{"op":"txn",...}`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TxnReq {
    #[serde(default)]
    pub compares: Vec<CompareReq>,
    #[serde(default)]
    pub success: Vec<OpReq>,
    #[serde(default)]
    pub failure: Vec<OpReq>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    Value,
    Version,
    Exists,
    Epoch,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub enum CmpReq {
    #[serde(rename = "eq", alias = "=", alias = "==")]
    Eq,
    #[serde(rename = "ne", alias = "!=")]
    Ne,
    #[serde(rename = "lt", alias = "<")]
    Lt,
    #[serde(rename = "gt", alias = ">")]
    Gt,
}

/// `{"key":"a","target":"value","op":"eq","value":"x"}`, `{"key":"a","target":"version","op":"lt","version":7}`,
/// `{"key":"a","target":"exists","exists":false}`, `{"entity":"player:1","target":"epoch","op":"eq","epoch":2}`.
/// For `version`/`epoch`/`exists` the comparand may also be given as `value` (a number / a bool).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareReq {
    pub key: Option<String>,
    pub key_b64: Option<String>,
    pub entity: Option<String>,
    pub entity_b64: Option<String>,
    pub target: Target,
    pub op: Option<CmpReq>,
    pub value: Option<Value>,
    pub value_b64: Option<String>,
    pub version: Option<u64>,
    pub exists: Option<bool>,
    pub epoch: Option<u64>,
}

/// `POST /v1/batch`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchReq {
    pub ops: Vec<OpReq>,
}

/// `POST /v1/cluster/members`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddMemberReq {
    pub id: Option<u64>,
    pub peer_addr: String,
    pub client_addr: Option<String>,
    #[serde(default)]
    pub learner: bool,
}

/// `POST /v1/cluster/leader`: `{"to": id}` or `{"to": null}` (any caught-up voter).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LeaderReq {
    #[serde(default)]
    pub to: Option<u64>,
}

/// Bytes given as `text` or `b64`; `None` when neither (both is a 400).
pub fn text_or_b64(
    what: &str,
    text: Option<String>,
    b64: Option<String>,
) -> Result<Option<Vec<u8>>, ApiError> {
    match (text, b64) {
        (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
            "give {what} or {what}_b64, not both"
        ))),
        (Some(t), None) => Ok(Some(t.into_bytes())),
        (None, Some(b)) => decode_b64(&format!("{what}_b64"), &b).map(Some),
        (None, None) => Ok(None),
    }
}

fn required(what: &str, text: Option<String>, b64: Option<String>) -> Result<Vec<u8>, ApiError> {
    text_or_b64(what, text, b64)?
        .ok_or_else(|| ApiError::bad_request(format!("{what} (or {what}_b64) is required")))
}

fn key_field(
    limits: &Limits,
    text: Option<String>,
    b64: Option<String>,
) -> Result<Vec<u8>, ApiError> {
    let key = required("key", text, b64)?;
    limits.check_key("key", &key)?;
    Ok(key)
}

pub fn entity_field(limits: &Limits, entity: &[u8]) -> Result<(), ApiError> {
    limits.check_key("entity", entity)?;
    if entity.contains(&b'/') {
        return Err(ApiError::invalid_key("an entity must not contain '/'"));
    }
    Ok(())
}

/// A checkpoint op, validated against the limits.
pub fn checkpoint_op(
    limits: &Limits,
    entity: Vec<u8>,
    name: Vec<u8>,
    data: Vec<u8>,
    epoch: Option<u64>,
) -> Result<engine::Op, ApiError> {
    entity_field(limits, &entity)?;
    limits.check_key("checkpoint name", &name)?;
    limits.check_value("checkpoint data", &data)?;
    Ok(engine::Op::Checkpoint {
        entity,
        name,
        data,
        epoch,
    })
}

impl OpReq {
    /// The engine op, with every key and value checked against the limits (the engine applies whatever
    /// it is given: limits are enforced before proposing).
    pub fn into_op(self, limits: &Limits, in_txn: bool) -> Result<engine::Op, ApiError> {
        use engine::{Op, WriteCond};
        Ok(match self {
            OpReq::Put {
                key,
                key_b64,
                value,
                value_b64,
                epoch,
                if_version,
                if_absent,
            } => {
                let key = key_field(limits, key, key_b64)?;
                let value = required("value", value, value_b64)?;
                limits.check_value("value", &value)?;
                Op::Put {
                    key,
                    value,
                    cond: WriteCond {
                        epoch,
                        if_version,
                        if_absent,
                    },
                }
            }
            OpReq::Delete {
                key,
                key_b64,
                epoch,
                if_version,
            } => Op::Delete {
                key: key_field(limits, key, key_b64)?,
                cond: WriteCond {
                    epoch,
                    if_version,
                    if_absent: false,
                },
            },
            OpReq::Incr {
                key,
                key_b64,
                delta,
                epoch,
            } => Op::incr(key_field(limits, key, key_b64)?, delta.unwrap_or(1)).with_epoch(epoch),
            OpReq::Checkpoint {
                entity,
                entity_b64,
                name,
                name_b64,
                data,
                data_b64,
                epoch,
            } => checkpoint_op(
                limits,
                required("entity", entity, entity_b64)?,
                required("name", name, name_b64)?,
                text_or_b64("data", data, data_b64)?.unwrap_or_default(),
                epoch,
            )?,
            OpReq::Get { key, key_b64 } => Op::Get {
                key: key_field(limits, key, key_b64)?,
            },
            OpReq::Txn(_) if in_txn => {
                return Err(ApiError::new(Code::InvalidOp, "transactions do not nest"))
            }
            OpReq::Txn(t) => t.into_op(limits)?,
        })
    }
}

impl TxnReq {
    pub fn into_op(self, limits: &Limits) -> Result<engine::Op, ApiError> {
        limits.check_ops(self.compares.len() + self.success.len() + self.failure.len())?;
        let compares = self
            .compares
            .into_iter()
            .map(|c| c.into_compare(limits))
            .collect::<Result<Vec<_>, _>>()?;
        let ops = |v: Vec<OpReq>| {
            v.into_iter()
                .map(|o| o.into_op(limits, true))
                .collect::<Result<Vec<_>, _>>()
        };
        Ok(engine::Op::Txn {
            compares,
            success: ops(self.success)?,
            failure: ops(self.failure)?,
        })
    }
}

impl CmpReq {
    fn engine(self) -> engine::CmpOp {
        match self {
            CmpReq::Eq => engine::CmpOp::Eq,
            CmpReq::Ne => engine::CmpOp::NotEq,
            CmpReq::Lt => engine::CmpOp::Less,
            CmpReq::Gt => engine::CmpOp::Greater,
        }
    }
}

impl CompareReq {
    fn into_compare(self, limits: &Limits) -> Result<engine::Compare, ApiError> {
        use engine::Compare;
        let CompareReq {
            key,
            key_b64,
            entity,
            entity_b64,
            target,
            op: cmp,
            value,
            value_b64,
            version,
            exists,
            epoch,
        } = self;
        let op = cmp.unwrap_or(CmpReq::Eq).engine();
        let number = |field: Option<u64>, name: &str, value: Option<Value>| match (field, value) {
            (Some(n), None) => Ok(n),
            (None, Some(v)) => v.as_u64().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "compare on {name}: value must be an unsigned integer"
                ))
            }),
            (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
                "compare on {name}: give {name} or value, not both"
            ))),
            (None, None) => Err(ApiError::bad_request(format!(
                "compare on {name}: {name} is required"
            ))),
        };
        if let Target::Epoch = target {
            if key.is_some() || key_b64.is_some() || value_b64.is_some() {
                return Err(ApiError::bad_request(
                    "an epoch compare names an entity, not a key",
                ));
            }
            let entity = required("entity", entity, entity_b64)?;
            entity_field(limits, &entity)?;
            return Ok(Compare::Epoch {
                entity,
                op,
                epoch: number(epoch, "epoch", value)?,
            });
        }
        if entity.is_some() || entity_b64.is_some() || epoch.is_some() {
            return Err(ApiError::bad_request(
                "only an epoch compare names an entity",
            ));
        }
        let key = key_field(limits, key, key_b64)?;
        Ok(match target {
            Target::Value => {
                let text = match value {
                    None => None,
                    Some(Value::String(s)) => Some(s),
                    Some(_) => {
                        return Err(ApiError::bad_request(
                            "compare on value: value must be a string (or use value_b64)",
                        ))
                    }
                };
                let value = required("value", text, value_b64)?;
                limits.check_value("value", &value)?;
                Compare::Value { key, op, value }
            }
            Target::Version => Compare::Version {
                key,
                op,
                ts: number(version, "version", value)?,
            },
            // Epoch returned above; kept in this match so it stays exhaustive.
            Target::Exists | Target::Epoch => {
                let wanted = match (exists, value) {
                    (Some(b), None) => b,
                    (None, Some(Value::Bool(b))) => b,
                    (None, None) => true,
                    _ => {
                        return Err(ApiError::bad_request(
                            "compare on exists: give exists (a bool)",
                        ))
                    }
                };
                let exists = match cmp {
                    None | Some(CmpReq::Eq) => wanted,
                    Some(CmpReq::Ne) => !wanted,
                    Some(_) => {
                        return Err(ApiError::bad_request(
                            "compare on exists: op must be eq or ne",
                        ))
                    }
                };
                Compare::Exists { key, exists }
            }
        })
    }
}

// ---------------------------------------------------------------------------------------------------
// Responses

/// `PUT /v1/kv/{key}` → `{"ts","epoch"}`.
#[derive(Debug, Serialize)]
pub struct WriteResp {
    pub ts: u64,
    pub epoch: u64,
}

/// `DELETE /v1/kv/{key}` → `{"ts"}` (+ whether the key existed).
#[derive(Debug, Serialize)]
pub struct DeleteResp {
    pub ts: u64,
    pub existed: bool,
}

/// `POST /v1/kv/{key}/incr` → `{"value","ts","epoch"}`.
#[derive(Debug, Serialize)]
pub struct IncrResp {
    pub value: i64,
    pub ts: u64,
    pub epoch: u64,
}

/// `POST /v1/entities/{entity}/checkpoint` → `{"epoch","ts"}`.
#[derive(Debug, Serialize)]
pub struct CheckpointResp {
    pub epoch: u64,
    pub ts: u64,
}

/// A byte string as `"<name>": "utf-8 text"` or, when it is not UTF-8, `"<name>_b64": "base64"`; flattened
/// into the enclosing object (keys, values, checkpoint data). An absent value (`Default`) writes nothing.
#[derive(Debug, Default)]
pub struct Text {
    name: &'static str,
    b64_name: &'static str,
    utf8: Option<String>,
    b64: Option<String>,
}

impl Text {
    fn new(name: &'static str, b64_name: &'static str, bytes: Vec<u8>) -> Self {
        let (utf8, b64) = match String::from_utf8(bytes) {
            Ok(s) => (Some(s), None),
            Err(e) => (None, Some(encode_b64(e.as_bytes()))),
        };
        Text {
            name,
            b64_name,
            utf8,
            b64,
        }
    }

    pub fn key(bytes: Vec<u8>) -> Self {
        Text::new("key", "key_b64", bytes)
    }

    pub fn value(bytes: Vec<u8>) -> Self {
        Text::new("value", "value_b64", bytes)
    }

    pub fn data(bytes: Vec<u8>) -> Self {
        Text::new("data", "data_b64", bytes)
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(None)?;
        if let Some(text) = &self.utf8 {
            map.serialize_entry(self.name, text)?;
        }
        if let Some(b64) = &self.b64 {
            map.serialize_entry(self.b64_name, b64)?;
        }
        map.end()
    }
}

/// One scanned key: `{"key","value","ts","epoch"}`.
#[derive(Debug, Serialize)]
pub struct ItemDto {
    #[serde(flatten)]
    pub key: Text,
    #[serde(flatten)]
    pub value: Text,
    pub ts: u64,
    pub epoch: u64,
}

impl ItemDto {
    pub fn new((key, v): (Vec<u8>, engine::Versioned)) -> Self {
        ItemDto {
            key: Text::key(key),
            value: Text::value(v.value),
            ts: v.ts,
            epoch: v.epoch,
        }
    }
}

/// Scans → `{"items":[...],"more"}`.
#[derive(Debug, Serialize)]
pub struct ScanResp {
    pub items: Vec<ItemDto>,
    pub more: bool,
    /// The snapshot the scan read (`null` = the latest applied state).
    pub at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_ms: Option<u64>,
}

/// `GET /v1/entities/{entity}` → `{"epoch","items","more"}`.
#[derive(Debug, Serialize)]
pub struct EntityResp {
    pub epoch: u64,
    pub items: Vec<ItemDto>,
    pub more: bool,
    pub at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stale_ms: Option<u64>,
}

/// `GET /v1/entities/{entity}/checkpoints/{name}` → `{"epoch","ts","data"}`.
#[derive(Debug, Serialize)]
pub struct CrossingResp {
    pub epoch: u64,
    pub ts: u64,
    #[serde(flatten)]
    pub data: Text,
    /// With `scope=global`: the site whose crossing it is (absent for this site's own, local answer).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
}

/// The outcome of one op inside a txn or a batch, tagged with the op kind.
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum OutcomeDto {
    Put {
        ts: u64,
        epoch: u64,
    },
    Delete {
        ts: u64,
        existed: bool,
    },
    Incr {
        value: i64,
        ts: u64,
        epoch: u64,
    },
    Checkpoint {
        epoch: u64,
        ts: u64,
    },
    Get {
        found: bool,
        #[serde(flatten)]
        value: Text,
        #[serde(skip_serializing_if = "Option::is_none")]
        ts: Option<u64>,
        #[serde(skip_serializing_if = "Option::is_none")]
        epoch: Option<u64>,
    },
    Txn {
        succeeded: bool,
        results: Vec<OutcomeDto>,
    },
    /// Only the sync worker proposes a sync cursor; listed so the mapping is total.
    SyncCursor {
        cursor: u64,
    },
}

impl From<engine::OpOutcome> for OutcomeDto {
    fn from(o: engine::OpOutcome) -> Self {
        use engine::OpOutcome as O;
        match o {
            O::Written { ts, epoch } => OutcomeDto::Put { ts, epoch },
            O::Deleted { ts, existed } => OutcomeDto::Delete { ts, existed },
            O::Incremented { value, ts, epoch } => OutcomeDto::Incr { value, ts, epoch },
            O::Checkpointed { epoch, ts } => OutcomeDto::Checkpoint { epoch, ts },
            O::Read(None) => OutcomeDto::Get {
                found: false,
                value: Text::default(),
                ts: None,
                epoch: None,
            },
            O::Read(Some(v)) => OutcomeDto::Get {
                found: true,
                value: Text::value(v.value),
                ts: Some(v.ts),
                epoch: Some(v.epoch),
            },
            O::Txn { succeeded, results } => OutcomeDto::Txn {
                succeeded,
                results: results.into_iter().map(OutcomeDto::from).collect(),
            },
            O::CursorRecorded { cursor } => OutcomeDto::SyncCursor { cursor },
        }
    }
}

/// `POST /v1/txn` → `{"succeeded","ts","results"}`.
#[derive(Debug, Serialize)]
pub struct TxnResp {
    pub succeeded: bool,
    pub ts: u64,
    pub results: Vec<OutcomeDto>,
}

/// One entry of a batch's results: the op's outcome, or `{"error":{...}}`.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum BatchItem {
    Ok(OutcomeDto),
    Err { error: Value },
}

/// `POST /v1/batch` → `{"ts","results"}`.
#[derive(Debug, Serialize)]
pub struct BatchResp {
    pub ts: u64,
    pub results: Vec<BatchItem>,
}

#[derive(Debug, Serialize)]
pub struct MemberDto {
    pub id: u64,
    pub peer_addr: String,
    pub client_addr: Option<String>,
    pub role: &'static str,
    pub commit: u64,
    pub applied: u64,
    pub healthy: bool,
}

/// `GET /v1/cluster` → `{"cluster_id","leader","term","members"}`.
#[derive(Debug, Serialize)]
pub struct ClusterDto {
    pub cluster_id: String,
    pub leader: Option<u64>,
    pub term: u64,
    pub members: Vec<MemberDto>,
}

impl From<MemberView> for MemberDto {
    fn from(m: MemberView) -> Self {
        MemberDto {
            id: m.id,
            peer_addr: m.peer_addr,
            client_addr: m.client_addr,
            role: match m.role {
                MemberRole::Leader => "leader",
                MemberRole::Follower => "follower",
                MemberRole::Learner => "learner",
                MemberRole::Candidate => "candidate",
            },
            commit: m.commit,
            applied: m.applied,
            healthy: m.healthy,
        }
    }
}

impl From<ClusterView> for ClusterDto {
    fn from(c: ClusterView) -> Self {
        ClusterDto {
            cluster_id: c.cluster_id,
            leader: c.leader,
            term: c.term,
            members: c.members.into_iter().map(MemberDto::from).collect(),
        }
    }
}

/// `POST /v1/cluster/leader` → `{"requested": true, "to"}`.
#[derive(Debug, Serialize)]
pub struct LeaderResp {
    pub requested: bool,
    pub to: Option<u64>,
}

/// `GET /healthz` → `{"status":"ok"}`.
#[derive(Debug, Serialize)]
pub struct HealthDto {
    pub status: &'static str,
}

/// `GET /readyz`.
#[derive(Debug, Serialize)]
pub struct ReadyDto {
    pub ready: bool,
    /// `ready`, `degraded` (ready, with an alarm: see `degraded`) or `not_ready`.
    pub status: &'static str,
    pub degraded: Vec<String>,
    pub leader_known: bool,
    pub applied_caught_up: bool,
    pub disk_writable: bool,
    pub detail: Vec<String>,
}

impl From<Readiness> for ReadyDto {
    fn from(r: Readiness) -> Self {
        ReadyDto {
            ready: r.ready(),
            status: match (r.ready(), r.degraded.is_empty()) {
                (false, _) => "not_ready",
                (true, true) => "ready",
                (true, false) => "degraded",
            },
            degraded: r.degraded,
            leader_known: r.leader_known,
            applied_caught_up: r.applied_caught_up,
            disk_writable: r.disk_writable,
            detail: r.detail,
        }
    }
}

/// `GET /v1/sync`: the federation's state (all null but `configured` and `message` without it).
#[derive(Debug, Serialize)]
pub struct SyncDto {
    pub configured: bool,
    pub message: &'static str,
    pub site: Option<String>,
    pub state: Option<&'static str>,
    pub cursor: Option<u64>,
    pub central_cursor: Option<u64>,
    pub lag_entries: Option<u64>,
    pub lag_seconds: Option<f64>,
    pub backlog_bytes: Option<u64>,
    pub backlog_quota_bytes: Option<u64>,
    pub over_quota: Option<bool>,
    pub last_error: Option<String>,
    pub backoff_ms: Option<u64>,
    pub breaker_open: Option<bool>,
    pub restarts: Option<u64>,
}

impl SyncDto {
    /// What a node without federation reports.
    pub fn not_configured() -> Self {
        SyncDto {
            configured: false,
            message: "upward federation is not configured on this node",
            site: None,
            state: None,
            cursor: None,
            central_cursor: None,
            lag_entries: None,
            lag_seconds: None,
            backlog_bytes: None,
            backlog_quota_bytes: None,
            over_quota: None,
            last_error: None,
            backoff_ms: None,
            breaker_open: None,
            restarts: None,
        }
    }
}

impl From<crate::http::SyncView> for SyncDto {
    fn from(v: crate::http::SyncView) -> Self {
        SyncDto {
            configured: true,
            message: "upward federation to TiKV",
            over_quota: Some(v.backlog_bytes > v.backlog_quota_bytes),
            site: Some(v.site),
            state: Some(v.state),
            cursor: Some(v.cursor),
            central_cursor: v.central_cursor,
            lag_entries: Some(v.lag_entries),
            lag_seconds: Some(v.lag_seconds),
            backlog_bytes: Some(v.backlog_bytes),
            backlog_quota_bytes: Some(v.backlog_quota_bytes),
            last_error: v.last_error,
            backoff_ms: Some(v.backoff_ms),
            breaker_open: Some(v.breaker_open),
            restarts: Some(v.restarts),
        }
    }
}

/// `POST /v1/sync/pause|resume` → `{"paused"}`.
#[derive(Debug, Serialize)]
pub struct SyncPauseResp {
    pub paused: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_have_their_spec_names() {
        let names: Vec<_> = [
            MemberRole::Leader,
            MemberRole::Follower,
            MemberRole::Learner,
            MemberRole::Candidate,
        ]
        .into_iter()
        .map(|role| {
            MemberDto::from(MemberView {
                id: 1,
                peer_addr: "p".into(),
                client_addr: None,
                role,
                commit: 0,
                applied: 0,
                healthy: true,
            })
            .role
        })
        .collect();
        assert_eq!(names, ["leader", "follower", "learner", "candidate"]);
    }

    #[test]
    fn bytes_are_text_or_base64() {
        let item = serde_json::to_value(ItemDto::new((
            vec![0xff],
            engine::Versioned {
                value: b"v".to_vec(),
                ts: 5,
                epoch: 1,
            },
        )))
        .unwrap();
        assert_eq!(
            item,
            serde_json::json!({"key_b64": "/w==", "value": "v", "ts": 5, "epoch": 1})
        );
    }
}
