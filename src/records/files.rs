//! Files in `file` fields: upload (streamed, sealed as it arrives, checked
//! against the field's size and media types and the workspace quota),
//! download (each chunk authenticated before it is handed out) and removal.
//! The record's value lists the file references; every change is one
//! transaction holding the `files` row, the record's new version and the
//! audit entry (file references before and after, never contents). The
//! sealed bytes are removed only after the transaction that dropped their
//! row has committed (`store::files::sweep` clears what a crash left).

use std::io::Read;

use serde_json::json;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::schema::{Field, FieldType, RecordAction};
use super::{Need, Visible, audit_values, load, now_ms};
use crate::access::enter::TenantHandle;
use crate::audit::NewEntry;
use crate::config::FilesConfig;
use crate::crypto::file_seal::{CHUNK, FileBinding, is_integrity_error};
use crate::error::{Error, Result};
use crate::ids::{CollectionId, RecordId};
use crate::model::file_ref::{self, FileRef, MAX_FILES};
use crate::store::files as fstore;
use crate::store::records::{self as rstore, RecordRow};

/// Bytes read before the media type is decided.
const SNIFF: usize = 8 * 1024;

/// One upload as the route received it.
pub struct NewFile<R> {
    /// The field's name or id.
    pub field: String,
    pub name: String,
    /// The body's declared length, if any (checked before reading).
    pub declared: Option<u64>,
    pub body: R,
}

/// The live `file` field `key` names; else 404, like any path naming
/// nothing there.
fn file_field<'a>(coll: &'a Visible, key: &str) -> Result<&'a Field> {
    coll.row
        .def
        .live_field(key)
        .filter(|f| f.kind == FieldType::File)
        .ok_or(Error::NotFound("file field"))
}

/// The media type of content starting with `head`: by its bytes, never its
/// name. SVG (XML that can hold scripts) is told apart from other XML.
pub fn sniff(head: &[u8]) -> String {
    let text = match std::str::from_utf8(head) {
        Ok(t) => Some(t),
        // A multi-byte character cut at the end of the sniffed bytes.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    let lower = text.map(|t| {
        t.trim_start_matches('\u{feff}')
            .trim_start()
            .to_ascii_lowercase()
    });
    if let Some(l) = &lower {
        if l.starts_with("<svg")
            || ((l.starts_with("<?xml") || l.starts_with("<!doctype svg")) && l.contains("<svg"))
        {
            return "image/svg+xml".into();
        }
    }
    if let Some(t) = infer::get(head) {
        return t.mime_type().to_owned();
    }
    match lower {
        Some(l) if l.starts_with("<!doctype html") || l.starts_with("<html") => "text/html".into(),
        Some(_) => "text/plain".into(),
        None => "application/octet-stream".into(),
    }
}

/// Reads until `buf` is full or the body ends.
fn fill(body: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match body.read(&mut buf[got..])? {
            0 => break,
            n => got += n,
        }
    }
    Ok(got)
}

