//! Background garbage collection on every replica.

use std::sync::Arc;
use std::time::Duration;

use engine::Engine;
use tokio_util::sync::CancellationToken;

/// GC steps delete at most this many old epochs' ranges each, so one step stays short.
const STEP_BUDGET: usize = 1_000;
/// Pause between GC rounds once a step found nothing more to do.
const IDLE_PAUSE: Duration = Duration::from_millis(500);

/// Reclaim what the retention window no longer covers: old versions (through the compaction filter's
/// safepoint) and invalidated epochs (range deletes), in bounded steps off the async threads. Each replica
/// does this on its own: it only removes state no read may ask for any more. Ends when `shutdown` is
/// cancelled.
pub async fn collect_garbage(engine: Arc<Engine>, shutdown: CancellationToken) {
    loop {
        let e = engine.clone();
        let step = tokio::task::spawn_blocking(move || e.gc_step(u64::MAX, STEP_BUDGET)).await;
        let more = match step {
            Ok(Ok(report)) => report.more,
            Ok(Err(err)) => {
                tracing::error!(error = %err, "GC step failed");
                false
            }
            Err(_) => false,
        };
        let pause = if more { Duration::ZERO } else { IDLE_PAUSE };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(pause) => {}
        }
    }
}
