//! Restoring the whole appliance into a new data dir, which `aura serve`
//! then runs with the same master key. The archive is checked exactly like a
//! drill before the new dir is usable, and the escrowed workspace keys are put
//! back into its control.db.

use std::path::Path;

use rusqlite::params;
use serde_json::json;

use super::archive;
use super::drill::check_unpacked;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::MasterKey;
use crate::error::{Error, Result};
use crate::store::DbOptions;
use crate::store::control::Control;

pub struct Restored {
    pub id: String,
    pub workspaces: usize,
}

pub fn full(
    archive_path: &Path,
    escrow_path: &Path,
    id: &str,
    identity: &age::x25519::Identity,
    to: &Path,
    master: MasterKey,
    opts: DbOptions,
) -> Result<Restored> {
    if to.exists() && std::fs::read_dir(to)?.next().is_some() {
        return Err(Error::Usage(format!(
            "{} is not empty; restore into a new directory",
            to.display()
        )));
    }
    let manifest = archive::unpack(archive_path, identity, to, Some(id))?;
    let escrow = archive::read_escrow(escrow_path, identity)?;
    if let Err((step, why)) = check_unpacked(to, &manifest, &escrow, &master) {
        return Err(Error::Usage(format!(
            "backup {id} failed the {step} check: {why}; nothing was started"
        )));
    }
    let _ = std::fs::remove_file(to.join("manifest.json"));
    {
        let conn = rusqlite::Connection::open(to.join("control.db"))?;
        for k in &escrow.keys {
            if manifest.workspaces.iter().any(|w| w.id == k.workspace) {
                let wrapped = hex::decode(&k.wrapped_hex)
                    .map_err(|_| Error::Crypto("escrow entry is not hex"))?;
                conn.execute(
                    "INSERT OR REPLACE INTO workspace_keys (workspace_id, key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
                    params![k.workspace, k.key_id, wrapped, escrow.created_at],
                )?;
            }
        }
    }
    let control = Control::open(&to.join("control.db"), opts, master)?;
    control.audit_alone(
        time::OffsetDateTime::now_utc().unix_timestamp(),
        &NewEntry::new(Actor::Operator, "backup.restored", &RequestMeta::cli())
            .target("backup", id)
            .after(json!({ "workspaces": manifest.workspaces.len(), "scope": "appliance" })),
    )?;
    control.db.checkpoint()?;
    Ok(Restored {
        id: id.to_owned(),
        workspaces: manifest.workspaces.len(),
    })
}
