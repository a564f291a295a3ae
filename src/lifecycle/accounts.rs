//! Deleting one's own account with a grace period. Scheduling needs the
//! password again and is refused (409, naming them) while the person is the
//! last owner of a workspace: a workspace never loses its last owner. Until
//! `lifecycle.account_grace_days` have passed the account works as before
//! and the deletion can be cancelled; then its memberships end (with an
//! entry in each workspace's chain) and the account row goes, with its
//! sealed email and name, sessions, tokens and second factors.

use serde_json::json;

use super::notify;
use crate::access::{Principal, SystemTask, Via};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::UserId;
use crate::store::{audit, control, lifecycle};

const DAY: i64 = 86_400;

/// When the account's deletion is due, if it is scheduled.
pub async fn due(deps: &Deps<'_>, user: UserId) -> Result<Option<i64>> {
    deps.control
        .db
        .read_async(move |c| lifecycle::user_deletion_due(c, user))
        .await
}

fn person(who: &Principal) -> Result<()> {
    if matches!(who.via, Via::ApiToken { .. }) {
        return Err(Error::Forbidden);
    }
    Ok(())
}

/// The 409 that names the workspaces the person is the last owner of.
fn last_owner(names: Vec<String>) -> Error {
    Error::Conflict(format!(
        "you are the last owner of {}: make someone else owner there first, or delete the workspace",
        names.join(", ")
    ))
}

pub async fn schedule(
    deps: &Deps<'_>,
    who: &Principal,
    password: String,
    meta: &RequestMeta,
) -> Result<i64> {
    person(who)?;
    crate::identity::guard::reauthenticate(deps, who, password, "password", meta).await?;
    let user = who.user_id;
    let now = deps.clock.unix();
    let days = i64::from(deps.config.file.lifecycle.account_grace_days);
    let due = now + days * DAY;
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    deps.control
        .db
        .write_async(move |tx| {
            let sole = lifecycle::sole_owner_of(tx, user)?;
            if !sole.is_empty() {
                let names = sole
                    .iter()
                    .map(|ws| {
                        let name = control::get_workspace(tx, &keys, *ws)?
                            .map(|w| w.name)
                            .unwrap_or_default();
                        Ok(format!("\"{name}\" ({ws})"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                return Err(last_owner(names));
            }
            lifecycle::schedule_user(tx, user, now, due)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(user), "user.deletion_scheduled", &m)
                    .target("user", user)
                    .after(json!({ "due_at": due, "grace_days": days })),
            )?;
            Ok(())
        })
        .await?;
    notify::account(deps, user, notify::Event::Scheduled { due }).await;
    Ok(due)
}

pub async fn cancel(deps: &Deps<'_>, who: &Principal, meta: &RequestMeta) -> Result<()> {
    person(who)?;
    let user = who.user_id;
    let now = deps.clock.unix();
    crate::identity::self_change(
        deps,
        user,
        "user.deletion_cancelled",
        now,
        meta,
        move |tx| {
            if !lifecycle::cancel_user(tx, user)? {
                return Err(Error::Conflict(
                    "your account is not scheduled for deletion".into(),
                ));
            }
            Ok(())
        },
    )
    .await?;
    notify::account(deps, user, notify::Event::Cancelled).await;
    Ok(())
}

/// Deletes the accounts whose grace period ended (blocking). An account that
/// became a workspace's last owner meanwhile is kept (and logged) until that
/// changes. Returns (deleted, kept).
pub fn purge_due(deps: &Deps<'_>, now: i64, progress: &dyn Fn(&str)) -> Result<(usize, usize)> {
    let due = deps.control.db.read(|c| lifecycle::due_users(c, now))?;
    let (mut deleted, mut kept) = (0, 0);
    let meta = RequestMeta::default();
    for user in due {
        let sole = deps
            .control
            .db
            .read(|c| lifecycle::sole_owner_of(c, user))?;
        if !sole.is_empty() {
            tracing::warn!(user = %user, workspaces = ?sole, "account deletion due but it is the last owner; kept");
            kept += 1;
            continue;
        }
        progress(&format!("deleting account {user}"));
        let workspaces = deps
            .control
            .db
            .read(|c| lifecycle::memberships_of(c, user))?;
        // Team places and an entry in each workspace's own chain first; the
        // memberships themselves go with the account row below.
        for ws in &workspaces {
            let t = deps
                .tenants
                .open(deps.control, &SystemTask::AccountDeletion.grant(*ws))?;
            let uid = user.to_string();
            t.write_blocking(|t| {
                crate::store::teams::remove_user_everywhere(t, &uid)?;
                t.audit(
                    now,
                    &NewEntry::new(Actor::System, "member.removed", &meta)
                        .target("user", user)
                        .after(json!({ "reason": "account deleted" })),
                )
            })?;
        }
        let keys = deps.control.keys.clone();
        let ids: Vec<String> = workspaces.iter().map(|w| w.to_string()).collect();
        deps.control.db.write(|tx| {
            lifecycle::delete_user(tx, user)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::System, "user.deleted", &meta)
                    .target("user", user)
                    .after(json!({ "memberships_ended": ids })),
            )?;
            Ok(())
        })?;
        deleted += 1;
    }
    Ok((deleted, kept))
}
