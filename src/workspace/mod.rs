//! Workspaces (tenants). Creating one makes its data key, wraps it under the
//! master key, creates its database with the first entry of its own audit
//! chain, and records it in the platform chain.

pub mod key_rotation;

use std::sync::Arc;

use serde_json::json;

use crate::access::{Role, SystemTask};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::clock::SharedClock;
use crate::crypto::DataKey;
use crate::error::{Error, Result};
use crate::identity::validate_name;
use crate::ids::{UserId, WorkspaceId};
use crate::store::audit;
use crate::store::control::{self, Control, WorkspaceRow};
use crate::store::tenant::TenantPool;

/// What creating a workspace or adding a member to one takes from the
/// appliance: control.db, the tenant pool (to write the workspace's own
/// chain), the clock, and the region a workspace gets when none is named.
#[derive(Clone, Copy)]
pub struct Platform<'a> {
    pub control: &'a Arc<Control>,
    pub tenants: &'a Arc<TenantPool>,
    pub clock: &'a SharedClock,
    pub default_region: &'a str,
}

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
    p: Platform<'_>,
    req: CreateWorkspace,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<WorkspaceId> {
    let name = validate_name("name", &req.name)?;
    let region = match req.region.as_deref() {
        Some(r) => validate_region(r)?,
        None => p.default_region.to_owned(),
    };
    let keys = p.control.keys.clone();
    let email = req.owner_email.clone();
    let owner = p
        .control
        .db
        .read_async(move |c| control::find_user_by_email(c, &keys, &email))
        .await?
        .ok_or_else(|| {
            Error::field(
                "owner",
                "no account has this email; create it first (Platform, Accounts, or `aura user create`)",
            )
        })?;

    let id = WorkspaceId::generate();
    let dek = DataKey::generate(1);
    let wrapped = p.control.master.wrap_key(&id.to_string(), &dek)?;
    let now = p.clock.unix();

    // The platform row (with the wrapped key) commits first: the tenant pool
    // needs it to open the new database. If the tenant step then fails, the
    // workspace exists with an empty chain and the error is reported.
    let keys = p.control.keys.clone();
    let meta_c = meta.clone();
    let actor_c = actor.clone();
    let region_c = region.clone();
    let name_c = name.clone();
    p.control
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
    let tenant = p.tenants.open_async(p.control, grant).await?;
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

pub async fn list_all(control: &Control) -> Result<Vec<WorkspaceRow>> {
    let keys = control.keys.clone();
    control
        .db
        .read_async(move |c| control::list_workspaces(c, &keys))
        .await
}

pub async fn list_for_user(control: &Control, user: UserId) -> Result<Vec<(WorkspaceRow, Role)>> {
    let keys = control.keys.clone();
    control
        .db
        .read_async(move |c| control::memberships_for_user(c, &keys, user))
        .await
}

/// A workspace's name ("" for one that is gone).
pub async fn name_of(control: &Control, ws: WorkspaceId) -> Result<String> {
    let keys = control.keys.clone();
    let row = control
        .db
        .read_async(move |c| control::get_workspace(c, &keys, ws))
        .await?;
    Ok(row.map(|w| w.name).unwrap_or_default())
}

/// Adds an existing account to a workspace with a role (operator action; the
/// invitation flow for admins arrives with the identity issue).
pub async fn add_member(
    p: Platform<'_>,
    ws: WorkspaceId,
    email: &str,
    role: Role,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<UserId> {
    let keys = p.control.keys.clone();
    let email = email.to_owned();
    let (user, exists) = p
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
            "no account has this email; create it first (Platform, Accounts, or `aura user create`)",
        )
    })?;
    let now = p.clock.unix();
    let keys = p.control.keys.clone();
    let meta_c = meta.clone();
    let actor_c = actor.clone();
    let uid = user.id;
    p.control
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
    let tenant = p
        .tenants
        .open_async(p.control, SystemTask::OperatorAddsMember.grant(ws))
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
