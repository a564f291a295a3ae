//! Background work of a running server: sign audit checkpoints on a schedule,
//! verify every chain and apply retention daily. Each job runs on the blocking
//! pool and logs its outcome; a failure is logged and retried next tick.

use std::sync::Arc;
use std::time::Duration;

use crate::app::AppState;
use crate::audit::chains;

pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    // A warm standby runs no job of its own (its databases are the
    // primary's); it follows the replica and starts them when promoted.
    if state.replication.is_standby() {
        return super::background::standby(state);
    }
    let backups = spawn_scheduled(
        Arc::clone(&state),
        "backup",
        state.config.file.backup.schedule.clone(),
        backup_now,
    );
    let drills = spawn_scheduled(
        Arc::clone(&state),
        "restore drill",
        state.config.file.backup.drill_schedule.clone(),
        drill_now,
    );
    // Deletions that are due: at start, then every lifecycle.purge_interval_secs.
    let purges = super::background::purges(Arc::clone(&state));
    // Retention windows: at start, then every files.retention_interval_secs.
    let retention = super::background::retention(Arc::clone(&state));
    let integrations = crate::integrations::worker::spawn(state.integrations_deps());
    // Subprocessor notices and mail still owed: at start, then hourly.
    let notices = super::background::notices(Arc::clone(&state));
    let rotations = spawn_key_rotations(Arc::clone(&state));
    let idle_close = spawn_idle_close(Arc::clone(&state));
    let replication = crate::replication::spawn(state.replication_deps());
    tokio::spawn(async move {
        let _replication = replication.map(AbortOnDrop);
        let _guards = (
            AbortOnDrop(backups),
            AbortOnDrop(drills),
            AbortOnDrop(purges),
        );
        let _integrations = AbortOnDrop(integrations);
        let _notices = AbortOnDrop(notices);
        let _retention = AbortOnDrop(retention);
        let _rotations = AbortOnDrop(rotations);
        let _idle_close = AbortOnDrop(idle_close);
        let cfg = state.config.file.audit.clone();
        let mut checkpoint =
            tokio::time::interval(Duration::from_secs(cfg.checkpoint_interval_secs));
        let mut daily = tokio::time::interval(Duration::from_secs(cfg.verify_interval_secs));
        checkpoint.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        daily.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The first ticks fire at once: sign what changed while we were down,
        // and only then verify (the first verification would otherwise race
        // the first signing and could report entries the `aura` CLI wrote
        // while the server was stopped). Checkpoints deleted while it was
        // stopped are caught by `aura audit verify` before starting it, or
        // against an outside anchor (the restore drill); see docs/audit.md.
        if state.tenants.files_remote() {
            run_blocking(
                &state,
                "local files to the bucket",
                super::background::adopt_local_files,
            )
            .await;
        }
        checkpoint.tick().await;
        run_blocking(&state, "audit checkpoint", checkpoint_all).await;
        loop {
            tokio::select! {
                _ = checkpoint.tick() => {
                    run_blocking(&state, "audit checkpoint", checkpoint_all).await;
                    // Export archives older than an hour go even if nobody asks.
                    if let Err(e) = state.exports.prune(state.clock.unix()) {
                        tracing::warn!(error = %e, "export sweep failed");
                    }
                }
                _ = daily.tick() => run_blocking(&state, "audit verify and retention", verify_and_prune).await,
            }
        }
    })
}

/// Closes the workspace databases nobody has used for
/// `storage.tenant_idle_secs` (issue 23: thousands of workspaces, few open).
fn spawn_idle_close(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let idle = Duration::from_secs(state.config.file.storage.tenant_idle_secs.max(1));
        let mut tick = tokio::time::interval((idle / 2).max(Duration::from_millis(500)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let st = Arc::clone(&state);
            let closed = tokio::task::spawn_blocking(move || {
                let n = st.tenants.close_idle(idle);
                // Their search indexes (and decrypted chunks) go with them.
                st.indexes.prune_closed();
                // Whatever closed them (this, an eviction, a pass's visit):
                // their pages go back to the OS.
                (n, super::memory::release_after_closes())
            })
            .await;
            if let Ok((n, released)) = closed {
                if n > 0 || released {
                    tracing::debug!(closed = n, released, "idle workspace databases closed");
                }
            }
        }
    })
}

/// Data key rotations: resumed at start, then picked up within a second of a
/// request.
fn spawn_key_rotations(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Tests hold the job back to see a rotation half done (debug builds).
        if cfg!(debug_assertions) {
            if let Some(s) = std::env::var("TEST_AURA_KEY_JOB_DELAY_SECS")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                tokio::time::sleep(Duration::from_secs(s)).await;
            }
        }
        loop {
            let pending = state
                .control
                .db
                .read(crate::store::key_rotation::unfinished)
                .map(|p| !p.is_empty())
                .unwrap_or(false);
            if pending {
                run_blocking(&state, "data key rotation", |st| {
                    crate::workspace::key_rotation::run_pending(st.backup_deps())
                })
                .await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
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

/// Aborts a task when dropped (the job loops end with the server).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn spawn_scheduled(
    state: Arc<AppState>,
    what: &'static str,
    schedule: String,
    job: fn(&AppState) -> crate::error::Result<String>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Ok(schedule) = crate::ops::schedule::Schedule::parse(&schedule) else {
            return;
        };
        loop {
            let now = chrono::DateTime::from_timestamp(state.clock.unix(), 0).unwrap_or_default();
            let Some(next) = schedule.next_after(now) else {
                return;
            };
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::time::sleep(wait).await;
            run_blocking(&state, what, job).await;
        }
    })
}

