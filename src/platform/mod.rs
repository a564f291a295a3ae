//! The platform area: operators create, list, suspend and resume workspaces
//! and see their health, but never read workspace data. To support a
//! workspace they start an impersonation with a stated reason and an expiry,
//! bound to their browser session; it is recorded in the platform chain and
//! in the workspace's own chain (where its owners read it), and every entry
//! they cause inside names them as staff, with the reason.

use serde_json::json;

use crate::access::{Principal, Role, Via};
use crate::audit::service::record_in_workspace;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::WorkspaceId;
use crate::store::control::{self, WorkspaceRow};
use crate::store::{audit, platform};

pub const MAX_IMPERSONATION_MINUTES: u32 = 60;
const MIN_REASON_CHARS: usize = 10;
/// The longest reason (the API schema's `maxLength`).
const MAX_REASON_CHARS: usize = 1000;

/// A workspace as operators see it: no names of people, no content.
pub struct Health {
    pub row: WorkspaceRow,
    pub members: i64,
    /// Size of the workspace's database file (and its WAL), in bytes.
    pub size_bytes: u64,
    /// When its deletion is due, if it is being deleted.
    pub deletion_due_at: Option<i64>,
}

pub async fn list(deps: &Deps<'_>) -> Result<Vec<Health>> {
    let keys = deps.control.keys.clone();
    let rows = deps
        .control
        .db
        .read_async(move |c| {
            let lifecycles = crate::store::lifecycle::all(c)?;
            control::list_workspaces(c, &keys)?
                .into_iter()
                .map(|mut w| {
                    let members = platform::member_count(c, w.id)?;
                    // A move keeps `state`; show it as what it is.
                    let l = lifecycles.iter().find(|l| l.workspace == w.id);
                    if let Some(l) = l {
                        w.state = l.kind.as_str().to_owned();
                    }
                    Ok((w, members, l.and_then(|l| l.due_at)))
                })
                .collect::<Result<Vec<_>>>()
        })
        .await?;
    let dir = deps.tenants.tenants_dir().clone();
    Ok(rows
        .into_iter()
        .map(|(row, members, deletion_due_at)| {
            let base = dir.join(row.id.to_string());
            let size_bytes = ["data.db", "data.db-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(base.join(f)).ok())
                .map(|m| m.len())
                .sum();
            Health {
                row,
                members,
                size_bytes,
                deletion_due_at,
            }
        })
        .collect())
}

fn parse_ws(id: &str) -> Result<WorkspaceId> {
    id.parse().map_err(|_| Error::NotFound("workspace"))
}

/// Suspends (`active = false`) or resumes a workspace. A suspended
/// workspace answers 404 to its members until it is resumed.
pub async fn set_active(
    deps: &Deps<'_>,
    staff: &Principal,
    workspace: &str,
    active: bool,
    meta: &RequestMeta,
) -> Result<()> {
    let ws = parse_ws(workspace)?;
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let who = staff.user_id;
    let (new_state, action) = if active {
        ("active", "workspace.resumed")
    } else {
        ("suspended", "workspace.suspended")
    };
    let was = deps
        .control
        .db
        .write_async(move |tx| {
            if let Some(l) = crate::store::lifecycle::get(tx, ws)? {
                return Err(Error::Conflict(format!(
                    "the workspace is {}; that ends first (cancel it, or let it finish)",
                    l.kind.as_str()
                )));
            }
            let was = platform::set_state(tx, ws, new_state, now)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(who), action, &m)
                    .target("workspace", ws)
                    .before(json!({ "state": was }))
                    .after(json!({ "state": new_state })),
            )?;
            Ok(was)
        })
        .await?;
    // The workspace's owners see it in their own chain too.
    record_in_workspace(
        deps.control,
        deps.tenants,
        ws,
        crate::access::SystemTask::RecordPlatformAction,
        now,
        meta,
        move |m| {
            NewEntry::new(Actor::User(who), action, m)
                .target("workspace", ws)
                .before(json!({ "state": was }))
                .after(json!({ "state": new_state }))
        },
    )
    .await
}

pub struct Started {
    pub id: String,
    pub expires_at: i64,
}

