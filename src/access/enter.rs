//! Entering a workspace for a request: membership checked fresh, the role
//! compared with what the operation needs, and a `TenantCtx` (holding the
//! `TenantDb`) handed to the handler. Not a member answers 404, exactly like a
//! missing workspace; a member without the role gets 403 and the refusal is
//! recorded in the workspace's audit chain. Platform staff inside an
//! impersonation never mint lasting access (`grants_access`): that is for the
//! workspace's own people.

use serde_json::json;

use super::{Grant, GrantHolder, Principal, Role, TeamPlace, Via, grant_for};
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
    /// Who the audit entries of this request name: the person, the API token,
    /// or platform staff with their impersonation reason.
    pub actor: Actor,
}

impl TenantCtx {
    /// The role this request acts with where a team place applies: raised
    /// by the place, capped by the token's scope (`role::effective`).
    pub fn role_with(&self, place: Option<TeamPlace>) -> Role {
        self.grant.role_with(place).unwrap_or(self.role)
    }
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
    let actor = match (grant.holder(), &who.via) {
        (GrantHolder::Staff { user, reason, .. }, _) => Actor::Staff {
            staff: *user,
            reason: reason.clone(),
        },
        (_, Via::ApiToken { id, .. }) => Actor::Token(id.clone()),
        _ => Actor::User(who.user_id),
    };
    if !role.at_least(needs) {
        return Err(deny(state, &db, &actor, role, action, needs.as_str(), meta).await);
    }
    // Access outlives an impersonation only if staff could mint it there:
    // they cannot. The refusal is recorded, naming them and their reason.
    if grant.impersonating() && grants_access(action) {
        let denied = deny(
            state,
            &db,
            &actor,
            role,
            action,
            "not while impersonating",
            meta,
        )
        .await;
        return Err(match denied {
            Error::Forbidden => Error::NotWhileImpersonating,
            other => other,
        });
    }
    // A workspace being deleted or moved is read-only: reads go on, changes
    // are refused here (those kept in control.db, such as members and
    // tokens) or by the `TenantDb` itself (workspace data).
    if let Some(kind) = db.frozen()
        && !allowed_while_frozen(action)
    {
        return Err(Error::WorkspaceReadOnly(kind.as_str()));
    }
    Ok(TenantCtx {
        grant,
        db,
        user: who.user_id,
        role,
        actor,
    })
}

/// Records a refused action in the workspace's audit chain and returns the
/// 403 to answer with. Used by `enter` for the route's narrowing and by the
/// domain code when the loaded resource refuses (a collection's own
/// permissions).
pub async fn deny(
    state: &AppState,
    db: &TenantDb,
    actor: &Actor,
    role: Role,
    action: &str,
    needs: &str,
    meta: &RequestMeta,
) -> Error {
    let now = state.clock.unix();
    let meta = meta.clone();
    let detail = json!({ "attempted": action, "role": role.as_str(), "needs": needs });
    let actor = actor.clone();
    // A refusal changes nothing, so it is recorded even in a read-only workspace.
    let written = db
        .record(now, meta, move |m| {
            NewEntry::new(actor, "access.denied", m).after(detail)
        })
        .await;
    match written {
        Ok(_) => Error::Forbidden,
        Err(e) => e,
    }
}

/// Operations that hand out access lasting beyond the request: API tokens,
/// service accounts, invitations, roles, team places (a lead manages), and
/// integrations (an inbound integration's secret lets a program in; an
/// outbound webhook goes on sending the workspace's events out).
pub fn grants_access(action: &str) -> bool {
    [
        "api_token.create",
        "service_account.create",
        "invitation.create",
        "member.update",
        "team.update",
        "integration.create",
        "integration.update",
    ]
    .contains(&action)
}

/// Operations a read-only workspace still allows: reading, exporting,
/// verifying, and cancelling its deletion.
fn allowed_while_frozen(action: &str) -> bool {
    [".read", ".export", ".verify"]
        .iter()
        .any(|s| action.ends_with(s))
        || action == crate::lifecycle::CANCEL_ACTION
}
