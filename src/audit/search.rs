//! Searching and reading one chain: structured filters answered by SQL on the
//! plaintext columns, free text by the in-memory index over the decrypted
//! details. Results are newest first with a cursor (the last seq returned).

use std::sync::Mutex;

use rusqlite::Connection;
use serde::Serialize;
use serde_json::Value;

use super::StoredEntry;
use crate::clock::rfc3339;
use crate::crypto::{Sealer, Slot};
use crate::error::{Error, Result};
use crate::search::MemIndex;
use crate::store::audit::{self as sql, SqlFilter};

pub const MAX_LIMIT: i64 = 200;
pub const DEFAULT_LIMIT: i64 = 50;
const CATCH_UP_BATCH: i64 = 5_000;

/// One entry as people read it: details decrypted.
#[derive(Clone, Debug, Serialize, serde::Deserialize)]
pub struct EntryView {
    pub seq: i64,
    pub time: String,
    pub time_unix: i64,
    /// The actor's id when it has one, else its type (`system`, `operator`...).
    pub actor: String,
    pub actor_type: String,
    pub action: String,
    /// The target's id (`target_type` says what it is).
    pub target: Option<String>,
    pub target_type: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    pub before: Value,
    pub after: Value,
    pub hash: String,
    pub prev_hash: String,
    /// SHA-256 of the sealed details: what the chain commits to.
    pub detail_sha256: Option<String>,
}

pub fn detail(e: &StoredEntry, sealer: &Sealer) -> Value {
    let seq = e.seq.to_string();
    e.detail_ct
        .as_ref()
        .and_then(|ct| sealer.open(Slot::new("audit_log", &seq, "detail"), ct).ok())
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .unwrap_or(Value::Null)
}

pub fn view(e: &StoredEntry, sealer: &Sealer) -> EntryView {
    use sha2::Digest;
    let d = detail(e, sealer);
    EntryView {
        seq: e.seq,
        time: rfc3339(e.time),
        time_unix: e.time,
        actor: e.actor_id.clone().unwrap_or_else(|| e.actor_type.clone()),
        actor_type: e.actor_type.clone(),
        action: e.action.clone(),
        target: e.target_id.clone(),
        target_type: e.target_type.clone(),
        ip: e.ip.clone(),
        request_id: e.request_id.clone(),
        user_agent: d
            .get("user_agent")
            .and_then(Value::as_str)
            .map(str::to_owned),
        before: d.get("before").cloned().unwrap_or(Value::Null),
        after: d.get("after").cloned().unwrap_or(Value::Null),
        hash: hex::encode(&e.hash),
        prev_hash: hex::encode(&e.prev_hash),
        detail_sha256: e
            .detail_ct
            .as_ref()
            .map(|d| hex::encode(sha2::Sha256::digest(d))),
    }
}

/// Everything free text may match: names of things and every detail value.
fn index_text(e: &StoredEntry, d: &Value) -> String {
    let mut parts: Vec<String> = vec![
        e.action.replace('.', " "),
        e.action.clone(),
        e.actor_type.clone(),
    ];
    parts.extend(e.actor_id.clone());
    parts.extend(e.target_type.clone());
    parts.extend(e.target_id.clone());
    parts.extend(e.ip.clone());
    parts.extend(e.request_id.clone());
    flatten(d, &mut parts);
    parts.join(" ")
}

fn flatten(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
        Value::Object(m) => m.iter().for_each(|(k, x)| {
            out.push(k.clone());
            flatten(x, out);
        }),
        Value::Null => {}
    }
}

/// Indexes committed entries the index has not seen yet.
pub fn catch_up(conn: &Connection, sealer: &Sealer, idx: &mut MemIndex) -> Result<()> {
    let mut changed = false;
    loop {
        let batch = sql::entries_after(conn, idx.indexed_through, CATCH_UP_BATCH)?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            idx.add(e.seq, &index_text(e, &detail(e, sealer)))?;
        }
        changed = true;
        if (batch.len() as i64) < CATCH_UP_BATCH {
            break;
        }
    }
    if changed {
        idx.commit()?;
    }
    Ok(())
}

/// The same semantics as `store::audit::query`, for rows the index found.
fn matches(e: &StoredEntry, f: &SqlFilter) -> bool {
    let actor_ok = f
        .actor
        .as_ref()
        .is_none_or(|a| e.actor_id.as_deref() == Some(a) || e.actor_type == *a);
    let action_ok = f.action.as_ref().is_none_or(|a| match a.strip_suffix('*') {
        Some(p) => e.action.starts_with(p),
        None => e.action == *a || e.action.starts_with(&format!("{a}.")),
    });
    let target_ok = f.target.as_ref().is_none_or(|t| match t.split_once(':') {
        Some((k, id)) => e.target_type.as_deref() == Some(k) && e.target_id.as_deref() == Some(id),
        None => e.target_id.as_deref() == Some(t),
    });
    let ip_ok = f.ip.as_ref().is_none_or(|ip| e.ip.as_deref() == Some(ip));
    let from_ok = f.from.is_none_or(|from| e.time >= from);
    let to_ok = f.to.is_none_or(|to| e.time <= to);
    let max_ok = f.max_seq.is_none_or(|m| e.seq <= m);
    actor_ok && action_ok && target_ok && ip_ok && from_ok && to_ok && max_ok
}

#[derive(Clone, Debug, Default)]
pub struct SearchParams {
    pub q: Option<String>,
    pub filter: SqlFilter,
    pub limit: i64,
}

#[derive(Clone, Debug, Serialize)]
pub struct SearchPage {
    pub items: Vec<EntryView>,
    pub next_cursor: Option<String>,
}

pub fn search(
    conn: &Connection,
    sealer: &Sealer,
    index: &Mutex<MemIndex>,
    p: &SearchParams,
) -> Result<SearchPage> {
    let limit = p.limit.clamp(1, MAX_LIMIT);
    let mut found: Vec<StoredEntry> = match p.q.as_deref().map(str::trim).filter(|q| !q.is_empty())
    {
        None => sql::query(conn, &p.filter, limit + 1)?,
        Some(q) => {
            let mut idx = index
                .lock()
                .map_err(|_| Error::internal("audit index lock poisoned"))?;
            catch_up(conn, sealer, &mut idx)?;
            let mut out = Vec::new();
            let mut before = p.filter.before_seq;
            let k = (limit * 4).max(100) as usize;
            for _ in 0..50 {
                let ids = idx.search(q, before, k)?;
                let Some(min) = ids.iter().min().copied() else {
                    break;
                };
                for e in sql::entries_by_seq(conn, &ids)? {
                    if matches(&e, &p.filter) {
                        out.push(e);
                    }
                    if out.len() as i64 > limit {
                        break;
                    }
                }
                if out.len() as i64 > limit || ids.len() < k {
                    break;
                }
                before = Some(min);
            }
            out
        }
    };
    let next_cursor = if found.len() as i64 > limit {
        found.truncate(limit as usize);
        found.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(SearchPage {
        items: found.iter().map(|e| view(e, sealer)).collect(),
        next_cursor,
    })
}

/// Parses `from`/`to`: RFC 3339 or unix seconds.
pub fn parse_time(field: &str, v: &str) -> Result<i64> {
    if let Ok(n) = v.parse::<i64>() {
        return Ok(n);
    }
    time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
        .map(|t| t.unix_timestamp())
        .or_else(|_| {
            time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]"))
                .map(|d| d.midnight().assume_utc().unix_timestamp())
        })
        .map_err(|_| {
            Error::field(
                field,
                "must be a date (2026-01-31), an RFC 3339 time or unix seconds",
            )
        })
}
