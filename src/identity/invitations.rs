//! Invitations: an admin invites an email address with a role; the link is
//! sent by mail, works once and expires after `VALID_DAYS`. Accepting as
//! someone without an account creates it (name and password); an existing
//! account must be signed in to accept. Acceptance is rate limited per IP.

use serde_json::json;

use super::Deps;
use super::members::{Change, control_change};
use crate::access::enter::TenantHandle;
use crate::access::{Principal, Role};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::mail::{Mail, Mailer};
use crate::store::control::{self, Control, NewUser};
use crate::store::invitations::{self as store, InvitationRow, NewInvitation};
use crate::store::{accounts, audit};

pub const VALID_DAYS: i64 = 7;
const ACCEPT_WINDOW: i64 = 30 * 60;

/// What sending an invitation needs besides the workspace: control.db, the
/// mailer and the address the link points at.
#[derive(Clone, Copy)]
pub struct InviteMail<'a> {
    pub control: &'a Control,
    pub mailer: &'a Mailer,
    pub public_url: &'a str,
}

pub async fn invite(
    mail: InviteMail<'_>,
    ctx: &TenantHandle,
    email: &str,
    role: Role,
) -> Result<InvitationRow> {
    let control = mail.control;
    let email = super::validate_email("email", email)?;
    if role == Role::Owner && ctx.role != Role::Owner {
        return Err(Error::field("role", "only an owner invites an owner"));
    }
    if !ctx.role.at_least(role) {
        return Err(Error::field(
            "role",
            format!("must be no higher than your own role ({})", ctx.role),
        ));
    }
    if !mail.mailer.configured() {
        return Err(Error::Unavailable(
            "mail is not configured: set [mail] smtp_host in the config to send invitations",
        ));
    }
    let ws = ctx.db.id();
    let now = ctx.now();
    let keys = control.keys.clone();
    let e = email.clone();
    let (already, pending, ws_name) = control
        .db
        .read_async(move |c| {
            let member = match control::find_user_by_email(c, &keys, &e)? {
                Some(u) => accounts::membership_role(c, ws, u.id)?.is_some(),
                None => false,
            };
            let pending = store::has_pending_for(c, &keys, ws, &e, now)?;
            let name = control::get_workspace(c, &keys, ws)?
                .map(|w| w.name)
                .unwrap_or_default();
            Ok((member, pending, name))
        })
        .await?;
    if already {
        return Err(Error::field(
            "email",
            "is already a member of this workspace",
        ));
    }
    if pending {
        return Err(Error::field(
            "email",
            "already has a pending invitation; revoke it to send a new one",
        ));
    }
    let token = random_token();
    let expires_at = now + VALID_DAYS * 86_400;
    let link = format!("{}/invite/{token}", mail.public_url);
    // The mail goes first: if it cannot be sent, nothing is stored.
    mail.mailer
        .send(Mail {
            to: email.clone(),
            subject: format!("You are invited to {ws_name} on Aura"),
            body: format!(
                "You have been invited to join the workspace \"{ws_name}\" on Aura as {role}.\n\n\
                 Accept the invitation: {link}\n\n\
                 The link works once and expires on {}. If you did not expect this, ignore it.\n",
                crate::clock::rfc3339(expires_at)
            ),
        })
        .await?;
    let row = InvitationRow {
        id: uuid::Uuid::now_v7().to_string(),
        workspace_id: ws,
        email,
        role,
        invited_by: ctx.user,
        created_at: now,
        expires_at,
        accepted_at: None,
        revoked_at: None,
    };
    let r = row.clone();
    let keys = control.keys.clone();
    let hash = hash_token(&token);
    let change = Change {
        action: "invitation.created",
        target_type: "invitation",
        target_id: row.id.clone(),
        after: json!({ "role": role.as_str(), "expires_at": expires_at }),
    };
    control_change(control, ctx, change, move |tx| {
        store::insert(
            tx,
            &keys,
            &NewInvitation {
                id: &r.id,
                workspace_id: r.workspace_id,
                token_hash: &hash,
                email: &r.email,
                role: r.role,
                invited_by: r.invited_by,
                expires_at: r.expires_at,
            },
            now,
        )
    })
    .await?;
    Ok(row)
}

pub async fn list(control: &Control, ctx: &TenantHandle) -> Result<Vec<InvitationRow>> {
    let keys = control.keys.clone();
    let ws = ctx.db.id();
    control
        .db
        .read_async(move |c| store::list(c, &keys, ws))
        .await
}

pub async fn revoke(control: &Control, ctx: &TenantHandle, id: &str) -> Result<()> {
    let ws = ctx.db.id();
    let now = ctx.now();
    let iid = id.to_owned();
    let change = Change {
        action: "invitation.revoked",
        target_type: "invitation",
        target_id: id.to_owned(),
        after: json!({}),
    };
    control_change(control, ctx, change, move |tx| {
        store::revoke(tx, ws, &iid, now)
    })
    .await
}

