//! Whose account a provider's identity is. The identity (issuer + subject)
//! finds a linked account; never the email alone: an account with the same
//! email is linked only after it proves itself (its password, or a link
//! mailed to it and opened in the same browser). With no account, one is
//! made when the workspace provisions people. Then the membership, the
//! role and team mappings, and the session.

use serde_json::json;

use super::Sso;
use super::flow::{Claims, Outcome, Realm, Refusal};
use super::settings::Settings;
use crate::access::{Role, SsoMark};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::random_token;
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::identity::sessions::{self, FirstStep};
use crate::ids::{UserId, WorkspaceId};
use crate::store::control::{self, NewUser};
use crate::store::{accounts, sso as store};

/// A first sign-in waiting for the existing account to prove itself.
pub(super) struct Link {
    user: UserId,
    realm: Realm,
    settings: Settings,
    claims: Claims,
    binding: [u8; 32],
    next: Option<String>,
}

fn domain_ok(settings: &Settings, email: &str) -> bool {
    let domain = email.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase());
    settings.allowed_domains.is_empty()
        || domain.is_some_and(|d| settings.allowed_domains.contains(&d))
}

/// The email the provider vouches for: present, in an allowed domain, and
/// verified (an email the provider does not call verified counts only where
/// the domains are listed, so the operator or workspace vouches for them).
fn email_of(settings: &Settings, claims: &Claims) -> std::result::Result<String, Refusal> {
    let email = claims.email.clone().map(|e| e.trim().to_ascii_lowercase());
    let Some(email) = email.filter(|e| e.contains('@') && e.len() <= 320) else {
        return Err(Refusal::NoEmail);
    };
    if !domain_ok(settings, &email) {
        return Err(Refusal::Domain);
    }
    if claims.email_verified == Some(false)
        || (claims.email_verified.is_none() && settings.allowed_domains.is_empty())
    {
        return Err(Refusal::UnverifiedEmail);
    }
    Ok(email)
}

/// Signs in the person the provider vouched for, in `ws`.
#[allow(clippy::too_many_arguments)]
pub(super) async fn sign_in(
    deps: &Deps<'_>,
    sso: &Sso,
    ws: WorkspaceId,
    settings: &Settings,
    claims: Claims,
    binding: [u8; 32],
    next: Option<String>,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let email = match email_of(settings, &claims) {
        Ok(e) => e,
        Err(r) => return Ok(Outcome::Refused(r)),
    };
    let keys = deps.control.keys.clone();
    let (iss, sub, e2) = (claims.issuer.clone(), claims.subject.clone(), email.clone());
    let (linked, by_email, active, by_scim) = deps
        .control
        .db
        .read_async(move |c| {
            let linked = match store::linked_user(c, &keys, &iss, &sub)? {
                Some(u) => control::get_user(c, &keys, u)?,
                None => None,
            };
            let by_email = control::find_user_by_email(c, &keys, &e2)?;
            // This workspace's own provider made the account through SCIM
            // and it has no password: the same provider vouches for it.
            let by_scim = match &by_email {
                Some(u) if u.password_hash.is_none() => {
                    crate::store::scim::scim_provisioned(c, ws, u.id)?
                }
                _ => false,
            };
            Ok((linked, by_email, store::workspace_active(c, ws)?, by_scim))
        })
        .await?;
    if !active {
        return Ok(Outcome::Refused(Refusal::NotProvisioned));
    }
    let user = match (linked, by_email) {
        (Some(u), _) => u,
        (None, Some(existing)) if by_scim && !existing.disabled => {
            let link = Link {
                user: existing.id,
                realm: Realm::Workspace(ws),
                settings: settings.clone(),
                claims,
                binding,
                next,
            };
            return link_now(deps, link, "scim", meta).await;
        }
        (None, Some(existing)) => {
            if existing.disabled {
                return Ok(Outcome::Refused(Refusal::Disabled));
            }
            let token = random_token();
            let now = deps.clock.unix();
            let expires = now + (deps.config.file.sso.flow_minutes as i64) * 60;
            let link = Link {
                user: existing.id,
                realm: Realm::Workspace(ws),
                settings: settings.clone(),
                claims,
                binding,
                next,
            };
            sso.links.put(&token, link, expires, now);
            return Ok(Outcome::NeedsLink { token, email });
        }
        (None, None) if settings.provisioning => {
            let u = provision_account(deps, ws, &claims, &email, meta).await?;
            return finish_user(deps, ws, settings, &claims, u, next, meta).await;
        }
        (None, None) => return Ok(Outcome::Refused(Refusal::NotProvisioned)),
    };
    if user.disabled {
        return Ok(Outcome::Refused(Refusal::Disabled));
    }
    finish_user(deps, ws, settings, &claims, user.id, next, meta).await
}

