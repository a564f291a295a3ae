//! SQL for deletion and moves: the read-only workspaces (`workspace_lifecycle`),
//! accounts scheduled for deletion, and destroying a workspace's key and rows
//! in control.db (crypto-shredding). Ids, times and states only: nothing here
//! is person-typed.

use rusqlite::{OptionalExtension, params};

use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::Role;

use super::handle::{Sql, SqlTx, TOKEN};
pub use crate::model::Frozen as Kind;

#[derive(Clone, Debug)]
pub struct Lifecycle {
    pub workspace: WorkspaceId,
    pub kind: Kind,
    pub requested_by: Option<UserId>,
    pub requested_at: i64,
    pub due_at: Option<i64>,
}

/// A `workspace_lifecycle` row as stored.
type RawRow = (String, String, Option<String>, i64, Option<i64>);

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawRow> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}

fn parse((ws, kind, by, at, due): RawRow) -> Result<Lifecycle> {
    Ok(Lifecycle {
        workspace: ws.parse()?,
        kind: Kind::parse(&kind)?,
        requested_by: by.map(|b| b.parse()).transpose()?,
        requested_at: at,
        due_at: due,
    })
}

const COLS: &str = "workspace_id, kind, requested_by, requested_at, due_at";

pub fn get(conn: &dyn Sql, ws: WorkspaceId) -> Result<Option<Lifecycle>> {
    let conn = conn.conn(TOKEN);
    conn.query_row(
        &format!("SELECT {COLS} FROM workspace_lifecycle WHERE workspace_id = ?1"),
        [ws.to_string()],
        row,
    )
    .optional()?
    .map(parse)
    .transpose()
}

pub fn all(conn: &dyn Sql) -> Result<Vec<Lifecycle>> {
    let conn = conn.conn(TOKEN);
    // cross-workspace: the lifecycle job and the door's cache read every workspace's state
    let mut stmt = conn.prepare(&format!("SELECT {COLS} FROM workspace_lifecycle"))?;
    let rows = stmt.query_map([], row)?;
    rows.map(|r| parse(r?)).collect()
}

/// Workspaces whose deletion is due at `now`.
pub fn due_deletions(conn: &dyn Sql, now: i64) -> Result<Vec<WorkspaceId>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT workspace_id FROM workspace_lifecycle
         WHERE kind = 'deleting' AND due_at <= ?1 ORDER BY due_at",
    )?;
    let rows = stmt.query_map([now], |r| r.get::<_, String>(0))?;
    rows.map(|r| r?.parse()).collect()
}

/// Marks an active workspace read-only for `kind`. A workspace already
/// deleting or moving is a conflict, naming what it is doing.
pub fn begin(
    tx: &dyn SqlTx,
    ws: WorkspaceId,
    kind: Kind,
    by: Option<UserId>,
    now: i64,
    due_at: Option<i64>,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    if let Some(l) = get(tx, ws)? {
        return Err(Error::Conflict(format!(
            "the workspace is already {}",
            match l.kind {
                Kind::Deleting => "scheduled for deletion",
                Kind::Moving => "being moved to another appliance",
            }
        )));
    }
    tx.execute(
        &format!("INSERT INTO workspace_lifecycle ({COLS}) VALUES (?1, ?2, ?3, ?4, ?5)"),
        params![
            ws.to_string(),
            kind.as_str(),
            by.map(|b| b.to_string()),
            now,
            due_at
        ],
    )?;
    if kind == Kind::Deleting {
        let n = tx.execute(
            "UPDATE workspaces SET state = 'deleting', updated_at = ?2
             WHERE id = ?1 AND state = 'active'",
            params![ws.to_string(), now],
        )?;
        if n == 0 {
            return Err(Error::NotFound("workspace"));
        }
    }
    Ok(())
}

/// Ends a deletion or a move; the workspace is writable again. False when the
/// workspace was not in that state.
pub fn cancel(tx: &dyn SqlTx, ws: WorkspaceId, kind: Kind, now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "DELETE FROM workspace_lifecycle WHERE workspace_id = ?1 AND kind = ?2",
        params![ws.to_string(), kind.as_str()],
    )?;
    if n == 1 && kind == Kind::Deleting {
        tx.execute(
            "UPDATE workspaces SET state = 'active', updated_at = ?2
             WHERE id = ?1 AND state = 'deleting'",
            params![ws.to_string(), now],
        )?;
    }
    Ok(n == 1)
}

/// Destroys a workspace's keys and rows in control.db: its wrapped keys (with
/// `secure_delete`, on for every connection), the workspace row with its
/// memberships, tokens, invitations and impersonations (by cascade), and the
/// checkpoints of its chain. Records the id as shredded.
pub fn shred_rows(tx: &dyn SqlTx, ws: WorkspaceId, reason: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let id = ws.to_string();
    tx.execute("DELETE FROM workspace_keys WHERE workspace_id = ?1", [&id])?;
    tx.execute("DELETE FROM audit_checkpoints WHERE scope = ?1", [&id])?;
    tx.execute("DELETE FROM audit_verifications WHERE scope = ?1", [&id])?;
    let n = tx.execute("DELETE FROM workspaces WHERE id = ?1", [&id])?;
    if n == 0 {
        return Err(Error::NotFound("workspace"));
    }
    tx.execute(
        "INSERT OR REPLACE INTO shredded_workspaces (id, shredded_at, reason) VALUES (?1, ?2, ?3)",
        params![id, now, reason],
    )?;
    set_escrow_stale(tx, true)?;
    Ok(())
}

