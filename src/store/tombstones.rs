//! Deleting a record leaves a tombstone: the row without its values, so the
//! search index learns of the deletion and the record's id stays its own.
//! Undoing a deletion fills the tombstone again with values the caller took
//! from the deletion's audit entry (`records::deleted`).

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use super::records::{CollectionRow, RecordRow, next_rev, update_record, write_pii_key};
use super::tenant::TenantTx;
use crate::error::Result;
use crate::model::schema::FieldType;
use crate::model::values::{self, Values};

pub fn delete_record(tx: &dyn SqlTx, seq: i64, now_ms: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let rev = next_rev(tx)?;
    tx.execute(
        "UPDATE records SET deleted = 1, values_ct = NULL, updated_at = ?1, rev = ?2 WHERE seq = ?3",
        params![now_ms, rev, seq],
    )?;
    tx.execute("DELETE FROM record_versions WHERE record_seq = ?1", [seq])?;
    // The pii digests stay with the tombstone: its audit entries still hold
    // the values, and a data subject request must find them.
    tx.execute(
        "DELETE FROM record_keys WHERE record_seq = ?1 AND uniq = 1",
        [seq],
    )?;
    Ok(())
}

/// A deleted record of `collection` (its values empty), if there is one.
pub fn tombstone(conn: &dyn Sql, collection: &str, id: &str) -> Result<Option<RecordRow>> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .prepare_cached(
            "SELECT seq, created_at, updated_at, version FROM records
             WHERE id = ?1 AND collection_id = ?2 AND deleted = 1",
        )?
        .query_row(params![id, collection], |r| {
            Ok(RecordRow {
                seq: r.get(0)?,
                id: id.to_owned(),
                collection_id: collection.to_owned(),
                created_at: r.get(1)?,
                updated_at: r.get(2)?,
                version: r.get(3)?,
                values: Values::new(),
            })
        })
        .optional()?)
}

/// Brings a tombstone back to life with `vals` as its next version: sealed,
/// its unique and pii digests written again (a value another record took
/// since is refused like any duplicate), its history starting anew.
pub fn undelete_record(
    c: &TenantTx<'_>,
    coll: &CollectionRow,
    tomb: &RecordRow,
    vals: Values,
    now_ms: i64,
    actor: Option<&str>,
) -> Result<RecordRow> {
    c.tx.prepare_cached("UPDATE records SET deleted = 0 WHERE seq = ?1 AND deleted = 1")?
        .execute([tomb.seq])?;
    update_record(c, coll, tomb, vals, now_ms, actor)
}

/// Up to `limit` tombstones after seq `after`, as (seq, id, collection):
/// those of `collection` when given, else every one that still holds a
/// personal-data digest.
pub fn tombstones_page(
    conn: &dyn Sql,
    collection: Option<&str>,
    after: i64,
    limit: i64,
) -> Result<Vec<(i64, String, String)>> {
    let conn = conn.conn(TOKEN);
    let sql = match collection {
        Some(_) => {
            "SELECT seq, id, collection_id FROM records
             WHERE deleted = 1 AND collection_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3"
        }
        None => {
            "SELECT seq, id, collection_id FROM records r
             WHERE deleted = 1 AND ?1 IS NULL AND seq > ?2
               AND EXISTS (SELECT 1 FROM record_keys k WHERE k.record_seq = r.seq AND k.uniq = 0)
             ORDER BY seq LIMIT ?3"
        }
    };
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params![collection, after, limit], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Writes a tombstone's personal-data digests again, under the current
/// key, from the values it had when deleted (its unique digests stay gone):
/// a data-subject request finds it after a key rotation or a field newly
/// marked personal data.
pub fn rewrite_pii_keys(
    c: &TenantTx<'_>,
    coll: &CollectionRow,
    seq: i64,
    vals: &Values,
) -> Result<()> {
    c.tx.prepare_cached("DELETE FROM record_keys WHERE record_seq = ?1 AND uniq = 0")?
        .execute([seq])?;
    for f in coll.def.live_fields() {
        let Some(v) = vals.get(&f.id) else { continue };
        if f.pii && f.kind != FieldType::MultiSelect {
            write_pii_key(
                c.tx,
                c.blind,
                &coll.id,
                &f.id,
                seq,
                &values::index_text(f, v),
            )?;
        }
    }
    Ok(())
}
