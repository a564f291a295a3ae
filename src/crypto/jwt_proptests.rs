//! Hostile input for access tokens: any string, any three base64url parts,
//! any header and claims JSON, at any `now`, is refused with the one
//! `Unauthenticated`, never a panic.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use proptest::prelude::*;

use super::*;

fn keys() -> JwtKeys {
    JwtKeys::new(&SigningKey::generate(&mut rand::rngs::OsRng)).unwrap()
}

fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,80}",
        r#"\{"alg":"(EdDSA|none|HS256|RS256|ES256|)","typ":"(at\+jwt|JWT|)"(,"kid":"[0-9a-f]{0,16}")?\}"#,
        r#"\{"iss":".{0,10}","aud":".{0,10}","sub":".{0,10}","sid":"x","iat":-?[0-9]{1,19},"exp":-?[0-9]{1,19},"jti":"j"\}"#,
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_string_is_refused(token in ".{0,400}", now in any::<i64>()) {
        prop_assert!(keys().verify(&token, now).is_err());
    }

    #[test]
    fn any_forged_token_is_refused(
        header in json_text(),
        claims in json_text(),
        signature in proptest::collection::vec(any::<u8>(), 0..80),
        now in any::<i64>(),
    ) {
        let token = format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims),
            URL_SAFE_NO_PAD.encode(signature)
        );
        prop_assert!(matches!(keys().verify(&token, now), Err(Error::Unauthenticated)));
    }

    #[test]
    fn a_real_token_at_any_time_is_answered(iat in any::<i64>(), exp in any::<i64>(), now in any::<i64>()) {
        let k = keys();
        let claims = AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "u".into(),
            sid: "f".into(),
            iat,
            exp,
            jti: "j".into(),
        };
        let token = k.issue(&claims).unwrap();
        if let Ok(back) = k.verify(&token, now) {
            prop_assert!(now < back.exp && back.iat <= now.saturating_add(60));
        }
    }
}
