//! Restoring the whole appliance into a new data dir, which `aura serve`
//! then runs with the same master key. The archive is checked exactly like a
//! drill before the new dir is usable, and the escrowed workspace keys are put
//! back into its control.db.

use std::path::Path;

use serde_json::json;

use super::archive;
use super::drill::{BackupTrust, check_unpacked};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::store::DbOptions;
use crate::store::Detached;
use crate::store::backup as backup_sql;
use crate::store::control::Control;

pub struct Restored {
    pub id: String,
    pub workspaces: usize,
    /// Workspaces in the archive whose keys were destroyed since (skipped).
    pub shredded: usize,
}

/// Restores into a staging dir beside `to` and renames it into place only
/// when every check passed and the keys are back: a rejected archive, a full
/// disk or any other failure leaves `to` as it was (absent or empty), with
/// nothing half-written in it or beside it.
// Each argument is a distinct input the operator named on the command line.
#[allow(clippy::too_many_arguments)]
pub fn full(
    archive_path: &Path,
    escrow_path: &Path,
    id: &str,
    identity: &age::x25519::Identity,
    to: &Path,
    master: MasterKey,
    opts: DbOptions,
    trust: &BackupTrust,
) -> Result<Restored> {
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        return Err(Error::Usage(format!(
            "{} is not empty; restore into a new directory",
            to.display()
        )));
    }
    let staging = staging_dir(to)?;
    let restored = (|| {
        let manifest = archive::unpack(archive_path, identity, &staging, Some(id))?;
        let escrow = archive::read_escrow(escrow_path, identity)?;
        if let Err((step, why)) = check_unpacked(&staging, &manifest, &escrow, &master, trust) {
            return Err(Error::Usage(format!(
                "backup {id} failed the {step} check: {why}; nothing was started"
            )));
        }
        std::fs::remove_file(staging.join("manifest.json"))?;
        let shredded = drop_shredded(&staging, &manifest, &escrow)?;
        {
            let conn = Detached::read_write(staging.join("control.db"))?;
            for k in &escrow.keys {
                if manifest.workspaces.iter().any(|w| w.id == k.workspace) {
                    let wrapped = hex::decode(&k.wrapped_hex)
                        .map_err(|_| Error::Crypto("escrow entry is not hex"))?;
                    backup_sql::put_workspace_key(
                        &conn,
                        &k.workspace,
                        k.key_id,
                        &wrapped,
                        escrow.created_at,
                    )?;
                }
            }
        }
        let control = Control::open(&staging.join("control.db"), opts, master)?;
        control.audit_alone(
            time::OffsetDateTime::now_utc().unix_timestamp(),
            &NewEntry::new(Actor::Operator, "backup.restored", &RequestMeta::cli())
                .target("backup", id)
                .after(json!({ "workspaces": manifest.workspaces.len() - shredded, "shredded_skipped": shredded, "scope": "appliance" })),
        )?;
        control.db.checkpoint()?;
        Ok(Restored {
            id: id.to_owned(),
            workspaces: manifest.workspaces.len() - shredded,
            shredded,
        })
    })()
    .and_then(|r| {
        // rename(2) replaces an empty directory; `to` was checked empty.
        std::fs::rename(&staging, to)?;
        sync_parent(to);
        Ok(r)
    });
    if restored.is_err() {
        if let Err(e) = std::fs::remove_dir_all(&staging) {
            tracing::warn!(error = %e, dir = %staging.display(), "could not remove the restore's staging dir");
        }
    }
    restored
}

/// `.<name>.restoring-<random>` in `to`'s parent (same filesystem, so the
/// final rename is atomic), created private.
pub(crate) fn staging_dir(to: &Path) -> Result<std::path::PathBuf> {
    let name = to
        .file_name()
        .ok_or_else(|| Error::Usage(format!("{} names no directory", to.display())))?
        .to_string_lossy()
        .to_string();
    let parent = match to.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    crate::store::create_private_dir(&parent)?;
    let mut r = [0u8; 6];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut r);
    Ok(parent.join(format!(".{name}.restoring-{}", hex::encode(r))))
}

pub(crate) fn sync_parent(to: &Path) {
    if let Some(p) = to.parent().filter(|p| !p.as_os_str().is_empty()) {
        if let Ok(d) = std::fs::File::open(p) {
            let _ = d.sync_all();
        }
    }
}

