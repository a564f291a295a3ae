//! Links by mail, for two purposes:
//! - magic-link sign-in, when `auth.magic_links` is on: it stands in for the
//!   password only; an account with a second factor still gives its code;
//! - password reset, whenever mail is configured: it sets a new password,
//!   ends every session and API sign-in of the account and revokes its own
//!   personal API tokens (a second factor, if any, stays and is still asked
//!   for at sign-in); a mail then lists what was revoked.
//!
//! A link works once, for 15 minutes. Asking for one always gets the same
//! answer at the same speed, whether or not the address has an account: the
//! request answers after the checks that do not depend on the address (on,
//! valid, the per-IP limit), and everything that does (the lookup, the stored
//! link and its audit entry, the mail) runs in a background task after the
//! answer. Requests are limited per IP.

use std::sync::Arc;

use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::UserId;
use crate::mail::{Mail, Mailer};
use crate::store::control::Control;
use crate::store::{SqlTx, audit, control, links};

const VALID_SECS: i64 = 15 * 60;
const REQUESTS_PER_IP: u32 = 5;
const REQUEST_WINDOW: i64 = 15 * 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    SignIn,
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::SignIn => "sign_in",
            Purpose::PasswordReset => "password_reset",
        }
    }

    fn path(self) -> &'static str {
        match self {
            Purpose::SignIn => "magic",
            Purpose::PasswordReset => "reset",
        }
    }
}

pub fn enabled(deps: &Deps<'_>) -> bool {
    deps.config.file.auth.magic_links && deps.mailer.configured()
}

pub fn reset_enabled(deps: &Deps<'_>) -> bool {
    deps.mailer.configured()
}

/// Asks for a link. Answers `Ok` for any address (rate limited per IP),
/// before any work whose cost depends on the address: that runs in the
/// background (`send_link`), so the answer's timing tells nothing.
pub async fn request(
    deps: &Deps<'_>,
    email: &str,
    purpose: Purpose,
    meta: &RequestMeta,
) -> Result<()> {
    let on = match purpose {
        Purpose::SignIn => enabled(deps),
        Purpose::PasswordReset => reset_enabled(deps),
    };
    if !on {
        return Err(Error::NotFound("this sign-in option"));
    }
    let email = super::validate_email("email", email)?;
    let now = deps.clock.unix();
    let ip = format!(
        "{}:{}",
        purpose.as_str(),
        super::netkey::key(meta.ip.as_deref(), &deps.config.file.limits)
    );
    deps.limits
        .magic
        .hit(&ip, now, REQUESTS_PER_IP, REQUEST_WINDOW)?;
    let control = Arc::clone(deps.control);
    let mailer = Arc::clone(deps.mailer);
    let base = deps.config.public_url.clone();
    let meta = meta.clone();
    tokio::spawn(async move {
        let sent = send_link(&control, &mailer, &base, email, purpose, now, &meta);
        if let Err(e) = sent.await {
            tracing::warn!(error = %e, "sending a link by mail failed");
        }
    });
    Ok(())
}

/// The part of a request that depends on the address: for an account that
/// may have a link, stores its hash with the audit entry, then mails it.
async fn send_link(
    control: &Control,
    mailer: &Mailer,
    public_url: &str,
    email: String,
    purpose: Purpose,
    now: i64,
    meta: &RequestMeta,
) -> Result<()> {
    let keys = control.keys.clone();
    let e = email.clone();
    // A person invited from the platform area has no password yet: a reset
    // link lets them choose it when the invitation's link has run out.
    let user = control
        .db
        .read_async(move |c| {
            let u = control::find_user_by_email(c, &keys, &e)?;
            let service = match &u {
                Some(u) => crate::store::accounts::is_service(c, u.id)?,
                None => true,
            };
            Ok(u.filter(|u| {
                !u.disabled
                    && (u.password_hash.is_some()
                        || (purpose == Purpose::PasswordReset && !service))
            }))
        })
        .await?;
    let Some(user) = user else {
        return Ok(());
    };
    let token = random_token();
    let hash = hash_token(&token);
    let keys = control.keys.clone();
    let m = meta.clone();
    let uid = user.id;
    control
        .db
        .write_async(move |tx| {
            links::insert(tx, &hash, uid, now, now + VALID_SECS, purpose.as_str())?;
            let action = match purpose {
                Purpose::SignIn => "auth.magic_link_sent",
                Purpose::PasswordReset => "auth.password_reset_sent",
            };
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::Anonymous, action, &m).target("user", uid),
            )?;
            Ok(())
        })
        .await?;
    let link = format!("{public_url}/{}/{token}", purpose.path());
    let (subject, what) = match purpose {
        Purpose::SignIn => ("Your Aura sign-in link", "Sign in to Aura"),
        Purpose::PasswordReset => ("Reset your Aura password", "Choose a new password"),
    };
    let mail = Mail {
        to: email,
        subject: subject.into(),
        body: format!(
            "{what}: {link}\n\nThe link works once, for 15 minutes. If you did not ask for it, ignore this mail.\n"
        ),
    };
    mailer.send(mail).await
}

