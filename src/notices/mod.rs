//! Notices the trust page promises owners. An incident the operator declares
//! (`aura incident declare`) is recorded in control.db with its sealed
//! summary and the workspaces it affects, audited in the platform chain and
//! in each affected workspace's chain, mailed to those workspaces' owners,
//! shown as a banner inside them until an owner or admin acknowledges it, and
//! listed on /trust by date, status and scope (a count, or "all workspaces":
//! never a workspace's name). `update` and `resolve` follow it to the
//! post-incident summary. Subprocessor changes with notice are in
//! `subprocessors`; the mail both owe is in `mail`.

pub mod mail;
pub mod subprocessors;

use serde_json::json;

use crate::access::Role;
use crate::access::enter::TenantHandle;
use crate::access::op;
use crate::audit::service::record_in_workspace;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::{UserId, WorkspaceId};
use crate::store::Sql;
use crate::store::control::Control;
use crate::store::notices::{self as sql, IncidentRow, UpdateRow};
use crate::store::{audit, control};

/// The longest summary accepted (characters).
pub const MAX_SUMMARY: usize = 20_000;

/// Which workspaces an incident affects.
pub enum Scope {
    All,
    Listed(Vec<WorkspaceId>),
}

/// What a declaration, an update or a resolution did.
#[derive(Debug)]
pub struct Outcome {
    pub id: String,
    pub workspaces: usize,
    /// Owners mailed now, and owners whose mail is still owed.
    pub mailed: usize,
    pub pending: usize,
    /// Workspace chains the entry could not be written to (logged).
    pub unaudited: Vec<WorkspaceId>,
}

/// How /trust words an incident's scope: never a workspace's name.
pub fn scope_words(i: &IncidentRow) -> String {
    if i.scope == "all" {
        "all workspaces".into()
    } else if i.workspaces == 1 {
        "1 workspace".into()
    } else {
        format!("{} workspaces", i.workspaces)
    }
}

fn check_summary(summary: &str) -> Result<String> {
    let s = summary.trim();
    if s.is_empty() {
        return Err(Error::field("summary", "is empty; say what happened"));
    }
    if s.chars().count() > MAX_SUMMARY {
        return Err(Error::field(
            "summary",
            format!("must be at most {MAX_SUMMARY} characters"),
        ));
    }
    Ok(s.to_owned())
}

/// The people (not service accounts) who own any of `workspaces`.
pub(crate) fn owners_of(
    c: &dyn Sql,
    keys: &crate::store::control::PlatformKeys,
    workspaces: &[WorkspaceId],
) -> Result<Vec<UserId>> {
    let mut out = Vec::new();
    for ws in workspaces {
        for (u, role) in control::workspace_members(c, keys, *ws)? {
            if role == Role::Owner && !u.email.ends_with("@service.invalid") && !out.contains(&u.id)
            {
                out.push(u.id);
            }
        }
    }
    Ok(out)
}

pub async fn declare(
    deps: &Deps<'_>,
    scope: Scope,
    summary: &str,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let summary = check_summary(summary)?;
    let keys = deps.control.keys.clone();
    let all = matches!(scope, Scope::All);
    let workspaces = deps
        .control
        .db
        .read_async(move |c| match scope {
            Scope::All => control::workspace_ids(c),
            Scope::Listed(list) => {
                for ws in &list {
                    if control::get_workspace(c, &keys, *ws)?.is_none() {
                        return Err(Error::field(
                            "workspaces",
                            format!("no workspace has the id {ws}; see `aura workspace list`"),
                        ));
                    }
                }
                let mut list = list;
                list.sort();
                list.dedup();
                Ok(list)
            }
        })
        .await?;
    if workspaces.is_empty() {
        return Err(Error::field("workspaces", "there are no workspaces yet"));
    }
    let id = format!("inc_{}", uuid::Uuid::now_v7().simple());
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let (i, w, s, m) = (
        id.clone(),
        workspaces.clone(),
        summary.clone(),
        meta.clone(),
    );
    deps.control
        .db
        .write_async(move |tx| {
            sql::insert_incident(tx, &i, all, &w, now)?;
            let seq = sql::insert_update(tx, &keys, &i, "declared", Some(&s), now)?;
            let owners = owners_of(tx, &keys, &w)?;
            sql::owe_mail(tx, &mail::incident_notice(&i, seq), &owners, now)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::Operator, "incident.declared", &m)
                    .target("incident", &i)
                    .after(json!({
                        "scope": if all { "all" } else { "listed" },
                        "workspaces": w.len(),
                        "status": "open",
                        "summary": s,
                    })),
            )?;
            Ok(())
        })
        .await?;
    let detail = json!({ "status": "open", "workspaces": workspaces.len(), "summary": summary });
    follow_up(
        deps,
        &id,
        "incident.declared",
        detail,
        workspaces,
        now,
        meta,
    )
    .await
}

