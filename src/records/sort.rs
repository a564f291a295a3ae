//! Sorting a collection's records by one field's value (`sort=<field id>`,
//! `sort=-<field id>`). Values are sealed, so SQL cannot order by them: a
//! field sort counts the collection's live records (nothing decrypted), and
//! when there are at most `SORT_CAP` reads and decrypts them once for the
//! request, orders them in memory and answers one page. Beyond the cap it is
//! a 422 naming `sort` (created/updated order still pages any collection).
//! The cursor is the last row's sort key and seq, sealed under the
//! workspace key: opaque, and no value travels in the clear in a URL.
//! docs/search.md, "Sorting by a field", says why it is not index-backed.

use std::cmp::Ordering;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::schema::{Definition, Field, FieldType};
use crate::crypto::{Sealer, Slot};
use crate::error::{Error, Result};
use crate::store::Sql;
use crate::store::records::{self as rstore, RecordRow, Sort};

/// Most live records a collection may hold to be sorted by a field.
pub const SORT_CAP: usize = 5_000;

/// Whether collection `coll` may be sorted by a field now (at most
/// `SORT_CAP` live records): pages offer field orders only then.
pub async fn fits(ctx: &crate::access::enter::TenantHandle, coll: &str) -> Result<bool> {
    let coll = coll.to_owned();
    let n = ctx
        .db
        .read(move |c, _| rstore::count_records(c, &coll))
        .await?;
    Ok(n <= SORT_CAP)
}

/// Records read (and decrypted) per step while loading a collection.
const STEP: usize = 500;

/// Field types that sort: by text (case-insensitive), number, amount
/// (money: currency code, then amount), date or time, false before true,
/// and a select by its options' order.
pub fn sortable(kind: FieldType) -> bool {
    matches!(
        kind,
        FieldType::Text
            | FieldType::Email
            | FieldType::Phone
            | FieldType::Url
            | FieldType::Integer
            | FieldType::Decimal
            | FieldType::Money
            | FieldType::Boolean
            | FieldType::Date
            | FieldType::Datetime
            | FieldType::Select
    )
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldSort {
    pub field_id: String,
    pub desc: bool,
}

impl FieldSort {
    /// The `sort` value that names this order.
    pub fn as_param(&self) -> String {
        if self.desc {
            format!("-{}", self.field_id)
        } else {
            self.field_id.clone()
        }
    }
}

pub fn bad_sort() -> Error {
    Error::field(
        "sort",
        "must be created_at, -created_at, updated_at, -updated_at, or the id of a sortable \
         field (text, email, phone, url, integer, decimal, money, boolean, date, datetime, \
         select), with - before it for descending",
    )
}

/// A field sort named by `s`, against the collection's live fields.
pub fn parse(def: &Definition, s: &str) -> Result<FieldSort> {
    let (desc, id) = match s.strip_prefix('-') {
        Some(id) => (true, id),
        None => (false, s),
    };
    let field = def
        .live_fields()
        .find(|f| f.id == id)
        .ok_or_else(bad_sort)?;
    if !sortable(field.kind) {
        return Err(Error::field(
            "sort",
            format!(
                "field {} cannot be sorted (its type does not sort)",
                field.name
            ),
        ));
    }
    Ok(FieldSort {
        field_id: field.id.clone(),
        desc,
    })
}

/// One value's place in the order. Values of one field always give the same
/// variant; the derived order between variants only keeps it total.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Key {
    Bool(bool),
    Int(i64),
    /// A normalised decimal string (`values::decimal`).
    Dec(String),
    /// Unix seconds and nanoseconds.
    Time(i64, u32),
    /// Lowercased, then as typed.
    Text(String, String),
    /// Position in the select's options (unknown last), then the text.
    Opt(usize, String),
    /// Currency code, then minor units.
    Money(String, i64),
}