/// The byte limit for the reader under an upload: past every field's
/// limit by more than one read, so the check here (which names the limit
/// that applies) always fires first.
pub fn body_backstop(limits: &FilesConfig) -> usize {
    usize::try_from(limits.max_file_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(2 * CHUNK + 1)
}

fn too_large(limit: u64, what: &str) -> Error {
    Error::TooLarge(format!("{what} is {limit} bytes"))
}

fn over_quota(quota: u64, used: u64) -> Error {
    Error::TooLarge(format!(
        "this workspace's files would pass its quota of {quota} bytes ({used} bytes used; files.workspace_quota_bytes)"
    ))
}

/// Adds a file to a record's file field (a single-file field's earlier file
/// is replaced). The body is read on a blocking thread, sealed to a
/// temporary file as it arrives; a failure at any point leaves nothing.
pub async fn upload_file<R: Read + Send + 'static>(
    ctx: &TenantHandle,
    limits: &FilesConfig,
    coll_id: &CollectionId,
    rec_id: &RecordId,
    input: NewFile<R>,
) -> Result<(Visible, RecordRow, FileRef)> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Update)).await?;
    ctx.db.writable()?;
    let field = file_field(&coll, &input.field)?.clone();
    let name = file_ref::clean_name(&input.name)
        .ok_or_else(|| Error::field("name", "must be a file name (1 to 255 characters)"))?;
    let limit = field
        .max_size
        .map_or(limits.max_file_bytes, |m| m.min(limits.max_file_bytes));
    let what = if field.max_size.is_some_and(|m| m < limits.max_file_bytes) {
        format!("the largest file field {} takes", field.name)
    } else {
        "the largest file this appliance takes (files.max_file_bytes)".to_owned()
    };
    if input.declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit, &what));
    }
    let quota = limits.workspace_quota_bytes;
    let (rid, cid) = (rec_id.to_string(), coll.row.id.clone());
    let used = ctx
        .db
        .read(move |c, s| {
            rstore::get_record(c, s, &cid, &rid)?.ok_or(Error::NotFound("record"))?;
            fstore::used_bytes(c)
        })
        .await?;
    // Early, by the declared length (a single-file field's replacement is
    // checked in the transaction, where the bytes it frees are known).
    if field.multiple
        && input
            .declared
            .is_some_and(|n| used.saturating_add(n) > quota)
    {
        return Err(over_quota(quota, used));
    }
    let file_id = file_ref::new_file_id();
    let ws = ctx.db.id().to_string();
    let blobs = ctx.db.files();
    let (record, fid, allowed) = (rec_id.to_string(), field.id.clone(), field.types.clone());
    let field_name = field.name.clone();
    let mut body = input.body;
    let sealed = tokio::task::spawn_blocking(move || -> Result<_> {
        let binding = FileBinding {
            workspace: &ws,
            record: &record,
            field: &fid,
            file: &file_id,
        };
        let mut head = vec![0u8; SNIFF];
        let n = fill(&mut body, &mut head)?;
        head.truncate(n);
        let media_type = sniff(&head);
        if !file_ref::type_allowed(&allowed, &media_type) {
            return Err(Error::field(
                field_name,
                format!(
                    "takes files of type {}; this file is {media_type}",
                    allowed.join(", ")
                ),
            ));
        }
        let mut up = fstore::Upload::start(&blobs, binding)?;
        let mut sha = Sha256::new();
        let mut size = 0u64;
        let mut buf = head;
        loop {
            if buf.is_empty() {
                buf.resize(CHUNK, 0);
                let n = fill(&mut body, &mut buf)?;
                buf.truncate(n);
                if n == 0 {
                    break;
                }
            }
            size += buf.len() as u64;
            if size > limit {
                return Err(too_large(limit, &what));
            }
            sha.update(&buf);
            up.write_all(&buf)?;
            buf.clear();
        }
        up.finish()?;
        let sha256 = hex::encode(sha.finalize());
        Ok((up, media_type, size, sha256))
    })
    .await
    .map_err(|_| Error::internal("upload task failed"))??;
    let (mut up, media_type, size, sha256) = sealed;
    let file = FileRef {
        id: up.file_id.clone(),
        name,
        media_type,
        size,
        sha256,
    };
    let now = ctx.now();
    let ms = now_ms(&ctx.clock);
    let (user, actor, meta) = (ctx.user.to_string(), ctx.actor.clone(), ctx.meta.clone());
    let (row, rid, added) = (coll.row.clone(), rec_id.to_string(), file.clone());
    let (rec, up, replaced) = ctx
        .db
        .write(move |t| {
            let old = rstore::get_record(t, t.sealer, &row.id, &rid)?
                .ok_or(Error::NotFound("record"))?;
            let before = file_ref::refs(old.values.get(&field.id));
            // A single-file field's file is replaced: its bytes are freed.
            let freed: u64 = if field.multiple {
                0
            } else {
                before.iter().map(|f| f.size).sum()
            };
            let used = fstore::used_bytes(t)?;
            if used.saturating_sub(freed).saturating_add(size) > quota {
                return Err(over_quota(quota, used));
            }
            let (mut after, replaced): (Vec<FileRef>, Vec<String>) = if field.multiple {
                (before.clone(), Vec::new())
            } else {
                (Vec::new(), before.iter().map(|f| f.id.clone()).collect())
            };
            if after.len() >= MAX_FILES {
                return Err(Error::field(
                    field.name.clone(),
                    format!("holds at most {MAX_FILES} files"),
                ));
            }
            after.push(added.clone());
            fstore::forget(t, &rid, &replaced)?;
            up.place(t, &rid, &field.id, size, now)?;
            let rec = change_files(t, &row, &old, &field, &after, ms, &user)?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "record.file_added", &meta)
                    .target("record", &rec.id)
                    .before(json!({"version": old.version, "values": audit_values(&old.values, Some(&rec.values))}))
                    .after(json!({
                        "collection": row.id,
                        "version": rec.version,
                        "fields": [field.name],
                        "file": added.id,
                        "values": audit_values(&rec.values, Some(&old.values)),
                    })),
            )?;
            Ok((rec, up, replaced))
        })
        .await?;
    up.committed();
    fstore::remove_blobs_async(ctx.db.files(), replaced).await?;
    Ok((coll, rec, file))
}

