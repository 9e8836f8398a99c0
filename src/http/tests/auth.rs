//! Client auth in-process: every route of [`ROUTES`] × {no token, bad token, read, write, admin} against
//! the fake backend, the challenge headers, auth before the body and before forwarding, forwarded
//! requests authenticated again by the leader, `kvs-forwarded` granting nothing, reload.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use warp::http::Method;
use warp::test::RequestBuilder;

use super::fake::{FakeBackend, Mode};
use super::{http, Api, Resp, Server};
use crate::http::auth::{Access, Auth, MetricsAccess, Role, TokenEntry, Tokens};
use crate::http::routes::ROUTES;
use crate::http::Limits;

pub const READ: &str = "kvs_test-read-token";
pub const WRITE: &str = "kvs_test-write-token";
pub const ADMIN: &str = "kvs_test-admin-token";
const BAD: &str = "kvs_not-a-known-token";

fn tokens() -> Tokens {
    Tokens::from_entries(vec![
        TokenEntry::new("reader", Role::Read, READ.as_bytes()),
        TokenEntry::new("writer", Role::Write, WRITE.as_bytes()),
        TokenEntry::new("ops", Role::Admin, ADMIN.as_bytes()),
    ])
}

fn auth(metrics: MetricsAccess) -> Auth {
    Auth::with_tokens(PathBuf::from("/unused"), tokens(), metrics)
}

/// The credentials of the matrix: a label, the `Authorization` header, the role it carries.
const CREDENTIALS: [(&str, Option<&str>, Option<Role>); 5] = [
    ("no token", None, None),
    ("bad token", Some(BAD), None),
    ("read", Some(READ), Some(Role::Read)),
    ("write", Some(WRITE), Some(Role::Write)),
    ("admin", Some(ADMIN), Some(Role::Admin)),
];

/// What a request with `role` (None: no or a bad token) must get on a route of `access`:
/// `Some((status, code))` for a refusal, `None` when it must be let through.
fn expected(
    access: Access,
    metrics: MetricsAccess,
    role: Option<Role>,
) -> Option<(u16, &'static str)> {
    let needed = match access {
        Access::Open => return None,
        Access::Metrics if metrics == MetricsAccess::Open => return None,
        Access::Metrics => Role::Read,
        Access::Token(r) => r,
    };
    match role {
        None => Some((401, "unauthorized")),
        Some(r) if r < needed => Some((403, "forbidden")),
        Some(_) => None,
    }
}

/// `req` with `Authorization: Bearer <token>`, if a token is given.
fn with_token(req: RequestBuilder, token: Option<&str>) -> RequestBuilder {
    match token {
        Some(t) => req.header("authorization", format!("Bearer {t}")),
        None => req,
    }
}

fn request(method: &Method, path: &str, token: Option<&str>) -> RequestBuilder {
    let req = warp::test::request()
        .method(method.as_str())
        .path(path)
        .header("content-type", "application/json")
        .body("{}");
    with_token(req, token)
}

fn delete(path: &str, token: &str) -> RequestBuilder {
    with_token(
        warp::test::request().method("DELETE").path(path),
        Some(token),
    )
}

fn check_refusal(r: &Resp, want: (u16, &str), what: &str) {
    assert_eq!(r.err(), (want.0, want.1.to_owned()), "{what}: {:?}", r.body);
    let challenge = r
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(
        challenge.starts_with("Bearer realm=\"kvs-raft\""),
        "{what}: {challenge}"
    );
    let body = String::from_utf8_lossy(&r.body);
    for secret in [READ, WRITE, ADMIN, BAD] {
        assert!(
            !body.contains(secret),
            "{what}: the answer repeats a token: {body}"
        );
    }
}

