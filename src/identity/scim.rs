//! SCIM users (RFC 7643 §4.1) as Aura sees them: the people of one workspace,
//! managed by that workspace's identity provider. A SCIM user is an Aura
//! account (its SCIM `id` is the account id, its `userName` the email) and
//! `active` is its membership of this workspace.
//!
//! - Creating one makes the account if its email has none (no password: the
//!   person signs in with SSO or a magic link) and adds it as a member with
//!   `default_role()`; an account that exists is added as a member.
//! - `active: false` (and `DELETE`) remove the membership and its team
//!   places and revoke the person's API tokens in this workspace, so their
//!   sessions, access JWTs and tokens reach it no more from the next
//!   request; `active: true` brings the membership back with the role held
//!   before. The workspace's last owner is never removed.
//! - Every change writes control.db and the platform chain in one
//!   transaction, then the workspace's chain (with the team places that go)
//!   in another, the entry naming the SCIM token as the actor.
//!
//! Accounts are never deleted here: they may belong to other workspaces.

use serde_json::json;

use super::members::{By, Change, control_update_then};
use crate::access::Role;
use crate::access::scim::ScimHandle;
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::control::{self, Control, NewUser};
use crate::store::scim::{self as sql, NewScimUser, Origin, ScimUserRow};
use crate::store::{SqlTx, accounts, tokens};

/// The role a person provisioned by the identity provider gets: the
/// workspace's single sign-on default role when it has a provider, else
/// member (one rule for SCIM and SSO's just-in-time provisioning).
pub fn default_role(
    conn: &dyn crate::store::Sql,
    keys: &crate::store::control::PlatformKeys,
    ws: crate::ids::WorkspaceId,
) -> Result<Role> {
    crate::identity::sso::default_role(conn, keys, ws)
}

