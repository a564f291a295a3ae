//! Entering a workspace for a request: membership checked fresh, the role
//! compared with what the operation needs, and a `TenantHandle` (holding the
//! `TenantDb`) handed to the handler. Not a member answers 404, exactly like a
//! missing workspace; a member without the role gets 403 and the refusal is
//! recorded in the workspace's audit chain. Platform staff inside an
//! impersonation never mint lasting access (`Op::GRANTS_ACCESS`): that is for the
//! workspace's own people.

use serde_json::json;

use std::sync::Arc;

use super::op::Op;
use super::{Grant, GrantHolder, Principal, Role, TeamPlace, Via, grant_for};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::store::control::Control;
use crate::store::tenant::{TenantDb, TenantPool};

/// A workspace opened for one request: the only handle domain code reaches
/// its data through. Built by `enter` from a verified grant, it carries the
/// database, who acts (for audit entries), the request's metadata and the
/// clock, so domain functions take this one value.
pub struct TenantHandle {
    pub grant: Grant,
    pub db: TenantDb,
    pub user: UserId,
    pub role: Role,
    /// Who the audit entries of this request name: the person, the API token,
    /// or platform staff with their impersonation reason.
    pub actor: Actor,
    pub meta: RequestMeta,
    pub clock: SharedClock,
}

impl TenantHandle {
    /// The role this request acts with where a team place applies: raised
    /// by the place, capped by the token's scope (`role::effective`).
    pub fn role_with(&self, place: Option<TeamPlace>) -> Role {
        self.grant.role_with(place).unwrap_or(self.role)
    }

    /// Now, in Unix seconds, from the appliance's clock.
    pub fn now(&self) -> i64 {
        self.clock.unix()
    }

    /// Records a refused action in the workspace's audit chain and returns
    /// the 403 to answer with: for the domain code, when the loaded resource
    /// refuses (a collection's own permissions, a team's lead).
    pub async fn deny(&self, role: Role, action: &str, needs: &str) -> Error {
        let detail = json!({ "attempted": action, "role": role.as_str(), "needs": needs });
        let actor = self.actor.clone();
        // A refusal changes nothing, so it is recorded even in a read-only workspace.
        let written = self
            .db
            .append_audit(self.now(), self.meta.clone(), move |m| {
                NewEntry::new(actor, "access.denied", m).after(detail)
            })
            .await;
        match written {
            Ok(_) => Error::Forbidden,
            Err(e) => e,
        }
    }
}

/// What the door needs from the appliance: narrow values, not `AppState`.
#[derive(Clone, Copy)]
pub struct Door<'a> {
    pub control: &'a Arc<Control>,
    pub tenants: &'a Arc<TenantPool>,
    pub clock: &'a SharedClock,
}

/// Enters `workspace` for the operation `O`: membership (or a recorded
/// impersonation) checked fresh, the two-factor policy, the role the
/// operation needs, the token's scope, impersonation limits and the frozen
/// state; a refusal by role is recorded in the workspace's chain.
pub async fn enter<O: Op>(
    door: Door<'_>,
    who: &Principal,
    workspace: &str,
    meta: RequestMeta,
) -> Result<TenantHandle> {
    let ws: WorkspaceId = workspace
        .parse()
        .map_err(|_| Error::NotFound("workspace"))?;
    let grant = grant_for(door.control, who, ws).await?;
    let role = grant.role().ok_or(Error::Forbidden)?;
    let db = door.tenants.open_async(door.control, grant.clone()).await?;
    let actor = match (grant.holder(), &who.via) {
        (GrantHolder::Staff { user, reason, .. }, _) => Actor::Staff {
            staff: *user,
            reason: reason.clone(),
        },
        (_, Via::ApiToken { id, .. }) => Actor::Token(id.clone()),
        _ => Actor::User(who.user_id),
    };
    let handle = TenantHandle {
        grant,
        db,
        user: who.user_id,
        role,
        actor,
        meta,
        clock: Arc::clone(door.clock),
    };
    break_glass(door, who, ws, &handle).await?;
    let needs = O::needs();
    if !role.at_least(needs) {
        return Err(handle.deny(role, O::LABEL, needs.as_str()).await);
    }
    // Access outlives an impersonation only if staff could mint it there:
    // they cannot. The refusal is recorded, naming them and their reason.
    if handle.grant.impersonating() && O::GRANTS_ACCESS {
        return Err(
            match handle.deny(role, O::LABEL, "not while impersonating").await {
                Error::Forbidden => Error::NotWhileImpersonating,
                other => other,
            },
        );
    }
    // A workspace being deleted or moved is read-only: reads go on, changes
    // are refused here (those kept in control.db, such as members and
    // tokens) or by the `TenantDb` itself (workspace data).
    if let Some(kind) = handle.db.frozen()
        && !O::allowed_while_frozen()
    {
        return Err(Error::WorkspaceReadOnly(kind));
    }
    Ok(handle)
}

/// A workspace that requires single sign-on lets its break-glass owner in
/// by other means; the first request of each of their credentials there is
/// recorded in the workspace's chain (`sso.break_glass_used`).
async fn break_glass(
    door: Door<'_>,
    who: &Principal,
    ws: WorkspaceId,
    handle: &TenantHandle,
) -> Result<()> {
    if matches!(&who.via, Via::Session { sso: Some(m), .. } if m.workspace == ws) {
        return Ok(());
    }
    let user = who.user_id;
    // Reading the number first drops whatever a commit changed.
    door.control.cache.version()?;
    let gate = match door.control.cache.gate(ws, user) {
        Some(g) => g,
        None => {
            door.control
                .db
                .read_async(move |c| crate::store::mfa::membership_gate(c, ws, user))
                .await?
        }
    };
    if !gate.is_some_and(|g| g.break_glass) {
        return Ok(());
    }
    let (credential, method) = match &who.via {
        Via::Session { hash, .. } => (hex::encode(hash), "session"),
        Via::Access { family } => (family.clone(), "access token"),
        Via::ApiToken { id, .. } => (id.clone(), "API token"),
    };
    static SEEN: std::sync::Mutex<Option<std::collections::HashSet<(String, WorkspaceId)>>> =
        std::sync::Mutex::new(None);
    {
        let mut seen = SEEN.lock().unwrap_or_else(|p| p.into_inner());
        let set = seen.get_or_insert_with(Default::default);
        if set.len() > 100_000 {
            set.clear();
        }
        if !set.insert((credential.clone(), ws)) {
            return Ok(());
        }
    }
    let actor = handle.actor.clone();
    let detail = json!({ "method": method, "credential": &credential[..credential.len().min(16)] });
    handle
        .db
        .append_audit(handle.now(), handle.meta.clone(), move |m| {
            NewEntry::new(actor, "sso.break_glass_used", m)
                .target("user", user)
                .after(detail)
        })
        .await
        .map(|_| ())
}
