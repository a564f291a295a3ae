//! SQL for links sent by mail (magic sign-in, password reset). Only the
//! token's SHA-256 is stored; `purpose` is `sign_in` or `password_reset`.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::Result;
use crate::ids::UserId;

pub fn insert(
    tx: &Transaction<'_>,
    hash: &[u8],
    user: UserId,
    now: i64,
    expires_at: i64,
    purpose: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO magic_links (hash, user_id, created_at, expires_at, purpose)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![hash, user.to_string(), now, expires_at, purpose],
    )?;
    Ok(())
}

/// Whether a link of `purpose` is unused and unexpired.
pub fn live(conn: &Connection, hash: &[u8], now: i64, purpose: &str) -> Result<bool> {
    Ok(conn
        .query_row(
            "SELECT 1 FROM magic_links WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2
               AND purpose = ?3",
            params![hash, now, purpose],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Spends a live link of `purpose`; its account, or `None` when there is no
/// such link (unknown, used or expired).
pub fn spend(tx: &Transaction<'_>, hash: &[u8], now: i64, purpose: &str) -> Result<Option<String>> {
    Ok(tx
        .query_row(
            "UPDATE magic_links SET used_at = ?2
             WHERE hash = ?1 AND used_at IS NULL AND expires_at > ?2 AND purpose = ?3
             RETURNING user_id",
            params![hash, now, purpose],
            |r| r.get(0),
        )
        .optional()?)
}
