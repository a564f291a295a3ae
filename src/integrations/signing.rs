//! Standard Webhooks signatures (<https://www.standardwebhooks.com>): the
//! headers `webhook-id`, `webhook-timestamp` and `webhook-signature`, where a
//! signature is `v1,` + base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))
//! and a secret is `whsec_` + base64(key). Several signatures may travel in
//! one header, separated by spaces (during a secret's rotation overlap).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

pub const SECRET_PREFIX: &str = "whsec_";
/// How far a signed timestamp may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

/// A new endpoint secret: `whsec_` and 24 random bytes in base64.
pub fn generate_secret() -> String {
    let mut key = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut key);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(key))
}

/// The HMAC key of a secret: the decoded bytes of a `whsec_` secret, else the
/// secret's own bytes (senders such as GitHub share plain strings).
pub fn key_of(secret: &str) -> Vec<u8> {
    match secret.strip_prefix(SECRET_PREFIX) {
        Some(b64) => STANDARD
            .decode(b64)
            .unwrap_or_else(|_| secret.as_bytes().to_vec()),
        None => secret.as_bytes().to_vec(),
    }
}

fn mac(key: &[u8], msg_id: &str, timestamp: i64, body: &[u8]) -> Option<Vec<u8>> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    Some(m.finalize().into_bytes().to_vec())
}

/// `v1,<base64>` for one secret.
pub fn sign(secret: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    let sig = mac(&key_of(secret), msg_id, timestamp, body).unwrap_or_default();
    format!("v1,{}", STANDARD.encode(sig))
}

/// The `webhook-signature` header value for the given secrets (the current
/// one first, then any still in their overlap).
pub fn signature_header(secrets: &[String], msg_id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets
        .iter()
        .map(|s| sign(s, msg_id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whether any `v1` signature in `header` was made with any of `secrets`
/// (compared in constant time).
pub fn verify(secrets: &[String], header: &str, msg_id: &str, timestamp: i64, body: &[u8]) -> bool {
    let sent: Vec<Vec<u8>> = header
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b| STANDARD.decode(b).ok())
        .collect();
    let mut ok = false;
    for secret in secrets {
        let Some(want) = mac(&key_of(secret), msg_id, timestamp, body) else {
            continue;
        };
        for s in &sent {
            ok |= bool::from(s.as_slice().ct_eq(want.as_slice()));
        }
    }
    ok
}

/// Whether a signed timestamp is within the tolerance window of `now`.
pub fn fresh(timestamp: i64, now: i64) -> bool {
    // `abs_diff`: the timestamp is whatever the sender wrote (any i64).
    now.abs_diff(timestamp) <= TOLERANCE_SECS.unsigned_abs()
}

#[cfg(test)]
mod tests {
    use super::*;

    // The published Standard Webhooks test vector.
    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    const ID: &str = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    const TS: i64 = 1614265330;
    const BODY: &[u8] = br#"{"test": 2432232314}"#;
    const SIG: &str = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

    #[test]
    fn standard_webhooks_test_vector() {
        assert_eq!(sign(SECRET, ID, TS, BODY), SIG);
        assert!(verify(&[SECRET.into()], SIG, ID, TS, BODY));
    }

    #[test]
    fn wrong_inputs_do_not_verify() {
        let s = vec![SECRET.to_owned()];
        assert!(!verify(&s, SIG, ID, TS + 1, BODY));
        assert!(!verify(&s, SIG, "msg_other", TS, BODY));
        assert!(!verify(&s, SIG, ID, TS, br#"{"test": 2432232315}"#));
        assert!(!verify(&[generate_secret()], SIG, ID, TS, BODY));
        assert!(!verify(
            &s,
            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ID,
            TS,
            BODY
        ));
        assert!(!verify(&s, "", ID, TS, BODY));
    }

    #[test]
    fn rotation_overlap_signs_with_both() {
        let new = generate_secret();
        assert!(new.starts_with(SECRET_PREFIX) && key_of(&new).len() == 24);
        let h = signature_header(&[new.clone(), SECRET.into()], ID, TS, BODY);
        assert!(h.contains(SIG) && h.split(' ').count() == 2);
        assert!(verify(&[SECRET.into()], &h, ID, TS, BODY));
        assert!(verify(&[new], &h, ID, TS, BODY));
    }

    #[test]
    fn timestamps_outside_five_minutes_are_stale() {
        assert!(fresh(1000, 1300) && fresh(1300, 1000));
        assert!(!fresh(1000, 1301) && !fresh(1301, 1000));
    }
}

#[cfg(test)]
#[path = "signing_proptests.rs"]
mod proptests;
