//! CSV export and import of one collection. Export streams pages of decrypted
//! rows straight into the response; import parses the uploaded body as it
//! arrives (never holding it whole), checks every row, and writes all of
//! them in one transaction or none. Neither touches a temp file, so no
//! plaintext lands on disk. Cells
//! that a spreadsheet would run as a formula are neutralised on the way out
//! and restored on the way in (`csv_cell`).

use std::io::Read;

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::csv_cell::{neutralise, restore};
use super::schema::{Definition, Field, RecordAction};
use super::{Need, TxLookup, load, member_ids, rfc3339_ms, values};
use crate::access::enter::TenantHandle;
use crate::audit::NewEntry;
use crate::audit::service::ExportStream;
use crate::bounds::DataBounds;
use crate::bounds::paced::PacedSender;
use crate::error::{Error, FieldError, Result};
use crate::ids::CollectionId;
use crate::store::control::Control;
use crate::store::records::{self as rstore, RecordRow, Sort};

/// Rows per chunk: small enough that a stalled reader holds little.
const PAGE: usize = 200;
/// At most this many rows per import.
pub const MAX_ROWS: usize = 50_000;
const MAX_ERRORS: usize = 50;

/// Audits the export, then streams the collection as CSV: `id`,
/// `created_at`, `updated_at`, then one column per live field.
pub async fn export(
    ctx: &TenantHandle,
    bounds: &DataBounds,
    coll_id: &CollectionId,
) -> Result<ExportStream> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Read)).await?;
    // Capped in all and per workspace (429 beyond), before anything is written.
    let slot = bounds.export_slot(&ctx.db.id().to_string()).await?;
    let now = ctx.now();
    let actor = ctx.actor.clone();
    let meta = ctx.meta.clone();
    let cid = coll.row.id.clone();
    ctx.db
        .write(move |t| {
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "records.exported", &meta)
                    .target("collection", &cid)
                    .after(json!({ "format": "csv" })),
            )
        })
        .await?;
    let lim = &bounds.limits;
    let (mut tx, rx) = PacedSender::channel(
        std::time::Duration::from_secs(lim.export_stall_secs),
        lim.export_min_bytes_per_sec,
        Some(slot),
    );
    let db = ctx.db.clone();
    // An async producer: while the reader is slow it waits on the channel,
    // holding no thread; each page is one short hop to the reader threads.
    tokio::spawn(async move {
        let def = std::sync::Arc::clone(&coll.row.def);
        let fields: Vec<_> = def.live_fields().cloned().collect();
        let fields = std::sync::Arc::new(fields);
        let mut after = None;
        let mut header = true;
        loop {
            let (cid, f) = (coll.row.id.clone(), std::sync::Arc::clone(&fields));
            let page = db
                .read(move |c, s| {
                    let page = rstore::list_records(c, s, &cid, Sort::CreatedAsc, after, PAGE)?;
                    let chunk =
                        csv_rows(&f, &page, header).ok_or_else(|| Error::internal("csv rows"))?;
                    Ok((
                        chunk,
                        page.last().map(|l| (l.created_at, l.seq)),
                        page.len(),
                    ))
                })
                .await;
            let (chunk, last, n) = match page {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "csv export failed");
                    tx.fail("export failed");
                    return;
                }
            };
            header = false;
            if !chunk.is_empty() && tx.send(Bytes::from(chunk)).await.is_err() {
                return;
            }
            match last {
                Some(last) if n == PAGE => after = Some(last),
                _ => return,
            }
        }
    });
    Ok(rx)
}

fn at(line: u64, column: &str, message: impl Into<String>) -> FieldError {
    FieldError {
        field: format!("line {line}, column {column}"),
        message: message.into(),
    }
}

