//! Short-lived access JWTs (RFC 9068 profile): EdDSA only, `typ` must be
//! `at+jwt`, the key id must be ours, and issuer, audience, expiry and the
//! subject are all required. The signing key is an Ed25519 pair sealed in
//! control.db, so tokens survive a restart and die with the key.

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

pub const TYP: &str = "at+jwt";
pub const AUDIENCE: &str = "aura-api";
pub const ISSUER: &str = "aura";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The user id.
    pub sub: String,
    /// The refresh-token family this access token was issued under; revoking
    /// the family (logout, password change, reuse) ends it at once.
    pub sid: String,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
}

pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    kid: String,
    validation: Validation,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JwtKeys(kid={})", self.kid)
    }
}

impl JwtKeys {
    pub fn new(key: &SigningKey) -> Result<Self> {
        let der = key
            .to_pkcs8_der()
            .map_err(|_| Error::Crypto("the JWT signing key does not encode as PKCS#8"))?;
        let public = key.verifying_key().to_bytes();
        let kid = hex::encode(&crate::crypto::token::sha256(&public)[..8]);
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.algorithms = vec![Algorithm::EdDSA];
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        // Expiry is checked against the appliance's clock in `verify`.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        Ok(Self {
            encoding: EncodingKey::from_ed_der(der.as_bytes()),
            decoding: DecodingKey::from_ed_der(&public),
            kid,
            validation,
        })
    }

    pub fn issue(&self, claims: &AccessClaims) -> Result<String> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.typ = Some(TYP.to_owned());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|_| Error::internal("signing an access token failed"))
    }

    /// Any failure is the same `Unauthenticated`: the caller learns nothing
    /// about which check refused.
    pub fn verify(&self, token: &str, now: i64) -> Result<AccessClaims> {
        let data = jsonwebtoken::decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| Error::Unauthenticated)?;
        let h = &data.header;
        if h.alg != Algorithm::EdDSA
            || h.typ.as_deref() != Some(TYP)
            || h.kid.as_deref() != Some(self.kid.as_str())
        {
            return Err(Error::Unauthenticated);
        }
        if now >= data.claims.exp || data.claims.iat > now.saturating_add(60) {
            return Err(Error::Unauthenticated);
        }
        Ok(data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn claims(now: i64) -> AccessClaims {
        AccessClaims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            sub: "u".into(),
            sid: "f".into(),
            iat: now,
            exp: now + 600,
            jti: "j".into(),
        }
    }

    #[test]
    fn round_trip_and_refusals() {
        let keys = JwtKeys::new(&SigningKey::generate(&mut rand::rngs::OsRng)).unwrap();
        let t = keys.issue(&claims(1000)).unwrap();
        assert_eq!(keys.verify(&t, 1001).unwrap(), claims(1000));
        assert!(keys.verify(&t, 1600).is_err(), "expired");

        // Another key's token.
        let other = JwtKeys::new(&SigningKey::generate(&mut rand::rngs::OsRng)).unwrap();
        assert!(
            keys.verify(&other.issue(&claims(1000)).unwrap(), 1001)
                .is_err()
        );

        // alg=none with the same payload.
        let parts: Vec<&str> = t.split('.').collect();
        let none = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"at+jwt"}"#);
        assert!(keys.verify(&format!("{none}.{}.", parts[1]), 1001).is_err());

        // An edited payload under the original signature.
        let mut c = claims(1000);
        c.sub = "someone-else".into();
        let edited = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
        assert!(
            keys.verify(&format!("{}.{edited}.{}", parts[0], parts[2]), 1001)
                .is_err()
        );
    }
}

#[cfg(test)]
#[path = "jwt_proptests.rs"]
mod proptests;
