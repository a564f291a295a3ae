//! The signed-in person's own account: where they are signed in (and ending
//! any of it), and changing the password, which ends every other sign-in.

use maud::{Markup, PreEscaped, html};
use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use poem::http::StatusCode;
use poem::{Request, Response, handler};

use super::csrf_field;
use super::forms::PublicPage;
use super::forms::when;
use super::forms::{AccountPost, errors_box, page, see_other, validation_errors};
use crate::access::Principal;
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::error::{Error, FieldError};
use crate::identity::mfa::{self, Enrolment};
use crate::identity::{Deps, passkeys, users};
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
    /// New recovery codes in place of the old ones, once.
    Regenerated(&'a [String]),
}

/// The error for `field` among `errors`, if any.
fn error_for<'e>(errors: &'e [FieldError], field: &str) -> Option<&'e str> {
    errors
        .iter()
        .find(|e| e.field == field)
        .map(|e| e.message.as_str())
}

/// What a `data:` URL of plain text must escape (RFC 2397 and the URL
/// parser): controls (the line breaks), space, and the characters that end
/// or change a URL.
const DATA_URL: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'\'');

/// Recovery codes with a download (a text file, no script needed) and a
/// copy button (app.js).
fn recovery_codes(codes: &[String]) -> Markup {
    let file = format!(
        "Aura recovery codes. Each works once, instead of a code from your app.\n\n{}\n",
        codes.join("\n")
    );
    let href = format!(
        "data:text/plain;charset=utf-8,{}",
        utf8_percent_encode(&file, DATA_URL)
    );
    html! {
        ul id="recovery-codes" { @for c in codes.iter() { li { code { (c) } } } }
        p.actions {
            a.button id="recovery-download" href=(href) download="aura-recovery-codes.txt" { "Download as a text file" }
            " "
            button type="button" data-copy="#recovery-codes" { "Copy" }
            span.muted role="status" data-copy-status {}
        }
    }
}

