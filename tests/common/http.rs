//! A small HTTP/1.1 client for the tests (hyper 0.14), with a per-request deadline and the three ways a
//! request can fail from the client's side: not connected (nothing was sent), timed out, or broken after
//! it may have been sent.

use std::net::SocketAddr;
use std::time::Duration;

use std::sync::Arc;

use hyper::body::Bytes;
use hyper::client::HttpConnector;
use hyper::header::{HeaderMap, CONTENT_TYPE};
use hyper::{Body, Client, Method, Request};
use hyper_rustls::HttpsConnector;
use serde_json::Value;

/// Why a request got no HTTP answer.
#[derive(Debug, Clone)]
pub enum HttpError {
    /// The connection could not be made: the request was never sent.
    Connect(String),
    /// No answer within the client's deadline: it may have been sent and served.
    Timeout,
    /// The connection broke mid-request: it may have been sent and served.
    Broken(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(e) => write!(f, "connect failed: {e}"),
            HttpError::Timeout => write!(f, "client timeout"),
            HttpError::Broken(e) => write!(f, "connection broke: {e}"),
        }
    }
}

/// A complete answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// `error.code` of an error answer.
    pub fn error_code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    pub fn header_u64(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.parse().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl std::fmt::Display for Resp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.text())
    }
}

#[derive(Clone)]
pub struct Http {
    client: Client<HttpsConnector<HttpConnector>>,
    timeout: Duration,
    /// Sent as `Authorization: Bearer <token>` with every request, when set.
    bearer: Option<String>,
    scheme: &'static str,
}

impl Http {
    pub fn new(timeout: Duration) -> Http {
        Http::build(timeout, None)
    }

    /// A client speaking https with `tls` (its roots and client certificate) to every address.
    pub fn tls(timeout: Duration, tls: Arc<rustls::ClientConfig>) -> Http {
        Http::build(timeout, Some(tls))
    }

    fn build(timeout: Duration, tls: Option<Arc<rustls::ClientConfig>>) -> Http {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let client = kvs_raft::tls::https_client(
            tls.as_ref(),
            Duration::from_secs(1),
            Duration::from_secs(5),
        );
        Http {
            client,
            timeout,
            bearer: None,
            scheme,
        }
    }

    /// The same client (and connection pool) sending `token` as its bearer token (`None`: no token).
    pub fn with_bearer(&self, token: Option<&str>) -> Http {
        Http {
            bearer: token.map(str::to_owned),
            ..self.clone()
        }
    }

    /// The same client (and connection pool) with another deadline.
    pub fn with_timeout(&self, timeout: Duration) -> Http {
        Http {
            timeout,
            ..self.clone()
        }
    }

    pub async fn send(
        &self,
        method: Method,
        addr: SocketAddr,
        path_and_query: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Resp, HttpError> {
        let mut req = Request::builder()
            .method(method)
            .uri(format!("{}://{addr}{path_and_query}", self.scheme));
        if let Some(token) = &self.bearer {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match body {
            Some((bytes, content_type)) => {
                req = req.header(CONTENT_TYPE, content_type);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        let req = req.body(body).expect("a well-formed request");
        let exchange = async {
            let res = self.client.request(req).await?;
            let (parts, body) = res.into_parts();
            let body = hyper::body::to_bytes(body).await?;
            Ok::<_, hyper::Error>(Resp {
                status: parts.status.as_u16(),
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Err(_) => Err(HttpError::Timeout),
            Ok(Err(e)) if e.is_connect() => Err(HttpError::Connect(e.to_string())),
            Ok(Err(e)) => Err(HttpError::Broken(e.to_string())),
            Ok(Ok(r)) => Ok(r),
        }
    }

    pub async fn get(&self, addr: SocketAddr, path: &str) -> Result<Resp, HttpError> {
        self.send(Method::GET, addr, path, None).await
    }

    pub async fn put(&self, addr: SocketAddr, path: &str, value: &[u8]) -> Result<Resp, HttpError> {
        self.send(
            Method::PUT,
            addr,
            path,
            Some((value.to_vec(), "application/octet-stream")),
        )
        .await
    }

    pub async fn post_json(
        &self,
        addr: SocketAddr,
        path: &str,
        body: &Value,
    ) -> Result<Resp, HttpError> {
        let bytes = serde_json::to_vec(body).expect("JSON");
        self.send(Method::POST, addr, path, Some((bytes, "application/json")))
            .await
    }

    pub async fn post(&self, addr: SocketAddr, path: &str) -> Result<Resp, HttpError> {
        self.send(Method::POST, addr, path, None).await
    }
}

/// Percent-encode a query parameter value (RFC 3986 unreserved characters stay): the client's own.
pub fn encode_query(raw: &[u8]) -> String {
    kvs_raft::client::encode_path(raw)
}