/// Takes a backup, then prunes; a failure is recorded in the platform chain.
pub fn backup_now(state: &AppState) -> crate::error::Result<String> {
    match crate::backup::archive::run(state.backup_deps(), &|_| {}) {
        Ok(s) => {
            let target = crate::backup::target::LocalTarget::from_config(&state.config)?;
            let b = &state.config.file.backup;
            let pruned = crate::backup::target::prune(
                &target,
                b.keep_daily as usize,
                b.keep_weekly as usize,
            )?;
            Ok(format!(
                "backup {} ({} bytes), {pruned} pruned",
                s.id, s.size
            ))
        }
        Err(e) => {
            let _ = state.control.audit_alone(
                state.clock.unix(),
                &crate::audit::NewEntry::new(
                    crate::audit::Actor::System,
                    "backup.failed",
                    &crate::audit::RequestMeta::default(),
                )
                .after(serde_json::json!({ "error": e.to_string() })),
            );
            Err(e)
        }
    }
}

/// The identity scheduled drills use: the configured file, or the dev one.
pub fn drill_identity(state: &AppState) -> crate::error::Result<age::x25519::Identity> {
    let cfg = &state.config;
    let f = &cfg.file.backup.drill_identity_file;
    if !f.as_os_str().is_empty() {
        return crate::backup::read_identity(f);
    }
    if cfg.dev || crate::crypto::master_source::data_dir_has_dev_key(&cfg.data_dir) {
        return crate::backup::dev_identity(&cfg.data_dir);
    }
    Err(crate::error::Error::Config(
        "scheduled restore drills need `backup.drill_identity_file`; skipped".into(),
    ))
}

pub fn drill_now(state: &AppState) -> crate::error::Result<String> {
    let identity = drill_identity(state)?;
    let r = crate::backup::drill::run(state.backup_deps(), None, &identity)?;
    let backup = match r.failed_step {
        None => format!("drill of {} passed in {:.1}s", r.id, r.secs),
        Some(step) => format!("drill of {} FAILED at {step}: {}", r.id, r.detail),
    };
    // With replication on, the drill also restores a random workspace from
    // the replica at a random instant (docs/replication.md).
    Ok(
        match crate::replication::drill::run(&state.replication_deps(), &identity) {
            Ok(None) => backup,
            Ok(Some(replica)) => format!("{backup}; {replica}"),
            Err(e) => format!("{backup}; replica drill could not run: {e}"),
        },
    )
}

pub fn checkpoint_all(state: &AppState) -> crate::error::Result<String> {
    let now = state.clock.unix();
    // Housekeeping first: expired sessions go, recorded as one entry.
    let keys = state.control.keys.clone();
    let purged = state.control.db.write(|tx| {
        let n = crate::store::control::delete_expired_sessions(tx, now)?;
        if n > 0 {
            crate::store::audit::append(
                tx,
                &keys.sealer,
                now,
                &crate::audit::NewEntry::new(
                    crate::audit::Actor::System,
                    "session.expired_purged",
                    &crate::audit::RequestMeta::default(),
                )
                .after(serde_json::json!({ "sessions": n })),
            )?;
        }
        Ok(n)
    })?;
    let pass = chains::checkpoint_all_watched(
        &state.control,
        &state.tenants,
        "schedule",
        now,
        &state.checkpoint_tips,
    )?;
    record_refusals(state, &pass.refused, now)?;
    Ok(format!(
        "{} checkpoint(s) signed, {} workspace(s) opened (the others unchanged since), {purged} expired session(s) purged",
        pass.signed, pass.opened
    ))
}

/// A chain the signer refused is a failed verification: logged, stored (the
/// audit status and /trust show it) and left unsigned.
pub fn record_refusals(
    state: &AppState,
    refused: &[chains::Refused],
    now: i64,
) -> crate::error::Result<()> {
    for r in refused {
        tracing::error!(scope = %r.scope, reason = %r.reason, "audit chain not signed");
        chains::record_verification(
            &state.control,
            &crate::audit::verify::ChainReport {
                scope: r.scope.clone(),
                entries: 0,
                head_seq: r.tip_seq,
                checkpoint_seq: Some(r.tip_seq),
                first_bad_seq: Some(r.tip_seq + 1),
                reason: Some(r.reason.clone()),
            },
            now,
        )?;
    }
    Ok(())
}

fn verify_and_prune(state: &AppState) -> crate::error::Result<String> {
    let now = state.clock.unix();
    let days = state.config.file.audit.retention_days;
    let (mut ok, mut bad, mut removed) = (0, 0, 0);
    for chain in chains::all_chains(&state.control)? {
        let report = chains::verify_chain(
            &state.control,
            &state.tenants,
            chain,
            now,
            chains::max_unsigned_age(state.config.file.audit.checkpoint_interval_secs),
            &[],
        )?;
        chains::record_verification(&state.control, &report, now)?;
        if report.ok() {
            ok += 1;
            if let Some((_, n)) =
                chains::apply_retention(&state.control, &state.tenants, chain, days, now)?
            {
                removed += n;
                // The index holds the expired entries' words: it goes, files
                // and all, and the next search rebuilds it.
                let key = format!("audit:{}", chain.scope());
                match chain {
                    chains::Chain::Workspace(ws) => {
                        let dir = state.tenants.tenants_dir().join(ws.to_string());
                        let disk = crate::search::index_dir(&dir, "audit");
                        state.indexes.discard(&key, &disk);
                    }
                    chains::Chain::Platform => state.indexes.drop_index(&key),
                }
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