/// An update (`resolved` false) or the resolution, with its summary.
pub async fn update(
    deps: &Deps<'_>,
    id: &str,
    summary: Option<&str>,
    resolved: bool,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let summary = match summary {
        Some(s) => Some(check_summary(s)?),
        None if resolved => None,
        None => return Err(Error::field("summary", "an update needs a summary")),
    };
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let (i, s, m) = (id.to_owned(), summary.clone(), meta.clone());
    let (kind, action) = if resolved {
        ("resolved", "incident.resolved")
    } else {
        ("updated", "incident.updated")
    };
    let (before, workspaces) = deps
        .control
        .db
        .write_async(move |tx| {
            let before = sql::get_incident(tx, &i)?.ok_or(Error::NotFound("incident"))?;
            if resolved && before.status == "resolved" {
                return Err(Error::Conflict(format!(
                    "incident {i} is already resolved; add to it with `aura incident update`"
                )));
            }
            let w = sql::incident_workspaces(tx, &i)?;
            let seq = sql::insert_update(tx, &keys, &i, kind, s.as_deref(), now)?;
            let owners = owners_of(tx, &keys, &w)?;
            sql::owe_mail(tx, &mail::incident_notice(&i, seq), &owners, now)?;
            let status = if resolved { "resolved" } else { &before.status };
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::Operator, action, &m)
                    .target("incident", &i)
                    .before(json!({ "status": before.status }))
                    .after(json!({ "status": status, "summary": s })),
            )?;
            Ok((before, w))
        })
        .await?;
    let status = if resolved { "resolved" } else { &before.status };
    let detail = json!({ "status": status, "workspaces": workspaces.len(), "summary": summary });
    follow_up(deps, id, action, detail, workspaces, now, meta).await
}

/// After the commit: the entry in each affected workspace's chain, then the
/// owners' mail.
async fn follow_up(
    deps: &Deps<'_>,
    id: &str,
    action: &'static str,
    detail: serde_json::Value,
    workspaces: Vec<WorkspaceId>,
    now: i64,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let mut unaudited = Vec::new();
    for ws in &workspaces {
        let (i, d) = (id.to_owned(), detail.clone());
        let r = record_in_workspace(
            deps.control,
            deps.tenants,
            *ws,
            crate::access::SystemTask::RecordIncident,
            now,
            meta,
            move |m| {
                NewEntry::new(Actor::Operator, action, m)
                    .target("incident", i)
                    .after(d)
            },
        )
        .await;
        if let Err(e) = r {
            tracing::warn!(workspace = %ws, error = %e, "incident not recorded in the workspace's chain");
            unaudited.push(*ws);
        }
    }
    let (mailed, pending) = mail::deliver(deps, Some(&format!("incident:{id}:"))).await?;
    Ok(Outcome {
        id: id.to_owned(),
        workspaces: workspaces.len(),
        mailed,
        pending,
        unaudited,
    })
}

/// Every incident, newest first, with its updates.
pub async fn list(deps: &Deps<'_>) -> Result<Vec<(IncidentRow, Vec<UpdateRow>)>> {
    let keys = deps.control.keys.clone();
    deps.control
        .db
        .read_async(move |c| {
            sql::list_incidents(c)?
                .into_iter()
                .map(|i| {
                    let u = sql::updates(c, &keys, &i.id)?;
                    Ok((i, u))
                })
                .collect()
        })
        .await
}

/// One incident for its public page; unknown ids are `NotFound`.
pub async fn public(deps: &Deps<'_>, id: &str) -> Result<(IncidentRow, Vec<UpdateRow>)> {
    let keys = deps.control.keys.clone();
    let id = id.to_owned();
    deps.control
        .db
        .read_async(move |c| {
            let i = sql::get_incident(c, &id)?.ok_or(Error::NotFound("incident"))?;
            let u = sql::updates(c, &keys, &id)?;
            Ok((i, u))
        })
        .await
}

/// The incidents of this workspace that no owner or admin acknowledged yet.
pub async fn unacknowledged(ctx: &TenantHandle, control: &Control) -> Result<Vec<IncidentRow>> {
    let ws = ctx.db.id();
    let all = control
        .db
        .read_async(move |c| sql::incidents_of_workspace(c, ws))
        .await?;
    if all.is_empty() {
        return Ok(all);
    }
    let acked = ctx.db.read(|c, _| sql::acknowledged(c)).await?;
    Ok(all.into_iter().filter(|i| !acked.contains(&i.id)).collect())
}

/// An owner or admin acknowledges an incident for their workspace: the
/// banner is gone for it. An incident of another workspace is `NotFound`.
pub async fn acknowledge(ctx: &TenantHandle, control: &Control, id: &str) -> Result<()> {
    // Every member passes the door; acknowledging for the workspace is for
    // its owners and admins, and a refusal is recorded like the door's.
    if !ctx.role.at_least(Role::Admin) {
        let label = <op::IncidentAcknowledge as op::Op>::LABEL;
        return Err(ctx.deny(ctx.role, label, Role::Admin.as_str()).await);
    }
    let ws = ctx.db.id();
    let mine = control
        .db
        .read_async(move |c| sql::incidents_of_workspace(c, ws))
        .await?;
    let Some(incident) = mine.into_iter().find(|i| i.id == id) else {
        return Err(Error::NotFound("incident"));
    };
    let now = ctx.now();
    let (actor, user, m) = (ctx.actor.clone(), ctx.user, ctx.meta.clone());
    ctx.db
        .write(move |t| {
            if sql::acknowledge(t, &incident.id, user, now)? {
                t.audit(
                    now,
                    &NewEntry::new(actor, "incident.acknowledged", &m)
                        .target("incident", &incident.id)
                        .after(json!({ "status": incident.status })),
                )?;
            }
            Ok(())
        })
        .await
}