/// One parsed row: its line and the restored text of each mapped column,
/// cut from one allocation at `ends`, so a large import holds about its own
/// size (not a JSON map per row) until it commits.
struct Parsed {
    line: u64,
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Parsed {
    fn cells(&self) -> impl Iterator<Item = &str> {
        let mut start = 0;
        self.ends.iter().map(move |&end| {
            let cell = self.text.get(start..end as usize).unwrap_or_default();
            start = end as usize;
            cell
        })
    }

    /// The row as record input, and the names of the fields whose cell
    /// could not be read (each named in `errors` by line and column).
    fn input(
        &self,
        fields: &[Field],
        errors: &mut Vec<FieldError>,
    ) -> (Map<String, Value>, Vec<String>) {
        let mut map = Map::new();
        let mut bad = Vec::new();
        for (cell, f) in self.cells().zip(fields) {
            match values::from_text(f, cell) {
                Ok(Some(v)) => {
                    map.insert(f.name.clone(), v);
                }
                Ok(None) => {}
                Err(m) => {
                    errors.push(at(self.line, &f.name, m));
                    bad.push(f.name.clone());
                }
            }
        }
        (map, bad)
    }
}

/// The body could not be read (the client went away, stalled past the
/// request deadline, or passed the limit, which the web layer answers 413).
fn unreadable() -> Error {
    Error::field("body", "could not be read to the end")
}

/// What `parse` read: the fields of the columns, every row, and the
/// problems of the header row (a column that is no field).
type Read3 = (Vec<Field>, Vec<Parsed>, Vec<FieldError>);

/// Parses the CSV as it is read into rows of restored cells. The cells are
/// checked against their fields with the rest of each row (`import`), so
/// every problem is named in one answer. A file that is not CSV, or has
/// more than `MAX_ROWS` rows, is refused here. Blocking: `source` may wait
/// on the network.
fn parse(def: &Definition, source: impl Read) -> Result<Read3> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(false)
        .from_reader(source);
    let headers = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(unreadable()),
        Err(_) => return Err(Error::field("line 1", "is not a CSV header row")),
    };
    let mut errors = Vec::new();
    // Per kept field: its column.
    let mut columns = Vec::new();
    let mut fields: Vec<Field> = Vec::new();
    for (i, h) in headers.iter().enumerate() {
        let h = restore(h.trim());
        if matches!(h, "id" | "created_at" | "updated_at") {
            continue;
        }
        match def.live_field(h) {
            // An export lists a file field's file names; files are not
            // imported (upload them through the files route).
            Some(f) if f.kind == crate::model::schema::FieldType::File => {}
            Some(f) => {
                columns.push(i);
                fields.push(f.clone());
            }
            None => errors.push(at(
                1,
                h,
                format!("is not a field of this collection (column {})", i + 1),
            )),
        }
    }
    let mut rows: Vec<Parsed> = Vec::new();
    let mut rec = csv::StringRecord::new();
    let mut text = String::new();
    let mut ends = Vec::with_capacity(fields.len());
    loop {
        match reader.read_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if matches!(e.kind(), csv::ErrorKind::Io(_)) => return Err(unreadable()),
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(FieldError {
                    field: format!("line {line}"),
                    message: "is not valid CSV (check quoting and the number of columns)".into(),
                });
                break;
            }
        }
        let line = rec.position().map(|p| p.line()).unwrap_or(0);
        if rows.len() >= MAX_ROWS {
            errors.push(FieldError {
                field: format!("line {line}"),
                message: format!("is past the limit of {MAX_ROWS} rows per import"),
            });
            break;
        }
        text.clear();
        ends.clear();
        for &col in &columns {
            let cell = restore(rec.get(col).unwrap_or_default());
            text.push_str(cell);
            ends.push(u32::try_from(text.len()).map_err(|_| unreadable())?);
        }
        rows.push(Parsed {
            line,
            text: text.as_str().into(),
            ends: ends.as_slice().into(),
        });
    }
    // Only a broken file stops here; the header's problems are named with
    // every row's.
    let broken = errors
        .iter()
        .any(|e| !e.field.starts_with("line 1, column "));
    if !broken {
        return Ok((fields, rows, errors));
    }
    drop(rows);
    // Read the rest (bounded by the limit and the deadline, holding nothing)
    // so the client, still sending, gets its answer rather than a reset.
    let _ = std::io::copy(&mut reader.into_inner(), &mut std::io::sink());
    Err(Error::Validation(errors))
}

