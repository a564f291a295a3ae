//! The SQL of retention windows' bookkeeping in control.db: how many
//! collections of each workspace have a window (for /trust and for the
//! purge job to pass over workspaces with none).

use rusqlite::params;

use super::handle::{Sql, SqlTx, TOKEN};
use crate::error::Result;
use crate::ids::WorkspaceId;

/// Records that `ws` has `collections` collections with a window.
pub fn set_count(tx: &dyn SqlTx, ws: WorkspaceId, collections: i64, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    if collections == 0 {
        tx.execute(
            "DELETE FROM retention_windows WHERE workspace_id = ?1",
            [ws.to_string()],
        )?;
    } else {
        tx.execute(
            "INSERT INTO retention_windows (workspace_id, collections, updated_at)
             SELECT ?1, ?2, ?3 WHERE EXISTS (SELECT 1 FROM workspaces WHERE id = ?1)
             ON CONFLICT (workspace_id) DO UPDATE SET collections = ?2, updated_at = ?3
             WHERE collections <> ?2",
            params![ws.to_string(), collections, now],
        )?;
    }
    Ok(())
}

/// Collections with a window, on the whole appliance.
pub fn total(c: &dyn Sql) -> Result<i64> {
    let c = c.conn(TOKEN);
    // cross-workspace: the appliance-wide total /trust states.
    Ok(c.query_row(
        "SELECT coalesce(sum(r.collections), 0) FROM retention_windows r
         JOIN workspaces w ON w.id = r.workspace_id WHERE w.state = 'active'",
        [],
        |r| r.get(0),
    )?)
}

/// The workspaces with at least one window.
pub fn workspaces(c: &dyn Sql) -> Result<Vec<WorkspaceId>> {
    let c = c.conn(TOKEN);
    // cross-workspace: the purge job's list of workspaces to visit.
    let mut stmt = c.prepare("SELECT workspace_id FROM retention_windows ORDER BY workspace_id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.map_err(crate::error::Error::from).and_then(|s| s.parse()))
        .collect()
}
