//! The route table ([`ROUTES`]), the document (`docs/openapi.yaml`) and what `routes()` serves are kept
//! equal:
//!
//! * every route of the table is documented, and the document has no path or method the table lacks;
//! * every error code the document enumerates (per status) is one of [`Code::ALL`] with that status,
//!   and every code is documented;
//! * every route of the table is served (its answer is not the unknown-route answer);
//! * the document's security requirement of every route is the table's access: a route that needs a
//!   token names the bearer scheme and documents 401 and 403 (and its summary names the role);
//!   an open one (`/healthz`, `/readyz`) requires nothing and documents neither;
//! * every method on every documented path, on each prefix of it and with a segment added, is either
//!   answered as an unknown route or is a route of the table.

use std::collections::BTreeSet;

use serde_json::Value;
use warp::http::Method;

use super::{Api, Resp};
use crate::http::auth::Access;
use crate::http::error::Code;
use crate::http::routes::{route_template, template_matches, Route, ROUTES};

const DOC: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/openapi.yaml"));

/// Every method the probe tries (HTTP's own, plus PATCH).
const METHODS: [Method; 8] = [
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::DELETE,
    Method::PATCH,
    Method::OPTIONS,
    Method::TRACE,
];

/// The fields of an OpenAPI path item that are operations.
const OPERATIONS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn doc() -> Value {
    serde_yaml_ng::from_str(DOC).expect("docs/openapi.yaml is valid YAML")
}

/// `(METHOD, template)` of every documented operation.
fn documented_routes(doc: &Value) -> BTreeSet<(String, String)> {
    let paths = doc["paths"].as_object().expect("`paths` is a map");
    let mut routes = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is a map");
        for key in item.keys() {
            if OPERATIONS.contains(&key.as_str()) {
                routes.insert((key.to_ascii_uppercase(), path.clone()));
            } else {
                assert!(
                    ["parameters", "summary", "description", "servers"].contains(&key.as_str()),
                    "unexpected field {key:?} under {path}"
                );
            }
        }
    }
    routes
}

fn table_routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|r| (r.method.as_str().to_owned(), r.template.to_owned()))
        .collect()
}

/// A concrete path for a template.
pub(super) fn instantiate(template: &str) -> String {
    template
        .replace("{key}", "k")
        .replace("{entity}", "e")
        .replace("{name}", "n")
        .replace("{id}", "2")
}

/// The answer for a path or method the API does not have.
fn is_unknown_route(r: &Resp) -> bool {
    if r.status != 404 && r.status != 405 {
        return false;
    }
    let code = serde_json::from_slice::<Value>(&r.body)
        .ok()
        .and_then(|v| v["error"]["code"].as_str().map(str::to_owned));
    matches!(code.as_deref(), Some("not_found" | "method_not_allowed"))
}

async fn send(api: &Api, method: &Method, path: &str) -> Resp {
    api.send(
        warp::test::request()
            .method(method.as_str())
            .path(path)
            .header("content-type", "application/json")
            .body("{}"),
    )
    .await
}

#[test]
fn the_document_has_exactly_the_routes_of_the_table() {
    let documented = documented_routes(&doc());
    let table = table_routes();
    let undocumented: Vec<_> = table.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&table).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from docs/openapi.yaml: {undocumented:?}"
    );
    assert!(
        not_served.is_empty(),
        "docs/openapi.yaml documents routes that are not in ROUTES: {not_served:?}"
    );
    // No duplicates in the table either.
    assert_eq!(table.len(), ROUTES.len(), "ROUTES has a duplicate entry");
}

#[test]
fn the_document_enumerates_exactly_the_error_codes_by_status() {
    let doc = doc();
    let schemas = doc["components"]["schemas"]
        .as_object()
        .expect("components.schemas");
    let mut documented = BTreeSet::new();
    for (name, schema) in schemas {
        let Some(status) = name
            .strip_prefix("Error")
            .and_then(|s| s.parse::<u16>().ok())
        else {
            continue;
        };
        let parts = schema["properties"]["error"]["allOf"]
            .as_array()
            .unwrap_or_else(|| panic!("{name}: error is allOf [ErrorObject, codes]"));
        let codes = parts
            .iter()
            .find_map(|p| p["properties"]["code"]["enum"].as_array())
            .unwrap_or_else(|| panic!("{name}: no code enumeration"));
        for code in codes {
            let code = code.as_str().expect("codes are strings").to_owned();
            documented.insert((status, code));
        }
    }
    let table: BTreeSet<(u16, String)> = Code::ALL
        .iter()
        .map(|c| (c.status().as_u16(), c.as_str().to_owned()))
        .collect();
    assert_eq!(
        documented, table,
        "docs/openapi.yaml's Error<status> code enumerations differ from error.rs"
    );
}

