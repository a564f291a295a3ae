//! Ed25519 key pairs the appliance keeps for itself (audit checkpoints, access
//! JWTs). The secret half is sealed under the platform data key in control.db's
//! `meta`; the public half is stored in the clear, for verifiers without keys.

use ed25519_dalek::SigningKey;
use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::{Sealer, Slot};
use crate::error::{Error, Result};

/// The audit checkpoint key: `audit_signing_key` (sealed) and
/// `audit_public_key` in `meta`.
pub const AUDIT: &str = "audit";
/// The access JWT key.
pub const JWT: &str = "jwt";

fn names(purpose: &str) -> (String, String) {
    (
        format!("{purpose}_signing_key"),
        format!("{purpose}_public_key"),
    )
}

/// Loads the key pair for `purpose`, creating it on first use inside the
/// caller's transaction.
pub fn load_or_create(tx: &dyn SqlTx, sealer: &Sealer, purpose: &str) -> Result<SigningKey> {
    let tx = tx.tx(TOKEN);
    let (secret_meta, public_meta) = names(purpose);
    let slot = Slot::new("meta", &secret_meta, "value");
    let existing: Option<Vec<u8>> = tx
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [&secret_meta],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(sealed) = existing {
        let raw = sealer.open(slot, &sealed)?;
        let bytes: [u8; 32] = raw
            .as_slice()
            .try_into()
            .map_err(|_| Error::Crypto("a stored signing key has the wrong length"))?;
        return Ok(SigningKey::from_bytes(&bytes));
    }
    let key = SigningKey::generate(&mut rand::rngs::OsRng);
    let sealed = sealer.seal(slot, key.as_bytes())?;
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)",
        params![secret_meta, sealed],
    )?;
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)",
        params![public_meta, key.verifying_key().to_bytes().to_vec()],
    )?;
    Ok(key)
}

/// The stored public key for `purpose`.
pub fn stored_public(conn: &dyn Sql, purpose: &str) -> Result<Option<[u8; 32]>> {
    let conn = conn.conn(TOKEN);
    let (_, public_meta) = names(purpose);
    let v: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [public_meta],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|b| b.as_slice().try_into().ok()))
}
