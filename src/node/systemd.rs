//! The systemd notify protocol (`Type=notify`, sd_notify(3)), through the `sd-notify` crate: `READY=1`
//! once the node serves requests, `WATCHDOG=1` fed by the Raft loop itself, `STOPPING=1` when the
//! shutdown starts, and `STATUS=` lines saying what the node waits for. Every message is a no-op when the
//! process was not started with `NOTIFY_SOCKET` (a shell, a container, the tests that don't ask for it).
//!
//! Why the watchdog is fed from the loop: `WatchdogSec=` is there to restart a node that is alive but no
//! longer works. A timer task on the async runtime would keep petting the watchdog while the Raft loop
//! is stuck (an fsync that never returns, a wedged turn); the loop's own [`LoopHook`] runs only after a
//! turn completed, so when the loop stops turning the pings stop and systemd restarts the service.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use raft_node::LoopHook;
use sd_notify::NotifyState;
use tokio_util::sync::CancellationToken;

use crate::http::Backend;

/// How often readiness is checked before `READY=1`.
const READY_POLL: Duration = Duration::from_millis(20);

/// Send `states`; a failure is logged, never fatal (the service manager may be gone).
pub fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::warn!(error = %e, "cannot notify the service manager (NOTIFY_SOCKET)");
    }
}

/// The hook that feeds the watchdog from the Raft loop, when the service manager asked for one
/// (`WATCHDOG_USEC`, and `WATCHDOG_PID` naming this process if set): `WATCHDOG=1` at most every half
/// period, as sd_watchdog_enabled(3) advises.
pub fn watchdog_hook() -> Option<LoopHook> {
    let period = sd_notify::watchdog_enabled()?;
    let every = period / 2;
    tracing::info!(period = ?period, "systemd watchdog on: fed by the Raft loop every {every:?}");
    let last: Mutex<Option<Instant>> = Mutex::new(None);
    Some(LoopHook(std::sync::Arc::new(move || {
        let now = Instant::now();
        // The loop's thread is the only caller: the lock is never contended.
        let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|at| now.duration_since(at) >= every) {
            *last = Some(now);
            notify(&[NotifyState::Watchdog]);
        }
    })))
}

/// `READY=1` once the node is ready as `/readyz` sees it (a leader known, applied caught up, the data
/// dir writable) — not merely started: a unit ordered `After=kvs-raft.service` may write at once. Until
/// then `STATUS=` says what is missing. Gives up silently when `stop` is cancelled first.
pub async fn ready_when_serving<B: Backend>(backend: B, stop: CancellationToken) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    let mut said = String::new();
    loop {
        let readiness = backend.readiness();
        if readiness.ready() {
            notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
            tracing::info!("told the service manager: ready");
            return;
        }
        let status = format!("starting: {}", readiness.detail.join("; "));
        if status != said {
            notify(&[NotifyState::Status(&status)]);
            said = status;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(READY_POLL) => {}
        }
    }
}

/// `STOPPING=1`: the graceful shutdown has begun.
pub fn stopping(why: &str) {
    notify(&[NotifyState::Stopping, NotifyState::Status(why)]);
}
