//! The envelope around every request: a request id, a tracing span, the
//! same-origin rule for state-changing requests, security headers, and the
//! conversion of errors into problem+json (API) or a friendly page (UI).
//! Only the path is logged, never the query string or a body.

use std::sync::Arc;
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};
use tracing::Instrument;

use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::web::problem::Problem;

pub use super::body_limits::{
    DEFAULT_BODY_LIMIT, FILE_BODY_LIMIT, IMPORT_BODY_LIMIT, REQUEST_DEADLINE, body_limit_for,
};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; \
form-action 'self'";

pub async fn envelope<E: Endpoint>(next: E, mut req: Request) -> poem::Result<Response> {
    let started = Instant::now();
    let request_id = uuid::Uuid::now_v7().to_string();
    let state = req.data::<Arc<AppState>>().cloned();
    let client = client_ip(&req, state.as_deref());
    let ip = client.map(|a| a.to_string());
    let hsts = state
        .as_ref()
        .is_some_and(|s| !s.config.dev && (s.config.tls_on() || forwarded_https(&req, s)));
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.chars().take(256).collect());
    req.set_data(RequestMeta {
        ip,
        user_agent,
        request_id: Some(request_id.clone()),
    });
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    // A page asked for while signed out comes back after the sign-in.
    let back_to = (method == Method::GET)
        .then(|| req.uri().path_and_query().map(|p| p.as_str().to_owned()))
        .flatten();
    let is_api = path.starts_with("/api/");
    let is_scim = path.starts_with("/scim/");
    let (logged_path, route_label) = path_forms(&path);
    let span =
        tracing::info_span!("request", id = %request_id, method = %method, path = %logged_path);

    let (rate, rate_refused) = rate_decision(&req, state.as_deref(), client);
    if let Some(d) = &rate {
        // For `SignedIn` to mark the credential verified (see `web::rate`).
        req.set_data(d.marker());
    }
    let work = async {
        if let Some(refused) = rate_refused {
            return Ok(if is_scim {
                crate::web::scim::rate_refused(refused)
            } else {
                refused
            });
        }
        if let Err(p) = check_origin(&req) {
            return Err(poem::Error::from(p));
        }
        // Held until the response: the bytes it buffered count against the
        // global budget for that long.
        let _reserved = limit_body(&mut req, state.as_deref(), client).await?;
        // Inbound webhooks take no session: they authenticate by signature.
        // SCIM takes its bearer token only, never a cookie: no form, no CSRF.
        if let Some(st) = state
            .as_ref()
            .filter(|_| !path.starts_with("/hooks/") && !is_scim)
        {
            crate::web::csrf::check_form(&req, st).map_err(poem::Error::from)?;
        }
        next.call(req).await.map(IntoResponse::into_response)
    }
    .instrument(span.clone());
    let result = match tokio::time::timeout(REQUEST_DEADLINE, work).await {
        Ok(r) => r,
        Err(_) => Err(poem::Error::from(
            Problem::new(
                StatusCode::REQUEST_TIMEOUT,
                "urn:aura:problem:timeout",
                "Request took too long",
            )
            .detail("the request did not complete in time; try again"),
        )),
    };

    let mut resp = match result {
        Ok(r) => r,
        Err(err) => {
            let problem = span.in_scope(|| Problem::from_poem(&err));
            if is_scim {
                crate::web::scim::error_response(&problem)
            } else if is_api
                || path.starts_with("/healthz")
                || path.starts_with("/readyz")
                || path.starts_with("/hooks/")
            {
                problem.into_response()
            } else {
                crate::web::ui::error_page(&problem, back_to.as_deref())
            }
        }
    };
    if resp.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(allow) = crate::web::api::spec::allowed_methods(&path)
    {
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static(allow));
    }
    if let (Some(st), Some(d)) = (&state, &rate) {
        st.rates.finish(d, &mut resp);
    }
    let status = resp.status();
    if let Some(st) = &state {
        st.metrics.record(status.as_u16());
        st.metrics.observe(
            method.as_str(),
            &route_label,
            status.as_u16(),
            started.elapsed().as_secs_f64(),
        );
    }
    set_security_headers(&mut resp, &request_id, &path);
    if hsts {
        resp.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        );
    });
    Ok(resp)
}

