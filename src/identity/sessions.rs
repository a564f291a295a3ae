//! Browser sessions. The token goes to the browser once, in a cookie; control.db
//! keeps only its SHA-256, with idle and absolute expiry.

use crate::access::{Principal, SsoMark, Via};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::UserId;
use crate::store::audit;
use crate::store::control::{self, SessionRow};
use crate::store::tokens;

/// `last_seen_at` is written at most this often, so reads stay reads.
const TOUCH_EVERY_SECS: i64 = 60;

pub struct LoggedIn {
    pub token: String,
    pub user_id: UserId,
}

/// API sign-in: the password and, when the account has a second factor, its
/// code in the same request. Opens a new session, always with a fresh id.
pub async fn login(
    deps: &Deps<'_>,
    email: &str,
    password: String,
    totp: Option<&str>,
    meta: &RequestMeta,
) -> Result<LoggedIn> {
    let u = super::guard::check_password(deps, email, password, meta).await?;
    let proof = super::mfa::second_factor(deps, u.id, totp, meta).await?;
    open_session(deps, u.id, proof, None, meta).await
}

/// Where a browser sign-in stands after the password.
pub enum FirstStep {
    Done(LoggedIn),
    /// The account has a second factor: ask for the code, carrying this
    /// one-time token to `login_with_code`.
    NeedsCode(String),
}

pub async fn login_browser(
    deps: &Deps<'_>,
    email: &str,
    password: String,
    meta: &RequestMeta,
) -> Result<FirstStep> {
    let u = super::guard::check_password(deps, email, password, meta).await?;
    after_first_factor(deps, u.id, meta).await
}

/// After a password or a magic link: the session, or the code step when the
/// account has a second factor.
pub async fn after_first_factor(
    deps: &Deps<'_>,
    user: UserId,
    meta: &RequestMeta,
) -> Result<FirstStep> {
    match super::mfa::second_factor(deps, user, None, meta).await {
        Ok(proof) => Ok(FirstStep::Done(
            open_session(deps, user, proof, None, meta).await?,
        )),
        Err(Error::MfaRequired) => {
            let now = deps.clock.unix();
            Ok(FirstStep::NeedsCode(
                deps.limits.mfa_pending.start(user, now),
            ))
        }
        Err(e) => Err(e),
    }
}

/// The second step of a browser sign-in.
pub async fn login_with_code(
    deps: &Deps<'_>,
    pending: &str,
    code: &str,
    meta: &RequestMeta,
) -> Result<LoggedIn> {
    let now = deps.clock.unix();
    let (user, sso) = deps
        .limits
        .mfa_pending
        .peek_sso(pending, now)
        .ok_or(Error::Unauthenticated)?;
    let proof = super::mfa::check_code(deps, user, code, meta).await?;
    deps.limits.mfa_pending.finish(pending);
    let keys = deps.control.keys.clone();
    let row = deps
        .control
        .db
        .read_async(move |c| control::get_user(c, &keys, user))
        .await?;
    if row.is_none_or(|u| u.disabled) {
        return Err(Error::Unauthenticated);
    }
    open_session(deps, user, Some(proof), sso, meta).await
}

/// Opens a session after a sign-in that needs nothing more: an account that
/// just came to be (an accepted invitation), or a verified passkey.
pub async fn sign_in_new(deps: &Deps<'_>, user: UserId, meta: &RequestMeta) -> Result<LoggedIn> {
    open_session(deps, user, None, None, meta).await
}

/// A verified passkey's session; after a provider's sign-in (the passkey
/// as Aura's second factor) it keeps the SSO mark.
pub async fn sign_in_marked(
    deps: &Deps<'_>,
    user: UserId,
    mark: Option<SsoMark>,
    meta: &RequestMeta,
) -> Result<LoggedIn> {
    open_session(deps, user, None, mark, meta).await
}

/// After a workspace's provider vouched for the person: the session (its
/// mark says through which workspace, and whether the provider's second
/// factor counts there), or Aura's own code step when the account has a
/// second factor.
pub async fn after_sso(
    deps: &Deps<'_>,
    user: UserId,
    mark: Option<SsoMark>,
    meta: &RequestMeta,
) -> Result<FirstStep> {
    // The account's own second factor is asked for whatever the provider
    // says: any workspace's admin names a provider, and an account may be
    // in several workspaces. A provider's second factor only satisfies the
    // workspace's policy for people without one (the mark's `mfa`).
    match super::mfa::second_factor(deps, user, None, meta).await {
        Ok(proof) => Ok(FirstStep::Done(
            open_session(deps, user, proof, mark, meta).await?,
        )),
        Err(Error::MfaRequired) => {
            let now = deps.clock.unix();
            Ok(FirstStep::NeedsCode(
                deps.limits.mfa_pending.start_sso(user, mark, now),
            ))
        }
        Err(e) => Err(e),
    }
}

