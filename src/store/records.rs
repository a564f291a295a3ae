//! SQL for records in one workspace database (collections live in
//! `store::collections` and are re-exported here). Every value a person typed
//! goes in sealed; unique and pii values also get keyed digests in
//! `record_keys`.

use rusqlite::{OptionalExtension, Transaction, params};

use super::tenant::TenantTx;
use crate::crypto::{BlindIndex, Sealer, Slot};
use crate::error::{Error, FieldError, Result};
use crate::model::schema::{Definition, FieldType};
use crate::model::values::{self, Values};

pub use super::collections::{
    CollectionRow, collection_ids, count_records, delete_collection, get_collection,
    list_collections, list_collections_page, save_collection, schema_version,
};
use super::handle::{Sql, SqlTx, TOKEN};
pub use super::tombstones::{
    delete_record, rewrite_pii_keys, tombstone, tombstones_page, undelete_record,
};

/// Versions of a record kept for history and restore.
pub const HISTORY_VERSIONS: i64 = 20;

// ---- records --------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct RecordRow {
    pub seq: i64,
    pub id: String,
    pub collection_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
    pub version: i64,
    pub values: Values,
}

fn open_values(sealer: &Sealer, id: &str, ct: &[u8]) -> Result<Values> {
    Ok(serde_json::from_slice(
        &sealer.open(Slot::new("records", id, "values"), ct)?,
    )?)
}

/// The columns `record_from_row` reads, as a literal so that every record
/// query is a constant (no formatting per request).
/// `record_cols!("r.")` names them from a table alias.
macro_rules! record_cols {
    () => {
        "seq, id, collection_id, created_at, updated_at, version, values_ct"
    };
    ($t:literal) => {
        concat!(
            $t,
            "seq, ",
            $t,
            "id, ",
            $t,
            "collection_id, ",
            $t,
            "created_at, ",
            $t,
            "updated_at, ",
            $t,
            "version, ",
            $t,
            "values_ct"
        )
    };
}
pub(crate) use record_cols;

/// The record in `record_cols!` order, starting at column `at`.
pub(crate) fn record_from_row(
    sealer: &Sealer,
    r: &rusqlite::Row<'_>,
    at: usize,
) -> Result<RecordRow> {
    let id: String = r.get(at + 1)?;
    Ok(RecordRow {
        seq: r.get(at)?,
        values: open_values(
            sealer,
            &id,
            r.get_ref(at + 6)?
                .as_blob()
                .map_err(rusqlite::Error::from)?,
        )?,
        id,
        collection_id: r.get(at + 2)?,
        created_at: r.get(at + 3)?,
        updated_at: r.get(at + 4)?,
        version: r.get(at + 5)?,
    })
}

pub fn get_record(
    conn: &dyn Sql,
    sealer: &Sealer,
    collection: &str,
    id: &str,
) -> Result<Option<RecordRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        record_cols!(),
        " FROM records WHERE id = ?1 AND collection_id = ?2 AND deleted = 0"
    ))?;
    let mut rows = stmt.query(params![id, collection])?;
    match rows.next()? {
        Some(r) => Ok(Some(record_from_row(sealer, r, 0)?)),
        None => Ok(None),
    }
}

pub fn get_record_by_seq(conn: &dyn Sql, sealer: &Sealer, seq: i64) -> Result<Option<RecordRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT ",
        record_cols!(),
        " FROM records WHERE seq = ?1 AND deleted = 0"
    ))?;
    let mut rows = stmt.query([seq])?;
    match rows.next()? {
        Some(r) => Ok(Some(record_from_row(sealer, r, 0)?)),
        None => Ok(None),
    }
}

/// Live (not deleted) records in the workspace, all collections.
pub fn count_live(conn: &dyn Sql) -> Result<i64> {
    let conn = conn.conn(TOKEN);
    Ok(
        conn.query_row("SELECT count(*) FROM records WHERE deleted = 0", [], |r| {
            r.get(0)
        })?,
    )
}

pub fn record_exists(conn: &dyn Sql, collection: &str, id: &str) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM records WHERE id = ?1 AND collection_id = ?2 AND deleted = 0",
    )?;
    Ok(stmt
        .query_row(params![id, collection], |_| Ok(()))
        .optional()?
        .is_some())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sort {
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
    UpdatedAsc,
}

