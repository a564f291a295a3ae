//! Deleted records. A deletion keeps no copy of the values in the records
//! table (the tombstone has none); its audit entry holds them, sealed under
//! the workspace key like every entry. Two things read them from there:
//! - undoing a deletion (`undelete_record`), for as long as that entry keeps
//!   its details: not once audit retention removed it or a data subject's
//!   erasure redacted it, and not once any data-subject anonymisation ran
//!   after the deletion (an erasure must never be undone, and refusing after
//!   any later anonymisation does not depend on digests being current);
//! - keeping the tombstone's personal-data digests current
//!   (`rekey_tombstones`), so a data-subject request still finds the
//!   deleted record's entries after a key rotation or a new `pii` flag.

use serde_json::{Value, json};

use super::schema::RecordAction;
use super::values::Values;
use super::{Need, Visible, audit_values, load, now_ms};
use crate::access::enter::TenantHandle;
use crate::audit::NewEntry;
use crate::crypto::Sealer;
use crate::error::{Error, Result};
use crate::ids::{CollectionId, RecordId};
use crate::store::Sql;
use crate::store::audit::{self as astore, SqlFilter};
use crate::store::records::{self as rstore, RecordRow};
use crate::store::tenant::TenantTx;

/// Puts a deleted record back with the values it had when it was deleted,
/// as a new version. Whoever may delete and read the collection's records
/// may undo a deletion (the answer shows the values); fields removed from
/// the collection since stay out. With `entry`, only that deletion entry's
/// values may come back: a later deletion of the same record is a 409.
pub async fn undelete_record(
    ctx: &TenantHandle,
    coll_id: &CollectionId,
    id: &RecordId,
    entry: Option<i64>,
) -> Result<(Visible, RecordRow)> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Delete)).await?;
    if !coll.can(RecordAction::Read) {
        return Err(ctx
            .deny(coll.role, "records.undelete", "collection permissions")
            .await);
    }
    let now = ctx.now();
    let ms = now_ms(&ctx.clock);
    let user = ctx.user.to_string();
    let actor = ctx.actor.clone();
    let meta = ctx.meta.clone();
    let row = coll.row.clone();
    let id = id.to_string();
    let rec = ctx
        .db
        .write(move |t| {
            let tomb = rstore::tombstone(t, &row.id, &id)?.ok_or(Error::NotFound("record"))?;
            let mut vals: Values = values_when_deleted(t, t.sealer, &row.id, &id, entry)?
                .into_iter()
                .filter(|(k, _)| row.def.live_fields().any(|f| &f.id == k))
                .collect();
            // The deletion removed the record's files: they do not come back.
            super::files::keep_existing(t, &row.def, &id, &mut vals)?;
            let rec = rstore::undelete_record(t, &row, &tomb, vals, ms, Some(&user))?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "record.undeleted", &meta)
                    .target("record", &rec.id)
                    .before(json!({"collection": row.id, "deleted": true}))
                    .after(json!({
                        "collection": row.id,
                        "version": rec.version,
                        "values": audit_values(&rec.values, None),
                    })),
            )?;
            Ok(rec)
        })
        .await?;
    Ok((coll, rec))
}

/// The values the record's last `record.deleted` entry recorded (which must
/// be `entry` when given), unless a data-subject anonymisation ran since.
fn values_when_deleted(
    c: &dyn Sql,
    sealer: &Sealer,
    coll: &str,
    id: &str,
    entry: Option<i64>,
) -> Result<Values> {
    let Some((seq, values)) = deletion_values(c, sealer, coll, id)? else {
        return Err(Error::Conflict(
            "this record's deletion is no longer in the audit log with its values, so it cannot be restored"
                .into(),
        ));
    };
    if entry.is_some_and(|e| e != seq) {
        return Err(Error::Conflict(
            "this record was deleted again later: restore it from its latest deletion".into(),
        ));
    }
    let erasures = SqlFilter {
        action: Some(crate::audit::verify::ANONYMISED.into()),
        ascending_after: Some(seq),
        ..SqlFilter::default()
    };
    if !astore::query(c, &erasures, 1)?.is_empty() {
        return Err(Error::Conflict(
            "a data subject request was carried out after this deletion, so its values are not restored"
                .into(),
        ));
    }
    Ok(values)
}

/// The seq and values of the record's last `record.deleted` entry in
/// `coll`; none once retention removed it or an anonymisation redacted it.
fn deletion_values(
    c: &dyn Sql,
    sealer: &Sealer,
    coll: &str,
    id: &str,
) -> Result<Option<(i64, Values)>> {
    let filter = SqlFilter {
        target: Some(format!("record:{id}")),
        action: Some("record.deleted".into()),
        ..SqlFilter::default()
    };
    let Some(found) = astore::query(c, &filter, 1)?
        .into_iter()
        .next()
        .filter(|e| e.redacted_by.is_none())
    else {
        return Ok(None);
    };
    let detail = crate::audit::search::detail(&found, sealer);
    let Some(before) = detail.get("before") else {
        return Ok(None);
    };
    if before.get("collection").and_then(Value::as_str) != Some(coll) {
        return Ok(None);
    }
    let Some(values) = before.get("values").and_then(Value::as_object) else {
        return Ok(None);
    };
    let values = values.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    Ok(Some((found.seq, values)))
}

/// Tombstones looked at per call of `rekey_tombstones`.
pub const REKEY_BATCH: i64 = 500;

/// Brings deleted records' personal-data digests up to date from their
/// deletion entries, so a data-subject request still finds those entries:
/// after a data key rotation (every tombstone with such digests) or when
/// `collection` gains a personal-data field (its tombstones). One batch
/// after seq `after` (moved on); returns how many were looked at, 0 when done.
pub fn rekey_tombstones(
    t: &TenantTx<'_>,
    collection: Option<&str>,
    after: &mut i64,
) -> Result<usize> {
    let page = rstore::tombstones_page(t, collection, *after, REKEY_BATCH)?;
    for (seq, id, coll) in &page {
        *after = *seq;
        let Some(row) = rstore::get_collection(t, t.sealer, coll)? else {
            continue;
        };
        if let Some((_, vals)) = deletion_values(t, t.sealer, coll, id)? {
            rstore::rewrite_pii_keys(t, &row, *seq, &vals)?;
        }
    }
    Ok(page.len())
}
