//! The file stamps (`TenantPool::file_stamp`) of the workspaces a
//! background pass last found with nothing to do, kept across restarts in
//! control.db (migration 0022): the first pass after a start then opens only
//! the workspaces whose files changed since, so a start's work follows what
//! has something to do, not the number of workspaces (issue 23).
//!
//! A stamp only ever lets a pass skip a workspace whose files look as the
//! pass last left them. Someone who forges one (write access to the data
//! dir) makes a pass skip work: no checkpoint signed over what they wrote,
//! a delivery held until the workspace next changes. Never more.

use std::collections::HashMap;

use rusqlite::params;

use super::handle::{Sql, SqlTx, TOKEN};
use super::tenant::FileStamp;
use crate::error::Result;
use crate::ids::WorkspaceId;

/// The passes that keep stamps.
#[derive(Clone, Copy, Debug)]
pub enum Pass {
    /// The audit checkpoint signer (`audit::chains`).
    Checkpoint,
    /// The webhook worker's full scan (`integrations::worker`).
    Webhooks,
}

impl Pass {
    fn name(self) -> &'static str {
        match self {
            Pass::Checkpoint => "checkpoint",
            Pass::Webhooks => "webhooks",
        }
    }
}

/// The stamps `pass` saved last (of workspaces that still exist). A row
/// that does not read as a stamp is left out: its workspace gets a look.
pub fn load(conn: &dyn Sql, pass: Pass) -> Result<HashMap<WorkspaceId, FileStamp>> {
    let conn = conn.conn(TOKEN);
    // cross-workspace: one background pass's file stamps of every workspace
    let mut stmt = conn.prepare(
        "SELECT workspace_id, db_len, db_mtime_ns, wal_len, wal_mtime_ns
         FROM idle_stamps WHERE job = ?1",
    )?;
    let mut rows = stmt.query([pass.name()])?;
    let mut out = HashMap::new();
    while let Some(r) = rows.next()? {
        let int = |i| r.get_ref(i).ok().and_then(|v| v.as_i64().ok());
        let id = r.get_ref(0).ok().and_then(|v| v.as_str().ok());
        let (Some(Ok(id)), Some(a), Some(b), Some(c), Some(d)) = (
            id.map(str::parse::<WorkspaceId>),
            int(1),
            int(2),
            int(3),
            int(4),
        ) else {
            continue;
        };
        if let Some(stamp) = from_parts([a, b, c, d]) {
            out.insert(id, stamp);
        }
    }
    Ok(out)
}

/// Brings what `pass` saved from `before` (what it saved last) to `now`:
/// only the rows that changed are written. Stamps of workspaces that no
/// longer exist are left out.
pub fn save(
    tx: &dyn SqlTx,
    pass: Pass,
    before: &HashMap<WorkspaceId, FileStamp>,
    now: &HashMap<WorkspaceId, FileStamp>,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let mut gone =
        tx.prepare_cached("DELETE FROM idle_stamps WHERE job = ?1 AND workspace_id = ?2")?;
    for ws in before.keys().filter(|ws| !now.contains_key(ws)) {
        gone.execute(params![pass.name(), ws.to_string()])?;
    }
    let mut put = tx.prepare_cached(
        "INSERT OR REPLACE INTO idle_stamps
             (job, workspace_id, db_len, db_mtime_ns, wal_len, wal_mtime_ns)
         SELECT ?1, id, ?3, ?4, ?5, ?6 FROM workspaces WHERE id = ?2",
    )?;
    for (ws, stamp) in now.iter().filter(|(ws, st)| before.get(ws) != Some(st)) {
        match to_parts(stamp) {
            Some(n) => put.execute(params![pass.name(), ws.to_string(), n[0], n[1], n[2], n[3]])?,
            None => gone.execute(params![pass.name(), ws.to_string()])?,
        };
    }
    Ok(())
}

fn to_parts(s: &FileStamp) -> Option<[i64; 4]> {
    let [(a, b), (c, d)] = s.0;
    Some([
        i64::try_from(a).ok()?,
        i64::try_from(b).ok()?,
        i64::try_from(c).ok()?,
        i64::try_from(d).ok()?,
    ])
}

fn from_parts(n: [i64; 4]) -> Option<FileStamp> {
    Some(FileStamp([
        (u64::try_from(n[0]).ok()?, u128::try_from(n[1]).ok()?),
        (u64::try_from(n[2]).ok()?, u128::try_from(n[3]).ok()?),
    ]))
}
