//! Undo for a deleted record. A deletion keeps no copy of the values in the
//! records table (the tombstone has none); its audit entry holds them, sealed
//! under the workspace key like every entry. Undoing a deletion takes them
//! from there, so it works for as long as that entry keeps its details: not
//! once audit retention removed it or a data subject's erasure redacted it.

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

/// Puts a deleted record back with the values it had when it was deleted,
/// as a new version. Anyone who may delete the collection's records may undo
/// a deletion; fields removed from the collection since stay out.
pub async fn undelete_record(
    ctx: &TenantHandle,
    coll_id: &CollectionId,
    id: &RecordId,
) -> Result<(Visible, RecordRow)> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Delete)).await?;
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
            let vals: Values = values_when_deleted(t, t.sealer, &row.id, &id)?
                .into_iter()
                .filter(|(k, _)| row.def.live_fields().any(|f| &f.id == k))
                .collect();
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

/// The values the record's last `record.deleted` entry recorded.
fn values_when_deleted(c: &dyn Sql, sealer: &Sealer, coll: &str, id: &str) -> Result<Values> {
    let gone = || {
        Error::Conflict(
            "this record's deletion is no longer in the audit log with its values, so it cannot be restored"
                .into(),
        )
    };
    let filter = SqlFilter {
        target: Some(format!("record:{id}")),
        action: Some("record.deleted".into()),
        ..SqlFilter::default()
    };
    let entry = astore::query(c, &filter, 1)?
        .into_iter()
        .next()
        .filter(|e| e.redacted_by.is_none())
        .ok_or_else(gone)?;
    let detail = crate::audit::search::detail(&entry, sealer);
    let before = detail.get("before").ok_or_else(gone)?;
    if before.get("collection").and_then(Value::as_str) != Some(coll) {
        return Err(gone());
    }
    let values = before
        .get("values")
        .and_then(Value::as_object)
        .ok_or_else(gone)?;
    Ok(values.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
}
