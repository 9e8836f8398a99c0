//! `--endpoints`: a comma-separated list of node client URLs, `http://host:port` or `https://host:port`
//! (a bare `host:port` means http). Parsed and checked before anything is sent.

use hyper::Uri;

/// One node's client URL: scheme and authority, no path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: &'static str,
    /// `host:port`.
    pub authority: String,
}

impl Endpoint {
    /// The URL of `path_and_query` (which starts with `/`) on this endpoint.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}://{}{path_and_query}", self.scheme, self.authority)
    }

    /// The endpoint's base URL, as given to `serve --join`.
    pub fn base(&self) -> String {
        format!("{}://{}", self.scheme, self.authority)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.base())
    }
}

/// Parse one endpoint; the reason it is refused otherwise.
pub fn parse_endpoint(raw: &str) -> Result<Endpoint, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("an empty endpoint".into());
    }
    let with_scheme = if raw.contains("://") {
        raw.to_owned()
    } else {
        format!("http://{raw}")
    };
    let uri: Uri = with_scheme
        .parse()
        .map_err(|e| format!("{raw:?} is not a URL ({e}); expected http://HOST:PORT"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => "http",
        Some("https") => "https",
        other => {
            return Err(format!(
                "{raw:?}: scheme {:?} is not http or https",
                other.unwrap_or("")
            ))
        }
    };
    let authority = uri
        .authority()
        .ok_or_else(|| format!("{raw:?} has no host"))?;
    if authority.host().is_empty() {
        return Err(format!("{raw:?} has no host"));
    }
    if authority.as_str().contains('@') {
        return Err(format!(
            "{raw:?}: user information in the URL is not supported (use --token)"
        ));
    }
    let Some(port) = authority.port_u16() else {
        return Err(format!(
            "{raw:?} has no port; expected {scheme}://HOST:PORT"
        ));
    };
    if port == 0 {
        return Err(format!("{raw:?}: port 0"));
    }
    if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
        return Err(format!(
            "{raw:?}: an endpoint is a node's base URL, without a path or query"
        ));
    }
    Ok(Endpoint {
        scheme,
        authority: authority.as_str().to_owned(),
    })
}

/// Parse a comma-separated list (at least one endpoint).
pub fn parse_endpoints(raw: &str) -> Result<Vec<Endpoint>, String> {
    let list = raw
        .split(',')
        .map(parse_endpoint)
        .collect::<Result<Vec<_>, _>>()?;
    if list.is_empty() {
        return Err("no endpoint given".into());
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_a_default_scheme() {
        let list =
            parse_endpoints("http://127.0.0.1:7379, https://node2.site-a:7379/,10.0.0.3:7379")
                .unwrap();
        let urls: Vec<String> = list.iter().map(Endpoint::base).collect();
        assert_eq!(
            urls,
            [
                "http://127.0.0.1:7379",
                "https://node2.site-a:7379",
                "http://10.0.0.3:7379"
            ]
        );
        assert_eq!(list[0].url("/v1/kv/a"), "http://127.0.0.1:7379/v1/kv/a");
        assert_eq!(
            parse_endpoint("http://[::1]:7379").unwrap().authority,
            "[::1]:7379"
        );
    }

    #[test]
    fn bad_endpoints_say_why() {
        for (raw, why) in [
            ("", "empty"),
            ("http://a:1,", "empty"),
            ("ftp://a:1", "scheme"),
            ("http://a", "no port"),
            ("http://a:1/v1", "without a path"),
            ("http://a:1?x=1", "without a path"),
            ("http://u:p@a:1", "user information"),
            ("http://a:0", "port 0"),
            ("http://a b:1", "not a URL"),
            ("http://:1", "no host"),
        ] {
            let err = parse_endpoints(raw).unwrap_err();
            assert!(err.contains(why), "{raw:?}: {err}");
        }
    }
}