/// The record with `field` now listing `files` (a new version).
fn change_files(
    t: &crate::store::tenant::TenantTx<'_>,
    row: &rstore::CollectionRow,
    old: &RecordRow,
    field: &Field,
    files: &[FileRef],
    ms: i64,
    user: &str,
) -> Result<RecordRow> {
    let mut vals = old.values.clone();
    match file_ref::value_of(files) {
        Some(v) => vals.insert(field.id.clone(), v),
        None => vals.remove(&field.id),
    };
    rstore::update_record(t, row, old, vals, ms, Some(user))
}

/// Removes one file from a record's file field.
pub async fn delete_file(
    ctx: &TenantHandle,
    coll_id: &CollectionId,
    rec_id: &RecordId,
    field_key: &str,
    file_id: &str,
) -> Result<(Visible, RecordRow)> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Update)).await?;
    let field = file_field(&coll, field_key)?.clone();
    let now = ctx.now();
    let ms = now_ms(&ctx.clock);
    let (user, actor, meta) = (ctx.user.to_string(), ctx.actor.clone(), ctx.meta.clone());
    let (row, rid, gone) = (coll.row.clone(), rec_id.to_string(), file_id.to_owned());
    let rec = ctx
        .db
        .write(move |t| {
            let old = rstore::get_record(t, t.sealer, &row.id, &rid)?
                .ok_or(Error::NotFound("record"))?;
            let before = file_ref::refs(old.values.get(&field.id));
            if !before.iter().any(|f| f.id == gone) {
                return Err(Error::NotFound("file"));
            }
            let after: Vec<FileRef> = before.into_iter().filter(|f| f.id != gone).collect();
            fstore::forget(t, &rid, std::slice::from_ref(&gone))?;
            let rec = change_files(t, &row, &old, &field, &after, ms, &user)?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "record.file_removed", &meta)
                    .target("record", &rec.id)
                    .before(json!({"version": old.version, "values": audit_values(&old.values, Some(&rec.values))}))
                    .after(json!({
                        "collection": row.id,
                        "version": rec.version,
                        "fields": [field.name],
                        "file": gone,
                        "values": audit_values(&rec.values, Some(&old.values)),
                    })),
            )?;
            Ok(rec)
        })
        .await?;
    fstore::remove_blobs_async(ctx.db.files(), vec![file_id.to_owned()]).await?;
    Ok((coll, rec))
}

/// A file being downloaded: its reference, and its plaintext in
/// authenticated chunks (the first already checked before this returns, so
/// a file damaged at its start answers an error instead of a response).
pub struct Download {
    pub file: FileRef,
    pub chunks: mpsc::Receiver<std::io::Result<bytes::Bytes>>,
}

/// Chunks kept between the disk and a slow reader.
const IN_FLIGHT: usize = 4;

