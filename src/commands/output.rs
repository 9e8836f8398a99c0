//! What the client subcommands print: JSON for scripts (`--json`, one line, the field names of
//! docs/cli.md), tables for people (comfy-table), byte strings as text or base64, and the error message
//! of a failed request — what failed, the node's `{"error":{"code","message"}}`, and what to do.

use std::io::Write as _;

use base64::Engine as _;
use comfy_table::{presets, ContentArrangement, Table};
use serde_json::Value;

use crate::client::{ApiErrorBody, Response};

/// `println!` for the commands' answers: one line to stdout, where a closed pipe ends the process as it
/// ends Unix tools (see [`write_stdout`]) instead of panicking as `println!` does.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::commands::output::write_line(format_args!($($arg)*))
    };
}
pub(crate) use outln;

/// Print `value` as one line of JSON.
pub fn print_json(value: &Value) {
    outln!("{value}");
}

/// One formatted line to stdout ([`outln!`]).
pub fn write_line(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.write_all(b"\n")) {
        stdout_failed(&e);
    }
}

/// `bytes` to stdout, flushed. A reader that went away (`kvs-raft scan … | head`) ends the process by
/// SIGPIPE, quietly, as it ends `cat`; any other failure (a full disk behind a redirect) is a message and
/// exit 1. The signal is raised here, on purpose, rather than restored as the process default: Rust keeps
/// SIGPIPE ignored so that a socket whose peer hung up is an `EPIPE` error, and the TLS and HTTP layers
/// write to sockets with `writev`, which (unlike `send` with `MSG_NOSIGNAL`) would raise the signal and
/// kill a client command whose node closed the connection.
pub fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
        stdout_failed(&e);
    }
}

fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // SAFETY: `signal` with `SIG_DFL` installs no handler code; `raise` then ends the process with
        // the default action of SIGPIPE (terminate), so the parent sees "killed by signal 13".
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::raise(libc::SIGPIPE);
        }
    }
    eprintln!("error: cannot write to stdout: {e}");
    std::process::exit(1)
}

pub use crate::client::put_bytes;

/// Bytes for a table cell: the text when it is UTF-8 without control characters, else `base64:…`.
pub fn cell_bytes(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) if !text.chars().any(char::is_control) => text.to_owned(),
        _ => format!(
            "base64:{}",
            base64::engine::general_purpose::STANDARD.encode(bytes)
        ),
    }
}

