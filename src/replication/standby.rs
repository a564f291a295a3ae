//! A warm standby (`aura serve --standby`): follows `replication.url`,
//! applying each database's newest replicated state through SQLite's online
//! backup API (readers see one state or the next, never a mix), serves
//! reads, and answers writes 503 + `Retry-After` (web/fence.rs). It runs no
//! background job and never writes the replica. When `aura replica promote`
//! gives it the lease, it stops following, becomes the primary (replicator
//! and every job start) and accepts writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::target::Replica;
use super::{CONTROL, lease, restore};
use crate::app::AppState;
use crate::error::{Error, Result};

const STANDBY: &str = "this appliance is a warm standby following the replica; writes go to the primary (`aura replica promote` makes this one the primary)";

/// Marks the state as a standby before the server listens.
pub fn enter(state: &AppState, standby: bool) -> Result<()> {
    if !standby {
        return Ok(());
    }
    if !state.config.file.replication.on() {
        return Err(Error::Config(
            "--standby needs `[replication] url`: the replica to follow".into(),
        ));
    }
    state.replication.set_standby(true);
    state.replication.set_fenced(Some(STANDBY.into()));
    Ok(())
}

pub fn spawn(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Err(e) = follow(&state).await {
            tracing::error!(error = %e, "the standby stopped following the replica");
        }
    })
}

async fn follow(state: &Arc<AppState>) -> Result<()> {
    let replica = Replica::from_config(&state.config)?
        .ok_or_else(|| Error::Config("replication is off".into()))?;
    let identity = crate::ops::jobs::drill_identity(state).map_err(|_| {
        Error::Config(
            "a standby decrypts the replica with `backup.drill_identity_file`; set it".into(),
        )
    })?;
    let holder = lease::holder_id(&state.config.data_dir)?;
    let scratch = state.config.data_dir.join(".replica-follow");
    crate::store::create_private_dir(&scratch)?;
    let interval = Duration::from_millis(state.config.file.replication.interval_ms);
    let mut applied: BTreeMap<String, String> = BTreeMap::new();
    tracing::info!(target = %replica.label, "following the replica as a warm standby");
    loop {
        if lease::read(&replica)
            .await
            .ok()
            .flatten()
            .is_some_and(|l| l.holder == holder)
        {
            break;
        }
        for db in replica.databases().await.unwrap_or_default() {
            if let Err(e) = catch_up(state, &replica, &identity, &scratch, &db, &mut applied).await
            {
                tracing::warn!(database = %db, error = %e, "standby could not apply the replica; retrying");
            }
        }
        tokio::time::sleep(interval).await;
    }
    tracing::info!("promoted: this appliance holds the replica lease; now the primary");
    state.replication.set_standby(false);
    state.replication.set_fenced(None);
    let jobs = crate::ops::jobs::spawn(Arc::clone(state));
    let _ = jobs.await;
    Ok(())
}

/// Applies `db`'s newest state when the replica has a newer object.
async fn catch_up(
    state: &Arc<AppState>,
    replica: &Replica,
    identity: &age::x25519::Identity,
    scratch: &Path,
    db: &str,
    applied: &mut BTreeMap<String, String>,
) -> Result<()> {
    let gens = restore::generations(replica, db).await?;
    let Some(newest) = gens.last().and_then(|g| {
        g.segments
            .last()
            .map(|(_, o)| o.clone())
            .or_else(|| g.snapshot.clone())
    }) else {
        return Ok(());
    };
    if applied.get(db) == Some(&newest.name) {
        return Ok(());
    }
    let file = scratch.join(format!("{db}.db"));
    let _ = std::fs::remove_file(&file);
    if restore::rebuild(replica, db, None, 0, identity, &file, &|_, _, _| {})
        .await?
        .is_none()
    {
        return Ok(());
    }
    let (st, name) = (Arc::clone(state), db.to_owned());
    let f = file.clone();
    tokio::task::spawn_blocking(move || apply(&st, &name, &f))
        .await
        .map_err(|e| Error::internal(format!("standby task: {e}")))??;
    let _ = std::fs::remove_file(&file);
    state.replication.update(db, |d| {
        d.synced_ms = newest.at_ms;
        d.shipped_ms = newest.at_ms;
    });
    applied.insert(db.to_owned(), newest.name);
    Ok(())
}

/// Swaps the rebuilt file into the live database (or places a workspace
/// that is new here).
fn apply(state: &AppState, db: &str, file: &Path) -> Result<()> {
    let src =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    if db == CONTROL {
        return state.control.db.replace_from(&src);
    }
    let id = db.trim_start_matches("ws-");
    let ws: crate::ids::WorkspaceId = id.parse()?;
    let dir = state.config.tenants_dir().join(ws.to_string());
    if !dir.join("data.db").exists() {
        crate::store::create_private_dir(&dir)?;
        crate::store::vacuum_into_private(&src, &dir.join("data.db"))?;
        return Ok(());
    }
    let tenant = state.tenants.open(
        &state.control,
        &crate::access::Grant::system(ws, "follow the replica as a standby"),
    )?;
    tenant.replace_from(&src)
}