/// Opens the session; a second-factor proof is spent in the same
/// transaction, and the entry says which factor was used.
async fn open_session(
    deps: &Deps<'_>,
    user_id: UserId,
    proof: Option<super::mfa::Proof>,
    sso: Option<SsoMark>,
    meta: &RequestMeta,
) -> Result<LoggedIn> {
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let meta_owned = meta.clone();
    let token = random_token();
    let auth = &deps.config.file.auth;
    let idle = (auth.session_idle_minutes as i64).saturating_mul(60);
    let absolute = (auth.session_absolute_hours as i64).saturating_mul(3600);
    let row = SessionRow {
        id_hash: hash_token(&token),
        user_id,
        created_at: now,
        last_seen_at: now,
        idle_expires_at: now.saturating_add(idle.min(absolute)),
        absolute_expires_at: now.saturating_add(absolute),
        ip: meta.ip.clone(),
        device: super::device::label(meta.user_agent.as_deref()),
        sso,
    };
    deps.control
        .db
        .write_async(move |tx| {
            control::insert_session(tx, &row)?;
            let mut entry = NewEntry::new(Actor::User(user_id), "auth.login", &meta_owned)
                .target("user", user_id);
            if let Some(p) = &proof {
                p.spend(tx, now)?;
                entry = entry.after(serde_json::json!({ "second_factor": p.method() }));
            }
            if let Some(m) = sso {
                let factor = match (&proof, m.mfa) {
                    (Some(p), _) => Some(p.method()),
                    (None, true) => Some("provider"),
                    (None, false) => None,
                };
                entry = entry.after(serde_json::json!({
                    "method": "sso", "workspace": m.workspace.to_string(), "second_factor": factor,
                }));
            }
            audit::append(tx, &keys.sealer, now, &entry)?;
            Ok(())
        })
        .await?;
    Ok(LoggedIn { token, user_id })
}

/// Resolves a session token to its principal, enforcing both timeouts and the
/// account's state on every request. The lookup is cached while control.db
/// is unchanged (`store::cache`), so any change to the session, the account
/// or anything else there applies on the next request; the timeouts are
/// compared with the clock here every time. Platform staff are never served
/// from the cache: their impersonation has its own expiry.
pub async fn authenticate(deps: &Deps<'_>, token: &str) -> Result<Principal> {
    let id_hash = hash_token(token);
    let now = deps.clock.unix();
    let cache = &deps.control.cache;
    let version = cache.version()?;
    let found = match cache.session(&id_hash) {
        Some(hit) => Some((hit, None)),
        None => {
            let lookup = id_hash.clone();
            let keys = deps.control.keys.clone();
            // One read: the session, and for platform staff (only they can
            // impersonate) their live impersonation.
            let found = deps
                .control
                .db
                .read_async(move |c| {
                    let Some(found) = control::find_session(c, &lookup)? else {
                        return Ok(None);
                    };
                    let impersonating = if found.platform_admin {
                        crate::store::platform::active_for_session(c, &keys, &lookup, now)?
                    } else {
                        None
                    };
                    Ok(Some((found, impersonating)))
                })
                .await?;
            if let Some((f, _)) = found.as_ref().filter(|(f, _)| !f.platform_admin) {
                cache.put_session(version, id_hash.clone(), f.clone());
            }
            found
        }
    };
    let Some((found, impersonating)) = found else {
        return Err(Error::Unauthenticated);
    };
    let row = found.session;
    if found.user_disabled || now >= row.idle_expires_at || now >= row.absolute_expires_at {
        let h = id_hash.clone();
        deps.control
            .db
            .write_async(move |tx| control::delete_session(tx, &h).map(|_| ()))
            .await?;
        return Err(Error::Unauthenticated);
    }
    if now - row.last_seen_at >= TOUCH_EVERY_SECS {
        let idle = (deps.config.file.auth.session_idle_minutes as i64).saturating_mul(60);
        let h = id_hash.clone();
        let touched = deps
            .control
            .db
            .write_async(move |tx| control::touch_session(tx, &h, now, now.saturating_add(idle)))
            .await;
        skip_touch_on_full_disk(touched)?;
    }
    Ok(Principal {
        user_id: row.user_id,
        // A session a workspace's provider opened never carries platform
        // rights: that provider is a workspace admin's choice.
        platform_admin: found.platform_admin && row.sso.is_none(),
        via: Via::Session {
            hash: id_hash,
            sso: row.sso,
        },
        impersonating,
        control_version: Some(version),
    })
}

/// Ends what the caller signed in with, server-side: the browser session, or
/// the whole refresh-token family of an access JWT. An API token is revoked
/// through its own route, not by logging out.
pub async fn logout(deps: &Deps<'_>, who: &Principal, meta: &RequestMeta) -> Result<()> {
    let now = deps.clock.unix();
    let via = who.via.clone();
    super::self_change(deps, who.user_id, "auth.logout", now, meta, move |tx| {
        match &via {
            Via::Session { hash, .. } => {
                control::delete_session(tx, hash)?;
            }
            Via::Access { family } => {
                tokens::revoke_family(tx, family, now, "logout")?;
            }
            Via::ApiToken { .. } => {
                return Err(Error::Usage(
                    "an API token does not log out; revoke it instead".into(),
                ));
            }
        }
        Ok(())
    })
    .await
}

/// A "last seen" touch is bookkeeping on a read: on a full disk the request
/// goes on without it (the session's idle timer is just not extended), so
/// reads keep working while writes answer 507.
pub(crate) fn skip_touch_on_full_disk(touched: Result<()>) -> Result<()> {
    match touched {
        Err(e) if e.is_disk_full() => {
            tracing::warn!(error = %e, "disk full: last-seen time not updated");
            Ok(())
        }
        other => other,
    }
}
