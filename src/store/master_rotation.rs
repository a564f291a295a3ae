//! Master key rotation in control.db: every wrapped data key (the platform's
//! and each workspace's) and the key check are rewritten under the new master
//! key in ONE SQLite transaction, with its platform audit entry. A crash
//! before the commit leaves everything under the old key, after it everything
//! under the new one: never a mix. The path of the new key file is recorded
//! beside it (`master_key_pending_file`), so a restart whose configured key is
//! still the old one finds the new key and starts (see `Control::open`).

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::crypto::MasterKey;
use crate::error::Result;
use crate::model::audit::{Actor, NewEntry, RequestMeta};

use super::control::Control;
use super::handle::{Sql, SqlTx, TOKEN};

pub const PENDING_FILE: &str = "master_key_pending_file";
const SINCE: &str = "master_key_since";
const ROTATED_AT: &str = "master_key_rotated_at";
const KEY_CHECK: &str = "key_check";

/// When the master key in use was made, and when it last replaced another.
#[derive(Clone, Debug, Default)]
pub struct MasterKeyInfo {
    /// Unix time the current master key began (its rotation, or `aura init`).
    pub since: Option<i64>,
    pub last_rotation: Option<i64>,
    /// A rotation whose new key file has not yet replaced the configured one.
    pub pending_file: Option<PathBuf>,
}

fn meta_text(c: &Connection, key: &str) -> Result<Option<String>> {
    let v: Option<Vec<u8>> = c
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?;
    Ok(v.and_then(|b| String::from_utf8(b).ok()))
}

fn set_meta(tx: &Transaction<'_>, key: &str, value: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![key, value.as_bytes()],
    )?;
    Ok(())
}

/// `aura init`: the master key begins now.
pub fn record_since(tx: &dyn SqlTx, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    set_meta(tx, SINCE, &now.to_string())
}

pub fn info(c: &dyn Sql) -> Result<MasterKeyInfo> {
    let c = c.conn(TOKEN);
    let int = |k| -> Result<Option<i64>> { Ok(meta_text(c, k)?.and_then(|v| v.parse().ok())) };
    let since = match int(SINCE)? {
        Some(s) => Some(s),
        // Data dirs from before rotation existed: the key is as old as the
        // platform's first data key.
        None => c.query_row("SELECT min(created_at) FROM platform_keys", [], |r| {
            r.get(0)
        })?,
    };
    Ok(MasterKeyInfo {
        since,
        last_rotation: int(ROTATED_AT)?,
        // A file already moved over the configured one is no longer pending.
        pending_file: meta_text(c, PENDING_FILE)?
            .map(PathBuf::from)
            .filter(|p| p.exists()),
    })
}

/// The pending key file a rotation recorded, read from a closed control.db
/// without writing to it (the caller's key did not open it).
pub fn pending_file_readonly(conn: &dyn Sql) -> Result<Option<PathBuf>> {
    let conn = conn.conn(TOKEN);
    Ok(meta_text(conn, PENDING_FILE)?.map(PathBuf::from))
}

/// How many wrapped keys one rotation rewrote.
#[derive(Clone, Copy, Debug)]
pub struct Rewrapped {
    pub platform: usize,
    pub workspace: usize,
}

/// Rewraps every data key from `old` to `new` in one transaction, with the key
/// check, the pending key file and the audit entry. `crash_point` lets tests
/// abort the process between the steps (it does nothing in release builds).
pub fn rewrap_all(
    control: &Control,
    new: &MasterKey,
    new_file: &Path,
    now: i64,
    crash_point: &dyn Fn(&str),
) -> Result<Rewrapped> {
    let old = &control.master;
    let meta = RequestMeta::cli();
    control.db.write(|tx| {
        let tx = tx.tx(TOKEN);
        let platform = rewrap_platform(tx, old, new)?;
        crash_point("rewrap-platform");
        let workspace = rewrap_workspaces(tx, old, new)?;
        crash_point("rewrap-workspaces");
        tx.execute(
            "UPDATE meta SET value = ?1 WHERE key = ?2",
            params![new.make_key_check()?, KEY_CHECK],
        )?;
        set_meta(tx, SINCE, &now.to_string())?;
        set_meta(tx, ROTATED_AT, &now.to_string())?;
        set_meta(tx, PENDING_FILE, &new_file.display().to_string())?;
        let entry = NewEntry::new(Actor::Operator, "keys.master_rotated", &meta)
            .target("master_key", "platform")
            .after(serde_json::json!({
                "platform_keys": platform,
                "workspace_keys": workspace,
            }));
        super::audit::append(tx, &control.keys.sealer, now, &entry)?;
        crash_point("before-commit");
        Ok(Rewrapped {
            platform,
            workspace,
        })
    })
}

fn rewrap_platform(tx: &Transaction<'_>, old: &MasterKey, new: &MasterKey) -> Result<usize> {
    let rows: Vec<(u32, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT key_id, wrapped FROM platform_keys")?;
        let it = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        it.collect::<rusqlite::Result<_>>()?
    };
    for (key_id, wrapped) in &rows {
        let dek = old.unwrap_key("platform", *key_id, wrapped)?;
        tx.execute(
            "UPDATE platform_keys SET wrapped = ?1 WHERE key_id = ?2",
            params![new.wrap_key("platform", &dek)?, key_id],
        )?;
    }
    Ok(rows.len())
}

fn rewrap_workspaces(tx: &Transaction<'_>, old: &MasterKey, new: &MasterKey) -> Result<usize> {
    let rows: Vec<(String, u32, Vec<u8>)> = {
        let mut stmt = tx.prepare("SELECT workspace_id, key_id, wrapped FROM workspace_keys")?;
        let it = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        it.collect::<rusqlite::Result<_>>()?
    };
    for (ws, key_id, wrapped) in &rows {
        let dek = old.unwrap_key(ws, *key_id, wrapped)?;
        tx.execute(
            "UPDATE workspace_keys SET wrapped = ?1 WHERE workspace_id = ?2 AND key_id = ?3",
            params![new.wrap_key(ws, &dek)?, ws, key_id],
        )?;
    }
    Ok(rows.len())
}

/// After the new key file replaced the configured one: nothing is pending.
pub fn clear_pending(control: &Control) -> Result<()> {
    control.db.write(|tx| {
        let tx = tx.tx(TOKEN);
        tx.execute("DELETE FROM meta WHERE key = ?1", [PENDING_FILE])?;
        Ok(())
    })
}

/// Whether this key opens control.db's key check (read inside the open db).
pub fn key_matches(control: &Control, key: &MasterKey) -> Result<bool> {
    let check: Vec<u8> = control.db.read(|c| {
        let c = c.conn(TOKEN);
        Ok(
            c.query_row("SELECT value FROM meta WHERE key = ?1", [KEY_CHECK], |r| {
                r.get(0)
            })?,
        )
    })?;
    Ok(key.verify_key_check(&check).is_ok())
}
