//! Workspace records: typed collections (owned by the workspace or a team),
//! sealed records with history, unique values through blind indexes,
//! idempotent creates, cursor pages, search and CSV. The route enters the
//! workspace (membership, least role from the permission table); everything
//! here checks the loaded collection itself: its owner team and its own
//! record permissions.

mod collections;
pub mod csv_cell;
pub mod csv_io;
mod list;
pub mod sort;
/// Moved to `model::rights` (part of a stored definition); re-exported here.
pub mod rights {
    pub use crate::model::rights::*;
}
#[cfg(test)]
mod rights_table;
/// Moved to `model::schema` (the store reads definitions); re-exported here.
pub mod schema {
    pub use crate::model::schema::*;
}
mod deleted;
pub mod files;
pub mod files_sweep;
pub mod retention;
pub mod search;
pub mod teams;
/// Moved to `model::values` (the store indexes values); re-exported here.
pub mod values {
    pub use crate::model::values::*;
}
pub mod visibility;

use std::collections::HashSet;

use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::access::enter::TenantHandle;
use crate::access::permissions::{Action, Resource, allows};
use crate::access::{Role, TeamPlace};
use crate::audit::NewEntry;
use crate::clock::SharedClock;
use crate::error::{Error, Result};
use crate::ids::{CollectionId, RecordId};
use crate::store::Sql;
use crate::store::control::Control;
use crate::store::records::{self as rstore, CollectionRow, RecordRow, VersionRow};
use schema::{Definition, RecordAction};
use values::{Lookup, Values};

pub use collections::{
    COLLECTIONS_PAGE_MAX, CollectionChange, NewCollection, change_collection, create_collection,
    delete_collection, list_collections, list_collections_page,
};
pub use deleted::{rekey_tombstones, undelete_record};
pub use list::{ListParams, Page, list_records, live_records};

pub const MAX_PAGE: usize = 200;
pub(crate) const DEFAULT_PAGE: usize = 50;