/// What the invitation page shows before accepting.
pub struct Preview {
    pub invitation: InvitationRow,
    pub workspace_name: String,
    pub account_exists: bool,
}

pub async fn preview(deps: &Deps<'_>, token: &str) -> Result<Preview> {
    let keys = deps.control.keys.clone();
    let hash = hash_token(token);
    let now = deps.clock.unix();
    deps.control
        .db
        .read_async(move |c| {
            let inv =
                store::find_live(c, &keys, &hash, now)?.ok_or(Error::NotFound("invitation"))?;
            let workspace_name = control::get_workspace(c, &keys, inv.workspace_id)?
                .map(|w| w.name)
                .unwrap_or_default();
            let account_exists = control::find_user_by_email(c, &keys, &inv.email)?.is_some();
            Ok(Preview {
                invitation: inv,
                workspace_name,
                account_exists,
            })
        })
        .await
}

/// A new account's details, when the invited address has none yet.
pub struct NewAccount {
    pub name: String,
    pub password: String,
}

pub struct Accepted {
    pub workspace: WorkspaceId,
    pub user: UserId,
    /// A new account was created (the caller may sign it in).
    pub created: bool,
}

pub async fn accept(
    deps: &Deps<'_>,
    token: &str,
    who: Option<&Principal>,
    new_account: Option<NewAccount>,
    meta: &RequestMeta,
) -> Result<Accepted> {
    let now = deps.clock.unix();
    let ip = format!(
        "accept:{}",
        super::netkey::key(meta.ip.as_deref(), &deps.config.file.limits)
    );
    let limit = deps.config.file.auth.registrations_per_ip;
    deps.limits
        .registrations
        .hit(&ip, now, limit, ACCEPT_WINDOW)?;
    let preview = preview(deps, token).await?;
    let inv = preview.invitation;
    let keys = deps.control.keys.clone();
    let email = inv.email.clone();
    let existing = deps
        .control
        .db
        .read_async(move |c| control::find_user_by_email(c, &keys, &email))
        .await?;
    let (user, hash, created) = match (existing, who) {
        (Some(u), Some(p)) if p.user_id == u.id && !u.disabled => (u.id, None, false),
        (Some(_), _) => {
            return Err(Error::Conflict(format!(
                "{} already has an account: sign in as it to accept",
                inv.email
            )));
        }
        (None, _) => {
            let Some(acct) = new_account else {
                return Err(Error::field("name", "is required to create your account"));
            };
            let mut errors = Vec::new();
            let name = match super::validate_name("name", &acct.name) {
                Ok(n) => Some(n),
                Err(Error::Validation(mut v)) => {
                    errors.append(&mut v);
                    None
                }
                Err(e) => return Err(e),
            };
            if let Err(Error::Validation(mut v)) =
                crate::crypto::password::check_password_policy(&acct.password)
            {
                errors.append(&mut v);
            }
            if !errors.is_empty() {
                return Err(Error::Validation(errors));
            }
            let hash = deps.hasher.hash(acct.password).await?;
            (
                UserId::generate(),
                Some((name.unwrap_or_default(), hash)),
                true,
            )
        }
    };
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let i = inv.clone();
    deps.control
        .db
        .write_async(move |tx| {
            if !store::mark_accepted(tx, &i.id, now)? {
                return Err(Error::NotFound("invitation"));
            }
            if let Some((name, hash)) = &hash {
                control::insert_user(
                    tx,
                    &keys,
                    &NewUser {
                        id: user,
                        email: &i.email,
                        name: Some(name),
                        password_hash: Some(hash),
                        platform_admin: false,
                    },
                    now,
                )?;
                audit::append(
                    tx,
                    &keys.sealer,
                    now,
                    &NewEntry::new(Actor::User(user), "user.created", &m).target("user", user),
                )?;
            }
            control::insert_membership(tx, i.workspace_id, user, i.role, now)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(user), "invitation.accepted", &m)
                    .target("invitation", &i.id)
                    .after(
                        json!({ "workspace": i.workspace_id.to_string(), "role": i.role.as_str() }),
                    ),
            )?;
            Ok(())
        })
        .await?;
    let role = inv.role;
    let iid = inv.id.clone();
    let why = crate::access::SystemTask::RecordInvitation;
    crate::audit::service::record_in_workspace(
        deps.control,
        deps.tenants,
        inv.workspace_id,
        why,
        now,
        meta,
        move |m| {
            NewEntry::new(Actor::User(user), "member.added", m)
                .target("user", user)
                .after(json!({ "role": role.as_str(), "invitation": iid }))
        },
    )
    .await?;
    Ok(Accepted {
        workspace: inv.workspace_id,
        user,
        created,
    })
}
