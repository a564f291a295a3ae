//! Data-subject requests (GDPR Art. 15, 17, 20): given an email, a phone or
//! any value of a `pii` field, find every record that refers to the person
//! through the pii blind indexes (no record is decrypted to look), export them
//! with their history and audit trail, or anonymise them: each `pii` value
//! becomes the person's keyed pseudonym (or is removed where no pseudonym fits
//! the type), everything else stays so aggregates still add up, and the same
//! pseudonym replaces the values in the sealed details of the records' audit
//! entries without breaking the chain. Search and export show a requester
//! only the records they may read (`records::visibility`): an owner or admin
//! who is not on a team finds none of its records. Anonymisation reaches every
//! record, so an erasure is never partial. Design: `docs/data-subjects.md`.

pub mod pseudonym;

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::access::enter::TenantHandle;
use crate::audit::NewEntry;
use crate::audit::search::{EntryView, detail, view_in};
use crate::audit::verify::ANONYMISED;
use crate::crypto::BlindIndex;
use crate::error::{Error, Result};
use crate::records::values;
use crate::records::visibility::{ReadScope, Reader};
use crate::records::{record_json, rfc3339_ms};
use crate::store::Sql;
use crate::store::audit as audit_sql;
use crate::store::records::{self as rstore, CollectionRow};
use crate::store::subjects::{self as sql, Hit};
use crate::store::tenant::TenantTx;
use pseudonym::Pseudonym;

const MAX_IDENTIFIER: usize = 1_000;

/// The identifier as given, checked; never stored or logged.
fn identifier(raw: &str) -> Result<String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(Error::field("identifier", "is required"));
    }
    if t.chars().count() > MAX_IDENTIFIER {
        return Err(Error::field(
            "identifier",
            "must be at most 1000 characters",
        ));
    }
    Ok(t.to_owned())
}

/// The digests to look for: the identifier normalised the ways a pii field
/// normalises its values (case-folded text and emails, phones as digits).
fn digests(blind: &BlindIndex, id: &str) -> Vec<Vec<u8>> {
    let mut forms = vec![id.to_lowercase(), id.to_owned()];
    if let Some(p) = values::phone(id) {
        forms.push(p.trim_start_matches('+').to_owned());
    }
    forms.sort();
    forms.dedup();
    forms
        .iter()
        .flat_map(|f| blind.compute_all("record.pii", f))
        .collect()
}

/// One record that refers to the person.
#[derive(Clone, Debug, Serialize)]
pub struct Match {
    pub collection_id: String,
    pub collection: String,
    pub record_id: String,
    /// A deleted record: its values are gone, its audit entries keep them.
    pub deleted: bool,
    /// The pii fields that matched, by name.
    pub matched_fields: Vec<String>,
    /// The record as the API shows it (absent when deleted).
    pub record: Option<Value>,
}

struct Found {
    hits: Vec<Hit>,
    collections: HashMap<String, CollectionRow>,
}

fn find_in(conn: &dyn Sql, sealer: &crate::crypto::Sealer, digests: &[Vec<u8>]) -> Result<Found> {
    let hits = sql::find(conn, digests)?;
    let collections = rstore::list_collections(conn, sealer)?
        .into_iter()
        .map(|c| (c.id.clone(), c))
        .collect();
    Ok(Found { hits, collections })
}

/// `find_in`, keeping only the records of collections `scope` may read.
fn find_readable(
    conn: &dyn Sql,
    sealer: &crate::crypto::Sealer,
    digests: &[Vec<u8>],
    scope: &ReadScope,
) -> Result<Found> {
    let mut found = find_in(conn, sealer, digests)?;
    found.hits.retain(|h| scope.may_read(&h.collection_id));
    Ok(found)
}

fn field_names(c: Option<&CollectionRow>, ids: &[String]) -> Vec<String> {
    ids.iter()
        .map(|id| {
            c.and_then(|c| c.def.fields.iter().find(|f| &f.id == id))
                .map(|f| f.name.clone())
                .unwrap_or_else(|| id.clone())
        })
        .collect()
}

fn matches(conn: &dyn Sql, sealer: &crate::crypto::Sealer, found: &Found) -> Result<Vec<Match>> {
    let mut out = Vec::with_capacity(found.hits.len());
    for h in &found.hits {
        let coll = found.collections.get(&h.collection_id);
        let record = match (h.deleted, coll) {
            (false, Some(c)) => {
                rstore::get_record_by_seq(conn, sealer, h.seq)?.map(|r| record_json(&c.def, &r))
            }
            _ => None,
        };
        out.push(Match {
            collection_id: h.collection_id.clone(),
            collection: coll.map(|c| c.def.name.clone()).unwrap_or_default(),
            record_id: h.id.clone(),
            deleted: h.deleted,
            matched_fields: field_names(coll, &h.fields),
            record,
        });
    }
    Ok(out)
}

