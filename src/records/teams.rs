//! Teams inside a workspace: a name (sealed), a lead or leads, and members.
//! A team can own collections; only its lead and members see those.

use serde_json::json;

use crate::access::enter::{TenantCtx, deny};
use crate::access::permissions::{Action, Resource, allows};
use crate::access::{Role, TeamPlace};
use crate::app::AppState;
use crate::audit::{NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::store::control::{self, UserRow};
use crate::store::teams::TeamRow;

pub async fn list(ctx: &TenantCtx) -> Result<Vec<TeamRow>> {
    ctx.db.read(crate::store::teams::list_teams).await
}

/// The workspace's members with their accounts.
pub async fn members(state: &AppState, ctx: &TenantCtx) -> Result<Vec<(UserRow, Role)>> {
    let ws = ctx.db.id();
    let control = std::sync::Arc::clone(&state.control);
    state
        .control
        .db
        .read_async(move |c| control::workspace_members(c, &control.keys, ws))
        .await
}

pub async fn create(
    state: &AppState,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    name: &str,
) -> Result<TeamRow> {
    let name = crate::records::schema::validate_collection_name("name", name)?;
    let now = state.clock.unix();
    let actor = ctx.actor.clone();
    let meta = meta.clone();
    ctx.db
        .write(move |t| {
            let id = uuid::Uuid::now_v7().to_string();
            crate::store::teams::insert_team(t.tx, t.sealer, &id, &name, now)?;
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

pub async fn delete(
    state: &AppState,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    team: &str,
) -> Result<()> {
    let now = state.clock.unix();
    let actor = ctx.actor.clone();
    let meta = meta.clone();
    let team = team.to_owned();
    ctx.db
        .write(move |t| {
            if !crate::store::teams::delete_team(t.tx, &team)? {
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
/// manager (`TenantCtx::role_with`).
async fn check_manage(
    state: &AppState,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    team: &str,
) -> Result<()> {
    let teams = list(ctx).await?;
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
        Err(deny(
            state,
            &ctx.db,
            &ctx.actor,
            ctx.role,
            "team.update",
            "admin or team lead",
            meta,
        )
        .await)
    }
}

pub async fn set_member(
    state: &AppState,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    team: &str,
    user: &str,
    role: &str,
) -> Result<()> {
    if role != "lead" && role != "member" {
        return Err(Error::field("role", "must be lead or member"));
    }
    check_manage(state, ctx, meta, team).await?;
    let uid: UserId = user.parse().map_err(|_| Error::NotFound("member"))?;
    let is_member = members(state, ctx).await?.iter().any(|(u, _)| u.id == uid);
    if !is_member {
        return Err(Error::NotFound("member"));
    }
    let now = state.clock.unix();
    let actor = ctx.actor.clone();
    let meta = meta.clone();
    let (team, user, role) = (team.to_owned(), user.to_owned(), role.to_owned());
    ctx.db
        .write(move |t| {
            crate::store::teams::set_team_member(t.tx, &team, &user, &role, now)?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "team.member_set", &meta)
                    .target("team", &team)
                    .after(json!({ "user": user, "role": role })),
            )?;
            Ok(())
        })
        .await
}

pub async fn remove_member(
    state: &AppState,
    ctx: &TenantCtx,
    meta: &RequestMeta,
    team: &str,
    user: &str,
) -> Result<()> {
    check_manage(state, ctx, meta, team).await?;
    let now = state.clock.unix();
    let actor = ctx.actor.clone();
    let meta = meta.clone();
    let (team, user) = (team.to_owned(), user.to_owned());
    ctx.db
        .write(move |t| {
            if !crate::store::teams::remove_team_member(t.tx, &team, &user)? {
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