/// Imports CSV rows as new records, all or nothing. The header names fields
/// (by name or id); `id`, `created_at` and `updated_at` columns are ignored.
/// Every problem names its line and column. Returns the number of records.
///
/// `source` is read as the rows are parsed, on a blocking thread, after the
/// caller's right to create records here is checked. Every row is parsed
/// and checked before the write transaction begins, so a slow client never
/// holds the workspace's writer; the rows then go in with the audit entry
/// in one transaction.
pub async fn import(
    ctx: &TenantHandle,
    control: &Control,
    coll_id: &CollectionId,
    source: impl Read + Send + 'static,
) -> Result<usize> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Create)).await?;
    let def = std::sync::Arc::clone(&coll.row.def);
    let d = std::sync::Arc::clone(&def);
    let (fields, rows, header_errors) = tokio::task::spawn_blocking(move || parse(&d, source))
        .await
        .map_err(|e| Error::internal(format!("csv import: {e}")))??;
    let members = member_ids(ctx, control, &def).await?;
    let now = ctx.now();
    let ms = super::now_ms(&ctx.clock);
    let user = ctx.user;
    let audit_actor = ctx.actor.clone();
    let meta = ctx.meta.clone();
    let row = coll.row.clone();
    ctx.db
        .write(move |t| {
            let lookup = TxLookup {
                conn: t,
                members: &members,
            };
            let actor = user.to_string();
            let mut errors = header_errors;
            let count = rows.len();
            // Every row is checked whole (its cells, then the record's rules:
            // required, unique, relations) even after a problem, so one answer
            // names them all; any problem rolls the inserts back.
            for parsed in rows {
                if errors.len() >= MAX_ERRORS {
                    break;
                }
                let line = parsed.line;
                let (input, unreadable) = parsed.input(&fields, &mut errors);
                drop(parsed);
                let checked = values::validate(&row.def, &input, None, &lookup)
                    .and_then(|vals| rstore::insert_record(t, &row, vals, ms, Some(&actor)));
                match checked {
                    Ok(_) => {}
                    Err(Error::Validation(errs)) => {
                        // A cell that could not be read is named once, not
                        // again as missing.
                        errors.extend(
                            errs.into_iter()
                                .map(|e| {
                                    (e.field.trim_start_matches("values.").to_owned(), e.message)
                                })
                                .filter(|(f, _)| !unreadable.contains(f))
                                .map(|(f, m)| at(line, &f, m)),
                        );
                    }
                    Err(e) => return Err(e),
                }
            }
            errors.truncate(MAX_ERRORS);
            if !errors.is_empty() {
                return Err(Error::Validation(errors));
            }
            t.audit(
                now,
                &NewEntry::new(audit_actor.clone(), "records.imported", &meta)
                    .target("collection", &row.id)
                    .after(json!({ "records": count })),
            )?;
            Ok(count)
        })
        .await
}

/// CSV lines for a page of records (`id`, `created_at`, `updated_at`, then one
/// column per field), with the header line first when `header`. Every cell
/// (field names too) is neutralised against spreadsheet formulas.
pub fn csv_rows(fields: &[Field], page: &[RecordRow], header: bool) -> Option<Vec<u8>> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut ok = true;
    if header {
        let mut h = vec!["id".to_owned(), "created_at".into(), "updated_at".into()];
        h.extend(fields.iter().map(|f| neutralise(&f.name).into_owned()));
        ok &= w.write_record(&h).is_ok();
    }
    for r in page {
        let mut row = vec![
            r.id.clone(),
            rfc3339_ms(r.created_at),
            rfc3339_ms(r.updated_at),
        ];
        row.extend(fields.iter().map(|f| {
            r.values
                .get(&f.id)
                .map(|v| neutralise(&values::to_text(f, v)).into_owned())
                .unwrap_or_default()
        }));
        ok &= w.write_record(&row).is_ok();
    }
    w.into_inner().ok().filter(|_| ok)
}

#[cfg(test)]
#[path = "csv_io_proptests.rs"]
mod proptests;
