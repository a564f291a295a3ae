//! The email address rule, shared by accounts (`identity::users`) and email
//! fields of records (`model::values`).

use crate::error::{Error, Result};

const MAX_EMAIL_LEN: usize = 254;

/// A deliberately small check: one `@`, something on both sides, a dot in the
/// domain, no spaces. Deliverability is proven by invitations, not regexes.
pub fn validate_email(field: &str, email: &str) -> Result<String> {
    let e = email.trim();
    let ok = e.len() <= MAX_EMAIL_LEN
        && !e.chars().any(char::is_whitespace)
        && matches!(e.split_once('@'), Some((l, d)) if !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.') && !d.contains('@'));
    if ok {
        Ok(e.to_owned())
    } else {
        Err(Error::field(
            field,
            "must be an email address like name@example.com",
        ))
    }
}
