//! Managing who is in a workspace: role changes, removal, service accounts.
//! Memberships live in control.db, so each change writes its entry to the
//! platform chain in the same transaction, then mirrors it into the
//! workspace's own chain, where its owners and admins read it.

use crate::store::SqlTx;
use serde_json::json;

use crate::access::Role;
use crate::access::enter::TenantHandle;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::control::{self, Control, NewUser};
use crate::store::tenant::{TenantDb, TenantTx};
use crate::store::{accounts, audit, tokens};

/// One change to record, in both chains.
#[derive(Clone, Debug)]
pub struct Change {
    pub action: &'static str,
    pub target_type: &'static str,
    pub target_id: String,
    pub after: serde_json::Value,
}

/// Runs `f` on control.db with its platform audit entry in the same
/// transaction, then appends the same entry to the workspace's chain.
pub async fn control_change<T, F>(
    control: &Control,
    ctx: &TenantHandle,
    change: Change,
    f: F,
) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn SqlTx) -> Result<T> + Send + 'static,
{
    control_update(control, ctx, change, move |tx| Ok((f(tx)?, None))).await
}

/// `control_change` for a change of existing state: `f` also returns the
/// state before, read in the same transaction as its write, and both chains
/// record it next to the after.
pub async fn control_update<T, F>(
    control: &Control,
    ctx: &TenantHandle,
    change: Change,
    f: F,
) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn SqlTx) -> Result<(T, Option<serde_json::Value>)> + Send + 'static,
{
    let by = By {
        db: &ctx.db,
        actor: ctx.actor.clone(),
        meta: ctx.meta.clone(),
        now: ctx.now(),
    };
    control_update_then(control, by, change, f, |_| Ok(())).await
}

/// Who makes a change kept in control.db, and the workspace whose chain
/// records it: a member's request (`TenantHandle`) or the workspace's
/// identity provider (`access::scim::ScimHandle`).
pub struct By<'a> {
    pub db: &'a TenantDb,
    pub actor: Actor,
    pub meta: RequestMeta,
    pub now: i64,
}

