//! Fuzz properties (proptest; no nightly toolchain, so no cargo-fuzz) of what a client controls:
//!
//! * arbitrary bytes and structured-but-hostile JSON (every DTO field name, wrong types, extreme
//!   numbers, deep nesting, long strings, truncation) against every request DTO decoder and its
//!   conversion to engine ops;
//! * arbitrary strings against the query, path-key, base64 and `Authorization` parsers;
//! * arbitrary HTTP request bytes, raw and structured (methods, paths, headers, lying
//!   `Content-Length`s up to `u64::MAX`, tokens good and bad), against a running server on loopback.
//!
//! Each must not panic, must answer a refusal as a 4xx (never a 5xx), and must keep the server serving.
//! Sizes are capped by the strategies (inputs ≤ 8 KiB) and by the server's limits (a `Content-Length`
//! over the limit is refused before anything is read or allocated).
//!
//! Run time is bounded: 256 cases per property by default (one connection each for the server), a few
//! seconds in all. `PROPTEST_CASES=N` sets every property's case count for longer runs,
//! e.g. `PROPTEST_CASES=20000 cargo nextest run -E 'test(fuzz_)'`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Map, Number, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use warp::http::{HeaderMap, HeaderValue};

use super::auth::{ADMIN, READ, WRITE};
use super::fake::FakeBackend;
use super::Server;
use crate::http::auth::{Access, Auth, MetricsAccess, Role, TokenEntry, Tokens};
use crate::http::body::parse_json;
use crate::http::dto::{AddMemberReq, BatchReq, CheckpointReq, LeaderReq, OpReq, TxnReq};
use crate::http::error::ApiError;
use crate::http::params::{decode_b64, path_key, path_segment, request_key, Query};
use crate::http::Limits;

/// `PROPTEST_CASES` if set, else `default`.
fn config(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn limits() -> Limits {
    Limits {
        max_body: 8 << 10,
        max_key: 64,
        max_value: 1024,
        max_ops: 16,
        ..Limits::default()
    }
}

fn refusal_is_4xx(e: &ApiError, what: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        e.status().is_client_error(),
        "{what}: refused with {} {}: {}",
        e.status(),
        e.code,
        e.message
    );
    Ok(())
}

/// Every request DTO of the API, decoded from `body` and converted as its handler does.
fn decode_all(body: &[u8]) -> Result<usize, TestCaseError> {
    let headers = HeaderMap::new();
    let limits = limits();
    let mut decoded = 0;
    macro_rules! each {
        ($t:ty, $convert:expr) => {
            match parse_json::<$t>(&headers, body) {
                Ok(v) => {
                    decoded += 1;
                    #[allow(clippy::redundant_closure_call)]
                    if let Err(e) = ($convert)(v) {
                        refusal_is_4xx(&e, stringify!($t))?;
                    }
                }
                Err(e) => refusal_is_4xx(&e, stringify!($t))?,
            }
        };
    }
    each!(CheckpointReq, |r: CheckpointReq| {
        crate::http::dto::text_or_b64("name", r.name, r.name_b64)
            .and_then(|_| crate::http::dto::text_or_b64("data", r.data, r.data_b64))
            .map(drop)
    });
    each!(TxnReq, |r: TxnReq| r.into_op(&limits).map(drop));
    each!(BatchReq, |r: BatchReq| r
        .ops
        .into_iter()
        .try_for_each(|o| o.into_op(&limits, false).map(drop)));
    each!(OpReq, |r: OpReq| r.into_op(&limits, false).map(drop));
    each!(AddMemberReq, |_r: AddMemberReq| Ok::<(), ApiError>(()));
    each!(LeaderReq, |_r: LeaderReq| Ok::<(), ApiError>(()));
    Ok(decoded)
}

/// The names a hostile client would try: every field of every DTO, and some that are none.
const FIELDS: &[&str] = &[
    "op",
    "key",
    "key_b64",
    "value",
    "value_b64",
    "epoch",
    "if_version",
    "if_absent",
    "delta",
    "entity",
    "entity_b64",
    "name",
    "name_b64",
    "data",
    "data_b64",
    "compares",
    "success",
    "failure",
    "ops",
    "target",
    "exists",
    "version",
    "peer_addr",
    "client_addr",
    "learner",
    "id",
    "to",
    "__proto__",
    "",
];
const WORDS: &[&str] = &[
    "put",
    "delete",
    "incr",
    "checkpoint",
    "get",
    "txn",
    "value",
    "version",
    "exists",
    "epoch",
    "eq",
    "==",
    "<",
    "gt",
    "ne",
    "lt",
    "/w==",
    "_w",
    "!!",
    "a/b",
    "\u{0}",
    "é",
];

