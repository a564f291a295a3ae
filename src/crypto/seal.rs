//! Sealing of person-typed values. Every ciphertext is self-describing:
//!
//! ```text
//! [version: 1 byte = 1][key id: u32 BE][nonce: 24 bytes][XChaCha20-Poly1305 ciphertext + tag]
//! ```
//!
//! The AAD is the 5-byte header followed by `aura/v1|<scope>|<table>|<row>|<column>`,
//! so a ciphertext copied to another row, column, table or workspace fails to open.

use std::collections::HashMap;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;

use super::keys::DataKey;
use crate::error::{Error, Result};

const VERSION: u8 = 1;
const HEADER_LEN: usize = 5;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// Where a ciphertext lives. Part of the AAD.
#[derive(Clone, Copy, Debug)]
pub struct Slot<'a> {
    pub table: &'a str,
    pub row: &'a str,
    pub column: &'a str,
}

impl<'a> Slot<'a> {
    pub fn new(table: &'a str, row: &'a str, column: &'a str) -> Self {
        Self { table, row, column }
    }
}

/// Seals and opens values for one scope (`platform` or a workspace id). It keeps
/// every key id it knows, so rows sealed before a rotation still open.
pub struct Sealer {
    scope: String,
    current: u32,
    ciphers: HashMap<u32, XChaCha20Poly1305>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("scope", &self.scope)
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl Sealer {
    /// `keys` must not be empty; the highest key id seals new values.
    pub fn new(scope: impl Into<String>, keys: &[DataKey]) -> Result<Self> {
        let current = keys
            .iter()
            .map(|k| k.key_id)
            .max()
            .ok_or(Error::Crypto("no data key for this scope"))?;
        Self::sealing_with(scope, keys, current)
    }

    /// Opens under every key in `keys`, seals under `current` (a rotation
    /// makes the new key known to readers before anything is sealed with it).
    pub fn sealing_with(scope: impl Into<String>, keys: &[DataKey], current: u32) -> Result<Self> {
        Self::under_subkey(scope, keys, current, "aura/v1/seal")
    }

    /// The same under another HKDF subkey of the data keys (`info`, e.g.
    /// `aura/v1/search-index`), so one purpose's ciphertexts never open as
    /// another's and each purpose's key is separate.
    pub fn under_subkey(
        scope: impl Into<String>,
        keys: &[DataKey],
        current: u32,
        info: &str,
    ) -> Result<Self> {
        if !keys.iter().any(|k| k.key_id == current) {
            return Err(Error::Crypto("the sealing key is not among the keys"));
        }
        let ciphers = keys
            .iter()
            .map(|k| {
                let sub = k.bytes.derive(info);
                (k.key_id, XChaCha20Poly1305::new(sub.expose().into()))
            })
            .collect();
        Ok(Self {
            scope: scope.into(),
            current,
            ciphers,
        })
    }

    /// The key id new values are sealed with.
    pub fn current_key_id(&self) -> u32 {
        self.current
    }

    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// The header, then `aura/v1|scope|table|row|column`.
    fn aad(&self, header: &[u8], slot: Slot<'_>) -> Vec<u8> {
        let parts = [self.scope.as_str(), slot.table, slot.row, slot.column];
        let mut aad =
            Vec::with_capacity(header.len() + 7 + parts.iter().map(|p| p.len() + 1).sum::<usize>());
        aad.extend_from_slice(header);
        aad.extend_from_slice(b"aura/v1");
        for p in parts {
            aad.push(b'|');
            aad.extend_from_slice(p.as_bytes());
        }
        aad
    }

    pub fn seal(&self, slot: Slot<'_>, plaintext: &[u8]) -> Result<Vec<u8>> {
        let cipher = self
            .ciphers
            .get(&self.current)
            .ok_or(Error::Crypto("current key missing"))?;
        let mut header = [0u8; HEADER_LEN];
        header[0] = VERSION;
        header[1..].copy_from_slice(&self.current.to_be_bytes());
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = self.aad(&header, slot);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Crypto("seal failed"))?;
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + ct.len());
        out.extend_from_slice(&header);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    pub fn seal_str(&self, slot: Slot<'_>, plaintext: &str) -> Result<Vec<u8>> {
        self.seal(slot, plaintext.as_bytes())
    }