/// Now, in Unix milliseconds (record times are kept in milliseconds).
pub fn now_ms(clock: &SharedClock) -> i64 {
    i64::try_from(clock.now().unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub use crate::clock::rfc3339_ms;

/// The caller's role inside a collection, or `None` when the collection is
/// not theirs to see (a team-owned collection of a team they are not on).
/// On the team, a lead acts at least as a manager, a member with their
/// workspace role; either way never above the request's token scope
/// (`access::role::effective`, through `TenantHandle::role_with`).
pub fn effective_role(
    coll: &CollectionRow,
    ctx: &TenantHandle,
    teams: &[(String, String)],
) -> Option<Role> {
    effective_role_by(coll, teams, |place| ctx.role_with(place))
}

/// `effective_role` for any source of the team-aware role (a request's
/// `TenantHandle`, or a `visibility::Reader` kept from one).
pub fn effective_role_by(
    coll: &CollectionRow,
    teams: &[(String, String)],
    role_with: impl Fn(Option<TeamPlace>) -> Role,
) -> Option<Role> {
    match &coll.team_id {
        None => Some(role_with(None)),
        Some(team) => teams
            .iter()
            .find(|(t, _)| t == team)
            .map(|(_, place)| role_with(TeamPlace::parse(place))),
    }
}

/// A collection as the caller sees it.
#[derive(Clone, Debug)]
pub struct Visible {
    pub row: CollectionRow,
    pub role: Role,
}

impl Visible {
    pub fn can(&self, action: RecordAction) -> bool {
        self.row.def.permissions.allows(self.role, action)
    }

    pub fn can_manage(&self) -> bool {
        allows(self.role, Resource::Collection, Action::Update)
    }
}

async fn my_teams(ctx: &TenantHandle) -> Result<Vec<(String, String)>> {
    let user = ctx.user.to_string();
    ctx.db
        .read(move |c, _| crate::store::teams::teams_of(c, &user))
        .await
}

/// What the caller must be allowed on a collection to load it.
#[derive(Clone, Copy, Debug)]
pub enum Need {
    /// To see it: the workspace's, or their team's.
    See,
    /// One record action, by the collection's own record permissions.
    Record(RecordAction),
    /// To change its definition: managers, or the owning team's lead.
    Manage,
}

/// The one collection loader: the collection `id` if the caller may see it
/// (any other id answers 404, exactly like a missing one) and do what `need`
/// says (else 403, the refusal recorded in the workspace's chain).
pub async fn load(ctx: &TenantHandle, id: &CollectionId, need: Need) -> Result<Visible> {
    let id = id.to_string();
    let fetch =
        move |c: &dyn Sql, s: &crate::crypto::Sealer, defs: &crate::store::cache::DefCache| {
            Ok(crate::store::cache::get_collection(c, s, defs, &id)?.map(|row| (row, ())))
        };
    Ok(load_reading(ctx, need, fetch).await?.0)
}

/// `load`, with the collection read by `fetch` together with whatever the
/// request reads next (a page, a record) in one hop to the reader threads.
/// What `fetch` read is dropped unless the collection passes `need`.
pub(crate) async fn load_reading<T, F>(
    ctx: &TenantHandle,
    need: Need,
    fetch: F,
) -> Result<(Visible, T)>
where
    T: Send + 'static,
    F: FnOnce(
            &dyn Sql,
            &crate::crypto::Sealer,
            &crate::store::cache::DefCache,
        ) -> Result<Option<(CollectionRow, T)>>
        + Send
        + 'static,
{
    let user = ctx.user;
    let defs = ctx.db.defs();
    let found = ctx
        .db
        .read(move |c, s| {
            let Some((row, out)) = fetch(c, s, &defs)? else {
                return Ok(None);
            };
            let teams = match &row.team_id {
                Some(_) => crate::store::teams::teams_of(c, &user.to_string())?,
                None => Vec::new(),
            };
            Ok(Some((row, teams, out)))
        })
        .await?;
    let (row, teams, out) = found.ok_or(Error::NotFound("collection"))?;
    let role = effective_role(&row, ctx, &teams).ok_or(Error::NotFound("collection"))?;
    let v = Visible { row, role };
    let refused = match need {
        Need::See => None,
        Need::Record(action) if !v.can(action) => Some((action.as_str(), "collection permissions")),
        Need::Record(_) => None,
        Need::Manage if !v.can_manage() => Some(("collection.update", "manager")),
        Need::Manage => None,
    };
    if let Some((action, needs)) = refused {
        return Err(ctx.deny(v.role, action, needs).await);
    }
    Ok((v, out))
}

// ---- records --------------------------------------------------------------

/// Checks relations (inside the write transaction) and member references.
pub struct TxLookup<'a> {
    pub conn: &'a dyn Sql,
    pub members: &'a HashSet<String>,
}

impl Lookup for TxLookup<'_> {
    fn is_member(&self, user_id: &str) -> bool {
        self.members.contains(user_id)
    }

    fn record_exists(&self, collection: &str, record_id: &str) -> Result<bool> {
        rstore::record_exists(self.conn, collection, record_id)
    }
}

/// User ids of the workspace's members (for `member` fields), fetched only
/// when the collection has one.
pub async fn member_ids(
    ctx: &TenantHandle,
    control: &Control,
    def: &Definition,
) -> Result<HashSet<String>> {
    if !def
        .live_fields()
        .any(|f| f.kind == schema::FieldType::Member)
    {
        return Ok(HashSet::new());
    }
    let ws = ctx.db.id();
    control
        .db
        .read_async(move |c| crate::store::accounts::member_user_ids(c, ws))
        .await
}

fn changed_fields(def: &Definition, old: &Values, new: &Values) -> Vec<String> {
    def.fields
        .iter()
        .filter(|f| old.get(&f.id) != new.get(&f.id))
        .map(|f| f.name.clone())
        .collect()
}

/// The values an audit entry keeps (sealed, like all details), by field id so
/// that a later anonymisation knows which are `pii` whatever the fields are
/// called by then. With `only`, just the fields whose value differs from it.
pub fn audit_values(vals: &Values, only: Option<&Values>) -> Value {
    let m: Map<String, Value> = match only {
        None => vals.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Some(other) => {
            let keys: std::collections::BTreeSet<&String> =
                vals.keys().chain(other.keys()).collect();
            keys.into_iter()
                .filter(|k| vals.get(*k) != other.get(*k))
                .map(|k| {
                    (
                        (*k).clone(),
                        vals.get(k.as_str()).cloned().unwrap_or(Value::Null),
                    )
                })
                .collect()
        }
    };
    Value::Object(m)
}