impl Key {
    fn of(f: &Field, v: &Value) -> Option<Key> {
        let text = || v.as_str().map(str::to_owned);
        Some(match f.kind {
            FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url => {
                let t = text()?;
                Key::Text(t.to_lowercase(), t)
            }
            FieldType::Date => {
                let t = text()?;
                Key::Text(t.clone(), t)
            }
            FieldType::Integer => Key::Int(v.as_i64()?),
            FieldType::Decimal => Key::Dec(text()?),
            FieldType::Money => Key::Money(
                v.get("currency")?.as_str()?.to_owned(),
                v.get("amount_minor")?.as_i64()?,
            ),
            FieldType::Boolean => Key::Bool(v.as_bool()?),
            FieldType::Datetime => {
                let rfc = time::format_description::well_known::Rfc3339;
                let t = time::OffsetDateTime::parse(v.as_str()?, &rfc).ok()?;
                Key::Time(t.unix_timestamp(), t.nanosecond())
            }
            FieldType::Select => {
                let t = text()?;
                let at = f.options.iter().position(|o| *o == t).unwrap_or(usize::MAX);
                Key::Opt(at, t)
            }
            _ => return None,
        })
    }

    fn rank(&self) -> u8 {
        match self {
            Key::Bool(_) => 0,
            Key::Int(_) => 1,
            Key::Dec(_) => 2,
            Key::Time(..) => 3,
            Key::Text(..) => 4,
            Key::Opt(..) => 5,
            Key::Money(..) => 6,
        }
    }

    fn cmp(&self, other: &Key) -> Ordering {
        match (self, other) {
            (Key::Bool(a), Key::Bool(b)) => a.cmp(b),
            (Key::Int(a), Key::Int(b)) => a.cmp(b),
            (Key::Dec(a), Key::Dec(b)) => dec_cmp(a, b),
            (Key::Time(a, an), Key::Time(b, bn)) => (a, an).cmp(&(b, bn)),
            (Key::Text(a, at), Key::Text(b, bt)) => (a, at).cmp(&(b, bt)),
            (Key::Opt(a, at), Key::Opt(b, bt)) => (a, at).cmp(&(b, bt)),
            (Key::Money(a, am), Key::Money(b, bm)) => (a, am).cmp(&(b, bm)),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// Compares two decimal strings exactly (no float): sign, then the integer
/// part's length and digits, then the fraction's digits.
fn dec_cmp(a: &str, b: &str) -> Ordering {
    fn parts(s: &str) -> (bool, &str, &str) {
        let (neg, body) = match s.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, s),
        };
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        (neg && !(int.is_empty() && frac.is_empty()), int, frac)
    }
    let (an, ai, af) = parts(a);
    let (bn, bi, bf) = parts(b);
    let magnitude = ai.len().cmp(&bi.len()).then(ai.cmp(bi)).then(af.cmp(bf));
    match (an, bn) {
        (false, false) => magnitude,
        (true, true) => magnitude.reverse(),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
    }
}

/// A row's place: records without a value come last in both directions;
/// equal values keep creation (seq) order in the sort's direction.
fn order(desc: bool, a: (Option<&Key>, i64), b: (Option<&Key>, i64)) -> Ordering {
    let dir = |o: Ordering| if desc { o.reverse() } else { o };
    match (a.0, b.0) {
        (Some(x), Some(y)) => dir(x.cmp(y).then(a.1.cmp(&b.1))),
        (None, None) => dir(a.1.cmp(&b.1)),
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
    }
}

#[derive(Serialize, Deserialize)]
struct Cursor {
    f: String,
    d: bool,
    k: Option<Key>,
    s: i64,
}

fn bad_cursor() -> Error {
    Error::field("cursor", "is not a cursor this list returned")
}

fn slot(collection: &str) -> Slot<'_> {
    Slot::new("records", collection, "sort_cursor")
}

fn open_cursor(sealer: &Sealer, collection: &str, sort: &FieldSort, c: &str) -> Result<Cursor> {
    let ct = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad_cursor())?;
    let pt = sealer
        .open(slot(collection), &ct)
        .map_err(|_| bad_cursor())?;
    let cur: Cursor = serde_json::from_slice(&pt).map_err(|_| bad_cursor())?;
    if cur.f != sort.field_id || cur.d != sort.desc {
        return Err(bad_cursor());
    }
    Ok(cur)
}