pub async fn download_file(
    ctx: &TenantHandle,
    coll_id: &CollectionId,
    rec_id: &RecordId,
    field_key: &str,
    file_id: &str,
) -> Result<Download> {
    let (cid, rid) = (coll_id.to_string(), rec_id.to_string());
    let (coll, rec) =
        super::load_reading(ctx, Need::Record(RecordAction::Read), move |c, s, defs| {
            crate::store::cache::get_collection_and_record(c, s, defs, &cid, &rid)
        })
        .await?;
    let rec = rec.ok_or(Error::NotFound("record"))?;
    let field = file_field(&coll, field_key)?.clone();
    let file = file_ref::refs(rec.values.get(&field.id))
        .into_iter()
        .find(|f| f.id == file_id)
        .ok_or(Error::NotFound("file"))?;
    let (rid, fid, id) = (rec.id.clone(), field.id.clone(), file.id.clone());
    let key = ctx
        .db
        .read(move |c, s| fstore::file_key(c, s, &rid, &fid, &id))
        .await?
        .ok_or(Error::NotFound("file"))?;
    let (ws, blobs) = (ctx.db.id().to_string(), ctx.db.files());
    let (rid, fid, id) = (rec.id.clone(), field.id.clone(), file.id.clone());
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<Result<()>>();
    tokio::task::spawn_blocking(move || {
        let binding = FileBinding {
            workspace: &ws,
            record: &rid,
            field: &fid,
            file: &id,
        };
        let opened = fstore::open(&blobs, &key, binding);
        let mut reader = match opened {
            Ok(r) => r,
            Err(e) => {
                let _ = first_tx.send(Err(as_integrity(e)));
                return;
            }
        };
        let mut first = Some(first_tx);
        loop {
            let next = reader.next_chunk();
            if let Some(f) = first.take() {
                if let Err(e) = &next {
                    let _ = f.send(Err(if is_integrity_error(e) {
                        Error::Integrity("the file")
                    } else {
                        Error::internal("reading a file failed")
                    }));
                    return;
                }
                let _ = f.send(Ok(()));
            }
            let item = match next {
                Ok(Some(c)) => Ok(bytes::Bytes::from(c)),
                Ok(None) => return,
                Err(e) => {
                    tracing::error!(file = %id, error = %e, "a file failed while it was sent; the download is cut");
                    Err(e)
                }
            };
            let stop = item.is_err();
            if tx.blocking_send(item).is_err() || stop {
                return;
            }
        }
    });
    first_rx
        .await
        .map_err(|_| Error::internal("file reader stopped"))??;
    Ok(Download { file, chunks: rx })
}

fn as_integrity(e: Error) -> Error {
    match e {
        Error::Io(io) if is_integrity_error(&io) => Error::Integrity("the file"),
        other => other,
    }
}

/// Ids of the files `values` lists in `def`'s file fields (with
/// `only_pii`, in its personal-data file fields only).
pub fn file_ids(
    def: &super::schema::Definition,
    values: &super::values::Values,
    only_pii: bool,
) -> Vec<String> {
    def.fields
        .iter()
        .filter(|f| f.kind == FieldType::File && (f.pii || !only_pii))
        .flat_map(|f| file_ref::refs(values.get(&f.id)))
        .map(|r| r.id)
        .collect()
}

/// `values` (an earlier version's) with the file fields as in `current`.
pub fn with_current_files(
    def: &super::schema::Definition,
    mut values: super::values::Values,
    current: &super::values::Values,
) -> super::values::Values {
    for f in def.fields.iter().filter(|f| f.kind == FieldType::File) {
        match current.get(&f.id) {
            Some(v) => values.insert(f.id.clone(), v.clone()),
            None => values.remove(&f.id),
        };
    }
    values
}

/// Drops from `values` the file references whose files are gone (a
/// deletion undone after the deletion removed them).
pub fn keep_existing(
    t: &dyn crate::store::Sql,
    def: &super::schema::Definition,
    record: &str,
    values: &mut super::values::Values,
) -> Result<()> {
    let have = fstore::files_of_record(t, record)?;
    for f in def.fields.iter().filter(|f| f.kind == FieldType::File) {
        let Some(v) = values.get(&f.id) else { continue };
        let kept: Vec<FileRef> = file_ref::refs(Some(v))
            .into_iter()
            .filter(|r| have.contains(&r.id))
            .collect();
        match file_ref::value_of(&kept) {
            Some(v) => values.insert(f.id.clone(), v),
            None => values.remove(&f.id),
        };
    }
    Ok(())
}