/// Starts an impersonation of `workspace` for the staff member's current
/// browser session.
pub async fn impersonate(
    deps: &Deps<'_>,
    staff: &Principal,
    workspace: &str,
    reason: &str,
    minutes: u32,
    role: Role,
    meta: &RequestMeta,
) -> Result<Started> {
    let Via::Session { hash, .. } = &staff.via else {
        return Err(Error::Usage(
            "impersonation is for a browser session; sign in to the platform area".into(),
        ));
    };
    let reason = reason.trim().to_owned();
    let mut errors = Vec::new();
    let chars = reason.chars().count();
    if chars < MIN_REASON_CHARS || reason.chars().any(char::is_control) {
        errors.push(crate::error::FieldError {
            field: "reason".into(),
            message: format!(
                "say why, in at least {MIN_REASON_CHARS} characters (a ticket number helps)"
            ),
        });
    } else if chars > MAX_REASON_CHARS {
        errors.push(crate::error::FieldError {
            field: "reason".into(),
            message: format!("at most {MAX_REASON_CHARS} characters"),
        });
    }
    if !(1..=MAX_IMPERSONATION_MINUTES).contains(&minutes) {
        errors.push(crate::error::FieldError {
            field: "minutes".into(),
            message: format!("must be between 1 and {MAX_IMPERSONATION_MINUTES}"),
        });
    }
    if role == Role::Owner {
        errors.push(crate::error::FieldError {
            field: "role".into(),
            message: "must be admin, manager, member or viewer".into(),
        });
    }
    if !errors.is_empty() {
        return Err(Error::Validation(errors));
    }
    let ws = parse_ws(workspace)?;
    let now = deps.clock.unix();
    let expires_at = now + i64::from(minutes) * 60;
    let id = uuid::Uuid::now_v7().to_string();
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let staff_id = staff.user_id;
    let session_hash = hash.clone();
    let i_id = id.clone();
    let r = reason.clone();
    let detail = json!({ "role": role.as_str(), "expires_at": expires_at, "impersonation": id });
    let d = detail.clone();
    deps.control
        .db
        .write_async(move |tx| {
            let active =
                control::get_workspace(tx, &keys, ws)?.is_some_and(|w| w.state == "active");
            if !active {
                return Err(Error::NotFound("workspace"));
            }
            // Staff are held to the workspace's two-factor requirement like
            // its members (`access::grant_for` checks it on every request
            // too, should the policy change during the impersonation).
            if crate::store::mfa::require_mfa(tx, ws)?
                && !crate::store::mfa::has_second_factor(tx, staff_id)?
            {
                return Err(Error::MfaEnrolmentRequired);
            }
            platform::insert_impersonation(
                tx,
                &keys,
                &platform::NewImpersonation {
                    id: &i_id,
                    staff_id,
                    workspace_id: ws,
                    session_hash: &session_hash,
                    reason: &r,
                    role,
                    expires_at,
                },
                now,
            )?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(
                    Actor::Staff {
                        staff: staff_id,
                        reason: r.clone(),
                    },
                    "impersonation.started",
                    &m,
                )
                .target("workspace", ws)
                .after(d),
            )?;
            Ok(())
        })
        .await?;
    record_in_workspace(
        deps.control,
        deps.tenants,
        ws,
        crate::access::SystemTask::RecordImpersonation,
        now,
        meta,
        move |m| {
            NewEntry::new(
                Actor::Staff {
                    staff: staff_id,
                    reason,
                },
                "impersonation.started",
                m,
            )
            .target("workspace", ws)
            .after(detail)
        },
    )
    .await?;
    Ok(Started { id, expires_at })
}

/// Ends the caller's live impersonation (if any), in both chains.
pub async fn end(deps: &Deps<'_>, staff: &Principal, meta: &RequestMeta) -> Result<bool> {
    let Some(i) = staff.impersonating.clone() else {
        return Ok(false);
    };
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let actor = Actor::Staff {
        staff: i.staff_id,
        reason: i.reason.clone(),
    };
    let a = actor.clone();
    let iid = i.id.clone();
    let ws = i.workspace_id;
    let ended = deps
        .control
        .db
        .write_async(move |tx| {
            if !platform::end_impersonation(tx, &iid, now)? {
                return Ok(false);
            }
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(a, "impersonation.ended", &m)
                    .target("workspace", ws)
                    .after(json!({ "impersonation": iid })),
            )?;
            Ok(true)
        })
        .await?;
    if ended {
        let iid = i.id.clone();
        record_in_workspace(
            deps.control,
            deps.tenants,
            ws,
            crate::access::SystemTask::RecordImpersonation,
            now,
            meta,
            move |m| {
                NewEntry::new(actor, "impersonation.ended", m)
                    .target("workspace", ws)
                    .after(json!({ "impersonation": iid }))
            },
        )
        .await?;
    }
    Ok(ended)
}
