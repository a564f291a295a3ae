//! Emailed links in the browser. Magic-link sign-in: asking for a link, and
//! the link's page, whose button (a POST, so mail scanners that fetch links
//! spend nothing) signs in, or asks for the code when the account has a
//! second factor. Password reset: asking for a link, and the link's form for
//! the new password.

use maud::html;
use poem::http::StatusCode;
use poem::web::Path;
use poem::{Request, Response, handler};

use super::csrf_field;
use super::forms::PublicPage;
use super::pages::{login_step, signed_in};
use crate::app::AppState;
use crate::error::Error;
use crate::identity::magic::Purpose;
use crate::identity::sessions::{FirstStep, after_first_factor};

fn simple(
    req: &Request,
    state: &AppState,
    title: &str,
    body: impl FnOnce(&str) -> maud::Markup,
) -> Response {
    super::public_page(req, state, StatusCode::OK, title, None, body)
}

#[handler]
pub async fn request_link(p: PublicPage<'_>) -> poem::Result<Response> {
    let (state, email) = (&p.state, p.form.text("email"));
    match crate::identity::magic::request(&state.deps(), email, Purpose::SignIn, &p.meta).await {
        Ok(()) => Ok(simple(p.req, state, "Check your mail", |_| {
            html! { section.card.narrow { h1 { "Check your mail" }
            p id="magic-sent" { "If this address has an account, a sign-in link is on its way. It works once, for 15 minutes." } } }
        })),
        Err(Error::Validation(_)) => Ok(login_step(
            p.req,
            state,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter an email address."),
            "",
            None,
        )),
        Err(e) => Err(e.into()),
    }
}

#[handler]
pub fn link_page(p: PublicPage<'_>, Path(token): Path<String>) -> Response {
    simple(p.req, &p.state, "Sign in", |csrf_token| {
        html! { section.card.narrow {
            h1 { "Sign in to Aura" }
            form id="magic-redeem" method="post" action=(format!("/magic/{token}")) {
                (csrf_field(csrf_token))
                button type="submit" { "Sign in" }
            }
        } }
    })
}

#[handler]
pub async fn redeem(p: PublicPage<'_>, Path(token): Path<String>) -> poem::Result<Response> {
    let (state, meta) = (&p.state, &p.meta);
    let user = match crate::identity::magic::redeem(&state.deps(), &token, meta).await {
        Ok(u) => u,
        Err(Error::Unauthenticated) => {
            return Ok(login_step(
                p.req,
                state,
                StatusCode::UNAUTHORIZED,
                Some("That sign-in link is used or expired. Ask for a new one."),
                "",
                None,
            ));
        }
        Err(e) => return Err(e.into()),
    };
    match after_first_factor(&state.deps(), user, meta).await? {
        FirstStep::Done(done) => Ok(signed_in(p.req, state, &done.token)),
        FirstStep::NeedsCode(pending) => Ok(login_step(
            p.req,
            state,
            StatusCode::OK,
            None,
            "",
            Some(&pending),
        )),
    }
}

fn reset_form(token: &str, csrf_token: &str, errors: &[crate::error::FieldError]) -> maud::Markup {
    html! { section.card.narrow {
        h1 { "Choose a new password" }
        (super::forms::errors_box(errors))
        p.muted { "Every session and API sign-in of your account ends. Two-factor sign-in, if you have it, stays on." }
        form id="reset-form" method="post" action=(format!("/reset/{token}")) {
            (csrf_field(csrf_token))
            label for="new_password" { "New password (10 characters or more)" }
            input id="new_password" name="new_password" type="password" required minlength="10" autocomplete="new-password";
            button type="submit" { "Set password" }
        }
    } }
}

#[handler]
pub fn forgot_page(p: PublicPage<'_>) -> Response {
    let on = crate::identity::magic::reset_enabled(&p.state.deps());
    simple(p.req, &p.state, "Reset your password", |csrf_token| {
        html! { section.card.narrow {
            h1 { "Reset your password" }
            @if on {
                form id="forgot-form" method="post" action="/reset" {
                    (csrf_field(csrf_token))
                    label for="forgot-email" { "Email" }
                    input id="forgot-email" type="email" name="email" autocomplete="username" required;
                    button type="submit" { "Email me a reset link" }
                }
            } @else {
                p { "This appliance sends no mail, so it cannot reset passwords by link. Ask your operator." }
            }
        } }
    })
}

#[handler]
pub async fn request_reset(p: PublicPage<'_>) -> poem::Result<Response> {
    let (state, email) = (&p.state, p.form.text("email"));
    crate::identity::magic::request(&state.deps(), email, Purpose::PasswordReset, &p.meta).await?;
    Ok(simple(p.req, state, "Check your mail", |_| {
        html! { section.card.narrow { h1 { "Check your mail" }
        p id="reset-sent" { "If this address has an account, a reset link is on its way. It works once, for 15 minutes." } } }
    }))
}

#[handler]
pub async fn reset_page(p: PublicPage<'_>, Path(token): Path<String>) -> poem::Result<Response> {
    if !crate::identity::magic::reset_link_live(&p.state.deps(), &token).await? {
        return Err(Error::NotFound("reset link").into());
    }
    Ok(simple(
        p.req,
        &p.state,
        "Choose a new password",
        |csrf_token| reset_form(&token, csrf_token, &[]),
    ))
}

#[handler]
pub async fn reset(p: PublicPage<'_>, Path(token): Path<String>) -> poem::Result<Response> {
    let (state, password) = (&p.state, p.form.owned("new_password"));
    match crate::identity::magic::reset_password(&state.deps(), &token, password, &p.meta).await {
        Ok(()) => Ok(login_step(
            p.req,
            state,
            StatusCode::OK,
            Some("Your password is changed. Sign in with it."),
            "",
            None,
        )),
        Err(Error::Validation(errors)) => {
            let mut resp = simple(p.req, state, "Choose a new password", |csrf_token| {
                reset_form(&token, csrf_token, &errors)
            });
            resp.set_status(StatusCode::UNPROCESSABLE_ENTITY);
            Ok(resp)
        }
        Err(Error::Unauthenticated) => Err(Error::NotFound("reset link").into()),
        Err(e) => Err(e.into()),
    }
}
