//! In-process tests of the HTTP layer: every route and every error code through `warp::test`, against
//! [`fake::FakeBackend`]; forwarding and the server loop over real loopback sockets.

mod auth;
mod bad_input;
mod cluster_ops;
mod entities;
mod errors;
mod fake;
mod forward;
mod fuzz;
mod kv;
mod route_table;
mod serve;
mod snapshot;
mod txn_batch;

use bytes::Bytes;
use serde_json::Value;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::auth::Auth;
use super::limits::Limits;
use super::routes::routes_with_auth;
use fake::FakeBackend;

/// A response, decoded for assertions.
#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// `(status, error code)`.
    pub fn err(&self) -> (u16, String) {
        let code = self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {:?}", self.json()))
            .to_owned();
        (self.status.as_u16(), code)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn header_u64(&self, name: &str) -> u64 {
        self.header(name)
            .unwrap_or_else(|| panic!("no {name} header"))
            .parse()
            .expect("numeric header")
    }
}

/// Requests against one instance of the routes (one context: metrics, proposal bound) over one fake.
pub struct Api {
    pub fake: FakeBackend,
    filter: BoxedFilter<(Response,)>,
}

impl Api {
    pub fn new() -> Api {
        Api::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Api {
        Api::with_auth(limits, Auth::off())
    }

    pub fn with_auth(limits: Limits, auth: Auth) -> Api {
        let fake = FakeBackend::new();
        let filter = routes_with_auth(fake.clone(), limits, auth)
            .map(Reply::into_response)
            .boxed();
        Api { fake, filter }
    }

    pub async fn send(&self, req: warp::test::RequestBuilder) -> Resp {
        let res = req.reply(&self.filter).await;
        let (parts, body) = res.into_parts();
        Resp {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Resp {
        self.send(warp::test::request().method("GET").path(path))
            .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(warp::test::request().method("DELETE").path(path))
            .await
    }

    pub async fn put(&self, path: &str, body: impl AsRef<[u8]>) -> Resp {
        self.send(
            warp::test::request()
                .method("PUT")
                .path(path)
                .body(body.as_ref()),
        )
        .await
    }

    /// POST with a JSON body (`Content-Type: application/json`).
    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.post_raw(path, serde_json::to_vec(body).expect("json"))
            .await
    }

    pub async fn post_raw(&self, path: &str, body: impl AsRef<[u8]>) -> Resp {
        self.send(
            warp::test::request()
                .method("POST")
                .path(path)
                .header("content-type", "application/json")
                .body(body.as_ref()),
        )
        .await
    }

    /// PUT a value and return its commit ts.
    pub async fn put_ok(&self, path: &str, body: impl AsRef<[u8]>) -> u64 {
        let r = self.put(path, body).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        r.json()["ts"].as_u64().expect("ts")
    }
}

/// A real server on a loopback port: its address, the shutdown trigger and the task running `serve`.
pub struct Server {
    pub addr: std::net::SocketAddr,
    pub stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub task: tokio::task::JoinHandle<()>,
}

impl Server {
    pub async fn start(fake: FakeBackend, limits: Limits) -> Server {
        Server::start_with_auth(fake, limits, Auth::off()).await
    }

    pub async fn start_with_auth(fake: FakeBackend, limits: Limits, auth: Auth) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(super::serve(listener, fake, limits, auth, async {
            let _ = rx.await;
        }));
        Server {
            addr,
            stop: Some(tx),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Trigger shutdown and wait (bounded) for `serve` to return.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        tokio::time::timeout(std::time::Duration::from_secs(10), &mut self.task)
            .await
            .expect("serve did not return after shutdown")
            .expect("serve panicked");
    }
}

/// One HTTP request over a fresh client.
pub async fn http(method: &str, url: &str, body: &[u8], headers: &[(&str, &str)]) -> Resp {
    let mut req = hyper::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(hyper::Body::from(body.to_vec())).expect("request");
    let res = hyper::Client::new()
        .request(req)
        .await
        .expect("http request");
    let (parts, body) = res.into_parts();
    Resp {
        status: parts.status,
        headers: parts.headers,
        body: hyper::body::to_bytes(body).await.expect("body"),
    }
}
