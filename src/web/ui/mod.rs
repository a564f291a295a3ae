//! Server-rendered pages (maud). No inline script or style: the CSP forbids it,
//! and everything the pages load is embedded in the binary.

pub mod access;
pub mod account;
pub mod admin_page;
pub mod audit;
pub mod backups;
pub mod flash;
pub mod forms;
pub mod integrations;
pub mod invite;
pub mod keys;
pub mod lifecycle;
pub mod magic;
pub mod names;
pub mod notices;
pub mod pages;
pub mod platform;
pub mod platform_accounts;
pub mod privacy;
pub mod record_files;
pub mod record_form;
pub mod records;
pub mod schema;
mod schema_fields;
pub mod schema_retention;
pub mod scim;
pub mod sent;
pub mod shell;
pub mod sso;
pub mod sso_settings;
pub mod teams;
pub mod trust;

use maud::{DOCTYPE, Markup, html};
use poem::http::StatusCode;
use poem::{IntoResponse, Response};

use crate::web::problem::Problem;

/// What the header shows about the signed-in person.
pub struct Chrome<'a> {
    pub email: Option<&'a str>,
    /// The CSRF token every form on the page carries.
    pub csrf: &'a str,
    /// Platform staff inside a recorded impersonation: a banner on every page.
    pub impersonating: Option<&'a crate::store::platform::Impersonation>,
    /// The name of the workspace being impersonated.
    pub impersonated_name: Option<&'a str>,
    /// A workspace's page: its name, switcher, sections and read-only banner.
    pub workspace: Option<&'a shell::WorkspaceNav>,
    /// Platform staff see a link to the platform area.
    pub platform_admin: bool,
}

impl Chrome<'_> {
    /// A page for no one in particular (the trust page, an error).
    pub const ANONYMOUS: Chrome<'static> = Chrome {
        email: None,
        csrf: "",
        impersonating: None,
        impersonated_name: None,
        workspace: None,
        platform_admin: false,
    };
}

/// The hidden field that carries the CSRF token in a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(crate::web::csrf::FIELD) value=(token); }
}

/// A one-button form that posts one hidden field: a row's action (remove,
/// revoke, delete, restore). `button` is the button's class and label.
pub fn row_action(
    token: &str,
    action: &str,
    (field, value): (&str, &dyn maud::Render),
    (class, label): (&str, &str),
) -> Markup {
    html! {
        form method="post" action=(action)
            data-confirm=[(class == "danger").then(|| format!("{label}: are you sure? This cannot be undone."))]
            data-confirm-label=[(class == "danger").then_some(label)] {
            (csrf_field(token))
            input type="hidden" name=(field) value=(value);
            button class=(class) type="submit" { (label) }
        }
    }
}

pub fn layout(title: &str, chrome: &Chrome<'_>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · Aura" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a.skip-link href="#main" { "Skip to content" }
                header.topbar {
                    a.brand href="/" { "Aura" }
                    @if let Some(email) = chrome.email {
                        nav aria-label="Account" {
                            a href="/workspaces" { "Workspaces" }
                            @if chrome.platform_admin { a href="/platform" { "Platform" } }
                            a.who href="/account" { (email) }
                            form method="post" action="/logout" {
                                (csrf_field(chrome.csrf))
                                button.link type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                @if let Some(i) = chrome.impersonating {
                    div.banner role="alert" id="impersonation-banner" {
                        "Impersonating workspace "
                        a href=(format!("/w/{}", i.workspace_id)) {
                            @match chrome.impersonated_name { Some(n) => { (n) }, None => { code { (i.workspace_id) } } }
                        }
                        " as " strong { (i.role.as_str()) } " until " (crate::clock::rfc3339(i.expires_at))
                        ". Reason: " em { (i.reason) } ". Everything you do is recorded in its audit log. "
                        form.inline-end method="post" action="/platform/impersonation/end" {
                            (csrf_field(chrome.csrf))
                            button.secondary type="submit" { "End impersonation" }
                        }
                    }
                }
                @match chrome.workspace {
                    Some(w) => {
                        div.shell {
                            (shell::sidebar(w))
                            main id="main" tabindex="-1" { (shell::frozen_banner(w)) (body) }
                        }
                    }
                    None => { main id="main" tabindex="-1" { (body) } }
                }
                footer { "Aura " (env!("CARGO_PKG_VERSION")) }
            }
        }
    }
}

pub fn html_response(status: StatusCode, markup: Markup) -> Response {
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// A page for someone who may not be signed in (sign-in, links by mail,
/// invitations): its forms carry the pre-session CSRF token, whose cookie is
/// set here when it is new.
pub fn public_page(
    req: &poem::Request,
    state: &crate::app::AppState,
    status: StatusCode,
    title: &str,
    email: Option<&str>,
    body: impl FnOnce(&str) -> Markup,
) -> Response {
    let (csrf, set_cookie) = crate::web::csrf::token_for(req, state);
    let markup = body(&csrf);
    let chrome = Chrome {
        email,
        csrf: &csrf,
        impersonating: None,
        impersonated_name: None,
        workspace: None,
        platform_admin: false,
    };
    let mut resp = html_response(status, layout(title, &chrome, markup));
    if let Some(c) = set_cookie.and_then(|c| c.parse().ok()) {
        resp.headers_mut().append("set-cookie", c);
    }
    resp
}

/// The friendly page for an error on a UI route; no internal detail. A
/// signed-out visit to a page (`back_to`) goes to the sign-in, then back.
pub fn error_page(p: &Problem, back_to: Option<&str>) -> Response {
    let status = p.status_code();
    if status == StatusCode::UNAUTHORIZED {
        let next =
            back_to.filter(|b| pages::same_site_path(b) && *b != "/" && !b.starts_with("/login"));
        return poem::web::Redirect::see_other(pages::login_url(next)).into_response();
    }
    let body = html! {
        section.card {
            h1 { (p.title) }
            @if let Some(d) = &p.detail { p { (d) } }
            @if p.kind == "urn:aura:problem:mfa-enrolment-required" {
                p { a.button href="/account#mfa" { "Set up two-factor sign-in" } }
            }
            @if p.kind == "urn:aura:problem:sso-required" {
                @if let Some(start) = back_to.and_then(sso::start_link_for) {
                    p { a.button #sso-continue href=(start) { "Continue with single sign-on" } }
                }
            }
            p { a href="/" { "Back to Aura" } }
        }
    };
    let mut resp = html_response(status, layout(p.title, &Chrome::ANONYMOUS, body));
    // A rate-limited page says when to come back, like the API does.
    if let Some(secs) = p.retry_after
        && let Ok(v) = secs.to_string().parse()
    {
        resp.headers_mut()
            .insert(poem::http::header::RETRY_AFTER, v);
    }
    resp
}