fn hostile_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        prop_oneof![
            Just(0u64),
            Just(1),
            Just(u64::MAX),
            Just(u64::MAX - 1),
            any::<u64>()
        ]
        .prop_map(|n| Value::Number(n.into())),
        prop_oneof![Just(i64::MIN), Just(-1i64), any::<i64>()]
            .prop_map(|n| Value::Number(n.into())),
        any::<f64>().prop_map(|f| Number::from_f64(f).map_or(Value::Null, Value::Number)),
        proptest::sample::select(WORDS).prop_map(|w| Value::String(w.to_owned())),
        ".{0,80}".prop_map(Value::String),
        (0usize..3000).prop_map(|n| Value::String("k".repeat(n))),
    ]
}

fn hostile_json() -> impl Strategy<Value = Value> {
    hostile_leaf().prop_recursive(6, 96, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            proptest::collection::vec(
                (
                    prop_oneof![
                        4 => proptest::sample::select(FIELDS).prop_map(str::to_owned),
                        1 => "[a-z_]{1,12}",
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// JSON a client could send as a body: a hostile value, often wrapped as an op, a batch or a txn, or a
/// hostile leaf in a field of a well-formed request (so that a good share of the bodies gets past the
/// JSON shape into the DTOs' own checks: with only the nested values, one CI run of 256 cases decoded
/// none, and the assertion below failed).
fn hostile_body() -> impl Strategy<Value = Vec<u8>> {
    (
        hostile_json(),
        hostile_leaf(),
        0u8..8,
        any::<prop::sample::Index>(),
        any::<bool>(),
    )
        .prop_map(|(v, leaf, wrap, cut, truncate)| {
            let v = match wrap {
                0 => v,
                1 => serde_json::json!({"ops": [v]}),
                2 => serde_json::json!({"success": [v], "compares": [v]}),
                3 => serde_json::json!({"op": "txn", "success": [v]}),
                4 => serde_json::json!({"ops": [{"op": "txn", "success": [v], "failure": [v]}]}),
                5 => serde_json::json!({"op": "put", "key": leaf, "value": "v"}),
                6 => serde_json::json!({"ops": [{"op": "put", "key": "k", "value": leaf}]}),
                _ => serde_json::json!({"to": leaf}),
            };
            let mut bytes = serde_json::to_vec(&v).unwrap_or_default();
            if truncate && !bytes.is_empty() {
                bytes.truncate(cut.index(bytes.len()));
            }
            bytes
        })
}

#[test]
fn fuzz_dto_decoders_take_arbitrary_bytes() {
    let mut runner = TestRunner::new(config(256));
    runner
        .run(&proptest::collection::vec(any::<u8>(), 0..4096), |bytes| {
            decode_all(&bytes).map(drop)
        })
        .unwrap();
}

#[test]
fn fuzz_dto_decoders_take_hostile_json() {
    let mut runner = TestRunner::new(config(256));
    let decoded = AtomicUsize::new(0);
    runner
        .run(&hostile_body(), |bytes| {
            decoded.fetch_add(decode_all(&bytes)?, Ordering::Relaxed);
            Ok(())
        })
        .unwrap();
    // The strategy reaches past the JSON syntax into the DTOs' own checks.
    assert!(
        decoded.load(Ordering::Relaxed) > 0,
        "no hostile body decoded into any DTO"
    );
    // Nesting deeper than serde_json's limit is a 400, not a stack overflow.
    let deep = format!("{}{}", "{\"ops\":[".repeat(5000), "]}".repeat(5000));
    assert!(decode_all(deep.as_bytes()).is_ok());
}

#[test]
fn fuzz_query_and_path_parsers() {
    const NAMES: &[&str] = &[
        "at",
        "consistency",
        "key_b64",
        "epoch",
        "if_version",
        "if_absent",
        "delta",
        "limit",
        "prefix",
        "prefix_b64",
        "start",
        "start_b64",
        "end",
        "end_b64",
    ];
    let raw = prop_oneof![
        ".{0,200}",
        "([a-z_]{1,10}(=[a-zA-Z0-9%+/=_-]{0,20})?&){0,8}",
        proptest::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| b.iter().map(|x| format!("%{x:02X}")).collect::<String>()),
    ];
    let mut runner = TestRunner::new(config(256));
    runner
        .run(&(raw.clone(), raw), |(query, path)| {
            match Query::parse(&query, NAMES) {
                Ok(q) => {
                    for name in NAMES {
                        for e in [
                            q.u64(name).err(),
                            q.i64(name).err(),
                            q.usize(name).err(),
                            q.flag(name).err(),
                            q.bytes(name).err(),
                        ]
                        .into_iter()
                        .flatten()
                        {
                            refusal_is_4xx(&e, name)?;
                        }
                    }
                    if let Err(e) = q.consistency() {
                        refusal_is_4xx(&e, "consistency")?;
                    }
                    if let Err(e) = request_key(&path, &q) {
                        refusal_is_4xx(&e, "request_key")?;
                    }
                }
                Err(e) => refusal_is_4xx(&e, "query")?,
            }
            for r in [
                path_key(&path),
                path_segment("entity", &path),
                decode_b64("key_b64", &query),
            ] {
                if let Err(e) = r {
                    refusal_is_4xx(&e, "path/base64")?;
                }
            }
            Ok(())
        })
        .unwrap();
}

fn fuzz_auth() -> Auth {
    Auth::with_tokens(
        "/unused".into(),
        Tokens::from_entries(vec![
            TokenEntry::new("reader", Role::Read, READ.as_bytes()),
            TokenEntry::new("writer", Role::Write, WRITE.as_bytes()),
            TokenEntry::new("ops", Role::Admin, ADMIN.as_bytes()),
        ]),
        MetricsAccess::Open,
    )
}

#[test]
fn fuzz_authorization_headers() {
    let auth = fuzz_auth();
    let header = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..300),
        ("[Bb][Ee][Aa][Rr][Ee][Rr]|Basic|", "[ \t]{0,3}", ".{0,80}")
            .prop_map(|(s, sp, t)| format!("{s}{sp}{t}").into_bytes()),
    ];
    let mut runner = TestRunner::new(config(256));
    runner
        .run(&proptest::collection::vec(header, 0..3), |values| {
            let mut headers = HeaderMap::new();
            for v in &values {
                if let Ok(v) = HeaderValue::from_bytes(v) {
                    headers.append("authorization", v);
                }
            }
            // Only one header carrying exactly a known token may pass.
            let known = headers.len() == 1
                && headers.get("authorization").is_some_and(|v| {
                    let t = v.as_bytes();
                    t.len() > 7
                        && t[..6].eq_ignore_ascii_case(b"bearer")
                        && t[6] == b' '
                        && [READ, WRITE, ADMIN]
                            .iter()
                            .any(|k| t[7..].trim_ascii() == k.as_bytes())
                });
            let passed = auth.check(Access::Token(Role::Read), &headers).is_ok();
            prop_assert_eq!(passed, known, "{:?}", values);
            Ok(())
        })
        .unwrap();
}

/// One request as bytes: structured (a method, a path, headers, a body, any of them hostile) or raw.
fn request_bytes() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        4 => proptest::sample::select(vec![
            "GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"
        ])
        .prop_map(str::to_owned),
        1 => "[A-Z]{0,10}",
    ];
    let path = prop_oneof![
        4 => proptest::sample::select(vec![
            "/v1/kv",
            "/v1/kv/k",
            "/v1/kv/a/b/incr",
            "/v1/kv/incr",
            "/v1/txn",
            "/v1/batch",
            "/v1/entities/e",
            "/v1/entities/e/checkpoint",
            "/v1/entities/e/checkpoints/c",
            "/v1/cluster",
            "/v1/cluster/members",
            "/v1/cluster/members/2",
            "/v1/cluster/leader",
            "/v1/sync",
            "/metrics",
            "/healthz",
            "/readyz",
        ])
        .prop_map(str::to_owned),
        // Characters a URI may carry (percent-escapes included, valid or not) ...
        2 => "/[A-Za-z0-9._~!$&'()*+,;=:@%/-]{0,60}",
        // ... and rarely any printable ones, which the HTTP parser refuses.
        1 => "/[ -~]{0,60}",
    ];
    let query = prop_oneof![
        3 => Just(String::new()),
        2 => proptest::sample::select(vec![
            "?at=1", "?consistency=stale", "?key_b64=aw==", "?prefix=a&limit=2", "?delta=-5",
            "?epoch=0&if_absent", "?at=18446744073709551616",
        ])
        .prop_map(str::to_owned),
        1 => "\\?[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,60}",
    ];
    let auth = prop_oneof![
        Just(None),
        proptest::sample::select(vec![READ, WRITE, ADMIN, "kvs_bad"])
            .prop_map(|t| Some(format!("Bearer {t}"))),
        "[ -~]{0,40}".prop_map(Some),
    ];
    // Mostly the body's true length; sometimes a lie.
    let length = prop_oneof![
        6 => Just(None),
        1 => Just(Some("18446744073709551615".to_owned())),
        1 => Just(Some("99999999999999999999999".to_owned())),
        1 => Just(Some("-1".to_owned())),
        1 => (0u64..20_000).prop_map(|n| Some(n.to_string())),
    ];
    let content_type = prop_oneof![
        Just(None),
        Just(Some("application/json")),
        Just(Some("text/plain"))
    ];
    let body = prop_oneof![
        hostile_body(),
        proptest::collection::vec(any::<u8>(), 0..2048)
    ];
    let structured = (method, path, query, auth, length, content_type, body).prop_map(
        |(m, p, q, a, l, c, b)| {
            let mut head = format!("{m} {p}{q} HTTP/1.1\r\nhost: fuzz\r\n");
            if let Some(a) = a {
                head.push_str(&format!("authorization: {a}\r\n"));
            }
            let declared = l.unwrap_or_else(|| b.len().to_string());
            head.push_str(&format!("content-length: {declared}\r\n"));
            if let Some(c) = c {
                head.push_str(&format!("content-type: {c}\r\n"));
            }
            head.push_str("connection: close\r\n\r\n");
            let mut bytes = head.into_bytes();
            bytes.extend_from_slice(&b);
            bytes
        },
    );
    prop_oneof![
        3 => structured,
        1 => proptest::collection::vec(any::<u8>(), 0..2048),
    ]
}

