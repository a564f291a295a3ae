//! Workspace data key rotation, the SQL half. control.db keeps one
//! `key_rotations` row per workspace; the tenant database is re-sealed in
//! small batches, each its own transaction, found by the key id every
//! ciphertext carries in its header (bytes 2..5), so the job needs no cursor:
//! after a restart it simply looks again for ciphertexts under an old key.

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::control::Control;
use super::handle::{Sql, SqlTx, TOKEN};
use super::tenant::TenantTx;
use crate::crypto::{DataKey, Slot};
use crate::error::{Error, Result};
use crate::ids::WorkspaceId;

/// (column, the slot's column name).
type SealedColumn = (&'static str, &'static str);
/// (table, the SQL of the slot's row, its sealed columns).
type SealedTable = (&'static str, &'static str, &'static [SealedColumn]);

/// Every column sealed under the workspace key: table, the SQL of the slot's
/// row as the writer formats it, and (column, slot column) pairs. A new
/// sealed column must be added here, or rotation leaves it under the old key
/// and refuses to destroy that key (`remaining` never reaches 0).
const SEALED: &[SealedTable] = &[
    ("audit_log", "CAST(seq AS TEXT)", &[("detail_ct", "detail")]),
    ("teams", "id", &[("name_ct", "name")]),
    ("collections", "id", &[("def_ct", "def")]),
    ("records", "id", &[("values_ct", "values")]),
    (
        "files",
        "record_id || '/' || field_id || '/' || id",
        &[("key_ct", "key")],
    ),
    (
        "record_versions",
        "(SELECT r.id FROM records r WHERE r.seq = record_versions.record_seq) || ':' || version",
        &[("values_ct", "values")],
    ),
    (
        "integration_secrets",
        "id",
        &[
            ("name_ct", "name"),
            ("value_ct", "value"),
            ("last4_ct", "last4"),
            ("previous_ct", "previous"),
        ],
    ),
    (
        "webhook_endpoints",
        "id",
        &[
            ("url_ct", "url"),
            ("secret_ct", "secret"),
            ("previous_ct", "previous"),
        ],
    ),
    ("webhook_deliveries", "id", &[("payload_ct", "payload")]),
    ("inbound_integrations", "id", &[("name_ct", "name")]),
    (
        "inbound_events",
        "id",
        &[
            ("msg_id_ct", "msg_id"),
            ("body_ct", "body"),
            ("error_ct", "error"),
        ],
    ),
];

/// A workspace's newest rotation.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Rotation {
    pub workspace_id: String,
    pub requested_at: i64,
    pub new_key_id: Option<u32>,
    pub resealed: i64,
    pub remaining: Option<i64>,
    pub finished_at: Option<i64>,
}

fn rotation_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Rotation> {
    Ok(Rotation {
        workspace_id: r.get(0)?,
        requested_at: r.get(1)?,
        new_key_id: r.get(2)?,
        resealed: r.get(3)?,
        remaining: r.get(4)?,
        finished_at: r.get(5)?,
    })
}

const COLS: &str = "workspace_id, requested_at, new_key_id, resealed, remaining, finished_at";

pub fn get(c: &dyn Sql, ws: WorkspaceId) -> Result<Option<Rotation>> {
    let c = c.conn(TOKEN);
    Ok(c.query_row(
        &format!("SELECT {COLS} FROM key_rotations WHERE workspace_id = ?1"),
        [ws.to_string()],
        rotation_from_row,
    )
    .optional()?)
}

