//! SQL for the audit chains. `append` must be called with the transaction of the
//! change it records, so both commit or neither does.

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::{Sealer, Slot};
use crate::error::Result;
use crate::model::audit::{GENESIS, NewEntry, StoredEntry};
use crate::model::checkpoint::{ChainLink, ChainReport, CheckpointBody, SignedCheckpoint};

pub fn append(tx: &dyn SqlTx, sealer: &Sealer, now: i64, e: &NewEntry<'_>) -> Result<i64> {
    let tx = tx.tx(TOKEN);
    // Cached statements: every audited write runs these two, and parsing
    // them each time was a visible part of a create's CPU (docs/benchmarks.md).
    let last: Option<(i64, Vec<u8>)> = tx
        .prepare_cached("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (seq, prev_hash) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_vec()),
    };
    let detail = serde_json::json!({
        "before": e.before,
        "after": e.after,
        "user_agent": e.meta.user_agent,
        "actor": e.actor.sealed_context(),
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
        detail_digest: None,
        redacted_by: None,
        resealed: false,
        prev_hash: prev_hash.clone(),
        hash: Vec::new(),
    };
    entry.hash = entry.compute_hash(&prev_hash);
    tx.prepare_cached(
        "INSERT INTO audit_log (seq, time, actor_type, actor_id, action, target_type, target_id,
                                ip, request_id, detail_ct, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?
    .execute(params![
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
    ])?;
    Ok(seq)
}

/// Every entry in memory: for small chains (tests, a moved workspace's
/// count); verification streams with `entries_after` instead.
pub fn all_entries(conn: &dyn Sql) -> Result<Vec<StoredEntry>> {
    let conn = conn.conn(TOKEN);
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log ORDER BY seq");
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], entry_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

pub fn entry_count(conn: &dyn Sql) -> Result<u64> {
    let conn = conn.conn(TOKEN);
    let n: i64 = conn.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Runs `f` inside one read transaction, so reads in pages see one snapshot
/// (a chain verified page by page cannot be torn by retention meanwhile).
pub fn in_snapshot<T>(conn: &dyn Sql, f: impl FnOnce() -> Result<T>) -> Result<T> {
    let conn = conn.conn(TOKEN);
    conn.execute_batch("BEGIN DEFERRED")?;
    let out = f();
    // Ends the read either way; the pooled connection must not stay in it.
    let end = conn.execute_batch(if out.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let out = out?;
    end?;
    Ok(out)
}

// ---- heads, checkpoints and verifications ----------------------------------

/// The newest entry's (seq, hash); (0, genesis) for an empty chain.
pub fn head(conn: &dyn Sql) -> Result<(i64, Vec<u8>)> {
    let conn = conn.conn(TOKEN);
    let last: Option<(i64, Vec<u8>)> = conn
        .query_row(
            "SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    Ok(last.unwrap_or((0, GENESIS.to_vec())))
}

pub fn insert_checkpoint(tx: &dyn SqlTx, body: &CheckpointBody, signature: &[u8]) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO audit_checkpoints (scope, seq, hash, time, reason, signature, chain_index, prev_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            body.scope,
            body.seq,
            body.hash,
            body.time,
            body.reason,
            signature,
            body.link.as_ref().map(|l| l.index),
            body.link.as_ref().map(|l| l.prev.clone()),
        ],
    )?;
    Ok(())
}

const CHECKPOINT_COLUMNS: &str =
    "scope, seq, hash, time, reason, signature, chain_index, prev_hash";

fn checkpoint_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SignedCheckpoint> {
    let index: Option<i64> = r.get(6)?;
    let prev: Option<Vec<u8>> = r.get(7)?;
    Ok(SignedCheckpoint {
        body: CheckpointBody {
            scope: r.get(0)?,
            seq: r.get(1)?,
            hash: r.get(2)?,
            time: r.get(3)?,
            reason: r.get(4)?,
            link: index
                .zip(prev)
                .map(|(index, prev)| ChainLink { index, prev }),
        },
        signature: r.get(5)?,
    })
}

pub fn checkpoints(conn: &dyn Sql, scope: &str) -> Result<Vec<SignedCheckpoint>> {
    let conn = conn.conn(TOKEN);
    let sql = format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE scope = ?1 ORDER BY seq, id"
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([scope], checkpoint_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The scope's newest checkpoint in chain order: the highest chain index, or,
/// before any chained one exists, the newest checkpoint signed before the
/// chain (which the first chained checkpoint then names).
pub fn latest_checkpoint(conn: &dyn Sql, scope: &str) -> Result<Option<SignedCheckpoint>> {
    let conn = conn.conn(TOKEN);
    let sql = format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM audit_checkpoints WHERE scope = ?1
         ORDER BY chain_index IS NULL, chain_index DESC, seq DESC, time DESC, id DESC LIMIT 1"
    );
    Ok(conn
        .query_row(&sql, [scope], checkpoint_from_row)
        .optional()?)
}

/// The newest checkpoint of every scope (what leaves the data dir as an anchor).
pub fn latest_checkpoints(conn: &dyn Sql) -> Result<Vec<SignedCheckpoint>> {
    let conn = conn.conn(TOKEN);
    let scopes: Vec<String> = {
        let mut stmt =
            conn.prepare("SELECT DISTINCT scope FROM audit_checkpoints ORDER BY scope")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
    };
    let mut out = Vec::with_capacity(scopes.len());
    for s in scopes {
        out.extend(latest_checkpoint(conn, &s)?);
    }
    Ok(out)
}

pub fn insert_verification(tx: &dyn SqlTx, r: &ChainReport, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO audit_verifications (scope, time, ok, entries, first_bad_seq, reason)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            r.scope,
            now,
            r.ok(),
            r.entries as i64,
            r.first_bad_seq,
            r.reason
        ],
    )?;
    Ok(())
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct VerificationRow {
    pub time: i64,
    pub ok: bool,
    pub entries: i64,
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

pub fn latest_verification(conn: &dyn Sql, scope: &str) -> Result<Option<VerificationRow>> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT time, ok, entries, first_bad_seq, reason FROM audit_verifications
             WHERE scope = ?1 ORDER BY time DESC, id DESC LIMIT 1",
            [scope],
            |r| {
                Ok(VerificationRow {
                    time: r.get(0)?,
                    ok: r.get(1)?,
                    entries: r.get(2)?,
                    first_bad_seq: r.get(3)?,
                    reason: r.get(4)?,
                })
            },
        )
        .optional()?)
}

// ---- reading for search, export and indexing --------------------------------

const ENTRY_COLUMNS: &str = "seq, time, actor_type, actor_id, action, target_type, target_id, ip, \
                             request_id, detail_ct, prev_hash, hash, detail_digest, redacted_by, resealed";

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntry> {
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
        detail_digest: r.get(12)?,
        redacted_by: r.get(13)?,
        resealed: r.get::<_, i64>(14)? == 1,
    })
}

