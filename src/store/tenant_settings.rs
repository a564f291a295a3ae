//! Per-workspace settings kept in the workspace's own `meta` table. Values are
//! small enums and numbers, never person-typed.

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::error::Result;

const AUDIT_RETENTION_DAYS: &str = "audit_retention_days";

pub fn audit_retention_days(conn: &dyn Sql) -> Result<Option<u32>> {
    let conn = conn.conn(TOKEN);
    let v: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [AUDIT_RETENTION_DAYS],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok()))
}

pub fn set_audit_retention_days(tx: &dyn SqlTx, days: u32) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![AUDIT_RETENTION_DAYS, days.to_string().into_bytes()],
    )?;
    Ok(())
}

const GENERATION: &str = "restore_generation";

/// Bumped by every in-place restore, so in-memory indexes know to rebuild.
pub fn generation(conn: &dyn Sql) -> Result<u64> {
    let conn = conn.conn(TOKEN);
    let v: Option<Vec<u8>> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [GENERATION], |r| {
            r.get(0)
        })
        .optional()?;
    Ok(v.and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

pub fn bump_generation(db: &crate::store::Db) -> Result<()> {
    db.write(bump_generation_in)
}

/// The same inside a transaction that changes what the in-memory indexes
/// were built from in place (sealed audit details replaced by a redaction).
///
/// The next value is random (31 bits, unlike the current one), not the
/// current plus one: a database restored from a backup holds an older value,
/// and its bump must not land on the generation a persisted search index was
/// built at, or that index would be taken as current.
pub fn bump_generation_in(tx: &dyn SqlTx) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let current = generation(tx)?;
    let mut next = current;
    while next == current || next == 0 {
        next = u64::from(rand::random::<u32>() >> 1);
    }
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![GENERATION, next.to_string().into_bytes()],
    )?;
    Ok(())
}
