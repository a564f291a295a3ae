//! SQL for links sent by mail (magic sign-in, password reset). Only the
//! token's SHA-256 is stored; `purpose` is `sign_in` or `password_reset`.

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::error::Result;
use crate::ids::UserId;

pub fn insert(
    tx: &dyn SqlTx,
    hash: &[u8],
    user: UserId,
    now: i64,
    expires_at: i64,
    purpose: &str,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO magic_links (hash, user_id, created_at, expires_at, purpose)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![hash, user.to_string(), now, expires_at, purpose],
    )?;
    Ok(())
}

/// Whether a link of `purpose` is unused and unexpired.
pub fn live(conn: &dyn Sql, hash: &[u8], now: i64, purpose: &str) -> Result<bool> {
    let conn = conn.conn(TOKEN);
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
pub fn spend(tx: &dyn SqlTx, hash: &[u8], now: i64, purpose: &str) -> Result<Option<String>> {
    let tx = tx.tx(TOKEN);
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
