//! The domain's one error type. `web::problem` is the single place that maps it
//! to HTTP status codes and RFC 9457 problem documents; internal details stay in
//! the logs and never reach a response.

use serde::Serialize;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One invalid input, named by its field path (`email`, `fields[2].type`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Also used for rows that exist in another workspace: the caller must not
    /// be able to tell "missing" from "not yours".
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("authentication required")]
    Unauthenticated,
    /// Wrong password and unknown email are deliberately the same error.
    #[error("invalid email or password")]
    InvalidCredentials,
    #[error("not allowed")]
    Forbidden,
    /// The password was right; the account also needs its second factor.
    #[error("an authentication code is required")]
    MfaRequired,
    #[error("invalid authentication code")]
    MfaInvalid,
    /// The workspace requires a second factor the caller has not set up.
    #[error("this workspace requires two-factor sign-in")]
    MfaEnrolmentRequired,
    /// The workspace takes its members only through its identity provider.
    #[error("this workspace requires single sign-on")]
    SsoRequired,
    /// Platform staff inside an impersonation tried to hand out lasting
    /// access (a token, a service account, an invitation, a role).
    #[error("not while impersonating")]
    NotWhileImpersonating,
    /// An account-level change (sessions, second factors, password,
    /// deletion) with a workspace API token: only the person signed in
    /// manages their account.
    #[error("an API token cannot manage the account")]
    AccountNeedsSignIn,
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    #[error("{0}")]
    Conflict(String),
    /// The workspace is read-only: `deleting` (scheduled for deletion) or
    /// `moving` (being moved to another appliance).
    #[error("the workspace is read-only ({})", .0.as_str())]
    WorkspaceReadOnly(crate::model::Frozen),
    /// A body, file or quota limit was reached; the message names it.
    #[error("too large: {0}")]
    TooLarge(String),
    /// Stored data failed its authentication (a sealed file changed, cut
    /// or moved): nothing of it was handed out as content.
    #[error("integrity check failed: {0}")]
    Integrity(&'static str),
    #[error("too many requests")]
    RateLimited { retry_after_secs: u64 },
    #[error("not ready: {0}")]
    Unavailable(&'static str),
    #[error("crypto failure: {0}")]
    Crypto(&'static str),
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    #[error("configuration error: {0}")]
    Config(String),
    /// A command-line mistake; the message says what to do instead.
    #[error("{0}")]
    Usage(String),
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Validation errors re-attributed to `field` (a password policy checked
    /// for `new_password`, say); other errors unchanged.
    pub fn for_field(self, field: &str) -> Self {
        match self {
            Error::Validation(v) => Error::Validation(
                v.into_iter()
                    .map(|mut f| {
                        f.field = field.to_owned();
                        f
                    })
                    .collect(),
            ),
            other => other,
        }
    }

    /// A failed re-authentication, as an error on the form's password field.
    pub fn wrong_password(self, field: &str) -> Self {
        match self {
            Error::InvalidCredentials => Error::field(field, "is not your password"),
            other => other,
        }
    }

    /// A single-field validation error.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    }

    pub fn internal(what: impl std::fmt::Display) -> Self {
        Error::Internal(what.to_string())
    }

    /// The disk under the data dir (or under a backup, export or bundle
    /// being written) is full: SQLite's SQLITE_FULL or the OS's ENOSPC /
    /// EDQUOT, however deep in the chain of causes. Answered with 507, not
    /// 500, so an operator sees what to do (docs/operations.md).
    pub fn is_disk_full(&self) -> bool {
        match self {
            Error::Storage(e) => sqlite_disk_full(e),
            Error::Io(e) => io_disk_full(e),
            _ => false,
        }
    }
}

/// SQLITE_FULL, or an I/O error whose OS cause is a full disk.
pub fn sqlite_disk_full(e: &rusqlite::Error) -> bool {
    use std::error::Error as _;
    match e {
        rusqlite::Error::SqliteFailure(f, _) => f.code == rusqlite::ErrorCode::DiskFull,
        other => other
            .source()
            .and_then(|s| s.downcast_ref::<std::io::Error>())
            .is_some_and(io_disk_full),
    }
}

/// An I/O error while reading untrusted input into a file: a full disk stays
/// an I/O error (507, "free space"), anything else is the input's fault.
pub fn or_disk_full(e: std::io::Error, otherwise: impl FnOnce(std::io::Error) -> Error) -> Error {
    if io_disk_full(&e) {
        Error::Io(e)
    } else {
        otherwise(e)
    }
}

/// ENOSPC or EDQUOT, also when wrapped (age, zstd and tar wrap the writer's
/// error in their own `io::Error`).
pub fn io_disk_full(e: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    if matches!(e.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded) {
        return true;
    }
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        .is_some_and(io_disk_full)
}

impl From<tokio::task::JoinError> for Error {
    fn from(e: tokio::task::JoinError) -> Self {
        Error::Internal(format!("blocking task failed: {e}"))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(format!("json: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(code: std::os::raw::c_int) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), None)
    }

    #[test]
    fn a_full_disk_is_recognised_however_it_arrives() {
        assert!(Error::Storage(sqlite(rusqlite::ffi::SQLITE_FULL)).is_disk_full());
        assert!(
            Error::Io(std::io::Error::from_raw_os_error(28)).is_disk_full(),
            "ENOSPC"
        );
        assert!(
            Error::Io(std::io::Error::from_raw_os_error(122)).is_disk_full(),
            "EDQUOT"
        );
        // age, zstd and tar wrap the writer's error in an error of their own.
        let wrapped = std::io::Error::other(std::io::Error::from_raw_os_error(28));
        assert!(Error::Io(wrapped).is_disk_full());
        assert!(!Error::Storage(sqlite(rusqlite::ffi::SQLITE_BUSY)).is_disk_full());
        assert!(
            !Error::Io(std::io::Error::from_raw_os_error(5)).is_disk_full(),
            "EIO"
        );
        assert!(
            !Error::internal("disk full").is_disk_full(),
            "only typed causes"
        );
    }
}