/// `control_update`, and `then` in the workspace's own transaction that
/// appends the entry to its chain: workspace data that goes with the change
/// (team places that go with a membership) changes with its entry.
pub async fn control_update_then<T, F, G>(
    control: &Control,
    by: By<'_>,
    change: Change,
    f: F,
    then: G,
) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn SqlTx) -> Result<(T, Option<serde_json::Value>)> + Send + 'static,
    G: FnOnce(&TenantTx<'_>) -> Result<()> + Send + 'static,
{
    let By {
        db,
        actor,
        meta,
        now,
    } = by;
    let keys = control.keys.clone();
    let a2 = actor.clone();
    let ws = db.id();
    let m = meta.clone();
    let c = change.clone();
    let (out, before) = control
        .db
        .write_async(move |tx| {
            let (out, before) = f(tx)?;
            let platform_actor = a2;
            let mut after = c.after.clone();
            after["workspace"] = json!(ws.to_string());
            let mut entry = NewEntry::new(platform_actor, c.action, &m)
                .target(c.target_type, &c.target_id)
                .after(after);
            if let Some(b) = &before {
                let mut b = b.clone();
                if let Some(m) = b.as_object_mut() {
                    m.insert("workspace".into(), json!(ws.to_string()));
                }
                entry = entry.before(b);
            }
            audit::append(tx, &keys.sealer, now, &entry)?;
            Ok((out, before))
        })
        .await?;
    db.write(move |t| {
        then(t)?;
        let mut entry = NewEntry::new(actor, change.action, &meta)
            .target(change.target_type, &change.target_id)
            .after(change.after);
        if let Some(b) = before {
            entry = entry.before(b);
        }
        t.audit(now, &entry)
    })
    .await?;
    Ok(out)
}

/// Whether `actor` (holding `actor_role`) may move `target` from `from` to
/// `to` (`None`: removal). Only owners touch the owner role, and the last
/// owner stays.
fn check_change(actor_role: Role, from: Role, to: Option<Role>, owners: i64) -> Result<()> {
    let touches_owner = from == Role::Owner || to == Some(Role::Owner);
    if touches_owner && actor_role != Role::Owner {
        return Err(Error::Forbidden);
    }
    if from == Role::Owner && to != Some(Role::Owner) && owners <= 1 {
        return Err(Error::Conflict(
            "a workspace keeps at least one owner; make someone else owner first".into(),
        ));
    }
    Ok(())
}

/// The role the actor holds as the change commits: the role the request came
/// in with, lowered to the membership's role read in the change's own
/// transaction, so a demotion or removal that committed while this request
/// was in flight counts (the request came in before it, the change does not).
fn actor_role_now(
    tx: &dyn SqlTx,
    ws: crate::ids::WorkspaceId,
    actor: UserId,
    entered: Role,
) -> Result<Role> {
    let held = accounts::membership_role(tx, ws, actor)?.ok_or(Error::Forbidden)?;
    // `Ord` runs from most to least privileged: the larger is the lesser.
    Ok(entered.max(held))
}

pub async fn set_role(
    control: &Control,
    ctx: &TenantHandle,
    target: UserId,
    role: Role,
) -> Result<()> {
    let ws = ctx.db.id();
    let (actor, entered) = (ctx.user, ctx.role);
    let change = Change {
        action: "member.role_changed",
        target_type: "user",
        target_id: target.to_string(),
        after: json!({ "role": role.as_str() }),
    };
    control_update(control, ctx, change, move |tx| {
        let actor_role = actor_role_now(tx, ws, actor, entered)?;
        let from = accounts::membership_role(tx, ws, target)?.ok_or(Error::NotFound("member"))?;
        check_change(actor_role, from, Some(role), accounts::owner_count(tx, ws)?)?;
        accounts::set_role(tx, ws, target, role)?;
        Ok(((), Some(json!({ "role": from.as_str() }))))
    })
    .await
}

pub async fn remove(control: &Control, ctx: &TenantHandle, target: UserId) -> Result<()> {
    let ws = ctx.db.id();
    let (actor, entered) = (ctx.user, ctx.role);
    let now = ctx.now();
    let change = Change {
        action: "member.removed",
        target_type: "user",
        target_id: target.to_string(),
        after: json!({}),
    };
    control_update(control, ctx, change, move |tx| {
        let actor_role = actor_role_now(tx, ws, actor, entered)?;
        let from = accounts::membership_role(tx, ws, target)?.ok_or(Error::NotFound("member"))?;
        check_change(actor_role, from, None, accounts::owner_count(tx, ws)?)?;
        accounts::delete_membership(tx, ws, target)?;
        tokens::revoke_member_tokens(tx, ws, target, now)?;
        Ok(((), Some(json!({ "role": from.as_str() }))))
    })
    .await?;
    // Team places go with the membership.
    let t = target.to_string();
    ctx.db
        .write(move |tx| crate::store::teams::remove_user_everywhere(tx, &t).map(|_| ()))
        .await
}

/// Creates a service account: an account that never signs in and acts only
/// through tokens, a member of this workspace with `role`.
pub async fn create_service_account(
    control: &Control,
    ctx: &TenantHandle,
    name: &str,
    role: Role,
) -> Result<UserId> {
    let name = super::validate_name("name", name)?;
    if !ctx.role.at_least(role) {
        return Err(Error::field(
            "role",
            format!("must be no higher than your own role ({})", ctx.role),
        ));
    }
    let id = UserId::generate();
    let ws = ctx.db.id();
    let now = ctx.now();
    let keys = control.keys.clone();
    let change = Change {
        action: "service_account.created",
        target_type: "user",
        target_id: id.to_string(),
        after: json!({ "role": role.as_str() }),
    };
    control_change(control, ctx, change, move |tx| {
        let email = format!("svc-{id}@service.invalid");
        control::insert_user(
            tx,
            &keys,
            &NewUser {
                id,
                email: &email,
                name: Some(&name),
                password_hash: None,
                platform_admin: false,
            },
            now,
        )?;
        accounts::set_kind_service(tx, id)?;
        control::insert_membership(tx, ws, id, role, now)?;
        Ok(id)
    })
    .await
}

/// Turns the workspace's two-factor requirement on or off (owners).
pub async fn set_mfa_policy(control: &Control, ctx: &TenantHandle, required: bool) -> Result<()> {
    let ws = ctx.db.id();
    let me = ctx.user;
    let has_own = control
        .db
        .read_async(move |c| crate::store::mfa::has_second_factor(c, me))
        .await?;
    if required && !has_own {
        return Err(Error::field(
            "required",
            "set up two-factor sign-in for yourself first (your account page), or you would be shut out",
        ));
    }
    let now = ctx.now();
    let change = Change {
        action: "workspace.mfa_policy_changed",
        target_type: "workspace",
        target_id: ws.to_string(),
        after: json!({ "require_mfa": required }),
    };
    control_update(control, ctx, change, move |tx| {
        let before = crate::store::mfa::require_mfa(tx, ws)?;
        crate::store::mfa::set_require_mfa(tx, ws, required, now)?;
        Ok(((), Some(json!({ "require_mfa": before }))))
    })
    .await
}

pub async fn mfa_policy(control: &Control, ctx: &TenantHandle) -> Result<bool> {
    let ws = ctx.db.id();
    control
        .db
        .read_async(move |c| crate::store::mfa::require_mfa(c, ws))
        .await
}

/// The workspace's service accounts: id, name, role.
pub async fn service_accounts(
    control: &Control,
    ctx: &TenantHandle,
) -> Result<Vec<(UserId, String, Role)>> {
    let keys = control.keys.clone();
    let ws = ctx.db.id();
    control
        .db
        .read_async(move |c| {
            let ids = accounts::service_account_ids(c, ws)?;
            Ok(control::workspace_members(c, &keys, ws)?
                .into_iter()
                .filter(|(u, _)| ids.contains(&u.id))
                .map(|(u, role)| (u.id, u.name.unwrap_or_default(), role))
                .collect())
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_rules() {
        use Role::*;
        assert!(check_change(Admin, Member, Some(Manager), 1).is_ok());
        assert!(check_change(Admin, Owner, Some(Admin), 2).is_err());
        assert!(check_change(Admin, Member, Some(Owner), 1).is_err());
        assert!(check_change(Owner, Owner, Some(Admin), 2).is_ok());
        assert!(matches!(
            check_change(Owner, Owner, Some(Admin), 1),
            Err(Error::Conflict(_))
        ));
        assert!(check_change(Owner, Owner, None, 1).is_err());
        assert!(check_change(Owner, Owner, Some(Owner), 1).is_ok());
    }
}
