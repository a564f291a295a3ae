//! SQL for the notices the trust page promises: incidents with their updates
//! and affected workspaces, subprocessor notices, the mail each notice owes a
//! person (control.db), and a workspace's acknowledgements (its data.db).
//! Summaries are sealed under the platform key, bound to their row.

use rusqlite::{OptionalExtension, params};

use super::control::PlatformKeys;
use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::seal::Slot;
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};

#[derive(Clone, Debug)]
pub struct IncidentRow {
    pub id: String,
    pub declared_at: i64,
    /// `all` or `listed`.
    pub scope: String,
    /// `open` or `resolved`.
    pub status: String,
    pub updated_at: i64,
    pub resolved_at: Option<i64>,
    /// How many workspaces it affects.
    pub workspaces: i64,
}

#[derive(Clone, Debug)]
pub struct UpdateRow {
    pub seq: i64,
    pub at: i64,
    /// `declared`, `updated` or `resolved`.
    pub kind: String,
    pub summary: Option<String>,
}

fn summary_slot<'a>(row: &'a str) -> Slot<'a> {
    Slot::new("incident_updates", row, "summary")
}

pub fn insert_incident(
    tx: &dyn SqlTx,
    id: &str,
    all: bool,
    workspaces: &[WorkspaceId],
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO incidents (id, declared_at, scope, status, updated_at)
         VALUES (?1, ?2, ?3, 'open', ?2)",
        params![id, now, if all { "all" } else { "listed" }],
    )?;
    for ws in workspaces {
        tx.execute(
            "INSERT INTO incident_workspaces (incident_id, workspace_id) VALUES (?1, ?2)",
            params![id, ws.to_string()],
        )?;
    }
    Ok(())
}

/// Appends an update (the declaration is seq 1) and returns its seq.
pub fn insert_update(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    id: &str,
    kind: &str,
    summary: Option<&str>,
    now: i64,
) -> Result<i64> {
    let tx = tx.tx(TOKEN);
    let seq: i64 = tx.query_row(
        "SELECT coalesce(max(seq), 0) + 1 FROM incident_updates WHERE incident_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    let row = format!("{id}:{seq}");
    let ct = summary
        .map(|s| keys.sealer.seal_str(summary_slot(&row), s))
        .transpose()?;
    tx.execute(
        "INSERT INTO incident_updates (incident_id, seq, at, kind, summary_ct)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, seq, now, kind, ct],
    )?;
    let resolved = kind == "resolved";
    tx.execute(
        "UPDATE incidents SET updated_at = ?2,
             status = CASE WHEN ?3 THEN 'resolved' ELSE status END,
             resolved_at = CASE WHEN ?3 THEN ?2 ELSE resolved_at END
         WHERE id = ?1",
        params![id, now, resolved],
    )?;
    Ok(seq)
}

// cross-workspace: an incident's own columns and its count of affected workspaces (platform view)
const INCIDENT_COLUMNS: &str =
    "i.id, i.declared_at, i.scope, i.status, i.updated_at, i.resolved_at,
     (SELECT count(*) FROM incident_workspaces w WHERE w.incident_id = i.id)";

fn incident_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<IncidentRow> {
    Ok(IncidentRow {
        id: r.get(0)?,
        declared_at: r.get(1)?,
        scope: r.get(2)?,
        status: r.get(3)?,
        updated_at: r.get(4)?,
        resolved_at: r.get(5)?,
        workspaces: r.get(6)?,
    })
}

/// Every incident, newest first.
pub fn list_incidents(conn: &dyn Sql) -> Result<Vec<IncidentRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents i ORDER BY i.declared_at DESC, i.id DESC"
    ))?;
    let rows = stmt.query_map([], incident_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn get_incident(conn: &dyn Sql, id: &str) -> Result<Option<IncidentRow>> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            &format!("SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.id = ?1"),
            [id],
            incident_from_row,
        )
        .optional()?)
}

