//! `kvs-raft serve` as operators run it: invalid configurations exit with code 2 and say what to fix, before
//! anything is created; `serve --help` lists every flag.

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// Runs the binary with a clean environment in `dir`; kills it if it runs past a deadline (a configuration
/// that validated by mistake would start a server).
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kvs-raft"));
    cmd.args(args)
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn kvs-raft");
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kvs-raft {args:?} still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .expect("read stdout");
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    Outcome {
        code: status.code(),
        stdout,
        stderr,
    }
}

fn run(args: &[&str], env: &[(&str, &str)]) -> (Outcome, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_in(dir.path(), args, env);
    (out, dir)
}

/// Exit code 2, every `parts` in stderr, and nothing created in the working directory.
fn assert_usage_error(args: &[&str], env: &[(&str, &str)], parts: &[&str]) {
    let (out, dir) = run(args, env);
    assert_eq!(
        out.code,
        Some(2),
        "kvs-raft {args:?}: stdout {:?} stderr {:?}",
        out.stdout,
        out.stderr
    );
    for p in parts {
        assert!(
            out.stderr.contains(p),
            "kvs-raft {args:?}: stderr {:?} lacks {p:?}",
            out.stderr
        );
    }
    let created: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert!(created.is_empty(), "kvs-raft {args:?} created {created:?}");
}