/// Workspaces shredded since the backup was taken (listed in the escrow,
/// with no key there): their files are removed from the restored dir and
/// their rows from its control.db, as on the live appliance. Their data in
/// the archive stays ciphertext whose key no longer exists.
fn drop_shredded(to: &Path, manifest: &super::Manifest, escrow: &archive::Escrow) -> Result<usize> {
    let gone: Vec<&str> = manifest
        .workspaces
        .iter()
        .map(|w| w.id.as_str())
        .filter(|id| {
            escrow.shredded.iter().any(|s| s == id)
                && !escrow.keys.iter().any(|k| k.workspace == *id)
        })
        .collect();
    if gone.is_empty() {
        return Ok(0);
    }
    let conn = Detached::read_write(to.join("control.db"))?;
    backup_sql::prepare_for_drops(&conn)?;
    for id in &gone {
        let ws: crate::ids::WorkspaceId = id.parse()?;
        let _ = std::fs::remove_dir_all(to.join("tenants").join(ws.to_string()));
        backup_sql::drop_shredded_workspace(&conn, id, escrow.created_at)?;
    }
    Ok(gone.len())
}

/// Replaces one workspace in place while the server runs. The backup is
/// checked like a drill first; the live database is then overwritten through
/// SQLite's online backup API, which takes the database's write lock, so the
/// server's requests for that workspace wait (up to the busy timeout) or get
/// 503 for the moment of the swap; other workspaces are not touched.
pub fn workspace(
    deps: super::Deps<'_>,
    archive_path: &Path,
    escrow_path: &Path,
    id: &str,
    ws: crate::ids::WorkspaceId,
    identity: &age::x25519::Identity,
) -> Result<i64> {
    let scratch = deps
        .config
        .data_dir
        .join("backups")
        .join(format!(".restore-{id}-{ws}"));
    let _ = std::fs::remove_dir_all(&scratch);
    let result = (|| {
        let manifest = archive::unpack(archive_path, identity, &scratch, Some(id))?;
        let escrow = archive::read_escrow(escrow_path, identity)?;
        if !manifest.workspaces.iter().any(|w| w.id == ws.to_string()) {
            return Err(Error::Usage(format!(
                "backup {id} does not contain workspace {ws}"
            )));
        }
        if escrow.shredded.contains(&ws.to_string()) {
            return Err(Error::Usage(format!(
                "workspace {ws} was deleted and its key destroyed: backup {id} can no longer restore it"
            )));
        }
        if let Err((step, why)) = check_unpacked(
            &scratch,
            &manifest,
            &escrow,
            &deps.control.master,
            &BackupTrust::live(deps),
        ) {
            return Err(Error::Usage(format!(
                "backup {id} failed the {step} check: {why}; nothing was changed"
            )));
        }
        let from = scratch.join("tenants").join(ws.to_string());
        let tenant = deps
            .tenants
            .open(deps.control, &crate::access::SystemTask::Restore.grant(ws))?;
        // The backup's files first, so the restored rows never name a
        // file that is not there; then the rows; then what only the
        // replaced state named goes.
        crate::store::files::restore_from(&from, &tenant.files())?;
        let head = swap_in(deps, ws, &from.join("data.db"), id, json!({}))?;
        let blobs = tenant.files();
        let swept = tenant.read_blocking(|c, _| crate::store::files::sweep(c, &blobs, false))?;
        if swept > 0 {
            tracing::info!(workspace = %ws, files = swept, "files of the replaced state removed");
        }
        Ok(head)
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

/// Overwrites one live workspace's database with `src` (checked by the
/// caller) and re-anchors its audit chain: a `backup.restored` entry in the
/// workspace (naming `source`, the previous head and `detail`) and in the
/// platform chain, then a `restore` checkpoint. Returns the restored head.
pub fn swap_in(
    deps: super::Deps<'_>,
    ws: crate::ids::WorkspaceId,
    src: &Path,
    source: &str,
    detail: serde_json::Value,
) -> Result<i64> {
    let tenant = deps
        .tenants
        .open(deps.control, &crate::access::SystemTask::Restore.grant(ws))?;
    let src = Detached::read_only(src)?;
    tenant.replace_from(&src)?;
    let now = deps.clock.unix();
    let (head, hash) = tenant.read_blocking(|c, _| crate::store::audit::head(c))?;
    let meta = RequestMeta::cli();
    let with = |mut base: serde_json::Value| {
        if let (Some(b), Some(d)) = (base.as_object_mut(), detail.as_object()) {
            b.extend(d.clone());
        }
        base
    };
    // The chain now ends where the restored state ended. Its checkpoints stay
    // (they form a chain of their own, and outside anchors name them); the
    // `restore` checkpoint signed below tells verifiers that those of the
    // old timeline at or after its seq no longer apply.
    tenant.write_blocking(|t| {
        t.audit(
            now,
            &NewEntry::new(Actor::Operator, "backup.restored", &meta)
                .target("backup", source)
                .after(with(json!({ "scope": "workspace", "previous_head": head, "previous_hash": hex::encode(&hash) }))),
        )
    })?;
    crate::audit::chains::checkpoint_restored(deps.control, &tenant, now)?;
    deps.control.audit_alone(
        now,
        &NewEntry::new(Actor::Operator, "backup.restored", &meta)
            .target("workspace", ws)
            .after(with(json!({ "backup": source, "head": head }))),
    )?;
    Ok(head)
}