pub struct Created {
    pub coll: Visible,
    pub record: RecordRow,
    /// True when an earlier create with the same Idempotency-Key answered.
    pub replayed: bool,
}

pub async fn create_record(
    ctx: &TenantHandle,
    control: &Control,
    coll_id: &CollectionId,
    input: Map<String, Value>,
    idempotency_key: Option<String>,
) -> Result<Created> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Create)).await?;
    if let Some(k) = &idempotency_key {
        if k.is_empty() || k.len() > 255 || !k.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(Error::field(
                "Idempotency-Key",
                "must be 1 to 255 visible ASCII characters",
            ));
        }
    }
    let members = member_ids(ctx, control, &coll.row.def).await?;
    let now = ctx.now();
    let ms = now_ms(&ctx.clock);
    let user = ctx.user;
    let actor = ctx.actor.clone();
    let meta2 = ctx.meta.clone();
    let row = coll.row.clone();
    let (record, replayed) = ctx
        .db
        .write(move |t| {
            // Under every live key: a retry during a key rotation still replays.
            let idem = idempotency_key.map(|k| {
                let keys = t
                    .blind
                    .compute_all("records.idempotency", &format!("{user}:{}:{k}", row.id));
                let body = serde_json::to_vec(&input).unwrap_or_default();
                (keys, Sha256::digest(&body).to_vec())
            });
            if let Some((keys, req)) = &idem {
                let mut replay = None;
                for key in keys {
                    replay = replay.or(rstore::idempotent_replay(t, key, req, now)?);
                }
                if let Some(seq) = replay {
                    if let Some(rec) = rstore::get_record_by_seq(t, t.sealer, seq)? {
                        return Ok((rec, true));
                    }
                    return Err(Error::Conflict(
                        "the record this Idempotency-Key created has since been deleted".into(),
                    ));
                }
            }
            let lookup = TxLookup {
                conn: t,
                members: &members,
            };
            let vals = values::validate(&row.def, &input, None, &lookup)?;
            let rec = rstore::insert_record(t, &row, vals, ms, Some(&user.to_string()))?;
            if let Some((keys, req)) = &idem {
                let key = keys.first().map(Vec::as_slice).unwrap_or_default();
                rstore::remember_idempotency(t, key, req, rec.seq, now)?;
            }
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "record.created", &meta2)
                    .target("record", &rec.id)
                    .after(json!({"collection": row.id, "version": 1, "values": audit_values(&rec.values, None)})),
            )?;
            Ok((rec, false))
        })
        .await?;
    Ok(Created {
        coll,
        record,
        replayed,
    })
}

pub async fn get_record(
    ctx: &TenantHandle,
    coll_id: &CollectionId,
    id: &RecordId,
) -> Result<(Visible, RecordRow)> {
    let (cid, rid) = (coll_id.to_string(), id.to_string());
    let (coll, rec) = load_reading(ctx, Need::Record(RecordAction::Read), move |c, s, defs| {
        crate::store::cache::get_collection_and_record(c, s, defs, &cid, &rid)
    })
    .await?;
    Ok((coll, rec.ok_or(Error::NotFound("record"))?))
}