async fn matrix(metrics: MetricsAccess) -> std::collections::BTreeMap<u16, usize> {
    // One node for the whole matrix: a request let through may change its state (a member removed,
    // a key written), which only changes which success or 4xx the next one gets.
    let api = Api::with_auth(Limits::default(), auth(metrics));
    let mut tally = std::collections::BTreeMap::new();
    for route in ROUTES {
        for (label, token, role) in CREDENTIALS {
            let path = super::route_table::instantiate(route.template);
            let what = format!("{} {path} with {label}", route.method);
            let before = (api.fake.proposals(), api.fake.value(b"k"));
            let r = api.send(request(&route.method, &path, token)).await;
            *tally.entry(r.status.as_u16()).or_insert(0) += 1;
            match expected(route.access, metrics, role) {
                Some(want) => {
                    check_refusal(&r, want, &what);
                    let after = (api.fake.proposals(), api.fake.value(b"k"));
                    assert_eq!(before, after, "{what}: refused but changed something");
                }
                None => {
                    // Served by the route: no auth refusal, not the unknown-route answer, no 5xx.
                    let code = serde_json::from_slice::<serde_json::Value>(&r.body)
                        .ok()
                        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
                    assert!(
                        r.status.as_u16() < 500
                            && !matches!(
                                code.as_deref(),
                                Some(
                                    "unauthorized"
                                        | "forbidden"
                                        | "not_found"
                                        | "method_not_allowed"
                                )
                            ),
                        "{what}: not let through: {} {:?}",
                        r.status,
                        r.body
                    );
                }
            }
        }
    }
    tally
}

#[tokio::test]
async fn every_route_with_every_credential() {
    for metrics in [MetricsAccess::Open, MetricsAccess::Read] {
        let tally = matrix(metrics).await;
        let n: usize = tally.values().sum();
        assert_eq!(n, ROUTES.len() * CREDENTIALS.len());
        // 21 routes need a token: no token and a bad one are 401 on each (and /metrics when it needs one).
        let protected = 21 + usize::from(metrics == MetricsAccess::Read);
        assert_eq!(tally.get(&401).copied(), Some(2 * protected), "{tally:?}");
        eprintln!(
            "auth matrix (metrics {}): {n} requests, each as expected; by status {tally:?}",
            metrics.name()
        );
    }
}

#[tokio::test]
async fn the_roles_a_route_needs() {
    use Role::{Admin, Read, Write};
    let needs = |m: Method, t: &str| {
        ROUTES
            .iter()
            .find(|r| r.method == m && r.template == t)
            .map(|r| r.access)
            .unwrap_or_else(|| panic!("{m} {t} not in ROUTES"))
    };
    for (m, t, access) in [
        (Method::GET, "/v1/kv/{key}", Access::Token(Read)),
        (Method::GET, "/v1/kv", Access::Token(Read)),
        (Method::GET, "/v1/cluster", Access::Token(Read)),
        (Method::GET, "/v1/sync", Access::Token(Read)),
        (Method::PUT, "/v1/kv/{key}", Access::Token(Write)),
        (Method::POST, "/v1/txn", Access::Token(Write)),
        (Method::POST, "/v1/batch", Access::Token(Write)),
        (
            Method::POST,
            "/v1/entities/{entity}/checkpoint",
            Access::Token(Write),
        ),
        (Method::POST, "/v1/cluster/members", Access::Token(Admin)),
        (
            Method::DELETE,
            "/v1/cluster/members/{id}",
            Access::Token(Admin),
        ),
        (Method::POST, "/v1/cluster/leader", Access::Token(Admin)),
        (Method::GET, "/v1/snapshot", Access::Token(Admin)),
        (Method::POST, "/v1/sync/pause", Access::Token(Admin)),
        (Method::POST, "/v1/sync/resume", Access::Token(Admin)),
        (Method::GET, "/metrics", Access::Metrics),
        (Method::GET, "/healthz", Access::Open),
        (Method::GET, "/readyz", Access::Open),
    ] {
        assert_eq!(needs(m.clone(), t), access, "{m} {t}");
    }
}

