//! CSRF defence for HTML forms, on top of the same-origin rule in the
//! middleware: every form post carries a synchronizer token. Signed in, the
//! token is a keyed hash of the session (so another session's token fails);
//! before sign-in (the login form) it is a random value also set as a cookie
//! (double submit). JSON calls are covered by the origin rule plus the
//! `application/json` content type, which no cross-site form can send.
//!
//! A state-changing UI route takes nothing but a form body
//! (`application/x-www-form-urlencoded` or `multipart/form-data`): any other
//! content type, or none, is refused with 415 before the token is looked
//! for, so no body can reach a form handler without passing the token check.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use poem::Request;
use poem::http::{Method, StatusCode};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::config::Config;
use crate::crypto::token::{hash_token, random_token};
use crate::web::problem::Problem;
use crate::web::session::{cookie, token_from_request};

pub const FIELD: &str = "csrf";
const PRE_SESSION_COOKIE: &str = "aura_csrf";
const PRE_SESSION_COOKIE_TLS: &str = "__Host-aura_csrf";

fn cookie_name(cfg: &Config) -> &'static str {
    if cfg.secure_cookies() {
        PRE_SESSION_COOKIE_TLS
    } else {
        PRE_SESSION_COOKIE
    }
}

fn session_token(state: &AppState, session_hash: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(
        state
            .control
            .keys
            .blind
            .compute("csrf.session", &hex::encode(session_hash)),
    )
}

/// The token a page embeds in its forms, and a `Set-Cookie` value when a
/// pre-session token had to be created.
pub fn token_for(req: &Request, state: &AppState) -> (String, Option<String>) {
    if let Some(t) = token_from_request(req, &state.config) {
        return (session_token(state, &hash_token(&t)), None);
    }
    let name = cookie_name(&state.config);
    if let Some(v) = cookie(req, name) {
        return (v, None);
    }
    let v = random_token();
    let secure = if state.config.secure_cookies() {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!("{name}={v}; Path=/; HttpOnly; SameSite=Lax{secure}");
    (v, Some(cookie))
}

fn is_form(req: &Request) -> bool {
    req.content_type()
        .and_then(|c| c.parse::<mime::Mime>().ok())
        .is_some_and(|m| {
            (m.type_() == mime::APPLICATION && m.subtype() == mime::WWW_FORM_URLENCODED)
                || (m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA)
        })
}

fn is_multipart(req: &Request) -> bool {
    req.content_type()
        .and_then(|c| c.parse::<mime::Mime>().ok())
        .is_some_and(|m| m.type_() == mime::MULTIPART && m.subtype() == mime::FORM_DATA)
}

fn refused(detail: &str) -> Problem {
    Problem::new(
        StatusCode::FORBIDDEN,
        "urn:aura:problem:csrf",
        "Form expired or forged",
    )
    .detail(detail.to_owned())
}

/// A state-changing request outside the JSON API: a UI form post. (Inbound
/// webhooks under `/hooks/` are not checked here at all; see the middleware.)
fn is_ui_write(req: &Request) -> bool {
    !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS)
        && !req.uri().path().starts_with("/api/")
}

fn not_a_form() -> Problem {
    Problem::new(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "urn:aura:problem:not-a-form",
        "Only form posts are accepted here",
    )
    .detail(
        "this address takes application/x-www-form-urlencoded or multipart/form-data; reload the page and try again",
    )
}

/// Checks a form post's token; a UI write that is not a form is refused
/// first. Multipart forms send the token in the `x-csrf-token` header or,
/// without JavaScript, as `csrf` in the query string (the body is streamed
/// to its handler, never parsed here).
pub fn check_form(req: &Request, state: &AppState) -> Result<(), Problem> {
    if !is_form(req) {
        return if is_ui_write(req) {
            Err(not_a_form())
        } else {
            Ok(())
        };
    }
    let sent = if let Some(h) = req
        .headers()
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
    {
        Some(h.to_owned())
    } else if is_multipart(req) {
        req.uri().query().and_then(|q| {
            serde_urlencoded::from_str::<Vec<(String, String)>>(q)
                .ok()
                .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v))
        })
    } else {
        let body = req
            .data::<FormBody>()
            .map(|b| b.0.as_slice())
            .unwrap_or_default();
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
            .ok()
            .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == FIELD).map(|(_, v)| v))
    };
    let Some(sent) = sent else {
        return Err(refused(
            "the form has no CSRF token; reload the page and try again",
        ));
    };
    let expected = match token_from_request(req, &state.config) {
        Some(t) => session_token(state, &hash_token(&t)),
        None => cookie(req, cookie_name(&state.config))
            .ok_or_else(|| refused("reload the page and try again"))?,
    };
    if bool::from(sent.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err(refused("reload the page and try again"))
    }
}

/// A copy of a buffered form body, so the check can read it before the handler.
#[derive(Clone)]
pub struct FormBody(pub Vec<u8>);
