//! Background work of a running server: sign audit checkpoints on a schedule,
//! verify every chain and apply retention daily. Each job runs on the blocking
//! pool and logs its outcome; a failure is logged and retried next tick.

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::audit::chains;

pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let cfg = state.config.file.audit.clone();
        let mut checkpoint =
            tokio::time::interval(Duration::from_secs(cfg.checkpoint_interval_secs));
        let mut daily = tokio::time::interval(Duration::from_secs(cfg.verify_interval_secs));
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        daily.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first ticks fire at once: sign what changed while we were down.
        loop {
            tokio::select! {
                _ = checkpoint.tick() => run_blocking(&state, "audit checkpoint", checkpoint_all).await,
                _ = daily.tick() => run_blocking(&state, "audit verify and retention", verify_and_prune).await,
            }
        }
    })
}

async fn run_blocking(
    state: &Arc<AppState>,
    what: &'static str,
    job: fn(&AppState) -> crate::error::Result<String>,
) {
    let st = Arc::clone(state);
    match tokio::task::spawn_blocking(move || job(&st)).await {
        Ok(Ok(summary)) => tracing::info!(job = what, %summary, "job done"),
        Ok(Err(e)) => tracing::warn!(job = what, error = %e, "job failed"),
        Err(e) => tracing::warn!(job = what, error = %e, "job panicked"),
    }
}

pub fn checkpoint_all(state: &AppState) -> crate::error::Result<String> {
    let n = chains::checkpoint_all(
        &state.control,
        &state.tenants,
        "schedule",
        state.clock.unix(),
    )?;
    Ok(format!("{n} checkpoint(s) signed"))
}

fn verify_and_prune(state: &AppState) -> crate::error::Result<String> {
    let now = state.clock.unix();
    let days = state.config.file.audit.retention_days;
    let (mut ok, mut bad, mut removed) = (0, 0, 0);
    for chain in chains::all_chains(&state.control)? {
        let report = chains::verify_chain(&state.control, &state.tenants, chain)?;
        chains::record_verification(&state.control, &report, now)?;
        if report.ok() {
            ok += 1;
            if let Some((_, n)) =
                chains::apply_retention(&state.control, &state.tenants, chain, days, now)?
            {
                removed += n;
                state
                    .indexes
                    .drop_index(&format!("audit:{}", chain.scope()));
            }
        } else {
            bad += 1;
            tracing::error!(scope = %chain.scope(), first_bad_seq = ?report.first_bad_seq, "audit chain failed verification");
        }
    }
    Ok(format!(
        "{ok} chain(s) intact, {bad} failed, {removed} expired entries removed"
    ))
}