#[tokio::test]
async fn the_answers_let_through_are_the_routes_own() {
    let api = Api::with_auth(Limits::default(), auth(MetricsAccess::Open));
    let put = api
        .send(
            warp::test::request()
                .method("PUT")
                .path("/v1/kv/k")
                .header("authorization", format!("Bearer {WRITE}"))
                .body("v"),
        )
        .await;
    assert_eq!(put.status, 200, "{:?}", put.body);
    let get = api
        .send(request(&Method::GET, "/v1/kv/k", Some(READ)))
        .await;
    assert_eq!((get.status.as_u16(), &get.body[..]), (200, &b"v"[..]));
    let members = api.send(delete("/v1/cluster/members/3", ADMIN)).await;
    assert_eq!(members.status, 200, "{:?}", members.body);
    // A 403 says which role the token has and which the route needs.
    let r = api.send(delete("/v1/cluster/members/2", WRITE)).await;
    assert_eq!(r.err(), (403, "forbidden".into()));
    assert_eq!(
        (
            r.json()["error"]["role"].as_str(),
            r.json()["error"]["required_role"].as_str()
        ),
        (Some("write"), Some("admin"))
    );
    assert!(r.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("\"writer\""));
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"kvs-raft\", error=\"insufficient_scope\"")
    );
    let r = api.send(request(&Method::GET, "/v1/kv/k", Some(BAD))).await;
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"kvs-raft\", error=\"invalid_token\"")
    );
    let r = api.send(request(&Method::GET, "/v1/kv/k", None)).await;
    assert_eq!(
        r.header("www-authenticate"),
        Some("Bearer realm=\"kvs-raft\"")
    );
    // Unknown routes and methods stay 404/405 (nothing to authorize).
    let r = api.send(request(&Method::GET, "/v1/nope", None)).await;
    assert_eq!(r.err(), (404, "not_found".into()));
    let r = api.send(request(&Method::PATCH, "/v1/kv/k", None)).await;
    assert_eq!(r.err(), (405, "method_not_allowed".into()));
}

#[tokio::test]
async fn auth_comes_before_the_body() {
    let limits = Limits {
        max_body: 1024,
        max_value: 1024,
        ..Limits::default()
    };
    let api = Api::with_auth(limits, auth(MetricsAccess::Open));
    // A body over the limit: without a token the answer is 401, not 413.
    let big = vec![b'x'; 4096];
    let put = |token: Option<&str>| {
        let req = warp::test::request()
            .method("PUT")
            .path("/v1/kv/k")
            .body(big.clone());
        with_token(req, token)
    };
    assert_eq!(
        api.send(put(None)).await.err(),
        (401, "unauthorized".into())
    );
    assert_eq!(
        api.send(put(Some(READ))).await.err(),
        (403, "forbidden".into())
    );
    assert_eq!(
        api.send(put(Some(WRITE))).await.err(),
        (413, "too_large".into())
    );
    assert_eq!(api.fake.proposals(), 0);
    assert_eq!(api.fake.value(b"k"), None);
}

#[tokio::test]
async fn the_forwarded_marker_grants_nothing() {
    let api = Api::with_auth(Limits::default(), auth(MetricsAccess::Open));
    for (token, want) in [(None, 401), (Some(BAD), 401), (Some(READ), 403)] {
        let req = warp::test::request()
            .method("PUT")
            .path("/v1/kv/k")
            .header("kvs-forwarded", "1")
            .body("v");
        assert_eq!(
            api.send(with_token(req, token)).await.status,
            want,
            "{token:?}"
        );
    }
    assert_eq!((api.fake.proposals(), api.fake.value(b"k")), (0, None));
}

/// `PUT url` with body `v` over a real connection, with `token` as its bearer token.
async fn put_over_http(url: &str, token: Option<&str>) -> Resp {
    let header = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = header
        .iter()
        .map(|h| ("authorization", h.as_str()))
        .collect();
    http("PUT", url, b"v", &headers).await
}

/// A "leader" that only counts the connections it gets.
async fn counting_listener() -> (
    std::net::SocketAddr,
    Arc<AtomicUsize>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (addr, count, task)
}