/// Makes the account of a person the provider brings in, linked to its
/// identity, in one transaction with its platform entry.
async fn provision_account(
    deps: &Deps<'_>,
    ws: WorkspaceId,
    claims: &Claims,
    email: &str,
    meta: &RequestMeta,
) -> Result<UserId> {
    let now = deps.clock.unix();
    let id = UserId::generate();
    let keys = deps.control.keys.clone();
    let (iss, sub, email) = (
        claims.issuer.clone(),
        claims.subject.clone(),
        email.to_owned(),
    );
    let name = claims
        .name
        .clone()
        .map(|n| n.chars().take(200).collect::<String>());
    let m = meta.clone();
    deps.control
        .db
        .write_async(move |tx| {
            let new = NewUser {
                id,
                email: &email,
                name: name.as_deref(),
                password_hash: None,
                platform_admin: false,
            };
            control::insert_user(tx, &keys, &new, now)?;
            store::link(tx, &keys, id, Some(ws), &iss, &sub, now)?;
            let e = NewEntry::new(Actor::User(id), "sso.linked", &m)
                .target("user", id)
                .after(json!({ "issuer": iss, "subject": sub, "workspace": ws.to_string(), "new_account": true }));
            crate::store::audit::append(tx, &keys.sealer, now, &e).map(|_| ())
        })
        .await?;
    Ok(id)
}

/// The membership (made when the workspace provisions people), the
/// mappings, the audit entry and the session.
async fn finish_user(
    deps: &Deps<'_>,
    ws: WorkspaceId,
    settings: &Settings,
    claims: &Claims,
    user: UserId,
    next: Option<String>,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let now = deps.clock.unix();
    let role = deps
        .control
        .db
        .read_async(move |c| accounts::membership_role(c, ws, user))
        .await?;
    if role.is_none() {
        // Whom the provider deactivated through SCIM stays out until SCIM
        // brings them back.
        let gone = deps
            .control
            .db
            .read_async(move |c| crate::store::scim::scim_deactivated(c, ws, user))
            .await?;
        if !settings.provisioning || gone {
            return Ok(Outcome::Refused(Refusal::NotProvisioned));
        }
        let role =
            super::mapping::mapped_role(settings, &claims.groups).unwrap_or(settings.default_role);
        let keys = deps.control.keys.clone();
        let (m, iss, sub) = (meta.clone(), claims.issuer.clone(), claims.subject.clone());
        let detail = json!({ "role": role.as_str(), "issuer": iss, "subject": sub, "workspace": ws.to_string() });
        let d2 = detail.clone();
        deps.control
            .db
            .write_async(move |tx| {
                if accounts::membership_role(tx, ws, user)?.is_none() {
                    control::insert_membership(tx, ws, user, role, now)?;
                }
                let e = NewEntry::new(Actor::User(user), "sso.provisioned", &m)
                    .target("user", user)
                    .after(d2);
                crate::store::audit::append(tx, &keys.sealer, now, &e).map(|_| ())
            })
            .await?;
        super::in_workspace(deps, ws, Some(user), "sso.provisioned", detail, meta).await?;
    }
    super::mapping::apply(deps, ws, settings, claims, user, meta).await?;
    let keys = deps.control.keys.clone();
    let (iss, sub) = (claims.issuer.clone(), claims.subject.clone());
    deps.control
        .db
        .write_async(move |tx| store::touch(tx, &keys, &iss, &sub, now))
        .await?;
    let mfa = super::provider_mfa(&deps.config.file.sso, &claims.amr, claims.acr.as_deref());
    let detail = json!({
        "issuer": claims.issuer, "subject": claims.subject,
        "provider_mfa": mfa, "amr": claims.amr, "acr": claims.acr,
    });
    super::in_workspace(deps, ws, Some(user), "sso.signed_in", detail, meta).await?;
    let mark = SsoMark { workspace: ws, mfa };
    Ok(
        match sessions::after_sso(deps, user, Some(mark), meta).await? {
            FirstStep::Done(done) => Outcome::SignedIn {
                token: done.token,
                to: format!("/w/{ws}"),
                next,
            },
            FirstStep::NeedsCode(pending) => Outcome::NeedsCode { pending, next },
        },
    )
}

/// Whether a link waits for this browser under `token`.
pub fn link_waiting(deps: &Deps<'_>, sso: &Sso, token: &str, binding: Option<&str>) -> bool {
    same_browser(deps, sso, token, binding)
}

/// How the existing account proves itself.
pub enum Proof {
    Password(String),
}

/// The email of the account a waiting link belongs to.
pub async fn link_email(deps: &Deps<'_>, sso: &Sso, token: &str) -> Result<Option<String>> {
    let now = deps.clock.unix();
    let Some(user) = sso.links.peek(token, now, |l| l.user) else {
        return Ok(None);
    };
    let keys = deps.control.keys.clone();
    Ok(deps
        .control
        .db
        .read_async(move |c| control::get_user(c, &keys, user))
        .await?
        .map(|u| u.email))
}