/// A SCIM user of one workspace.
#[derive(Clone, Debug)]
pub struct ScimUser {
    pub id: UserId,
    pub user_name: String,
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub active: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

pub struct NewScim {
    pub user_name: String,
    pub display_name: Option<String>,
    pub external_id: Option<String>,
    pub active: bool,
}

/// What a PUT or PATCH asks for; `None` leaves a value as it is.
#[derive(Default, Debug)]
pub struct UserChange {
    pub active: Option<bool>,
    /// `Some(None)` clears it.
    pub external_id: Option<Option<String>>,
    /// Must be the account's email: Aura does not rename accounts from here.
    pub user_name: Option<String>,
}

/// Every person the workspace's provider sees: the workspace's members
/// (people, not service accounts) and those it deactivated, oldest first.
pub async fn list(control: &Control, h: &ScimHandle) -> Result<Vec<ScimUser>> {
    let ws = h.workspace();
    let keys = control.keys.clone();
    control
        .db
        .read_async(move |c| {
            let services = accounts::service_account_ids(c, ws)?;
            let managed = sql::scim_users(c, &keys, ws)?;
            let members = control::workspace_members(c, &keys, ws)?;
            let mut out: Vec<ScimUser> = Vec::new();
            for (u, _) in members
                .into_iter()
                .filter(|(u, _)| !services.contains(&u.id))
            {
                let row = managed.iter().find(|m| m.user_id == u.id);
                out.push(view(&u, row, true));
            }
            let seen: std::collections::HashSet<UserId> = out.iter().map(|o| o.id).collect();
            for m in managed.iter().filter(|m| !seen.contains(&m.user_id)) {
                if let Some(u) = control::get_user(c, &keys, m.user_id)? {
                    out.push(view(&u, Some(m), false));
                }
            }
            out.sort_by_key(|u| (u.created_at, u.id.to_string()));
            Ok(out)
        })
        .await
}

fn view(u: &control::UserRow, row: Option<&ScimUserRow>, active: bool) -> ScimUser {
    ScimUser {
        id: u.id,
        user_name: u.email.clone(),
        name: u.name.clone(),
        external_id: row.and_then(|r| r.external_id.clone()),
        active,
        created_at: row.map_or(u.created_at, |r| r.created_at),
        updated_at: row.map_or(u.created_at, |r| r.updated_at),
    }
}

/// One person by SCIM id; anyone the workspace's provider does not see is
/// `NotFound`, exactly like an id that exists nowhere.
pub async fn get(control: &Control, h: &ScimHandle, id: &str) -> Result<ScimUser> {
    let id: UserId = id.parse().map_err(|_| Error::NotFound("user"))?;
    let ws = h.workspace();
    let keys = control.keys.clone();
    control
        .db
        .read_async(move |c| read_one(c, &keys, ws, id))
        .await?
        .ok_or(Error::NotFound("user"))
}

fn read_one(
    c: &dyn crate::store::Sql,
    keys: &control::PlatformKeys,
    ws: crate::ids::WorkspaceId,
    id: UserId,
) -> Result<Option<ScimUser>> {
    let member = accounts::membership_role(c, ws, id)?.is_some() && !accounts::is_service(c, id)?;
    let row = sql::scim_user(c, keys, ws, id)?;
    if !member && row.is_none() {
        return Ok(None);
    }
    Ok(control::get_user(c, keys, id)?.map(|u| view(&u, row.as_ref(), member)))
}

/// Provisions a person (POST /Users). A `userName` the workspace already
/// has (a member, or someone the provider deactivated) is a conflict.
pub async fn create(control: &Control, h: &ScimHandle, new: NewScim) -> Result<ScimUser> {
    let email = crate::model::email::validate_email("userName", &new.user_name)?;
    let name = new
        .display_name
        .as_deref()
        .filter(|n| !n.trim().is_empty())
        .map(|n| super::validate_name("displayName", n))
        .transpose()?;
    let external_id = new
        .external_id
        .as_deref()
        .map(|e| validate_external_id(e).map(str::to_owned))
        .transpose()?;
    let ws = h.workspace();
    let now = h.now();
    let keys = control.keys.clone();
    let k2 = keys.clone();
    let lookup = email.clone();
    let existing = control
        .db
        .read_async(move |c| control::find_user_by_email(c, &k2, &lookup))
        .await?;
    let id = existing.as_ref().map_or_else(UserId::generate, |u| u.id);
    let origin = if existing.is_some() {
        Origin::Linked
    } else {
        Origin::Created
    };
    let (k3, role_ws) = (keys.clone(), ws);
    let role = control
        .db
        .read_async(move |c| default_role(c, &k3, role_ws))
        .await?;
    let active = new.active;
    let change = Change {
        action: "scim.user_provisioned",
        target_type: "user",
        target_id: id.to_string(),
        after: json!({
            "userName": email,
            "externalId": external_id,
            "active": active,
            "role": role.as_str(),
            "account": origin.as_str(),
        }),
    };
    let (e2, ext2) = (email.clone(), external_id.clone());
    control_update_then(
        control,
        by(h),
        change,
        move |tx| {
            if origin == Origin::Created {
                control::insert_user(
                    tx,
                    &keys,
                    &NewUser {
                        id,
                        email: &e2,
                        name: name.as_deref(),
                        password_hash: None,
                        platform_admin: false,
                    },
                    now,
                )
                .map_err(|e| match e {
                    // Made by another request since the lookup above.
                    Error::Validation(_) => {
                        Error::Conflict("userName: an account with it was just made".into())
                    }
                    other => other,
                })?;
            } else if accounts::is_service(tx, id)? {
                return Err(Error::field("userName", "is a service account's address"));
            }
            if accounts::membership_role(tx, ws, id)?.is_some()
                || sql::scim_user(tx, &keys, ws, id)?.is_some()
            {
                return Err(Error::Conflict(
                    "userName: this workspace already has this person".into(),
                ));
            }
            if active {
                control::insert_membership(tx, ws, id, role, now)?;
            }
            let row = NewScimUser {
                ws,
                user: id,
                origin,
                external_id: ext2.as_deref(),
                active,
                role,
            };
            sql::insert_scim_user(tx, &keys, &row, now)?;
            Ok(((), None))
        },
        |_| Ok(()),
    )
    .await?;
    get(control, h, &id.to_string()).await
}

fn validate_external_id(e: &str) -> Result<&str> {
    if e.chars().count() > 512 || e.chars().any(char::is_control) {
        return Err(Error::field(
            "externalId",
            "must be at most 512 characters, without control characters",
        ));
    }
    Ok(e)
}

fn by(h: &ScimHandle) -> By<'_> {
    By {
        db: &h.db,
        actor: h.actor.clone(),
        meta: h.meta.clone(),
        now: h.now(),
    }
}

