//! Tokens for programs: `/auth/token` trades a password (and TOTP, once
//! enrolled) for a short-lived access JWT and an opaque refresh token;
//! `/auth/refresh` rotates the refresh token. Each sign-in starts a family;
//! presenting an already-rotated refresh token revokes the whole family, and
//! every access JWT names its family, so it dies with it.

use crate::access::{Principal, Via};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::identity::jwt::{AUDIENCE, AccessClaims, ISSUER};
use crate::ids::UserId;
use crate::store::{audit, tokens};

/// What both endpoints answer.
pub struct TokenPair {
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: u64,
}

fn access_token(deps: &Deps<'_>, user: UserId, family: &str, now: i64) -> Result<(String, u64)> {
    let ttl = deps
        .config
        .file
        .auth
        .access_token_minutes
        .saturating_mul(60);
    let claims = AccessClaims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: user.to_string(),
        sid: family.to_owned(),
        iat: now,
        exp: now.saturating_add(ttl as i64),
        jti: uuid::Uuid::new_v4().to_string(),
    };
    Ok((deps.control.jwt.issue(&claims)?, ttl))
}

/// `POST /auth/token`.
pub async fn issue(
    deps: &Deps<'_>,
    email: &str,
    password: String,
    totp: Option<&str>,
    meta: &RequestMeta,
) -> Result<TokenPair> {
    let user = super::guard::check_password(deps, email, password, meta).await?;
    let proof = super::mfa::second_factor(deps, user.id, totp, meta).await?;
    let now = deps.clock.unix();
    let family = uuid::Uuid::new_v4().to_string();
    let days = deps.config.file.auth.refresh_token_days as i64;
    let family_expires = now.saturating_add(days.saturating_mul(86_400));
    let refresh = random_token();
    let refresh_hash = hash_token(&refresh);
    let (access, ttl) = access_token(deps, user.id, &family, now)?;
    let keys = deps.control.keys.clone();
    let meta = meta.clone();
    let uid = user.id;
    let fam = family.clone();
    let from = tokens::Origin {
        ip: meta.ip.clone(),
        device: super::device::label(meta.user_agent.as_deref()),
    };
    deps.control
        .db
        .write_async(move |tx| {
            tokens::insert_family(tx, &fam, uid, now, family_expires, &from)?;
            tokens::insert_refresh(tx, &refresh_hash, &fam, now)?;
            let mut entry =
                NewEntry::new(Actor::User(uid), "auth.token_issued", &meta).target("user", uid);
            if let Some(p) = &proof {
                p.spend(tx, now)?;
                entry = entry.after(serde_json::json!({ "second_factor": p.method() }));
            }
            audit::append(tx, &keys.sealer, now, &entry)?;
            Ok(())
        })
        .await?;
    Ok(TokenPair {
        access_token: access,
        refresh_token: refresh,
        expires_in: ttl,
    })
}

/// `POST /auth/refresh`. A used token revokes its family (someone holds a
/// copy); an unknown, revoked or expired one is a plain 401.
pub async fn refresh(deps: &Deps<'_>, presented: &str, meta: &RequestMeta) -> Result<TokenPair> {
    let hash = hash_token(presented);
    let lookup_hash = hash.clone();
    let found = deps
        .control
        .db
        .read_async(move |c| tokens::find_refresh(c, &lookup_hash))
        .await?;
    let Some(found) = found else {
        return Err(Error::Unauthenticated);
    };
    let now = deps.clock.unix();
    if found.family_revoked || found.user_disabled || now >= found.family_expires_at {
        return Err(Error::Unauthenticated);
    }
    let uid = found.user_id;
    let family = found.family_id.clone();
    let next = random_token();
    let next_hash = hash_token(&next);
    let keys = deps.control.keys.clone();
    let meta = meta.clone();
    let rotated = deps
        .control
        .db
        .write_async(move |tx| {
            if found.used || !tokens::mark_refresh_used(tx, &hash, now)? {
                tokens::revoke_family(tx, &family, now, "refresh token reused")?;
                audit::append(
                    tx,
                    &keys.sealer,
                    now,
                    &NewEntry::new(Actor::User(uid), "auth.refresh_reused", &meta)
                        .target("user", uid),
                )?;
                return Ok(false);
            }
            tokens::insert_refresh(tx, &next_hash, &family, now)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(uid), "auth.token_refreshed", &meta).target("user", uid),
            )?;
            Ok(true)
        })
        .await?;
    if !rotated {
        return Err(Error::Unauthenticated);
    }
    let (access, ttl) = access_token(deps, uid, &found.family_id, now)?;
    Ok(TokenPair {
        access_token: access,
        refresh_token: next,
        expires_in: ttl,
    })
}

/// Resolves an access JWT: signature, header and claims first, then its family
/// and account, checked on every request (through the control.db cache,
/// which any change to control.db empties; expiry against the clock).
pub async fn authenticate_access(deps: &Deps<'_>, token: &str) -> Result<Principal> {
    let now = deps.clock.unix();
    let claims = deps.control.jwt.verify(token, now)?;
    let cache = &deps.control.cache;
    let version = cache.version()?;
    let fam = match cache.family(&claims.sid) {
        Some(hit) => Some(hit),
        None => {
            let sid = claims.sid.clone();
            let found = deps
                .control
                .db
                .read_async(move |c| tokens::family_state(c, &sid))
                .await?;
            if let Some(f) = found.as_ref().filter(|f| f.live_at(now)) {
                cache.put_family(version, claims.sid.clone(), f.clone());
            }
            found
        }
    };
    match fam {
        Some(f) if f.live_at(now) && f.user_id.to_string() == claims.sub => Ok(Principal {
            user_id: f.user_id,
            platform_admin: f.platform_admin,
            via: Via::Access { family: claims.sid },
            impersonating: None,
            control_version: Some(version),
        }),
        _ => Err(Error::Unauthenticated),
    }
}
