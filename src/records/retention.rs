//! The retention purge of one workspace: every record past its collection's
//! window is deleted (its files with it), every file in a file field past
//! that field's window is removed (the record stays). One transaction per
//! run writes the changes and ONE `retention.purged` audit entry naming
//! each collection with the ids of the records and files that went. The
//! purged records' values also leave their earlier audit entries, so a
//! purge cannot be undone (docs/files.md, "Retention windows"); the sealed
//! bytes go after the commit, then the database is rebuilt (VACUUM) so
//! nothing purged lingers in free pages or the WAL.

use std::collections::HashSet;

use serde_json::json;

use super::schema::{Definition, FieldType};
use crate::audit::verify::RETENTION_PURGED;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::Result;
use crate::model::file_ref;
use crate::model::retention::{Retention, is_due};
use crate::store::files as fstore;
use crate::store::records::{self as rstore, CollectionRow, RecordRow, Sort};
use crate::store::tenant::{TenantDb, TenantTx};

/// Records read per page while looking for what is due.
const PAGE: usize = 500;

/// What one run removed from one workspace.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Collections with a window (for the count on /trust).
    pub windows: i64,
    pub records: usize,
    pub files: usize,
}

/// Whether a collection has any window, on itself or a live file field.
pub fn has_window(def: &Definition) -> bool {
    def.retention.is_some() || windows_of_fields(def).next().is_some()
}

fn windows_of_fields(def: &Definition) -> impl Iterator<Item = (&str, &Retention)> {
    def.live_fields()
        .filter(|f| f.kind == FieldType::File)
        .filter_map(|f| f.retention.as_ref().map(|r| (f.id.as_str(), r)))
}

/// How many collections of the workspace have a window.
pub async fn count_windows(db: &TenantDb) -> Result<i64> {
    let all = db.read(rstore::list_collections).await?;
    Ok(all.iter().filter(|c| has_window(&c.def)).count() as i64)
}

/// One collection's due records and files, as found.
#[derive(Default)]
struct Due {
    records: Vec<String>,
    /// (record, field, file ids).
    files: Vec<(String, String, Vec<String>)>,
}

fn due_in(def: &Definition, rec: &RecordRow, now: i64, out: &mut Due) {
    if def
        .retention
        .as_ref()
        .is_some_and(|r| is_due(r, &rec.values, now))
    {
        out.records.push(rec.id.clone());
        return;
    }
    for (field, r) in windows_of_fields(def) {
        let ids: Vec<String> = file_ref::refs(rec.values.get(field))
            .into_iter()
            .map(|f| f.id)
            .collect();
        if !ids.is_empty() && is_due(r, &rec.values, now) {
            out.files.push((rec.id.clone(), field.to_owned(), ids));
        }
    }
}

/// Purges what is due in one workspace at `now` (Unix seconds).
pub async fn purge(db: &TenantDb, now: i64, now_ms: i64) -> Result<Purged> {
    let colls: Vec<CollectionRow> = db
        .read(rstore::list_collections)
        .await?
        .into_iter()
        .filter(|c| has_window(&c.def))
        .collect();
    let mut out = Purged {
        windows: colls.len() as i64,
        ..Purged::default()
    };
    let mut found = Vec::new();
    for c in colls {
        let due = find_due(db, &c, now).await?;
        if !due.records.is_empty() || !due.files.is_empty() {
            found.push((c, due));
        }
    }
    if found.is_empty() {
        return Ok(out);
    }
    let (records, files) = db.write(move |t| apply(t, &found, now, now_ms)).await?;
    // The rebuild runs even when removing the bytes failed: the purged
    // values must leave the database's free pages and WAL either way.
    let removed = fstore::remove_blobs_async(db.files(), files.clone()).await;
    db.scrub().await?;
    removed?;
    out.records = records;
    out.files = files.len();
    Ok(out)
}

async fn find_due(db: &TenantDb, c: &CollectionRow, now: i64) -> Result<Due> {
    let mut due = Due::default();
    let mut after = None;
    loop {
        let id = c.id.clone();
        let page = db
            .read(move |conn, s| rstore::list_records(conn, s, &id, Sort::CreatedAsc, after, PAGE))
            .await?;
        for rec in &page {
            due_in(&c.def, rec, now, &mut due);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some((last.created_at, last.seq)),
            _ => return Ok(due),
        }
    }
}