impl Sort {
    pub fn parse(s: Option<&str>) -> Result<Self> {
        Ok(match s.unwrap_or("-created_at") {
            "-created_at" => Sort::CreatedDesc,
            "created_at" => Sort::CreatedAsc,
            "-updated_at" => Sort::UpdatedDesc,
            "updated_at" => Sort::UpdatedAsc,
            _ => {
                return Err(Error::field(
                    "sort",
                    "must be one of created_at, -created_at, updated_at, -updated_at",
                ));
            }
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Sort::CreatedDesc => "-created_at",
            Sort::CreatedAsc => "created_at",
            Sort::UpdatedDesc => "-updated_at",
            Sort::UpdatedAsc => "updated_at",
        }
    }
}

/// One page in the given order, after the (time, seq) position of `after`.
pub fn list_records(
    conn: &dyn Sql,
    sealer: &Sealer,
    collection: &str,
    sort: Sort,
    after: Option<(i64, i64)>,
    limit: usize,
) -> Result<Vec<RecordRow>> {
    let conn = conn.conn(TOKEN);
    Ok(list_page(conn, sealer, collection, sort, after, limit, false)?.0)
}

/// One page of `limit` records, and whether more follow. The row after the
/// page is read to learn that, but never decrypted.
pub fn list_page(
    conn: &dyn Sql,
    sealer: &Sealer,
    collection: &str,
    sort: Sort,
    after: Option<(i64, i64)>,
    limit: usize,
    probe_next: bool,
) -> Result<(Vec<RecordRow>, bool)> {
    let conn = conn.conn(TOKEN);
    macro_rules! page_sql {
        ($col:literal, $cmp:literal, $dir:literal) => {
            concat!(
                "SELECT ",
                record_cols!(),
                " FROM records WHERE collection_id = ?1 AND deleted = 0 AND (",
                $col,
                ", seq) ",
                $cmp,
                " (?2, ?3) ORDER BY ",
                $col,
                " ",
                $dir,
                ", seq ",
                $dir,
                " LIMIT ?4"
            )
        };
    }
    let (sql, descending) = match sort {
        Sort::CreatedDesc => (page_sql!("created_at", "<", "DESC"), true),
        Sort::CreatedAsc => (page_sql!("created_at", ">", "ASC"), false),
        Sort::UpdatedDesc => (page_sql!("updated_at", "<", "DESC"), true),
        Sort::UpdatedAsc => (page_sql!("updated_at", ">", "ASC"), false),
    };
    let (t, s) = after.unwrap_or(if descending {
        (i64::MAX, i64::MAX)
    } else {
        (i64::MIN, i64::MIN)
    });
    let mut stmt = conn.prepare_cached(sql)?;
    let fetch = limit + usize::from(probe_next);
    let mut rows = stmt.query(params![collection, t, s, fetch as i64])?;
    let mut out = Vec::with_capacity(limit.min(256));
    while let Some(r) = rows.next()? {
        if out.len() == limit {
            return Ok((out, true));
        }
        out.push(record_from_row(sealer, r, 0)?);
    }
    Ok((out, false))
}

pub(super) fn next_rev(tx: &dyn SqlTx) -> Result<i64> {
    let tx = tx.tx(TOKEN);
    let mut stmt = tx.prepare_cached("SELECT coalesce(max(rev), 0) + 1 FROM records")?;
    Ok(stmt.query_row([], |r| r.get(0))?)
}

fn is_constraint(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation)
}