pub fn updates(conn: &dyn Sql, keys: &PlatformKeys, id: &str) -> Result<Vec<UpdateRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT seq, at, kind, summary_ct FROM incident_updates WHERE incident_id = ?1 ORDER BY seq",
    )?;
    let mut rows = stmt.query([id])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let seq: i64 = r.get(0)?;
        let ct: Option<Vec<u8>> = r.get(3)?;
        let row = format!("{id}:{seq}");
        out.push(UpdateRow {
            seq,
            at: r.get(1)?,
            kind: r.get(2)?,
            summary: ct
                .map(|c| keys.sealer.open_string(summary_slot(&row), &c))
                .transpose()?,
        });
    }
    Ok(out)
}

pub fn incident_workspaces(conn: &dyn Sql, id: &str) -> Result<Vec<WorkspaceId>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT workspace_id FROM incident_workspaces WHERE incident_id = ?1 ORDER BY workspace_id",
    )?;
    let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.map_err(Error::from).and_then(|s| s.parse()))
        .collect()
}

/// The incidents that affect one workspace (ids, newest first), for its banner.
pub fn incidents_of_workspace(conn: &dyn Sql, ws: WorkspaceId) -> Result<Vec<IncidentRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {INCIDENT_COLUMNS} FROM incidents i
         JOIN incident_workspaces iw ON iw.incident_id = i.id
         WHERE iw.workspace_id = ?1 ORDER BY i.declared_at DESC, i.id DESC"
    ))?;
    let rows = stmt.query_map([ws.to_string()], incident_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

// ---- mail owed --------------------------------------------------------------

pub fn owe_mail(tx: &dyn SqlTx, notice: &str, users: &[UserId], now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    for u in users {
        tx.execute(
            "INSERT OR IGNORE INTO notice_mail (notice, user_id, created_at) VALUES (?1, ?2, ?3)",
            params![notice, u.to_string(), now],
        )?;
    }
    Ok(())
}

/// Mail still owed: (notice, person), of notices whose key starts with
/// `prefix` created at or before `until`.
pub fn unsent_mail(conn: &dyn Sql, prefix: &str, until: i64) -> Result<Vec<(String, UserId)>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT notice, user_id FROM notice_mail
         WHERE sent_at IS NULL AND created_at <= ?2 AND substr(notice, 1, length(?1)) = ?1
         ORDER BY created_at, notice, user_id",
    )?;
    let rows = stmt.query_map(params![prefix, until], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (n, u) = r?;
        out.push((n, u.parse()?));
    }
    Ok(out)
}

pub fn mark_sent(tx: &dyn SqlTx, notice: &str, user: UserId, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE notice_mail SET sent_at = ?3 WHERE notice = ?1 AND user_id = ?2",
        params![notice, user.to_string(), now],
    )?;
    Ok(())
}

/// (sent, still owed) for notices whose key starts with `prefix`.
pub fn mail_counts(conn: &dyn Sql, prefix: &str) -> Result<(i64, i64)> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT count(sent_at), count(*) - count(sent_at) FROM notice_mail
         WHERE substr(notice, 1, length(?1)) = ?1",
        [prefix],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

// ---- subprocessor notices ---------------------------------------------------

pub fn subprocessor_noticed(conn: &dyn Sql, digest: &str) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT 1 FROM subprocessor_notices WHERE digest = ?1",
            [digest],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn insert_subprocessor_notice(
    tx: &dyn SqlTx,
    digest: &str,
    effective: &str,
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO subprocessor_notices (digest, effective, noticed_at) VALUES (?1, ?2, ?3)",
        params![digest, effective, now],
    )?;
    Ok(())
}

// ---- a workspace's acknowledgements (its data.db) ---------------------------

pub fn acknowledged(conn: &dyn Sql) -> Result<Vec<String>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT incident_id FROM incident_acks")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Records the acknowledgement; false if it was already acknowledged.
pub fn acknowledge(tx: &dyn SqlTx, incident: &str, by: UserId, now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "INSERT OR IGNORE INTO incident_acks (incident_id, acknowledged_at, acknowledged_by)
         VALUES (?1, ?2, ?3)",
        params![incident, now, by.to_string()],
    )?;
    Ok(n == 1)
}