/// Entries with seq > `after`, oldest first, at most `limit`.
pub fn entries_after(conn: &dyn Sql, after: i64, limit: i64) -> Result<Vec<StoredEntry>> {
    let conn = conn.conn(TOKEN);
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq > ?1 ORDER BY seq LIMIT ?2");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(params![after, limit], entry_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The oldest entry with sealed details (a probe that a key opens the data).
pub fn first_sealed_entry(conn: &dyn Sql) -> Result<Option<StoredEntry>> {
    let conn = conn.conn(TOKEN);
    let sql = format!(
        "SELECT {ENTRY_COLUMNS} FROM audit_log WHERE detail_ct IS NOT NULL ORDER BY seq LIMIT 1"
    );
    Ok(conn.query_row(&sql, [], entry_from_row).optional()?)
}

pub fn entry(conn: &dyn Sql, seq: i64) -> Result<Option<StoredEntry>> {
    let conn = conn.conn(TOKEN);
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log WHERE seq = ?1");
    Ok(conn.query_row(&sql, [seq], entry_from_row).optional()?)
}

pub fn entries_by_seq(conn: &dyn Sql, seqs: &[i64]) -> Result<Vec<StoredEntry>> {
    let conn = conn.conn(TOKEN);
    let mut out = Vec::with_capacity(seqs.len());
    for s in seqs {
        if let Some(e) = entry(conn, *s)? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Structured filters that SQL answers from plaintext columns (ids, action
/// names, IPs, times). Free text goes through the search index instead.
#[derive(Clone, Debug, Default)]
pub struct SqlFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub from: Option<i64>,
    pub to: Option<i64>,
    /// Only entries with seq below this (the cursor).
    pub before_seq: Option<i64>,
    /// Only entries with seq at or below this (an export's checkpoint).
    pub max_seq: Option<i64>,
    /// Oldest first, after this seq (exports walk forward in batches).
    pub ascending_after: Option<i64>,
}

/// The half-open range of action names that start with `prefix`, so the
/// prefix match can use the index.
pub fn prefix_range(prefix: &str) -> (String, String) {
    let mut upper = prefix.to_owned();
    upper.push(char::MAX);
    (prefix.to_owned(), upper)
}

pub fn query(conn: &dyn Sql, f: &SqlFilter, limit: i64) -> Result<Vec<StoredEntry>> {
    let conn = conn.conn(TOKEN);
    use rusqlite::types::Value;
    let mut clauses: Vec<&str> = Vec::new();
    let mut args: Vec<Value> = Vec::new();
    // Each clause uses plain `?` placeholders, bound in order.
    let mut add = |clause: &'static str, values: Vec<Value>| {
        clauses.push(clause);
        args.extend(values);
    };
    let text = |s: &str| Value::Text(s.to_owned());
    if let Some(a) = &f.actor {
        add("(actor_id = ? OR actor_type = ?)", vec![text(a), text(a)]);
    }
    if let Some(a) = &f.action {
        match a.strip_suffix('*') {
            Some(p) => {
                let (lo, hi) = prefix_range(p);
                add(
                    "(action >= ? AND action < ?)",
                    vec![Value::Text(lo), Value::Text(hi)],
                );
            }
            None => {
                let (lo, hi) = prefix_range(&format!("{a}."));
                add(
                    "(action = ? OR (action >= ? AND action < ?))",
                    vec![text(a), Value::Text(lo), Value::Text(hi)],
                );
            }
        }
    }
    if let Some(t) = &f.target {
        match t.split_once(':') {
            Some((kind, id)) => add(
                "(target_type = ? AND target_id = ?)",
                vec![text(kind), text(id)],
            ),
            None => add("target_id = ?", vec![text(t)]),
        }
    }
    if let Some(ip) = &f.ip {
        add("ip = ?", vec![text(ip)]);
    }
    for (clause, v) in [
        ("time >= ?", f.from),
        ("time <= ?", f.to),
        ("seq < ?", f.before_seq),
        ("seq <= ?", f.max_seq),
        ("seq > ?", f.ascending_after),
    ] {
        if let Some(v) = v {
            add(clause, vec![Value::Integer(v)]);
        }
    }
    let order = if f.ascending_after.is_some() {
        "ASC"
    } else {
        "DESC"
    };
    let wher = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!("SELECT {ENTRY_COLUMNS} FROM audit_log {wher} ORDER BY seq {order} LIMIT ?");
    args.push(Value::Integer(limit));
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(rusqlite::params_from_iter(args), entry_from_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// Removes entries up to and including `seq` (retention, behind a signed
/// checkpoint at `seq`).
pub fn delete_through(tx: &dyn SqlTx, seq: i64) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute("DELETE FROM audit_log WHERE seq <= ?1", [seq])?)
}

/// The newest seq whose time is before `cutoff`.
pub fn last_seq_before(conn: &dyn Sql, cutoff: i64) -> Result<Option<i64>> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT max(seq) FROM audit_log WHERE time < ?1",
        [cutoff],
        |r| r.get(0),
    )?)
}