/// Rotations not yet finished (to run, or resume after a restart).
pub fn unfinished(c: &dyn Sql) -> Result<Vec<Rotation>> {
    let c = c.conn(TOKEN);
    // cross-workspace: the key-rotation job resumes every workspace's unfinished rotation
    let mut stmt = c.prepare(&format!(
        "SELECT {COLS} FROM key_rotations WHERE finished_at IS NULL ORDER BY requested_at"
    ))?;
    let rows = stmt.query_map([], rotation_from_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records a request; false if one is already under way for `ws`.
pub fn request(tx: &dyn SqlTx, ws: WorkspaceId, by: Option<&str>, now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let running: bool = tx
        .prepare("SELECT 1 FROM key_rotations WHERE workspace_id = ?1 AND finished_at IS NULL")?
        .exists([ws.to_string()])?;
    if running {
        return Ok(false);
    }
    tx.execute(
        "INSERT OR REPLACE INTO key_rotations (workspace_id, requested_at, requested_by)
         VALUES (?1, ?2, ?3)",
        params![ws.to_string(), now, by],
    )?;
    Ok(true)
}

/// Step 1: a new data key, wrapped under the master key this process holds,
/// which must still be the one control.db is under (a server started before
/// a master key rotation must not add a key the new master cannot open).
/// Idempotent: returns the key already added by an interrupted run.
pub fn add_key(control: &Control, ws: WorkspaceId) -> Result<(u32, bool)> {
    let master = &control.master;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    control.db.write(|tx| {
        let tx = tx.tx(TOKEN);
        let check: Vec<u8> =
            tx.query_row("SELECT value FROM meta WHERE key = 'key_check'", [], |r| r.get(0))?;
        master.verify_key_check(&check).map_err(|_| {
            Error::Config("the master key was rotated since this server started; restart it".into())
        })?;
        let row = get(tx, ws)?.ok_or(Error::NotFound("key rotation"))?;
        if let Some(id) = row.new_key_id {
            return Ok((id, false));
        }
        let max: u32 = tx.query_row(
            "SELECT coalesce(max(key_id), 0) FROM workspace_keys WHERE workspace_id = ?1",
            [ws.to_string()],
            |r| r.get(0),
        )?;
        let dek = DataKey::generate(max + 1);
        tx.execute(
            "INSERT INTO workspace_keys (workspace_id, key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
            params![ws.to_string(), dek.key_id, master.wrap_key(&ws.to_string(), &dek)?, now],
        )?;
        tx.execute(
            "UPDATE key_rotations SET new_key_id = ?2 WHERE workspace_id = ?1",
            params![ws.to_string(), dek.key_id],
        )?;
        Ok((dek.key_id, true))
    })
}

pub fn set_progress(
    control: &Control,
    ws: WorkspaceId,
    resealed: i64,
    remaining: i64,
) -> Result<()> {
    control.db.write(|tx| {
        let tx = tx.tx(TOKEN);
        tx.execute(
            "UPDATE key_rotations SET resealed = ?2, remaining = ?3 WHERE workspace_id = ?1",
            params![ws.to_string(), resealed, remaining],
        )?;
        Ok(())
    })
}

/// Last step: deletes every key of `ws` but `keep` and closes the rotation,
/// with `audit` (the platform entry) in the same transaction.
pub fn destroy_old_keys(
    control: &Control,
    ws: WorkspaceId,
    keep: u32,
    now: i64,
    audit: impl FnOnce(&dyn SqlTx, &[u32]) -> Result<()>,
) -> Result<Vec<u32>> {
    control.db.write(|tx| {
        let tx = tx.tx(TOKEN);
        let old: Vec<u32> = {
            let mut stmt = tx.prepare(
                "SELECT key_id FROM workspace_keys WHERE workspace_id = ?1 AND key_id != ?2",
            )?;
            let it = stmt.query_map(params![ws.to_string(), keep], |r| r.get(0))?;
            it.collect::<rusqlite::Result<_>>()?
        };
        tx.execute(
            "DELETE FROM workspace_keys WHERE workspace_id = ?1 AND key_id != ?2",
            params![ws.to_string(), keep],
        )?;
        tx.execute(
            "UPDATE key_rotations SET finished_at = ?2, remaining = 0 WHERE workspace_id = ?1",
            params![ws.to_string(), now],
        )?;
        audit(tx, &old)?;
        Ok(old)
    })
}

/// How many sealed values still name a key other than `current`.
pub fn count_old(c: &dyn Sql, current: u32) -> Result<i64> {
    let c = c.conn(TOKEN);
    let id = current.to_be_bytes();
    let mut n = 0i64;
    for (table, _, cols) in SEALED {
        for (col, _) in *cols {
            let k: i64 = c.query_row(
                &format!("SELECT count(*) FROM {table} WHERE {col} IS NOT NULL AND substr({col}, 2, 4) != ?1"),
                [&id[..]],
                |r| r.get(0),
            )?;
            n += k;
        }
    }
    Ok(n)
}

/// Re-seals up to `limit` values under the current key, in the caller's
/// transaction; returns how many. Records get their blind-index digests
/// recomputed, inbound events their dedup digest, audit entries keep the
/// digest their chain committed to.
///
/// `cursor` holds, per sealed column, the last rowid looked at in this run, so
/// each batch reads on from there instead of rescanning what it re-sealed
/// (rows written behind it already use the new key; a restart begins again
/// at 0, and the final `count_old` is what proves nothing was missed).
pub fn reseal_batch(t: &TenantTx<'_>, limit: usize, cursor: &mut Vec<i64>) -> Result<usize> {
    let current = t.sealer.current_key_id().to_be_bytes();
    let mut done = 0usize;
    let columns = SEALED
        .iter()
        .flat_map(|(table, row_sql, cols)| cols.iter().map(move |c| (*table, *row_sql, *c)));
    for (i, (table, row_sql, (col, slot_col))) in columns.enumerate() {
        if cursor.len() <= i {
            cursor.resize(i + 1, 0);
        }
        if done >= limit {
            return Ok(done);
        }
        let rows: Vec<(i64, String, Vec<u8>)> = {
            let mut stmt = t.tx.prepare(&format!(
                "SELECT rowid, {row_sql}, {col} FROM {table}
                 WHERE rowid > ?3 AND {col} IS NOT NULL AND substr({col}, 2, 4) != ?1
                 ORDER BY rowid LIMIT ?2"
            ))?;
            let it = stmt.query_map(
                params![&current[..], (limit - done) as i64, cursor[i]],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )?;
            it.collect::<rusqlite::Result<_>>()?
        };
        if let Some((last, ..)) = rows.last() {
            cursor[i] = *last;
        }
        for (rowid, slot_row, ct) in rows {
            let slot = Slot::new(table, &slot_row, slot_col);
            let plain = t.sealer.open(slot, &ct)?;
            let fresh = t.sealer.seal(slot, &plain)?;
            match table {
                "audit_log" => {
                    t.tx.execute(
                        "UPDATE audit_log SET detail_ct = ?1, resealed = 1,
                             detail_digest = coalesce(detail_digest, ?2) WHERE rowid = ?3",
                        params![fresh, Sha256::digest(&ct).to_vec(), rowid],
                    )?;
                }
                _ => {
                    t.tx.execute(
                        &format!("UPDATE {table} SET {col} = ?1 WHERE rowid = ?2"),
                        params![fresh, rowid],
                    )?;
                }
            }
            match (table, col) {
                ("records", _) => reindex_record(t, rowid, &plain)?,
                ("inbound_events", "msg_id_ct") => reindex_event(t, rowid, &plain)?,
                _ => {}
            }
            done += 1;
        }
    }
    Ok(done)
}

fn reindex_record(t: &TenantTx<'_>, seq: i64, plain: &[u8]) -> Result<()> {
    let coll_id: String = t.tx.query_row(
        "SELECT collection_id FROM records WHERE seq = ?1",
        [seq],
        |r| r.get(0),
    )?;
    let coll = super::collections::get_collection(t.tx, t.sealer, &coll_id)?
        .ok_or(Error::internal("a record names a missing collection"))?;
    let values: crate::model::values::Values = serde_json::from_slice(plain)?;
    super::records::write_keys(t.tx, t.blind, &coll.id, &coll.def, seq, &values)
}

fn reindex_event(t: &TenantTx<'_>, rowid: i64, plain: &[u8]) -> Result<()> {
    let integration: String = t.tx.query_row(
        "SELECT integration_id FROM inbound_events WHERE rowid = ?1",
        [rowid],
        |r| r.get(0),
    )?;
    let msg_id = String::from_utf8_lossy(plain);
    let digest = t
        .blind
        .compute("inbound.msg_id", &format!("{integration}:{msg_id}"));
    t.tx.execute(
        "UPDATE inbound_events SET msg_digest = ?1 WHERE rowid = ?2",
        params![digest, rowid],
    )?;
    Ok(())
}
