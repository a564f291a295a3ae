//! systemd integration: `READY=1` once storage, keys and listeners are up,
//! `STATUS=` lines, `STOPPING=1` at shutdown, and watchdog pings from a task
//! that first proves the runtime and storage answer. Without `NOTIFY_SOCKET`
//! (not under systemd) every call is a no-op.

use std::sync::Arc;

use sd_notify::NotifyState;

use crate::app::AppState;

pub fn ready(status: &str) {
    if let Err(e) = sd_notify::notify(&[NotifyState::Ready, NotifyState::Status(status)]) {
        tracing::warn!(error = %e, "sd_notify READY failed");
    }
}

pub fn status(status: &str) {
    let _ = sd_notify::notify(&[NotifyState::Status(status)]);
}

pub fn stopping() {
    let _ = sd_notify::notify(&[
        NotifyState::Stopping,
        NotifyState::Status("draining requests"),
    ]);
}

/// Pings the watchdog at half its interval, but only while a real query
/// against control.db succeeds: a wedged runtime or storage stops the pings
/// and systemd restarts the service.
pub fn spawn_watchdog(state: Arc<AppState>) -> Option<tokio::task::JoinHandle<()>> {
    #[cfg(debug_assertions)]
    wedge_for_tests();
    let every = sd_notify::watchdog_enabled()? / 2;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            let healthy = state
                .control
                .db
                .read_async(crate::store::ops::ping)
                .await
                .is_ok();
            if healthy {
                let _ = sd_notify::notify(&[NotifyState::Watchdog]);
            } else {
                tracing::error!("storage check failed; withholding the watchdog ping");
            }
        }
    }))
}

/// Test hook, debug builds only (release builds do not contain it):
/// `AURA_TEST_WEDGE_AFTER_MS=N` blocks every runtime worker N ms after start,
/// as a deadlock in a handler would, so `tests/operator.rs` can show that a
/// wedged process stops sending watchdog pings.
#[cfg(debug_assertions)]
fn wedge_for_tests() {
    let Some(ms) = std::env::var("AURA_TEST_WEDGE_AFTER_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    let handle = tokio::runtime::Handle::current();
    let workers = handle.metrics().num_workers();
    std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(ms));
        tracing::warn!(workers, "test hook: wedging every runtime worker");
        for _ in 0..workers {
            handle.spawn(async {
                loop {
                    std::thread::sleep(std::time::Duration::from_secs(3600));
                }
            });
        }
    });
}
