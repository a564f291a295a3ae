//! The wiring of background loops whose work lives in a domain module: each
//! holds the application state and lends the loop's pass the narrow deps it
//! takes, so the domain modules never name `AppState`.

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;

/// A warm standby follows the replica; once promoted, every job starts.
pub fn standby(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let identity = super::jobs::drill_identity(&state);
        if let Err(e) =
            crate::replication::standby::follow(&state.replication_deps(), identity).await
        {
            tracing::error!(error = %e, "the standby stopped following the replica");
            return;
        }
        let jobs = super::jobs::spawn(Arc::clone(&state));
        let _ = jobs.await;
    })
}

/// Deletions that are due: at start, then every `purge_interval_secs`.
pub fn purges(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let secs = state.config.file.lifecycle.purge_interval_secs.max(1);
        let mut tick = tokio::time::interval(Duration::from_secs(secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let st = Arc::clone(&state);
            let job = move || crate::lifecycle::purge_due(&st.lifecycle_deps(), &|_| {});
            match tokio::task::spawn_blocking(job).await {
                Ok(Ok(p)) => tracing::info!(job = "purge", summary = %p, "job done"),
                Ok(Err(e)) => tracing::warn!(job = "purge", error = %e, "job failed"),
                Err(e) => tracing::warn!(job = "purge", error = %e, "job panicked"),
            }
        }
    })
}

/// Retention windows: every `files.retention_interval_secs`, the
/// workspaces control.db knows to have a window; at start and then once a
/// day, every workspace (recounting the windows, so a count a failed
/// update left wrong is put right within a day).
pub fn retention(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let secs = state.config.file.files.retention_interval_secs.max(1);
        let mut tick = tokio::time::interval(Duration::from_secs(secs));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_full: Option<std::time::Instant> = None;
        loop {
            tick.tick().await;
            let all = last_full.is_none_or(|t| t.elapsed() >= Duration::from_secs(86_400));
            let run = crate::records::retention::run_all(
                &state.control,
                &state.tenants,
                &state.clock,
                all,
            );
            match run.await {
                Ok(summary) => {
                    if all {
                        last_full = Some(std::time::Instant::now());
                    }
                    tracing::info!(job = "retention", %summary, "job done");
                }
                Err(e) => tracing::warn!(job = "retention", error = %e, "job failed"),
            }
        }
    })
}

/// Subprocessor notices and the mail still owed: at start, then hourly.
pub fn notices(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match crate::notices::subprocessors::run(&state.deps()).await {
                Ok(summary) => tracing::info!(job = "notices", %summary, "job done"),
                Err(e) => tracing::warn!(job = "notices", error = %e, "job failed"),
            }
        }
    })
}

/// With files on S3, the sealed files found in workspaces' local `files/`
/// directories (a full restore writes them there; so did this appliance
/// before `[files] url` was set) go to the bucket, and the local copies go.
pub fn adopt_local_files(state: &AppState) -> crate::error::Result<String> {
    let mut moved = 0;
    let Ok(entries) = std::fs::read_dir(state.tenants.tenants_dir()) else {
        return Ok("no workspaces".into());
    };
    for e in entries.flatten() {
        let Ok(ws) = e
            .file_name()
            .to_string_lossy()
            .parse::<crate::ids::WorkspaceId>()
        else {
            continue;
        };
        if e.path().join("files").is_dir() {
            moved += crate::store::files::adopt_local(&state.tenants.blobs(ws))?;
        }
    }
    Ok(format!("{moved} local file(s) moved to the bucket"))
}
