//! The provider's groups mapped to the workspace's roles and teams, at every
//! sign-in. A role mapping gives the most privileged role any of the
//! person's groups maps to (else the default role); owners are never moved
//! by it. A team mapping puts the person in the teams of their groups and
//! out of the mapped teams of groups they left. Each change is audited with
//! before and after.

use serde_json::json;

use super::flow::Claims;
use super::settings::Settings;
use crate::access::Role;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::Result;
use crate::identity::Deps;
use crate::ids::{UserId, WorkspaceId};
use crate::store::{accounts, teams};

/// The most privileged role the groups map to, if any does.
pub(super) fn mapped_role(settings: &Settings, groups: &[String]) -> Option<Role> {
    settings
        .role_mappings
        .iter()
        .filter(|m| groups.contains(&m.group))
        .map(|m| m.role)
        .min()
}

pub(super) async fn apply(
    deps: &Deps<'_>,
    ws: WorkspaceId,
    settings: &Settings,
    claims: &Claims,
    user: UserId,
    meta: &RequestMeta,
) -> Result<()> {
    let now = deps.clock.unix();
    let why = crate::access::SystemTask::SsoSignIn;
    if !settings.role_mappings.is_empty() {
        let want = mapped_role(settings, &claims.groups).unwrap_or(settings.default_role);
        let keys = deps.control.keys.clone();
        let m = meta.clone();
        let changed = deps
            .control
            .db
            .write_async(move |tx| {
                let Some(from) = accounts::membership_role(tx, ws, user)? else {
                    return Ok(None);
                };
                if from == want || super::account::keeps_role(from) {
                    return Ok(None);
                }
                accounts::set_role(tx, ws, user, want)?;
                let e = NewEntry::new(Actor::User(user), "sso.role_mapped", &m)
                    .target("user", user)
                    .before(json!({ "role": from.as_str(), "workspace": ws.to_string() }))
                    .after(json!({ "role": want.as_str(), "workspace": ws.to_string() }));
                crate::store::audit::append(tx, &keys.sealer, now, &e)?;
                Ok(Some(from))
            })
            .await?;
        if let Some(from) = changed {
            let groups = claims.groups.clone();
            crate::audit::service::record_in_workspace(
                deps.control,
                deps.tenants,
                ws,
                why,
                now,
                meta,
                move |m| {
                    NewEntry::new(Actor::User(user), "sso.role_mapped", m)
                        .target("user", user)
                        .before(json!({ "role": from.as_str() }))
                        .after(json!({ "role": want.as_str(), "groups": groups }))
                },
            )
            .await?;
        }
    }
    if settings.team_mappings.is_empty() {
        return Ok(());
    }
    let mut want: Vec<String> = Vec::new();
    let mut mapped: Vec<String> = Vec::new();
    for m in &settings.team_mappings {
        mapped.push(m.team.clone());
        if claims.groups.contains(&m.group) {
            want.push(m.team.clone());
        }
    }
    want.sort();
    want.dedup();
    mapped.sort();
    mapped.dedup();
    let db = deps.tenants.open_async(deps.control, why.grant(ws)).await?;
    let m = meta.clone();
    let uid = user.to_string();
    db.write(move |t| {
        let had: Vec<String> = teams::teams_of(t, &uid)?
            .into_iter()
            .map(|(team, _)| team)
            .filter(|team| mapped.contains(team))
            .collect();
        let mut added = Vec::new();
        let mut removed = Vec::new();
        for team in &want {
            if !had.contains(team) && teams::team_exists(t, team)? {
                teams::set_team_member(t, team, &uid, "member", now)?;
                added.push(team.clone());
            }
        }
        for team in &had {
            if !want.contains(team) && teams::remove_team_member(t, team, &uid)? {
                removed.push(team.clone());
            }
        }
        if added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        let mut after: Vec<String> = had
            .iter()
            .filter(|x| !removed.contains(x))
            .cloned()
            .collect();
        after.extend(added.iter().cloned());
        after.sort();
        let e = NewEntry::new(Actor::User(user), "sso.teams_mapped", &m)
            .target("user", user)
            .before(json!({ "teams": had }))
            .after(json!({ "teams": after, "added": added, "removed": removed }));
        t.audit(now, &e).map(|_| ())
    })
    .await
}
