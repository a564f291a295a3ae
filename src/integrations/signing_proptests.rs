//! Hostile input for inbound webhook signatures: any header, message id,
//! timestamp, body or secret is answered (signed or not, fresh or not),
//! never with a panic.

use proptest::prelude::*;

use super::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_signature_header_is_answered(
        header in prop_oneof![".{0,300}", "(v1,[A-Za-z0-9+/=]{0,60} ?){0,5}"],
        id in ".{0,64}",
        timestamp in any::<i64>(),
        body in proptest::collection::vec(any::<u8>(), 0..512),
        secret in prop_oneof![Just(generate_secret()), ".{0,80}"],
    ) {
        let signed = verify(std::slice::from_ref(&secret), &header, &id, timestamp, &body);
        // A header that carries no `v1,` signature never verifies.
        prop_assert!(!signed || header.contains("v1,"));
    }

    #[test]
    fn any_timestamp_is_fresh_or_not(timestamp in any::<i64>(), now in any::<i64>()) {
        let fresh = fresh(timestamp, now);
        prop_assert_eq!(fresh, now.abs_diff(timestamp) <= TOLERANCE_SECS.unsigned_abs());
    }
}

/// A sender's `webhook-timestamp` is any i64 it likes: `now - timestamp`
/// overflowed (a panic in debug builds; in release a wrapped difference
/// whose `abs()` stays negative, so a timestamp 2^63 seconds away counted
/// as fresh).
#[test]
fn an_extreme_webhook_timestamp_is_stale_not_a_panic() {
    let now = 1_796_400_000;
    assert!(!fresh(i64::MIN, now));
    assert!(!fresh(i64::MAX, -now));
    assert!(!fresh(now.wrapping_sub(i64::MIN), now));
    assert!(fresh(now - 10, now));
}
