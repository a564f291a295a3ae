//! One page of a collection's records: by creation or update time with an
//! opaque (time, seq) cursor, by a field's value (`sort`, in memory and
//! bounded), or, with `q`, search hits newest first.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::schema::RecordAction;
use super::{DEFAULT_PAGE, MAX_PAGE, Need, Visible, load, load_reading, search, sort as fsort};
use crate::access::enter::TenantHandle;
use crate::error::{Error, Result};
use crate::ids::CollectionId;
use crate::store::Sql;
use crate::store::records::{self as rstore, RecordRow, Sort};

#[derive(Default, Clone)]
pub struct ListParams {
    pub limit: Option<i64>,
    pub cursor: Option<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
}

pub struct Page {
    pub coll: Visible,
    pub items: Vec<RecordRow>,
    pub next_cursor: Option<String>,
    /// The order, as the `sort` value that names it.
    pub sort: String,
}

fn bad_cursor() -> Error {
    Error::field("cursor", "is not a cursor this list returned")
}

fn decode_cursor(c: &str) -> Result<String> {
    let bytes = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad_cursor())?;
    String::from_utf8(bytes).map_err(|_| bad_cursor())
}

fn parse_limit(limit: Option<i64>) -> Result<usize> {
    match limit {
        None => Ok(DEFAULT_PAGE),
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => Ok(n as usize),
        Some(_) => Err(Error::field("limit", "must be between 1 and 200")),
    }
}

fn parse_after(cursor: Option<&str>, sort: Sort) -> Result<Option<(i64, i64)>> {
    let Some(c) = cursor else {
        return Ok(None);
    };
    let s = decode_cursor(c)?;
    let mut parts = s.split(':');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(tag), Some(t), Some(seq), None) if tag == sort.as_str() => Ok(Some((
            t.parse::<i64>().map_err(|_| bad_cursor())?,
            seq.parse::<i64>().map_err(|_| bad_cursor())?,
        ))),
        _ => Err(bad_cursor()),
    }
}

/// The next page's cursor, when there is a next page.
fn next_cursor(items: &[RecordRow], more: bool, sort: Sort) -> Option<String> {
    match (more, items.last()) {
        (true, Some(r)) => {
            let t = match sort {
                Sort::CreatedAsc | Sort::CreatedDesc => r.created_at,
                Sort::UpdatedAsc | Sort::UpdatedDesc => r.updated_at,
            };
            Some(URL_SAFE_NO_PAD.encode(format!("{}:{t}:{}", sort.as_str(), r.seq)))
        }
        _ => None,
    }
}

pub async fn list_records(
    ctx: &TenantHandle,
    finder: search::Finder<'_>,
    coll_id: &CollectionId,
    p: ListParams,
) -> Result<Page> {
    let limit = parse_limit(p.limit);
    let sort = Sort::parse(p.sort.as_deref());
    let q = p.q.filter(|q| !q.trim().is_empty());
    // A plain page with valid parameters: the collection and the page in one
    // read. Anything else loads the collection first, so a collection the
    // caller may not see still answers 404/403 before a parameter's 422.
    if let (None, Ok(limit), Ok(sort)) = (&q, &limit, &sort) {
        let (limit, sort) = (*limit, *sort);
        if let Ok(after) = parse_after(p.cursor.as_deref(), sort) {
            let id = coll_id.to_string();
            let fetch = move |c: &dyn Sql,
                              s: &crate::crypto::Sealer,
                              defs: &crate::store::cache::DefCache| {
                let Some(row) = crate::store::cache::get_collection(c, s, defs, &id)? else {
                    return Ok(None);
                };
                let page = rstore::list_page(c, s, &row.id, sort, after, limit, true)?;
                Ok(Some((row, page)))
            };
            let (coll, (items, more)) =
                load_reading(ctx, Need::Record(RecordAction::Read), fetch).await?;
            let next_cursor = next_cursor(&items, more, sort);
            return Ok(Page {
                coll,
                items,
                next_cursor,
                sort: sort.as_str().to_owned(),
            });
        }
    }
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Read)).await?;
    let limit = limit?;
    // Not a time order: a field of this collection, or a 422 on `sort`.
    let field_sort = match sort {
        Ok(_) => None,
        Err(_) => Some(fsort::parse(
            &coll.row.def,
            p.sort.as_deref().unwrap_or_default(),
        )?),
    };
    let sort = sort.unwrap_or(Sort::CreatedDesc);
    let cid = coll.row.id.clone();
    let (items, next_cursor) = if let Some(fs) = &field_sort {
        if q.is_some() {
            return Err(Error::field(
                "sort",
                "cannot sort search results by a field: they come newest first",
            ));
        }
        let (row, fs2, cursor) = (coll.row.clone(), fs.clone(), p.cursor.clone());
        ctx.db
            .read(move |c, s| fsort::page(c, s, &row, &fs2, cursor.as_deref(), limit))
            .await?
    } else if let Some(q) = q {
        if q.chars().count() > 200 {
            return Err(Error::field("q", "must be at most 200 characters"));
        }
        let before = match p.cursor.as_deref() {
            None => None,
            Some(c) => Some(
                decode_cursor(c)?
                    .strip_prefix("s:")
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(bad_cursor)?,
            ),
        };
        let seqs = search::search(finder, &ctx.db, &cid, &q, before, limit + 1).await?;
        let more = seqs.len() > limit;
        let seqs: Vec<i64> = seqs.into_iter().take(limit).collect();
        let last = seqs.last().copied();
        let c2 = cid.clone();
        let items = ctx
            .db
            .read(move |c, s| {
                let mut out = Vec::new();
                for seq in seqs {
                    if let Some(r) = rstore::get_record_by_seq(c, s, seq)? {
                        if r.collection_id == c2 {
                            out.push(r);
                        }
                    }
                }
                Ok(out)
            })
            .await?;
        let next = match (more, last) {
            (true, Some(seq)) => Some(URL_SAFE_NO_PAD.encode(format!("s:{seq}"))),
            _ => None,
        };
        (items, next)
    } else {
        let after = parse_after(p.cursor.as_deref(), sort)?;
        let (items, more) = ctx
            .db
            .read(move |c, s| rstore::list_page(c, s, &cid, sort, after, limit, true))
            .await?;
        let next = next_cursor(&items, more, sort);
        (items, next)
    };
    let sort = match &field_sort {
        Some(fs) => fs.as_param(),
        None => sort.as_str().to_owned(),
    };
    Ok(Page {
        coll,
        items,
        next_cursor,
        sort,
    })
}

/// The live records among `wanted` (collection id, record id) in the
/// collections the caller may read, in one read: what a page naming many
/// records (the audit log) shows. Anything else is simply not returned.
pub async fn live_records(
    ctx: &TenantHandle,
    wanted: Vec<(String, String)>,
) -> Result<Vec<RecordRow>> {
    let readable: std::collections::HashSet<String> = super::list_collections(ctx)
        .await?
        .into_iter()
        .filter(|v| v.can(RecordAction::Read))
        .map(|v| v.row.id.to_string())
        .collect();
    let wanted: Vec<(String, String)> = wanted
        .into_iter()
        .filter(|(c, _)| readable.contains(c))
        .collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    ctx.db
        .read(move |c, s| {
            let mut out = Vec::new();
            for (coll, id) in &wanted {
                out.extend(rstore::get_record(c, s, coll, id)?);
            }
            Ok(out)
        })
        .await
}