/// In one transaction: each candidate re-read and re-checked (a change may
/// have landed since it was found), deleted or stripped of its due files,
/// then the run's audit entry. Returns the records deleted and the file ids
/// whose bytes are to go.
fn apply(
    t: &TenantTx<'_>,
    found: &[(CollectionRow, Due)],
    now: i64,
    now_ms: i64,
) -> Result<(usize, Vec<String>)> {
    let mut report = Vec::new();
    let mut all_files = Vec::new();
    let mut all_records = Vec::new();
    for (coll, due) in found {
        let mut records = Vec::new();
        let mut files = Vec::new();
        for rid in &due.records {
            let Some(rec) = rstore::get_record(t, t.sealer, &coll.id, rid)? else {
                continue;
            };
            let mut again = Due::default();
            due_in(&coll.def, &rec, now, &mut again);
            if again.records.is_empty() {
                continue;
            }
            let ids = fstore::files_of_record(t, &rec.id)?;
            fstore::forget(t, &rec.id, &ids)?;
            rstore::delete_record(t, rec.seq, now_ms)?;
            all_files.extend(ids.iter().cloned());
            records.push(json!({"id": rec.id, "files": ids}));
            all_records.push(rec.id);
        }
        let mut seen = HashSet::new();
        for (rid, _, _) in &due.files {
            if !seen.insert(rid.clone()) {
                continue;
            }
            let Some(rec) = rstore::get_record(t, t.sealer, &coll.id, rid)? else {
                continue;
            };
            let mut again = Due::default();
            due_in(&coll.def, &rec, now, &mut again);
            if again.files.is_empty() {
                continue;
            }
            let mut vals = rec.values.clone();
            for (_, field, ids) in &again.files {
                let ids = fstore::existing(t, &rec.id, ids)?;
                fstore::forget(t, &rec.id, &ids)?;
                vals.remove(field);
                files.push(json!({"record": rec.id, "field": field, "files": ids}));
                all_files.extend(ids);
            }
            rstore::update_record(t, coll, &rec, vals, now_ms, None)?;
        }
        if !records.is_empty() || !files.is_empty() {
            report.push(json!({
                "collection": coll.id,
                "name": coll.def.name,
                "records": records,
                "files": files,
            }));
        }
    }
    if report.is_empty() {
        return Ok((0, Vec::new()));
    }
    // The purged records' entries (their creation, changes, a deletion once
    // undone) lose the records' values, replaced by this run's entry, which
    // lists them (`audit verify` checks that it does).
    let seqs = crate::store::subjects::audit_seqs(t, &all_records)?;
    let meta = RequestMeta::default();
    let seq = t.audit(
        now,
        &NewEntry::new(Actor::System, RETENTION_PURGED, &meta)
            .target("workspace", t.workspace)
            .before(json!({"collections": report, "audit_seqs": seqs}))
            .after(json!({
                "records_deleted": all_records.len(),
                "files_removed": all_files.len(),
            })),
    )?;
    crate::subjects::erase_audit_values(t, &seqs, seq)?;
    Ok((all_records.len(), all_files))
}

/// Every workspace's purge, one after another (each on its own; one that
/// fails is logged and the others go on). With `all`, every workspace is
/// visited (the first run after a start, recounting the windows /trust
/// states); else only those control.db knows to have a window.
pub async fn run_all(
    control: &crate::store::control::Control,
    tenants: &crate::store::tenant::TenantPool,
    clock: &crate::clock::SharedClock,
    all: bool,
) -> Result<String> {
    let ids = if all {
        control.db.read(crate::store::control::workspace_ids)?
    } else {
        control.db.read(crate::store::retention::workspaces)?
    };
    let (mut records, mut files, mut failed) = (0, 0, 0);
    for ws in ids {
        let grant = crate::access::SystemTask::RetentionPurge.grant(ws);
        let visit = match tenants.visit(control, &grant) {
            Ok(v) => v,
            Err(e) => {
                tracing::debug!(workspace = %ws, error = %e, "retention: workspace not open");
                continue;
            }
        };
        // A frozen workspace (suspended, moving, read-only) keeps its data
        // until it is writable again.
        if visit.frozen().is_some() {
            continue;
        }
        match purge(&visit, clock.unix(), super::now_ms(clock)).await {
            Ok(p) => {
                records += p.records;
                files += p.files;
                let now = clock.unix();
                control
                    .db
                    .write(|tx| crate::store::retention::set_count(tx, ws, p.windows, now))?;
            }
            Err(e) => {
                failed += 1;
                tracing::warn!(workspace = %ws, error = %e, "retention purge failed");
            }
        }
    }
    Ok(format!(
        "{records} records and {files} files purged; {failed} workspaces failed"
    ))
}

/// After a collection change: the workspace's count of windows in
/// control.db (for /trust). A failure is logged; the next run corrects it.
pub async fn recount(control: &crate::store::control::Control, db: &TenantDb, now: i64) {
    let ws = db.id();
    let done = match count_windows(db).await {
        Ok(n) => control
            .db
            .write(|tx| crate::store::retention::set_count(tx, ws, n, now)),
        Err(e) => Err(e),
    };
    if let Err(e) = done {
        tracing::warn!(workspace = %ws, error = %e, "could not count retention windows");
    }
}
