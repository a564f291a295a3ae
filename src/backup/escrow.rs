//! The key escrow, `keys-latest.age` at every backup target: the wrapped
//! workspace keys that archives never contain, and the ids of shredded
//! workspaces. Every backup rewrites it; so does destroying a workspace's key,
//! which is what makes that workspace unreadable in every existing backup at
//! once (crypto-shredding).

use super::archive::{Escrow, EscrowKey};
use super::target::{ESCROW, LocalTarget};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::store::control::Control;
use crate::store::lifecycle;

/// The escrow as control.db has it now: every live workspace key, and the
/// workspaces whose keys were destroyed.
pub fn current(control: &Control, now: i64) -> Result<Escrow> {
    control.db.read(|c| {
        let mut stmt = c.prepare(
            "SELECT workspace_id, key_id, wrapped FROM workspace_keys ORDER BY workspace_id, key_id",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(EscrowKey {
                workspace: r.get(0)?,
                key_id: r.get(1)?,
                wrapped_hex: hex::encode(r.get::<_, Vec<u8>>(2)?),
            })
        })?;
        let keys = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(Escrow {
            created_at: now,
            keys,
            shredded: lifecycle::shredded_ids(c)?,
        })
    })
}

/// Encrypts `escrow` to the backup recipients and puts it in place of the
/// old one at the local target (atomically) and at every S3 target.
pub fn put(state: &AppState, target: &LocalTarget, escrow: &Escrow) -> Result<usize> {
    let recipients = super::recipients(&state.config)?;
    let bytes = serde_json::to_vec(escrow)?;
    let path = target.put(ESCROW, |f| {
        super::archive::encrypt_to(&recipients, f, |w| Ok(w.write_all(&bytes)?))
    })?;
    let remotes = super::s3::S3Target::all(&state.config)?;
    if !remotes.is_empty() {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::internal("rewriting the S3 escrow needs the async runtime"))?;
        for r in &remotes {
            handle.block_on(r.upload(&path, ESCROW))?;
        }
    }
    Ok(1 + remotes.len())
}

/// After a key was destroyed: rewrites the escrow at every target that may
/// hold one, so no backup can be opened for that workspace any more. Returns
/// how many escrows were rewritten (0: there were no backups). Blocking.
pub fn rewrite_after_shred(state: &AppState) -> Result<usize> {
    let target = LocalTarget::from_config(&state.config)?;
    let any_remote = state
        .config
        .file
        .backup
        .targets
        .iter()
        .any(|t| t.kind == crate::config::BackupTargetKind::S3);
    let n = if target.escrow_path().exists() || any_remote {
        let escrow = current(&state.control, state.clock.unix())?;
        put(state, &target, &escrow).map_err(|e| {
            Error::Config(format!(
                "the key escrow could not be rewritten ({e}); the destroyed key is still in \
                 {}: fix the backup config and run `aura workspace purge-due`",
                target.escrow_path().display()
            ))
        })?
    } else {
        0
    };
    state
        .control
        .db
        .write(|tx| lifecycle::set_escrow_stale(tx, false))?;
    Ok(n)
}
