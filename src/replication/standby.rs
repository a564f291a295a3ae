//! A warm standby (`aura serve --standby`): follows `replication.url`,
//! applying each database's newest replicated state through SQLite's online
//! backup API (readers see one state or the next, never a mix), serves
//! reads, and answers writes 503 + `Retry-After` (web/fence.rs). It runs no
//! background job and never writes the replica. When `aura replica promote`
//! gives it the lease, it stops following, becomes the primary (replicator
//! and every job start) and accepts writes.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use super::Deps;
use super::target::Replica;
use super::{CONTROL, lease, restore};
use crate::error::{Error, Result};
use crate::store::Detached;

const STANDBY: &str = "this appliance is a warm standby following the replica; writes go to the primary (`aura replica promote` makes this one the primary)";

/// Marks the state as a standby before the server listens.
pub fn enter(deps: &Deps, standby: bool) -> Result<()> {
    if !standby {
        return Ok(());
    }
    if !deps.config.file.replication.on() {
        return Err(Error::Config(
            "--standby needs `[replication] url`: the replica to follow".into(),
        ));
    }
    deps.status.set_standby(true);
    deps.status.set_fenced(Some(STANDBY.into()));
    Ok(())
}

/// Follows the replica until this appliance holds its lease (`aura replica
/// promote`), then marks it the primary and returns: the caller
/// (`ops::background::standby`) starts the jobs. `identity` is the drill
/// identity the replica is decrypted with.
pub async fn follow(deps: &Deps, identity: Result<age::x25519::Identity>) -> Result<()> {
    let replica = Replica::from_config(&deps.config)?
        .ok_or_else(|| Error::Config("replication is off".into()))?;
    let identity = identity.map_err(|_| {
        Error::Config(
            "a standby decrypts the replica with `backup.drill_identity_file`; set it".into(),
        )
    })?;
    let holder = lease::holder_id(&deps.config.data_dir)?;
    let scratch = deps.config.data_dir.join(".replica-follow");
    crate::store::create_private_dir(&scratch)?;
    let interval = Duration::from_millis(deps.config.file.replication.interval_ms);
    let mut applied = Applied::new();
    let mut behind = std::collections::BTreeSet::new();
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
            let due = behind.contains(&db);
            let caught = catch_up(deps, &replica, &identity, &scratch, &db, &mut applied, due);
            match caught.await {
                Ok(true) => {
                    behind.insert(db.clone());
                }
                Ok(false) => {
                    behind.remove(&db);
                }
                Err(e) => {
                    tracing::warn!(database = %db, error = %e, "standby could not apply the replica; retrying");
                }
            }
        }
        tokio::time::sleep(interval).await;
    }
    tracing::info!("promoted: this appliance holds the replica lease; now the primary");
    deps.status.set_standby(false);
    deps.status.set_fenced(None);
    Ok(())
}

/// Where the standby stands for one database: the generation and the last
/// segment applied to its local copy (`<data_dir>/.replica-follow/<db>.db`).
pub type Applied = BTreeMap<String, (String, u64)>;

