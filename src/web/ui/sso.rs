//! Signing in through a workspace's OpenID provider: the start (by
//! workspace, or found from the email's domain), the callback, and the page
//! where an existing account proves itself before its first link.

use maud::html;
use poem::http::StatusCode;
use poem::web::{Form, Query, Redirect};
use poem::{IntoResponse, Request, Response, handler};
use serde::Deserialize;

use super::forms::PublicPage;
use crate::app::AppState;
use crate::error::Error;
use crate::identity::sso::flow::{self, Callback, Outcome, Realm, Refusal};
use crate::identity::sso::{self, account};
use crate::ids::WorkspaceId;
use crate::web::session::session_cookie;

/// The cookie binding a sign-in at the provider to this browser.
const COOKIE: &str = "aura_sso_flow";
const COOKIE_TLS: &str = "__Host-aura_sso_flow";

fn cookie_name(state: &AppState) -> &'static str {
    if state.config.secure_cookies() {
        COOKIE_TLS
    } else {
        COOKIE
    }
}

fn binding(req: &Request, state: &AppState) -> Option<String> {
    crate::web::session::cookie(req, cookie_name(state))
}

fn set_binding(resp: &mut Response, state: &AppState, value: &str, max_age: u64) {
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    // Lax: the provider's redirect back is a top-level GET from its site.
    let c = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(state)
    );
    if let Ok(v) = c.parse() {
        resp.headers_mut().append("set-cookie", v);
    }
}

/// "Continue with single sign-on" for a workspace page that answered
/// `sso-required`: `/w/<ws>/...` starts that workspace's sign-in and comes
/// back to the page.
pub fn start_link_for(back_to: &str) -> Option<String> {
    let ws: WorkspaceId = back_to
        .strip_prefix("/w/")?
        .split('/')
        .next()?
        .parse()
        .ok()?;
    Some(format!(
        "{}&next={}",
        sso::start_link(ws),
        percent_encoding::utf8_percent_encode(back_to, percent_encoding::NON_ALPHANUMERIC)
    ))
}

#[derive(Deserialize)]
pub struct StartQuery {
    #[serde(default)]
    workspace: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    next: Option<String>,
    /// `form`: sent by the sign-in page's form (below).
    #[serde(default)]
    via: Option<String>,
    /// `1`: the platform area's provider (`[platform.sso]`), for operators.
    #[serde(default)]
    platform: Option<String>,
}

fn refused_page(req: &Request, state: &AppState, status: StatusCode, message: &str) -> Response {
    super::public_page(req, state, status, "Single sign-on", None, |_| {
        html! {
            section.card.narrow {
                h1 { "You were not signed in" }
                p.error role="alert" id="sso-error" { (message) }
                p { a href="/login" { "Back to the sign-in page" } }
            }
        }
    })
}

