//! Searching and reading one chain: structured filters answered by SQL on the
//! plaintext columns, free text by the in-memory index over the decrypted
//! details. Results are newest first with a cursor (the last seq returned).
//!
//! An entry that carries a collection's values (a record's, or a collection's
//! definition) shows them only to a reader who may read that collection's
//! records (`records::visibility`): for anyone else its `before` and `after`
//! are withheld, and free text never finds it, since the words it would match
//! are the ones withheld.

use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use serde_json::Value;

use super::StoredEntry;
use crate::clock::rfc3339;
use crate::crypto::{Sealer, Slot};
use crate::error::{Error, Result};
use crate::records::visibility::ReadScope;
use crate::search::{IndexDoc, IndexQuery, MemIndex, budget, regex_escape};
use crate::store::Sql;
use crate::store::audit::{self as sql, SqlFilter};

pub const MAX_LIMIT: i64 = 200;
pub const DEFAULT_LIMIT: i64 = 50;
/// Entries read per catch-up step: bounded memory, and the time budget is
/// looked at between entries.
const CATCH_UP_BATCH: i64 = 256;

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
    /// Platform staff's stated reason, for entries they caused while
    /// impersonating.
    pub impersonation_reason: Option<String>,
    pub before: Value,
    pub after: Value,
    pub hash: String,
    pub prev_hash: String,
    /// SHA-256 of the sealed details: what the chain commits to.
    pub detail_sha256: Option<String>,
    /// True when an anonymisation replaced the details (a data subject's
    /// values became pseudonyms); the chain still commits to the original.
    #[serde(default)]
    pub redacted: bool,
    /// True when the entry carries values of a collection the reader may not
    /// read: `before` and `after` are left out (the chain still commits to
    /// them through `detail_sha256`).
    #[serde(default)]
    pub withheld: bool,
}

impl EntryView {
    /// `before` or `after`, when the entry carries it.
    pub fn detail_side(&self, side: &str) -> Option<&Value> {
        match side {
            "before" => Some(&self.before),
            "after" => Some(&self.after),
            _ => None,
        }
        .filter(|v| !v.is_null())
    }
}

pub fn detail(e: &StoredEntry, sealer: &Sealer) -> Value {
    let seq = e.seq.to_string();
    e.detail_ct
        .as_ref()
        .and_then(|ct| sealer.open(Slot::new("audit_log", &seq, "detail"), ct).ok())
        .and_then(|plain| serde_json::from_slice(&plain).ok())
        .unwrap_or(Value::Null)
}

/// The collection whose values an entry's details carry: a record entry's
/// collection (named in its details; an entry that names none belongs to no
/// readable collection) or a collection entry's target. `None`: the entry
/// carries no record values.
pub fn values_of(e: &StoredEntry, d: &Value) -> Option<String> {
    match e.target_type.as_deref() {
        Some("record") => Some(
            ["after", "before"]
                .iter()
                .find_map(|side| d.get(side)?.get("collection")?.as_str())
                .unwrap_or_default()
                .to_owned(),
        ),
        Some("collection") => Some(e.target_id.clone().unwrap_or_default()),
        _ => None,
    }
}

/// An entry as anyone who may read everything sees it (the platform chain,
/// the operator's own tools).
pub fn view(e: &StoredEntry, sealer: &Sealer) -> EntryView {
    view_in(e, sealer, &ReadScope::everything())
}