fn mfa_section(
    token: &str,
    (enabled, has_password): (bool, bool),
    left: i64,
    step: &MfaStep<'_>,
    errors: &[FieldError],
) -> Markup {
    let code_error = error_for(errors, "code");
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
                        @if let Some(e) = code_error {
                            input id="confirm-code" name="code" autocomplete="one-time-code" inputmode="numeric" required aria-invalid="true" aria-describedby="confirm-code-error";
                            p.field-error id="confirm-code-error" { "The code " (e) ". Type the newest code from the same entry in your app; there is no need to scan again." }
                        } @else {
                            input id="confirm-code" name="code" autocomplete="one-time-code" inputmode="numeric" required;
                        }
                        button type="submit" { "Turn on" }
                    }
                }
                MfaStep::Confirmed(codes) => {
                    div.notice role="status" {
                        p { strong { "Two-factor sign-in is on. " } "Keep these recovery codes somewhere safe: each works once, instead of a code from the app, and they are not shown again." }
                        (recovery_codes(codes))
                    }
                }
                MfaStep::Regenerated(codes) => {
                    div.notice role="status" {
                        p { strong { "New recovery codes. " } "Your old codes no longer work. Keep these somewhere safe: each works once, and they are not shown again." }
                        (recovery_codes(codes))
                    }
                }
                MfaStep::Idle => {
                    @if enabled {
                        p { "On. " (left) " recovery codes left." }
                        form id="mfa-recovery" method="post" action="/account/mfa/recovery-codes" {
                            (csrf_field(token))
                            p.muted { "Lost your recovery codes, or used most of them? Make new ones; the old ones stop working." }
                            label for="recovery-password" { "Password" }
                            input id="recovery-password" name="password" type="password" required autocomplete="current-password";
                            button type="submit" { "Make new recovery codes" }
                        }
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
                            @if has_password {
                                label for="mfa-password" { "Password" }
                                input id="mfa-password" name="password" type="password" required autocomplete="current-password";
                            } @else {
                                p.muted id="mfa-sso-proof" { "Your account has no password: a sign-in through your organisation's provider in the last 10 minutes proves it is you." }
                                input type="hidden" name="password" value="-";
                            }
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

/// The account page, at a step of setting up two-factor sign-in (`Idle`
/// when none is under way).
async fn render(
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
    let (keys_, me_id) = (state.control.keys.clone(), who.0.user_id);
    let has_password = state
        .control
        .db
        .read_async(move |c| crate::store::control::get_user(c, &keys_, me_id))
        .await?
        .is_some_and(|u| u.password_hash.is_some());
    let keys = crate::identity::passkeys::list(&state.deps(), who.0.user_id).await?;
    let passkeys_on = state.passkeys.available();
    let deletion_due = crate::lifecycle::accounts::due(&state.deps(), who.0.user_id).await?;
    let grace = state.config.file.lifecycle.account_grace_days;
    let revoked =
        crate::identity::api_tokens::revoked_personal(&state.control, who.0.user_id).await?;
    let now = state.clock.unix();
    page(req, state, who, status, "Your account", |token| {
        html! {
            section.card {
                h1 { "Your account" }
                @if let Some(n) = notice { div.notice role="status" { (n) } }
                (errors_box(errors))
                h2 { "Where you are signed in" }
                p.muted { "Don't recognise one? Sign it out, then change your password." }
                table.list id="sessions" {
                    thead { tr { th { "Device" } th { "Kind" } th { "Signed in" } th { "Last seen" } th { "IP address" } th {} } }
                    tbody {
                        @for (s, current) in &list {
                            tr data-session=(s.id) {
                                td.device { (s.device.as_deref().unwrap_or("Unknown device")) }
                                td { @if s.browser { "Browser" } @else { "API sign-in" } }
                                td { (when(s.created_at, now)) }
                                td { @if let Some(t) = s.last_seen_at { (when(t, now)) } @else { span.muted { "—" } } }
                                td { (s.ip.as_deref().unwrap_or("—")) }
                                td {
                                    @if *current { span.badge { "This device" } }
                                    @else {
                                        form method="post" action="/account/sessions/end" {
                                            (csrf_field(token))
                                            input type="hidden" name="id" value=(s.id);
                                            button.danger type="submit" aria-label=(format!("Sign out {}", s.device.as_deref().unwrap_or("this sign-in"))) { "Sign out" }
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
                            @for (t, at, why) in &revoked {
                                tr data-token=(t.id) {
                                    td { (t.name) }
                                    td { (t.workspace) }
                                    td { (t.scope) }
                                    td { (when(*at, now)) }
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
            (mfa_section(token, (enabled, has_password), left, &step, errors))
            section.card id="passkeys" {
                h2 { "Passkeys" }
                @if !passkeys_on {
                    p.muted { "Passkeys are not available here yet: they need Aura to be reached by a domain name. Ask your administrator." }
                } @else {
                    p.muted { "A passkey signs you in on its own, or stands in for the code after your password." }
                    @if !keys.is_empty() {
                        table.list id="passkey-list" {
                            thead { tr { th { "Name" } th { "Added" } th { "Last used" } th {} } }
                            tbody {
                                @for k in &keys {
                                    tr data-passkey-id=(k.id) {
                                        td { (k.name) }
                                        td { (when(k.created_at, now)) }
                                        td { @if let Some(t) = k.last_used_at { (when(t, now)) } @else { "never" } }
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
pub async fn account_page(p: PublicPage<'_>, who: AccountHolder) -> poem::Result<Response> {
    let who = SignedIn::from(who);
    let changed = p.req.uri().query() == Some("changed=1");
    let note = changed.then_some("Password changed; your other sign-ins have ended.");
    let (status, step) = (StatusCode::OK, MfaStep::Idle);
    render(p.req, &p.state, &who, status, &[], note, step).await
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
        let (status, step) = (StatusCode::UNPROCESSABLE_ENTITY, MfaStep::Idle);
        render(req, &self.state, &self.who, status, &errors, None, step).await
    }

    /// The page at a step of setting up two-factor sign-in.
    async fn mfa_step(&self, req: &Request, step: MfaStep<'_>) -> poem::Result<Response> {
        render(req, &self.state, &self.who, StatusCode::OK, &[], None, step).await
    }

    /// A two-factor change made with the password again: the page at the
    /// step it reached, else the page again with the errors.
    async fn mfa_change<T>(
        &self,
        req: &Request,
        change: impl AsyncFnOnce(&Deps<'_>, &Principal, String, &RequestMeta) -> Result<T, Error>,
        step: impl FnOnce(&T) -> MfaStep<'_>,
    ) -> poem::Result<Response> {
        let password = self.form.owned("password");
        match change(&self.state.deps(), &self.who.0, password, &self.meta).await {
            Ok(t) => self.mfa_step(req, step(&t)).await,
            Err(e) => self.failed(req, e).await,
        }
    }
}

#[handler]
pub async fn mfa_start(req: &Request, p: AccountPost) -> poem::Result<Response> {
    p.mfa_change(req, mfa::start_enrolment, |e| MfaStep::Enrolling(e))
        .await
}

#[handler]
pub async fn mfa_confirm(req: &Request, p: AccountPost) -> poem::Result<Response> {
    let e = match mfa::confirm(&p.state.deps(), &p.who.0, p.form.text("code"), &p.meta).await {
        Ok(codes) => return p.mfa_step(req, MfaStep::Confirmed(&codes)).await,
        Err(e) => e,
    };
    // A wrong code keeps the enrolment: the same key and QR code again,
    // with the error at the code field.
    match (&e, mfa::pending_enrolment(&p.state.deps(), &p.who.0).await?) {
        (Error::Validation(errors), Some(pending)) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            let step = MfaStep::Enrolling(&pending);
            render(req, &p.state, &p.who, status, errors, None, step).await
        }
        _ => p.failed(req, e).await,
    }
}

#[handler]
pub async fn mfa_recovery_codes(req: &Request, p: AccountPost) -> poem::Result<Response> {
    p.mfa_change(req, mfa::regenerate_recovery_codes, |c| {
        MfaStep::Regenerated(c)
    })
    .await
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
