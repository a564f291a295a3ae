//! SQL for changing accounts and memberships: disabling, roles, removal, and
//! service accounts.

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::Role;

/// Disables or re-enables an account; returns whether it was disabled before
/// (for the audit entry), read in the same transaction.
pub fn set_disabled(tx: &dyn SqlTx, user: UserId, disabled: bool, now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let was: bool = tx
        .query_row(
            "SELECT disabled FROM users WHERE id = ?1",
            [user.to_string()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(Error::NotFound("user"))?;
    tx.execute(
        "UPDATE users SET disabled = ?2, updated_at = ?3 WHERE id = ?1",
        params![user.to_string(), disabled, now],
    )?;
    Ok(was)
}

pub fn set_kind_service(tx: &dyn SqlTx, user: UserId) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE users SET kind = 'service' WHERE id = ?1",
        [user.to_string()],
    )?;
    Ok(())
}

pub fn is_service(conn: &dyn Sql, user: UserId) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    let kind: Option<String> = conn
        .query_row(
            "SELECT kind FROM users WHERE id = ?1",
            [user.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    Ok(kind.as_deref() == Some("service"))
}

/// Any membership, whatever the workspace's state (for management, where a
/// removed member must answer 404).
pub fn membership_role(conn: &dyn Sql, ws: WorkspaceId, user: UserId) -> Result<Option<Role>> {
    let conn = conn.conn(TOKEN);
    let role: Option<String> = conn
        .query_row(
            "SELECT role FROM memberships WHERE workspace_id = ?1 AND user_id = ?2",
            params![ws.to_string(), user.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    role.map(|r| r.parse()).transpose()
}

/// User ids of a workspace's members (for `member` fields).
pub fn member_user_ids(
    conn: &dyn Sql,
    ws: WorkspaceId,
) -> Result<std::collections::HashSet<String>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT user_id FROM memberships WHERE workspace_id = ?1")?;
    let ids = stmt
        .query_map([ws.to_string()], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

pub fn owner_count(conn: &dyn Sql, ws: WorkspaceId) -> Result<i64> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT count(*) FROM memberships WHERE workspace_id = ?1 AND role = 'owner'",
        [ws.to_string()],
        |r| r.get(0),
    )?)
}

pub fn set_role(tx: &dyn SqlTx, ws: WorkspaceId, user: UserId, role: Role) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "UPDATE memberships SET role = ?3 WHERE workspace_id = ?1 AND user_id = ?2",
        params![ws.to_string(), user.to_string(), role.as_str()],
    )?;
    if n == 0 {
        return Err(Error::NotFound("member"));
    }
    Ok(())
}

pub fn delete_membership(tx: &dyn SqlTx, ws: WorkspaceId, user: UserId) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "DELETE FROM memberships WHERE workspace_id = ?1 AND user_id = ?2",
        params![ws.to_string(), user.to_string()],
    )?;
    if n == 0 {
        return Err(Error::NotFound("member"));
    }
    Ok(())
}

/// The workspace's service accounts (members whose account is `service`).
pub fn service_account_ids(
    conn: &dyn Sql,
    ws: WorkspaceId,
) -> Result<std::collections::HashSet<UserId>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT u.id FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.workspace_id = ?1 AND u.kind = 'service'",
    )?;
    let rows = stmt.query_map([ws.to_string()], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.map_err(Error::from).and_then(|s| s.parse()))
        .collect()
}

/// A sign-in a user can see and end: a browser session or an API token
/// family.
#[derive(Clone, Debug)]
pub struct SignIn {
    /// Browser: the first 16 bytes of the token's hash, in hex; API: the
    /// family id.
    pub id: String,
    pub browser: bool,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
    pub expires_at: i64,
    pub ip: Option<String>,
    pub device: Option<String>,
}

pub fn session_public_id(id_hash: &[u8]) -> String {
    hex::encode(&id_hash[..id_hash.len().min(16)])
}

pub fn live_sign_ins(conn: &dyn Sql, user: UserId, now: i64) -> Result<Vec<SignIn>> {
    let conn = conn.conn(TOKEN);
    let mut out = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT id_hash, created_at, last_seen_at, min(idle_expires_at, absolute_expires_at), ip,
                device
         FROM sessions WHERE user_id = ?1 AND idle_expires_at > ?2 AND absolute_expires_at > ?2
         ORDER BY created_at",
    )?;
    let mut rows = stmt.query(params![user.to_string(), now])?;
    while let Some(r) = rows.next()? {
        let h: Vec<u8> = r.get(0)?;
        out.push(SignIn {
            id: session_public_id(&h),
            browser: true,
            created_at: r.get(1)?,
            last_seen_at: r.get(2)?,
            expires_at: r.get(3)?,
            ip: r.get(4)?,
            device: r.get(5)?,
        });
    }
    let mut stmt = conn.prepare(
        "SELECT id, created_at, expires_at, ip, device FROM token_families
         WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2 ORDER BY created_at",
    )?;
    let mut rows = stmt.query(params![user.to_string(), now])?;
    while let Some(r) = rows.next()? {
        out.push(SignIn {
            id: r.get(0)?,
            browser: false,
            created_at: r.get(1)?,
            last_seen_at: None,
            expires_at: r.get(2)?,
            ip: r.get(3)?,
            device: r.get(4)?,
        });
    }
    Ok(out)
}

