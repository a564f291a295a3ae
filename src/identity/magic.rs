//! Links by mail, for two purposes:
//! - magic-link sign-in, when `auth.magic_links` is on: it stands in for the
//!   password only; an account with a second factor still gives its code;
//! - password reset, whenever mail is configured: it sets a new password and
//!   ends every session and API sign-in of the account (a second factor, if
//!   any, stays and is still asked for at sign-in).
//!
//! A link works once, for 15 minutes. Asking for one always gets the same
//! answer at the same speed (the mail goes out in the background), whether
//! or not the address has an account; requests are limited per IP.

use crate::app::AppState;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::mail::Mail;
use crate::store::{audit, control, links};

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

pub fn enabled(state: &AppState) -> bool {
    state.config.file.auth.magic_links && state.mailer.configured()
}

pub fn reset_enabled(state: &AppState) -> bool {
    state.mailer.configured()
}

/// Asks for a link. Answers `Ok` for any address (rate limited per IP).
pub async fn request(
    state: &AppState,
    email: &str,
    purpose: Purpose,
    meta: &RequestMeta,
) -> Result<()> {
    let on = match purpose {
        Purpose::SignIn => enabled(state),
        Purpose::PasswordReset => reset_enabled(state),
    };
    if !on {
        return Err(Error::NotFound("this sign-in option"));
    }
    let email = super::validate_email("email", email)?;
    let now = state.clock.unix();
    let ip = format!(
        "{}:{}",
        purpose.as_str(),
        super::netkey::key(meta.ip.as_deref(), &state.config.file.limits)
    );
    state
        .limits
        .magic
        .hit(&ip, now, REQUESTS_PER_IP, REQUEST_WINDOW)?;
    let keys = state.control.keys.clone();
    let e = email.clone();
    let user = state
        .control
        .db
        .read_async(move |c| control::find_user_by_email(c, &keys, &e))
        .await?
        .filter(|u| !u.disabled && u.password_hash.is_some());
    let Some(user) = user else {
        return Ok(());
    };
    let token = random_token();
    let hash = hash_token(&token);
    let keys = state.control.keys.clone();
    let m = meta.clone();
    let uid = user.id;
    state
        .control
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
    let link = format!("{}/{}/{token}", state.config.public_url, purpose.path());
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
    // In the background, so a known address answers as fast as an unknown one.
    let st = std::sync::Arc::clone(&state.mailer);
    tokio::spawn(async move {
        if let Err(e) = st.send(mail).await {
            tracing::warn!(error = %e, "sending a sign-in link failed");
        }
    });
    Ok(())
}

/// Spends a sign-in link and returns its account (`Unauthenticated` when it
/// is unknown, used or expired).
pub async fn redeem(state: &AppState, token: &str, meta: &RequestMeta) -> Result<UserId> {
    spend(
        state,
        token,
        Purpose::SignIn,
        "auth.magic_link_used",
        meta,
        |_, _| Ok(()),
    )
    .await
}

/// Whether a reset link is still good (for showing its form).
pub async fn reset_link_live(state: &AppState, token: &str) -> Result<bool> {
    let hash = hash_token(token);
    let now = state.clock.unix();
    state
        .control
        .db
        .read_async(move |c| links::live(c, &hash, now, Purpose::PasswordReset.as_str()))
        .await
}

/// Spends a reset link and sets the new password; every session and API
/// sign-in of the account ends.
pub async fn reset_password(
    state: &AppState,
    token: &str,
    new_password: String,
    meta: &RequestMeta,
) -> Result<()> {
    let hash = state
        .hasher
        .hash(new_password)
        .await
        .map_err(|e| e.for_field("new_password"))?;
    let now = state.clock.unix();
    spend(
        state,
        token,
        Purpose::PasswordReset,
        "user.password_reset",
        meta,
        move |tx, user| {
            control::set_password_hash(tx, user, &hash, now)?;
            crate::store::accounts::end_sign_ins(
                tx,
                user,
                Default::default(),
                now,
                "password reset",
            )?;
            Ok(())
        },
    )
    .await
    .map(|_| ())
}

/// Spends a link of `purpose`, runs `then` in the same transaction, and
/// writes `action` for the account.
async fn spend(
    state: &AppState,
    token: &str,
    purpose: Purpose,
    action: &'static str,
    meta: &RequestMeta,
    then: impl FnOnce(&rusqlite::Transaction<'_>, UserId) -> Result<()> + Send + 'static,
) -> Result<UserId> {
    let hash = hash_token(token);
    let now = state.clock.unix();
    let keys = state.control.keys.clone();
    let m = meta.clone();
    state
        .control
        .db
        .write_async(move |tx| {
            let user = links::spend(tx, &hash, now, purpose.as_str())?;
            let user: UserId = user.ok_or(Error::Unauthenticated)?.parse()?;
            let disabled = control::get_user(tx, &keys, user)?.is_none_or(|u| u.disabled);
            if disabled {
                return Err(Error::Unauthenticated);
            }
            then(tx, user)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(user), action, &m).target("user", user),
            )?;
            Ok(user)
        })
        .await
}