#[tokio::test]
async fn a_follower_authenticates_before_forwarding() {
    let (leader, connections, task) = counting_listener().await;
    let follower = FakeBackend::new();
    follower.set_mode(Mode::NotLeader(Some(leader.to_string())));
    let a = Server::start_with_auth(follower, Limits::default(), auth(MetricsAccess::Open)).await;
    for (token, want) in [(None, 401), (Some(BAD), 401), (Some(READ), 403)] {
        let r = put_over_http(&a.url("/v1/kv/k"), token).await;
        assert_eq!(r.status, want, "{token:?}: {:?}", r.body);
        assert_eq!(r.header("kvs-forwarded-to"), None);
    }
    assert_eq!(
        connections.load(Ordering::SeqCst),
        0,
        "a refused request reached the leader"
    );
    // An authorized write is forwarded (the counting leader does not answer: 503/504).
    let r = put_over_http(&a.url("/v1/kv/k"), Some(WRITE)).await;
    assert!(r.status.is_server_error(), "{:?}", r.body);
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    a.shutdown().await;
    task.abort();
}

#[tokio::test]
async fn the_leader_authenticates_forwarded_requests_again() {
    // The leader knows only the admin token; the follower knows all three.
    let leader = FakeBackend::new();
    let leader_auth = Auth::with_tokens(
        "/unused".into(),
        Tokens::from_entries(vec![TokenEntry::new("ops", Role::Admin, ADMIN.as_bytes())]),
        MetricsAccess::Open,
    );
    let b = Server::start_with_auth(leader.clone(), Limits::default(), leader_auth).await;
    let follower = FakeBackend::new();
    follower.set_mode(Mode::NotLeader(Some(b.addr.to_string())));
    let a = Server::start_with_auth(
        follower.clone(),
        Limits::default(),
        auth(MetricsAccess::Open),
    )
    .await;

    // Passes the follower, refused by the leader: the caller's identity travelled, not a trust mark.
    let r = put_over_http(&a.url("/v1/kv/k"), Some(WRITE)).await;
    assert_eq!(r.err(), (401, "unauthorized".into()));
    assert_eq!(
        r.header("kvs-forwarded-to"),
        Some(b.addr.to_string().as_str())
    );
    assert_eq!(leader.value(b"k"), None);
    // A token both know goes through.
    let r = put_over_http(&a.url("/v1/kv/k"), Some(ADMIN)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.header("kvs-forwarded-to"),
        Some(b.addr.to_string().as_str())
    );
    assert_eq!(leader.value(b"k").as_deref(), Some(&b"v"[..]));
    assert_eq!(follower.value(b"k"), None);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn reload_swaps_tokens_and_a_bad_file_keeps_them() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    let write = |text: String| {
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    };
    let line = |n: &str, r: Role, t: &str| TokenEntry::new(n, r, t.as_bytes()).line() + "\n";
    write(line("a", Role::Read, "one"));
    let a = Auth::with_tokens(
        path.clone(),
        crate::http::auth::load_file(&path).unwrap(),
        MetricsAccess::Open,
    );
    let api_ok = |token: &str| {
        let mut h = warp::http::HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        a.check(Access::Token(Role::Read), &h).is_ok()
    };
    assert!(api_ok("one") && !api_ok("two"));
    write(line("b", Role::Read, "two"));
    assert_eq!(a.reload(), Ok(1));
    assert!(!api_ok("one") && api_ok("two"));
    write("b read sha256:beef\n".into());
    assert!(a.reload().unwrap_err().contains("line 1"));
    assert!(api_ok("two"), "a bad file must keep the tokens in force");
    write(line("c", Role::Read, "three"));
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
    assert!(a.reload().unwrap_err().contains("write"));
    assert!(api_ok("two") && !api_ok("three"));
}

#[tokio::test]
async fn the_token_is_never_in_a_debug_print_of_the_request() {
    // The request as every handler gets it (the filter the routes use).
    let origin = warp::test::request()
        .method("GET")
        .path("/v1/kv/k")
        .header("authorization", format!("Bearer {ADMIN}"))
        .filter(&crate::http::routes::origin(
            std::time::Duration::from_secs(5),
        ))
        .await
        .expect("the origin filter is infallible");
    let shown = format!("{origin:?}");
    assert!(!shown.contains(ADMIN), "{shown}");
    assert!(shown.contains("Sensitive"), "{shown}");
    // It is still forwarded as it came.
    assert_eq!(
        origin
            .headers
            .get("authorization")
            .map(|v| v.as_bytes().to_vec()),
        Some(format!("Bearer {ADMIN}").into_bytes())
    );
}