fn same_browser(deps: &Deps<'_>, sso: &Sso, token: &str, binding: Option<&str>) -> bool {
    let now = deps.clock.unix();
    let b = binding.map(|b| crate::crypto::token::sha256(b.as_bytes()));
    sso.links
        .peek(token, now, |l| b.is_some_and(|b| b == l.binding))
        == Some(true)
}

/// Links the provider's identity to the existing account once its password
/// was given (in the browser that signed in at the provider), then signs in
/// as for a linked identity.
pub async fn prove_link(
    deps: &Deps<'_>,
    sso: &Sso,
    token: &str,
    binding: Option<&str>,
    proof: Proof,
    meta: &RequestMeta,
) -> Result<Outcome> {
    if !same_browser(deps, sso, token, binding) {
        return Ok(Outcome::Refused(Refusal::BadState));
    }
    let email = link_email(deps, sso, token)
        .await?
        .ok_or(Error::Unauthenticated)?;
    match proof {
        // Counted by the sign-in limits like any password attempt; a wrong
        // one leaves the link waiting for another try.
        Proof::Password(p) => {
            crate::identity::guard::check_password(deps, &email, p, meta).await?;
        }
    }
    link_and_sign_in(deps, sso, token, "password", meta).await
}

/// Mails the existing account a one-time link that finishes linking in this
/// same browser (for an account without a password, or one that prefers it).
/// The mail says who asked and that it does nothing elsewhere. False when
/// no link waits for this browser.
pub async fn mail_link(
    deps: &Deps<'_>,
    sso: &Sso,
    token: &str,
    binding: Option<&str>,
    meta: &RequestMeta,
) -> Result<bool> {
    if !same_browser(deps, sso, token, binding) {
        return Ok(false);
    }
    let Some(email) = link_email(deps, sso, token).await? else {
        return Ok(false);
    };
    let now = deps.clock.unix();
    let Some((user, realm)) = sso.links.peek(token, now, |l| (l.user, l.realm)) else {
        return Ok(false);
    };
    let expires = now + (deps.config.file.sso.flow_minutes as i64) * 60;
    // One mail per waiting link: posting again sends nothing more.
    if sso.mailed.peek(token, now, |_| ()).is_some() {
        return Ok(true);
    }
    sso.mailed.put(token, (), expires, now);
    let mail_token = random_token();
    sso.mails.put(&mail_token, token.to_owned(), expires, now);
    let keys = deps.control.keys.clone();
    let m = meta.clone();
    deps.control
        .db
        .write_async(move |tx| {
            let e = NewEntry::new(Actor::Anonymous, "sso.link_mail_sent", &m)
                .target("user", user)
                .after(json!({ "workspace": realm.workspace().map(|w| w.to_string()) }));
            crate::store::audit::append(tx, &keys.sealer, now, &e).map(|_| ())
        })
        .await?;
    let base = deps.config.public_url.trim_end_matches('/');
    let mail = crate::mail::Mail {
        to: email,
        subject: "Link your Aura account to single sign-on".into(),
        body: format!(
            "Someone who signed in through your organisation's identity provider asked to link it to your Aura account.\n\n\
             If that was you, open this link in the same browser within {} minutes:\n{base}/auth/oidc/link/{mail_token}\n\n\
             It works once, and only in the browser that asked. If it was not you, ignore this mail: nothing is linked.\n",
            deps.config.file.sso.flow_minutes
        ),
    };
    deps.mailer.send(mail).await?;
    Ok(true)
}

/// Whether a mailed link is live (for its page).
pub fn mail_link_live(deps: &Deps<'_>, sso: &Sso, mail_token: &str) -> bool {
    sso.mails
        .peek(mail_token, deps.clock.unix(), |_| ())
        .is_some()
}

/// Finishes a mailed link, in the browser that asked for it.
pub async fn redeem_mail_link(
    deps: &Deps<'_>,
    sso: &Sso,
    mail_token: &str,
    binding: Option<&str>,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let now = deps.clock.unix();
    let Some(token) = sso.mails.peek(mail_token, now, |t| t.clone()) else {
        return Ok(Outcome::Refused(Refusal::BadState));
    };
    if !same_browser(deps, sso, &token, binding) {
        return Ok(Outcome::Refused(Refusal::BadState));
    }
    sso.mails.take(mail_token, now);
    link_and_sign_in(deps, sso, &token, "email", meta).await
}

async fn link_and_sign_in(
    deps: &Deps<'_>,
    sso: &Sso,
    token: &str,
    proof: &'static str,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let now = deps.clock.unix();
    let Some(link) = sso.links.take(token, now) else {
        return Ok(Outcome::Refused(Refusal::BadState));
    };
    link_now(deps, link, proof, meta).await
}