/// Applies a partial change (`null` clears a field) or, with `restore`, puts
/// back an earlier version's values.
async fn write_update(
    ctx: &TenantHandle,
    control: &Control,
    coll: Visible,
    id: &RecordId,
    change: Update,
) -> Result<(Visible, RecordRow)> {
    let members = member_ids(ctx, control, &coll.row.def).await?;
    let now = ctx.now();
    let ms = now_ms(&ctx.clock);
    let user = ctx.user;
    let actor = ctx.actor.clone();
    let meta2 = ctx.meta.clone();
    let row = coll.row.clone();
    let id = id.to_string();
    let rec = ctx
        .db
        .write(move |t| {
            let old = rstore::get_record(t, t.sealer, &row.id, &id)?
                .ok_or(Error::NotFound("record"))?;
            let (vals, action, extra) = match change {
                Update::Values(input) => {
                    let lookup = TxLookup {
                        conn: t,
                        members: &members,
                    };
                    (
                        values::validate(&row.def, &input, Some(&old.values), &lookup)?,
                        "record.updated",
                        json!(null),
                    )
                }
                Update::Restore(version) => {
                    let versions = rstore::versions(t, t.sealer, &old)?;
                    let v = versions
                        .into_iter()
                        .find(|v| v.version == version)
                        .ok_or(Error::NotFound("version"))?;
                    // File fields change only through their own routes:
                    // a restore keeps the files the record has now.
                    let vals = files::with_current_files(&row.def, v.values, &old.values);
                    (vals, "record.restored", json!(version))
                }
            };
            let fields = changed_fields(&row.def, &old.values, &vals);
            let rec = rstore::update_record(t, &row, &old, vals, ms, Some(&user.to_string()))?;
            let mut after = json!({
                "collection": row.id,
                "version": rec.version,
                "fields": fields,
                "values": audit_values(&rec.values, Some(&old.values)),
            });
            if !extra.is_null() {
                after["restored_version"] = extra;
            }
            t.audit(
                now,
                &NewEntry::new(actor.clone(), action, &meta2)
                    .target("record", &rec.id)
                    .before(json!({"version": old.version, "values": audit_values(&old.values, Some(&rec.values))}))
                    .after(after),
            )?;
            Ok(rec)
        })
        .await?;
    Ok((coll, rec))
}

enum Update {
    Values(Map<String, Value>),
    Restore(i64),
}

pub async fn update_record(
    ctx: &TenantHandle,
    control: &Control,
    coll_id: &CollectionId,
    id: &RecordId,
    input: Map<String, Value>,
) -> Result<(Visible, RecordRow)> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Update)).await?;
    write_update(ctx, control, coll, id, Update::Values(input)).await
}

pub async fn restore_version(
    ctx: &TenantHandle,
    control: &Control,
    coll_id: &CollectionId,
    id: &RecordId,
    version: i64,
) -> Result<(Visible, RecordRow)> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Update)).await?;
    write_update(ctx, control, coll, id, Update::Restore(version)).await
}

pub async fn delete_record(
    ctx: &TenantHandle,
    coll_id: &CollectionId,
    id: &RecordId,
) -> Result<()> {
    let coll = load(ctx, coll_id, Need::Record(RecordAction::Delete)).await?;
    let now = ctx.now();
    let ms = now_ms(&ctx.clock);
    let actor = ctx.actor.clone();
    let meta2 = ctx.meta.clone();
    let (c, r) = (coll.row.id.clone(), id.to_string());
    let files = ctx
        .db
        .write(move |t| {
            let old =
                rstore::get_record(t, t.sealer, &c, &r)?.ok_or(Error::NotFound("record"))?;
            // Its files go with it (an undo brings the record back without
            // them: docs/files.md).
            let files = crate::store::files::files_of_record(t, &old.id)?;
            crate::store::files::forget(t, &old.id, &files)?;
            rstore::delete_record(t, old.seq, ms)?;
            t.audit(
                now,
                &NewEntry::new(actor.clone(), "record.deleted", &meta2)
                    .target("record", &old.id)
                    .before(json!({"collection": c, "version": old.version, "values": audit_values(&old.values, None)})),
            )?;
            Ok(files)
        })
        .await?;
    crate::store::files::remove_blobs_async(ctx.db.files(), files).await
}

pub async fn history(
    ctx: &TenantHandle,
    coll_id: &CollectionId,
    id: &RecordId,
) -> Result<(Visible, RecordRow, Vec<VersionRow>)> {
    let (coll, rec) = get_record(ctx, coll_id, id).await?;
    let r = rec.clone();
    let versions = ctx.db.read(move |c, s| rstore::versions(c, s, &r)).await?;
    Ok((coll, rec, versions))
}

/// A record as clients see it.
pub fn record_json(def: &Definition, r: &RecordRow) -> Value {
    json!({
        "id": r.id,
        "collection_id": r.collection_id,
        "values": values::to_api(def, &r.values),
        "created_at": rfc3339_ms(r.created_at),
        "updated_at": rfc3339_ms(r.updated_at),
        "version": r.version,
    })
}