/// The records that refer to the person. Recorded as `data_subject.searched`
/// (with the count; the identifier itself is never kept).
pub async fn find(ctx: &TenantHandle, raw: &str) -> Result<Vec<Match>> {
    let id = identifier(raw)?;
    let now = ctx.now();
    let d = digests(&ctx.db.keys().blind, &id);
    let (reader, defs) = (Reader::of(ctx), ctx.db.defs());
    let out = ctx
        .db
        .read(move |c, s| {
            let scope = reader.scope(c, s, &defs)?;
            matches(c, s, &find_readable(c, s, &d, &scope)?)
        })
        .await?;
    record(ctx, now, "data_subject.searched", out.len()).await?;
    Ok(out)
}

/// A search or an export changes no data: recorded on its own, and allowed
/// while the workspace is read-only (a person may ask during a deletion's
/// grace period).
async fn record(ctx: &TenantHandle, now: i64, action: &'static str, n: usize) -> Result<i64> {
    let actor = ctx.actor.clone();
    ctx.db
        .append_audit(now, ctx.meta.clone(), move |m| {
            NewEntry::new(actor, action, m)
                .target("data_subject", "request")
                .after(json!({ "records": n }))
        })
        .await
}

/// Everything kept about the person: the records with their kept versions and
/// their audit entries. Recorded as `data_subject.exported`.
#[derive(Debug, Serialize)]
pub struct SubjectExport {
    pub format: &'static str,
    pub workspace: String,
    pub exported_at: String,
    pub records: Vec<ExportedRecord>,
}

#[derive(Debug, Serialize)]
pub struct ExportedRecord {
    #[serde(flatten)]
    pub matched: Match,
    pub history: Vec<Value>,
    pub audit: Vec<EntryView>,
}

pub async fn export(ctx: &TenantHandle, raw: &str) -> Result<SubjectExport> {
    let id = identifier(raw)?;
    let now = ctx.now();
    let ws = ctx.db.id().to_string();
    let d = digests(&ctx.db.keys().blind, &id);
    let (reader, defs) = (Reader::of(ctx), ctx.db.defs());
    let records = ctx
        .db
        .read(move |conn, sealer| {
            let scope = reader.scope(conn, sealer, &defs)?;
            let found = find_readable(conn, sealer, &d, &scope)?;
            let mut out = Vec::new();
            for (m, h) in matches(conn, sealer, &found)?.into_iter().zip(&found.hits) {
                let coll = found.collections.get(&h.collection_id);
                let mut history = Vec::new();
                if let (Some(c), Some(rec)) =
                    (coll, rstore::get_record_by_seq(conn, sealer, h.seq)?)
                {
                    for v in rstore::versions(conn, sealer, &rec)? {
                        history.push(json!({
                            "version": v.version,
                            "time": rfc3339_ms(v.time),
                            "values": values::to_api(&c.def, &v.values),
                        }));
                    }
                }
                let seqs = sql::audit_seqs(conn, std::slice::from_ref(&h.id))?;
                let audit = audit_sql::entries_by_seq(conn, &seqs)?
                    .iter()
                    .map(|e| view_in(e, sealer, &scope))
                    .collect();
                out.push(ExportedRecord {
                    matched: m,
                    history,
                    audit,
                });
            }
            Ok(out)
        })
        .await?;
    record(ctx, now, "data_subject.exported", records.len()).await?;
    Ok(SubjectExport {
        format: "aura-data-subject-export/1",
        workspace: ws,
        exported_at: crate::clock::rfc3339(now),
        records,
    })
}

/// What an anonymisation changed.
#[derive(Clone, Debug, Serialize)]
pub struct Anonymised {
    /// The keyed pseudonym that now stands for the person.
    pub pseudonym: String,
    pub records: usize,
    pub deleted_records: usize,
    pub versions: usize,
    pub audit_entries: usize,
}

