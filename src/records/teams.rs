//! Teams inside a workspace: a name (sealed), a lead or leads, and members.
//! A team can own collections; only its lead and members see those.

use serde_json::json;

use crate::access::enter::TenantHandle;
use crate::access::op::{self, Op};
use crate::access::permissions::{Action, Resource, allows};
use crate::access::{Role, TeamPlace};
use crate::audit::NewEntry;
use crate::error::{Error, Result};
use crate::ids::{TeamId, UserId};
use crate::store::control::{self, Control, UserRow};
use crate::store::teams::TeamRow;

pub async fn list(ctx: &TenantHandle) -> Result<Vec<TeamRow>> {
    ctx.db.read(crate::store::teams::list_teams).await
}

/// The workspace's members with their accounts.
pub async fn members(control: &Control, ctx: &TenantHandle) -> Result<Vec<(UserRow, Role)>> {
    let ws = ctx.db.id();
    let keys = control.keys.clone();
    control
        .db
        .read_async(move |c| control::workspace_members(c, &keys, ws))
        .await
}

pub async fn create(ctx: &TenantHandle, name: &str) -> Result<TeamRow> {
    let name = crate::records::schema::validate_collection_name("name", name)?;
    let now = ctx.now();
    let actor = ctx.actor.clone();
    let meta = ctx.meta.clone();
    ctx.db
        .write(move |t| {
            let id = TeamId::generate().to_string();
            crate::store::teams::insert_team(t, t.sealer, &id, &name, now)?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "team.created", &meta)
                    .target("team", &id)
                    .after(json!({ "name": name })),
            )?;
            Ok(TeamRow {
                id,
                name,
                created_at: now,
                members: Vec::new(),
            })
        })
        .await
}

pub async fn delete(ctx: &TenantHandle, team: TeamId) -> Result<()> {
    let now = ctx.now();
    let actor = ctx.actor.clone();
    let meta = ctx.meta.clone();
    let team = team.to_string();
    ctx.db
        .write(move |t| {
            if !crate::store::teams::delete_team(t, &team)? {
                return Err(Error::NotFound("team"));
            }
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "team.deleted", &meta).target("team", &team),
            )?;
            Ok(())
        })
        .await
}

/// Admins manage every team; a team's lead manages its own members, acting
/// as a manager there, and so only where the request's token scope reaches
/// manager (`TenantHandle::role_with`).
async fn check_manage(ctx: &TenantHandle, team: TeamId) -> Result<()> {
    let teams = list(ctx).await?;
    let team = team.to_string();
    let t = teams
        .iter()
        .find(|t| t.id == team)
        .ok_or(Error::NotFound("team"))?;
    let me = ctx.user.to_string();
    let place = t
        .members
        .iter()
        .find(|(u, _)| *u == me)
        .and_then(|(_, r)| TeamPlace::parse(r));
    let leads = place == Some(TeamPlace::Lead) && ctx.role_with(place).at_least(Role::Manager);
    if allows(ctx.role, Resource::Team, Action::Update) || leads {
        Ok(())
    } else {
        Err(ctx
            .deny(ctx.role, op::TeamUpdate::LABEL, "admin or team lead")
            .await)
    }
}

pub async fn set_member(
    control: &Control,
    ctx: &TenantHandle,
    team: TeamId,
    user: &str,
    role: &str,
) -> Result<()> {
    if role != "lead" && role != "member" {
        return Err(Error::field("role", "must be lead or member"));
    }
    check_manage(ctx, team).await?;
    let uid: UserId = user.parse().map_err(|_| Error::NotFound("member"))?;
    let is_member = members(control, ctx)
        .await?
        .iter()
        .any(|(u, _)| u.id == uid);
    if !is_member {
        return Err(Error::NotFound("member"));
    }
    let now = ctx.now();
    let actor = ctx.actor.clone();
    let meta = ctx.meta.clone();
    let (team, user, role) = (team.to_string(), user.to_owned(), role.to_owned());
    ctx.db
        .write(move |t| {
            // The place before (none when they join), read in this transaction.
            let was = crate::store::teams::teams_of(t, &user)?
                .into_iter()
                .find(|(id, _)| *id == team)
                .map(|(_, r)| r);
            crate::store::teams::set_team_member(t, &team, &user, &role, now)?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "team.member_set", &meta)
                    .target("team", &team)
                    .before(json!({ "user": user, "role": was }))
                    .after(json!({ "user": user, "role": role })),
            )?;
            Ok(())
        })
        .await
}

pub async fn remove_member(ctx: &TenantHandle, team: TeamId, user: &str) -> Result<()> {
    check_manage(ctx, team).await?;
    let now = ctx.now();
    let actor = ctx.actor.clone();
    let meta = ctx.meta.clone();
    let (team, user) = (team.to_string(), user.to_owned());
    ctx.db
        .write(move |t| {
            if !crate::store::teams::remove_team_member(t, &team, &user)? {
                return Err(Error::NotFound("team member"));
            }
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "team.member_removed", &meta)
                    .target("team", &team)
                    .before(json!({ "user": user })),
            )?;
            Ok(())
        })
        .await
}