#[test]
fn serve_help_lists_every_flag() {
    let (out, _dir) = run(&["serve", "--help"], &[]);
    assert_eq!(out.code, Some(0), "stderr {:?}", out.stderr);
    for flag in [
        "--config",
        "--id",
        "--cluster-id",
        "--data-dir",
        "--listen-client",
        "--listen-peer",
        "--initial-cluster",
        "--join",
        "--advertise-client",
        "--advertise-peer",
        "--retention",
        "--engine-sync",
        "--pd",
        "--site",
        "--peer-secret-file",
    ] {
        assert!(
            out.stdout.contains(flag),
            "serve --help lacks {flag}:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("KVS_RAFT_"),
        "help explains the env variables"
    );
}

/// Every built-in default appears in `serve --help` exactly as the configuration applies it: on its
/// flag's entry when the setting has a flag, else in the list of settings without a flag. Both `-h` and
/// `--help` say so.
#[test]
fn serve_help_shows_the_configuration_defaults() {
    let defaults = kvs_raft::config::defaults();
    assert!(defaults.len() >= 15, "{defaults:?}");
    for help_flag in ["--help", "-h"] {
        let (out, _dir) = run(&["serve", help_flag], &[]);
        assert_eq!(out.code, Some(0), "stderr {:?}", out.stderr);
        let text = out.stdout.replace('\n', " ");
        for (key, value) in &defaults {
            let flag = format!("--{}", key.replace('_', "-"));
            let shown = format!("[default: {value}]");
            // The flag's own entry: from its name to the next flag.
            let entry = text.find(&format!("{flag} ")).map(|at| {
                let rest = &text[at + flag.len()..];
                let end = rest.find("  --").unwrap_or(rest.len());
                &rest[..end]
            });
            match entry {
                Some(entry) => assert!(
                    entry.contains(&shown),
                    "{help_flag}: {flag} does not show {shown}: {entry:?}"
                ),
                None if help_flag == "--help" => {
                    let listed = out.stdout.lines().any(|l| {
                        l.split_whitespace().collect::<Vec<_>>() == [*key, value.as_str()]
                    });
                    assert!(listed, "{key} = {value} not listed:\n{}", out.stdout);
                }
                None => {} // `-h` shows no after-help list
            }
        }
    }
}

#[test]
fn serve_bad_values_exit_2_with_a_clear_message() {
    assert_usage_error(
        &["serve", "--id", "0"],
        &[],
        &["invalid value \"0\" for --id", "≥ 1"],
    );
    assert_usage_error(
        &["serve", "--retention", "5x"],
        &[],
        &["--retention", "500ms, 5s or 2m"],
    );
    assert_usage_error(&["serve", "--cluster-id", "a b"], &[], &["--cluster-id"]);
    assert_usage_error(
        &["serve", "--listen-client", "localhost:7379"],
        &[],
        &["--listen-client", "not a host name"],
    );
}

#[test]
fn serve_inconsistent_flags_exit_2() {
    assert_usage_error(
        &[
            "serve",
            "--initial-cluster",
            "1=127.0.0.1:7380",
            "--join",
            "http://127.0.0.1:7379",
        ],
        &[],
        &["--initial-cluster and --join are exclusive"],
    );
    assert_usage_error(
        &[
            "serve",
            "--id",
            "4",
            "--initial-cluster",
            "1=127.0.0.1:7380,2=127.0.0.1:7382,3=127.0.0.1:7384",
        ],
        &[],
        &["--id 4 is not a member of --initial-cluster"],
    );
    assert_usage_error(
        &[
            "serve",
            "--initial-cluster",
            "1=127.0.0.1:7380,2=127.0.0.1:7380",
        ],
        &[],
        &["same address"],
    );
    assert_usage_error(
        &["serve", "--listen-client", "0.0.0.0:7379"],
        &[],
        &["--advertise-client"],
    );
}

#[test]
fn serve_env_and_config_file_errors_exit_2() {
    assert_usage_error(
        &["serve"],
        &[("KVS_RAFT_RETENTION", "soon")],
        &["KVS_RAFT_RETENTION"],
    );
    assert_usage_error(
        &["serve", "--config", "/nonexistent/kvs-raft.toml"],
        &[],
        &["cannot read config file /nonexistent/kvs-raft.toml"],
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("kvs-raft.toml");
    std::fs::write(&path, "id = 1\nretentoin = \"5s\"\n").expect("write config");
    let path = path.to_str().expect("utf-8 path");
    assert_usage_error(
        &["serve", "--config", path],
        &[],
        &["unknown field `retentoin`"],
    );
    assert_usage_error(&["serve"], &[("KVS_RAFT_CONFIG", path)], &["retentoin"]);
}

#[test]
fn serve_unknown_flag_is_a_clap_usage_error() {
    assert_usage_error(&["serve", "--bogus"], &[], &["--bogus"]);
    assert_usage_error(
        &["serve", "--engine-sync", "never"],
        &[],
        &["--engine-sync"],
    );
}

/// `kvs-raft serve` on free loopback ports in `dir`, under `ulimit` settings (a shell runs them, then
/// execs the binary, so the child's pid is the server's).
fn serve_under_ulimit(dir: &Path, ulimits: &str) -> std::process::Child {
    let port = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port()
    };
    let script = format!(
        "{ulimits} && exec '{}' serve --data-dir data --listen-client 127.0.0.1:{} --listen-peer 127.0.0.1:{}",
        env!("CARGO_BIN_EXE_kvs-raft"),
        port(),
        port()
    );
    Command::new("sh")
        .args(["-c", &script])
        .current_dir(dir)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh")
}

#[test]
fn serve_refuses_to_start_when_the_open_file_hard_limit_is_too_low() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = serve_under_ulimit(dir.path(), "ulimit -Sn 512 && ulimit -Hn 512");
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("kvs-raft serve started under a 512 open-file hard limit instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("open-file limit"), "{stderr}");
    assert!(stderr.contains("512"), "{stderr}");
}

#[test]
fn serve_raises_a_low_open_file_soft_limit_it_may_raise() {
    let hard = std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|l| {
            let line = l
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_string();
            line.split_whitespace().nth(4)?.parse::<u64>().ok()
        });
    let Some(hard) = hard.filter(|h| *h >= 8_192) else {
        eprintln!("SKIPPED: the hard open-file limit here is below 8192 (or unreadable)");
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut child = serve_under_ulimit(dir.path(), "ulimit -Sn 512");
    let limits = format!("/proc/{}/limits", child.id());
    let deadline = Instant::now() + Duration::from_secs(20);
    let soft = loop {
        let soft = std::fs::read_to_string(&limits).ok().and_then(|l| {
            let line = l
                .lines()
                .find(|l| l.starts_with("Max open files"))?
                .to_string();
            line.split_whitespace().nth(3)?.parse::<u64>().ok()
        });
        if soft.is_some_and(|s| s > 512) || Instant::now() > deadline {
            break soft;
        }
        if let Some(status) = child.try_wait().expect("wait") {
            panic!("kvs-raft serve exited: {status}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = child.kill();
    let _ = child.wait();
    let soft = soft.expect("read the server's limits");
    assert!(
        soft > 512 && soft <= hard,
        "soft limit {soft} (hard {hard})"
    );
}
