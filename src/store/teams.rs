//! SQL for a workspace's teams and their members. Team names are sealed.

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::{Sealer, Slot};
use crate::error::{Error, Result};

#[derive(Clone, Debug)]
pub struct TeamRow {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    /// (user id, "lead" | "member")
    pub members: Vec<(String, String)>,
}

pub fn list_teams(conn: &dyn Sql, sealer: &Sealer) -> Result<Vec<TeamRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt =
        conn.prepare("SELECT id, name_ct, created_at FROM teams ORDER BY created_at, id")?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let ct: Vec<u8> = r.get(1)?;
        out.push(TeamRow {
            name: sealer.open_string(Slot::new("teams", &id, "name"), &ct)?,
            id,
            created_at: r.get(2)?,
            members: Vec::new(),
        });
    }
    let mut stmt =
        conn.prepare("SELECT team_id, user_id, role FROM team_members ORDER BY role, created_at")?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let team: String = r.get(0)?;
        if let Some(t) = out.iter_mut().find(|t| t.id == team) {
            t.members.push((r.get(1)?, r.get(2)?));
        }
    }
    Ok(out)
}

pub fn insert_team(tx: &dyn SqlTx, sealer: &Sealer, id: &str, name: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let ct = sealer.seal_str(Slot::new("teams", id, "name"), name)?;
    tx.execute(
        "INSERT INTO teams (id, name_ct, created_at) VALUES (?1, ?2, ?3)",
        params![id, ct, now],
    )?;
    Ok(())
}

pub fn team_exists(conn: &dyn Sql, id: &str) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row("SELECT 1 FROM teams WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub fn delete_team(tx: &dyn SqlTx, id: &str) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let owns: i64 = tx.query_row(
        "SELECT count(*) FROM collections WHERE team_id = ?1",
        [id],
        |r| r.get(0),
    )?;
    if owns > 0 {
        return Err(Error::Conflict(
            "the team owns collections; move or delete them first".into(),
        ));
    }
    Ok(tx.execute("DELETE FROM teams WHERE id = ?1", [id])? > 0)
}

pub fn set_team_member(tx: &dyn SqlTx, team: &str, user: &str, role: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO team_members (team_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(team_id, user_id) DO UPDATE SET role = excluded.role",
        params![team, user, role, now],
    )?;
    Ok(())
}

pub fn remove_team_member(tx: &dyn SqlTx, team: &str, user: &str) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "DELETE FROM team_members WHERE team_id = ?1 AND user_id = ?2",
        params![team, user],
    )? > 0)
}

/// The teams a user belongs to: (team id, role).
pub fn teams_of(conn: &dyn Sql, user: &str) -> Result<Vec<(String, String)>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT team_id, role FROM team_members WHERE user_id = ?1")?;
    let rows = stmt
        .query_map([user], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Drops a user from every team (when they leave the workspace).
pub fn remove_user_everywhere(tx: &dyn SqlTx, user: &str) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute("DELETE FROM team_members WHERE user_id = ?1", [user])?)
}

pub fn rename_team(tx: &dyn SqlTx, sealer: &Sealer, id: &str, name: &str) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let ct = sealer.seal_str(Slot::new("teams", id, "name"), name)?;
    if tx.execute(
        "UPDATE teams SET name_ct = ?2 WHERE id = ?1",
        params![id, ct],
    )? == 0
    {
        return Err(Error::NotFound("team"));
    }
    Ok(())
}
