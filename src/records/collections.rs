//! Defining, changing and deleting collections. Each change is checked on
//! the loaded collection (`load` with `Need::Manage`) and audited in the same
//! transaction.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;

use super::schema::{self, FieldInput, Permissions};
use super::{Need, Visible, effective_role, load, my_teams, now_ms};
use crate::access::enter::TenantHandle;
use crate::access::permissions::{Action, Resource, allows};
use crate::audit::NewEntry;
use crate::config::DataLimitsConfig;
use crate::error::{Error, Result};
use crate::ids::CollectionId;
use crate::store::records::{self as rstore, CollectionRow};

pub const COLLECTIONS_PAGE_MAX: usize = 500;

/// One page of the collections the caller can see, and the cursor of the
/// next page when there may be more. A page reads at most `limit`
/// definitions; one the caller may not see is skipped, so a page can hold
/// fewer than `limit`.
pub async fn list_collections_page(
    ctx: &TenantHandle,
    limit: usize,
    cursor: Option<&str>,
) -> Result<(Vec<Visible>, Option<String>)> {
    let bad = || {
        Error::field(
            "cursor",
            "must be a cursor from a previous page's Link header",
        )
    };
    let after = match cursor {
        None => None,
        Some(c) => {
            let raw = URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
            let raw = String::from_utf8(raw).map_err(|_| bad())?;
            let (at, id) = raw.split_once(':').ok_or_else(bad)?;
            Some((at.parse::<i64>().map_err(|_| bad())?, id.to_owned()))
        }
    };
    let teams = my_teams(ctx).await?;
    let rows = ctx
        .db
        .read(move |c, s| rstore::list_collections_page(c, s, after, limit))
        .await?;
    let next = match rows.last() {
        Some(last) if rows.len() == limit => {
            Some(URL_SAFE_NO_PAD.encode(format!("{}:{}", last.created_at, last.id)))
        }
        _ => None,
    };
    let items = rows
        .into_iter()
        .filter_map(|row| effective_role(&row, ctx, &teams).map(|role| Visible { row, role }))
        .collect();
    Ok((items, next))
}

pub async fn list_collections(ctx: &TenantHandle) -> Result<Vec<Visible>> {
    let teams = my_teams(ctx).await?;
    let all = ctx.db.read(rstore::list_collections).await?;
    Ok(all
        .into_iter()
        .filter_map(|row| effective_role(&row, ctx, &teams).map(|role| Visible { row, role }))
        .collect())
}

/// The operator's caps on definitions (`[data_limits]`): a change beyond
/// them gets 422 naming the field and writes nothing.
#[derive(Clone, Copy)]
struct Caps {
    collections: usize,
    fields: usize,
    definition_bytes: usize,
}

impl Caps {
    fn from(l: &DataLimitsConfig) -> Self {
        Self {
            collections: l.max_collections,
            fields: l.max_fields,
            definition_bytes: l.max_definition_bytes,
        }
    }

    fn check(&self, def: &schema::Definition) -> Result<()> {
        if def.fields.len() > self.fields {
            return Err(Error::field(
                "fields",
                format!(
                    "a collection has at most {} fields, retired ones included (data_limits.max_fields)",
                    self.fields
                ),
            ));
        }
        let bytes = serde_json::to_vec(def)?.len();
        if bytes > self.definition_bytes {
            return Err(Error::field(
                "fields",
                format!(
                    "the definition would take {bytes} bytes; at most {} are allowed (data_limits.max_definition_bytes)",
                    self.definition_bytes
                ),
            ));
        }
        Ok(())
    }
}

pub struct NewCollection {
    pub name: String,
    pub fields: Vec<FieldInput>,
    pub team_id: Option<String>,
    pub permissions: Option<Permissions>,
    /// The collection's retention window (`model::retention`).
    pub retention: Option<schema::Retention>,
}

