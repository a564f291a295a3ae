//! The sign-in page, the workspace list and sign-out.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Form, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::forms::PublicPage;
use crate::app::AppState;
use crate::error::Error;
use crate::web::session::{SignedIn, clear_cookie, session_cookie};

#[handler]
pub async fn home(who: Option<SignedIn>) -> Response {
    match who {
        Some(_) => Redirect::see_other("/workspaces").into_response(),
        None => Redirect::see_other("/login").into_response(),
    }
}

fn login_page(
    req: &Request,
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
) -> Response {
    login_step(req, state, status, error, email, None)
}

/// Where to go after signing in: the `next` query parameter when it is a
/// path on this site (`/w/...`), never another origin (`//host`, `/\\host`,
/// `https://...`) or anything with control characters.
pub fn next_path(req: &Request) -> Option<String> {
    let q = req.uri().query()?;
    let next = serde_urlencoded::from_str::<Vec<(String, String)>>(q)
        .ok()?
        .into_iter()
        .find(|(k, _)| k == "next")?
        .1;
    same_site_path(&next).then_some(next)
}

pub fn same_site_path(p: &str) -> bool {
    p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && p.len() <= 2000
        && !p.chars().any(|c| c.is_control() || c == '\\')
}

/// `/login`, carrying `next` (a same-site path) through every sign-in step.
pub fn login_url(next: Option<&str>) -> String {
    match next {
        Some(n) => format!(
            "/login?next={}",
            percent_encoding::utf8_percent_encode(n, percent_encoding::NON_ALPHANUMERIC)
        ),
        None => "/login".to_owned(),
    }
}