/// Tests only: rewrites one entry's action behind the append-only trigger's
/// back, as someone with write access to the file could.
#[cfg(test)]
pub fn tamper_action(conn: &dyn Sql, seq: i64, action: &str) -> Result<()> {
    let conn = conn.conn(TOKEN);
    conn.execute_batch("DROP TRIGGER audit_log_append_only;")?;
    conn.execute(
        "UPDATE audit_log SET action = ?1 WHERE seq = ?2",
        rusqlite::params![action, seq],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::migrations::{CONTROL, Migration, apply};
    use rusqlite::Connection;

    /// Existing data stays readable: checkpoints signed before control
    /// migration 13 keep their fields and read back unchained, and the chain
    /// of checkpoints starts after them.
    #[test]
    fn migration_13_keeps_checkpoints_signed_before_it() {
        let mut c = Connection::open_in_memory().unwrap();
        let before: Vec<Migration> = CONTROL
            .iter()
            .filter(|m| m.version < 13)
            .map(|m| Migration {
                version: m.version,
                name: m.name,
                sql: m.sql,
            })
            .collect();
        apply(&mut c, &before).unwrap();
        c.execute(
            "INSERT INTO audit_checkpoints (scope, seq, hash, time, reason, signature)
             VALUES ('platform', 3, x'01', 10, 'schedule', x'02')",
            [],
        )
        .unwrap();
        apply(&mut c, CONTROL).unwrap();
        let old = latest_checkpoint(&c, "platform").unwrap().unwrap();
        assert_eq!((old.body.seq, old.body.link.clone()), (3, None));
        let next = CheckpointBody {
            scope: "platform".into(),
            seq: 4,
            hash: vec![3],
            time: 11,
            reason: "backup".into(),
            link: Some(CheckpointBody::link_after(Some(&old.body))),
        };
        let tx = c.transaction().unwrap();
        insert_checkpoint(&tx, &next, &[4]).unwrap();
        // A second checkpoint at the same place in the chain is refused.
        assert!(insert_checkpoint(&tx, &next, &[5]).is_err());
        tx.commit().unwrap();
        let tip = latest_checkpoint(&c, "platform").unwrap().unwrap();
        assert_eq!(tip.body, next);
        assert_eq!(tip.body.link.map(|l| l.prev), Some(old.body.digest()));
        assert_eq!(latest_checkpoints(&c).unwrap().len(), 1);
    }
}