/// The status of the first response in `bytes`, if there is one.
fn status_of(bytes: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(bytes.get(..12)?).ok()?;
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn fuzz_raw_requests_against_a_server() {
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&panics);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        previous(info);
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let limits = Limits {
        body_read_timeout: Duration::from_millis(300),
        header_read_timeout: Duration::from_millis(300),
        ..limits()
    };
    let server = rt.block_on(Server::start_with_auth(
        FakeBackend::new(),
        limits,
        fuzz_auth(),
    ));
    let addr = server.addr;
    let statuses = std::sync::Mutex::new(std::collections::BTreeMap::<u16, usize>::new());
    let mut runner = TestRunner::new(config(256));
    runner
        .run(&request_bytes(), |bytes| {
            let answer = rt.block_on(async {
                let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
                // The server may close early (a refused head): a failed write is an answer too.
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
                let mut got = Vec::new();
                let read =
                    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut got)).await;
                (read.is_ok(), got)
            });
            prop_assert!(answer.0, "no answer and no close within 5 s");
            if let Some(status) = status_of(&answer.1) {
                *statuses.lock().unwrap().entry(status).or_default() += 1;
                prop_assert!(
                    status < 500,
                    "answered {status}: {}",
                    String::from_utf8_lossy(&answer.1)
                );
            }
            Ok(())
        })
        .unwrap();
    // Still serving, and nothing panicked on the way.
    let alive = rt.block_on(super::http("GET", &server.url("/healthz"), b"", &[]));
    assert_eq!(alive.status, 200);
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a request made the server panic"
    );
    eprintln!("fuzz: answers by status {:?}", statuses.lock().unwrap());
    rt.block_on(server.shutdown());
}
