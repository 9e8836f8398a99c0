//! `kvs-raft snapshot save FILE`: stream `GET /v1/snapshot` from the first endpoint that serves it
//! into `FILE.part`, sync it, verify it end to end, then rename it to `FILE` (and sync the directory).
//! A failed download or a file that does not verify is removed: no `FILE` is left behind (an older
//! `FILE` stays as it was).

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{describe, progress, verify_file};
use crate::backup::format::hex;
use crate::cli::SaveArgs;
use anyhow::{anyhow, bail, Context};
use serde_json::json;

/// The route that streams a backup.
const ROUTE: &str = "/v1/snapshot";
/// A download that delivers nothing for this long is given up (and the next endpoint tried).
const IDLE: Duration = Duration::from_secs(60);

pub fn run(args: &SaveArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("start the async runtime")?;
    runtime.block_on(save(args))
}

/// `FILE.part`.
fn part_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

async fn save(args: &SaveArgs) -> anyhow::Result<()> {
    if args.endpoints.is_empty() {
        bail!("no endpoint to save from (--endpoints or KVS_RAFT_ENDPOINTS)");
    }
    let part = part_path(&args.file);
    let started = Instant::now();
    let client = crate::tls::https_client(None, Duration::from_secs(5), Duration::from_secs(30));
    let mut failures = Vec::new();
    let mut served_by = None;
    for endpoint in &args.endpoints {
        match download(&client, endpoint, args.token.as_deref(), &part, args.json).await {
            Ok(()) => {
                served_by = Some(endpoint.clone());
                break;
            }
            Err(e) => {
                let _ = std::fs::remove_file(&part);
                failures.push(format!("{endpoint}: {e:#}"));
            }
        }
    }
    let Some(endpoint) = served_by else {
        bail!("no endpoint served the backup: {}", failures.join("; "));
    };
    let downloaded = started.elapsed();
    let (json, check) = (args.json, part.clone());
    let verified = tokio::task::spawn_blocking(move || verify_file(&check, json))
        .await
        .map_err(|e| anyhow!("the verification did not run: {e}"))?;
    let verified = match verified {
        Ok(v) => v,
        Err(e) => {
            let _ = std::fs::remove_file(&part);
            return Err(e.context(format!("the backup from {endpoint} was removed")));
        }
    };
    std::fs::rename(&part, &args.file)
        .with_context(|| format!("rename {} to {}", part.display(), args.file.display()))?;
    sync_parent(&args.file)?;
    let elapsed = started.elapsed();
    if args.json {
        let mut out = describe(&args.file, &verified);
        out["endpoint"] = json!(endpoint);
        out["download_ms"] = json!(downloaded.as_millis() as u64);
        out["elapsed_ms"] = json!(elapsed.as_millis() as u64);
        println!("{out}");
    } else {
        println!(
            "saved {} from {endpoint}: applied index {} (ts {}), {} bytes, sha256 {}, {} records, in {:.1?}",
            args.file.display(),
            verified.header.applied_index,
            verified.header.applied_ts,
            verified.trailer.file_bytes,
            hex(&verified.trailer.file_sha256),
            verified.image.records,
            elapsed
        );
    }
    Ok(())
}

/// Stream the backup from `endpoint` into `part` (created or truncated) and sync it.
async fn download(
    client: &hyper::Client<hyper_rustls::HttpsConnector<hyper::client::HttpConnector>>,
    endpoint: &str,
    token: Option<&str>,
    part: &Path,
    json: bool,
) -> anyhow::Result<()> {
    let url = format!("{}{ROUTE}", endpoint.trim_end_matches('/'));
    let mut req = hyper::Request::get(&url);
    if let Some(token) = token {
        req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let req = req
        .body(hyper::Body::empty())
        .with_context(|| format!("bad endpoint {endpoint:?}"))?;
    let res = client.request(req).await.context("connect")?;
    let status = res.status();
    let mut body = res.into_body();
    if !status.is_success() {
        let text = hyper::body::to_bytes(body).await.unwrap_or_default();
        bail!("{status}: {}", String::from_utf8_lossy(&text).trim());
    }
    // Plain blocking file writes: this command's runtime runs nothing else.
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(part).with_context(|| format!("create {}", part.display()))?,
    );
    let bar = progress(json, None, "saving");
    use hyper::body::HttpBody as _;
    loop {
        let chunk = tokio::time::timeout(IDLE, body.data())
            .await
            .map_err(|_| anyhow!("no data for {IDLE:?}"))?;
        match chunk {
            None => break,
            Some(Ok(bytes)) => {
                file.write_all(&bytes)
                    .with_context(|| format!("write {}", part.display()))?;
                bar.inc(bytes.len() as u64);
            }
            Some(Err(e)) => bail!("the download broke off: {e}"),
        }
    }
    bar.finish_and_clear();
    let file = file
        .into_inner()
        .map_err(|e| anyhow!("write {}: {}", part.display(), e.error()))?;
    file.sync_all()
        .with_context(|| format!("sync {}", part.display()))?;
    Ok(())
}

/// Make the rename durable.
fn sync_parent(file: &Path) -> anyhow::Result<()> {
    let parent = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("sync {}", parent.display()))
}
