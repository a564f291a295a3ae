//! The signed-in person's own account: where they are signed in (and ending
//! any of it), and changing the password, which ends every other sign-in.

use std::sync::Arc;

use maud::{Markup, PreEscaped, html};
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::csrf_field;
use super::forms::{AccountPost, errors_box, page, see_other, validation_errors};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::error::{Error, FieldError};
use crate::identity::mfa::{self, Enrolment};
use crate::identity::{passkeys, users};
use crate::web::api::me::{end_sign_in, sign_ins};
use crate::web::session::{AccountHolder, SignedIn};

/// What the two-factor section shows besides its status.
#[derive(Default)]
pub enum MfaStep<'a> {
    #[default]
    Idle,
    /// Enrolment started: the QR code and the confirm form.
    Enrolling(&'a Enrolment),
    /// Enrolment confirmed: the recovery codes, once.
    Confirmed(&'a [String]),
}

fn mfa_section(token: &str, enabled: bool, left: i64, step: &MfaStep<'_>) -> Markup {
    html! {
        section.card id="mfa" {
            h2 { "Two-factor sign-in" }
            @match step {
                MfaStep::Enrolling(e) => {
                    p { "Scan this code with an authenticator app, or type the key, then enter the 6-digit code it shows." }
                    div.qr { (PreEscaped(svg_only(&e.qr_svg))) }
                    p { "Key: " code id="totp-secret" { (e.secret_base32) } }
                    p.muted { code.uri { (e.otpauth_uri) } }
                    form id="mfa-confirm" method="post" action="/account/mfa/confirm" {
                        (csrf_field(token))
                        label for="confirm-code" { "Code from the app" }
                        input id="confirm-code" name="code" autocomplete="one-time-code" inputmode="numeric" required;
                        button type="submit" { "Turn on" }
                    }
                }
                MfaStep::Confirmed(codes) => {
                    div.notice role="status" {
                        p { strong { "Two-factor sign-in is on. " } "Keep these recovery codes somewhere safe: each works once, instead of a code from the app, and they are not shown again." }
                        ul id="recovery-codes" { @for c in codes.iter() { li { code { (c) } } } }
                    }
                }
                MfaStep::Idle => {
                    @if enabled {
                        p { "On. " (left) " recovery codes left." }
                        form id="mfa-remove" method="post" action="/account/mfa/remove" {
                            (csrf_field(token))
                            label for="remove-password" { "Password" }
                            input id="remove-password" name="password" type="password" required autocomplete="current-password";
                            label for="remove-code" { "Code from the app, or a recovery code" }
                            input id="remove-code" name="code" required autocomplete="one-time-code";
                            button.danger type="submit" { "Turn off" }
                        }
                    } @else {
                        p.muted { "Off. With it on, signing in also asks for a code from an authenticator app." }
                        form id="mfa-start" method="post" action="/account/mfa/start" {
                            (csrf_field(token))
                            label for="mfa-password" { "Password" }
                            input id="mfa-password" name="password" type="password" required autocomplete="current-password";
                            button type="submit" { "Set up" }
                        }
                    }
                }
            }
        }
    }
}

/// The `<svg>` element of a rendered document (no XML declaration).
fn svg_only(doc: &str) -> &str {
    doc.find("<svg").map_or(doc, |i| &doc[i..])
}

pub(super) async fn render(
    req: &Request,
    state: &AppState,
    who: &SignedIn,
    status: StatusCode,
    errors: &[FieldError],
    notice: Option<&str>,
) -> poem::Result<Response> {
    render_mfa(req, state, who, status, errors, notice, MfaStep::Idle).await
}

async fn render_mfa(
    req: &Request,
    state: &AppState,
    who: &SignedIn,
    status: StatusCode,
    errors: &[FieldError],
    notice: Option<&str>,
    step: MfaStep<'_>,
) -> poem::Result<Response> {
    let list = sign_ins(state, &who.0).await?;
    let (enabled, left) = crate::identity::mfa::status(&state.deps(), who.0.user_id).await?;
    let keys = crate::identity::passkeys::list(&state.deps(), who.0.user_id).await?;
    let passkeys_on = state.passkeys.available();
    let deletion_due = crate::lifecycle::accounts::due(&state.deps(), who.0.user_id).await?;
    let grace = state.config.file.lifecycle.account_grace_days;
    let revoked =
        crate::identity::api_tokens::revoked_personal(&state.control, who.0.user_id).await?;
    page(req, state, who, status, "Your account", |token| {
        html! {
            section.card {
                h1 { "Your account" }
                @if let Some(n) = notice { div.notice role="status" { (n) } }
                (errors_box(errors))
                h2 { "Where you are signed in" }
                table.list id="sessions" {
                    thead { tr { th { "Kind" } th { "Since" } th { "Last seen" } th { "From" } th {} } }
                    tbody {
                        @for (s, current) in &list {
                            tr data-session=(s.id) {
                                td { @if s.browser { "browser" } @else { "API sign-in" } }
                                td { (rfc3339(s.created_at)) }
                                td { (s.last_seen_at.map(rfc3339).unwrap_or_default()) }
                                td { (s.ip.clone().unwrap_or_default()) }
                                td {
                                    @if *current { span.badge { "this one" } }
                                    @else {
                                        form method="post" action="/account/sessions/end" {
                                            (csrf_field(token))
                                            input type="hidden" name="id" value=(s.id);
                                            button.danger type="submit" { "Sign out" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            @if !revoked.is_empty() {
                section.card id="revoked-tokens" {
                    h2 { "API tokens revoked for your safety" }
                    p.muted { "A password reset, or an operator disabling your account, revokes your own API tokens in every workspace (the workspaces' service-account tokens stay). Make new ones where you still need them." }
                    table.list {
                        thead { tr { th { "Token" } th { "Workspace" } th { "Scope" } th { "Revoked" } th { "Why" } } }
                        tbody {
                            @for (t, when, why) in &revoked {
                                tr data-token=(t.id) {
                                    td { (t.name) }
                                    td { (t.workspace) }
                                    td { (t.scope) }
                                    td { (rfc3339(*when)) }
                                    td { @match why {
                                        crate::store::tokens::Revocation::PasswordReset => "password reset",
                                        crate::store::tokens::Revocation::AccountDisabled => "account disabled",
                                    } }
                                }
                            }
                        }
                    }
                }
            }
            (mfa_section(token, enabled, left, &step))
            section.card id="passkeys" {
                h2 { "Passkeys" }
                @if !passkeys_on {
                    p.muted { "Passkeys need this appliance's address to be a domain name (public_url)." }
                } @else {
                    p.muted { "A passkey signs you in on its own, or stands in for the code after your password." }
                    @if !keys.is_empty() {
                        table.list id="passkey-list" {
                            thead { tr { th { "Name" } th { "Added" } th { "Last used" } th {} } }
                            tbody {
                                @for k in &keys {
                                    tr data-passkey-id=(k.id) {
                                        td { (k.name) }
                                        td { (rfc3339(k.created_at)) }
                                        td { (k.last_used_at.map(rfc3339).unwrap_or_else(|| "never".into())) }
                                        td {
                                            form.inline method="post" action="/account/passkeys/remove" {
                                                (csrf_field(token))
                                                input type="hidden" name="id" value=(k.id);
                                                input name="password" type="password" required placeholder="Password" aria-label="Password" autocomplete="current-password";
                                                button.danger type="submit" { "Remove" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    label for="passkey-name" { "Name" }
                    input id="passkey-name" value="Passkey" maxlength="200";
                    label for="passkey-password" { "Password" }
                    input id="passkey-password" type="password" autocomplete="current-password";
                    button type="button" id="passkey-add" data-passkey="register" { "Add a passkey" }
                    p.muted id="passkey-status" role="status" {}
                }
            }
            section.card {
                h2 { "Change password" }
                p.muted { "Every other browser session and API sign-in of yours ends." }
                form id="password-form" method="post" action="/account/password" {
                    (csrf_field(token))
                    label for="current_password" { "Current password" }
                    input id="current_password" name="current_password" type="password" required autocomplete="current-password";
                    label for="new_password" { "New password" }
                    input id="new_password" name="new_password" type="password" required minlength="10" autocomplete="new-password";
                    button type="submit" { "Change password" }
                }
            }
            (super::lifecycle::account_section(token, deletion_due, grace))
        }
    })
    .await
}

#[handler]
pub async fn account_page(
    req: &Request,
    state: Data<&Arc<AppState>>,
    who: AccountHolder,
) -> poem::Result<Response> {
    let who = SignedIn::from(who);
    let changed = req.uri().query() == Some("changed=1");
    let note = changed.then_some("Password changed; your other sign-ins have ended.");
    render(req, &state, &who, StatusCode::OK, &[], note).await
}

#[handler]
pub async fn change_password(req: &Request, p: AccountPost) -> poem::Result<Response> {
    let (current, new) = (
        p.form.owned("current_password"),
        p.form.owned("new_password"),
    );
    let done = users::change_password(&p.state.deps(), &p.who.0, current, new, &p.meta).await;
    p.then(req, done, "/account?changed=1").await
}

#[handler]
pub async fn end_session(p: AccountPost) -> poem::Result<Response> {
    end_sign_in(&p.state, &p.who.0, p.form.text("id"), &p.meta).await?;
    Ok(see_other("/account".into()))
}

impl AccountPost {
    /// Where a form on the account page goes next: `to` when it was done,
    /// else the page again with the errors.
    pub(super) async fn then(
        &self,
        req: &Request,
        done: Result<(), Error>,
        to: &str,
    ) -> poem::Result<Response> {
        match done {
            Ok(()) => Ok(see_other(to.into())),
            Err(e) => self.failed(req, e).await,
        }
    }

    /// Re-renders the page with the errors of a failed form.
    pub(super) async fn failed(&self, req: &Request, e: Error) -> poem::Result<Response> {
        let errors = validation_errors(e)?;
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        render(req, &self.state, &self.who, status, &errors, None).await
    }

    /// The page at a step of setting up two-factor sign-in.
    async fn mfa_step(&self, req: &Request, step: MfaStep<'_>) -> poem::Result<Response> {
        render_mfa(req, &self.state, &self.who, StatusCode::OK, &[], None, step).await
    }
}

#[handler]
pub async fn mfa_start(req: &Request, p: AccountPost) -> poem::Result<Response> {
    let password = p.form.owned("password");
    match mfa::start_enrolment(&p.state.deps(), &p.who.0, password, &p.meta).await {
        Ok(e) => p.mfa_step(req, MfaStep::Enrolling(&e)).await,
        Err(e) => p.failed(req, e).await,
    }
}

#[handler]
pub async fn mfa_confirm(req: &Request, p: AccountPost) -> poem::Result<Response> {
    match mfa::confirm(&p.state.deps(), &p.who.0, p.form.text("code"), &p.meta).await {
        Ok(codes) => p.mfa_step(req, MfaStep::Confirmed(&codes)).await,
        Err(e) => p.failed(req, e).await,
    }
}

#[handler]
pub async fn mfa_remove(req: &Request, p: AccountPost) -> poem::Result<Response> {
    let (password, code) = (p.form.owned("password"), p.form.text("code"));
    let done = match mfa::remove(&p.state.deps(), &p.who.0, password, code, &p.meta).await {
        Err(Error::MfaInvalid) => Err(Error::field("code", "is not a valid code")),
        other => other,
    };
    p.then(req, done, "/account#mfa").await
}

#[handler]
pub async fn passkey_remove(req: &Request, p: AccountPost) -> poem::Result<Response> {
    let (id, password) = (p.form.text("id"), p.form.owned("password"));
    let done = passkeys::remove(&p.state.deps(), &p.who.0, id, password, &p.meta).await;
    p.then(req, done, "/account#passkeys").await
}