/// Applies a PUT or PATCH: `externalId`, then `active` (deactivation or
/// reactivation, each audited under its own action). A `userName` other
/// than the account's email is refused and nothing is written.
pub async fn update(
    control: &Control,
    h: &ScimHandle,
    id: &str,
    change: UserChange,
) -> Result<ScimUser> {
    let current = get(control, h, id).await?;
    if let Some(n) = &change.user_name
        && !n.trim().eq_ignore_ascii_case(&current.user_name)
    {
        return Err(Error::field(
            "userName",
            "cannot change here: it is the person's Aura account email",
        ));
    }
    let ext = change
        .external_id
        .map(|e| {
            e.as_deref()
                .map(validate_external_id)
                .transpose()
                .map(|v| v.map(str::to_owned))
        })
        .transpose()?;
    let uid = current.id;
    let flip = change.active.filter(|a| *a != current.active);
    let ext_changes = ext.as_ref().is_some_and(|e| *e != current.external_id);
    if ext_changes && flip.is_none() {
        set_external(control, h, &current, ext.clone().flatten()).await?;
    }
    match flip {
        Some(false) => deactivate(control, h, &current, ext, "scim.user_deactivated").await?,
        Some(true) => reactivate(control, h, &current, ext).await?,
        None => {}
    }
    get(control, h, &uid.to_string()).await
}

/// Brings an adopted member under the provider's management when it first
/// changes them: the row that remembers their role and external id.
fn ensure_row(
    tx: &dyn SqlTx,
    keys: &control::PlatformKeys,
    ws: crate::ids::WorkspaceId,
    user: UserId,
    role: Role,
    now: i64,
) -> Result<ScimUserRow> {
    if let Some(r) = sql::scim_user(tx, keys, ws, user)? {
        return Ok(r);
    }
    sql::insert_scim_user(
        tx,
        keys,
        &NewScimUser {
            ws,
            user,
            origin: Origin::Adopted,
            external_id: None,
            active: true,
            role,
        },
        now,
    )?;
    sql::scim_user(tx, keys, ws, user)?.ok_or(Error::NotFound("user"))
}

async fn set_external(
    control: &Control,
    h: &ScimHandle,
    current: &ScimUser,
    ext: Option<String>,
) -> Result<()> {
    let (ws, now, uid, keys) = (h.workspace(), h.now(), current.id, control.keys.clone());
    let change = Change {
        action: "scim.user_updated",
        target_type: "user",
        target_id: uid.to_string(),
        after: json!({ "userName": current.user_name, "externalId": ext }),
    };
    let before = json!({ "externalId": current.external_id });
    control_update_then(
        control,
        by(h),
        change,
        move |tx| {
            let role = match accounts::membership_role(tx, ws, uid)? {
                Some(r) => r,
                None => default_role(tx, &keys, ws)?,
            };
            ensure_row(tx, &keys, ws, uid, role, now)?;
            sql::set_scim_external_id(tx, &keys, ws, uid, ext.as_deref(), now)?;
            Ok(((), Some(before)))
        },
        |_| Ok(()),
    )
    .await
}

