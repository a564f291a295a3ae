//! Accounts as platform admins manage them in the platform area (`/platform
//! /accounts` and `/api/v1/platform/accounts`): the list; a new account
//! invited by mail, where the person chooses their own password through a
//! single-use link (staff never type or see one); disabling and enabling;
//! platform rights. Every change and its platform-chain entry (with before
//! and after) are one control.db transaction. Two guards, checked inside it:
//! no one disables their own account here, and the last enabled platform
//! admin keeps both the account and the rights (a field error, not a
//! lock-out).

use crate::access::Principal;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::{hash_token, random_token};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::UserId;
use crate::mail::Mail;
use crate::store::accounts::{self, Overview};
use crate::store::control::{self, NewUser};
use crate::store::{audit, links};

/// How long an invitation's link works (once).
pub const INVITE_VALID_SECS: i64 = 7 * 24 * 3600;

/// Every person's account, oldest first.
pub async fn list(deps: &Deps<'_>) -> Result<Vec<Overview>> {
    let keys = deps.control.keys.clone();
    deps.control
        .db
        .read_async(move |c| accounts::people(c, &keys))
        .await
}

pub struct Invite {
    pub email: String,
    pub name: String,
    pub platform_admin: bool,
}

pub struct Invited {
    pub id: UserId,
    /// False when the mail server refused the mail (the account exists; the
    /// person can be sent a password-reset link later).
    pub mailed: bool,
}

/// Creates an account without a password and mails its owner a single-use
/// link (the password-reset page, valid for `INVITE_VALID_SECS`) to choose
/// one. Needs mail: without it the account is made with `aura user create`.
pub async fn invite(
    deps: &Deps<'_>,
    by: &Principal,
    req: Invite,
    meta: &RequestMeta,
) -> Result<Invited> {
    let mut errors = Vec::new();
    let email = super::validate_email("email", &req.email)
        .map_err(|e| collect(&mut errors, e))
        .ok();
    let name = super::validate_name("name", &req.name)
        .map_err(|e| collect(&mut errors, e))
        .ok();
    if !deps.mailer.configured() {
        errors.push(crate::error::FieldError {
            field: "email".into(),
            message: "mail is not set up on this appliance (`[mail]` in the config), so no \
                      invitation can be sent; create the account with `aura user create`"
                .into(),
        });
    }
    let (Some(email), Some(name), true) = (email, name, errors.is_empty()) else {
        return Err(Error::Validation(errors));
    };
    let id = UserId::generate();
    let now = deps.clock.unix();
    let token = random_token();
    let hash = hash_token(&token);
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let actor = Actor::User(by.user_id);
    let platform_admin = req.platform_admin;
    let (e, n) = (email.clone(), name.clone());
    deps.control
        .db
        .write_async(move |tx| {
            // An address that has an account already: a conflict (409),
            // not invalid input; checked in the same write transaction.
            if control::find_user_by_email(tx, &keys, &e)?.is_some() {
                return Err(Error::Conflict(
                    "an account with this email already exists".into(),
                ));
            }
            control::insert_user(
                tx,
                &keys,
                &NewUser {
                    id,
                    email: &e,
                    name: Some(&n),
                    password_hash: None,
                    platform_admin,
                },
                now,
            )?;
            links::insert(
                tx,
                &hash,
                id,
                now,
                now + INVITE_VALID_SECS,
                "password_reset",
            )?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(actor, "user.invited", &m)
                    .target("user", id)
                    .before(serde_json::Value::Null)
                    .after(serde_json::json!({
                        "platform_admin": platform_admin,
                        "disabled": false,
                        "invited": true,
                    })),
            )?;
            Ok(())
        })
        .await?;
    let base = &deps.config.public_url;
    let mail = Mail {
        to: email,
        subject: "Your Aura account".into(),
        body: format!(
            "Hello {name},\n\nan account on Aura ({base}) was made for you. Choose your password here to start: {base}/reset/{token}\n\nThe link works once, for 7 days. If you did not expect this mail, ignore it: nothing happens without the link.\n"
        ),
    };
    let mailed = match deps.mailer.send(mail).await {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!(error = %e, "sending an account invitation failed");
            false
        }
    };
    Ok(Invited { id, mailed })
}

/// Disables (every sign-in ends, personal API tokens are revoked) or
/// enables an account. Refused for the caller's own account and for the
/// last enabled platform admin.
pub async fn set_disabled(
    deps: &Deps<'_>,
    by: &Principal,
    user: UserId,
    disabled: bool,
    meta: &RequestMeta,
) -> Result<()> {
    if disabled && user == by.user_id {
        return Err(Error::field(
            "user",
            "you cannot disable your own account; another platform admin can",
        ));
    }
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let actor = Actor::User(by.user_id);
    deps.control
        .db
        .write_async(move |tx| {
            person(tx, &keys, user)?;
            if disabled && accounts::other_enabled_admins(tx, user)? == 0 {
                return Err(Error::field(
                    "user",
                    "this is the last enabled platform admin; make another account platform admin first",
                ));
            }
            super::users::disable_in(tx, &keys, user, disabled, actor, &m, now).map(|_| ())
        })
        .await
}

/// Gives or takes platform rights. The last enabled platform admin keeps
/// them.
pub async fn set_platform_admin(
    deps: &Deps<'_>,
    by: &Principal,
    user: UserId,
    admin: bool,
    meta: &RequestMeta,
) -> Result<()> {
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    let actor = Actor::User(by.user_id);
    deps.control
        .db
        .write_async(move |tx| {
            person(tx, &keys, user)?;
            if !admin && accounts::other_enabled_admins(tx, user)? == 0 {
                return Err(Error::field(
                    "platform_admin",
                    "this is the last enabled platform admin; make another account platform admin first",
                ));
            }
            let was = accounts::set_platform_admin(tx, user, admin, now)?;
            audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(actor, "user.platform_admin_changed", &m)
                    .target("user", user)
                    .before(serde_json::json!({ "platform_admin": was }))
                    .after(serde_json::json!({ "platform_admin": admin })),
            )?;
            Ok(())
        })
        .await
}

/// The account, if it is a person's (a workspace's service account is
/// managed in its workspace): else 404.
fn person(
    tx: &dyn crate::store::SqlTx,
    keys: &control::PlatformKeys,
    user: UserId,
) -> Result<control::UserRow> {
    let row = control::get_user(tx, keys, user)?.ok_or(Error::NotFound("user"))?;
    if accounts::is_service(tx, user)? {
        return Err(Error::NotFound("user"));
    }
    Ok(row)
}

fn collect(errors: &mut Vec<crate::error::FieldError>, e: Error) {
    if let Error::Validation(mut v) = e {
        errors.append(&mut v);
    }
}
