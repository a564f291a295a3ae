//! SQL for a workspace's collections: their sealed definitions, and the
//! schema version that tells the search index to rebuild. Re-exported from
//! `store::records`.

use rusqlite::{OptionalExtension, Transaction, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::{Sealer, Slot};
use crate::error::Result;
use crate::model::schema::Definition;

#[derive(Clone, Debug)]
pub struct CollectionRow {
    pub id: String,
    pub team_id: Option<String>,
    pub def: std::sync::Arc<Definition>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn collection_from_row(sealer: &Sealer, r: &rusqlite::Row<'_>) -> Result<CollectionRow> {
    let id: String = r.get(0)?;
    let ct: Vec<u8> = r.get(2)?;
    let def: Definition =
        serde_json::from_slice(&sealer.open(Slot::new("collections", &id, "def"), &ct)?)?;
    Ok(CollectionRow {
        id,
        team_id: r.get(1)?,
        def: def.into(),
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

const COLLECTION_COLS: &str = "id, team_id, def_ct, created_at, updated_at";

pub fn list_collections(conn: &dyn Sql, sealer: &Sealer) -> Result<Vec<CollectionRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLLECTION_COLS} FROM collections ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(collection_from_row(sealer, r)?);
    }
    Ok(out)
}

/// One page of collections in list order, after the `(created_at, id)` of
/// the last one seen; at most `limit`.
pub fn list_collections_page(
    conn: &dyn Sql,
    sealer: &Sealer,
    after: Option<(i64, String)>,
    limit: usize,
) -> Result<Vec<CollectionRow>> {
    let conn = conn.conn(TOKEN);
    let (at, id) = after.unwrap_or((i64::MIN, String::new()));
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLLECTION_COLS} FROM collections
         WHERE (created_at, id) > (?1, ?2) ORDER BY created_at, id LIMIT ?3"
    ))?;
    let mut rows = stmt.query(params![at, id, i64::try_from(limit).unwrap_or(i64::MAX)])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(collection_from_row(sealer, r)?);
    }
    Ok(out)
}

pub fn get_collection(conn: &dyn Sql, sealer: &Sealer, id: &str) -> Result<Option<CollectionRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLLECTION_COLS} FROM collections WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(collection_from_row(sealer, r)?)),
        None => Ok(None),
    }
}

pub fn collection_ids(conn: &dyn Sql) -> Result<std::collections::HashSet<String>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT id FROM collections")?;
    let ids = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    Ok(ids)
}

pub fn save_collection(tx: &dyn SqlTx, sealer: &Sealer, c: &CollectionRow) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let ct = sealer.seal(
        Slot::new("collections", &c.id, "def"),
        &serde_json::to_vec(&*c.def)?,
    )?;
    tx.execute(
        "INSERT INTO collections (id, team_id, def_ct, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(id) DO UPDATE SET def_ct = excluded.def_ct, updated_at = excluded.updated_at",
        params![c.id, c.team_id, ct, c.created_at, c.updated_at],
    )?;
    bump_schema_version(tx)
}

pub fn delete_collection(tx: &dyn SqlTx, id: &str) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    let targeted: i64 = tx.query_row(
        "SELECT count(*) FROM records WHERE collection_id = ?1 AND deleted = 0",
        [id],
        |r| r.get(0),
    )?;
    tx.execute(
        "DELETE FROM record_versions WHERE record_seq IN (SELECT seq FROM records WHERE collection_id = ?1)",
        [id],
    )?;
    tx.execute("DELETE FROM record_keys WHERE collection_id = ?1", [id])?;
    tx.execute("DELETE FROM records WHERE collection_id = ?1", [id])?;
    tx.execute("DELETE FROM collections WHERE id = ?1", [id])?;
    // The search index rebuilds on a schema change, dropping the records.
    bump_schema_version(tx)?;
    Ok(usize::try_from(targeted).unwrap_or(0))
}

const SCHEMA_VERSION: &str = "records.schema_version";

/// Bumped by every schema change, so the search index knows to rebuild.
pub fn schema_version(conn: &dyn Sql) -> Result<u64> {
    let conn = conn.conn(TOKEN);
    let v: Option<Vec<u8>> = conn
        .query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [SCHEMA_VERSION],
            |r| r.get(0),
        )
        .optional()?;
    Ok(v.and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0))
}

fn bump_schema_version(tx: &Transaction<'_>) -> Result<()> {
    let next = schema_version(tx)? + 1;
    tx.execute(
        "INSERT INTO meta(key, value) VALUES (?1, ?2)
         ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        params![SCHEMA_VERSION, next.to_string().into_bytes()],
    )?;
    Ok(())
}

/// Live records in a collection (an index-only count: nothing decrypted).
pub fn count_records(conn: &dyn Sql, collection: &str) -> Result<usize> {
    let conn = conn.conn(TOKEN);
    let n: i64 = conn
        .prepare_cached("SELECT count(*) FROM records WHERE collection_id = ?1 AND deleted = 0")?
        .query_row([collection], |r| r.get(0))?;
    Ok(usize::try_from(n).unwrap_or(usize::MAX))
}
