//! TOTP codes as an authenticator app computes them (RFC 6238 via totp-rs),
//! for tests that enrol and sign in with a second factor.

use totp_rs::{Algorithm, Secret, TOTP};

fn totp(secret_base32: &str) -> TOTP {
    let bytes = Secret::Encoded(secret_base32.to_owned())
        .to_bytes()
        .unwrap();
    TOTP::new(Algorithm::SHA1, 6, 1, 30, bytes, None, String::new()).unwrap()
}

/// The code for `unix` seconds.
pub fn code_at(secret_base32: &str, unix: u64) -> String {
    totp(secret_base32).generate(unix)
}

/// The code for now.
pub fn code_now(secret_base32: &str) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    code_at(secret_base32, now)
}
