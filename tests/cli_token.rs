//! `kvs-raft token create`: a random token printed once, its file line holding only its SHA-256, and
//! `--append` refusing (changing nothing) what the node would refuse.

use std::os::unix::fs::PermissionsExt as _;
use std::process::{Command, Output};

use sha2::{Digest, Sha256};

fn token(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvs-raft"))
        .arg("token")
        .args(args)
        .env_clear()
        .output()
        .expect("run kvs-raft token")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn token_create_prints_the_token_once_and_a_line_with_its_hash() {
    let out = token(&["create", "--name", "app", "--role", "write"]);
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).expect("UTF-8");
    let mut lines = stdout.lines();
    let secret = lines
        .next()
        .and_then(|l| l.strip_prefix("token: "))
        .expect("a token line");
    let line = lines
        .next()
        .and_then(|l| l.strip_prefix("line:  "))
        .expect("a file line");
    assert!(
        secret.starts_with("kvs_") && secret.len() == 4 + 43,
        "{secret}"
    );
    assert_eq!(
        line,
        format!(
            "app write sha256:{}",
            hex(&Sha256::digest(secret.as_bytes()))
        )
    );
    assert!(!line.contains(secret));
    // Another call, another token.
    let again = String::from_utf8(token(&["create", "--name", "app", "--role", "write"]).stdout)
        .expect("UTF-8");
    assert!(!again.contains(secret));
}

#[test]
fn token_create_append_makes_a_private_file_and_refuses_a_taken_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tokens");
    let path = file.to_str().expect("UTF-8 path");
    let out = token(&["create", "--name", "a", "--role", "read", "--append", path]);
    assert!(out.status.success(), "{out:?}");
    let first = String::from_utf8(out.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    let mode = std::fs::metadata(&file)
        .expect("created")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let out = token(&["create", "--name", "b", "--role", "admin", "--append", path]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).expect("read");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert_eq!(
        lines[0],
        format!("a read sha256:{}", hex(&Sha256::digest(first.as_bytes())))
    );
    assert!(lines[1].starts_with("b admin sha256:"), "{text}");

    // A taken name: refused, the file unchanged.
    let out = token(&["create", "--name", "a", "--role", "admin", "--append", path]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("appears twice"),
        "{out:?}"
    );
    assert!(out.stdout.is_empty(), "no token printed for a refused line");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);
    // A role that does not exist, or a bad name: usage or refusal, nothing written.
    let out = token(&["create", "--name", "c", "--role", "root", "--append", path]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let out = token(&[
        "create", "--name", "c d", "--role", "read", "--append", path,
    ]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).expect("read"), text);
}
