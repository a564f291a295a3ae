//! Collections over HTTP: list, define, read, change and delete. Records
//! inside them are in `records.rs`; both enter the workspace through the
//! `tenant::Path<op::X>` extractor.

use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::body::JsonBody;
use super::fields::ShortName;
use super::list::list;
use super::records::Deleted;
use super::routes::api;
use crate::access::op;
use crate::records::schema::{Field, FieldInput, Permissions, RecordAction, Retention};
use crate::records::{self, CollectionChange, Need, NewCollection, Visible, rfc3339_ms};
use crate::web::tenant;

#[derive(Object)]
pub struct Rights {
    pub read: bool,
    pub create: bool,
    pub update: bool,
    pub delete: bool,
    /// May change the schema and permissions.
    pub manage: bool,
}

#[derive(Object)]
pub struct Collection {
    pub id: String,
    pub name: String,
    /// The owning team; absent when the whole workspace owns it.
    pub team_id: Option<String>,
    pub fields: Vec<Field>,
    pub permissions: Permissions,
    /// Records are deleted (their files with them) `days` after the date
    /// in `field` (its id); absent when the collection has no window.
    pub retention: Option<Retention>,
    /// What the caller may do here.
    pub you: Rights,
    pub created_at: String,
    pub updated_at: String,
}

impl From<Visible> for Collection {
    fn from(v: Visible) -> Self {
        let you = Rights {
            read: v.can(RecordAction::Read),
            create: v.can(RecordAction::Create),
            update: v.can(RecordAction::Update),
            delete: v.can(RecordAction::Delete),
            manage: v.can_manage(),
        };
        let def = std::sync::Arc::unwrap_or_clone(v.row.def);
        Self {
            id: v.row.id,
            name: def.name,
            team_id: v.row.team_id,
            fields: def.fields,
            permissions: def.permissions,
            retention: def.retention,
            you,
            created_at: rfc3339_ms(v.row.created_at),
            updated_at: rfc3339_ms(v.row.updated_at),
        }
    }
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionCreate {
    pub name: ShortName,
    pub fields: Vec<FieldInput>,
    /// A team to own the collection; only its lead and members will see it.
    #[serde(default)]
    pub team_id: Option<String>,
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// Delete each record (its files with it) `days` after the date in
    /// `field` (a date or datetime field's name or id).
    #[serde(default)]
    pub retention: Option<Retention>,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CollectionPatch {
    #[serde(default)]
    pub name: Option<ShortName>,
    /// Entries with an `id` change that field (rename, flags, `retired`);
    /// entries without add a field. Fields not listed stay as they are.
    #[serde(default)]
    pub fields: Option<Vec<FieldInput>>,
    #[serde(default)]
    pub permissions: Option<Permissions>,
    /// The collection's retention window; `null` removes it, absent keeps it.
    #[serde(default)]
    pub retention: MaybeUndefined<Retention>,
}

list!(CollectionList of Collection);

#[derive(ApiResponse)]
pub enum CollectionPage {
    #[oai(status = 200)]
    Ok(
        Json<CollectionList>,
        /// The next page, when there may be one.
        #[oai(header = "Link")]
        Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum CollectionCreated {
    #[oai(status = 201)]
    Created(Json<Collection>),
}

#[derive(Default)]
pub struct CollectionsApi;

api! {
    #[OpenApi(tag = "ApiTags::Records")]
    impl CollectionsApi {
        /// The collections the caller can see, in pages: `limit` (1 to 500,
        /// default 500) and `cursor`. When there may be more, the response has a
        /// `Link: <...>; rel="next"` header (RFC 8288) with the next page's URL;
        /// the body keeps its shape.
        GET "/workspaces/:workspace/collections"
        async fn list_collections(
            workspace: tenant::Path<op::CollectionRead>,
            limit: Query<Option<i64>>,
            cursor: Query<Option<String>>,
        ) -> CollectionPage {
            let max = records::COLLECTIONS_PAGE_MAX;
            let limit = match limit.0 {
                None => max,
                Some(n) => usize::try_from(n)
                    .ok()
                    .filter(|n| (1..=max).contains(n))
                    .ok_or_else(|| {
                        crate::error::Error::field("limit", format!("must be between 1 and {max}"))
                    })?,
            };
            let (items, next) =
                records::list_collections_page(&workspace, limit, cursor.0.as_deref()).await?;
            let ws = workspace.db.id();
            let link = next.map(|c| {
                format!(
                    "</api/v1/workspaces/{ws}/collections?limit={limit}&cursor={c}>; rel=\"next\""
                )
            });
            Ok(CollectionPage::Ok(Json(items.into()), link))
        }

        /// Defines a collection (admins and managers).
        POST "/workspaces/:workspace/collections"
        async fn create_collection(
            workspace: tenant::Path<op::CollectionCreate>,
            body: JsonBody<CollectionCreate>,
        ) -> CollectionCreated {
            let b = body.0;
            let v = records::create_collection(
                &workspace,
                &workspace.state().bounds.limits,
                NewCollection {
                    name: b.name.into(),
                    fields: b.fields,
                    team_id: b.team_id,
                    permissions: b.permissions,
                    retention: b.retention,
                },
            )
            .await?;
            records::retention::recount(&workspace.state().control, &workspace.db, workspace.now())
                .await;
            Ok(CollectionCreated::Created(Json(v.into())))
        }

        /// One collection with its schema.
        GET "/workspaces/:workspace/collections/:collection"
        async fn get_collection(
            workspace: tenant::Path<op::CollectionRead>,
            collection: Path<String>,
        ) -> Json<Collection> {
            Ok(Json(
                records::load(&workspace, &collection.parse()?, Need::See)
                    .await?
                    .into(),
            ))
        }

        /// Changes the name, the fields (add, rename, retire, flags) or the
        /// record permissions. A field's type never changes.
        PATCH "/workspaces/:workspace/collections/:collection"
        async fn change_collection(
            // Team leads manage their team's collections whatever their workspace
            // role, so the door lets members through and the collection decides.
            workspace: tenant::Path<op::CollectionUpdate>,
            collection: Path<String>,
            body: JsonBody<CollectionPatch>,
        ) -> Json<Collection> {
            let b = body.0;
            let v = records::change_collection(
                &workspace,
                &workspace.state().bounds.limits,
                &collection.parse()?,
                CollectionChange {
                    name: b.name.map(String::from),
                    fields: b.fields,
                    permissions: b.permissions,
                    retention: b.retention.into(),
                },
            )
            .await?;
            records::retention::recount(&workspace.state().control, &workspace.db, workspace.now())
                .await;
            Ok(Json(v.into()))
        }

        /// Deletes a collection with all its records (admins).
        DELETE "/workspaces/:workspace/collections/:collection"
        async fn delete_collection(
            workspace: tenant::Path<op::CollectionDelete>,
            collection: Path<String>,
        ) -> Deleted {
            records::delete_collection(&workspace, &collection.parse()?).await?;
            records::retention::recount(&workspace.state().control, &workspace.db, workspace.now())
                .await;
            Ok(Deleted::Deleted)
        }
    }
}
