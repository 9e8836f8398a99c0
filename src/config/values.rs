//! Value parsers: each returns the reason a value is refused, without the value (the caller adds it and
//! where it came from).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

pub(super) fn int_in(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let range = || {
        if max == u64::MAX {
            format!("expected an integer ≥ {min}")
        } else {
            format!("expected an integer from {min} to {max}")
        }
    };
    match s.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(range()),
    }
}

/// A cluster id or site name: 1-64 of `[A-Za-z0-9._-]`.
pub(super) fn name(s: &str) -> Result<String, String> {
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(s.to_string())
    } else {
        Err("expected 1 to 64 characters of A-Z a-z 0-9 . _ -".into())
    }
}

/// `500ms`, `5s`, `2m`, `1h`, `250us`.
pub(super) fn duration(s: &str) -> Result<Duration, String> {
    const EXPECTED: &str = "expected a duration such as 500ms, 5s or 2m (units: us, ms, s, m, h)";
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| EXPECTED.to_string())?;
    let secs = |mul: u64| {
        n.checked_mul(mul)
            .map(Duration::from_secs)
            .ok_or_else(|| "too large".to_string())
    };
    match unit.trim() {
        "us" | "µs" => Ok(Duration::from_micros(n)),
        "ms" => Ok(Duration::from_millis(n)),
        "s" => secs(1),
        "m" => secs(60),
        "h" => secs(3600),
        "" => Err(format!("missing unit; {EXPECTED}")),
        _ => Err(EXPECTED.into()),
    }
}

pub(super) fn duration_in(s: &str, min: Duration, max: Duration) -> Result<Duration, String> {
    let d = duration(s)?;
    if d < min || d > max {
        return Err(format!("must be from {min:?} to {max:?}"));
    }
    Ok(d)
}

/// `1024`, `64KiB`, `4MiB`, `1GiB` (binary) or `1KB`, `4MB`, `1GB` (decimal); `B` optional.
pub(super) fn size(s: &str) -> Result<u64, String> {
    const EXPECTED: &str =
        "expected a size such as 1024, 64KiB or 4MiB (units: B, KiB, MiB, GiB, KB, MB, GB)";
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: u64 = digits.parse().map_err(|_| EXPECTED.to_string())?;
    let mul: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        _ => return Err(EXPECTED.into()),
    };
    n.checked_mul(mul).ok_or_else(|| "too large".to_string())
}

pub(super) fn size_in(s: &str, min: u64, max: u64) -> Result<u64, String> {
    let n = size(s)?;
    if n < min || n > max {
        return Err(format!("must be from {min} to {max} bytes"));
    }
    Ok(n)
}

/// An address to listen on: an IP literal and a port.
pub(super) fn listen_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim().parse().map_err(|_| {
        "expected IP:PORT such as 127.0.0.1:7379, 0.0.0.0:7379 or [::1]:7379 (listen addresses take \
         an IP, not a host name)"
            .to_string()
    })
}

/// An address others dial: `host:port` with a DNS name or an IP (IPv6 in brackets), port ≥ 1.
pub(super) fn host_port(s: &str) -> Result<String, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        if addr.ip().is_unspecified() {
            return Err(format!(
                "{} cannot be dialed; give this node's reachable address",
                addr.ip()
            ));
        }
        if addr.port() == 0 {
            return Err("port 0 cannot be dialed".into());
        }
        return Ok(addr.to_string());
    }
    use raft_node::membership::{is_host_name, ADDR_EXPECTED as EXPECTED};
    let (host, port) = s.rsplit_once(':').ok_or(EXPECTED)?;
    match port.parse::<u16>() {
        Ok(p) if p >= 1 => {}
        _ => return Err(format!("bad port {port:?}; {EXPECTED}")),
    }
    if !is_host_name(host) {
        return Err(format!("bad host {host:?}; {EXPECTED}"));
    }
    Ok(format!("{host}:{port}"))
}

/// Whether two `host:port` strings name the same address as written (host names compare case-insensitively).
/// `true` or `false`.
pub(super) fn boolean(s: &str) -> Result<bool, String> {
    match s.trim() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err("expected true or false".into()),
    }
}

/// Whether a `host:port` (as [`host_port`] returns it) names this machine only: a loopback IP or
/// `localhost`.
pub(super) fn is_loopback_host(addr: &str) -> bool {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().is_loopback();
    }
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.eq_ignore_ascii_case("localhost")
}

pub(super) fn same_address(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

pub(super) fn host_port_list(s: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for item in s.split(',').map(str::trim) {
        let addr = host_port(item).map_err(|e| format!("entry {item:?}: {e}"))?;
        if out.iter().any(|seen| same_address(seen, &addr)) {
            return Err(format!("{addr} is listed twice"));
        }
        out.push(addr);
    }
    Ok(out)
}

/// `1=host:port,2=host:port`: ids ≥ 1, no id or address twice.
pub(super) fn initial_cluster(s: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut members: BTreeMap<u64, String> = BTreeMap::new();
    for entry in s.split(',').map(str::trim) {
        let Some((id, addr)) = entry.split_once('=') else {
            return Err(format!(
                "entry {entry:?} is not ID=HOST:PORT (e.g. 1=127.0.0.1:7380,2=127.0.0.1:7382)"
            ));
        };
        let id = int_in(id, 1, u64::MAX).map_err(|e| format!("entry {entry:?}: id: {e}"))?;
        let addr = host_port(addr).map_err(|e| format!("entry {entry:?}: {e}"))?;
        if members.contains_key(&id) {
            return Err(format!("id {id} is listed twice"));
        }
        if let Some((other, _)) = members.iter().find(|(_, a)| same_address(a, &addr)) {
            return Err(format!("ids {other} and {id} have the same address {addr}"));
        }
        members.insert(id, addr);
    }
    Ok(members)
}

/// `http://host:port` or `https://host:port`, optionally with a trailing `/`.
pub(super) fn join_url(s: &str) -> Result<String, String> {
    let s = s.trim();
    let (scheme, rest) = s
        .split_once("://")
        .ok_or("expected a member's client URL such as http://10.0.0.1:7379")?;
    if scheme != "http" && scheme != "https" {
        return Err(format!("scheme {scheme:?} is not http or https"));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    let addr = host_port(authority).map_err(|e| format!("bad address {authority:?}: {e}"))?;
    Ok(format!("{scheme}://{addr}"))
}
