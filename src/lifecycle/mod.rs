//! Deleting a workspace with a grace period, and crypto-shredding it at the
//! end. An owner schedules the deletion; the workspace turns read-only (the
//! access layer refuses changes with 409 `workspace-deleting`, reads go on),
//! its owners are mailed, and any owner can cancel. When the grace period
//! (`lifecycle.workspace_grace_days`, 14 by default) ends, `purge_due`
//! destroys its wrapped keys in control.db, rewrites the key escrow at every
//! backup target without them, and removes its files: its data in every
//! existing backup is unreadable from then on. Everything is recorded in the
//! platform chain (and, while it exists, the workspace's own).
//!
//! `accounts` does the same for a person's account; `moving` carries a
//! workspace to another appliance.

pub mod accounts;
pub mod bundle;
mod move_files;
pub mod move_region;
pub mod moving;
mod notify;

use std::sync::Arc;

use serde_json::json;

use crate::access::enter::TenantHandle;
use crate::audit::service::record_in_workspace;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ids::WorkspaceId;
use crate::search::IndexRegistry;
use crate::store::control::Control;
use crate::store::lifecycle::{self, Kind};
use crate::store::tenant::TenantPool;
use crate::store::{audit, control};

/// What deleting, purging and moving workspaces need from the appliance:
/// narrow values, borrowed for one call (`AppState::lifecycle_deps`).
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub clock: &'a SharedClock,
    pub control: &'a Arc<Control>,
    pub tenants: &'a Arc<TenantPool>,
    /// A shredded workspace's search indexes go with it.
    pub indexes: &'a IndexRegistry,
    /// Account deletion and the owners' mail.
    pub identity: crate::identity::Deps<'a>,
}

impl<'a> Deps<'a> {
    /// The key escrow at the backup targets is rewritten after a shred.
    pub fn backup(&self) -> crate::backup::Deps<'a> {
        crate::backup::Deps {
            config: self.config,
            control: self.control,
            tenants: self.tenants,
            clock: self.clock,
        }
    }
}

/// The audit label of cancelling a deletion: the one change a read-only
/// workspace still accepts.
pub const CANCEL_ACTION: &str = "workspace.deletion";
const DAY: i64 = 86_400;

/// Whether a workspace is being deleted (and when) or moved.
#[derive(Clone, Debug)]
pub struct Status {
    /// `active`, `deleting` or `moving`.
    pub state: &'static str,
    pub requested_at: Option<i64>,
    pub due_at: Option<i64>,
}

impl Status {
    fn of(l: Option<lifecycle::Lifecycle>) -> Self {
        match l {
            Some(l) => Status {
                state: l.kind.as_str(),
                requested_at: Some(l.requested_at),
                due_at: l.due_at,
            },
            None => Status {
                state: "active",
                requested_at: None,
                due_at: None,
            },
        }
    }
}

pub async fn status(ctx: &TenantHandle, control: &Control) -> Result<Status> {
    let ws = ctx.db.id();
    let l = control
        .db
        .read_async(move |c| lifecycle::get(c, ws))
        .await?;
    Ok(Status::of(l))
}

/// Schedules the deletion (owners). `confirm_name` must be the workspace's
/// name, as typed by a person who means it.
pub async fn schedule(deps: &Deps<'_>, ctx: &TenantHandle, confirm_name: &str) -> Result<Status> {
    let meta = &ctx.meta;
    let ws = ctx.db.id();
    let keys = deps.control.keys.clone();
    let row = deps
        .control
        .db
        .read_async(move |c| control::get_workspace(c, &keys, ws))
        .await?
        .ok_or(Error::NotFound("workspace"))?;
    if confirm_name.trim() != row.name.trim() || confirm_name.trim().is_empty() {
        return Err(Error::field(
            "confirm_name",
            "type the workspace's name exactly, to confirm",
        ));
    }
    let now = ctx.now();
    let days = i64::from(deps.config.file.lifecycle.workspace_grace_days);
    let due = now + days * DAY;
    let keys = deps.control.keys.clone();
    let actor = ctx.actor.clone();
    let a = actor.clone();
    let m = meta.clone();
    let user = ctx.user;
    let detail = json!({ "due_at": due, "grace_days": days });
    let d = detail.clone();
    deps.control
        .db
        .write_async(move |tx| {
            lifecycle::begin(tx, ws, Kind::Deleting, Some(user), now, Some(due))?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(a, "workspace.deletion_scheduled", &m)
                    .target("workspace", ws)
                    .after(d),
            )?;
            Ok(())
        })
        .await?;
    record_in_workspace(
        deps.control,
        deps.tenants,
        ws,
        crate::access::SystemTask::RecordDeletion,
        now,
        meta,
        move |m| {
            NewEntry::new(actor, "workspace.deletion_scheduled", m)
                .target("workspace", ws)
                .after(detail)
        },
    )
    .await?;
    notify::owners(
        &deps.identity,
        ws,
        &row.name,
        notify::Event::Scheduled { due },
    )
    .await;
    Ok(Status {
        state: "deleting",
        requested_at: Some(now),
        due_at: Some(due),
    })
}

