//! The SCIM door: a workspace's identity provider reaches its members and
//! teams with the workspace's SCIM bearer token, and with nothing else. The
//! token is looked up together with the workspace the path names, so another
//! workspace's token is simply not found: it answers exactly like a made-up
//! one (401), and so does a session, an API token or an access JWT. The
//! `ScimHandle` this door hands out carries the workspace's database and the
//! token as the actor of every audit entry; it grants no role, so no other
//! operation of the appliance accepts it.

use std::sync::Arc;

use super::enter::Door;
use super::{Grant, GrantHolder};
use crate::audit::{Actor, RequestMeta};
use crate::clock::SharedClock;
use crate::crypto::token::hash_token;
use crate::error::{Error, Result};
use crate::ids::WorkspaceId;
use crate::store::tenant::TenantDb;

/// The prefix of every SCIM token, so a leaked one is recognisable.
pub const PREFIX: &str = "aura_scim_";
/// `last_used_at` is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;

/// A workspace opened for one SCIM request.
pub struct ScimHandle {
    pub grant: Grant,
    pub db: TenantDb,
    /// The SCIM token's id (never its secret).
    pub token: String,
    pub actor: Actor,
    pub meta: RequestMeta,
    pub clock: SharedClock,
}

impl ScimHandle {
    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    pub fn workspace(&self) -> WorkspaceId {
        self.db.id()
    }
}

/// Checks `secret` against the SCIM token of `workspace` and opens it. Any
/// failure (a malformed workspace id, no token, a wrong, revoked or another
/// workspace's token, a suspended workspace) is the same `Unauthenticated`.
pub async fn authorise(
    door: Door<'_>,
    workspace: &str,
    secret: &str,
    meta: RequestMeta,
) -> Result<ScimHandle> {
    let ws: WorkspaceId = workspace.parse().map_err(|_| Error::Unauthenticated)?;
    if !secret.starts_with(PREFIX) {
        return Err(Error::Unauthenticated);
    }
    let hash = hash_token(secret);
    let now = door.clock.unix();
    let (found, frozen) = door
        .control
        .db
        .read_async(move |c| {
            let found = crate::store::scim::find_scim_token(c, ws, &hash)?;
            let frozen = crate::store::lifecycle::get(c, ws)?.map(|l| l.kind);
            Ok((found, frozen))
        })
        .await?;
    let found = found.ok_or(Error::Unauthenticated)?;
    if found
        .last_used_at
        .is_none_or(|t| now - t >= TOUCH_EVERY_SECS)
    {
        let id = found.id.clone();
        let touched = door
            .control
            .db
            .write_async(move |tx| crate::store::scim::touch_scim_token(tx, ws, &id, now))
            .await;
        crate::identity::sessions::skip_touch_on_full_disk(touched)?;
    }
    let grant = Grant {
        workspace: ws,
        holder: GrantHolder::Scim {
            token: found.id.clone(),
        },
        frozen,
        cap: None,
        until: None,
    };
    let db = door.tenants.open_async(door.control, grant.clone()).await?;
    Ok(ScimHandle {
        grant,
        db,
        actor: Actor::Scim(found.id.clone()),
        token: found.id,
        meta,
        clock: Arc::clone(door.clock),
    })
}