/// Defines a collection, within the operator's `limits` on definitions.
pub async fn create_collection(
    ctx: &TenantHandle,
    limits: &DataLimitsConfig,
    input: NewCollection,
) -> Result<Visible> {
    let now = ctx.now();
    let ms = now_ms(&ctx.clock);
    let actor = ctx.actor.clone();
    let meta2 = ctx.meta.clone();
    let teams = my_teams(ctx).await?;
    let caps = Caps::from(limits);
    let row = ctx
        .db
        .write(move |t| {
            let ids = rstore::collection_ids(t)?;
            if ids.len() >= caps.collections {
                return Err(Error::field(
                    "collections",
                    format!(
                        "this workspace has the most collections allowed ({}; data_limits.max_collections)",
                        caps.collections
                    ),
                ));
            }
            let def = schema::build_definition_with(
                &input.name,
                &input.fields,
                input.permissions,
                input.retention,
                &ids,
            )?;
            caps.check(&def)?;
            name_free(t, &def.name, None)?;
            if let Some(team) = &input.team_id {
                if !crate::store::teams::team_exists(t, team)? {
                    return Err(Error::field("team_id", "is not a team of this workspace"));
                }
            }
            let row = CollectionRow {
                id: uuid::Uuid::now_v7().to_string(),
                team_id: input.team_id,
                def: def.into(),
                created_at: ms,
                updated_at: ms,
            };
            rstore::save_collection(t, t.sealer, &row)?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "collection.created", &meta2)
                    .target("collection", &row.id)
                    .after(json!({
                        "name": row.def.name,
                        "team": row.team_id,
                        "fields": row.def.fields.iter().map(|f| json!({"id": f.id, "name": f.name, "type": f.kind.as_str(), "retention": f.retention})).collect::<Vec<_>>(),
                        "retention": row.def.retention,
                    })),
            )?;
            Ok(row)
        })
        .await?;
    // The creator may not be on the owning team; they then see it no more.
    let role = effective_role(&row, ctx, &teams).unwrap_or(ctx.role);
    Ok(Visible { row, role })
}

/// Two collections of a workspace never share a name (ignoring case and
/// surrounding space): people tell them apart by it.
fn name_free(
    t: &crate::store::tenant::TenantTx<'_>,
    name: &str,
    except: Option<&str>,
) -> Result<()> {
    let taken = rstore::list_collections(t, t.sealer)?.iter().any(|c| {
        Some(c.id.as_str()) != except && c.def.name.trim().eq_ignore_ascii_case(name.trim())
    });
    if taken {
        return Err(Error::field(
            "name",
            "is already the name of another collection",
        ));
    }
    Ok(())
}

pub struct CollectionChange {
    pub name: Option<String>,
    pub fields: Option<Vec<FieldInput>>,
    pub permissions: Option<Permissions>,
    /// Set (`Some(Some)`), remove (`Some(None)`) or keep (`None`) the
    /// collection's retention window.
    pub retention: Option<Option<schema::Retention>>,
}

/// Changes a collection's definition, within the operator's `limits`.
pub async fn change_collection(
    ctx: &TenantHandle,
    limits: &DataLimitsConfig,
    id: &CollectionId,
    change: CollectionChange,
) -> Result<Visible> {
    let v = load(ctx, id, Need::Manage).await?;
    let now = ctx.now();
    let ms = now_ms(&ctx.clock);
    let actor = ctx.actor.clone();
    let meta2 = ctx.meta.clone();
    let role = v.role;
    let may_delete = allows(role, Resource::Collection, Action::Delete);
    let caps = Caps::from(limits);
    let written = ctx
        .db
        .write(move |t| {
            // Re-read inside the transaction: another change may have landed.
            let current = rstore::get_collection(t, t.sealer, &v.row.id)?
                .ok_or(Error::NotFound("collection"))?;
            let ids = rstore::collection_ids(t)?;
            let def = schema::apply_change_with(
                &current.def,
                change.name.as_deref(),
                change.fields.as_deref(),
                change.permissions,
                change.retention,
                &ids,
            )?;
            caps.check(&def)?;
            // A window added to, or tightened on, a collection that holds
            // records purges them beyond undo: as destructive as deleting
            // the collection, so it takes the same permission.
            if !may_delete && tightens_retention(&current.def, &def) {
                return Err(Error::Forbidden);
            }
            name_free(t, &def.name, Some(&current.id))?;
            let newly_keyed = def.live_fields().any(|f| {
                (f.unique || f.pii)
                    && current
                        .def
                        .field_by_id(&f.id)
                        .is_none_or(|o| o.unique != f.unique || o.pii != f.pii || o.retired)
            });
            // Before and after in the same shape, so a reader sees what changed.
            let before = json!({
                "name": current.def.name,
                "fields": current.def.fields.iter().map(|f| json!({"id": f.id, "name": f.name, "type": f.kind.as_str(), "retired": f.retired, "retention": f.retention})).collect::<Vec<_>>(),
                "permissions": current.def.permissions,
                "retention": current.def.retention,
            });
            let row = CollectionRow {
                def: def.into(),
                updated_at: ms.max(current.updated_at),
                ..current
            };
            rstore::save_collection(t, t.sealer, &row)?;
            if newly_keyed {
                rstore::backfill_keys(
                    t,
                    &row,
                )?;
                // Deleted records too: their entries must stay findable.
                let mut after = 0;
                while super::rekey_tombstones(t, Some(&row.id), &mut after)? > 0 {}
            }
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "collection.updated", &meta2)
                    .target("collection", &row.id)
                    .before(before)
                    .after(json!({
                        "name": row.def.name,
                        "fields": row.def.fields.iter().map(|f| json!({"id": f.id, "name": f.name, "type": f.kind.as_str(), "retired": f.retired, "retention": f.retention})).collect::<Vec<_>>(),
                        "permissions": row.def.permissions,
                        "retention": row.def.retention,
                    })),
            )?;
            Ok(row)
        })
        .await;
    let row = match written {
        Err(Error::Forbidden) => {
            return Err(ctx.deny(role, "collection.retention", "admin").await);
        }
        other => other?,
    };
    Ok(Visible { row, role })
}

