//! Collections over HTTP: list, define, read, change and delete. Records
//! inside them are in `records.rs`; both enter the workspace through the
//! `tenant::Path<op::X>` extractor.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::MaybeUndefined;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::body::JsonBody;
use super::records::Deleted;
use crate::access::op;
use crate::app::AppState;
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
    #[oai(validator(
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: String,
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
    #[oai(validator(
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub name: Option<String>,
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

#[derive(Object)]
pub struct CollectionList {
    pub items: Vec<Collection>,
}

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

#[OpenApi(tag = "ApiTags::Records")]
impl CollectionsApi {
    /// The collections the caller can see, in pages: `limit` (1 to 500,
    /// default 500) and `cursor`. When there may be more, the response has a
    /// `Link: <...>; rel="next"` header (RFC 8288) with the next page's URL;
    /// the body keeps its shape.
    #[oai(path = "/workspaces/:workspace/collections", method = "get")]
    async fn list_collections(
        &self,
        workspace: tenant::Path<op::CollectionRead>,
        limit: Query<Option<i64>>,
        cursor: Query<Option<String>>,
    ) -> poem::Result<CollectionPage> {
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
            format!("</api/v1/workspaces/{ws}/collections?limit={limit}&cursor={c}>; rel=\"next\"")
        });
        Ok(CollectionPage::Ok(
            Json(CollectionList {
                items: items.into_iter().map(Collection::from).collect(),
            }),
            link,
        ))
    }

    /// Defines a collection (admins and managers).
    #[oai(path = "/workspaces/:workspace/collections", method = "post")]
    async fn create_collection(
        &self,
        state: Data<&Arc<AppState>>,
        workspace: tenant::Path<op::CollectionCreate>,
        body: JsonBody<CollectionCreate>,
    ) -> poem::Result<CollectionCreated> {
        let b = body.0;
        let v = records::create_collection(
            &workspace,
            &state.bounds.limits,
            NewCollection {
                name: b.name,
                fields: b.fields,
                team_id: b.team_id,
                permissions: b.permissions,
                retention: b.retention,
            },
        )
        .await?;
        records::retention::recount(&state.control, &workspace.db, workspace.now()).await;
        Ok(CollectionCreated::Created(Json(v.into())))
    }

    /// One collection with its schema.
    #[oai(
        path = "/workspaces/:workspace/collections/:collection",
        method = "get"
    )]
    async fn get_collection(
        &self,
        workspace: tenant::Path<op::CollectionRead>,
        collection: Path<String>,
    ) -> poem::Result<Json<Collection>> {
        Ok(Json(
            records::load(&workspace, &collection.parse()?, Need::See)
                .await?
                .into(),
        ))
    }

    /// Changes the name, the fields (add, rename, retire, flags) or the
    /// record permissions. A field's type never changes.
    #[oai(
        path = "/workspaces/:workspace/collections/:collection",
        method = "patch"
    )]
    async fn change_collection(
        &self,
        state: Data<&Arc<AppState>>,
        // Team leads manage their team's collections whatever their workspace
        // role, so the door lets members through and the collection decides.
        workspace: tenant::Path<op::CollectionUpdate>,
        collection: Path<String>,
        body: JsonBody<CollectionPatch>,
    ) -> poem::Result<Json<Collection>> {
        let b = body.0;
        let v = records::change_collection(
            &workspace,
            &state.bounds.limits,
            &collection.parse()?,
            CollectionChange {
                name: b.name,
                fields: b.fields,
                permissions: b.permissions,
                retention: b.retention.into(),
            },
        )
        .await?;
        records::retention::recount(&state.control, &workspace.db, workspace.now()).await;
        Ok(Json(v.into()))
    }

    /// Deletes a collection with all its records (admins).
    #[oai(
        path = "/workspaces/:workspace/collections/:collection",
        method = "delete"
    )]
    async fn delete_collection(
        &self,
        state: Data<&Arc<AppState>>,
        workspace: tenant::Path<op::CollectionDelete>,
        collection: Path<String>,
    ) -> poem::Result<Deleted> {
        records::delete_collection(&workspace, &collection.parse()?).await?;
        records::retention::recount(&state.control, &workspace.db, workspace.now()).await;
        Ok(Deleted::Deleted)
    }
}
