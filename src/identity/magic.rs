//! Magic-link sign-in, when `auth.magic_links` is on: a single-use link by
//! mail, valid for 15 minutes. Asking for one always gets the same answer, at
//! the same speed (the mail is sent in the background), whether or not the
//! address has an account. Redeeming it stands in for the password only: an
//! account with a second factor still has to give its code.

use rusqlite::{OptionalExtension, params};

use crate::app::AppState;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::ids::UserId;
use crate::mail::Mail;
use crate::store::{audit, control};

const VALID_SECS: i64 = 15 * 60;
const REQUESTS_PER_IP: u32 = 5;
const REQUEST_WINDOW: i64 = 15 * 60;

pub fn enabled(state: &AppState) -> bool {
    state.config.file.auth.magic_links && state.mailer.configured()
}

/// Asks for a link. Answers `Ok` for any address (rate limited per IP).
pub async fn request(state: &AppState, email: &str, meta: &RequestMeta) -> Result<()> {
    if !enabled(state) {
        return Err(Error::NotFound("magic-link sign-in"));
    }
    let email = super::validate_email("email", email)?;
    let now = state.clock.unix();
    let ip = format!("magic:{}", meta.ip.as_deref().unwrap_or("-"));
    if let Some(retry_after_secs) =
        state
            .limits
            .magic
            .retry_after(&ip, now, REQUESTS_PER_IP, REQUEST_WINDOW)
    {
        return Err(Error::RateLimited { retry_after_secs });
    }
    state.limits.magic.record(&ip, now, REQUEST_WINDOW);
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
            tx.execute(
                "INSERT INTO magic_links (hash, user_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
                params![hash, uid.to_string(), now, now + VALID_SECS],
            )?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::Anonymous, "auth.magic_link_sent", &m).target("user", uid),
            )?;
            Ok(())
        })
        .await?;
    let link = format!("{}/magic/{token}", state.config.public_url);
    let mail = Mail {
        to: email,
        subject: "Your Aura sign-in link".into(),
        body: format!(
            "Sign in to Aura: {link}\n\nThe link works once, for 15 minutes. If you did not ask for it, ignore this mail.\n"
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

/// Spends a link and returns its account (`Unauthenticated` when it is
/// unknown, used or expired).
pub async fn redeem(state: &AppState, token: &str, meta: &RequestMeta) -> Result<UserId> {
    let hash = hash_token(token);
    let now = state.clock.unix();
    let keys = state.control.keys.clone();
    let m = meta.clone();
    state
        .control
        .db
        .write_async(move |tx| {
            let user: Option<String> = tx
                .query_row(
                    "UPDATE magic_links SET used_at = ?2
                     WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2
                     RETURNING user_id",
                    params![hash, now],
                    |r| r.get(0),
                )
                .optional()?;
            let user: UserId = user.ok_or(Error::Unauthenticated)?.parse()?;
            let disabled = control::get_user(tx, &keys, user)?.is_none_or(|u| u.disabled);
            if disabled {
                return Err(Error::Unauthenticated);
            }
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(user), "auth.magic_link_used", &m).target("user", user),
            )?;
            Ok(user)
        })
        .await
}
