//! Entering a workspace for a request: membership checked fresh, the role
//! compared with what the operation needs, and a `TenantCtx` (holding the
//! `TenantDb`) handed to the handler. Not a member answers 404, exactly like a
//! missing workspace; a member without the role gets 403 and the refusal is
//! recorded in the workspace's audit chain.

use serde_json::json;

use super::{Grant, Principal, Role, grant_for};
use crate::app::AppState;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::store::tenant::TenantDb;

pub struct TenantCtx {
    pub grant: Grant,
    pub db: TenantDb,
    pub user: UserId,
    pub role: Role,
}

pub async fn enter(
    state: &AppState,
    who: &Principal,
    workspace: &str,
    needs: Role,
    action: &'static str,
    meta: &RequestMeta,
) -> Result<TenantCtx> {
    let ws: WorkspaceId = workspace
        .parse()
        .map_err(|_| Error::NotFound("workspace"))?;
    let grant = grant_for(&state.control, who, ws).await?;
    let role = grant.role().ok_or(Error::Forbidden)?;
    let db = state
        .tenants
        .open_async(&state.control, grant.clone())
        .await?;
    if !role.at_least(needs) {
        let now = state.clock.unix();
        let meta = meta.clone();
        let user = who.user_id;
        db.write(move |t| {
            t.audit(
                now,
                &NewEntry::new(Actor::User(user), "access.denied", &meta).after(
                    json!({ "attempted": action, "role": role.as_str(), "needs": needs.as_str() }),
                ),
            )
        })
        .await?;
        return Err(Error::Forbidden);
    }
    Ok(TenantCtx {
        grant,
        db,
        user: who.user_id,
        role,
    })
}