/// Spends a sign-in link and returns its account (`Unauthenticated` when it
/// is unknown, used or expired).
pub async fn redeem(deps: &Deps<'_>, token: &str, meta: &RequestMeta) -> Result<UserId> {
    spend(
        deps,
        token,
        Purpose::SignIn,
        "auth.magic_link_used",
        meta,
        |_, _| Ok(((), None)),
    )
    .await
    .map(|(user, ())| user)
}

/// Whether a reset link is still good (for showing its form).
pub async fn reset_link_live(deps: &Deps<'_>, token: &str) -> Result<bool> {
    let hash = hash_token(token);
    let now = deps.clock.unix();
    deps.control
        .db
        .read_async(move |c| links::live(c, &hash, now, Purpose::PasswordReset.as_str()))
        .await
}

/// Spends a reset link and sets the new password; every session and API
/// sign-in of the account ends, and its own personal API tokens are revoked
/// (service-account tokens stay). A mail then tells the person what was
/// revoked, and the account page lists it.
pub async fn reset_password(
    deps: &Deps<'_>,
    token: &str,
    new_password: String,
    meta: &RequestMeta,
) -> Result<()> {
    let hash = deps
        .hasher
        .hash(new_password)
        .await
        .map_err(|e| e.for_field("new_password"))?;
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let (_, (email, revoked)) = spend(
        deps,
        token,
        Purpose::PasswordReset,
        "user.password_reset",
        meta,
        move |tx, user| {
            // An account invited from the platform area chooses its first
            // password here: no "your password was reset" notice for that.
            let first =
                control::get_user(tx, &keys, user)?.is_some_and(|u| u.password_hash.is_none());
            control::set_password_hash(tx, user, &hash, now)?;
            crate::store::accounts::end_sign_ins(
                tx,
                user,
                Default::default(),
                now,
                "password reset",
            )?;
            let revoked = super::api_tokens::revoke_personal(
                tx,
                &keys,
                user,
                now,
                crate::store::tokens::Revocation::PasswordReset,
            )?;
            let email = control::get_user(tx, &keys, user)?
                .map(|u| u.email)
                .filter(|_| !first);
            let after = serde_json::json!({
                "revoked_tokens": revoked.iter().map(|t| t.id.clone()).collect::<Vec<_>>(),
            });
            Ok(((email, revoked), Some(after)))
        },
    )
    .await?;
    if let Some(to) = email {
        let mail = Mail {
            to,
            subject: "Your Aura password was reset".into(),
            body: format!(
                "Your Aura password was just reset. Every session and sign-in of your account has ended.\n\n{}\nMake new tokens where you still need them. If you did not reset your password, tell your workspace's owner at once.\n",
                super::api_tokens::describe_revoked(&revoked)
            ),
        };
        let st = std::sync::Arc::clone(deps.mailer);
        tokio::spawn(async move {
            if let Err(e) = st.send(mail).await {
                tracing::warn!(error = %e, "sending the password-reset notice failed");
            }
        });
    }
    Ok(())
}

/// Spends a link of `purpose`, runs `then` in the same transaction, and
/// writes `action` for the account (with what `then` says happened).
async fn spend<T: Send + 'static>(
    deps: &Deps<'_>,
    token: &str,
    purpose: Purpose,
    action: &'static str,
    meta: &RequestMeta,
    then: impl FnOnce(&dyn SqlTx, UserId) -> Result<(T, Option<serde_json::Value>)> + Send + 'static,
) -> Result<(UserId, T)> {
    let hash = hash_token(token);
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    deps.control
        .db
        .write_async(move |tx| {
            let user = links::spend(tx, &hash, now, purpose.as_str())?;
            let user: UserId = user.ok_or(Error::Unauthenticated)?.parse()?;
            let disabled = control::get_user(tx, &keys, user)?.is_none_or(|u| u.disabled);
            if disabled {
                return Err(Error::Unauthenticated);
            }
            let (out, after) = then(tx, user)?;
            let mut entry = NewEntry::new(Actor::User(user), action, &m).target("user", user);
            if let Some(after) = after {
                entry = entry.after(after);
            }
            audit::append(tx, &keys.sealer, now, &entry)?;
            Ok((user, out))
        })
        .await
}
