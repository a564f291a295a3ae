//! Point-in-time recovery from the replica: rebuild a database file as it was
//! at an instant (snapshot + segments, each decrypted with the operator's
//! identity), then either swap it into a live workspace (beside a running
//! server, like a one-workspace backup restore) or assemble a whole new
//! data dir. Also retention: generations no instant in the window needs go.

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::catalog::{self, Generation};
use super::target::Replica;
use super::{CONTROL, workspace_db};
use super::{files, segment};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::clock::rfc3339_ms;
use crate::error::{Error, Result};

/// Reports (what, done, total) as objects are applied.
pub type Progress<'a> = &'a (dyn Fn(&str, u64, u64) + Sync);

pub async fn generations(replica: &Replica, db: &str) -> Result<Vec<Generation>> {
    Ok(catalog::parse(&replica.list(&format!("{db}/")).await?))
}

/// Writes `db` as of `at` (`None`: the newest state) into `dest`, checks its
/// integrity, and returns the instant of the state it holds; `Ok(None)` when
/// the database did not exist yet at `at`.
pub async fn rebuild(
    replica: &Replica,
    db: &str,
    at: Option<i64>,
    cutoff_ms: i64,
    identity: &age::x25519::Identity,
    dest: &Path,
    progress: Progress<'_>,
) -> Result<Option<i64>> {
    let gens = generations(replica, db).await?;
    let Some((names, state_ms)) = catalog::plan(db, &gens, at, cutoff_ms)? else {
        return Ok(None);
    };
    if let Some(p) = dest.parent() {
        crate::store::create_private_dir(p)?;
    }
    let mut file = crate::store::create_private_file(dest)?;
    let total = names.len() as u64;
    for (i, name) in names.iter().enumerate() {
        let sealed = replica.get(name).await?;
        let seg = segment::open(&sealed, identity)?;
        seg.apply(&mut file)?;
        progress(db, i as u64 + 1, total);
    }
    segment::mark_rollback(&mut file)?;
    file.flush()?;
    file.sync_all()?;
    drop(file);
    let path = dest.to_owned();
    tokio::task::spawn_blocking(move || crate::store::replica_copy::integrity(&path))
        .await
        .map_err(|e| Error::internal(format!("restore task: {e}")))??;
    Ok(Some(state_ms))
}

/// The error for an instant before a database existed.
async fn not_there(replica: &Replica, db: &str, t: i64, cutoff_ms: i64) -> Error {
    match generations(replica, db).await {
        Ok(g) => match catalog::window(&g, cutoff_ms) {
            Some((oldest, newest)) => catalog::outside(db, t, oldest, newest),
            None => Error::Usage(format!("the replica holds nothing of {db}")),
        },
        Err(e) => e,
    }
}

/// Deletes the generations no instant after `cutoff_ms` needs; returns the
/// oldest snapshot instant kept.
pub async fn apply_retention(replica: &Replica, db: &str, cutoff_ms: i64) -> Result<Option<i64>> {
    let gens = generations(replica, db).await?;
    let starts: Vec<i64> = gens
        .iter()
        .map(|g| g.snapshot.as_ref().map(|s| s.at_ms).unwrap_or(0))
        .collect();
    let mut oldest = None;
    for (i, g) in gens.iter().enumerate() {
        let superseded = starts.get(i + 1).is_some_and(|next| *next <= cutoff_ms);
        if superseded {
            replica.delete_all(&format!("{db}/{}/", g.id)).await?;
        } else if oldest.is_none() {
            oldest = Some(starts[i]);
        }
    }
    Ok(oldest)
}

/// Deletes every generation of `db` but `keep`.
pub async fn drop_generations_except(replica: &Replica, db: &str, keep: &str) -> Result<()> {
    for g in generations(replica, db).await? {
        if g.id != keep {
            replica.delete_all(&format!("{db}/{}/", g.id)).await?;
        }
    }
    Ok(())
}

fn cutoff(retention_days: u32, now_ms: i64) -> i64 {
    now_ms - i64::from(retention_days) * 86_400_000
}

