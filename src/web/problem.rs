//! The one mapping from domain errors to HTTP: RFC 9457 problem+json for the
//! API. Internal details are logged with the request's span and never sent.

use poem::error::ResponseError;
use poem::http::{StatusCode, header};
use poem::{IntoResponse, Response};
use serde::Serialize;

use crate::error::{Error, FieldError};
use crate::model::Frozen;

pub const PROBLEM_JSON: &str = "application/problem+json";
pub const DISK_FULL: &str = "urn:aura:problem:disk-full";

#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    #[serde(skip)]
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.title, self.status)
    }
}

impl std::error::Error for Problem {}

impl Problem {
    pub fn new(status: StatusCode, kind: &'static str, title: &'static str) -> Self {
        Self {
            kind,
            title,
            status: status.as_u16(),
            detail: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.detail = Some(d.into());
        self
    }

    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        Self {
            errors,
            ..Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "urn:aura:problem:validation",
                "The request has invalid fields",
            )
            .detail(detail)
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "urn:aura:problem:bad-request",
            "Bad request",
        )
        .detail(detail)
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "urn:aura:problem:not-found",
            "Not found",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "urn:aura:problem:internal",
            "Internal error",
        )
        .detail("the error was logged; quote the x-request-id header when reporting it")
    }

    /// 507: the write could not be stored because the disk is full. Nothing
    /// was written (the transaction rolled back); reads still work.
    pub fn disk_full() -> Self {
        Self::new(
            StatusCode::INSUFFICIENT_STORAGE,
            DISK_FULL,
            "Insufficient storage",
        )
        .detail("the server's disk is full; an operator must free space. Nothing was written; retry later")
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    /// For errors raised by poem itself (no route, wrong method, payload limits).
    pub fn from_poem(err: &poem::Error) -> Self {
        if let Some(p) = err.downcast_ref::<Problem>() {
            return p.clone();
        }
        let status = err.status();
        match status {
            StatusCode::NOT_FOUND => Self::not_found(),
            StatusCode::METHOD_NOT_ALLOWED => Self::new(
                status,
                "urn:aura:problem:method-not-allowed",
                "Method not allowed",
            ),
            StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                status,
                "urn:aura:problem:too-large",
                "Request body too large",
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => Self::new(
                status,
                "urn:aura:problem:media-type",
                "Unsupported media type",
            )
            .detail("send Content-Type: application/json"),
            s if s.is_client_error() => {
                Self::new(s, "urn:aura:problem:bad-request", "Bad request").detail(err.to_string())
            }
            _ => {
                tracing::error!(error = %err, "unhandled server error");
                Self::internal()
            }
        }
    }
}

