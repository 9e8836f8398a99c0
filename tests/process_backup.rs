//! Online backup and restore with real processes (`kvs-raft snapshot save|status|restore`):
//!
//! * a 3-node site holding 100,000 keys across 1,000 entities (with checkpoints) is backed up while
//!   writes go on; three new nodes with new ids, ports and data dirs are restored from the file and
//!   started as a new cluster, which holds exactly the source's state at the backup's applied index;
//! * a backup with one flipped byte, and a truncated one, are refused by `status` and `restore` with a
//!   clear error, and `restore` creates nothing.
//!
//! How "exactly the source's state at the applied index" is shown: (1) `check --json` on each restored
//! data dir, before it starts, prints a content hash equal to the image's own record hash that
//! `snapshot status` prints — the restored engine is byte for byte the image; (2) the image is the
//! source at index A: a full scan of the source *at* the image's applied ts T (the source keeps 10
//! minutes of versions) equals a full scan of the restored site, and every write acknowledged during the
//! backup is in the restored site exactly when its ts ≤ T (timestamps rise with the log index, so ts ≤
//! T ⇔ index ≤ A).

mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::http::Http;
use common::proc::Cluster;
use common::{await_leader, wait_for};
use serde_json::{json, Value};

fn http() -> Http {
    Http::new(Duration::from_secs(30))
}

fn kvs(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvs-raft"))
        .args(args)
        .env_remove("KVS_RAFT_ENDPOINTS")
        .output()
        .expect("run kvs-raft")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// `snapshot status FILE --json`: exit status and report.
fn status(file: &Path) -> (Output, Value) {
    let out = kvs(&["snapshot", "status", path_str(file), "--json"]);
    let v = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, v)
}

/// `snapshot restore FILE` as node `id` of the cluster `initial` into `dir`.
fn restore(file: &Path, dir: &Path, id: u64, initial: &str, cluster_id: &str) -> Output {
    kvs(&[
        "snapshot",
        "restore",
        path_str(file),
        "--data-dir",
        path_str(dir),
        "--id",
        &id.to_string(),
        "--initial-cluster",
        initial,
        "--cluster-id",
        cluster_id,
        "--json",
    ])
}

/// A full scan (key → value) of the store through `addr`, at `at` if given.
async fn scan(http: &Http, addr: SocketAddr, at: Option<u64>) -> BTreeMap<String, String> {
    let query = at.map_or("consistency=linearizable".to_owned(), |t| format!("at={t}"));
    common::scan_all_with(http, addr, &query)
        .await
        .unwrap_or_else(|e| panic!("scan: {e}"))
}

/// Each node's resident set size, from its `/metrics`.
async fn rss(http: &Http, cluster: &Cluster) -> Vec<u64> {
    let mut out = Vec::new();
    for id in cluster.ids() {
        let r = http
            .get(cluster.addr(id), "/metrics")
            .await
            .expect("metrics");
        let text = r.text();
        let line = text
            .lines()
            .find(|l| !l.starts_with('#') && l.contains("process_resident_memory_bytes"))
            .unwrap_or_else(|| panic!("no RSS metric on node {id}"));
        let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
        out.push(value.expect("an RSS value") as u64);
    }
    out
}

