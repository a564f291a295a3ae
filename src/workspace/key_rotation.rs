//! Online rotation of a workspace's data key: a request (the API, the UI or
//! `aura keys rotate`), then a job that adds the new key (new writes use it at
//! once: every handle of the workspace shares its keys), re-seals every old
//! ciphertext in batches with progress, and destroys the old key when no
//! value names it. Reads work throughout, since every ciphertext names its
//! key id. The job runs in the server (resumed at start) or, with the server
//! stopped, in `aura keys rotate` itself; it is safe to kill at any moment.

use std::sync::Arc;

use serde_json::json;

use crate::access::SystemTask;
use crate::access::enter::TenantHandle;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::backup::Deps;
use crate::error::Result;
use crate::ids::WorkspaceId;
use crate::store::control::Control;
use crate::store::key_rotation::{self as sql, Rotation};

const BATCH: usize = 500;
/// How long a new key is known before it seals (reads take far less).
const KNOWN_BEFORE_USED: std::time::Duration = std::time::Duration::from_secs(2);

/// Records a rotation request, audited on the platform chain. Returns the
/// rotation and whether this call started it (false: one is under way).
pub fn request(
    control: &Control,
    now: i64,
    ws: WorkspaceId,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<(Rotation, bool)> {
    let by = match &actor {
        Actor::User(u) => Some(u.to_string()),
        _ => None,
    };
    let started = control.db.write(|tx| {
        let started = sql::request(tx, ws, by.as_deref(), now)?;
        if started {
            let entry =
                NewEntry::new(actor, "keys.rotation_requested", meta).target("workspace", ws);
            crate::store::audit::append(tx, &control.keys.sealer, now, &entry)?;
        }
        Ok(started)
    })?;
    let row = control
        .db
        .read(|c| sql::get(c, ws))?
        .ok_or(crate::error::Error::NotFound("key rotation"))?;
    Ok((row, started))
}

pub fn status(control: &Control, ws: WorkspaceId) -> Result<Option<Rotation>> {
    control.db.read(|c| sql::get(c, ws))
}

/// Runs every unfinished rotation to its end (blocking). Takes the backup
/// deps: the last step rewrites the key escrow at the backup targets.
pub fn run_pending(deps: Deps<'_>) -> Result<String> {
    let pending = deps.control.db.read(sql::unfinished)?;
    let mut done = Vec::new();
    for r in pending {
        let ws: WorkspaceId = r.workspace_id.parse()?;
        let n = run_one(deps, ws, &|_, _| {})?;
        done.push(format!("{ws}: {n} values re-sealed"));
    }
    Ok(done.join("; "))
}

/// Adds the key, re-seals, destroys the old key. `progress(resealed,
/// remaining)` after each batch. Returns how many values it re-sealed.
pub fn run_one(deps: Deps<'_>, ws: WorkspaceId, progress: &dyn Fn(i64, i64)) -> Result<i64> {
    let control = &deps.control;
    let tdb = deps
        .tenants
        .open(control, &SystemTask::KeyRotation.grant(ws))?;
    let (new_id, added) = sql::add_key(control, ws)?;
    // A read takes the keys once and may run a little while: first make the
    // new key known while the old one still seals, give reads begun before
    // that time to end, then seal with the new key. No read can meet a value
    // under a key it does not know.
    let sealing = deps
        .control
        .db
        .read(|c| crate::store::control::workspace_keys(c, ws))?
        .iter()
        .map(|(id, _)| *id)
        .filter(|id| *id != new_id)
        .max();
    tdb.reload_keys_sealing(control, sealing)?;
    std::thread::sleep(KNOWN_BEFORE_USED);
    tdb.reload_keys(control)?;
    let meta = RequestMeta::cli();
    if added {
        let now = deps.clock.unix();
        tdb.append_audit_blocking(
            now,
            &NewEntry::new(Actor::System, "keys.data_key_added", &meta)
                .target("data_key", new_id)
                .after(json!({ "key_id": new_id })),
        )?;
    }
    crate::ops::crash_point("key-added");
    let mut resealed = deps
        .control
        .db
        .read(|c| sql::get(c, ws))?
        .map(|r| r.resealed)
        .unwrap_or(0);
    // Counted once; each batch then takes off what it did (writes from now on
    // use the new key, so they add nothing).
    let mut remaining = tdb.read_blocking(|c, _| sql::count_old(c, new_id))?;
    sql::set_progress(control, ws, resealed, remaining)?;
    let mut cursor = Vec::new();
    loop {
        let n = tdb.write_blocking(|t| sql::reseal_batch(t, BATCH, &mut cursor))?;
        if n == 0 {
            break;
        }
        resealed += n as i64;
        remaining = (remaining - n as i64).max(0);
        sql::set_progress(control, ws, resealed, remaining)?;
        progress(resealed, remaining);
        crate::ops::crash_point("reseal-batch");
    }
    // Deleted records' personal-data digests, under the new key before the
    // old one goes: a data-subject request must still find their entries.
    let mut after = 0;
    while tdb.write_blocking(|t| crate::records::rekey_tombstones(t, None, &mut after))? > 0 {}
    // The last look happens in a write transaction, after which every writer
    // seals with the new key: nothing can name an old key once it is gone.
    let left = tdb.write_blocking(|t| sql::count_old(t, new_id))?;
    if left > 0 {
        return Err(crate::error::Error::internal(
            "values under the old key remain after re-sealing",
        ));
    }
    crate::ops::crash_point("before-destroy");
    let now = deps.clock.unix();
    let destroyed = sql::destroy_old_keys(control, ws, new_id, now, |tx, old| {
        let entry = NewEntry::new(Actor::System, "keys.data_key_rotated", &meta)
            .target("workspace", ws)
            .after(json!({ "key_id": new_id, "destroyed_key_ids": old, "resealed": resealed }));
        crate::store::audit::append(tx, &control.keys.sealer, now, &entry).map(|_| ())
    })?;
    tdb.reload_keys(control)?;
    tdb.append_audit_blocking(
        now,
        &NewEntry::new(Actor::System, "keys.data_key_rotated", &meta)
            .target("data_key", new_id)
            .after(
                json!({ "key_id": new_id, "destroyed_key_ids": destroyed, "resealed": resealed }),
            ),
    )?;
    // The escrow at the backup targets still holds the old wrapped key.
    crate::backup::escrow::rewrite_after_shred(deps)?;
    Ok(resealed)
}

/// An owner's request (API or UI): recorded on the platform chain with the
/// rotation row, and on the workspace's own chain; the server's job picks it
/// up within a second.
pub async fn request_for(control: &Arc<Control>, ctx: &TenantHandle) -> Result<Rotation> {
    let (control, now, ws, actor, m) = (
        Arc::clone(control),
        ctx.now(),
        ctx.db.id(),
        ctx.actor.clone(),
        ctx.meta.clone(),
    );
    let (row, started) =
        tokio::task::spawn_blocking(move || request(&control, now, ws, actor, &m)).await??;
    if started {
        let actor = ctx.actor.clone();
        ctx.db
            .append_audit(ctx.now(), ctx.meta.clone(), move |m| {
                NewEntry::new(actor, "keys.rotation_requested", m).target("workspace", ws)
            })
            .await?;
    }
    Ok(row)
}
