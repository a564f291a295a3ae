//! /trust.json's signature: `{"document": {...}, "signature": {...}}`.
//!
//! The signed bytes are the document in canonical form: object keys sorted
//! (by their UTF-8 bytes), no whitespace, serde_json's escaping, integers
//! only (the document holds no floats). In Python that is
//! `json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`.
//! Ed25519 signs `aura-trust-document-v1` + LF + those bytes, with the
//! appliance's audit key (the one `document.audit.public_key` names, so a
//! buyer pins one key for both). /trust.json serves the document in that very
//! form, so its bytes can be checked as they are; a verifier that re-indents
//! the file still succeeds, because it verifies the canonical form of what it
//! parsed, never the file's layout.

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::audit::signing::{AuditSigner, verify_trust_document};

pub const ALG: &str = "ed25519";
/// Names the signing scheme above, inside the signature block.
pub const SCHEME: &str = "aura-trust-document-v1: ed25519 over the context line and the document as JSON with sorted keys and no whitespace";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct SignatureBlock {
    pub alg: String,
    /// `SHA256:` and the unpadded base64 SHA-256 of the public key (as ssh
    /// prints fingerprints).
    pub key_id: String,
    /// The 32-byte Ed25519 public key, base64.
    pub public_key: String,
    /// The 64-byte signature, base64.
    pub sig: String,
    pub scheme: String,
}

/// The canonical bytes of a JSON value (see the module comment).
pub fn canonical(v: &Value) -> Vec<u8> {
    fn sorted(v: &Value) -> Value {
        match v {
            Value::Object(m) => {
                let mut entries: Vec<(&String, &Value)> = m.iter().collect();
                entries.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.clone(), sorted(v)))
                        .collect(),
                )
            }
            Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
            other => other.clone(),
        }
    }
    serde_json::to_vec(&sorted(v)).unwrap_or_default()
}

/// The fingerprint a buyer pins or compares: `SHA256:<base64>`.
pub fn fingerprint(public_key: &[u8; 32]) -> String {
    format!(
        "SHA256:{}",
        STANDARD_NO_PAD.encode(Sha256::digest(public_key))
    )
}

pub fn public_key_b64(public_key: &[u8; 32]) -> String {
    STANDARD.encode(public_key)
}

/// The body of /trust.json: the canonical document, then its signature.
pub fn signed_body(document: &Value, signer: &AuditSigner) -> String {
    let bytes = canonical(document);
    let public_key = signer.public_key();
    let block = SignatureBlock {
        alg: ALG.into(),
        key_id: fingerprint(&public_key),
        public_key: public_key_b64(&public_key),
        sig: STANDARD.encode(signer.sign_trust_document(&bytes)),
        scheme: SCHEME.into(),
    };
    let block = serde_json::to_string(&block).unwrap_or_default();
    format!(
        "{{\"document\":{},\"signature\":{block}}}",
        String::from_utf8_lossy(&bytes)
    )
}

/// What a successful check found.
#[derive(Debug)]
pub struct Verified {
    pub public_key: [u8; 32],
    pub pinned: bool,
    pub organisation: Option<String>,
    pub generated_at: Option<String>,
    pub public_url: Option<String>,
}

/// A pinned key as given on the command line: base64 (as /trust shows it)
/// or hex (as `audit.public_key` is written).
pub fn parse_key(text: &str) -> Option<[u8; 32]> {
    let t = text.trim();
    let bytes = if t.len() == 64 && t.chars().all(|c| c.is_ascii_hexdigit()) {
        hex::decode(t).ok()?
    } else {
        STANDARD.decode(t).ok()?
    };
    bytes.try_into().ok()
}

/// Accepts any JSON, but refuses an object that names a key twice: readers
/// differ on which copy counts, so a signed file must not have two.
struct NoDuplicateKeys;

impl<'de> Deserialize<'de> for NoDuplicateKeys {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicateKeysVisitor)
    }
}

struct NoDuplicateKeysVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicateKeysVisitor {
    type Value = NoDuplicateKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(NoDuplicateKeys)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        while a.next_element::<NoDuplicateKeys>()?.is_some() {}
        Ok(NoDuplicateKeys)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Self::Value, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(k) = a.next_key::<String>()? {
            if !seen.insert(k.clone()) {
                return Err(serde::de::Error::custom(format!(
                    "the key `{k}` appears twice"
                )));
            }
            a.next_value::<NoDuplicateKeys>()?;
        }
        Ok(NoDuplicateKeys)
    }
}

