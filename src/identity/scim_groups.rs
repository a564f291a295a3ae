//! SCIM groups (RFC 7643 §4.2) are the workspace's teams: a group's `id` is
//! the team's id, its `displayName` the team's name, its members the team's
//! members (added as `member`; a lead the provider keeps stays a lead).
//! Members must be members of the workspace. Each change is one transaction
//! of the workspace's database with its audit entries, the SCIM token the
//! actor.

use serde_json::json;

use crate::access::scim::ScimHandle;
use crate::audit::NewEntry;
use crate::error::{Error, Result};
use crate::ids::TeamId;
use crate::store::control::Control;
use crate::store::teams::{self, TeamRow};
use crate::store::tenant::TenantTx;

/// What a PATCH or PUT asks of a group, applied in this order: rename,
/// replace the members, remove all, remove some, add some.
#[derive(Default, Debug)]
pub struct GroupChange {
    pub rename: Option<String>,
    pub replace: Option<Vec<String>>,
    pub remove_all: bool,
    pub remove: Vec<String>,
    pub add: Vec<String>,
}

impl GroupChange {
    fn is_empty(&self) -> bool {
        self.rename.is_none()
            && self.replace.is_none()
            && !self.remove_all
            && self.remove.is_empty()
            && self.add.is_empty()
    }
}

pub async fn list(h: &ScimHandle) -> Result<Vec<TeamRow>> {
    h.db.read(teams::list_teams).await
}

pub async fn get(h: &ScimHandle, id: &str) -> Result<TeamRow> {
    let id: TeamId = id.parse().map_err(|_| Error::NotFound("group"))?;
    let id = id.to_string();
    list(h)
        .await?
        .into_iter()
        .find(|t| t.id == id)
        .ok_or(Error::NotFound("group"))
}

/// Checks that every `value` names a member (a person) of the workspace;
/// the first that does not is a 400 naming its place in the request.
async fn check_members(control: &Control, h: &ScimHandle, ids: &[&String]) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let ws = h.workspace();
    let members = control
        .db
        .read_async(move |c| {
            let all = crate::store::accounts::member_user_ids(c, ws)?;
            let services = crate::store::accounts::service_account_ids(c, ws)?;
            Ok(all
                .into_iter()
                .filter(|u| !services.iter().any(|s| s.to_string() == *u))
                .collect::<std::collections::HashSet<String>>())
        })
        .await?;
    for (i, id) in ids.iter().enumerate() {
        if !members.contains(id.as_str()) {
            return Err(Error::field(
                format!("members[{i}].value"),
                "is not a user of this workspace",
            ));
        }
    }
    Ok(())
}

fn validate_name(n: &str) -> Result<String> {
    crate::model::schema::validate_collection_name("displayName", n)
}

pub async fn create(
    control: &Control,
    h: &ScimHandle,
    name: &str,
    members: Vec<String>,
) -> Result<TeamRow> {
    let name = validate_name(name)?;
    check_members(control, h, &members.iter().collect::<Vec<_>>()).await?;
    let (now, actor, meta) = (h.now(), h.actor.clone(), h.meta.clone());
    let id = TeamId::generate().to_string();
    let made = id.clone();
    h.db.write(move |t| {
        teams::insert_team(t, t.sealer, &id, &name, now)?;
        for m in &members {
            teams::set_team_member(t, &id, m, "member", now)?;
        }
        t.audit(
            now,
            &NewEntry::new(actor, "scim.group_created", &meta)
                .target("team", &id)
                .after(json!({ "displayName": name, "members": members })),
        )?;
        Ok(())
    })
    .await?;
    get(h, &made).await
}

/// The members of `team` as read in `t`, sorted (for before and after).
fn members_of(t: &TenantTx<'_>, team: &str) -> Result<Vec<(String, String)>> {
    let mut m: Vec<(String, String)> = teams::list_teams(t, t.sealer)?
        .into_iter()
        .find(|r| r.id == team)
        .ok_or(Error::NotFound("group"))?
        .members;
    m.sort();
    Ok(m)
}

pub async fn change(
    control: &Control,
    h: &ScimHandle,
    id: &str,
    change: GroupChange,
) -> Result<TeamRow> {
    let current = get(h, id).await?;
    if change.is_empty() {
        return Ok(current);
    }
    let rename = change.rename.as_deref().map(validate_name).transpose()?;
    let wanted: Vec<&String> = change
        .replace
        .iter()
        .flatten()
        .chain(change.add.iter())
        .collect();
    check_members(control, h, &wanted).await?;
    let (now, actor, meta) = (h.now(), h.actor.clone(), h.meta.clone());
    let team = current.id.clone();
    let old_name = current.name.clone();
    h.db.write(move |t| {
        let before = members_of(t, &team)?;
        if let Some(n) = &rename
            && *n != old_name
        {
            teams::rename_team(t, t.sealer, &team, n)?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "scim.group_updated", &meta)
                    .target("team", &team)
                    .before(json!({ "displayName": old_name }))
                    .after(json!({ "displayName": n })),
            )?;
        }
        if let Some(keep) = &change.replace {
            for (u, _) in before.iter().filter(|(u, _)| !keep.contains(u)) {
                teams::remove_team_member(t, &team, u)?;
            }
        }
        if change.remove_all {
            for (u, _) in &before {
                teams::remove_team_member(t, &team, u)?;
            }
        }
        for u in &change.remove {
            teams::remove_team_member(t, &team, u)?;
        }
        let now_in = members_of(t, &team)?;
        for u in change.replace.iter().flatten().chain(change.add.iter()) {
            // A lead the provider names again stays a lead.
            if !now_in.iter().any(|(m, _)| m == u) {
                teams::set_team_member(t, &team, u, "member", now)?;
            }
        }
        let after = members_of(t, &team)?;
        if after != before {
            let ids = |v: &[(String, String)]| v.iter().map(|(u, _)| u.clone()).collect::<Vec<_>>();
            t.audit(
                now,
                &NewEntry::new(actor, "scim.group_members_changed", &meta)
                    .target("team", &team)
                    .before(json!({ "members": ids(&before) }))
                    .after(json!({ "members": ids(&after) })),
            )?;
        }
        Ok(())
    })
    .await?;
    get(h, id).await
}

pub async fn delete(h: &ScimHandle, id: &str) -> Result<()> {
    let current = get(h, id).await?;
    let (now, actor, meta) = (h.now(), h.actor.clone(), h.meta.clone());
    h.db.write(move |t| {
        if !teams::delete_team(t, &current.id)? {
            return Err(Error::NotFound("group"));
        }
        let members: Vec<&String> = current.members.iter().map(|(u, _)| u).collect();
        t.audit(
            now,
            &NewEntry::new(actor, "scim.group_deleted", &meta)
                .target("team", &current.id)
                .before(json!({ "displayName": current.name, "members": members })),
        )?;
        Ok(())
    })
    .await
}