/// Path segments that may appear in logs as they are. Anything else (a name
/// in a mistyped URL, a future slug) is logged as `_`, so a person-typed path
/// never reaches the log; ids (UUIDs) are kept because they are not personal.
const ROUTE_WORDS: &[&str] = &[
    "api",
    "v1",
    "auth",
    "login",
    "logout",
    "me",
    "workspaces",
    "healthz",
    "readyz",
    "metrics",
    "openapi.json",
    "assets",
    "app.css",
    "app.js",
    "favicon.ico",
    "trust",
    "trust.json",
    ".well-known",
    "security.txt",
    "w",
    "audit",
    "export",
    "entries",
    "status",
    "verify",
    "settings",
    "platform",
    "backups",
    "run",
    "drill",
    "collections",
    "records",
    "history",
    "restore",
    "import",
    "teams",
    "members",
    "remove",
    "delete",
    "schema",
    "new",
    "c",
    "r",
    "token",
    "refresh",
    "sessions",
    "password",
    "account",
    "end",
    "mfa",
    "totp",
    "start",
    "confirm",
    "mfa-policy",
    "role",
    "service-accounts",
    "tokens",
    "revoke",
    "suspend",
    "resume",
    "impersonate",
    "impersonation",
    "invitations",
    "invite",
    "accept",
    "magic",
    "magic-link",
    "reset",
    "password-reset",
    "passkeys",
    "passkey",
    "register",
    "finish",
    "integrations",
    "secrets",
    "rotate",
    "webhooks",
    "rotate-secret",
    "deliveries",
    "redeliver",
    "inbound",
    "events",
    "hooks",
    "scim",
    "v2",
    "Users",
    "Groups",
    "ServiceProviderConfig",
    "ResourceTypes",
    "Schemas",
];

/// A path segment that is a UUID in any form `uuid` parses (checked by
/// length first: most segments are not).
fn is_uuid(seg: &str) -> bool {
    matches!(seg.len(), 32 | 36 | 38 | 45) && uuid::Uuid::parse_str(seg).is_ok()
}

/// The path as logged (route words and ids kept, anything else `_`) and as
/// a metrics label of bounded cardinality (ids as `:id` too), in one pass.
pub fn path_forms(path: &str) -> (String, String) {
    let (mut logged, mut label) = (
        String::with_capacity(path.len()),
        String::with_capacity(path.len()),
    );
    for (i, seg) in path.split('/').enumerate() {
        // An id is far longer than any route word, so it is tried first.
        let (l, r) = if is_uuid(seg) {
            (seg, ":id")
        } else if seg.is_empty() || ROUTE_WORDS.contains(&seg) {
            (seg, seg)
        } else {
            ("_", "_")
        };
        if i > 0 {
            logged.push('/');
            label.push('/');
        }
        logged.push_str(l);
        label.push_str(r);
    }
    (logged, label)
}

pub fn loggable_path(path: &str) -> String {
    path_forms(path).0
}

/// The source IP: the peer, unless the peer is a trusted proxy, in which case
/// the right-most address in `X-Forwarded-For` that is not itself a trusted
/// proxy.
pub fn client_ip(req: &Request, state: Option<&AppState>) -> Option<std::net::IpAddr> {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip())?;
    let trusted = state
        .map(|s| s.config.trusted_proxies.as_slice())
        .unwrap_or(&[]);
    let is_trusted = |ip: &std::net::IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<std::net::IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .into_iter()
            .rev()
            .find(|ip| !is_trusted(ip))
            .unwrap_or(peer),
    )
}

/// `X-Forwarded-Proto: https` from a trusted proxy: the client's hop was TLS.
fn forwarded_https(req: &Request, state: &AppState) -> bool {
    let Some(peer) = req.remote_addr().as_socket_addr().map(|a| a.ip()) else {
        return false;
    };
    state
        .config
        .trusted_proxies
        .iter()
        .any(|n| n.contains(&peer))
        && req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.eq_ignore_ascii_case("https"))
}

/// The request budget's verdict (`web::rate`): the decision to apply to
/// the response, or the 429 to send instead of calling the handler.
fn rate_decision(
    req: &Request,
    state: Option<&AppState>,
    client: Option<std::net::IpAddr>,
) -> (Option<crate::web::rate::Decision>, Option<Response>) {
    match state.and_then(|s| s.rates.decide(req, s, client)) {
        Some(Ok(d)) => (Some(d), None),
        Some(Err(refused)) => (None, Some(refused)),
        None => (None, None),
    }
}

/// A large body (a CSV import) is read by its handler only after it has
/// authenticated and authorised the caller; one without any credential is
/// refused here, unread.
fn require_credential(req: &Request, state: Option<&AppState>) -> poem::Result<()> {
    let has_bearer = req.headers().contains_key(header::AUTHORIZATION);
    let has_session =
        state.is_some_and(|s| crate::web::session::token_from_request(req, &s.config).is_some());
    if has_bearer || has_session {
        Ok(())
    } else {
        Err(poem::Error::from(crate::error::Error::Unauthenticated))
    }
}

