//! `kvs-raft snapshot save|status|restore`: online backup to a file, verifying a file, and seeding a
//! node of a new cluster from one. The file format, its verification and the restore itself are
//! [`crate::backup`]; this file is the command line's side: files, progress bars, output.

use crate::commands::output::outln;
use std::fs::File;
use std::io::{BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::json;

use crate::backup::format::hex;
use crate::backup::{self, RestoreTarget, Verified};
use crate::cli::{RestoreArgs, SnapshotCommand};
use crate::commands::UsageError;

mod save;

pub fn run(command: SnapshotCommand) -> anyhow::Result<()> {
    match command {
        SnapshotCommand::Save(args) => save::run(&args),
        SnapshotCommand::Status(args) => status(&args.file, args.json),
        SnapshotCommand::Restore(args) => restore(&args),
    }
}

/// A progress bar on stderr — only when stderr is a terminal and the output is not JSON. `len`: the
/// total bytes when known (a bar), else a spinner with the bytes so far and the rate.
pub(crate) fn progress(json: bool, len: Option<u64>, what: &str) -> ProgressBar {
    let target = if json || !std::io::stderr().is_terminal() {
        ProgressDrawTarget::hidden()
    } else {
        ProgressDrawTarget::stderr()
    };
    let template = match len {
        Some(_) => "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        None => "{spinner} {msg:>10} {bytes} {binary_bytes_per_sec} {elapsed}",
    };
    let bar = ProgressBar::with_draw_target(len, target);
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Open `path` for reading through a progress bar named `what`.
fn open_with_progress(path: &Path, json: bool, what: &str) -> std::io::Result<impl Read> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    Ok(progress(json, Some(len), what).wrap_read(BufReader::with_capacity(1 << 20, file)))
}

/// Verify the backup at `path` end to end (with a progress bar).
pub(crate) fn verify_file(path: &Path, json: bool) -> anyhow::Result<Verified> {
    let input = open_with_progress(path, json, "verifying")
        .with_context(|| format!("open {}", path.display()))?;
    backup::verify(input).with_context(|| format!("{} is not a valid backup", path.display()))
}

/// The JSON description of a verified file.
pub(crate) fn describe(path: &Path, v: &Verified) -> serde_json::Value {
    let h = &v.header;
    json!({
        "ok": true,
        "file": path.display().to_string(),
        "file_bytes": v.trailer.file_bytes,
        "file_sha256": hex(&v.trailer.file_sha256),
        "cluster_id": h.cluster_id,
        "node_id": h.node_id,
        "applied_index": h.applied_index,
        "applied_ts": h.applied_ts,
        "created_micros": h.created_micros,
        "voters": h.voters,
        "learners": h.learners,
        "members": h.members.iter().map(|m| json!({
            "id": m.id, "peer_addr": m.peer_addr, "client_addr": m.client_addr,
        })).collect::<Vec<_>>(),
        "membership_index": h.membership_index,
        "records": v.image.records,
        "chunks": v.image.chunks,
        "image_bytes": v.image.bytes,
        "content_sha256": hex(&v.image.sha256),
        "writer": h.writer,
    })
}

fn print_human(path: &Path, v: &Verified) {
    let h = &v.header;
    outln!(
        "file            {} ({} bytes, sha256 {})",
        path.display(),
        v.trailer.file_bytes,
        hex(&v.trailer.file_sha256)
    );
    outln!(
        "taken from      node {} of cluster {:?} at {} µs since the epoch ({})",
        h.node_id,
        h.cluster_id,
        h.created_micros,
        h.writer
    );
    outln!("applied index   {} (ts {})", h.applied_index, h.applied_ts);
    let members: Vec<String> = h
        .members
        .iter()
        .map(|m| format!("{}={}", m.id, m.peer_addr))
        .collect();
    outln!(
        "members         {} (voters {:?}, learners {:?}, as of index {})",
        members.join(","),
        h.voters,
        h.learners,
        h.membership_index
    );
    outln!(
        "image           {} records in {} chunks, content sha256 {}",
        v.image.records,
        v.image.chunks,
        hex(&v.image.sha256)
    );
}

/// `snapshot status FILE`.
fn status(path: &Path, json: bool) -> anyhow::Result<()> {
    match verify_file(path, json) {
        Ok(v) => {
            if json {
                outln!("{}", describe(path, &v));
            } else {
                print_human(path, &v);
                outln!("OK: the file is intact");
            }
            Ok(())
        }
        Err(e) => {
            if json {
                outln!(
                    "{}",
                    json!({"ok": false, "file": path.display().to_string(), "error": format!("{e:#}")})
                );
            }
            Err(e)
        }
    }
}

/// `snapshot restore FILE --data-dir DIR --id N --initial-cluster … [--cluster-id X]`.
fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    if !args.initial_cluster.contains_key(&args.id) {
        return Err(UsageError::new(
            "snapshot restore",
            format!(
                "--id {} is not one of --initial-cluster ({})",
                args.id,
                args.initial_cluster
                    .keys()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .into());
    }
    let target = RestoreTarget {
        data_dir: args.data_dir.clone(),
        node_id: args.id,
        cluster_id: args.cluster_id.clone(),
        members: args.initial_cluster.clone(),
    };
    let file: PathBuf = args.file.clone();
    let restored = backup::restore(&target, |phase| open_with_progress(&file, args.json, phase))
        .with_context(|| {
            format!(
                "restore {} from {}",
                args.data_dir.display(),
                file.display()
            )
        });
    let verified = match restored {
        Ok(v) => v,
        Err(e) => {
            if args.json {
                outln!(
                    "{}",
                    json!({"ok": false, "file": file.display().to_string(), "error": format!("{e:#}")})
                );
            }
            return Err(e);
        }
    };
    let cluster = args
        .cluster_id
        .clone()
        .unwrap_or_else(|| verified.header.cluster_id.clone());
    let initial: Vec<String> = args
        .initial_cluster
        .iter()
        .map(|(id, addr)| format!("{id}={addr}"))
        .collect();
    if args.json {
        let mut out = describe(&file, &verified);
        out["restored"] = json!({
            "data_dir": args.data_dir.display().to_string(),
            "node_id": args.id,
            "cluster_id": cluster,
            "initial_cluster": initial.join(","),
        });
        outln!("{out}");
    } else {
        print_human(&file, &verified);
        outln!(
            "restored        node {} of cluster {cluster:?} into {}",
            args.id,
            args.data_dir.display()
        );
        outln!(
            "next            kvs-raft serve --id {} --cluster-id {cluster} --data-dir {} --initial-cluster {}",
            args.id,
            args.data_dir.display(),
            initial.join(",")
        );
    }
    Ok(())
}
