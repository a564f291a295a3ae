//! SQL for the platform area: workspace state and health, and recorded
//! impersonations.

use rusqlite::{OptionalExtension, params};

use super::control::PlatformKeys;
use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::Slot;
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::Role;

/// Sets a workspace's state; returns the state it had (for the audit entry's
/// before), read in the same transaction.
pub fn set_state(tx: &dyn SqlTx, ws: WorkspaceId, state: &str, now: i64) -> Result<String> {
    let tx = tx.tx(TOKEN);
    let before: String = tx
        .query_row(
            "SELECT state FROM workspaces WHERE id = ?1",
            [ws.to_string()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(Error::NotFound("workspace"))?;
    tx.execute(
        "UPDATE workspaces SET state = ?2, updated_at = ?3 WHERE id = ?1",
        params![ws.to_string(), state, now],
    )?;
    Ok(before)
}

pub fn member_count(conn: &dyn Sql, ws: WorkspaceId) -> Result<i64> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT count(*) FROM memberships WHERE workspace_id = ?1",
        [ws.to_string()],
        |r| r.get(0),
    )?)
}

#[derive(Clone, Debug)]
pub struct Impersonation {
    pub id: String,
    pub staff_id: UserId,
    pub workspace_id: WorkspaceId,
    pub reason: String,
    pub role: Role,
    pub expires_at: i64,
}

pub struct NewImpersonation<'a> {
    pub id: &'a str,
    pub staff_id: UserId,
    pub workspace_id: WorkspaceId,
    pub session_hash: &'a [u8],
    pub reason: &'a str,
    pub role: Role,
    pub expires_at: i64,
}

pub fn insert_impersonation(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    i: &NewImpersonation<'_>,
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    // One at a time per session: starting another ends the previous one.
    // cross-workspace: by the staff session, which impersonates one workspace at a time
    tx.execute(
        "UPDATE impersonations SET ended_at = ?2 WHERE session_hash = ?1 AND ended_at IS NULL",
        params![i.session_hash, now],
    )?;
    let reason_ct = keys
        .sealer
        .seal_str(Slot::new("impersonations", i.id, "reason"), i.reason)?;
    tx.execute(
        "INSERT INTO impersonations (id, staff_id, workspace_id, session_hash, reason_ct, role,
                                     started_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            i.id,
            i.staff_id.to_string(),
            i.workspace_id.to_string(),
            i.session_hash,
            reason_ct,
            i.role.as_str(),
            now,
            i.expires_at
        ],
    )?;
    Ok(())
}

/// The live impersonation of a browser session, if any.
pub fn active_for_session(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    session_hash: &[u8],
    now: i64,
) -> Result<Option<Impersonation>> {
    let conn = conn.conn(TOKEN);
    let row = conn
        .query_row(
            "SELECT i.id, i.staff_id, i.workspace_id, i.reason_ct, i.role, i.expires_at
             FROM impersonations i JOIN workspaces w ON w.id = i.workspace_id
             WHERE i.session_hash = ?1 AND i.ended_at IS NULL AND i.expires_at > ?2
               AND w.state = 'active'
             ORDER BY i.started_at DESC LIMIT 1",
            params![session_hash, now],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                ))
            },
        )
        .optional()?;
    row.map(|(id, staff, ws, reason_ct, role, expires)| {
        Ok(Impersonation {
            reason: keys
                .sealer
                .open_string(Slot::new("impersonations", &id, "reason"), &reason_ct)?,
            id,
            staff_id: staff.parse()?,
            workspace_id: ws.parse()?,
            role: role.parse()?,
            expires_at: expires,
        })
    })
    .transpose()
}

pub fn end_impersonation(tx: &dyn SqlTx, id: &str, now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    // cross-workspace: by the impersonation's own random id
    Ok(tx.execute(
        "UPDATE impersonations SET ended_at = ?2 WHERE id = ?1 AND ended_at IS NULL",
        params![id, now],
    )? == 1)
}