/// `GET /auth/oidc/start?workspace=ID` (or `?email=`): on to the provider.
#[handler]
pub async fn start(p: PublicPage<'_>, Query(q): Query<StartQuery>) -> poem::Result<Response> {
    let deps = p.state.deps();
    let email = q.email.as_deref().map(str::trim).filter(|e| !e.is_empty());
    // Found by the email's domain, which any workspace's admin may list: the
    // person then sees the provider's address and goes on by a click.
    let by_domain = q.platform.as_deref() != Some("1")
        && q.workspace.as_deref().is_none_or(str::is_empty)
        && email.is_some();
    let ws = match (q.workspace.as_deref().filter(|w| !w.is_empty()), email) {
        _ if q.platform.as_deref() == Some("1") => Some(Realm::Platform),
        (Some(w), _) => w.parse::<WorkspaceId>().ok().map(Realm::Workspace),
        (None, Some(e)) => flow::workspace_for_email(&deps, e)
            .await?
            .map(Realm::Workspace),
        (None, None) => None,
    };
    let Some(realm) = ws else {
        let msg = if email.is_some() {
            "No single sign-on is set up for that email's domain here (or several workspaces use it). Use the sign-in link your administrator gave you, or sign in with your password."
        } else {
            "Enter your work email, or use the sign-in link your administrator gave you."
        };
        return Ok(refused_page(p.req, &p.state, StatusCode::NOT_FOUND, msg));
    };
    let next = q.next.filter(|n| super::pages::same_site_path(n));
    match flow::start(&deps, &p.state.sso, realm, email, next).await {
        Ok(Ok(started)) => {
            // A form's answer may not redirect to another origin (CSP
            // `form-action 'self'` covers redirects): after the sign-in
            // page's form, a page of ours moves on by `Refresh`, a plain
            // navigation, with a link for browsers that do not follow it.
            let mut resp = if q.via.as_deref() == Some("form") || by_domain {
                let host = reqwest::Url::parse(&started.url)
                    .ok()
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                let mut r = super::public_page(
                    p.req,
                    &p.state,
                    StatusCode::OK,
                    "Single sign-on",
                    None,
                    |_| {
                        html! {
                            section.card.narrow {
                                h1 { "Single sign-on" }
                                p { "Your organisation signs you in at " strong #sso-host { (host) } ". Continue only if that is your organisation's sign-in page." }
                                p { a.button #sso-continue href=(started.url) { "Continue to " (host) } }
                            }
                        }
                    },
                );
                if !by_domain && let Ok(v) = format!("0; url={}", started.url).parse() {
                    r.headers_mut().insert("refresh", v);
                }
                r
            } else {
                Redirect::see_other(started.url).into_response()
            };
            let max_age = p.state.config.file.sso.flow_minutes * 60;
            set_binding(&mut resp, &p.state, &started.binding, max_age);
            Ok(resp)
        }
        Ok(Err(r)) => Ok(refused_page(
            p.req,
            &p.state,
            StatusCode::BAD_GATEWAY,
            r.message(),
        )),
        Err(Error::NotFound(_)) => Ok(refused_page(
            p.req,
            &p.state,
            StatusCode::NOT_FOUND,
            "This workspace does not use single sign-on here. Sign in with your password or a passkey.",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Where an outcome leads: the workspace, the code step, the link page, or
/// the refusal.
fn answer(req: &Request, state: &AppState, out: Outcome, error: Option<&str>) -> Response {
    match out {
        Outcome::SignedIn { token, to, next } => {
            let to = next.unwrap_or(to);
            let mut resp = Redirect::see_other(to).into_response();
            if let Ok(v) = session_cookie(&state.config, &token).parse() {
                resp.headers_mut().append("set-cookie", v);
            }
            set_binding(&mut resp, state, "", 0);
            resp
        }
        Outcome::NeedsCode { pending, .. } => {
            super::pages::login_step(req, state, StatusCode::OK, None, "", Some(&pending))
        }
        Outcome::NeedsLink { token, email } => link_page(req, state, &token, &email, error),
        Outcome::Refused(r) => {
            let status = match r {
                Refusal::Unreachable => StatusCode::BAD_GATEWAY,
                Refusal::BadState | Refusal::Code => StatusCode::BAD_REQUEST,
                _ => StatusCode::FORBIDDEN,
            };
            refused_page(req, state, status, r.message())
        }
    }
}

/// `GET /auth/oidc/callback`: the provider sends the browser back here.
#[handler]
pub async fn callback(p: PublicPage<'_>) -> poem::Result<Response> {
    // A malformed query is a bad state like any other.
    let cb: Callback = p
        .req
        .uri()
        .query()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let b = binding(p.req, &p.state);
    let out = flow::finish(&p.state.deps(), &p.state.sso, cb, b.as_deref(), &p.meta).await?;
    Ok(answer(p.req, &p.state, out, None))
}

fn link_page(
    req: &Request,
    state: &AppState,
    token: &str,
    email: &str,
    error: Option<&str>,
) -> Response {
    let status = if error.is_some() {
        StatusCode::UNAUTHORIZED
    } else {
        StatusCode::OK
    };
    super::public_page(req, state, status, "Link your sign-in", None, |csrf| {
        html! {
            section.card.narrow {
                h1 { "Link your sign-in" }
                p { "An Aura account with " strong { (email) } " already exists. Your identity provider signed you in, but before it may sign in to that account, prove the account is yours." }
                @if let Some(e) = error { p.error role="alert" id="link-error" { (e) } }
                form method="post" action="/auth/oidc/link" id="link-form" {
                    (super::csrf_field(csrf))
                    input type="hidden" name="link" value=(token);
                    label for="link-password" { "The account's password" }
                    input #link-password type="password" name="password" autocomplete="current-password" required autofocus;
                    button type="submit" { "Link and sign in" }
                }
                @if state.mailer.configured() {
                    form method="post" action="/auth/oidc/link/mail" id="link-mail-form" {
                        (super::csrf_field(csrf))
                        input type="hidden" name="link" value=(token);
                        p.muted { "No password, or rather not type it here? We can mail that account a link that finishes this in this browser." }
                        button.secondary type="submit" { "Email me a link instead" }
                    }
                }
                p.muted { "Not your account? " a href="/login" { "Go back" } "; nothing was linked." }
            }
        }
    })
}

#[derive(Deserialize)]
pub struct LinkForm {
    #[serde(default)]
    link: String,
    #[serde(default)]
    password: String,
}

/// `POST /auth/oidc/link`: the existing account's password links the
/// provider's identity to it, from the browser that signed in there.
#[handler]
pub async fn link_submit(p: PublicPage<'_>, Form(form): Form<LinkForm>) -> poem::Result<Response> {
    let deps = p.state.deps();
    let b = binding(p.req, &p.state);
    if !account::link_waiting(&deps, &p.state.sso, &form.link, b.as_deref()) {
        return Ok(answer(
            p.req,
            &p.state,
            Outcome::Refused(Refusal::BadState),
            None,
        ));
    }
    let proof = account::Proof::Password(form.password);
    match account::prove_link(
        &deps,
        &p.state.sso,
        &form.link,
        b.as_deref(),
        proof,
        &p.meta,
    )
    .await
    {
        Ok(out) => Ok(answer(p.req, &p.state, out, None)),
        Err(Error::InvalidCredentials | Error::Unauthenticated) => {
            let email = account::link_email(&deps, &p.state.sso, &form.link)
                .await?
                .unwrap_or_default();
            Ok(link_page(
                p.req,
                &p.state,
                &form.link,
                &email,
                Some("That password is not right. Try again, or go back."),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /auth/oidc/link/mail`: mails the existing account a link that
/// finishes linking in this browser.
#[handler]
pub async fn link_mail(p: PublicPage<'_>, Form(form): Form<LinkForm>) -> poem::Result<Response> {
    let b = binding(p.req, &p.state);
    if !account::mail_link(
        &p.state.deps(),
        &p.state.sso,
        &form.link,
        b.as_deref(),
        &p.meta,
    )
    .await?
    {
        return Ok(answer(
            p.req,
            &p.state,
            Outcome::Refused(Refusal::BadState),
            None,
        ));
    }
    Ok(super::public_page(
        p.req,
        &p.state,
        StatusCode::OK,
        "Check your mail",
        None,
        |_| {
            html! {
                section.card.narrow {
                    h1 { "Check your mail" }
                    p id="link-mail-sent" { "We mailed that account a link. Open it in this browser to finish; it works once, for a few minutes." }
                }
            }
        },
    ))
}

/// `GET /auth/oidc/link/:token`: the mailed link's page, with the button
/// that finishes it (a mail scanner fetching the link changes nothing).
#[handler]
pub async fn link_mail_page(
    p: PublicPage<'_>,
    poem::web::Path(token): poem::web::Path<String>,
) -> Response {
    if !account::mail_link_live(&p.state.deps(), &p.state.sso, &token) {
        return refused_page(
            p.req,
            &p.state,
            StatusCode::NOT_FOUND,
            Refusal::BadState.message(),
        );
    }
    super::public_page(
        p.req,
        &p.state,
        StatusCode::OK,
        "Link your sign-in",
        None,
        |csrf| {
            html! {
                section.card.narrow {
                    h1 { "Link your sign-in" }
                    p { "Link your organisation's sign-in to this Aura account and sign in." }
                    form method="post" action=(format!("/auth/oidc/link/{token}")) id="link-mail-finish" {
                        (super::csrf_field(csrf))
                        button type="submit" { "Link and sign in" }
                    }
                }
            }
        },
    )
}

/// `POST /auth/oidc/link/:token`: finishes the mailed link in the browser
/// that asked for it.
#[handler]
pub async fn link_mail_redeem(
    p: PublicPage<'_>,
    poem::web::Path(token): poem::web::Path<String>,
) -> poem::Result<Response> {
    let b = binding(p.req, &p.state);
    let out =
        account::redeem_mail_link(&p.state.deps(), &p.state.sso, &token, b.as_deref(), &p.meta)
            .await?;
    Ok(answer(p.req, &p.state, out, None))
}
