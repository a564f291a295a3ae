//! SQL for the audit chains. `append` must be called with the transaction of the
//! change it records, so both commit or neither does.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::audit::{GENESIS, NewEntry, StoredEntry};
use crate::crypto::{Sealer, Slot};
use crate::error::Result;

pub fn append(tx: &Transaction<'_>, sealer: &Sealer, now: i64, e: &NewEntry<'_>) -> Result<i64> {
    let last: Option<(i64, Vec<u8>)> = tx
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_vec()),
    };
    let detail = serde_json::json!({
        "before": e.before,
        "after": e.after,
        "user_agent": e.meta.user_agent,
    });
    let seq_s = seq.to_string();
    let detail_ct = sealer.seal(
        Slot::new("audit_log", &seq_s, "detail"),
        &serde_json::to_vec(&detail)?,
    )?;
    let mut entry = StoredEntry {
        seq,
        time: now,
        actor_type: e.actor.kind().to_owned(),
        actor_id: e.actor.id(),
        action: e.action.to_owned(),
        target_type: e.target_type.map(str::to_owned),
        target_id: e.target_id.clone(),
        ip: e.meta.ip.clone(),
        request_id: e.meta.request_id.clone(),
        detail_ct: Some(detail_ct),
        prev_hash: prev_hash.clone(),
        hash: Vec::new(),
    };
    entry.hash = entry.compute_hash(&prev_hash);
    tx.execute(
        "INSERT INTO audit_log (seq, time, actor_type, actor_id, action, target_type, target_id,
                                ip, request_id, detail_ct, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        params![
            entry.seq,
            entry.time,
            entry.actor_type,
            entry.actor_id,
            entry.action,
            entry.target_type,
            entry.target_id,
            entry.ip,
            entry.request_id,
            entry.detail_ct,
            entry.prev_hash,
            entry.hash
        ],
    )?;
    Ok(seq)
}

pub fn all_entries(conn: &Connection) -> Result<Vec<StoredEntry>> {
    let mut stmt = conn.prepare(
        "SELECT seq, time, actor_type, actor_id, action, target_type, target_id, ip, request_id,
                detail_ct, prev_hash, hash
         FROM audit_log ORDER BY seq",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(StoredEntry {
            seq: r.get(0)?,
            time: r.get(1)?,
            actor_type: r.get(2)?,
            actor_id: r.get(3)?,
            action: r.get(4)?,
            target_type: r.get(5)?,
            target_id: r.get(6)?,
            ip: r.get(7)?,
            request_id: r.get(8)?,
            detail_ct: r.get(9)?,
            prev_hash: r.get(10)?,
            hash: r.get(11)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn count_action(conn: &Connection, action: &str) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT count(*) FROM audit_log WHERE action = ?1",
        [action],
        |r| r.get(0),
    )?)
}
