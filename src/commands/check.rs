//! `kvs-raft check`: offline verification of a data directory.

use std::path::Path;

use anyhow::{bail, Context};
use engine::{Engine, EngineConfig};

use crate::node::DataDir;

pub fn run(data_dir: &Path, json: bool) -> anyhow::Result<()> {
    let dir = DataDir::new(data_dir).state();
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
        let out = serde_json::json!({
            "ok": true,
            "applied_index": report.applied.index,
            "applied_ts": report.applied.ts,
            "data_entries": report.data_entries,
            "entities_with_epochs": report.entities_with_epochs,
            "crossings": report.crossings,
            "gc_queue": report.gc_queue,
            "content_sha256": sha,
        });
        println!("{out}");
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
