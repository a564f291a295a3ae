//! SQL for invitations.

use rusqlite::{OptionalExtension, params};

use super::control::{PlatformKeys, email_index};
use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::Slot;
use crate::crypto::blind::normalize_email;
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::Role;

#[derive(Clone, Debug)]
pub struct InvitationRow {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub email: String,
    pub role: Role,
    pub invited_by: UserId,
    pub created_at: i64,
    pub expires_at: i64,
    pub accepted_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub struct NewInvitation<'a> {
    pub id: &'a str,
    pub workspace_id: WorkspaceId,
    pub token_hash: &'a [u8],
    pub email: &'a str,
    pub role: Role,
    pub invited_by: UserId,
    pub expires_at: i64,
}

pub fn insert(tx: &dyn SqlTx, keys: &PlatformKeys, i: &NewInvitation<'_>, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let email_ct = keys.sealer.seal_str(
        Slot::new("invitations", i.id, "email"),
        &normalize_email(i.email),
    )?;
    tx.execute(
        "INSERT INTO invitations (id, workspace_id, token_hash, email_bidx, email_ct, role,
                                  invited_by, created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            i.id,
            i.workspace_id.to_string(),
            i.token_hash,
            email_index(keys, i.email),
            email_ct,
            i.role.as_str(),
            i.invited_by.to_string(),
            now,
            i.expires_at
        ],
    )?;
    Ok(())
}

const COLUMNS: &str = "id, workspace_id, email_ct, role, invited_by, created_at, expires_at,
                       accepted_at, revoked_at";

fn from_row(keys: &PlatformKeys, r: &rusqlite::Row<'_>) -> Result<InvitationRow> {
    let id: String = r.get(0)?;
    let ws: String = r.get(1)?;
    let ct: Vec<u8> = r.get(2)?;
    let role: String = r.get(3)?;
    let by: String = r.get(4)?;
    Ok(InvitationRow {
        email: keys
            .sealer
            .open_string(Slot::new("invitations", &id, "email"), &ct)?,
        id,
        workspace_id: ws.parse()?,
        role: role.parse()?,
        invited_by: by.parse()?,
        created_at: r.get(5)?,
        expires_at: r.get(6)?,
        accepted_at: r.get(7)?,
        revoked_at: r.get(8)?,
    })
}

pub fn list(conn: &dyn Sql, keys: &PlatformKeys, ws: WorkspaceId) -> Result<Vec<InvitationRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM invitations WHERE workspace_id = ?1 ORDER BY created_at DESC, id"
    ))?;
    let mut rows = stmt.query([ws.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(from_row(keys, r)?);
    }
    Ok(out)
}

/// A live invitation by its token's hash: not accepted, revoked or expired,
/// in an active workspace.
pub fn find_live(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    token_hash: &[u8],
    now: i64,
) -> Result<Option<InvitationRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {} FROM invitations i JOIN workspaces w ON w.id = i.workspace_id
         WHERE i.token_hash = ?1 AND i.accepted_at IS NULL AND i.revoked_at IS NULL
           AND i.expires_at > ?2 AND w.state = 'active'
           AND NOT EXISTS (SELECT 1 FROM workspace_lifecycle l WHERE l.workspace_id = w.id)",
        COLUMNS
            .split(',')
            .map(|c| format!("i.{}", c.trim()))
            .collect::<Vec<_>>()
            .join(", ")
    ))?;
    let mut rows = stmt.query(params![token_hash, now])?;
    match rows.next()? {
        Some(r) => Ok(Some(from_row(keys, r)?)),
        None => Ok(None),
    }
}

pub fn has_pending_for(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    ws: WorkspaceId,
    email: &str,
    now: i64,
) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT 1 FROM invitations WHERE workspace_id = ?1 AND email_bidx = ?2
               AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > ?3",
            params![ws.to_string(), email_index(keys, email), now],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Marks it accepted; false when someone else used it first.
pub fn mark_accepted(tx: &dyn SqlTx, id: &str, now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    // cross-workspace: by the invitation's own random id, which the accept flow read (with its workspace) from the verified link
    Ok(tx.execute(
        "UPDATE invitations SET accepted_at = ?2 WHERE id = ?1 AND accepted_at IS NULL
           AND revoked_at IS NULL",
        params![id, now],
    )? == 1)
}

pub fn revoke(tx: &dyn SqlTx, ws: WorkspaceId, id: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "UPDATE invitations SET revoked_at = coalesce(revoked_at, ?3)
         WHERE workspace_id = ?1 AND id = ?2 AND accepted_at IS NULL",
        params![ws.to_string(), id, now],
    )?;
    if n == 0 {
        return Err(Error::NotFound("invitation"));
    }
    Ok(())
}