async fn batch(http: &Http, addr: SocketAddr, ops: Vec<Value>) -> Value {
    let r = http
        .post_json(addr, "/v1/batch", &json!({ "ops": ops }))
        .await
        .expect("batch");
    assert_eq!(r.status, 200, "batch: {r}");
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_site_backed_up_while_writing_restores_into_a_new_cluster_with_exactly_its_state() {
    let http = http();
    let mut source = Cluster::start_with("backup-src", 3, |node| {
        // Reads at the backup's ts must still be answerable when the test compares.
        node.env.push(("KVS_RAFT_RETENTION".into(), "10m".into()));
    });
    source
        .wait_serving(&http, &[1, 2, 3], Duration::from_secs(30))
        .await;
    let (leader, _) = await_leader(&source, &http, &[1, 2, 3], Duration::from_secs(20)).await;
    let via = source.addr(leader);

    // 100,000 keys across 1,000 entities, then a checkpoint of every 10th entity (its keys become
    // invisible) and 10 new keys for each of those.
    let started = Instant::now();
    for chunk in 0..50 {
        let ops = (0..2_000)
            .map(|i| {
                let n = chunk * 2_000 + i;
                json!({"op": "put", "key": format!("p{}/k{}", n % 1_000, n / 1_000), "value": format!("v{n}")})
            })
            .collect();
        batch(&http, via, ops).await;
    }
    let checkpoints = (0..1_000)
        .step_by(10)
        .map(
            |e| json!({"op": "checkpoint", "entity": format!("p{e}"), "name": "gate", "data": "d"}),
        )
        .collect();
    batch(&http, via, checkpoints).await;
    let after = (0..1_000)
        .step_by(10)
        .flat_map(|e| {
            (0..10)
                .map(move |k| json!({"op": "put", "key": format!("p{e}/n{k}"), "value": "after"}))
        })
        .collect();
    batch(&http, via, after).await;
    println!(
        "source: 101,000 puts and 100 checkpoints in {:?}",
        started.elapsed()
    );

    // Writes go on while the backup is taken: each acknowledged one is recorded with its ts.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let writer = {
        let (stop, acked, http) = (stop.clone(), acked.clone(), http.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let key = format!("live/w{n}");
                let r = http.put(via, &format!("/v1/kv/{key}"), b"x").await;
                if let Ok(r) = r {
                    if r.status == 200 {
                        acked
                            .lock()
                            .expect("lock")
                            .push((key, r.json()["ts"].as_u64().expect("ts")));
                    }
                }
                n += 1;
            }
        })
    };
    wait_for(
        "writes during the backup",
        Duration::from_secs(10),
        async || acked.lock().expect("lock").len() >= 5,
    )
    .await;
    let root = tempfile::tempdir().expect("tempdir");
    let file = root.path().join("site.kvsbak");
    let rss_before = rss(&http, &source).await;
    let t0 = Instant::now();
    let saved = tokio::task::spawn_blocking({
        let file = file.clone();
        let source = source_endpoints(&source);
        move || save_to(&source, &file)
    })
    .await
    .expect("save task");
    let save_time = t0.elapsed();
    let rss_after = rss(&http, &source).await;
    println!("source RSS before the backup {rss_before:?}, after it {rss_after:?} (bytes)");
    // A few more writes after the save, then stop writing.
    let n_before = acked.lock().expect("lock").len();
    wait_for(
        "writes after the backup",
        Duration::from_secs(10),
        async || acked.lock().expect("lock").len() >= n_before + 5,
    )
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
    assert!(!root.path().join("site.kvsbak.part").exists());

    let (out, st) = status(&file);
    assert!(out.status.success(), "{st}");
    let applied_index = st["applied_index"].as_u64().expect("applied index");
    let applied_ts = st["applied_ts"].as_u64().expect("applied ts");
    let image_sha = st["content_sha256"]
        .as_str()
        .expect("content sha")
        .to_owned();
    assert_eq!(saved["applied_index"], st["applied_index"]);
    assert_eq!(saved["file_sha256"], st["file_sha256"]);
    assert_eq!(st["cluster_id"], source.cluster_id.as_str());
    let size = std::fs::metadata(&file).expect("file").len();
    assert_eq!(st["file_bytes"].as_u64(), Some(size));
    let acked = acked.lock().expect("lock").clone();
    let (inside, outside): (Vec<_>, Vec<_>) = acked.iter().partition(|(_, ts)| *ts <= applied_ts);
    println!(
        "backup: applied index {applied_index} (ts {applied_ts}), {size} bytes, {} records, saved in \
         {save_time:?}, sha256 {}; {} writes during the run ({} inside the image, {} after it)",
        st["records"],
        st["file_sha256"],
        acked.len(),
        inside.len(),
        outside.len()
    );
    assert!(!outside.is_empty(), "no write landed after the image's ts");

    // The source at the image's ts: the reference the restored site must equal.
    let expected = scan(&http, via, Some(applied_ts)).await;
    assert_eq!(
        expected.keys().filter(|k| k.starts_with('p')).count(),
        91_000,
        "900 entities × 100 keys + 100 checkpointed entities × 10 new keys"
    );

    // Three new nodes, new ids and ports, one new cluster; each restored from the same file.
    let new_id = "restored-site";
    let mut restored = Cluster::unstarted("backup-dst", new_id, &[11, 12, 13]);
    let initial = restored.initial_cluster().to_owned();
    for id in restored.ids() {
        let dir = restored.nodes[&id].data_dir.clone();
        let t = Instant::now();
        let out = restore(&file, &dir, id, &initial, new_id);
        assert!(
            out.status.success(),
            "restore node {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: Value = serde_json::from_slice(&out.stdout).expect("restore JSON");
        assert_eq!(report["applied_index"].as_u64(), Some(applied_index));
        // Before it ever starts: every check passes and its content is the image's, byte for byte.
        let check = kvs(&[
            "check",
            "--json",
            "--data-dir",
            path_str(&dir),
            "--id",
            &id.to_string(),
            "--cluster-id",
            new_id,
        ]);
        let c: Value = serde_json::from_slice(&check.stdout).expect("check JSON");
        assert!(check.status.success(), "check of restored node {id}: {c:#}");
        assert_eq!(c["content_sha256"], image_sha.as_str(), "node {id}");
        assert_eq!(c["applied_index"].as_u64(), Some(applied_index));
        assert_eq!(c["first_index"].as_u64(), Some(applied_index + 1));
        assert_eq!(c["commit"].as_u64(), Some(applied_index));
        assert_eq!(c["voters"], json!([11, 12, 13]));
        println!(
            "restored node {id} in {:?}: content sha256 = image's",
            t.elapsed()
        );
    }
    for id in restored.ids() {
        restored.spawn(id);
    }
    let ids = restored.ids();
    restored
        .wait_serving(&http, &ids, Duration::from_secs(60))
        .await;
    let (new_leader, term) = await_leader(&restored, &http, &ids, Duration::from_secs(30)).await;
    let got = scan(&http, restored.addr(new_leader), None).await;
    let differences = common::diff(&expected, &got, 10);
    assert!(
        differences.is_empty(),
        "the restored site differs from the source at ts {applied_ts}: {differences:?}"
    );
    for (key, ts) in &acked {
        let present = got.contains_key(key);
        assert_eq!(
            present,
            *ts <= applied_ts,
            "{key} (ts {ts}) present={present}, image ts {applied_ts}"
        );
    }
    // A checkpointed entity's old keys stay invisible, its crossing is there.
    let r = http
        .get(
            restored.addr(new_leader),
            "/v1/entities/p10/checkpoints/gate",
        )
        .await
        .expect("crossed");
    assert_eq!(r.status, 200, "{r}");

    // Writes work on the restored cluster, and timestamps keep rising past the image's.
    let r = http
        .put(restored.addr(new_leader), "/v1/kv/after/restore", b"yes")
        .await
        .expect("put");
    assert_eq!(r.status, 200, "{r}");
    let ts = r.json()["ts"].as_u64().expect("ts");
    assert!(
        ts > applied_ts,
        "new ts {ts} not above the image's {applied_ts}"
    );
    let follower = ids
        .iter()
        .copied()
        .find(|&i| i != new_leader)
        .expect("follower");
    let r = http
        .put(restored.addr(follower), "/v1/kv/after/forwarded", b"yes")
        .await
        .expect("put via follower");
    assert_eq!(r.status, 200, "{r}");
    println!(
        "restored site: leader {new_leader} in term {term}, {} keys equal to the source at ts \
         {applied_ts}; new write at ts {ts}",
        got.len()
    );
}