/// Ends one of a user's sign-ins by its public id. False when there is none.
pub fn end_sign_in(tx: &dyn SqlTx, user: UserId, id: &str, now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let mut stmt = tx.prepare("SELECT id_hash FROM sessions WHERE user_id = ?1")?;
    let hashes = stmt
        .query_map([user.to_string()], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if let Some(h) = hashes.iter().find(|h| session_public_id(h) == id) {
        tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [h])?;
        return Ok(true);
    }
    let n = tx.execute(
        "UPDATE token_families SET revoked_at = ?3, revoked_reason = 'ended by the user'
         WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![id, user.to_string(), now],
    )?;
    Ok(n == 1)
}

/// What of a user's sign-ins survives `end_sign_ins`: the one making the
/// change (its session's token hash, or its refresh-token family).
#[derive(Clone, Copy, Default)]
pub struct Keep<'a> {
    pub session: Option<&'a [u8]>,
    pub family: Option<&'a str>,
}

/// Ends every browser session and API sign-in (refresh-token family) of a
/// user, except what `keep` names; `reason` goes on the revoked families.
pub fn end_sign_ins(
    tx: &dyn SqlTx,
    user: UserId,
    keep: Keep<'_>,
    now: i64,
    reason: &str,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "DELETE FROM sessions WHERE user_id = ?1 AND id_hash IS NOT ?2",
        params![user.to_string(), keep.session],
    )?;
    super::tokens::revoke_user_families(tx, user, keep.family, now, reason)?;
    Ok(())
}

/// A person's account as the platform area lists it: the account, how many
/// workspaces it belongs to, and when one of its browser sessions was last
/// seen (sessions that ended are gone, so this is `None` for an account
/// signed out everywhere).
pub struct Overview {
    pub user: super::control::UserRow,
    pub workspaces: i64,
    pub last_seen_at: Option<i64>,
}

/// Every person's account (not the workspaces' service accounts), oldest
/// first.
pub fn people(conn: &dyn Sql, keys: &super::control::PlatformKeys) -> Result<Vec<Overview>> {
    let conn = conn.conn(TOKEN);
    let cols = super::control::USER_COLUMNS
        .split(", ")
        .map(|c| format!("u.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    // cross-workspace: the platform's account list counts each account's
    // memberships in every workspace (a number only, for platform admins)
    let mut stmt = conn.prepare(&format!(
        "SELECT {cols},
                (SELECT count(*) FROM memberships m WHERE m.user_id = u.id),
                (SELECT max(s.last_seen_at) FROM sessions s WHERE s.user_id = u.id)
         FROM users u WHERE u.kind = 'person' ORDER BY u.created_at, u.id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(Overview {
            user: super::control::user_from_row(keys, r)?,
            workspaces: r.get(7)?,
            last_seen_at: r.get(8)?,
        });
    }
    Ok(out)
}

/// How many enabled platform admins there are besides `user`.
pub fn other_enabled_admins(tx: &dyn SqlTx, user: UserId) -> Result<i64> {
    let tx = tx.tx(TOKEN);
    Ok(tx.query_row(
        "SELECT count(*) FROM users
         WHERE platform_admin = 1 AND disabled = 0 AND id != ?1",
        [user.to_string()],
        |r| r.get(0),
    )?)
}

/// Gives or takes platform rights; returns whether the account had them
/// before, read in the same transaction.
pub fn set_platform_admin(tx: &dyn SqlTx, user: UserId, admin: bool, now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let was: bool = tx
        .query_row(
            "SELECT platform_admin FROM users WHERE id = ?1 AND kind = 'person'",
            [user.to_string()],
            |r| r.get(0),
        )
        .optional()?
        .ok_or(Error::NotFound("user"))?;
    tx.execute(
        "UPDATE users SET platform_admin = ?2, updated_at = ?3 WHERE id = ?1",
        params![user.to_string(), admin, now],
    )?;
    Ok(was)
}
