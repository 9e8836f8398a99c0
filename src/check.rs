//! `kvs-raft check`: offline verification of a data directory.

use std::path::Path;

use anyhow::{bail, Context};
use engine::{Engine, EngineConfig};

/// Where a node keeps its state machine inside its data directory.
pub fn state_dir(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("state")
}

pub fn run(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let dir = state_dir(data_dir);
    if !dir.join("db").is_dir() {
        bail!(
            "{} holds no kvs-raft state (expected {})",
            data_dir.display(),
            dir.join("db").display()
        );
    }
    let engine = Engine::open(&dir, EngineConfig::default())
        .with_context(|| format!("open engine at {}", dir.display()))?;
    let report = engine
        .verify()
        .with_context(|| format!("verify {}", dir.display()))?;
    let sha: String = report
        .content_sha256
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if json {
        println!(
            "{{\"ok\":true,\"applied_index\":{},\"applied_ts\":{},\"data_entries\":{},\"entities_with_epochs\":{},\"crossings\":{},\"gc_queue\":{},\"content_sha256\":\"{sha}\"}}",
            report.applied.index, report.applied.ts, report.data_entries, report.entities_with_epochs, report.crossings, report.gc_queue
        );
    } else {
        println!("data dir        {}", data_dir.display());
        println!(
            "applied index   {} (ts {})",
            report.applied.index, report.applied.ts
        );
        println!("data versions   {}", report.data_entries);
        println!(
            "entities        {} with checkpoints",
            report.entities_with_epochs
        );
        println!("crossings       {}", report.crossings);
        println!("gc queue        {}", report.gc_queue);
        println!("content sha256  {sha}");
        println!("OK");
    }
    Ok(())
}
