//! `aura_` API tokens. The secret is shown once; control.db keeps its SHA-256,
//! a sealed name, the workspace it is for, its scope (the most it may do, no
//! more than its creator's role), an expiry (no later than that of the token
//! that made it, when a token made it) and the last use. Each request checks the
//! token afresh, so revocation and a membership change bite on the next
//! request.

use serde_json::json;

use super::members::{Change, control_change};
use crate::access::enter::TenantHandle;
use crate::access::{Principal, Role, Via};
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::ids::{TokenId, UserId};
use crate::store::SqlTx;
use crate::store::control::Control;
use crate::store::tokens::{self, ApiTokenRow, NewApiToken};
use crate::store::{accounts, control};

pub const PREFIX: &str = "aura_";
/// `last_used_at` is written at most this often.
const TOUCH_EVERY_SECS: i64 = 60;
const MAX_EXPIRY_DAYS: u32 = 3650;

pub struct NewToken {
    pub name: String,
    pub scope: Role,
    pub expires_in_days: Option<u32>,
    /// A service account of this workspace; `None` is the creator's own token.
    pub service_account: Option<String>,
}

pub struct Created {
    pub row: ApiTokenRow,
    /// `aura_...`, returned once and never stored.
    pub secret: String,
}

pub async fn create(control: &Control, ctx: &TenantHandle, req: NewToken) -> Result<Created> {
    let name = super::validate_name("name", &req.name)?;
    if !ctx.role.at_least(req.scope) {
        return Err(Error::field(
            "scope",
            format!("must be no higher than your own role ({})", ctx.role),
        ));
    }
    if let Some(d) = req.expires_in_days
        && !(1..=MAX_EXPIRY_DAYS).contains(&d)
    {
        return Err(Error::field(
            "expires_in_days",
            format!("must be between 1 and {MAX_EXPIRY_DAYS}"),
        ));
    }
    let now = ctx.now();
    let expires_at = bound_lifetime(
        req.expires_in_days
            .map(|d| now.saturating_add(i64::from(d) * 86_400)),
        ctx.grant.until(),
    );
    let ws = ctx.db.id();
    let holder = match &req.service_account {
        None => ctx.user,
        Some(s) => {
            let id: UserId = s
                .parse()
                .map_err(|_| Error::field("service_account", "no such service account here"))?;
            let is_here = control
                .db
                .read_async(move |c| {
                    Ok(accounts::is_service(c, id)?
                        && accounts::membership_role(c, ws, id)?.is_some())
                })
                .await?;
            if !is_here {
                return Err(Error::field(
                    "service_account",
                    "no such service account here",
                ));
            }
            id
        }
    };
    let secret = format!("{PREFIX}{}", random_token());
    let hash = hash_token(&secret);
    let id = TokenId::generate().to_string();
    let row = ApiTokenRow {
        id: id.clone(),
        workspace_id: ws,
        user_id: holder,
        created_by: ctx.user,
        name,
        scope: req.scope,
        created_at: now,
        expires_at,
        last_used_at: None,
        revoked_at: None,
    };
    let keys = control.keys.clone();
    let r = row.clone();
    let change = Change {
        action: "api_token.created",
        target_type: "api_token",
        target_id: id,
        after: json!({
            "holder": holder.to_string(),
            "scope": req.scope.as_str(),
            "expires_at": row.expires_at,
        }),
    };
    control_change(control, ctx, change, move |tx| {
        tokens::insert_api_token(
            tx,
            &keys,
            &NewApiToken {
                id: &r.id,
                hash: &hash,
                workspace_id: r.workspace_id,
                user_id: r.user_id,
                created_by: r.created_by,
                name: &r.name,
                scope: r.scope,
                expires_at: r.expires_at,
            },
            now,
        )
    })
    .await?;
    Ok(Created { row, secret })
}

/// A token made with an expiring token expires no later than it: at the
/// requested time or at the maker's expiry, whichever comes first (never
/// "never"). An expiring credential cannot mint a longer-lived one.
fn bound_lifetime(requested: Option<i64>, maker: Option<i64>) -> Option<i64> {
    match (requested, maker) {
        (Some(r), Some(m)) => Some(r.min(m)),
        (r, None) => r,
        (None, m) => m,
    }
}

pub async fn list(control: &Control, ctx: &TenantHandle) -> Result<Vec<ApiTokenRow>> {
    let keys = control.keys.clone();
    let ws = ctx.db.id();
    control
        .db
        .read_async(move |c| tokens::list_api_tokens(c, &keys, ws))
        .await
}

pub async fn revoke(control: &Control, ctx: &TenantHandle, id: TokenId) -> Result<()> {
    let ws = ctx.db.id();
    // An unknown id is refused by `revoke_api_token` (404) before anything
    // is written.
    let now = ctx.now();
    let tid = id.to_string();
    let change = Change {
        action: "api_token.revoked",
        target_type: "api_token",
        target_id: id.to_string(),
        after: json!({}),
    };
    control_change(control, ctx, change, move |tx| {
        tokens::revoke_api_token(tx, ws, &tid, now)
    })
    .await
}