    pub fn open(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<Vec<u8>> {
        if sealed.len() < HEADER_LEN + NONCE_LEN + TAG_LEN {
            return Err(Error::Crypto("ciphertext too short"));
        }
        if sealed[0] != VERSION {
            return Err(Error::Crypto("unknown ciphertext version"));
        }
        let (header, rest) = sealed.split_at(HEADER_LEN);
        let mut id = [0u8; 4];
        id.copy_from_slice(&header[1..]);
        let cipher = self
            .ciphers
            .get(&u32::from_be_bytes(id))
            .ok_or(Error::Crypto("ciphertext names an unknown key id"))?;
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let aad = self.aad(header, slot);
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| Error::Crypto("ciphertext does not open here"))
    }

    pub fn open_string(&self, slot: Slot<'_>, sealed: &[u8]) -> Result<String> {
        String::from_utf8(self.open(slot, sealed)?)
            .map_err(|_| Error::Crypto("sealed text is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(scope: &str, key: &DataKey) -> Sealer {
        Sealer::new(scope, std::slice::from_ref(key)).unwrap()
    }

    /// The AAD is part of every stored ciphertext: its bytes may not change.
    #[test]
    fn aad_layout_is_fixed() {
        let k = DataKey::generate(1);
        let s = sealer("ws-1", &k);
        let header = [1u8, 0, 0, 0, 1];
        let mut want = header.to_vec();
        want.extend_from_slice(b"aura/v1|ws-1|records|0190-abc|values");
        assert_eq!(
            s.aad(&header, Slot::new("records", "0190-abc", "values")),
            want
        );
    }

    #[test]
    fn round_trip() {
        let k = DataKey::generate(1);
        let s = sealer("ws1", &k);
        let slot = Slot::new("users", "r1", "name");
        let ct = s.seal_str(slot, "Ada Lovelace").unwrap();
        assert_eq!(s.open_string(slot, &ct).unwrap(), "Ada Lovelace");
        assert!(!ct.windows(3).any(|w| w == b"Ada"));
    }

    #[test]
    fn moved_ciphertexts_fail() {
        let k = DataKey::generate(1);
        let s = sealer("ws1", &k);
        let ct = s.seal_str(Slot::new("users", "r1", "name"), "x").unwrap();
        assert!(
            s.open(Slot::new("users", "r2", "name"), &ct).is_err(),
            "other row"
        );
        assert!(
            s.open(Slot::new("users", "r1", "email"), &ct).is_err(),
            "other column"
        );
        assert!(
            s.open(Slot::new("teams", "r1", "name"), &ct).is_err(),
            "other table"
        );
        let other_ws = sealer("ws2", &k);
        assert!(
            other_ws
                .open(Slot::new("users", "r1", "name"), &ct)
                .is_err(),
            "other workspace"
        );
    }

    #[test]
    fn wrong_key_and_tampering_fail() {
        let s = sealer("ws1", &DataKey::generate(1));
        let slot = Slot::new("t", "r", "c");
        let ct = s.seal_str(slot, "secret").unwrap();
        assert!(
            sealer("ws1", &DataKey::generate(1))
                .open(slot, &ct)
                .is_err()
        );
        for i in [0usize, 2, 10, ct.len() - 1] {
            let mut t = ct.clone();
            t[i] ^= 0x40;
            assert!(s.open(slot, &t).is_err(), "byte {i} flipped");
        }
        assert!(s.open(slot, &ct[..20]).is_err(), "truncated");
    }

    #[test]
    fn old_key_ids_still_open_after_rotation() {
        let k1 = DataKey::generate(1);
        let old = sealer("ws1", &k1);
        let slot = Slot::new("t", "r", "c");
        let ct = old.seal_str(slot, "v").unwrap();
        let rotated = Sealer::new("ws1", &[k1, DataKey::generate(2)]).unwrap();
        assert_eq!(rotated.open_string(slot, &ct).unwrap(), "v");
        let new_ct = rotated.seal_str(slot, "v").unwrap();
        assert_eq!(&new_ct[1..5], &2u32.to_be_bytes());
    }
}
