//! Decoding what the URL carries: query parameters (strictly: an unknown or repeated parameter is a
//! 400, so a typo such as `if_verison=` can never silently drop a condition), percent-encoded keys and
//! path segments, and base64 (`key_b64=`, `value_b64`: standard or URL-safe alphabet, padding optional).

use std::collections::BTreeMap;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use percent_encoding::percent_decode_str;

use super::backend::Consistency;
use super::error::ApiError;

/// The query parameters of one request, checked against the names its route accepts.
#[derive(Debug, Default)]
pub struct Query {
    params: BTreeMap<String, String>,
}

impl Query {
    pub fn parse(raw: &str, allowed: &[&str]) -> Result<Query, ApiError> {
        let mut params = BTreeMap::new();
        for pair in raw.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = form_decode(name)?;
            let value = form_decode(value)?;
            if !allowed.contains(&name.as_str()) {
                return Err(ApiError::bad_request(if allowed.is_empty() {
                    format!("unknown query parameter {name:?}: this route takes none")
                } else {
                    format!(
                        "unknown query parameter {name:?}: this route takes {}",
                        allowed.join(", ")
                    )
                }));
            }
            if params.insert(name.clone(), value).is_some() {
                return Err(ApiError::bad_request(format!(
                    "query parameter {name:?} given twice"
                )));
            }
        }
        Ok(Query { params })
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    pub fn u64(&self, name: &str) -> Result<Option<u64>, ApiError> {
        self.str(name)
            .map(|v| {
                v.parse::<u64>().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be an unsigned integer, got {v:?}"))
                })
            })
            .transpose()
    }

    pub fn i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.str(name)
            .map(|v| {
                v.parse::<i64>().map_err(|_| {
                    ApiError::bad_request(format!("{name} must be a 64-bit integer, got {v:?}"))
                })
            })
            .transpose()
    }

    pub fn usize(&self, name: &str) -> Result<Option<usize>, ApiError> {
        Ok(self
            .u64(name)?
            .map(|v| usize::try_from(v).unwrap_or(usize::MAX)))
    }

    /// `flag`, `flag=`, `flag=true|1` → true; `flag=false|0` → false; absent → false.
    pub fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.str(name) {
            None => Ok(false),
            Some("" | "true" | "1") => Ok(true),
            Some("false" | "0") => Ok(false),
            Some(v) => Err(ApiError::bad_request(format!(
                "{name} must be true or false, got {v:?}"
            ))),
        }
    }

    pub fn consistency(&self) -> Result<Consistency, ApiError> {
        match self.str("consistency") {
            None | Some("linearizable") => Ok(Consistency::Linearizable),
            Some("lease") => Ok(Consistency::Lease),
            Some("stale") => Ok(Consistency::Stale),
            Some(v) => Err(ApiError::bad_request(format!(
                "consistency must be linearizable, lease or stale, got {v:?}"
            ))),
        }
    }

    /// Bytes given either as `name` (text) or `name_b64` (base64); both is an error.
    pub fn bytes(&self, name: &str) -> Result<Option<Vec<u8>>, ApiError> {
        let b64_name = format!("{name}_b64");
        match (self.str(name), self.str(&b64_name)) {
            (Some(_), Some(_)) => Err(ApiError::bad_request(format!(
                "give {name} or {b64_name}, not both"
            ))),
            (Some(text), None) => Ok(Some(text.as_bytes().to_vec())),
            (None, Some(b64)) => decode_b64(&b64_name, b64).map(Some),
            (None, None) => Ok(None),
        }
    }
}

/// `application/x-www-form-urlencoded` decoding of one query component: `+` is a space.
fn form_decode(s: &str) -> Result<String, ApiError> {
    let replaced = s.replace('+', " ");
    percent_decode_str(&replaced)
        .decode_utf8()
        .map(|c| c.into_owned())
        .map_err(|_| ApiError::bad_request("query string is not valid UTF-8 after decoding"))
}

/// Base64 in either alphabet, padded or not. A space is read as `+` (an unescaped `+` in a query).
pub fn decode_b64(what: &str, s: &str) -> Result<Vec<u8>, ApiError> {
    let s = s.replace(' ', "+");
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        if let Ok(bytes) = engine.decode(&s) {
            return Ok(bytes);
        }
    }
    Err(ApiError::bad_request(format!("{what} is not valid base64")))
}

pub fn encode_b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// A key from the URL path: percent-decoded, and required to be UTF-8 (`?key_b64=` addresses others).
pub fn path_key(raw: &str) -> Result<Vec<u8>, ApiError> {
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s.into_bytes()),
        Err(_) => Err(ApiError::invalid_key(
            "the key in the path is not valid UTF-8 once percent-decoded; address it with ?key_b64=",
        )),
    }
}

/// The key of a `/v1/kv/...` request: from the path, or from `key_b64` (then the path must not name one).
pub fn request_key(path_tail: &str, q: &Query) -> Result<Vec<u8>, ApiError> {
    match q.str("key_b64") {
        Some(_) if !path_tail.is_empty() => Err(ApiError::bad_request(
            "give the key in the path or in key_b64, not both",
        )),
        Some(b64) => decode_b64("key_b64", b64),
        None => path_key(path_tail),
    }
}

/// One path segment (entity, checkpoint name): percent-decoded, UTF-8.
pub fn path_segment(what: &str, raw: &str) -> Result<Vec<u8>, ApiError> {
    let bytes: Vec<u8> = percent_decode_str(raw).collect();
    match String::from_utf8(bytes) {
        Ok(s) => Ok(s.into_bytes()),
        Err(_) => Err(ApiError::invalid_key(format!(
            "the {what} in the path is not valid UTF-8 once percent-decoded"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_is_strict_and_decoded() {
        let q = Query::parse("at=12&prefix=a%2Fb+c", &["at", "prefix"]).unwrap();
        assert_eq!(q.u64("at").unwrap(), Some(12));
        assert_eq!(q.str("prefix"), Some("a/b c"));
        assert_eq!(
            Query::parse("atx=1", &["at"]).unwrap_err().code,
            "bad_request"
        );
        assert_eq!(
            Query::parse("at=1&at=2", &["at"]).unwrap_err().code,
            "bad_request"
        );
        assert_eq!(
            Query::parse("at=%FF", &["at"]).unwrap_err().code,
            "bad_request"
        );
        let q = Query::parse("at=x", &["at"]).unwrap();
        assert_eq!(q.u64("at").unwrap_err().code, "bad_request");
    }

    #[test]
    fn base64_either_alphabet() {
        assert_eq!(decode_b64("k", "/w==").unwrap(), vec![0xff]);
        assert_eq!(decode_b64("k", "_w").unwrap(), vec![0xff]);
        assert_eq!(decode_b64("k", "+w").unwrap(), vec![0xfb]);
        assert_eq!(decode_b64("k", " w").unwrap(), vec![0xfb]);
        assert!(decode_b64("k", "!!").is_err());
    }

    #[test]
    fn path_keys() {
        assert_eq!(path_key("player%3A1/pos").unwrap(), b"player:1/pos");
        assert_eq!(path_key("%FF").unwrap_err().code, "invalid_key");
    }
}