pub fn shredded_ids(conn: &dyn Sql) -> Result<Vec<String>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT id FROM shredded_workspaces ORDER BY shredded_at, id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// A workspace moved back in after it was moved away is no longer shredded.
pub fn unshred(tx: &dyn SqlTx, ws: WorkspaceId) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "DELETE FROM shredded_workspaces WHERE id = ?1",
        [ws.to_string()],
    )?;
    Ok(())
}

const ESCROW_STALE: &str = "escrow_stale";

/// Set when a key was destroyed and the escrow at the backup targets still
/// holds it; cleared once every escrow is rewritten.
pub fn set_escrow_stale(tx: &dyn SqlTx, stale: bool) -> Result<()> {
    let tx = tx.tx(TOKEN);
    if stale {
        tx.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, x'01')",
            [ESCROW_STALE],
        )?;
    } else {
        tx.execute("DELETE FROM meta WHERE key = ?1", [ESCROW_STALE])?;
    }
    Ok(())
}

pub fn escrow_stale(conn: &dyn Sql) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row("SELECT 1 FROM meta WHERE key = ?1", [ESCROW_STALE], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

// ---- accounts ---------------------------------------------------------------

pub fn user_deletion_due(conn: &dyn Sql, user: UserId) -> Result<Option<i64>> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT due_at FROM user_deletions WHERE user_id = ?1",
            [user.to_string()],
            |r| r.get(0),
        )
        .optional()?)
}

pub fn schedule_user(tx: &dyn SqlTx, user: UserId, now: i64, due_at: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "INSERT INTO user_deletions (user_id, requested_at, due_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id) DO NOTHING",
        params![user.to_string(), now, due_at],
    )?;
    if n == 0 {
        return Err(Error::Conflict(
            "your account is already scheduled for deletion".into(),
        ));
    }
    Ok(())
}

pub fn cancel_user(tx: &dyn SqlTx, user: UserId) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "DELETE FROM user_deletions WHERE user_id = ?1",
        [user.to_string()],
    )? == 1)
}

pub fn due_users(conn: &dyn Sql, now: i64) -> Result<Vec<UserId>> {
    let conn = conn.conn(TOKEN);
    let mut stmt =
        conn.prepare("SELECT user_id FROM user_deletions WHERE due_at <= ?1 ORDER BY due_at")?;
    let rows = stmt.query_map([now], |r| r.get::<_, String>(0))?;
    rows.map(|r| r?.parse()).collect()
}

/// Workspaces where `user` is the only owner, leaving out those being
/// deleted (they go anyway). Deleting the account would leave these without
/// an owner.
pub fn sole_owner_of(conn: &dyn Sql, user: UserId) -> Result<Vec<WorkspaceId>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT m.workspace_id FROM memberships m
         WHERE m.user_id = ?1 AND m.role = ?2
           AND NOT EXISTS (SELECT 1 FROM workspace_lifecycle l
                           WHERE l.workspace_id = m.workspace_id AND l.kind = 'deleting')
           AND (SELECT count(*) FROM memberships o
                WHERE o.workspace_id = m.workspace_id AND o.role = ?2) = 1
         ORDER BY m.workspace_id",
    )?;
    let rows = stmt.query_map(params![user.to_string(), Role::Owner.as_str()], |r| {
        r.get::<_, String>(0)
    })?;
    rows.map(|r| r?.parse()).collect()
}

/// The workspaces an account belongs to (for ending its memberships).
pub fn memberships_of(conn: &dyn Sql, user: UserId) -> Result<Vec<WorkspaceId>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT workspace_id FROM memberships WHERE user_id = ?1")?;
    let rows = stmt.query_map([user.to_string()], |r| r.get::<_, String>(0))?;
    rows.map(|r| r?.parse()).collect()
}

/// Deletes the account row; sessions, sign-ins, tokens, second factors,
/// passkeys, memberships and its deletion schedule go with it (cascade).
pub fn delete_user(tx: &dyn SqlTx, user: UserId) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute("DELETE FROM users WHERE id = ?1", [user.to_string()])?;
    if n == 0 {
        return Err(Error::NotFound("user"));
    }
    Ok(())
}

// ---- moves ------------------------------------------------------------------

/// `person` or `service`.
pub fn user_kind(conn: &dyn Sql, user: UserId) -> Result<String> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT kind FROM users WHERE id = ?1",
        [user.to_string()],
        |r| r.get(0),
    )?)
}

/// An account moved in with a workspace is a service account there too.
pub fn mark_service(tx: &dyn SqlTx, user: UserId) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE users SET kind = 'service' WHERE id = ?1",
        [user.to_string()],
    )?;
    Ok(())
}

/// A further wrapped key of a workspace (one moved in with several).
pub fn insert_key(
    tx: &dyn SqlTx,
    ws: WorkspaceId,
    key_id: u32,
    wrapped: &[u8],
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO workspace_keys (workspace_id, key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![ws.to_string(), key_id, wrapped, now],
    )?;
    Ok(())
}

/// SQLite's own verdict on a database file (`ok` when sound), for a bundle's
/// data.db before it is imported.
pub fn integrity_check(conn: &dyn Sql) -> Result<String> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?)
}