/// Cancels a scheduled deletion (owners); the workspace is writable again.
pub async fn cancel(deps: &Deps<'_>, ctx: &TenantHandle) -> Result<Status> {
    let ws = ctx.db.id();
    let meta = &ctx.meta;
    let now = ctx.now();
    let keys = deps.control.keys.clone();
    let actor = ctx.actor.clone();
    let a = actor.clone();
    let m = meta.clone();
    let name = deps
        .control
        .db
        .write_async(move |tx| {
            if !lifecycle::cancel(tx, ws, Kind::Deleting, now)? {
                return Err(Error::Conflict(
                    "the workspace is not scheduled for deletion".into(),
                ));
            }
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(a, "workspace.deletion_cancelled", &m).target("workspace", ws),
            )?;
            Ok(control::get_workspace(tx, &keys, ws)?
                .map(|w| w.name)
                .unwrap_or_default())
        })
        .await?;
    record_in_workspace(
        deps.control,
        deps.tenants,
        ws,
        crate::access::SystemTask::RecordDeletion,
        now,
        meta,
        move |m| NewEntry::new(actor, "workspace.deletion_cancelled", m).target("workspace", ws),
    )
    .await?;
    notify::owners(&deps.identity, ws, &name, notify::Event::Cancelled).await;
    Ok(Status::of(None))
}

/// Destroys a workspace (blocking): its wrapped keys and control.db rows in
/// one transaction with the `workspace.shredded` entry, then its in-memory
/// handles and indexes, its files, and the key escrow at every backup
/// target. `reason` is `deleted` or `moved`. Returns how many escrows were
/// rewritten.
pub fn shred(
    deps: &Deps<'_>,
    ws: WorkspaceId,
    reason: &'static str,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<usize> {
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    deps.control.db.write(|tx| {
        lifecycle::shred_rows(tx, ws, reason, now)?;
        audit::append(
            tx,
            &keys.sealer,
            now,
            &NewEntry::new(actor, "workspace.shredded", meta)
                .target("workspace", ws)
                .after(json!({ "reason": reason })),
        )?;
        Ok(())
    })?;
    forget(deps, ws);
    let dir = deps.tenants.tenants_dir().join(ws.to_string());
    if let Err(e) = std::fs::remove_dir_all(&dir)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        // The key is gone already, so what is left is unreadable; say so.
        tracing::error!(workspace = %ws, error = %e, "could not remove the shredded workspace's files");
    }
    // Files in an S3 bucket go too (unreadable already: their keys were in
    // the workspace's database, under the destroyed key).
    if let Err(e) = crate::store::files::remove_all(&deps.tenants.blobs(ws)) {
        tracing::error!(workspace = %ws, error = %e, "could not remove the shredded workspace's files from the bucket");
    }
    crate::backup::escrow::rewrite_after_shred(deps.backup())
}

/// Lets go of everything in memory about a workspace: its pooled database
/// handle (with its keys) and its search indexes, whose sealed files are
/// deleted too (the workspace's directory goes next, with its key).
fn forget(deps: &Deps<'_>, ws: WorkspaceId) {
    deps.tenants.forget(ws);
    let dir = deps.tenants.tenants_dir().join(ws.to_string());
    for purpose in ["audit", "records"] {
        let disk = crate::search::index_dir(&dir, purpose);
        deps.indexes.discard(&format!("{purpose}:{ws}"), &disk);
    }
}

/// What one run of `purge_due` did.
#[derive(Debug, Default)]
pub struct Purged {
    pub workspaces: usize,
    pub accounts: usize,
    /// Accounts kept because deleting them would leave a workspace ownerless.
    pub blocked: usize,
    pub escrows: usize,
}

impl std::fmt::Display for Purged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} workspace(s) shredded, {} account(s) deleted, {} account(s) kept (last owner), {} escrow(s) rewritten",
            self.workspaces, self.accounts, self.blocked, self.escrows
        )
    }
}

/// Carries out every deletion that is due (blocking): the server runs it at
/// start and every `lifecycle.purge_interval_secs`; `aura workspace
/// purge-due` runs it by hand. `progress` hears about each workspace.
pub fn purge_due(deps: &Deps<'_>, progress: &dyn Fn(&str)) -> Result<Purged> {
    let now = deps.clock.unix();
    let meta = RequestMeta::default();
    let mut out = Purged::default();
    let due = deps.control.db.read(|c| lifecycle::due_deletions(c, now))?;
    // One failure (an escrow that cannot be rewritten) does not hold up the
    // rest; the first one is reported once everything else is done.
    let mut failed: Option<Error> = None;
    for ws in due {
        progress(&format!("shredding workspace {ws}"));
        match shred(deps, ws, "deleted", Actor::System, &meta) {
            Ok(n) => out.escrows += n,
            Err(e) => {
                tracing::error!(workspace = %ws, error = %e, "shredding did not finish");
                failed.get_or_insert(e);
            }
        }
        // The key is gone once `shred_rows` committed, whatever followed.
        if deps.control.db.read(|c| lifecycle::get(c, ws))?.is_none() {
            out.workspaces += 1;
        }
    }
    let (deleted, blocked) = accounts::purge_due(&deps.identity, now, progress)?;
    out.accounts = deleted;
    out.blocked = blocked;
    // A rewrite that failed before (or a CLI shred beside this server).
    if failed.is_none() && deps.control.db.read(lifecycle::escrow_stale)? {
        out.escrows += crate::backup::escrow::rewrite_after_shred(deps.backup())?;
    }
    let live = deps.control.db.read(control::workspace_ids)?;
    for id in deps.tenants.open_ids() {
        if !live.contains(&id) {
            forget(deps, id);
        }
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(out),
    }
}