/// Whether `after` adds a retention window `before` did not have, or makes
/// one purge sooner (fewer days, or another date field), on a collection
/// or on a field that already existed. New fields hold no data yet.
fn tightens_retention(before: &schema::Definition, after: &schema::Definition) -> bool {
    let tighter =
        |old: Option<&schema::Retention>, new: Option<&schema::Retention>| match (old, new) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(o), Some(n)) => n.days < o.days || n.field != o.field,
        };
    tighter(before.retention.as_ref(), after.retention.as_ref())
        || after.fields.iter().any(|f| {
            before
                .field_by_id(&f.id)
                .is_some_and(|o| tighter(o.retention.as_ref(), f.retention.as_ref()))
        })
}

pub async fn delete_collection(ctx: &TenantHandle, id: &CollectionId) -> Result<()> {
    let v = load(ctx, id, Need::See).await?;
    if !allows(v.role, Resource::Collection, Action::Delete) {
        return Err(ctx.deny(v.role, "collection.delete", "admin").await);
    }
    let now = ctx.now();
    let actor = ctx.actor.clone();
    let meta2 = ctx.meta.clone();
    let files = ctx
        .db
        .write(move |t| {
            let others = rstore::list_collections(t, t.sealer)?;
            if others.iter().any(|o| {
                o.id != v.row.id
                    && o.def
                        .fields
                        .iter()
                        .any(|f| f.collection.as_deref() == Some(v.row.id.as_str()))
            }) {
                return Err(Error::Conflict(
                    "another collection has a relation to this one; retire that field first".into(),
                ));
            }
            let record_ids = crate::store::subjects::record_ids(t, &v.row.id)?;
            let audit_seqs = crate::store::subjects::audit_seqs(t, &record_ids)?;
            let mut files = Vec::new();
            for r in &record_ids {
                let ids = crate::store::files::files_of_record(t, r)?;
                crate::store::files::forget(t, r, &ids)?;
                files.extend(ids);
            }
            let n = rstore::delete_collection(t, &v.row.id)?;
            let seq = t.audit(
                now,
                &NewEntry::new(actor.clone(), "collection.deleted", &meta2)
                    .target("collection", &v.row.id)
                    .before(
                        json!({"name": v.row.def.name, "records": n, "audit_seqs": audit_seqs}),
                    ),
            )?;
            // The records are gone, so their values leave the audit too.
            crate::subjects::erase_audit_values(t, &audit_seqs, seq)?;
            Ok(files)
        })
        .await?;
    // Their records are gone: so are their files' sealed bytes.
    crate::store::files::remove_blobs_async(ctx.db.files(), files).await
}
