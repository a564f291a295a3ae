//! The SQL of backups, drills and restores: an archived database's row
//! counts and integrity, the wrapped workspace keys the escrow carries, and
//! the changes a snapshot or a restored control.db goes through (keys taken
//! out, keys put back, shredded workspaces dropped).

use std::collections::BTreeMap;

use rusqlite::params;

use super::handle::{Sql, TOKEN};
use crate::error::Result;

/// Rows per table of one database file (what a manifest lists).
pub fn table_counts(conn: &dyn Sql) -> Result<BTreeMap<String, i64>> {
    let conn = conn.conn(TOKEN);
    let names: Vec<String> = {
        let mut stmt = conn.prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut out = BTreeMap::new();
    for n in names {
        let c: i64 = conn.query_row(&format!("SELECT count(*) FROM \"{n}\""), [], |r| r.get(0))?;
        out.insert(n, c);
    }
    Ok(out)
}

/// SQLite's own verdict on a file: `ok`, or what is wrong.
pub fn integrity_check(conn: &dyn Sql) -> rusqlite::Result<String> {
    let conn = conn.conn(TOKEN);
    conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))
}

/// One wrapped workspace key: (workspace id, key id, wrapped bytes).
pub type WrappedKey = (String, u32, Vec<u8>);

/// Every live workspace key, wrapped, for the escrow.
pub fn wrapped_keys(c: &dyn Sql) -> Result<Vec<WrappedKey>> {
    let c = c.conn(TOKEN);
    let mut stmt = c.prepare(
        "SELECT workspace_id, key_id, wrapped FROM workspace_keys ORDER BY workspace_id, key_id",
    )?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Takes the wrapped keys out of a control.db snapshot, leaving no trace of
/// them in its free pages (they go to the escrow, never into an archive).
pub fn strip_workspace_keys(c: &dyn Sql) -> Result<()> {
    let c = c.conn(TOKEN);
    // cross-workspace: a backup's copy of control.db loses every workspace's
    // wrapped key (they travel in the escrow).
    c.execute_batch("PRAGMA secure_delete=ON; DELETE FROM workspace_keys; VACUUM;")?;
    Ok(())
}

/// Puts one escrowed key back into a restored control.db.
pub fn put_workspace_key(
    c: &dyn Sql,
    workspace: &str,
    key_id: u32,
    wrapped: &[u8],
    created_at: i64,
) -> Result<()> {
    let c = c.conn(TOKEN);
    c.execute(
        "INSERT OR REPLACE INTO workspace_keys (workspace_id, key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![workspace, key_id, wrapped, created_at],
    )?;
    Ok(())
}

/// Opens a restored control.db for dropping rows: foreign keys enforced and
/// deleted rows overwritten.
pub fn prepare_for_drops(c: &dyn Sql) -> Result<()> {
    let c = c.conn(TOKEN);
    c.execute_batch("PRAGMA foreign_keys=ON; PRAGMA secure_delete=ON;")?;
    Ok(())
}

/// Drops a workspace shredded since the backup from a restored control.db,
/// and lists it as shredded there.
pub fn drop_shredded_workspace(c: &dyn Sql, id: &str, shredded_at: i64) -> Result<()> {
    let c = c.conn(TOKEN);
    c.execute("DELETE FROM audit_checkpoints WHERE scope = ?1", [id])?;
    c.execute("DELETE FROM workspaces WHERE id = ?1", [id])?;
    c.execute(
        "INSERT OR IGNORE INTO shredded_workspaces (id, shredded_at, reason) VALUES (?1, ?2, 'deleted')",
        params![id, shredded_at],
    )?;
    Ok(())
}
