//! Accounts. Emails and names are sealed in control.db; the email is found again
//! through its blind index.

use crate::access::{Principal, Via};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::UserId;
use crate::store::control::{self, NewUser};
use crate::store::{accounts, audit};

pub const MAX_NAME_LEN: usize = 200;

pub use crate::model::email::validate_email;

pub fn validate_name(field: &str, name: &str) -> Result<String> {
    let n = name.trim();
    if n.is_empty() {
        return Err(Error::field(field, "must not be empty"));
    }
    if n.chars().count() > MAX_NAME_LEN {
        return Err(Error::field(
            field,
            format!("must be at most {MAX_NAME_LEN} characters"),
        ));
    }
    if n.chars().any(char::is_control) {
        return Err(Error::field(field, "must not contain control characters"));
    }
    Ok(n.to_owned())
}

pub struct CreateUser {
    pub email: String,
    pub name: Option<String>,
    pub password: String,
    pub platform_admin: bool,
}

/// Creates an account and its `user.created` entry in the platform chain, in
/// one transaction.
pub async fn create_user(
    deps: &Deps<'_>,
    req: CreateUser,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<UserId> {
    let mut errors = Vec::new();
    let email = validate_email("email", &req.email)
        .map_err(|e| collect(&mut errors, e))
        .ok();
    let name = match req.name.as_deref() {
        Some(n) => validate_name("name", n)
            .map_err(|e| collect(&mut errors, e))
            .ok(),
        None => None,
    };
    if let Err(e) = crate::crypto::password::check_password_policy(&req.password) {
        collect(&mut errors, e);
    }
    let (Some(email), true) = (email, errors.is_empty()) else {
        return Err(Error::Validation(errors));
    };
    let hash = deps.hasher.hash(req.password).await?;
    let id = UserId::generate();
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let meta = meta.clone();
    let platform_admin = req.platform_admin;
    deps.control
        .db
        .write_async(move |tx| {
            control::insert_user(
                tx,
                &keys,
                &NewUser {
                    id,
                    email: &email,
                    name: name.as_deref(),
                    password_hash: Some(&hash),
                    platform_admin,
                },
                now,
            )?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(actor, "user.created", &meta)
                    .target("user", id)
                    .after(serde_json::json!({ "platform_admin": platform_admin })),
            )?;
            Ok(())
        })
        .await?;
    Ok(id)
}

/// Sets a new password (used by the dev bootstrap; self-service password change
/// with session revocation arrives with the identity issue).
pub async fn set_password(
    deps: &Deps<'_>,
    user: UserId,
    password: String,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<()> {
    let hash = deps.hasher.hash(password).await?;
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let meta = meta.clone();
    deps.control
        .db
        .write_async(move |tx| {
            control::set_password_hash(tx, user, &hash, now)?;
            // Every other session ends with a password change.
            control::delete_user_sessions(tx, user)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(actor, "user.password_changed", &meta).target("user", user),
            )?;
            Ok(())
        })
        .await
}

/// A signed-in user changes their own password. The current one is checked
/// under the sign-in limits (re-authentication); afterwards every other
/// browser session and API sign-in of the account has ended.
pub async fn change_password(
    deps: &Deps<'_>,
    who: &Principal,
    current: String,
    new: String,
    meta: &RequestMeta,
) -> Result<()> {
    super::guard::reauthenticate(deps, who, current, "current_password", meta).await?;
    let id = who.user_id;
    let hash = deps
        .hasher
        .hash(new)
        .await
        .map_err(|e| e.for_field("new_password"))?;
    let now = deps.clock.unix();
    let via = who.via.clone();
    super::self_change(deps, id, "user.password_changed", now, meta, move |tx| {
        control::set_password_hash(tx, id, &hash, now)?;
        let (keep_session, keep_family) = match &via {
            Via::Session { hash, .. } => (Some(hash.as_slice()), None),
            Via::Access { family } => (None, Some(family.as_str())),
            Via::ApiToken { .. } => (None, None),
        };
        let keep = accounts::Keep {
            session: keep_session,
            family: keep_family,
        };
        accounts::end_sign_ins(tx, id, keep, now, "password changed")
    })
    .await
}

/// Disables or re-enables an account (operators). Disabling ends every
/// session and API sign-in at once and revokes the account's own personal
/// API tokens (returned), so enabling it again brings none back: tokens an
/// attacker made before stay dead. The workspaces' service-account tokens
/// stay.
pub async fn set_disabled(
    deps: &Deps<'_>,
    user: UserId,
    disabled: bool,
    actor: Actor,
    meta: &RequestMeta,
) -> Result<Vec<super::api_tokens::Revoked>> {
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let meta = meta.clone();
    deps.control
        .db
        .write_async(move |tx| disable_in(tx, &keys, user, disabled, actor, &meta, now))
        .await
}

/// `set_disabled`'s change and its `user.disabled` / `user.enabled` entry
/// (before and after), inside the caller's transaction.
pub(crate) fn disable_in(
    tx: &dyn crate::store::SqlTx,
    keys: &crate::store::control::PlatformKeys,
    user: UserId,
    disabled: bool,
    actor: Actor,
    meta: &RequestMeta,
    now: i64,
) -> Result<Vec<super::api_tokens::Revoked>> {
    let was = accounts::set_disabled(tx, user, disabled, now)?;
    let entry = if disabled {
        accounts::end_sign_ins(tx, user, Default::default(), now, "account disabled")?;
        NewEntry::new(actor, "user.disabled", meta)
    } else {
        NewEntry::new(actor, "user.enabled", meta)
    };
    let revoked = if disabled {
        super::api_tokens::revoke_personal(
            tx,
            keys,
            user,
            now,
            crate::store::tokens::Revocation::AccountDisabled,
        )?
    } else {
        Vec::new()
    };
    let after = if disabled {
        serde_json::json!({
            "disabled": disabled,
            "revoked_tokens": revoked.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
        })
    } else {
        serde_json::json!({ "disabled": disabled })
    };
    let entry = entry
        .target("user", user)
        .before(serde_json::json!({ "disabled": was }))
        .after(after);
    audit::append(tx, &keys.sealer, now, &entry)?;
    Ok(revoked)
}

fn collect(errors: &mut Vec<crate::error::FieldError>, e: Error) {
    if let Error::Validation(mut v) = e {
        errors.append(&mut v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_and_name_rules() {
        assert!(validate_email("email", "ada@example.com").is_ok());
        for bad in [
            "",
            "ada",
            "@x.io",
            "ada@",
            "ada@x",
            "a b@x.io",
            "ada@.io",
            "ada@x.io.",
        ] {
            assert!(validate_email("email", bad).is_err(), "{bad}");
        }
        assert!(validate_name("name", "  ").is_err());
        assert!(validate_name("name", "Ada\u{0}").is_err());
        assert_eq!(validate_name("name", " Ada ").unwrap(), "Ada");
    }
}
