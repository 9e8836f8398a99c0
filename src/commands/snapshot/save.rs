//! `kvs-raft snapshot save FILE`: stream `GET /v1/snapshot` from the first endpoint that serves it
//! (the shared client: failover until a head arrives, token, TLS) into `FILE.part`, sync it, verify it
//! end to end, then rename it to `FILE` (and sync the directory). A failed download or a file that does
//! not verify is removed: no `FILE` is left behind (an older `FILE` stays as it was).

use crate::commands::output::outln;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use hyper::body::HttpBody as _;
use serde_json::json;

use super::{describe, progress, verify_file};
use crate::backup::format::hex;
use crate::cli::SaveArgs;
use crate::client::StreamingResponse;
use crate::commands::output::api_failure;
use crate::commands::{block_on, connect};

/// The route that streams a backup.
const ROUTE: &str = "/v1/snapshot";

pub fn run(args: &SaveArgs) -> anyhow::Result<()> {
    block_on(save(args))
}

/// `FILE.part`.
fn part_path(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".part");
    PathBuf::from(name)
}

async fn save(args: &SaveArgs) -> anyhow::Result<()> {
    let json = args.client.json;
    let client = connect(&args.client, "snapshot save")?;
    let started = Instant::now();
    let download = client.get_stream(ROUTE).await?;
    if !download.status.is_success() {
        let res = download.collect(&client).await?;
        return Err(api_failure("snapshot save", &res));
    }
    let endpoint = download.endpoint.to_string();
    let part = part_path(&args.file);
    if let Err(e) = receive(download, &part, args.client.timeout, json).await {
        let _ = std::fs::remove_file(&part);
        return Err(e.context(format!("the backup from {endpoint} was not saved")));
    }
    let downloaded = started.elapsed();
    let check = part.clone();
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
    if json {
        let mut out = describe(&args.file, &verified);
        out["endpoint"] = json!(endpoint);
        out["download_ms"] = json!(u64::try_from(downloaded.as_millis()).unwrap_or(u64::MAX));
        out["elapsed_ms"] = json!(u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX));
        outln!("{out}");
    } else {
        outln!(
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

/// Write the streamed body into `part` (created or truncated) and sync it. Each chunk must arrive
/// within `idle`.
async fn receive(
    mut download: StreamingResponse,
    part: &Path,
    idle: Duration,
    json: bool,
) -> anyhow::Result<()> {
    // Plain blocking file writes: this command's runtime runs nothing else.
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(part).with_context(|| format!("create {}", part.display()))?,
    );
    let bar = progress(json, download.content_length(), "saving");
    loop {
        let chunk = tokio::time::timeout(idle, download.body.data())
            .await
            .map_err(|_| anyhow!("no data for {idle:?} (--timeout)"))?;
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
        .with_context(|| format!("sync {}", part.display()))
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