/// Rewrites a record's digests: unique fields (per collection and field,
/// enforced by a unique index) and pii fields (workspace-wide, for finding a
/// data subject).
pub(super) fn write_keys(
    tx: &dyn SqlTx,
    blind: &BlindIndex,
    collection: &str,
    def: &Definition,
    seq: i64,
    vals: &Values,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.prepare_cached("DELETE FROM record_keys WHERE record_seq = ?1")?
        .execute([seq])?;
    let mut errors = Vec::new();
    for f in def.live_fields() {
        let Some(v) = vals.get(&f.id) else { continue };
        if f.kind == FieldType::MultiSelect {
            continue;
        }
        let text = values::index_text(f, v);
        if f.unique {
            let domain = format!("record.unique:{collection}:{}", f.id);
            let mut all = blind.compute_all(&domain, &text).into_iter();
            let digest = all.next().unwrap_or_default();
            // During a key rotation another record may still hold this value
            // under an older key's digest, which the unique index cannot see.
            if taken_under_older_key(tx, collection, &f.id, seq, all)? {
                errors.push(FieldError {
                    field: format!("values.{}", f.name),
                    message: "must be unique; another record already has this value".into(),
                });
                continue;
            }
            let r = tx
                .prepare_cached(
                    "INSERT INTO record_keys (collection_id, field_id, digest, record_seq, uniq)
                     VALUES (?1, ?2, ?3, ?4, 1)",
                )?
                .execute(params![collection, f.id, digest, seq]);
            match r {
                Ok(_) => {}
                Err(e) if is_constraint(&e) => errors.push(FieldError {
                    field: format!("values.{}", f.name),
                    message: "must be unique; another record already has this value".into(),
                }),
                Err(e) => return Err(e.into()),
            }
        }
        if f.pii {
            write_pii_key(tx, blind, collection, &f.id, seq, &text)?;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(crate::error::Error::Validation(errors))
    }
}

/// A personal-data digest (workspace-wide, for finding a data subject).
pub(super) fn write_pii_key(
    tx: &Transaction<'_>,
    blind: &BlindIndex,
    collection: &str,
    field: &str,
    seq: i64,
    text: &str,
) -> Result<()> {
    let digest = blind.compute("record.pii", text);
    tx.prepare_cached(
        "INSERT INTO record_keys (collection_id, field_id, digest, record_seq, uniq)
         VALUES (?1, ?2, ?3, ?4, 0)",
    )?
    .execute(params![collection, field, digest, seq])?;
    Ok(())
}

fn taken_under_older_key(
    tx: &Transaction<'_>,
    collection: &str,
    field: &str,
    seq: i64,
    older: impl Iterator<Item = Vec<u8>>,
) -> Result<bool> {
    let mut stmt = tx.prepare_cached(
        "SELECT 1 FROM record_keys WHERE collection_id = ?1 AND field_id = ?2 AND uniq = 1
         AND digest = ?3 AND record_seq != ?4",
    )?;
    for d in older {
        if stmt.exists(params![collection, field, d, seq])? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn save_version(
    tx: &Transaction<'_>,
    sealer: &Sealer,
    rec: &RecordRow,
    actor: Option<&str>,
    values_json: &[u8],
) -> Result<()> {
    let slot_row = format!("{}:{}", rec.id, rec.version);
    let ct = sealer.seal(
        Slot::new("record_versions", &slot_row, "values"),
        values_json,
    )?;
    tx.prepare_cached(
        "INSERT INTO record_versions (record_seq, version, time, actor, values_ct)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![rec.seq, rec.version, rec.updated_at, actor, ct])?;
    tx.prepare_cached("DELETE FROM record_versions WHERE record_seq = ?1 AND version <= ?2")?
        .execute(params![rec.seq, rec.version - HISTORY_VERSIONS])?;
    Ok(())
}

pub fn insert_record(
    c: &TenantTx<'_>,
    coll: &CollectionRow,
    vals: Values,
    now_ms: i64,
    actor: Option<&str>,
) -> Result<RecordRow> {
    let id = uuid::Uuid::now_v7().to_string();
    let json = serde_json::to_vec(&vals)?;
    let ct = c.sealer.seal(Slot::new("records", &id, "values"), &json)?;
    let rev = next_rev(c.tx)?;
    c.tx.prepare_cached(
        "INSERT INTO records (id, collection_id, created_at, updated_at, version, rev, values_ct)
         VALUES (?1, ?2, ?3, ?3, 1, ?4, ?5)",
    )?
    .execute(params![id, coll.id, now_ms, rev, ct])?;
    let rec = RecordRow {
        seq: c.tx.last_insert_rowid(),
        id,
        collection_id: coll.id.clone(),
        created_at: now_ms,
        updated_at: now_ms,
        version: 1,
        values: vals,
    };
    write_keys(c.tx, c.blind, &coll.id, &coll.def, rec.seq, &rec.values)?;
    save_version(c.tx, c.sealer, &rec, actor, &json)?;
    Ok(rec)
}

pub fn update_record(
    c: &TenantTx<'_>,
    coll: &CollectionRow,
    old: &RecordRow,
    vals: Values,
    now_ms: i64,
    actor: Option<&str>,
) -> Result<RecordRow> {
    let json = serde_json::to_vec(&vals)?;
    let ct = c
        .sealer
        .seal(Slot::new("records", &old.id, "values"), &json)?;
    let rev = next_rev(c.tx)?;
    // Updated time never goes backwards, so the update order stays a total order.
    let updated = now_ms.max(old.updated_at);
    c.tx.prepare_cached(
        "UPDATE records SET values_ct = ?1, updated_at = ?2, version = version + 1, rev = ?3
         WHERE seq = ?4",
    )?
    .execute(params![ct, updated, rev, old.seq])?;
    let rec = RecordRow {
        updated_at: updated,
        version: old.version + 1,
        values: vals,
        ..old.clone()
    };
    write_keys(c.tx, c.blind, &coll.id, &coll.def, rec.seq, &rec.values)?;
    save_version(c.tx, c.sealer, &rec, actor, &json)?;
    Ok(rec)
}

/// Rebuilds the unique digests of one field over all its records (turning
/// `unique` on); a duplicate fails the schema change.
pub fn backfill_keys(c: &TenantTx<'_>, coll: &CollectionRow) -> Result<()> {
    let mut after = None;
    loop {
        let page = list_records(c.tx, c.sealer, &coll.id, Sort::CreatedAsc, after, 500)?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        after = Some((last.created_at, last.seq));
        for r in &page {
            write_keys(c.tx, c.blind, &coll.id, &coll.def, r.seq, &r.values).map_err(
                |e| match e {
                    Error::Validation(errs) => Error::Validation(
                        errs.into_iter()
                            .map(|fe| FieldError {
                                field: fe.field.replacen("values.", "fields.", 1),
                                message: "cannot be made unique: existing records share a value"
                                    .into(),
                            })
                            .collect(),
                    ),
                    other => other,
                },
            )?;
        }
    }
}

#[derive(Clone, Debug)]
pub struct VersionRow {
    pub version: i64,
    pub time: i64,
    pub actor: Option<String>,
    pub values: Values,
}

pub fn versions(conn: &dyn Sql, sealer: &Sealer, rec: &RecordRow) -> Result<Vec<VersionRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT version, time, actor, values_ct FROM record_versions
         WHERE record_seq = ?1 ORDER BY version DESC",
    )?;
    let mut rows = stmt.query([rec.seq])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let version: i64 = r.get(0)?;
        let ct: Vec<u8> = r.get(3)?;
        let slot_row = format!("{}:{version}", rec.id);
        let plain = sealer.open(Slot::new("record_versions", &slot_row, "values"), &ct)?;
        out.push(VersionRow {
            version,
            time: r.get(1)?,
            actor: r.get(2)?,
            values: serde_json::from_slice(&plain)?,
        });
    }
    Ok(out)
}

/// Idempotency-Key: the record an earlier create with this key made, if the
/// key is younger than a day. A different request under the same key is an
/// error naming the header.
pub fn idempotent_replay(
    tx: &dyn SqlTx,
    key_digest: &[u8],
    request_digest: &[u8],
    now: i64,
) -> Result<Option<i64>> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "DELETE FROM idempotency_keys WHERE created_at < ?1",
        [now - 86_400],
    )?;
    let row: Option<(Vec<u8>, i64)> = tx
        .query_row(
            "SELECT request_digest, record_seq FROM idempotency_keys WHERE key_digest = ?1",
            [key_digest],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    match row {
        Some((d, seq)) if d == request_digest => Ok(Some(seq)),
        Some(_) => Err(Error::field(
            "Idempotency-Key",
            "was already used for a different request; use a new key",
        )),
        None => Ok(None),
    }
}