/// The client URLs of every node.
fn source_endpoints(cluster: &Cluster) -> Vec<String> {
    cluster
        .ids()
        .iter()
        .map(|&id| format!("http://{}", cluster.addr(id)))
        .collect()
}

/// `snapshot save FILE` against `endpoints` (failover in that order); its JSON.
fn save_to(endpoints: &[String], file: &Path) -> Value {
    let out = kvs(&[
        "snapshot",
        "save",
        path_str(file),
        "--endpoints",
        &endpoints.join(","),
        "--json",
    ]);
    assert!(
        out.status.success(),
        "snapshot save: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("save prints JSON")
}

/// A small one-node site and a backup of it.
async fn small_backup(name: &str, dir: &Path) -> (Cluster, PathBuf) {
    let http = http();
    let mut cluster = Cluster::start(name, 1);
    cluster
        .wait_serving(&http, &[1], Duration::from_secs(30))
        .await;
    await_leader(&cluster, &http, &[1], Duration::from_secs(15)).await;
    let ops = (0..500)
        .map(|i| json!({"op": "put", "key": format!("e{}/k{i}", i % 10), "value": format!("{i}")}))
        .collect();
    batch(&http, cluster.addr(1), ops).await;
    let file = dir.join("small.kvsbak");
    let saved = save_to(&source_endpoints(&cluster), &file);
    assert!(
        saved["applied_index"].as_u64().is_some_and(|i| i > 0),
        "{saved}"
    );
    (cluster, file)
}

/// `status` and `restore` both refuse `file` with a message containing one of `words`; the restore's
/// data dir is not created.
fn assert_refused(file: &Path, words: &[&str], what: &str) {
    let (out, v) = status(file);
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: status accepted it: {v}"
    );
    assert_eq!(v["ok"], false, "{what}: {v}");
    assert!(
        words.iter().any(|w| stderr.contains(w)),
        "{what}: unclear error from status: {stderr}"
    );
    let target = tempfile::tempdir().expect("tempdir");
    let dir = target.path().join("node");
    let out = restore(file, &dir, 1, "1=127.0.0.1:7380", "x");
    let stderr = String::from_utf8_lossy(&out.stderr).to_lowercase();
    assert_eq!(out.status.code(), Some(1), "{what}: restore accepted it");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    assert_eq!(v["ok"], false, "{what}: restore --json: {v}");
    assert!(
        words.iter().any(|w| stderr.contains(w)),
        "{what}: unclear error from restore: {stderr}"
    );
    assert!(!dir.exists(), "{what}: restore created {}", dir.display());
    println!("{what}: refused by status and restore: {}", stderr.trim());
}

