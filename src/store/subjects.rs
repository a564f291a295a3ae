//! SQL for data-subject requests: finding a person's records through the pii
//! blind indexes (never by decrypting everything), and rewriting what
//! anonymisation touches: record values, their versions, their digests, and
//! the sealed details of their audit entries (see `docs/data-subjects.md`).

use rusqlite::{OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::handle::{Sql, SqlTx, TOKEN};
use super::records::{RecordRow, next_rev, write_keys};
use super::tenant::TenantTx;
use crate::crypto::{Sealer, Slot};
use crate::error::Result;
use crate::model::schema::Definition;
use crate::model::values::Values;

/// A record some pii digest pointed at: live, or a tombstone whose audit
/// entries still carry its values.
#[derive(Clone, Debug)]
pub struct Hit {
    pub seq: i64,
    pub id: String,
    pub collection_id: String,
    pub deleted: bool,
    /// The pii fields whose digest matched.
    pub fields: Vec<String>,
}

/// Every record whose pii digests include one of `digests`, oldest first.
pub fn find(conn: &dyn Sql, digests: &[Vec<u8>]) -> Result<Vec<Hit>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(
        "SELECT k.record_seq, r.id, r.collection_id, r.deleted, k.field_id
         FROM record_keys k JOIN records r ON r.seq = k.record_seq
         WHERE k.uniq = 0 AND k.digest = ?1",
    )?;
    let mut hits: Vec<Hit> = Vec::new();
    for d in digests {
        let mut rows = stmt.query([d])?;
        while let Some(r) = rows.next()? {
            let seq: i64 = r.get(0)?;
            let field: String = r.get(4)?;
            match hits.iter_mut().find(|h| h.seq == seq) {
                Some(h) => {
                    if !h.fields.contains(&field) {
                        h.fields.push(field);
                    }
                }
                None => hits.push(Hit {
                    seq,
                    id: r.get(1)?,
                    collection_id: r.get(2)?,
                    deleted: r.get::<_, i64>(3)? == 1,
                    fields: vec![field],
                }),
            }
        }
    }
    hits.sort_by_key(|h| h.seq);
    Ok(hits)
}

/// The ids of every record of a collection, tombstones included.
pub fn record_ids(conn: &dyn Sql, collection: &str) -> Result<Vec<String>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached("SELECT id FROM records WHERE collection_id = ?1")?;
    let rows = stmt.query_map([collection], |r| r.get::<_, String>(0))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The seqs of the audit entries about these records.
pub fn audit_seqs(conn: &dyn Sql, record_ids: &[String]) -> Result<Vec<i64>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(
        "SELECT seq FROM audit_log WHERE target_type = 'record' AND target_id = ?1 ORDER BY seq",
    )?;
    let mut out = Vec::new();
    for id in record_ids {
        let seqs = stmt.query_map([id], |r| r.get::<_, i64>(0))?;
        for s in seqs {
            out.push(s?);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// Replaces one audit entry's sealed details, keeping the digest the chain
/// committed to and naming the entry that did it (the only update the
/// append-only trigger lets through).
pub fn replace_audit_detail(
    tx: &dyn SqlTx,
    sealer: &Sealer,
    seq: i64,
    detail: &serde_json::Value,
    redactor: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    type Sealed = Option<Vec<u8>>;
    let old: Option<(Sealed, Sealed)> = tx
        .query_row(
            "SELECT detail_ct, detail_digest FROM audit_log WHERE seq = ?1",
            [seq],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let Some((Some(old_ct), digest)) = old else {
        return Ok(());
    };
    let committed = digest.unwrap_or_else(|| Sha256::digest(&old_ct).to_vec());
    let seq_s = seq.to_string();
    let ct = sealer.seal(
        Slot::new("audit_log", &seq_s, "detail"),
        &serde_json::to_vec(detail)?,
    )?;
    tx.execute(
        "UPDATE audit_log SET detail_ct = ?1, detail_digest = ?2, redacted_by = ?3 WHERE seq = ?4",
        params![ct, committed, redactor, seq],
    )?;
    Ok(())
}

/// Puts new values into a live record in place (no new version: the old ones
/// are rewritten too), with fresh digests and a new `rev` so the search index
/// re-reads it.
pub fn rewrite_record(
    c: &TenantTx<'_>,
    coll_id: &str,
    def: &Definition,
    rec: &RecordRow,
    vals: &Values,
) -> Result<()> {
    let ct = c.sealer.seal(
        Slot::new("records", &rec.id, "values"),
        &serde_json::to_vec(vals)?,
    )?;
    let rev = next_rev(c.tx)?;
    c.tx.execute(
        "UPDATE records SET values_ct = ?1, rev = ?2 WHERE seq = ?3",
        params![ct, rev, rec.seq],
    )?;
    write_keys(c.tx, c.blind, coll_id, def, rec.seq, vals)
}

/// Rewrites every kept version of a record through `f`.
pub fn rewrite_versions(
    tx: &dyn SqlTx,
    sealer: &Sealer,
    rec: &RecordRow,
    f: impl Fn(&mut Values),
) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    let mut versions = Vec::new();
    {
        let mut stmt =
            tx.prepare("SELECT version, values_ct FROM record_versions WHERE record_seq = ?1")?;
        let mut rows = stmt.query([rec.seq])?;
        while let Some(r) = rows.next()? {
            versions.push((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?));
        }
    }
    for (version, ct) in &versions {
        let slot_row = format!("{}:{version}", rec.id);
        let slot = Slot::new("record_versions", &slot_row, "values");
        let mut vals: Values = serde_json::from_slice(&sealer.open(slot, ct)?)?;
        f(&mut vals);
        let new_ct = sealer.seal(
            Slot::new("record_versions", &slot_row, "values"),
            &serde_json::to_vec(&vals)?,
        )?;
        tx.execute(
            "UPDATE record_versions SET values_ct = ?1 WHERE record_seq = ?2 AND version = ?3",
            params![new_ct, rec.seq, version],
        )?;
    }
    Ok(versions.len())
}

/// Forgets a tombstone's pii digests once its audit entries are scrubbed.
pub fn drop_tombstone_keys(tx: &dyn SqlTx, seq: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute("DELETE FROM record_keys WHERE record_seq = ?1", [seq])?;
    Ok(())
}

/// Forgets the Idempotency-Keys of a record: they hash its request body.
pub fn drop_idempotency(tx: &dyn SqlTx, seq: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute("DELETE FROM idempotency_keys WHERE record_seq = ?1", [seq])?;
    Ok(())
}
