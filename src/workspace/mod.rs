//! Workspaces (tenants). Creating one makes its data key, wraps it under the
//! master key, creates its database with the first entry of its own audit
//! chain, and records it in the platform chain.

pub mod key_rotation;

use serde_json::json;

use crate::access::{Role, SystemTask};
use crate::app::AppState;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::DataKey;
use crate::error::{Error, Result};
use crate::identity::validate_name;
use crate::ids::{UserId, WorkspaceId};
use crate::store::audit;
use crate::store::control::{self, WorkspaceRow};

const MAX_REGION_LEN: usize = 32;

pub struct CreateWorkspace {
    pub name: String,
    pub owner_email: String,
    pub region: Option<String>,
}

/// Region labels are short codes an operator chooses ("EU", "IN", "eu-west").
pub fn validate_region(region: &str) -> Result<String> {
    let r = region.trim();
    if r.len() > MAX_REGION_LEN
        || !r
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(Error::field(
            "region",
            "must be a short code of letters, digits, '-' or '_' (e.g. EU, IN, eu-west)",
        ));
    }
    Ok(r.to_owned())
}

pub async fn create_workspace(
    state: &AppState,
    req: CreateWorkspace,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<WorkspaceId> {
    let name = validate_name("name", &req.name)?;
    let region = match req.region.as_deref() {
        Some(r) => validate_region(r)?,
        None => state.config.file.region.clone(),
    };
    let keys = state.control.keys.clone();
    let email = req.owner_email.clone();
    let owner = state
        .control
        .db
        .read_async(move |c| control::find_user_by_email(c, &keys, &email))
        .await?
        .ok_or_else(|| {
            Error::field(
                "owner",
                "no account has this email; create it first with `aura user create`",
            )
        })?;

    let id = WorkspaceId::generate();
    let dek = DataKey::generate(1);
    let wrapped = state.control.master.wrap_key(&id.to_string(), &dek)?;
    let now = state.clock.unix();

    // The platform row (with the wrapped key) commits first: the tenant pool
    // needs it to open the new database. If the tenant step then fails, the
    // workspace exists with an empty chain and the error is reported.
    let keys = state.control.keys.clone();
    let meta_c = meta.clone();
    let actor_c = actor.clone();
    let region_c = region.clone();
    let name_c = name.clone();
    state
        .control
        .db
        .write_async(move |tx| {
            control::insert_workspace(
                tx,
                &keys,
                id,
                &name_c,
                &region_c,
                (dek.key_id, &wrapped),
                now,
            )?;
            control::insert_membership(tx, id, owner.id, Role::Owner, now)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(actor_c, "workspace.created", &meta_c)
                    .target("workspace", id)
                    .after(json!({ "region": region_c, "owner": owner.id.to_string() })),
            )?;
            Ok(())
        })
        .await?;

    let grant = SystemTask::WorkspaceCreation.grant(id);
    let tenant = state.tenants.open_async(&state.control, grant).await?;
    let meta_c = meta.clone();
    let owner_id = owner.id;
    tenant
        .write(move |t| {
            t.audit(
                now,
                &NewEntry::new(actor, "workspace.created", &meta_c)
                    .target("workspace", id)
                    .after(
                        json!({ "region": region, "owner": owner_id.to_string(), "name": name }),
                    ),
            )?;
            t.audit(
                now,
                &NewEntry::new(Actor::System, "member.added", &meta_c)
                    .target("user", owner_id)
                    .after(json!({ "role": "owner" })),
            )?;
            Ok(())
        })
        .await?;
    Ok(id)
}

pub async fn list_all(state: &AppState) -> Result<Vec<WorkspaceRow>> {
    let keys = state.control.keys.clone();
    state
        .control
        .db
        .read_async(move |c| control::list_workspaces(c, &keys))
        .await
}

pub async fn list_for_user(state: &AppState, user: UserId) -> Result<Vec<(WorkspaceRow, Role)>> {
    let keys = state.control.keys.clone();
    state
        .control
        .db
        .read_async(move |c| control::memberships_for_user(c, &keys, user))
        .await
}

/// Adds an existing account to a workspace with a role (operator action; the
/// invitation flow for admins arrives with the identity issue).
pub async fn add_member(
    state: &AppState,
    ws: WorkspaceId,
    email: &str,
    role: Role,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<UserId> {
    let keys = state.control.keys.clone();
    let email = email.to_owned();
    let (user, exists) = state
        .control
        .db
        .read_async(move |c| {
            Ok((
                control::find_user_by_email(c, &keys, &email)?,
                control::get_workspace(c, &keys, ws)?.is_some(),
            ))
        })
        .await?;
    if !exists {
        return Err(Error::NotFound("workspace"));
    }
    let user = user.ok_or_else(|| {
        Error::field(
            "email",
            "no account has this email; create it first with `aura user create`",
        )
    })?;
    let now = state.clock.unix();
    let keys = state.control.keys.clone();
    let meta_c = meta.clone();
    let actor_c = actor.clone();
    let uid = user.id;
    state
        .control
        .db
        .write_async(move |tx| {
            if control::active_membership(tx, ws, uid)?.is_some() {
                return Err(Error::field("email", "this account is already a member"));
            }
            control::insert_membership(tx, ws, uid, role, now)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(actor_c, "member.added", &meta_c)
                    .target("user", uid)
                    .after(json!({ "workspace": ws.to_string(), "role": role.as_str() })),
            )?;
            Ok(())
        })
        .await?;
    let tenant = state
        .tenants
        .open_async(&state.control, SystemTask::OperatorAddsMember.grant(ws))
        .await?;
    let meta_c = meta.clone();
    tenant
        .write(move |t| {
            t.audit(
                now,
                &NewEntry::new(actor, "member.added", &meta_c)
                    .target("user", uid)
                    .after(json!({ "role": role.as_str() })),
            )
        })
        .await?;
    Ok(uid)
}
