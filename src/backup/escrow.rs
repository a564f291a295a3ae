//! The key escrow, `keys-latest.age` at every backup target: the wrapped
//! workspace keys that archives never contain, and the ids of shredded
//! workspaces. Every backup rewrites it; so does destroying a workspace's key,
//! which is what makes that workspace unreadable in every existing backup at
//! once (crypto-shredding).

use super::archive::{Escrow, EscrowKey};
use super::target::{ESCROW, LocalTarget};
use crate::error::{Error, Result};
use crate::store::control::Control;
use crate::store::lifecycle;

/// The escrow as control.db has it now: every live workspace key, and the
/// workspaces whose keys were destroyed.
pub fn current(control: &Control, now: i64) -> Result<Escrow> {
    control.db.read(|c| {
        let keys = crate::store::backup::wrapped_keys(c)?
            .into_iter()
            .map(|(workspace, key_id, wrapped)| EscrowKey {
                workspace,
                key_id,
                wrapped_hex: hex::encode(wrapped),
            })
            .collect();
        Ok(Escrow {
            created_at: now,
            keys,
            shredded: lifecycle::shredded_ids(c)?,
        })
    })
}

/// Encrypts `escrow` to the backup recipients and puts it in place of the
/// old one at the local target (atomically) and at every S3 target.
pub fn put(deps: super::Deps<'_>, target: &LocalTarget, escrow: &Escrow) -> Result<usize> {
    let recipients = super::recipients(deps.config)?;
    let bytes = serde_json::to_vec(escrow)?;
    let path = target.put(ESCROW, |f| {
        super::archive::encrypt_to(&recipients, f, |w| Ok(w.write_all(&bytes)?))
    })?;
    let remotes = super::s3::S3Target::all(deps.config)?;
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
pub fn rewrite_after_shred(deps: super::Deps<'_>) -> Result<usize> {
    let target = LocalTarget::from_config(deps.config)?;
    let any_remote = deps
        .config
        .file
        .backup
        .targets
        .iter()
        .any(|t| t.kind == crate::config::BackupTargetKind::S3);
    let n = if target.escrow_path().exists() || any_remote {
        let escrow = current(deps.control, deps.clock.unix())?;
        put(deps, &target, &escrow).map_err(|e| {
            Error::Config(format!(
                "the key escrow could not be rewritten ({e}); the destroyed key is still in \
                 {}: fix the backup config and run `aura workspace purge-due`",
                target.escrow_path().display()
            ))
        })?
    } else {
        0
    };
    deps.control
        .db
        .write(|tx| lifecycle::set_escrow_stale(tx, false))?;
    Ok(n)
}
