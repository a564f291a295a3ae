//! `aura_` API tokens. The secret is shown once; control.db keeps its SHA-256,
//! a sealed name, the workspace it is for, its scope (the most it may do, no
//! more than its creator's role), an expiry (no later than the token's that
//! made it, when a token made it) and the last use. Each request checks the
//! token afresh, so revocation and a membership change bite on the next
//! request.

use serde_json::json;

use super::members::{Change, control_change};
use crate::access::enter::TenantCtx;
use crate::access::{Principal, Role, Via};
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::ids::UserId;
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

pub async fn create(
    state: &AppState,
    ctx: &TenantCtx,
    req: NewToken,
    meta: &RequestMeta,
) -> Result<Created> {
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
    let now = state.clock.unix();
    let expires_at = req
        .expires_in_days
        .map(|d| now.saturating_add(i64::from(d) * 86_400));
    check_lifetime(expires_at, ctx.grant.until())?;
    let ws = ctx.db.id();
    let holder = match &req.service_account {
        None => ctx.user,
        Some(s) => {
            let id: UserId = s
                .parse()
                .map_err(|_| Error::field("service_account", "no such service account here"))?;
            let is_here = state
                .control
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
    let id = uuid::Uuid::now_v7().to_string();
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
    let keys = state.control.keys.clone();
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
    control_change(state, ctx, meta, change, move |tx| {
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

/// A token made with an expiring token expires no later than it: an
/// expiring credential never mints a longer-lived one.
fn check_lifetime(requested: Option<i64>, creator: Option<i64>) -> Result<()> {
    match (requested, creator) {
        (_, None) => Ok(()),
        (Some(r), Some(c)) if r <= c => Ok(()),
        (_, Some(c)) => Err(Error::field(
            "expires_in_days",
            format!(
                "must end no later than the token making it (it expires {}); a token cannot outlive the token that made it",
                crate::clock::rfc3339(c)
            ),
        )),
    }
}

pub async fn list(state: &AppState, ctx: &TenantCtx) -> Result<Vec<ApiTokenRow>> {
    let keys = state.control.keys.clone();
    let ws = ctx.db.id();
    state
        .control
        .db
        .read_async(move |c| tokens::list_api_tokens(c, &keys, ws))
        .await
}

pub async fn revoke(state: &AppState, ctx: &TenantCtx, id: &str, meta: &RequestMeta) -> Result<()> {
    let ws = ctx.db.id();
    // An unknown id is refused by `revoke_api_token` (404) before anything
    // is written.
    let now = state.clock.unix();
    let tid = id.to_owned();
    let change = Change {
        action: "api_token.revoked",
        target_type: "api_token",
        target_id: id.to_owned(),
        after: json!({}),
    };
    control_change(state, ctx, meta, change, move |tx| {
        tokens::revoke_api_token(tx, ws, &tid, now)
    })
    .await
}

/// Resolves an `aura_` bearer token to its principal: live, unexpired, its
/// account enabled. Platform rights never travel with a token.
pub async fn authenticate(state: &AppState, secret: &str) -> Result<Principal> {
    let hash = hash_token(secret);
    let now = state.clock.unix();
    let cache = &state.control.cache;
    let version = cache.version()?;
    let found = match cache.api_token(version, &hash).filter(|t| t.live_at(now)) {
        Some(hit) => hit,
        None => {
            let lookup = hash.clone();
            let found = state
                .control
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
        state
            .control
            .db
            .write_async(move |tx| tokens::touch_api_token(tx, &id, now))
            .await?;
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

/// Display names for token holders (the creator or a service account).
pub async fn holder_names(
    state: &AppState,
    ctx: &TenantCtx,
) -> Result<std::collections::HashMap<UserId, String>> {
    let keys = state.control.keys.clone();
    let ws = ctx.db.id();
    let members = state
        .control
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
        assert!(check_lifetime(None, None).is_ok());
        assert!(check_lifetime(Some(10), None).is_ok());
        assert!(check_lifetime(Some(10), Some(10)).is_ok());
        assert!(check_lifetime(Some(11), Some(10)).is_err());
        assert!(check_lifetime(None, Some(10)).is_err(), "never-expiring");
    }
}