/// Brings `db` to its newest replicated state: only the new segments of the
/// same generation are fetched and applied to the local copy; a new
/// generation is rebuilt from its snapshot. A workspace's files the copy
/// names are fetched before the copy replaces the live database (and those
/// it no longer names removed after). `Ok(true)`: some of those files are
/// not in the replica yet (`files_due` then retries them at the next round).
async fn catch_up(
    deps: &Deps,
    replica: &Replica,
    identity: &age::x25519::Identity,
    scratch: &Path,
    db: &str,
    applied: &mut Applied,
    files_due: bool,
) -> Result<bool> {
    let gens = restore::generations(replica, db).await?;
    let Some(g) = gens.last() else {
        return Ok(false);
    };
    let Some(snap) = &g.snapshot else {
        return Ok(false);
    };
    // Only a well-formed workspace id names a directory (a replica
    // listing is not trusted to be one).
    let ws = db.strip_prefix("ws-").filter(|w| {
        w.parse::<crate::ids::WorkspaceId>()
            .is_ok_and(|id| id.to_string() == *w)
    });
    let tenant_dir = ws.map(|w| deps.config.tenants_dir().join(w));
    let newest_seq = g.segments.last().map(|(s, _)| *s).unwrap_or(0);
    let newest_ms = g
        .segments
        .last()
        .map(|(_, o)| o.at_ms)
        .unwrap_or(snap.at_ms);
    let file = scratch.join(format!("{db}.db"));
    match applied.get(db).cloned() {
        Some((id, seq)) if id == g.id && seq == newest_seq && file.exists() => {
            return match (ws, &tenant_dir) {
                (Some(ws), Some(dir)) if files_due => {
                    Ok(super::files::follow(replica, identity, ws, &file, dir).await? > 0)
                }
                _ => Ok(false),
            };
        }
        Some((id, seq)) if id == g.id && seq < newest_seq && file.exists() => {
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(&file)?;
            for (n, o) in g.segments.iter().filter(|(n, _)| *n > seq) {
                if Some(*n) != applied.get(db).map(|a| a.1 + 1) {
                    applied.remove(db);
                    return Err(Error::internal(format!(
                        "{db}: segment {n} arrived out of order"
                    )));
                }
                super::segment::open(&replica.get(&o.name).await?, identity)?.apply(&mut f)?;
                applied.insert(db.to_owned(), (g.id.clone(), *n));
            }
            super::segment::mark_rollback(&mut f)?;
            f.sync_all()?;
        }
        _ => {
            applied.remove(db);
            if restore::rebuild(
                replica,
                db,
                Some(newest_ms),
                0,
                identity,
                &file,
                &|_, _, _| {},
            )
            .await?
            .is_none()
            {
                return Ok(false);
            }
            applied.insert(db.to_owned(), (g.id.clone(), newest_seq));
        }
    }
    let mut files_behind = false;
    if let (Some(ws), Some(dir)) = (ws, &tenant_dir) {
        crate::store::create_private_dir(dir)?;
        files_behind = super::files::follow(replica, identity, ws, &file, dir).await? > 0;
    }
    let (st, name, f) = (deps.clone(), db.to_owned(), file.clone());
    let dir = tenant_dir.clone();
    if let Err(e) = tokio::task::spawn_blocking(move || {
        apply(&st, &name, &f)?;
        match dir {
            Some(d) => super::files::follow_sweep(&f, &d).map(|_| ()),
            None => Ok(()),
        }
    })
    .await
    .map_err(|e| Error::internal(format!("standby task: {e}")))?
    {
        applied.remove(db);
        return Err(e);
    }
    deps.status.update(db, |d| {
        d.synced_ms = newest_ms;
        d.shipped_ms = newest_ms;
        d.seq = newest_seq;
        d.generation = g.id.clone();
    });
    Ok(files_behind)
}

/// Swaps the rebuilt file into the live database (or places a workspace
/// that is new here).
fn apply(deps: &Deps, db: &str, file: &Path) -> Result<()> {
    let src = Detached::read_only(file)?;
    if db == CONTROL {
        deps.control.db.replace_from(&src)?;
        // Its change log is the primary's now, not the one the cache read.
        deps.control.cache.forget_all();
        return Ok(());
    }
    let id = db.trim_start_matches("ws-");
    let ws: crate::ids::WorkspaceId = id.parse()?;
    let dir = deps.config.tenants_dir().join(ws.to_string());
    if !dir.join("data.db").exists() {
        crate::store::create_private_dir(&dir)?;
        crate::store::vacuum_into_private(&src, &dir.join("data.db"))?;
        return Ok(());
    }
    let tenant = deps.tenants.open(
        &deps.control,
        &crate::access::SystemTask::StandbyFollow.grant(ws),
    )?;
    tenant.replace_from(&src)
}