/// Restores one workspace in place, beside a running server, to its state
/// at `at`, with the files that state names (fetched, checked to open with
/// the workspace key, and placed before the swap; files only the replaced
/// state named are removed after it); returns (the restored audit head, the
/// instant of the state, what was done with the files).
pub async fn workspace_in_place(
    deps: &super::Deps,
    replica: &Replica,
    ws: crate::ids::WorkspaceId,
    at: Option<i64>,
    identity: &age::x25519::Identity,
    progress: Progress<'_>,
) -> Result<(i64, i64, files::Fetched)> {
    let now = deps.clock.unix_ms();
    if at.is_some_and(|t| t > now) {
        return Err(Error::Usage("--at is in the future".into()));
    }
    let cut = cutoff(deps.config.file.replication.retention_days, now);
    let db = workspace_db(&ws.to_string());
    let scratch = deps
        .config
        .data_dir
        .join("backups")
        .join(format!(".replica-restore-{ws}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let dest = scratch.join("data.db");
    let result = async {
        let Some(state_ms) = rebuild(replica, &db, at, cut, identity, &dest, progress).await?
        else {
            return Err(not_there(replica, &db, at.unwrap_or(now), cut).await);
        };
        let id = ws.to_string();
        let live_dir = deps.config.tenants_dir().join(&id);
        let (named, fetched) =
            files::fetch_named(replica, &id, &dest, &scratch, Some(&live_dir), identity).await?;
        let st = deps.clone();
        let (src, label) = (dest.clone(), format!("replica {}", replica.label));
        let detail = json!({
            "source": "replica",
            "at": at.map(rfc3339_ms).unwrap_or_else(|| "latest".into()),
            "state_of": rfc3339_ms(state_ms),
            "files": fetched.placed,
            "files_missing": fetched.missing,
        });
        let from = scratch.clone();
        let head = tokio::task::spawn_blocking(move || {
            if !named.is_empty() {
                let escrow = crate::backup::escrow::current(&st.control, st.clock.unix())?;
                let sealer = files::sealer_from_escrow(&escrow, &st.control.master, &id)?;
                files::verify(&id, &src, &from, &named, &sealer)?;
            }
            let tenant = st
                .tenants
                .open(&st.control, &crate::access::SystemTask::Restore.grant(ws))?;
            // The state's files first, so the restored rows never name a
            // file that is not there; then the rows; then what only the
            // replaced state named goes (as a backup restore does).
            crate::store::files::restore_from(&from, &tenant.files())?;
            let head = crate::backup::restore::swap_in(st.backup(), ws, &src, &label, detail)?;
            let swept =
                tenant.read_blocking(|c, _| crate::store::files::sweep(c, &tenant.files(), false))?;
            if swept > 0 {
                tracing::info!(workspace = %ws, files = swept, "files of the replaced state removed");
            }
            Ok::<_, Error>(head)
        })
        .await
        .map_err(|e| Error::internal(format!("restore task: {e}")))??;
        Ok((head, state_ms, fetched))
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

pub struct Appliance {
    pub state_ms: i64,
    pub workspaces: usize,
    /// The workspaces' files, fetched and checked.
    pub files: files::Fetched,
    /// Workspaces the replica holds that did not exist yet at the instant.
    pub later: usize,
}

/// Restores the whole appliance as of `at` into the new dir `to`, staged
/// beside it and renamed into place only when everything rebuilt and checked.
pub async fn appliance(
    cfg: &crate::config::Config,
    replica: &Replica,
    at: Option<i64>,
    identity: &age::x25519::Identity,
    to: &Path,
    master: crate::crypto::MasterKey,
    progress: Progress<'_>,
) -> Result<Appliance> {
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        return Err(Error::Usage(format!(
            "{} is not empty; restore into a new directory",
            to.display()
        )));
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    if at.is_some_and(|t| t > now) {
        return Err(Error::Usage("--at is in the future".into()));
    }
    let cut = cutoff(cfg.file.replication.retention_days, now);
    let staging = crate::backup::restore::staging_dir(to)?;
    let result = async {
        let control = staging.join("control.db");
        let Some(state_ms) = rebuild(replica, CONTROL, at, cut, identity, &control, progress).await?
        else {
            return Err(not_there(replica, CONTROL, at.unwrap_or(now), cut).await);
        };
        let (mut workspaces, mut later) = (0, 0);
        let mut fetched = files::Fetched::default();
        let mut to_check = Vec::new();
        for db in replica.databases().await? {
            let Some(id) = db.strip_prefix("ws-") else {
                continue;
            };
            let ws: crate::ids::WorkspaceId = id.parse()?;
            let dir = staging.join("tenants").join(ws.to_string());
            let dest = dir.join("data.db");
            match rebuild(replica, &db, at, cut, identity, &dest, progress).await? {
                Some(_) => {
                    workspaces += 1;
                    let (named, got) = files::fetch_named(replica, id, &dest, &dir, None, identity).await?;
                    fetched.placed += got.placed;
                    fetched.missing += got.missing;
                    if !named.is_empty() {
                        to_check.push((id.to_owned(), dir, named));
                    }
                }
                None => later += 1,
            }
        }
        let opts = crate::store::DbOptions::from_config(&cfg.file.storage);
        let label = replica.label.clone();
        let at_text = at.map(rfc3339_ms).unwrap_or_else(|| "latest".into());
        let path = control.clone();
        tokio::task::spawn_blocking(move || {
            let c = crate::store::control::Control::open(&path, opts, master)?;
            // Each file opens with its workspace's key as the restored
            // control.db holds it.
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let escrow = crate::backup::escrow::current(&c, now)?;
            for (id, dir, named) in &to_check {
                let sealer = files::sealer_from_escrow(&escrow, &c.master, id)?;
                files::verify(id, &dir.join("data.db"), dir, named, &sealer)?;
            }
            c.audit_alone(
                time::OffsetDateTime::now_utc().unix_timestamp(),
                &NewEntry::new(Actor::Operator, "backup.restored", &RequestMeta::cli())
                    .target("replica", &label)
                    .after(json!({ "scope": "appliance", "source": "replica", "at": at_text, "state_of": rfc3339_ms(state_ms), "workspaces": workspaces, "files": fetched.placed, "files_missing": fetched.missing })),
            )?;
            c.db.checkpoint()
        })
        .await
        .map_err(|e| Error::internal(format!("restore task: {e}")))??;
        Ok(Appliance {
            state_ms,
            workspaces,
            files: fetched,
            later,
        })
    }
    .await
    .and_then(|r| {
        std::fs::rename(&staging, to)?;
        crate::backup::restore::sync_parent(to);
        Ok(r)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}