impl From<Error> for Problem {
    fn from(e: Error) -> Self {
        if e.is_disk_full() {
            tracing::error!(error = %e, "disk full: writes fail until an operator frees space");
            return Self::disk_full();
        }
        match e {
            Error::NotFound(what) => Self::not_found().detail(format!("{what} not found")),
            Error::Unauthenticated => Self::new(
                StatusCode::UNAUTHORIZED,
                "urn:aura:problem:unauthenticated",
                "Sign-in required",
            ),
            Error::InvalidCredentials => Self::new(
                StatusCode::UNAUTHORIZED,
                "urn:aura:problem:invalid-credentials",
                "Invalid email or password",
            ),
            Error::Forbidden => Self::new(
                StatusCode::FORBIDDEN,
                "urn:aura:problem:forbidden",
                "Not allowed",
            ),
            Error::MfaRequired => Self::new(
                StatusCode::UNAUTHORIZED,
                "urn:aura:problem:mfa-required",
                "Authentication code required",
            )
            .detail("send the current code from your authenticator app, or a recovery code, as `totp`"),
            Error::MfaInvalid => Self::new(
                StatusCode::UNAUTHORIZED,
                "urn:aura:problem:mfa-invalid",
                "Invalid authentication code",
            ),
            Error::MfaEnrolmentRequired => Self::new(
                StatusCode::FORBIDDEN,
                "urn:aura:problem:mfa-enrolment-required",
                "Two-factor sign-in required",
            )
            .detail("this workspace requires two-factor sign-in; set it up on your account page (/account)"),
            Error::SsoRequired => Self::new(
                StatusCode::FORBIDDEN,
                "urn:aura:problem:sso-required",
                "Single sign-on required",
            )
            .detail("this workspace requires single sign-on: sign in through your organisation's identity provider (/auth/oidc/start?workspace=ID); passwords, emailed links and personal API tokens are not accepted here"),
            Error::NotWhileImpersonating => Self::new(
                StatusCode::FORBIDDEN,
                "urn:aura:problem:not-while-impersonating",
                "Not while impersonating",
            )
            .detail("platform staff cannot create tokens, service accounts, invitations, integrations, memberships or role changes during an impersonation; ask the workspace's owner or admins"),
            Error::AccountNeedsSignIn => Self::new(
                StatusCode::FORBIDDEN,
                "urn:aura:problem:account-needs-sign-in",
                "Sign in to manage your account",
            )
            .detail("a workspace API token cannot manage the account (sessions, second factors, password, deletion); use a browser session or an access token from /auth/token"),
            Error::Validation(errors) => Self::validation(errors),
            Error::Conflict(d) => Self::new(
                StatusCode::CONFLICT,
                "urn:aura:problem:conflict",
                "Conflict",
            )
            .detail(d),
            Error::WorkspaceReadOnly(state) => {
                let (kind, detail) = match state {
                    Frozen::Moving => (
                        "urn:aura:problem:workspace-moving",
                        "this workspace is being moved to another appliance and is read-only",
                    ),
                    Frozen::Deleting => (
                        "urn:aura:problem:workspace-deleting",
                        "this workspace is scheduled for deletion and is read-only; an owner can cancel the deletion on its settings page",
                    ),
                };
                Self::new(StatusCode::CONFLICT, kind, "Workspace is read-only").detail(detail)
            }
            Error::RateLimited { retry_after_secs } => Self {
                retry_after: Some(retry_after_secs),
                ..Self::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "urn:aura:problem:rate-limited",
                    "Too many requests",
                )
            },
            Error::TooLarge(d) => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "urn:aura:problem:too-large",
                "Too large",
            )
            .detail(d),
            Error::Integrity(what) => {
                tracing::error!(what, "stored data failed its integrity check");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "urn:aura:problem:integrity",
                    "Stored data failed its integrity check",
                )
                .detail(format!("{what} failed its integrity check and was not sent; an operator should restore it from a backup"))
            }
            Error::Usage(d) => Self::bad_request(d),
            Error::Unavailable(what) => {
                tracing::warn!(what, "service unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "urn:aura:problem:unavailable",
                    "Temporarily unavailable",
                )
            }
            other => {
                tracing::error!(error = %other, "internal error");
                Self::internal()
            }
        }
    }
}

impl From<Error> for poem::Error {
    fn from(e: Error) -> Self {
        poem::Error::from(Problem::from(e))
    }
}

impl ResponseError for Problem {
    fn status(&self) -> StatusCode {
        self.status_code()
    }

    fn as_response(&self) -> Response {
        let body = serde_json::to_vec(self).unwrap_or_default();
        let mut resp = Response::builder()
            .status(self.status_code())
            .header(header::CONTENT_TYPE, PROBLEM_JSON)
            .body(body);
        if let Some(secs) = self.retry_after {
            if let Ok(v) = secs.to_string().parse() {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == 401 {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                poem::http::HeaderValue::from_static("Cookie"),
            );
        }
        resp
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        self.as_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_disk_answers_507_and_names_the_cause() {
        let e = Error::Storage(rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            Some("database or disk is full".into()),
        ));
        let p = Problem::from(e);
        assert_eq!(p.status, 507);
        assert_eq!(p.kind, DISK_FULL);
        assert!(p.detail.unwrap_or_default().contains("disk is full"));
        let p = Problem::from(Error::Io(std::io::Error::from_raw_os_error(28)));
        assert_eq!(p.status, 507);
    }
}