/// Resolves an `aura_` bearer token to its principal: live, unexpired, its
/// account enabled. Platform rights never travel with a token.
pub async fn authenticate(control: &Control, now: i64, secret: &str) -> Result<Principal> {
    let hash = hash_token(secret);
    let cache = &control.cache;
    let version = cache.version()?;
    let found = match cache.api_token(&hash).filter(|t| t.live_at(now)) {
        Some(hit) => hit,
        None => {
            let lookup = hash.clone();
            let found = control
                .db
                .read_async(move |c| tokens::find_live_api_token(c, &lookup, now))
                .await?
                .ok_or(Error::Unauthenticated)?;
            cache.put_api_token(version, hash, found.clone());
            found
        }
    };
    if found
        .last_used_at
        .is_none_or(|t| now - t >= TOUCH_EVERY_SECS)
    {
        let id = found.id.clone();
        let touched = control
            .db
            .write_async(move |tx| tokens::touch_api_token(tx, &id, now))
            .await;
        super::sessions::skip_touch_on_full_disk(touched)?;
    }
    Ok(Principal {
        user_id: found.user_id,
        platform_admin: false,
        via: Via::ApiToken {
            id: found.id,
            workspace: found.workspace_id,
            scope: found.scope,
            expires_at: found.expires_at,
        },
        impersonating: None,
        control_version: Some(version),
    })
}

/// A personal token that a password reset or disabling the account revoked,
/// as the person (and the operator) are told about it.
#[derive(Clone, Debug)]
pub struct Revoked {
    pub id: String,
    pub name: String,
    pub workspace: String,
    pub scope: Role,
}

/// Revokes the account's own personal API tokens in every workspace, inside
/// the caller's transaction (a password reset, an operator disabling the
/// account): an attacker's tokens die with the account's recovery. Tokens
/// of the workspaces' service accounts stay.
pub fn revoke_personal(
    tx: &dyn SqlTx,
    keys: &control::PlatformKeys,
    user: UserId,
    now: i64,
    why: tokens::Revocation,
) -> Result<Vec<Revoked>> {
    tokens::revoke_personal_tokens(tx, keys, user, now, why)?
        .into_iter()
        .map(|t| {
            let workspace = control::get_workspace(tx, keys, t.workspace_id)?
                .map_or_else(|| t.workspace_id.to_string(), |w| w.name);
            Ok(Revoked {
                id: t.id,
                name: t.name,
                workspace,
                scope: t.scope,
            })
        })
        .collect()
}

/// The account's personal tokens a password reset or disabling the account
/// revoked, newest first: each with when and why (the account page).
pub async fn revoked_personal(
    control: &Control,
    user: UserId,
) -> Result<Vec<(Revoked, i64, tokens::Revocation)>> {
    let keys = control.keys.clone();
    control
        .db
        .read_async(move |c| {
            tokens::revoked_personal_tokens(c, &keys, user)?
                .into_iter()
                .map(|(t, why)| {
                    let workspace = control::get_workspace(c, &keys, t.workspace_id)?
                        .map_or_else(|| t.workspace_id.to_string(), |w| w.name);
                    let when = t.revoked_at.unwrap_or_default();
                    let r = Revoked {
                        id: t.id,
                        name: t.name,
                        workspace,
                        scope: t.scope,
                    };
                    Ok((r, when, why))
                })
                .collect()
        })
        .await
}

/// One line per revoked token, for a mail or the operator's terminal.
pub fn describe_revoked(list: &[Revoked]) -> String {
    if list.is_empty() {
        return "No personal API tokens were live.".into();
    }
    let mut out = String::from("Personal API tokens revoked:\n");
    for t in list {
        out.push_str(&format!(
            "  - {} (workspace {}, scope {})\n",
            t.name, t.workspace, t.scope
        ));
    }
    out
}

/// Display names for token holders (the creator or a service account).
pub async fn holder_names(
    control: &Control,
    ctx: &TenantHandle,
) -> Result<std::collections::HashMap<UserId, String>> {
    let keys = control.keys.clone();
    let ws = ctx.db.id();
    let members = control
        .db
        .read_async(move |c| control::workspace_members(c, &keys, ws))
        .await?;
    Ok(members
        .into_iter()
        .map(|(u, _)| (u.id, u.name.unwrap_or(u.email)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_outlives_no_token_that_made_it() {
        assert_eq!(bound_lifetime(None, None), None);
        assert_eq!(bound_lifetime(Some(10), None), Some(10));
        assert_eq!(bound_lifetime(Some(9), Some(10)), Some(9));
        assert_eq!(bound_lifetime(Some(11), Some(10)), Some(10));
        assert_eq!(bound_lifetime(None, Some(10)), Some(10), "never-expiring");
    }
}