/// The bytes of a JSON item's `name` / `name_b64` field (as the API answers them).
pub fn bytes_of(item: &Value, name: &str) -> Option<Vec<u8>> {
    if let Some(text) = item.get(name).and_then(Value::as_str) {
        return Some(text.as_bytes().to_vec());
    }
    let b64 = item.get(format!("{name}_b64"))?.as_str()?;
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// A table with `header` and `rows`, columns sized to their content.
pub fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> String {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    for row in rows {
        t.add_row(row);
    }
    t.to_string()
}

/// What to do about an API error code, when there is something to say.
fn hint(e: &ApiErrorBody) -> Option<String> {
    let field = |name: &str| e.extra.get(name).map(|v| v.to_string().replace('"', ""));
    Some(match e.code.as_str() {
        "unauthorized" => "give a token with --token-file, --token or KVS_RAFT_TOKEN".into(),
        "forbidden" => format!(
            "the token's role is {}; this needs role {}: use a token with that role",
            field("role").unwrap_or_else(|| "too small".into()),
            field("required_role").unwrap_or_else(|| "higher".into()),
        ),
        "stale_epoch" => format!(
            "the entity is at epoch {}: re-read its state and retry with --epoch {0} if still valid",
            field("current_epoch").unwrap_or_else(|| "?".into())
        ),
        "condition_failed" => format!(
            "the key's current version is {}",
            field("current_version").unwrap_or_else(|| "none (absent)".into())
        ),
        "version_gone" => format!(
            "versions older than {} are reclaimed; read at a newer --at",
            field("floor").unwrap_or_else(|| "the retention window".into())
        ),
        "unknown_outcome" => {
            "the write may or may not have been applied: read it back before retrying".into()
        }
        "overloaded" | "no_quorum" | "not_leader" | "leader_unreachable" | "shutting_down"
        | "too_many_connections" | "storage_unavailable" => {
            "retry shortly; `kvs-raft status` shows the site".into()
        }
        "insufficient_storage" => "free disk space on the leader (docs/operations.md)".into(),
        "learner_not_caught_up" => "wait for the learner to catch up, then ask again".into(),
        "change_in_progress" => "wait for the running membership change, then ask again".into(),
        "quorum_at_risk" => "bring the unhealthy voters back first (`kvs-raft status`)".into(),
        _ => return None,
    })
}

/// The error for a request that the node answered with an error: `what` failed, the node's code and
/// message, and a hint.
pub fn api_failure(what: &str, res: &Response) -> anyhow::Error {
    match res.api_error() {
        Some(e) => {
            let mut msg = format!(
                "{what} failed: {} from {}: {}: {}",
                res.status.as_u16(),
                res.endpoint,
                e.code,
                e.message
            );
            if let Some(h) = hint(&e) {
                msg.push_str(&format!(" ({h})"));
            }
            anyhow::anyhow!(msg)
        }
        None => anyhow::anyhow!(
            "{what} failed: {} from {}: {}",
            res.status,
            res.endpoint,
            String::from_utf8_lossy(&res.body[..res.body.len().min(500)])
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_are_text_or_base64() {
        let mut m = serde_json::Map::new();
        put_bytes(&mut m, "value", b"hi");
        put_bytes(&mut m, "key", &[0xff, 0x00]);
        assert_eq!(
            Value::Object(m.clone()),
            serde_json::json!({"value": "hi", "key_b64": "/wA="})
        );
        let item = Value::Object(m);
        assert_eq!(bytes_of(&item, "value").unwrap(), b"hi");
        assert_eq!(bytes_of(&item, "key").unwrap(), [0xff, 0x00]);
        assert_eq!(bytes_of(&item, "data"), None);
        assert_eq!(cell_bytes(b"abc"), "abc");
        assert_eq!(cell_bytes(b"a\nb"), "base64:YQpi");
    }

    #[test]
    fn tables_show_header_and_rows() {
        let t = table(
            &["ID", "ROLE"],
            [
                vec!["1".into(), "leader".into()],
                vec!["2".into(), "follower".into()],
            ],
        );
        let lines: Vec<&str> = t.lines().collect();
        assert!(
            lines.iter().any(|l| l.contains("ID") && l.contains("ROLE")),
            "{t}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains('1') && l.contains("leader")),
            "{t}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains('2') && l.contains("follower")),
            "{t}"
        );
    }

    #[test]
    fn api_failures_name_what_failed_the_code_and_a_hint() {
        let res = Response {
            status: hyper::StatusCode::FORBIDDEN,
            headers: Default::default(),
            body: bytes::Bytes::from_static(
                br#"{"error":{"code":"forbidden","message":"needs write","role":"read","required_role":"write"}}"#,
            ),
            endpoint: crate::client::endpoint::parse_endpoint("127.0.0.1:1").unwrap(),
        };
        let msg = api_failure("put k", &res).to_string();
        assert_eq!(
            msg,
            "put k failed: 403 from http://127.0.0.1:1: forbidden: needs write (the token's role is \
             read; this needs role write: use a token with that role)"
        );
        let res = Response {
            status: hyper::StatusCode::BAD_GATEWAY,
            body: bytes::Bytes::from_static(b"proxy says no"),
            ..res
        };
        assert!(api_failure("get k", &res)
            .to_string()
            .ends_with("502 Bad Gateway from http://127.0.0.1:1: proxy says no"));
    }
}
