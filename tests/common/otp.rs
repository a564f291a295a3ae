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

/// Unix seconds now, as the server's clock (without an offset) sees them.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The code of the step after the current one. The server accepts one step
/// of skew, so this works right after the current step's code was spent.
pub fn code_next(secret_base32: &str) -> String {
    code_at(secret_base32, now() + 30)
}

/// A six-digit code that matches no step within two of now: a wrong code
/// that cannot be right by chance.
pub fn wrong_code(secret_base32: &str) -> String {
    let t = now();
    let near: Vec<String> = (0..=4)
        .map(|i| code_at(secret_base32, (t + i * 30).saturating_sub(60)))
        .collect();
    (0..)
        .map(|n: u32| format!("{:06}", (123_456 + n * 7919) % 1_000_000))
        .find(|c| !near.contains(c))
        .unwrap()
}