/// One page of the collection's live records in the field's order, and the
/// next page's cursor. Runs inside one read transaction.
pub fn page(
    conn: &dyn Sql,
    sealer: &Sealer,
    coll: &rstore::CollectionRow,
    sort: &FieldSort,
    cursor: Option<&str>,
    limit: usize,
) -> Result<(Vec<RecordRow>, Option<String>)> {
    let field = coll
        .def
        .live_fields()
        .find(|f| f.id == sort.field_id)
        .ok_or_else(bad_sort)?;
    let after = cursor
        .map(|c| open_cursor(sealer, &coll.id, sort, c))
        .transpose()?;
    if rstore::count_records(conn, &coll.id)? > SORT_CAP {
        return Err(Error::field(
            "sort",
            format!(
                "sorting by a field works for collections of at most {SORT_CAP} records; \
                 sort by created_at or updated_at, or search with q"
            ),
        ));
    }
    let mut rows: Vec<(Option<Key>, RecordRow)> = Vec::new();
    let mut from = None;
    loop {
        let (step, more) =
            rstore::list_page(conn, sealer, &coll.id, Sort::CreatedAsc, from, STEP, true)?;
        from = step.last().map(|r| (r.created_at, r.seq));
        rows.extend(
            step.into_iter()
                .map(|r| (r.values.get(&field.id).and_then(|v| Key::of(field, v)), r)),
        );
        // Written between the count and now: still bounded.
        if !more || rows.len() > SORT_CAP {
            break;
        }
    }
    fn key(e: &(Option<Key>, RecordRow)) -> (Option<&Key>, i64) {
        (e.0.as_ref(), e.1.seq)
    }
    rows.sort_by(|a, b| order(sort.desc, key(a), key(b)));
    let start = match &after {
        None => 0,
        Some(c) => rows.partition_point(|e| {
            order(sort.desc, key(e), (c.k.as_ref(), c.s)) != Ordering::Greater
        }),
    };
    let more = rows.len() > start + limit;
    let items: Vec<(Option<Key>, RecordRow)> = rows.into_iter().skip(start).take(limit).collect();
    let next = match (more, items.last()) {
        (true, Some((k, r))) => {
            let cur = Cursor {
                f: sort.field_id.clone(),
                d: sort.desc,
                k: k.clone(),
                s: r.seq,
            };
            let ct = sealer.seal(slot(&coll.id), &serde_json::to_vec(&cur)?)?;
            Some(URL_SAFE_NO_PAD.encode(ct))
        }
        _ => None,
    };
    Ok((items.into_iter().map(|(_, r)| r).collect(), next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_compare_exactly_and_empty_values_come_last() {
        let sorted = [
            "-10.5", "-2", "-1.25", "0", "0.05", "0.5", "2", "10", "10.01",
        ];
        for w in sorted.windows(2) {
            assert_eq!(dec_cmp(w[0], w[1]), Ordering::Less, "{w:?}");
            assert_eq!(dec_cmp(w[1], w[0]), Ordering::Greater, "{w:?}");
        }
        assert_eq!(dec_cmp("1.50", "1.5"), Ordering::Equal);
        let k = Key::Int(1);
        for desc in [false, true] {
            assert_eq!(order(desc, (Some(&k), 1), (None, 0)), Ordering::Less);
            assert_eq!(order(desc, (None, 0), (Some(&k), 1)), Ordering::Greater);
        }
        let (a, b) = (
            Key::Text("ada".into(), "Ada".into()),
            Key::Text("bo".into(), "bo".into()),
        );
        assert_eq!(order(false, (Some(&a), 9), (Some(&b), 1)), Ordering::Less);
        assert_eq!(order(true, (Some(&a), 9), (Some(&b), 1)), Ordering::Greater);
    }
}