/// The sign-in page; with `pending`, its second step (the code).
pub(super) fn login_step(
    req: &Request,
    state: &AppState,
    status: StatusCode,
    error: Option<&str>,
    email: &str,
    pending: Option<&str>,
) -> Response {
    let next = next_path(req);
    let action = login_url(next.as_deref());
    super::public_page(req, state, status, "Sign in", None, |csrf| {
        html! {
            section.card.narrow {
                h1 { "Sign in" }
                @if let Some(e) = error { p.error role="alert" { (e) } }
                @if let Some(p) = pending {
                    form id="mfa-form" method="post" action=(action) {
                        (super::csrf_field(csrf))
                        input type="hidden" name="mfa_token" value=(p);
                        label for="code" { "Authentication code" }
                        p.muted { "The 6-digit code from your authenticator app, or one of your recovery codes." }
                        input id="code" name="code" autocomplete="one-time-code" inputmode="numeric" required autofocus;
                        button type="submit" { "Verify" }
                    }
                    @if state.passkeys.available() {
                        p { button.secondary type="button" id="passkey-second" data-passkey="second-factor" data-mfa-token=(p) data-next=[next.as_deref()] { "Use a passkey instead" } }
                        p.muted id="passkey-status" role="status" {}
                    }
                } @else {
                    form method="post" action=(action) {
                        (super::csrf_field(csrf))
                        label for="email" { "Email" }
                        input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
                        label for="password" { "Password" }
                        input #password type="password" name="password" autocomplete="current-password" required;
                        button type="submit" { "Sign in" }
                    }
                    p.muted { a href="/reset" id="forgot-link" { "Forgot your password?" } }
                    form id="sso-form" method="get" action="/auth/oidc/start" {
                        p.muted { "Or sign in through your organisation's identity provider:" }
                        label for="sso-email" { "Work email" }
                        input id="sso-email" type="email" name="email" autocomplete="username" required;
                        @if let Some(n) = next.as_deref() { input type="hidden" name="next" value=(n); }
                        input type="hidden" name="via" value="form";
                        button.secondary type="submit" { "Continue with single sign-on" }
                    }
                    @if state.config.file.platform.sso.enabled {
                        p.muted { a #platform-sso href="/auth/oidc/start?platform=1" { "Operators: sign in to the platform area with single sign-on" } }
                    }
                @if state.passkeys.available() {
                    p { button.secondary type="button" id="passkey-login" data-passkey="login" data-next=[next.as_deref()] { "Sign in with a passkey" } }
                    p.muted id="passkey-status" role="status" {}
                }
                    @if crate::identity::magic::enabled(&state.deps()) {
                        form id="magic-form" method="post" action="/login/magic" {
                            (super::csrf_field(csrf))
                            p.muted { "Or get a single-use sign-in link by mail:" }
                            label for="magic-email" { "Email" }
                            input id="magic-email" type="email" name="email" autocomplete="username" required;
                            button.secondary type="submit" { "Email me a link" }
                        }
                    }
                }
            }
        }
    })
}

#[handler]
pub async fn login_form(p: PublicPage<'_>, who: Option<SignedIn>) -> Response {
    if who.is_some() {
        return Redirect::see_other(next_path(p.req).as_deref().unwrap_or("/workspaces"))
            .into_response();
    }
    login_page(p.req, &p.state, StatusCode::OK, None, "")
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    /// The second step: the one-time token of a sign-in waiting for its code.
    #[serde(default)]
    mfa_token: String,
    #[serde(default)]
    code: String,
}

/// Signed in: the session cookie, and on to the page that asked for it.
pub(super) fn signed_in(req: &Request, state: &AppState, token: &str) -> Response {
    let to = next_path(req);
    let mut resp = Redirect::see_other(to.as_deref().unwrap_or("/workspaces")).into_response();
    if let Ok(v) = session_cookie(&state.config, token).parse() {
        resp.headers_mut().insert("set-cookie", v);
    }
    resp
}

#[handler]
pub async fn login_submit(
    p: PublicPage<'_>,
    Form(form): Form<LoginForm>,
) -> poem::Result<Response> {
    if !form.mfa_token.is_empty() {
        let done = crate::identity::sessions::login_with_code(
            &p.state.deps(),
            &form.mfa_token,
            &form.code,
            &p.meta,
        )
        .await;
        return match done {
            Ok(done) => Ok(signed_in(p.req, &p.state, &done.token)),
            Err(Error::MfaInvalid) => Ok(login_step(
                p.req,
                &p.state,
                StatusCode::UNAUTHORIZED,
                Some("That code is not valid (each code works once). Try the next one."),
                "",
                Some(&form.mfa_token),
            )),
            Err(Error::Unauthenticated) => Ok(login_page(
                p.req,
                &p.state,
                StatusCode::UNAUTHORIZED,
                Some("That sign-in expired. Please start again."),
                "",
            )),
            Err(e) => Err(e.into()),
        };
    }
    if form.email.trim().is_empty() || form.password.is_empty() {
        return Ok(login_page(
            p.req,
            &p.state,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter your email and password."),
            &form.email,
        ));
    }
    use crate::identity::sessions::{FirstStep, login_browser};
    match login_browser(&p.state.deps(), &form.email, form.password, &p.meta).await {
        Ok(FirstStep::Done(done)) => Ok(signed_in(p.req, &p.state, &done.token)),
        Ok(FirstStep::NeedsCode(pending)) => Ok(login_step(
            p.req,
            &p.state,
            StatusCode::OK,
            None,
            "",
            Some(&pending),
        )),
        Err(Error::InvalidCredentials) => Ok(login_page(
            p.req,
            &p.state,
            StatusCode::UNAUTHORIZED,
            Some("That email and password do not match an account."),
            &form.email,
        )),
        Err(e) => Err(e.into()),
    }
}

#[handler]
pub async fn logout_submit(p: PublicPage<'_>, who: Option<SignedIn>) -> poem::Result<Response> {
    if let Some(who) = who {
        crate::identity::logout(&p.state.deps(), &who.0, &p.meta).await?;
    }
    let mut resp = Redirect::see_other("/login").into_response();
    if let Ok(v) = clear_cookie(&p.state.config).parse() {
        resp.headers_mut().insert("set-cookie", v);
    }
    Ok(resp)
}

#[handler]
pub async fn workspaces(p: PublicPage<'_>, who: SignedIn) -> poem::Result<Response> {
    let me = crate::web::api::me::load_me(&p.state, &who).await?;
    let body = html! {
        section.card {
            h1 { "Your workspaces" }
            @if me.workspaces.is_empty() {
                p.muted { "You are not a member of any workspace yet. Ask a workspace's owner or admin to invite you; the invitation comes by mail." }
            } @else {
                table.list {
                    thead { tr { th { "Name" } th { "Your role" } th { "Region" } th {} } }
                    tbody {
                        @for w in &me.workspaces {
                            tr data-workspace=(w.id) {
                                td { a href=(format!("/w/{}", w.id)) { (w.name) } }
                                td { span.badge { (w.role) } }
                                td { @if w.region.is_empty() { span.muted { "—" } } @else { (w.region) } }
                                td { @if w.role == "owner" || w.role == "admin" {
                                    a href=(format!("/w/{}/audit", w.id)) { "Audit log" }
                                } }
                            }
                        }
                    }
                }
            }
            @if me.platform_admin {
                p { a href="/platform" id="platform-link" { "Platform area" } ": every workspace's health, the platform audit log and backups." }
            }
        }
    };
    super::forms::page(p.req, &p.state, &who, StatusCode::OK, "Workspaces", |_| {
        body
    })
    .await
}