/// Checks a saved /trust.json: its signature over the document with the key
/// it carries, that key against `document.audit.public_key`, and, when
/// given, against the key the buyer pinned. The error names what failed.
pub fn verify(text: &str, pinned: Option<&[u8; 32]>) -> Result<Verified, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("not a /trust.json: it is not valid JSON ({e})"))?;
    serde_json::from_str::<NoDuplicateKeys>(text).map_err(|e| format!("not a /trust.json: {e}"))?;
    let document = v
        .get("document")
        .filter(|d| d.is_object())
        .ok_or("not a signed /trust.json: it has no `document` object")?;
    let block: SignatureBlock = v
        .get("signature")
        .cloned()
        .ok_or_else(|| "not a signed /trust.json: it has no `signature`".to_owned())
        .and_then(|s| {
            serde_json::from_value(s)
                .map_err(|e| format!("the `signature` block is malformed: {e}"))
        })?;
    if block.alg != ALG {
        return Err(format!(
            "the signature's alg is `{}`; only `{ALG}` is accepted",
            block.alg
        ));
    }
    let public_key: [u8; 32] = STANDARD
        .decode(block.public_key.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or("signature.public_key is not a base64 Ed25519 public key (32 bytes)")?;
    if block.key_id != fingerprint(&public_key) {
        return Err(format!(
            "signature.key_id `{}` is not the fingerprint of signature.public_key ({})",
            block.key_id,
            fingerprint(&public_key)
        ));
    }
    let sig = STANDARD
        .decode(block.sig.trim())
        .map_err(|_| "signature.sig is not base64".to_owned())?;
    if !verify_trust_document(&public_key, &canonical(document), &sig) {
        return Err(
            "SIGNATURE INVALID: the document does not match its signature (it was changed after it was signed, or the signature is not this key's)"
                .into(),
        );
    }
    let audit_key = document
        .pointer("/audit/public_key")
        .and_then(Value::as_str)
        .and_then(parse_key);
    if audit_key != Some(public_key) {
        return Err(
            "the signing key is not the audit key the document names (document.audit.public_key)"
                .into(),
        );
    }
    if let Some(p) = pinned
        && *p != public_key
    {
        return Err(format!(
            "WRONG KEY: signed by {} but you pinned {}; this file did not come from the appliance you pinned",
            fingerprint(&public_key),
            fingerprint(p)
        ));
    }
    let text_at = |p: &str| {
        document
            .pointer(p)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(Verified {
        public_key,
        pinned: pinned.is_some(),
        organisation: text_at("/organisation/name"),
        generated_at: text_at("/generated_at"),
        public_url: text_at("/appliance/public_url"),
    })
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use serde_json::json;

    use super::*;

    fn signer() -> AuditSigner {
        AuditSigner::from_key(SigningKey::generate(&mut rand::rngs::OsRng))
    }

    fn doc(s: &AuditSigner) -> Value {
        json!({
            "zeta": [ {"b": 1, "a": true} ],
            "audit": { "public_key": hex::encode(s.public_key()) },
            "organisation": { "name": "Example Ltd" },
            "generated_at": "2026-12-05T09:00:00Z",
        })
    }

    #[test]
    fn canonical_sorts_keys_at_every_depth_and_has_no_whitespace() {
        let v = json!({"b": {"y": 1, "x": [ {"d": 2, "c": 3} ]}, "a": "é\n"});
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            r#"{"a":"é\n","b":{"x":[{"c":3,"d":2}],"y":1}}"#
        );
    }

    #[test]
    fn a_signed_body_verifies_even_re_indented_and_fails_when_changed() {
        let s = signer();
        let body = signed_body(&doc(&s), &s);
        let ok = verify(&body, None).unwrap();
        assert_eq!(ok.organisation.as_deref(), Some("Example Ltd"));
        assert!(!ok.pinned);
        let pretty =
            serde_json::to_string_pretty(&serde_json::from_str::<Value>(&body).unwrap()).unwrap();
        verify(&pretty, Some(&s.public_key())).unwrap();
        let changed = body.replace("Example Ltd", "Example Ltc");
        assert!(
            verify(&changed, None)
                .unwrap_err()
                .contains("SIGNATURE INVALID")
        );
        let other = signer();
        assert!(
            verify(&body, Some(&other.public_key()))
                .unwrap_err()
                .contains("WRONG KEY")
        );
    }

    #[test]
    fn a_key_given_twice_is_refused_though_the_last_copy_would_verify() {
        let s = signer();
        let body = signed_body(&doc(&s), &s);
        let twice = body.replacen(
            "\"name\":\"Example Ltd\"",
            "\"name\":\"Evil Corp\",\"name\":\"Example Ltd\"",
            1,
        );
        assert_ne!(twice, body);
        assert!(verify(&twice, None).unwrap_err().contains("appears twice"));
    }

    #[test]
    fn a_document_signed_by_another_key_than_its_audit_key_fails() {
        let s = signer();
        let other = signer();
        let body = signed_body(&doc(&other), &s);
        assert!(verify(&body, None).unwrap_err().contains("audit key"));
    }

    #[test]
    fn pinned_keys_read_as_base64_or_hex() {
        let s = signer();
        let pk = s.public_key();
        assert_eq!(parse_key(&public_key_b64(&pk)), Some(pk));
        assert_eq!(parse_key(&hex::encode(pk)), Some(pk));
        assert_eq!(parse_key("nope"), None);
    }
}