#[tokio::test]
async fn every_route_of_the_table_is_served() {
    let api = Api::new();
    for Route {
        method, template, ..
    } in ROUTES
    {
        let path = instantiate(template);
        let r = send(&api, method, &path).await;
        assert!(
            !is_unknown_route(&r),
            "{method} {path} ({template}) is in ROUTES but answered as an unknown route: {} {:?}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(
            route_template(method.as_str(), &path),
            *template,
            "metrics label {method} {path} with another template"
        );
    }
}

#[tokio::test]
async fn nothing_outside_the_table_is_served() {
    let doc = doc();
    let mut paths = BTreeSet::new();
    for (_, template) in documented_routes(&doc) {
        let path = instantiate(&template);
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        for n in 0..=segments.len() {
            paths.insert(format!("/{}", segments[..n].join("/")));
        }
        paths.insert(format!("{path}/x"));
        paths.insert(format!("{path}/"));
    }
    // Names a reader might guess.
    for guess in [
        "/v1/status",
        "/v1/members",
        "/v1/leader",
        "/v1/checkpoints",
        "/v1/kv/k/decr",
        "/health",
        "/ready",
        "/status",
        "/version",
        "/v2/kv/k",
    ] {
        paths.insert(guess.to_owned());
    }
    let api = Api::new();
    let mut probed = 0;
    for path in &paths {
        for method in &METHODS {
            let r = send(&api, method, path).await;
            probed += 1;
            if is_unknown_route(&r) {
                continue;
            }
            let listed = ROUTES
                .iter()
                .any(|r| r.method == method && template_matches(r.template, path));
            assert!(
                listed,
                "{method} {path} is served ({} {:?}) but matches no route of ROUTES",
                r.status,
                String::from_utf8_lossy(&r.body)
            );
        }
    }
    assert!(probed > 300, "probed only {probed} requests");
}

#[test]
fn the_document_states_the_access_of_every_route() {
    let doc = doc();
    let scheme = &doc["components"]["securitySchemes"]["bearer"];
    assert_eq!(
        (scheme["type"].as_str(), scheme["scheme"].as_str()),
        (Some("http"), Some("bearer")),
        "components.securitySchemes.bearer"
    );
    for r in ROUTES {
        let op = &doc["paths"][r.template][r.method.as_str().to_ascii_lowercase()];
        let security = op["security"]
            .as_array()
            .unwrap_or_else(|| panic!("{} {}: no `security`", r.method, r.template));
        let names_bearer = security.iter().any(|s| s.get("bearer").is_some());
        let responses = &op["responses"];
        let (has_401, has_403) = (
            responses.get("401").is_some(),
            responses.get("403").is_some(),
        );
        let summary = op["summary"].as_str().unwrap_or("");
        match r.access {
            Access::Open => assert!(
                !names_bearer && !has_401 && !has_403,
                "{} {} is open: no bearer, 401 or 403",
                r.method,
                r.template
            ),
            Access::Metrics => assert!(
                security
                    .iter()
                    .any(|s| s.as_object().is_some_and(|o| o.is_empty()))
                    && names_bearer
                    && has_401
                    && has_403,
                "{} {}: open or bearer (metrics_auth), with 401 and 403",
                r.method,
                r.template
            ),
            Access::Token(role) => {
                assert!(
                    names_bearer && security.len() == 1 && has_401 && has_403,
                    "{} {} needs a token: bearer only, with 401 and 403",
                    r.method,
                    r.template
                );
                let needle = format!("(role `{role}`)");
                assert!(
                    summary.contains(&needle),
                    "{} {}: the summary does not say {needle:?}",
                    r.method,
                    r.template
                );
            }
        }
    }
}