/// An entry as a reader with `scope` sees it.
pub fn view_in(e: &StoredEntry, sealer: &Sealer, scope: &ReadScope) -> EntryView {
    let d = detail(e, sealer);
    let withheld = values_of(e, &d).is_some_and(|c| !scope.may_read(&c));
    let side = |name: &str| {
        if withheld {
            Value::Null
        } else {
            d.get(name).cloned().unwrap_or(Value::Null)
        }
    };
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
        impersonation_reason: d
            .get("actor")
            .and_then(|a| a.get("impersonation_reason"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        before: side("before"),
        after: side("after"),
        hash: hex::encode(&e.hash),
        prev_hash: hex::encode(&e.prev_hash),
        detail_sha256: e.committed_detail_digest(),
        redacted: e.redacted_by.is_some(),
        withheld,
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

/// Indexes committed entries the index has not seen yet; stops at
/// `deadline`, keeping what it indexed so far.
pub fn catch_up(
    conn: &dyn Sql,
    sealer: &Sealer,
    idx: &mut MemIndex,
    deadline: Option<Instant>,
) -> Result<()> {
    // A workspace restored in place starts its index again.
    let generation = crate::store::tenant_settings::generation(conn).unwrap_or(0);
    if generation != idx.generation {
        idx.reset(generation)?;
    }
    let mut changed = false;
    let mut out_of_time = false;
    loop {
        if budget::past(deadline) {
            out_of_time = true;
            break;
        }
        let batch = sql::entries_after(conn, idx.indexed_through, CATCH_UP_BATCH)?;
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            if budget::past(deadline) {
                out_of_time = true;
                break;
            }
            let d = detail(e, sealer);
            let text = index_text(e, &d);
            let mut kw = keywords(e);
            kw.push(scope_keyword(values_of(e, &d).as_deref()));
            idx.add(&IndexDoc {
                id: e.seq,
                time: e.time,
                text: &text,
                keywords: &kw,
            })?;
            changed = true;
            if idx.should_commit() {
                idx.commit()?;
            }
        }
        if out_of_time || (batch.len() as i64) < CATCH_UP_BATCH {
            break;
        }
    }
    if changed {
        idx.commit()?;
    }
    if out_of_time {
        return Err(budget::exceeded());
    }
    Ok(())
}

/// Exact-match terms for the structured filters: `actionp:` holds every
/// dotted prefix of the action, so `member` finds `member.added`.
fn keywords(e: &StoredEntry) -> Vec<String> {
    let mut k = vec![
        format!("action:{}", e.action),
        format!("actor:{}", e.actor_type),
    ];
    let mut prefix = String::new();
    for part in e.action.split('.') {
        if !prefix.is_empty() {
            prefix.push('.');
        }
        prefix.push_str(part);
        k.push(format!("actionp:{prefix}"));
    }
    if let Some(a) = &e.actor_id {
        k.push(format!("actor:{a}"));
    }
    if let Some(t) = &e.target_id {
        k.push(format!("target:{t}"));
        if let Some(kind) = &e.target_type {
            k.push(format!("target:{kind}:{t}"));
        }
    }
    if let Some(ip) = &e.ip {
        k.push(format!("ip:{ip}"));
    }
    k
}

/// Whose values an entry's text holds: `scope:open` (no record values) or
/// `scope:c:<collection>`.
fn scope_keyword(collection: Option<&str>) -> String {
    match collection {
        None => "scope:open".to_owned(),
        Some(c) => format!("scope:c:{c}"),
    }
}

fn index_query<'a>(
    q: Option<&'a str>,
    f: &SqlFilter,
    scope: &ReadScope,
    limit: usize,
    max_terms: usize,
) -> IndexQuery<'a> {
    let mut keywords = Vec::new();
    let mut keyword_regex = None;
    if let Some(a) = &f.actor {
        keywords.push(format!("actor:{a}"));
    }
    if let Some(a) = &f.action {
        match a.strip_suffix('*') {
            Some(p) => keyword_regex = Some(format!("action:{}.*", regex_escape(p))),
            None => keywords.push(format!("actionp:{a}")),
        }
    }
    if let Some(t) = &f.target {
        keywords.push(format!("target:{t}"));
    }
    if let Some(ip) = &f.ip {
        keywords.push(format!("ip:{ip}"));
    }
    // Free text matches only entries whose every word the reader may see:
    // those without record values, and those of readable collections.
    let any_keywords = match (q, scope.readable()) {
        (Some(_), Some(readable)) => Some(
            std::iter::once(scope_keyword(None))
                .chain(readable.iter().map(|c| scope_keyword(Some(c))))
                .collect(),
        ),
        _ => None,
    };
    IndexQuery {
        text: q,
        keywords,
        any_keywords,
        keyword_regex,
        time_from: f.from,
        time_to: f.to,
        before_id: f.before_seq,
        limit,
        max_terms,
    }
}

#[derive(Clone, Debug, Default)]
pub struct SearchParams {
    pub q: Option<String>,
    pub filter: SqlFilter,
    pub limit: i64,
    /// Most words in `q` (0: the index's default).
    pub max_terms: usize,
    /// The search's time budget, from when it starts to run.
    pub budget: Option<std::time::Duration>,
}

#[derive(Clone, Debug, Serialize)]
pub struct SearchPage {
    pub items: Vec<EntryView>,
    pub next_cursor: Option<String>,
}

/// Every search goes through the index (kept current from committed rows),
/// so filtered and free-text queries cost the same few milliseconds at 1M
/// entries; SQL then fetches the rows by seq.
pub fn search(
    conn: &dyn Sql,
    sealer: &Sealer,
    index: &Mutex<MemIndex>,
    p: &SearchParams,
    scope: &ReadScope,
) -> Result<SearchPage> {
    let limit = p.limit.clamp(1, MAX_LIMIT);
    let deadline = p.budget.map(|b| Instant::now() + b);
    // The lock covers the catch-up only; the query runs on a snapshot.
    let prepared = {
        let mut idx = crate::search::lock_until(index, deadline)?;
        catch_up(conn, sealer, &mut idx, deadline)?;
        idx.prepare(&index_query(
            p.q.as_deref(),
            &p.filter,
            scope,
            limit as usize + 1,
            p.max_terms,
        ))?
    };
    let ids = prepared.run(deadline)?;
    let mut found = sql::entries_by_seq(conn, &ids)?;
    let next_cursor = if found.len() as i64 > limit {
        found.truncate(limit as usize);
        found.last().map(|e| e.seq.to_string())
    } else {
        None
    };
    Ok(SearchPage {
        items: found.iter().map(|e| view_in(e, sealer, scope)).collect(),
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
