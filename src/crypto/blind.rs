//! Keyed blind indexes: HMAC-SHA256 under a per-scope subkey, so equality lookups
//! (email, unique fields) work without storing the value. Without the key, the
//! index reveals nothing a dictionary attack could use.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::keys::DataKey;

type HmacSha256 = Hmac<Sha256>;

/// New digests use the newest data key; while a data key rotation runs, the
/// older keys' subkeys stay, so lookups and uniqueness checks also match
/// digests the re-sealing job has not yet recomputed (`compute_all`).
pub struct BlindIndex {
    key: super::keys::KeyBytes,
    older: Vec<super::keys::KeyBytes>,
}

impl BlindIndex {
    pub fn new(data_key: &DataKey) -> Self {
        Self::with_older(data_key, &[])
    }

    /// The newest key computes; every other key in `all` is kept for lookups.
    pub fn with_older(newest: &DataKey, all: &[DataKey]) -> Self {
        Self {
            key: newest.bytes.derive("aura/v1/blind-index"),
            older: all
                .iter()
                .filter(|k| k.key_id != newest.key_id)
                .map(|k| k.bytes.derive("aura/v1/blind-index"))
                .collect(),
        }
    }

    /// `domain` separates uses (e.g. `users.email`) so equal values in different
    /// places do not produce equal indexes.
    pub fn compute(&self, domain: &str, value: &str) -> Vec<u8> {
        digest(&self.key, domain, value)
    }

    /// The digest under every key this index knows, newest first: what a
    /// lookup or a uniqueness check must match during a rotation.
    pub fn compute_all(&self, domain: &str, value: &str) -> Vec<Vec<u8>> {
        std::iter::once(&self.key)
            .chain(self.older.iter())
            .map(|k| digest(k, domain, value))
            .collect()
    }
}

fn digest(key: &super::keys::KeyBytes, domain: &str, value: &str) -> Vec<u8> {
    // HMAC accepts keys of any length, so this cannot fail for 32 bytes.
    let Ok(mut mac) = HmacSha256::new_from_slice(key.expose()) else {
        return Vec::new();
    };
    mac.update(domain.as_bytes());
    mac.update(&[0]);
    mac.update(value.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Emails compare case-insensitively after trimming.
pub fn normalize_email(email: &str) -> String {
    email.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_domain_separated() {
        let a = BlindIndex::new(&DataKey::generate(1));
        let b = BlindIndex::new(&DataKey::generate(1));
        assert_eq!(a.compute("d", "x"), a.compute("d", "x"));
        assert_ne!(a.compute("d", "x"), b.compute("d", "x"));
        assert_ne!(a.compute("d1", "x"), a.compute("d2", "x"));
        assert_eq!(normalize_email("  Ada@Example.COM "), "ada@example.com");
    }

    #[test]
    fn during_a_rotation_lookups_match_every_live_key() {
        let (k1, k2) = (DataKey::generate(1), DataKey::generate(2));
        let old = BlindIndex::new(&k1);
        let rotating = BlindIndex::with_older(&k2, &[k1.clone(), k2.clone()]);
        let all = rotating.compute_all("d", "x");
        assert_eq!(all[0], rotating.compute("d", "x"), "newest first");
        assert_eq!(all[0], BlindIndex::new(&k2).compute("d", "x"));
        assert!(
            all.contains(&old.compute("d", "x")),
            "the old digest still matches"
        );
        assert_eq!(all.len(), 2);
        assert_eq!(BlindIndex::new(&k2).compute_all("d", "x").len(), 1);
    }
}