/// Links the identity to the account (both chains), then signs in.
async fn link_now(
    deps: &Deps<'_>,
    link: Link,
    proof: &'static str,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let now = deps.clock.unix();
    let keys = deps.control.keys.clone();
    let (iss, sub, user, ws) = (
        link.claims.issuer.clone(),
        link.claims.subject.clone(),
        link.user,
        link.realm.workspace(),
    );
    let m = meta.clone();
    deps.control
        .db
        .write_async(move |tx| {
            store::link(tx, &keys, user, ws, &iss, &sub, now)?;
            let e = NewEntry::new(Actor::User(user), "sso.linked", &m)
                .target("user", user)
                .after(json!({ "issuer": iss, "subject": sub, "workspace": ws.map(|w| w.to_string()), "proof": proof }));
            crate::store::audit::append(tx, &keys.sealer, now, &e).map(|_| ())
        })
        .await?;
    let Some(ws) = ws else {
        return finish_platform(deps, &link.claims, user, meta).await;
    };
    let detail =
        json!({ "issuer": link.claims.issuer, "subject": link.claims.subject, "proof": proof });
    super::in_workspace(deps, ws, Some(user), "sso.linked", detail, meta).await?;
    finish_user(
        deps,
        ws,
        &link.settings,
        &link.claims,
        user,
        link.next,
        meta,
    )
    .await
}

/// Signs an operator in to the platform area through `[platform.sso]`: only
/// an enabled platform admin (in `admin_group`, when one is named), found by
/// the provider's identity or linked after proving the account; never a new
/// account.
pub(super) async fn platform_sign_in(
    deps: &Deps<'_>,
    sso: &Sso,
    settings: &Settings,
    claims: Claims,
    binding: [u8; 32],
    meta: &RequestMeta,
) -> Result<Outcome> {
    let email = match email_of(settings, &claims) {
        Ok(e) => e,
        Err(r) => return Ok(Outcome::Refused(r)),
    };
    let group = &deps.config.file.platform.sso.admin_group;
    if !group.is_empty() && !claims.groups.contains(group) {
        return Ok(Outcome::Refused(Refusal::NotProvisioned));
    }
    let keys = deps.control.keys.clone();
    let (iss, sub, e2) = (claims.issuer.clone(), claims.subject.clone(), email.clone());
    let (linked, by_email) = deps
        .control
        .db
        .read_async(move |c| {
            let linked = match store::linked_user(c, &keys, &iss, &sub)? {
                Some(u) => control::get_user(c, &keys, u)?,
                None => None,
            };
            Ok((linked, control::find_user_by_email(c, &keys, &e2)?))
        })
        .await?;
    let admin = |u: &control::UserRow| u.platform_admin && !u.disabled;
    match (linked, by_email) {
        (Some(u), _) if admin(&u) => finish_platform(deps, &claims, u.id, meta).await,
        (None, Some(u)) if admin(&u) => {
            let token = random_token();
            let now = deps.clock.unix();
            let expires = now + (deps.config.file.sso.flow_minutes as i64) * 60;
            let link = Link {
                user: u.id,
                realm: Realm::Platform,
                settings: settings.clone(),
                claims,
                binding,
                next: None,
            };
            sso.links.put(&token, link, expires, now);
            Ok(Outcome::NeedsLink { token, email })
        }
        _ => Ok(Outcome::Refused(Refusal::NotProvisioned)),
    }
}

async fn finish_platform(
    deps: &Deps<'_>,
    claims: &Claims,
    user: UserId,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let now = deps.clock.unix();
    let mfa = super::provider_mfa(&deps.config.file.sso, &claims.amr, claims.acr.as_deref());
    let keys = deps.control.keys.clone();
    let (m, iss, sub) = (meta.clone(), claims.issuer.clone(), claims.subject.clone());
    deps.control
        .db
        .write_async(move |tx| {
            store::touch(tx, &keys, &iss, &sub, now)?;
            let e = NewEntry::new(Actor::User(user), "sso.signed_in", &m)
                .target("user", user)
                .after(json!({ "issuer": iss, "subject": sub, "realm": "platform", "provider_mfa": mfa }));
            crate::store::audit::append(tx, &keys.sealer, now, &e).map(|_| ())
        })
        .await?;
    Ok(match sessions::after_sso(deps, user, None, meta).await? {
        FirstStep::Done(done) => Outcome::SignedIn {
            token: done.token,
            to: "/platform".into(),
            next: None,
        },
        FirstStep::NeedsCode(pending) => Outcome::NeedsCode {
            pending,
            next: None,
        },
    })
}

/// The role a person keeps when a mapping would touch an owner: owners are
/// named in Aura, never by a provider's groups.
pub(super) fn keeps_role(current: Role) -> bool {
    current == Role::Owner
}