pub fn remember_idempotency(
    tx: &dyn SqlTx,
    key_digest: &[u8],
    request_digest: &[u8],
    seq: i64,
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO idempotency_keys (key_digest, request_digest, record_seq, created_at)
         VALUES (?1, ?2, ?3, ?4)",
        params![key_digest, request_digest, seq, now],
    )?;
    Ok(())
}

/// Changes after `rev`, in order, for the search index: (seq, rev, collection,
/// values or None when deleted).
pub type Change = (i64, i64, String, Option<Values>);

pub fn changes_since(
    conn: &dyn Sql,
    sealer: &Sealer,
    rev: i64,
    limit: usize,
) -> Result<Vec<Change>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(
        "SELECT seq, rev, collection_id, deleted, id, values_ct FROM records
         WHERE rev > ?1 ORDER BY rev LIMIT ?2",
    )?;
    let mut rows = stmt.query(params![rev, limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let deleted: i64 = r.get(3)?;
        let values = if deleted == 1 {
            None
        } else {
            let id: String = r.get(4)?;
            let ct: Vec<u8> = r.get(5)?;
            Some(open_values(sealer, &id, &ct)?)
        };
        out.push((r.get(0)?, r.get(1)?, r.get(2)?, values));
    }
    Ok(out)
}