#[test]
fn the_snapshot_and_check_help_ends_with_examples() {
    for sub in [
        &["snapshot", "save"][..],
        &["snapshot", "status"],
        &["snapshot", "restore"],
        &["check"],
    ] {
        let mut args = sub.to_vec();
        args.push("--help");
        let out = kvs(&args);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub:?}: {help}");
        let tail = help.rsplit("Examples").next().unwrap_or("");
        assert!(tail.contains("kvs-raft "), "{sub:?} --help:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flipped_byte_or_a_truncated_backup_is_refused_and_creates_nothing() {
    let root = tempfile::tempdir().expect("tempdir");
    let (_cluster, file) = small_backup("backup-bad", root.path()).await;
    let bytes = std::fs::read(&file).expect("read backup");
    let (out, v) = status(&file);
    assert!(out.status.success(), "{v}");

    let flipped = root.path().join("flipped.kvsbak");
    let mut b = bytes.clone();
    let mid = b.len() / 2;
    b[mid] ^= 0x20;
    std::fs::write(&flipped, &b).expect("write");
    assert_refused(&flipped, &["corrupt"], "one flipped byte");

    let truncated = root.path().join("truncated.kvsbak");
    std::fs::write(&truncated, &bytes[..bytes.len() * 2 / 3]).expect("write");
    assert_refused(&truncated, &["truncated", "corrupt"], "a truncated file");

    // A flipped byte in the header (outside the image) is caught by the whole-file checksum.
    let header_flip = root.path().join("header.kvsbak");
    let mut b = bytes.clone();
    let at = bytes
        .windows(4)
        .position(|w| w == b"node")
        .expect("the header names the node");
    b[at] ^= 0x01;
    std::fs::write(&header_flip, &b).expect("write");
    assert_refused(&header_flip, &["corrupt"], "a flipped byte in the header");

    // A save that no node serves leaves neither FILE nor FILE.part.
    let nowhere = root.path().join("nowhere.kvsbak");
    let out = kvs(&[
        "snapshot",
        "save",
        path_str(&nowhere),
        "--endpoints",
        "http://127.0.0.1:1",
        "--timeout",
        "2s",
    ]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!nowhere.exists() && !root.path().join("nowhere.kvsbak.part").exists());

    // A node that is not one of the new members is a usage error (exit 2), before anything is read.
    let out = restore(
        &file,
        &root.path().join("stranger"),
        7,
        "1=127.0.0.1:7380",
        "x",
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!root.path().join("stranger").exists());

    // A good file is not restored into a data dir that holds anything.
    let busy = root.path().join("busy");
    std::fs::create_dir_all(&busy).expect("mkdir");
    std::fs::write(busy.join("keep"), b"x").expect("write");
    let out = restore(&file, &busy, 1, "1=127.0.0.1:7380", "x");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let left: Vec<_> = std::fs::read_dir(&busy).expect("ls").flatten().collect();
    assert_eq!(left.len(), 1, "restore changed a non-empty dir");
}
