//! The sign-in page, the workspace list and sign-out.

use std::sync::Arc;

use maud::html;
use poem::http::StatusCode;
use poem::web::{Data, Form, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::{Chrome, html_response, layout};
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::error::Error;
use crate::web::csrf;
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
    let (csrf, set_cookie) = csrf::token_for(req, state);
    let body = html! {
        section.card.narrow {
            h1 { "Sign in" }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form method="post" action="/login" {
                (super::csrf_field(&csrf))
                label for="email" { "Email" }
                input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password type="password" name="password" autocomplete="current-password" required;
                button type="submit" { "Sign in" }
            }
        }
    };
    let mut resp = html_response(
        status,
        layout(
            "Sign in",
            &Chrome {
                email: None,
                csrf: &csrf,
            },
            body,
        ),
    );
    if let Some(c) = set_cookie.and_then(|c| c.parse().ok()) {
        resp.headers_mut().append("set-cookie", c);
    }
    resp
}

#[handler]
pub async fn login_form(
    req: &Request,
    state: Data<&Arc<AppState>>,
    who: Option<SignedIn>,
) -> Response {
    if who.is_some() {
        return Redirect::see_other("/workspaces").into_response();
    }
    login_page(req, &state, StatusCode::OK, None, "")
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

#[handler]
pub async fn login_submit(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    Form(form): Form<LoginForm>,
) -> poem::Result<Response> {
    if form.email.trim().is_empty() || form.password.is_empty() {
        return Ok(login_page(
            req,
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            Some("Enter your email and password."),
            &form.email,
        ));
    }
    match crate::identity::login(&state, &form.email, form.password, &meta).await {
        Ok(done) => {
            let mut resp = Redirect::see_other("/workspaces").into_response();
            if let Ok(v) = session_cookie(&state.config, &done.token).parse() {
                resp.headers_mut().insert("set-cookie", v);
            }
            Ok(resp)
        }
        Err(Error::InvalidCredentials) => Ok(login_page(
            req,
            &state,
            StatusCode::UNAUTHORIZED,
            Some("That email and password do not match an account."),
            &form.email,
        )),
        Err(e) => Err(e.into()),
    }
}

#[handler]
pub async fn logout_submit(
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: Option<SignedIn>,
) -> poem::Result<Response> {
    if let Some(who) = who {
        crate::identity::logout(&state, &who.0, &meta).await?;
    }
    let mut resp = Redirect::see_other("/login").into_response();
    if let Ok(v) = clear_cookie(&state.config).parse() {
        resp.headers_mut().insert("set-cookie", v);
    }
    Ok(resp)
}

#[handler]
pub async fn workspaces(
    req: &Request,
    state: Data<&Arc<AppState>>,
    who: SignedIn,
) -> poem::Result<Response> {
    let me = crate::web::api::me::load_me(&state, &who).await?;
    let body = html! {
        section.card {
            h1 { "Your workspaces" }
            @if me.workspaces.is_empty() {
                p.muted { "You are not a member of any workspace yet. An operator can create one with "
                    code { "aura workspace create" } "." }
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
                p { a href="/platform/audit" { "Platform audit log" } " · " a href="/platform/backups" { "Backups" } }
            }
        }
    };
    let (csrf, _) = csrf::token_for(req, &state);
    Ok(super::signed_in_page("Workspaces", &me.email, &csrf, body))
}
