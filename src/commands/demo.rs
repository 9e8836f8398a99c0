//! `kvs-raft demo`: the engine under the game workload, narrated. Each claim it prints is checked; a failed
//! check ends the demo with exit code 1.

use crate::commands::output::outln;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context};
use engine::{Clock, Engine, EngineConfig, Error, Op, OpError, OpOutcome, SystemClock};

const RETENTION: Duration = Duration::from_secs(1);

struct Demo {
    engine: Engine,
    index: u64,
    last_ts: u64,
}

impl Demo {
    /// Apply one entry, synced, at a fresh strictly increasing ts (what the Raft leader will do).
    fn apply(&mut self, ops: &[Op]) -> anyhow::Result<Vec<Result<OpOutcome, OpError>>> {
        self.index += 1;
        self.last_ts = SystemClock.now_micros().max(self.last_ts + 1);
        Ok(self
            .engine
            .apply(self.index, self.last_ts, ops, true)?
            .results)
    }
}

fn show(v: &Option<engine::Versioned>) -> String {
    match v {
        Some(v) => format!(
            "{:?} (ts {}, epoch {})",
            String::from_utf8_lossy(&v.value),
            v.ts,
            v.epoch
        ),
        None => "absent".into(),
    }
}

pub fn run(data_dir: Option<PathBuf>, players: u32, updates: u32) -> anyhow::Result<()> {
    let scratch = data_dir.is_none();
    let dir = data_dir.unwrap_or_else(|| {
        std::env::temp_dir().join(format!("kvs-raft-demo-{}", std::process::id()))
    });
    let result = run_in(&dir, players, updates);
    if scratch {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn run_in(dir: &std::path::Path, players: u32, updates: u32) -> anyhow::Result<()> {
    let state = crate::node::DataDir::new(dir).state();
    let config = EngineConfig {
        retention: RETENTION,
        clock: Arc::new(SystemClock),
        ..EngineConfig::default()
    };
    let engine = Engine::open(&state, config)
        .with_context(|| format!("open engine at {}", state.display()))?;
    let applied = engine.applied();
    let mut d = Demo {
        engine,
        index: applied.index,
        last_ts: applied.ts,
    };
    outln!(
        "kvs-raft {} engine demo — data in {}",
        env!("CARGO_PKG_VERSION"),
        state.display()
    );
    outln!("retention window for this demo: {RETENTION:?}\n");

    outln!("1. player:7 sends GPS updates");
    d.apply(&[
        Op::put("player:7/pos", "48.85,2.35"),
        Op::incr("player:7/score", 10),
    ])?;
    d.apply(&[
        Op::put("player:7/pos", "48.86,2.36"),
        Op::incr("player:7/score", 5),
    ])?;
    let before = d.engine.get(b"player:7/pos", u64::MAX)?;
    outln!("   player:7/pos   = {}", show(&before));
    outln!(
        "   player:7/score = {}",
        show(&d.engine.get(b"player:7/score", u64::MAX)?)
    );
    let before_ts = d.last_ts;

    outln!("\n2. player:7 crosses checkpoint gate-1: all earlier state becomes invalid at once");
    let r = d.apply(&[Op::checkpoint("player:7", "gate-1", "lap 1")])?;
    let Ok(OpOutcome::Checkpointed { epoch, ts: cp_ts }) = r[0] else {
        bail!("checkpoint failed: {:?}", r[0])
    };
    outln!("   checkpoint → epoch {epoch} at ts {cp_ts}");
    let now = d.engine.entity(b"player:7", u64::MAX, 100, usize::MAX)?;
    let old = d.engine.get(b"player:7/pos", before_ts)?;
    ensure!(
        now.items.is_empty() && old == before,
        "checkpoint semantics broken"
    );
    outln!(
        "   read now              → {} live keys (epoch {})  ✓",
        now.items.len(),
        now.epoch
    );
    outln!(
        "   read at ts {before_ts} → pos {}  ✓ (a late packet still sees its state)",
        show(&old)
    );

    outln!("\n3. a late packet carrying the old epoch is refused");
    let r = d.apply(&[Op::put("player:7/pos", "48.80,2.30").with_epoch(Some(0))])?;
    ensure!(
        r[0] == Err(OpError::StaleEpoch { current: 1 }),
        "stale write not refused: {:?}",
        r[0]
    );
    outln!("   put epoch=0 → stale_epoch (current {epoch})  ✓, state unchanged");

    outln!("\n4. checkpoint lookups");
    let yes = d
        .engine
        .crossed(b"player:7", b"gate-1")?
        .context("crossing missing")?;
    outln!(
        "   crossed(player:7, gate-1) → yes: epoch {}, ts {}, data {:?}",
        yes.epoch,
        yes.ts,
        String::from_utf8_lossy(&yes.data)
    );
    let reads = d.engine.stats().store_reads;
    ensure!(
        d.engine.crossed(b"player:8", b"gate-1")?.is_none(),
        "phantom crossing"
    );
    let no_disk = d.engine.stats().store_reads == reads;
    outln!(
        "   crossed(player:8, gate-1) → no, answered {}",
        if no_disk {
            "by the bloom filter without a disk read  ✓"
        } else {
            "after a disk read (bloom false positive)"
        }
    );

    outln!("\n5. game workload: {players} players × {updates} updates (position put + score incr), 100 players per entry, synced");
    let start = Instant::now();
    let mut crossings = 0u64;
    for round in 0..updates {
        for chunk in (0..players).collect::<Vec<_>>().chunks(100) {
            let mut ops = Vec::with_capacity(chunk.len() * 2 + 1);
            for p in chunk {
                ops.push(Op::put(format!("player:{p}/pos"), format!("{round},{p}")));
                ops.push(Op::incr(format!("player:{p}/score"), 1));
            }
            // About 1 % of players cross a checkpoint per round.
            let crosser = chunk[0] + round % 100;
            ops.push(Op::checkpoint(
                format!("player:{crosser}"),
                format!("gate-{round}"),
                vec![],
            ));
            crossings += 1;
            d.apply(&ops)?;
        }
    }
    let elapsed = start.elapsed();
    let total = u64::from(players) * u64::from(updates);
    outln!(
        "   {total} updates and {crossings} checkpoints in {elapsed:.2?} → {:.0} updates/s",
        total as f64 / elapsed.as_secs_f64()
    );

    outln!("\n6. retention: versions older than {RETENTION:?} are gone");
    std::thread::sleep(RETENTION + Duration::from_millis(100));
    match d.engine.get(b"player:7/pos", before_ts) {
        Err(Error::VersionGone { floor, .. }) => {
            outln!("   read at ts {before_ts} → version_gone (floor {floor})  ✓")
        }
        other => bail!("expected version_gone, got {other:?}"),
    }

    outln!(
        "\n7. garbage collection (range-deletes invalidated epochs, compaction drops old versions)"
    );
    // GC follows the log's clock (the applied ts), not only the local one: one more entry moves it on.
    d.apply(&[Op::put("demo:last-write", "x")])?;
    let before = d.engine.data_entries()?;
    let mut reclaimed = 0;
    loop {
        let r = d.engine.gc_step(u64::MAX, 10_000)?;
        reclaimed += r.epochs_reclaimed;
        if !r.more {
            break;
        }
    }
    d.engine.compact()?;
    let after = d.engine.data_entries()?;
    outln!("   {reclaimed} invalidated epochs reclaimed; stored versions {before} → {after}");
    ensure!(after < before, "GC reclaimed nothing");

    let stats = d.engine.stats();
    let report = d.engine.verify()?;
    outln!(
        "\n8. verify: applied index {}, {} crossings, content sha256 {}…  ✓",
        report.applied.index,
        report.crossings,
        report.content_sha256[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    outln!(
        "   memory: block cache {} KiB, memtables {} KiB, bloom ≈ {} KiB for {} crossings",
        stats.memory.block_cache_bytes / 1024,
        stats.memory.memtable_bytes / 1024,
        stats.bloom_bytes / 1024,
        stats.bloom_items
    );
    outln!("\ndemo OK");
    Ok(())
}
