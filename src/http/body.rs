//! JSON request bodies: content type checked, parse errors classified, never a panic (serde_json
//! refuses nesting deeper than 128 before it can exhaust the stack). JSON out is [`super::error::ok`].

use serde::de::DeserializeOwned;
use warp::http::{header, HeaderMap};

use super::error::ApiError;

/// A JSON route accepts `application/json` (or any `+json` type) or no `Content-Type` at all; any other
/// declared type is a 415.
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let ok = value.to_str().ok().is_some_and(|v| {
        let essence = v
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        essence == "application/json"
            || (essence.starts_with("application/") && essence.ends_with("+json"))
    });
    if ok {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "this route takes application/json, not {:?}",
            value.to_str().unwrap_or("(not text)")
        )))
    }
}

pub fn parse_json<T: DeserializeOwned>(headers: &HeaderMap, body: &[u8]) -> Result<T, ApiError> {
    check_json_content_type(headers)?;
    serde_json::from_slice(body).map_err(|e| {
        use serde_json::error::Category;
        let what = match e.classify() {
            Category::Eof => "truncated JSON",
            Category::Syntax => "malformed JSON",
            Category::Data => "invalid request",
            Category::Io => "unreadable body",
        };
        ApiError::bad_request(format!("{what}: {e}"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use warp::http::HeaderValue;

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(check_json_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(check_json_content_type(&h).is_ok());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/merge-patch+json"),
        );
        assert!(check_json_content_type(&h).is_ok());
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert_eq!(check_json_content_type(&h).unwrap_err().status(), 415);
    }

    #[test]
    fn deep_nesting_is_a_400() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        let e = parse_json::<serde_json::Value>(&HeaderMap::new(), deep.as_bytes()).unwrap_err();
        assert_eq!((e.status().as_u16(), e.code.as_str()), (400, "bad_request"));
    }
}