/// Removes the membership (deactivation, or the first half of a deletion):
/// the team places go in the workspace's transaction with its entry.
async fn deactivate(
    control: &Control,
    h: &ScimHandle,
    current: &ScimUser,
    ext: Option<Option<String>>,
    action: &'static str,
) -> Result<()> {
    let (ws, now, uid, keys) = (h.workspace(), h.now(), current.id, control.keys.clone());
    let deleting = action == "scim.user_deleted";
    let change = Change {
        action,
        target_type: "user",
        target_id: uid.to_string(),
        after: json!({
            "userName": current.user_name,
            "externalId": ext.clone().unwrap_or_else(|| current.external_id.clone()),
            "active": false,
        }),
    };
    control_update_then(
        control,
        by(h),
        change,
        move |tx| {
            let held = accounts::membership_role(tx, ws, uid)?;
            // Owners are named and removed in Aura by owners; a SCIM token,
            // which admins may issue too, never removes one.
            if held == Some(Role::Owner) {
                return Err(Error::Conflict(
                    "owners are managed in Aura: an owner makes this person something else first"
                        .into(),
                ));
            }
            let fallback = match held {
                Some(r) => r,
                None => default_role(tx, &keys, ws)?,
            };
            let row = ensure_row(tx, &keys, ws, uid, fallback, now)?;
            let role = held.unwrap_or(row.role);
            if held.is_some() {
                accounts::delete_membership(tx, ws, uid)?;
            }
            let revoked = tokens::revoke_member_tokens(tx, ws, uid, now)?;
            if let Some(e) = &ext {
                sql::set_scim_external_id(tx, &keys, ws, uid, e.as_deref(), now)?;
            }
            if deleting {
                sql::delete_scim_user(tx, ws, uid)?;
            } else {
                sql::set_scim_user_state(tx, ws, uid, false, role, now)?;
            }
            let before = json!({ "active": held.is_some(), "role": role.as_str(), "api_tokens_revoked": revoked });
            Ok(((), Some(before)))
        },
        move |t| crate::store::teams::remove_user_everywhere(t, &uid.to_string()).map(|_| ()),
    )
    .await
}

async fn reactivate(
    control: &Control,
    h: &ScimHandle,
    current: &ScimUser,
    ext: Option<Option<String>>,
) -> Result<()> {
    let (ws, now, uid, keys) = (h.workspace(), h.now(), current.id, control.keys.clone());
    let change = Change {
        action: "scim.user_reactivated",
        target_type: "user",
        target_id: uid.to_string(),
        after: json!({
            "userName": current.user_name,
            "externalId": ext.clone().unwrap_or_else(|| current.external_id.clone()),
            "active": true,
        }),
    };
    control_update_then(
        control,
        by(h),
        change,
        move |tx| {
            let role = default_role(tx, &keys, ws)?;
            let row = ensure_row(tx, &keys, ws, uid, role, now)?;
            if accounts::membership_role(tx, ws, uid)?.is_none() {
                control::insert_membership(tx, ws, uid, row.role, now)?;
            }
            if let Some(e) = &ext {
                sql::set_scim_external_id(tx, &keys, ws, uid, e.as_deref(), now)?;
            }
            sql::set_scim_user_state(tx, ws, uid, true, row.role, now)?;
            Ok((
                (),
                Some(json!({ "active": false, "role": row.role.as_str() })),
            ))
        },
        |_| Ok(()),
    )
    .await
}

/// DELETE /Users/{id}: the membership goes as on deactivation, and the
/// provider forgets the person (a later POST provisions them anew).
pub async fn delete(control: &Control, h: &ScimHandle, id: &str) -> Result<()> {
    let current = get(control, h, id).await?;
    deactivate(control, h, &current, None, "scim.user_deleted").await
}

/// Whether this workspace's SCIM provisioned the account (created it or
/// added it as a new member) and it is a member now: an SSO sign-in may
/// link such an account by its email on first use.
pub fn scim_provisioned(
    conn: &dyn crate::store::Sql,
    ws: crate::ids::WorkspaceId,
    user: UserId,
) -> Result<bool> {
    sql::scim_provisioned(conn, ws, user)
}