/// Reads a request body up to the limit, so no handler ever sees more, after
/// reserving its size from the global budget for buffered bytes (the
/// reservation is returned). Bodies above the default limit are left to
/// their handler (see `require_credential`).
async fn limit_body(
    req: &mut Request,
    state: Option<&AppState>,
    client: Option<std::net::IpAddr>,
) -> poem::Result<Option<crate::web::budget::Reserved>> {
    let limit = body_limit_for(req.method(), req.uri().path());
    let too_large = || {
        poem::Error::from(
            Problem::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "urn:aura:problem:too-large",
                "Request body too large",
            )
            .detail(format!("the limit is {limit} bytes")),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(None);
    }
    if limit > DEFAULT_BODY_LIMIT {
        return require_credential(req, state).map(|()| None);
    }
    let reserved = match state {
        Some(s) => {
            // Keyed as the connection limits are: a trusted proxy's own
            // address (no client behind it named) is exempt.
            let limits = &s.config.file.limits;
            let net = client
                .filter(|ip| !s.config.trusted_proxies.iter().any(|n| n.contains(ip)))
                .map(|ip| crate::identity::netkey::network(ip, limits).to_string());
            Some(
                s.bodies
                    .reserve_for(declared.unwrap_or(limit).min(limit), net)
                    .await
                    .map_err(poem::Error::from)?,
            )
        }
        None => None,
    };
    // A body that trickles in would hold its reservation until the request
    // deadline: it must arrive whole within the body-read deadline.
    let within = std::time::Duration::from_secs(
        state.map_or(10, |s| s.config.file.limits.body_read_timeout_secs),
    );
    let bytes = match tokio::time::timeout(within, req.take_body().into_bytes_limit(limit)).await {
        Ok(r) => r.map_err(|_| too_large())?,
        Err(_) => {
            return Err(poem::Error::from(
                Problem::new(
                    StatusCode::REQUEST_TIMEOUT,
                    "urn:aura:problem:timeout",
                    "Request body took too long",
                )
                .detail(format!(
                    "the request body did not arrive within {} s",
                    within.as_secs()
                )),
            ));
        }
    };
    req.set_data(crate::web::csrf::FormBody(bytes.to_vec()));
    req.set_body(bytes);
    Ok(reserved)
}

fn set_security_headers(resp: &mut Response, request_id: &str, path: &str) {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(request_id) {
        h.insert("x-request-id", v);
    }
    // A file download sets its own (sandboxed) policy; everything else
    // gets the app's.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        "permissions-policy",
        HeaderValue::from_static(
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
        ),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "cross-origin-resource-policy",
        HeaderValue::from_static("same-origin"),
    );
    if !path.starts_with("/assets/") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// A request that changes state must come from this site: an `Origin` that is
/// present must match, and a cookie-carrying request must show a matching
/// `Origin` or `Referer`. (Synchronizer tokens for forms come with the web
/// hardening issue.)
fn check_origin(req: &Request) -> Result<(), Problem> {
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let forbidden = || {
        Problem::new(
            StatusCode::FORBIDDEN,
            "urn:aura:problem:cross-origin",
            "Cross-origin request refused",
        )
        .detail("state-changing requests must come from this site")
    };
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    if *req.method() == Method::OPTIONS && origin.is_some() {
        // Aura answers no cross-origin preflight.
        return Err(forbidden());
    }
    if !unsafe_method {
        return Ok(());
    }
    // HTTP/2 carries the host in `:authority`, which lands in the URI.
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()));
    let public = req
        .data::<Arc<AppState>>()
        .map(|s| s.config.public_url.clone());
    let same_site = |url: &str| -> bool {
        let url = url.trim_end_matches('/');
        if public.as_deref() == Some(url) {
            return true;
        }
        let authority = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .map(|rest| rest.split('/').next().unwrap_or(""));
        matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
    };
    if let Some(o) = origin {
        return if same_site(o) {
            Ok(())
        } else {
            Err(forbidden())
        };
    }
    let has_cookie = req.headers().contains_key(header::COOKIE);
    if has_cookie {
        let referer = req
            .headers()
            .get(header::REFERER)
            .and_then(|v| v.to_str().ok());
        match referer {
            Some(r) if same_site(r) => Ok(()),
            _ => Err(forbidden()),
        }
    } else {
        Ok(())
    }
}

#[cfg(test)]
#[path = "middleware_tests.rs"]
mod tests;
