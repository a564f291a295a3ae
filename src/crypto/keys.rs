//! The key hierarchy: a master key (never stored in the data dir) wraps one data
//! key per scope (the platform, each workspace); HKDF-SHA256 derives a subkey per
//! purpose from a data key. Wrapping binds the scope and key id as AAD, so a
//! wrapped key copied to another workspace's row does not unwrap.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::{Error, Result};

pub const KEY_LEN: usize = 32;
const WRAP_VERSION: u8 = 1;
const KEY_CHECK_PLAINTEXT: &[u8] = b"aura key check v1";

/// 32 secret bytes that wipe themselves when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct KeyBytes([u8; KEY_LEN]);

impl KeyBytes {
    pub fn random() -> Self {
        let mut k = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    pub fn from_slice(bytes: &[u8]) -> Result<Self> {
        let arr: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| Error::Crypto("a key must be exactly 32 bytes"))?;
        Ok(Self(arr))
    }

    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// HKDF-SHA256 with a purpose label; labels are versioned ("aura/v1/...").
    pub fn derive(&self, info: &str) -> KeyBytes {
        let hk = Hkdf::<Sha256>::new(None, &self.0);
        let mut out = [0u8; KEY_LEN];
        // 32 bytes is always a valid HKDF-SHA256 output length.
        if hk.expand(info.as_bytes(), &mut out).is_err() {
            out = [0u8; KEY_LEN];
        }
        KeyBytes(out)
    }
}

impl std::fmt::Debug for KeyBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyBytes(<redacted>)")
    }
}

/// The root of the hierarchy. Only ever used to wrap and unwrap data keys and to
/// open the key check in control.db.
#[derive(Clone, Debug)]
pub struct MasterKey(KeyBytes);

/// A data key for one scope (the platform or one workspace), with its id.
#[derive(Clone, Debug)]
pub struct DataKey {
    pub key_id: u32,
    pub bytes: KeyBytes,
}

impl MasterKey {
    pub fn from_bytes(bytes: KeyBytes) -> Self {
        Self(bytes)
    }

    pub fn generate() -> Self {
        Self(KeyBytes::random())
    }

    fn kek(&self) -> XChaCha20Poly1305 {
        let k = self.0.derive("aura/v1/kek");
        XChaCha20Poly1305::new(k.expose().into())
    }

    /// A short sealed value stored in control.db; opening it proves this is the
    /// key the data was written with, before anything else is touched.
    pub fn make_key_check(&self) -> Result<Vec<u8>> {
        wrap_bytes(&self.kek(), KEY_CHECK_PLAINTEXT, b"aura/v1|key-check")
    }

    pub fn verify_key_check(&self, check: &[u8]) -> Result<()> {
        let plain = unwrap_bytes(&self.kek(), check, b"aura/v1|key-check")
            .map_err(|_| Error::Crypto("the master key does not match this data dir"))?;
        if plain.as_slice() == KEY_CHECK_PLAINTEXT {
            Ok(())
        } else {
            Err(Error::Crypto("the master key does not match this data dir"))
        }
    }

    pub fn wrap_key(&self, scope: &str, key: &DataKey) -> Result<Vec<u8>> {
        let aad = wrap_aad(scope, key.key_id);
        wrap_bytes(&self.kek(), key.bytes.expose(), aad.as_bytes())
    }

    pub fn unwrap_key(&self, scope: &str, key_id: u32, wrapped: &[u8]) -> Result<DataKey> {
        let aad = wrap_aad(scope, key_id);
        let plain = unwrap_bytes(&self.kek(), wrapped, aad.as_bytes())?;
        Ok(DataKey {
            key_id,
            bytes: KeyBytes::from_slice(&plain)?,
        })
    }
}

impl DataKey {
    pub fn generate(key_id: u32) -> Self {
        Self {
            key_id,
            bytes: KeyBytes::random(),
        }
    }
}

fn wrap_aad(scope: &str, key_id: u32) -> String {
    format!("aura/v1|dek|{scope}|{key_id}")
}

fn wrap_bytes(cipher: &XChaCha20Poly1305, plain: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; 24];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| Error::Crypto("wrap failed"))?;
    let mut out = Vec::with_capacity(1 + 24 + ct.len());
    out.push(WRAP_VERSION);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ct);
    Ok(out)
}

fn unwrap_bytes(cipher: &XChaCha20Poly1305, wrapped: &[u8], aad: &[u8]) -> Result<Vec<u8>> {
    if wrapped.len() < 1 + 24 + 16 || wrapped[0] != WRAP_VERSION {
        return Err(Error::Crypto("wrapped key has an unknown format"));
    }
    let (nonce, ct) = wrapped[1..].split_at(24);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| Error::Crypto("wrapped key does not open with this master key"))
}

/// Parses a master key file or variable: 32 raw bytes, or 64 hex characters.
pub fn parse_master_key(raw: &[u8]) -> Result<MasterKey> {
    if raw.len() == KEY_LEN {
        return Ok(MasterKey::from_bytes(KeyBytes::from_slice(raw)?));
    }
    let text = std::str::from_utf8(raw)
        .map_err(|_| Error::Crypto("the master key must be 32 raw bytes or 64 hex characters"))?;
    let mut decoded = hex::decode(text.trim())
        .map_err(|_| Error::Crypto("the master key must be 32 raw bytes or 64 hex characters"))?;
    let key = KeyBytes::from_slice(&decoded);
    decoded.zeroize();
    Ok(MasterKey::from_bytes(key?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_key_is_bound_to_scope_and_id() {
        let mk = MasterKey::generate();
        let dk = DataKey::generate(1);
        let w = mk.wrap_key("ws-a", &dk).unwrap();
        assert_eq!(
            mk.unwrap_key("ws-a", 1, &w).unwrap().bytes.expose(),
            dk.bytes.expose()
        );
        assert!(
            mk.unwrap_key("ws-b", 1, &w).is_err(),
            "moved to another workspace"
        );
        assert!(
            mk.unwrap_key("ws-a", 2, &w).is_err(),
            "claimed another key id"
        );
        assert!(
            MasterKey::generate().unwrap_key("ws-a", 1, &w).is_err(),
            "wrong master key"
        );
        let mut t = w.clone();
        let last = t.len() - 1;
        t[last] ^= 1;
        assert!(mk.unwrap_key("ws-a", 1, &t).is_err(), "tampered");
    }

    #[test]
    fn key_check_detects_wrong_master() {
        let mk = MasterKey::generate();
        let check = mk.make_key_check().unwrap();
        assert!(mk.verify_key_check(&check).is_ok());
        assert!(MasterKey::generate().verify_key_check(&check).is_err());
    }

    #[test]
    fn parses_hex_and_raw_keys() {
        assert!(parse_master_key(&[7u8; 32]).is_ok());
        assert!(parse_master_key(hex::encode([7u8; 32]).as_bytes()).is_ok());
        assert!(parse_master_key(b"short").is_err());
    }

    #[test]
    fn derivation_separates_purposes() {
        let k = KeyBytes::random();
        assert_ne!(k.derive("a").expose(), k.derive("b").expose());
        assert_eq!(k.derive("a").expose(), k.derive("a").expose());
    }
}