pub async fn anonymise(ctx: &TenantHandle, raw: &str) -> Result<Anonymised> {
    let id = identifier(raw)?;
    let now = ctx.now();
    let entry_meta = ctx.meta.clone();
    let actor = ctx.actor.clone();
    let done = ctx
        .db
        .write(move |t| {
            let found = find_in(t, t.sealer, &digests(t.blind, &id))?;
            let p = Pseudonym::new(t.blind, &id);
            let collections: Vec<&str> = {
                let set: HashSet<&str> = found
                    .hits
                    .iter()
                    .map(|h| h.collection_id.as_str())
                    .collect();
                let mut v: Vec<&str> = set.into_iter().collect();
                v.sort_unstable();
                v
            };
            let record_ids: Vec<&str> = found.hits.iter().map(|h| h.id.as_str()).collect();
            // Each record's audit entries, read once: listed in the entry
            // below, then rewritten record by record.
            let per_hit: Vec<Vec<i64>> = found
                .hits
                .iter()
                .map(|h| sql::audit_seqs(t, std::slice::from_ref(&h.id)))
                .collect::<Result<_>>()?;
            let mut audit_seqs: Vec<i64> = per_hit.iter().flatten().copied().collect();
            audit_seqs.sort_unstable();
            // Files in their personal-data file fields go, rows and bytes.
            let mut files: Vec<(String, Vec<String>)> = Vec::new();
            for h in found.hits.iter().filter(|h| !h.deleted) {
                let (Some(coll), Some(rec)) = (
                    found.collections.get(&h.collection_id),
                    rstore::get_record_by_seq(t, t.sealer, h.seq)?,
                ) else {
                    continue;
                };
                let ids = crate::records::files::file_ids(&coll.def, &rec.values, true);
                if !ids.is_empty() {
                    files.push((rec.id, ids));
                }
            }
            let redactor = t.audit(
                now,
                &NewEntry::new(actor.clone(), ANONYMISED, &entry_meta)
                    .target("data_subject", p.as_str())
                    .after(json!({
                        "records": found.hits.len(),
                        "record_ids": record_ids,
                        "collections": collections,
                        "files_removed": files.iter().map(|(_, f)| f.len()).sum::<usize>(),
                        // The entries it may rewrite: `aura audit verify`
                        // checks every rewritten entry is listed here.
                        "audit_seqs": audit_seqs,
                    })),
            )?;
            let mut out = Anonymised {
                pseudonym: p.as_str().to_owned(),
                records: 0,
                deleted_records: 0,
                versions: 0,
                audit_entries: 0,
            };
            for (h, seqs) in found.hits.iter().zip(&per_hit) {
                let Some(coll) = found.collections.get(&h.collection_id) else {
                    continue;
                };
                let pii = p.pii_fields(&coll.def);
                if h.deleted {
                    sql::drop_tombstone_keys(t, h.seq)?;
                    out.deleted_records += 1;
                } else if let Some(rec) = rstore::get_record_by_seq(t, t.sealer, h.seq)? {
                    let mut vals = rec.values.clone();
                    p.apply(&pii, &mut vals);
                    sql::rewrite_record(t, &coll.id, &coll.def, &rec, &vals)?;
                    out.versions += sql::rewrite_versions(t, t.sealer, &rec, |v| {
                        p.apply(&pii, v);
                    })?;
                    sql::drop_idempotency(t, rec.seq)?;
                    out.records += 1;
                }
                out.audit_entries += rewrite_audit_details(t, seqs, redactor, |side| {
                    match side.get_mut("values") {
                        Some(Value::Object(m)) => p.apply_map(&pii, m),
                        _ => false,
                    }
                })?;
            }
            let mut removed = Vec::new();
            for (rec, ids) in files {
                crate::store::files::forget(t, &rec, &ids)?;
                removed.extend(ids);
            }
            Ok((out, removed))
        })
        .await?;
    let (done, removed) = done;
    crate::store::files::remove_blobs_async(ctx.db.files(), removed.clone()).await?;
    // The indexes rebuild (the generation moved); the files lose the old
    // ciphertexts.
    ctx.db.scrub().await?;
    Ok(done)
}

/// Removes the record values from the sealed details of these audit entries
/// (a deleted collection's records'), redacted by entry `by`, which lists them.
pub fn erase_audit_values(t: &TenantTx<'_>, seqs: &[i64], by: i64) -> Result<usize> {
    rewrite_audit_details(t, seqs, by, |side| side.remove("values").is_some())
}

/// Passes the `before` and `after` of each entry's sealed details through
/// `f` (true when it changed one) and stores the changed details, redacted by
/// entry `by`. Returns how many entries changed.
fn rewrite_audit_details(
    t: &TenantTx<'_>,
    seqs: &[i64],
    by: i64,
    f: impl Fn(&mut Map<String, Value>) -> bool,
) -> Result<usize> {
    let mut n = 0;
    for &seq in seqs {
        let Some(e) = audit_sql::entry(t, seq)? else {
            continue;
        };
        let mut d = detail(&e, t.sealer);
        let mut changed = false;
        for side in ["before", "after"] {
            if let Some(Value::Object(m)) = d.get_mut(side) {
                changed |= f(m);
            }
        }
        if changed {
            sql::replace_audit_detail(t, t.sealer, seq, &d, by)?;
            n += 1;
        }
    }
    if n > 0 {
        // The in-memory indexes hold the old details: they rebuild on the
        // next search, whichever process made the change.
        crate::store::tenant_settings::bump_generation_in(t)?;
    }
    Ok(n)
}
