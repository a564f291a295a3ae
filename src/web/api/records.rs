//! Collections and records over HTTP. Each handler enters the workspace with
//! the least role the permission table allows for the operation; the records
//! module then checks the collection it loaded (team ownership, the
//! collection's own permissions).

use std::sync::Arc;

use poem::Body;
use poem_openapi::param::{Header, Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::types::Type;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio_stream::wrappers::ReceiverStream;

use super::ApiTags;
use super::body::{CsvBody, Download, JsonBody, JsonOut, MediaTypes};
use super::routes::api;
use crate::access::op;
use crate::error::Error;
use crate::records::values::ApiValues;
use crate::records::{self, Visible, csv_io, rfc3339_ms};
use crate::store::records::{RecordRow, VersionRow};
use crate::web::tenant;

#[derive(Object)]
pub struct Record {
    pub id: String,
    pub collection_id: String,
    /// Field name → value. Money is `{"amount_minor": 12345, "currency": "EUR"}`,
    /// decimals are strings.
    pub values: Value,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

/// A `Record` as it is written: the same JSON, with the values serialized
/// straight from the stored map (`ApiValues`). The OpenAPI document shows
/// `Record`; a unit test keeps the two identical.
#[derive(serde::Serialize)]
pub struct RecordOut {
    id: String,
    collection_id: String,
    values: ApiValues,
    created_at: String,
    updated_at: String,
    version: i64,
}

fn record(v: &Visible, r: RecordRow) -> RecordOut {
    RecordOut {
        values: ApiValues {
            def: Arc::clone(&v.row.def),
            values: r.values,
        },
        id: r.id,
        collection_id: r.collection_id,
        created_at: rfc3339_ms(r.created_at),
        updated_at: rfc3339_ms(r.updated_at),
        version: r.version,
    }
}

/// A `RecordPage` as it is written (see `RecordOut`).
#[derive(serde::Serialize)]
pub struct RecordPageOut {
    items: Vec<RecordOut>,
    next_cursor: Option<String>,
}

/// `Out` is documented as `Doc`: its name and schema are `Doc`'s.
macro_rules! documented_as {
    ($out:ty => $doc:ty) => {
        impl Type for $out {
            const IS_REQUIRED: bool = true;
            type RawValueType = Self;
            type RawElementValueType = Self;

            fn name() -> std::borrow::Cow<'static, str> {
                <$doc as Type>::name()
            }

            fn schema_ref() -> poem_openapi::registry::MetaSchemaRef {
                <$doc as Type>::schema_ref()
            }

            fn register(registry: &mut poem_openapi::registry::Registry) {
                <$doc as Type>::register(registry)
            }

            fn as_raw_value(&self) -> Option<&Self> {
                Some(self)
            }

            fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a Self> + 'a> {
                Box::new(self.as_raw_value().into_iter())
            }
        }
    };
}
documented_as!(RecordOut => Record);
documented_as!(RecordPageOut => RecordPage);

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    /// Field name (or id) → value. In a PATCH, `null` clears a field and
    /// fields not named stay as they are.
    pub values: std::collections::BTreeMap<String, Value>,
}

impl RecordInput {
    fn into_map(self) -> Result<Map<String, Value>, Error> {
        Ok(self.values.into_iter().collect())
    }
}

#[derive(Object)]
pub struct RecordPage {
    pub items: Vec<Record>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Object)]
pub struct Version {
    pub version: i64,
    pub time: String,
    /// The user who wrote this version.
    pub actor: Option<String>,
    pub values: Value,
}

#[derive(Object)]
pub struct History {
    /// Newest first; the last 20 versions are kept.
    pub items: Vec<Version>,
}

fn version(v: &Visible, x: VersionRow) -> Version {
    Version {
        version: x.version,
        time: rfc3339_ms(x.time),
        actor: x.actor,
        values: Value::Object(records::values::to_api(&v.row.def, &x.values)),
    }
}

#[derive(Object)]
pub struct ImportResult {
    pub imported: u64,
}

#[derive(ApiResponse)]
pub enum RecordCreated {
    /// Created, or (with `Idempotent-Replayed: true`) the record an earlier
    /// request with the same Idempotency-Key created.
    #[oai(status = 201)]
    Created(
        JsonOut<RecordOut>,
        #[oai(header = "Location")] String,
        #[oai(header = "Idempotent-Replayed")] Option<String>,
    ),
}

#[derive(ApiResponse)]
pub enum Deleted {
    #[oai(status = 204)]
    Deleted,
}

/// The CSV export's media type.
pub struct CsvType;

impl MediaTypes for CsvType {
    const TYPES: &'static [&'static str] = &["text/csv"];
}

#[derive(Default)]
pub struct RecordsApi;

api! {
    #[OpenApi(tag = "ApiTags::Records")]
    impl RecordsApi {
        /// A page of records, newest first by default. `sort` is `created_at`,
        /// `-created_at`, `updated_at`, `-updated_at`, or a sortable field's id
        /// (text, email, phone, url, integer, decimal, money, boolean, date,
        /// datetime, select), `-` before it for descending: records without a
        /// value come last, and a collection of more than 5,000 records answers
        /// 422 on `sort` (sort by time instead). `q` searches the searchable
        /// fields, each word also as the start of a longer one from 2 letters
        /// (results newest first; a field `sort` with `q` is a 422 on `sort`).
        GET "/workspaces/:workspace/collections/:collection/records"
        async fn list_records(
            workspace: tenant::Path<op::RecordRead>,
            collection: Path<String>,
            limit: Query<Option<i64>>,
            cursor: Query<Option<String>>,
            q: Query<Option<String>>,
            sort: Query<Option<String>>,
        ) -> JsonOut<RecordPageOut> {
            let finder = records::search::Finder {
                indexes: &workspace.state().indexes,
                bounds: &workspace.state().bounds,
            };
            let page = records::list_records(
                &workspace,
                finder,
                &collection.parse()?,
                records::ListParams {
                    limit: limit.0,
                    cursor: cursor.0,
                    q: q.0,
                    sort: sort.0,
                },
            )
            .await?;
            let coll = page.coll;
            Ok(JsonOut(RecordPageOut {
                items: page.items.into_iter().map(|r| record(&coll, r)).collect(),
                next_cursor: page.next_cursor,
            }))
        }

        /// Creates a record. Send `Idempotency-Key` to make retries safe: the same
        /// key with the same body answers with the first record.
        POST "/workspaces/:workspace/collections/:collection/records"
        async fn create_record(
            workspace: tenant::Path<op::RecordCreate>,
            collection: Path<String>,
            #[oai(name = "Idempotency-Key")] idempotency_key: Header<Option<String>>,
            body: JsonBody<RecordInput>,
        ) -> RecordCreated {
            let input = body.0.into_map()?;
            let c = records::create_record(
                &workspace,
                &workspace.state().control,
                &collection.parse()?,
                input,
                idempotency_key.0,
            )
            .await?;
            let location = format!(
                "/api/v1/workspaces/{}/collections/{}/records/{}",
                workspace.db.id(),
                c.coll.row.id,
                c.record.id
            );
            let replayed = c.replayed.then(|| "true".to_owned());
            Ok(RecordCreated::Created(
                JsonOut(record(&c.coll, c.record)),
                location,
                replayed,
            ))
        }

        /// One record.
        GET "/workspaces/:workspace/collections/:collection/records/:record"
        async fn get_record(
            workspace: tenant::Path<op::RecordRead>,
            collection: Path<String>,
            record: Path<String>,
        ) -> JsonOut<RecordOut> {
            let (v, r) =
                records::get_record(&workspace, &collection.parse()?, &record.parse()?).await?;
            Ok(JsonOut(self::record(&v, r)))
        }

        /// Changes some fields of a record (`null` clears one).
        PATCH "/workspaces/:workspace/collections/:collection/records/:record"
        async fn update_record(
            workspace: tenant::Path<op::RecordUpdate>,
            collection: Path<String>,
            record: Path<String>,
            body: JsonBody<RecordInput>,
        ) -> JsonOut<RecordOut> {
            let input = body.0.into_map()?;
            let (v, r) = records::update_record(
                &workspace,
                &workspace.state().control,
                &collection.parse()?,
                &record.parse()?,
                input,
            )
            .await?;
            Ok(JsonOut(self::record(&v, r)))
        }

        /// Deletes a record and its history.
        DELETE "/workspaces/:workspace/collections/:collection/records/:record"
        async fn delete_record(
            workspace: tenant::Path<op::RecordDelete>,
            collection: Path<String>,
            record: Path<String>,
        ) -> Deleted {
            records::delete_record(&workspace, &collection.parse()?, &record.parse()?).await?;
            Ok(Deleted::Deleted)
        }

        /// Undoes a record's deletion: the values its deletion's audit entry
        /// recorded come back as a new version. For those who may delete and
        /// read the collection's records; 404 for a record that is not deleted,
        /// 409 once that entry is gone or redacted or a data-subject
        /// anonymisation ran after the deletion.
        POST "/workspaces/:workspace/collections/:collection/records/:record/undelete"
        async fn undelete_record(
            workspace: tenant::Path<op::RecordUndelete>,
            collection: Path<String>,
            record: Path<String>,
        ) -> JsonOut<RecordOut> {
            let (v, r) =
                records::undelete_record(&workspace, &collection.parse()?, &record.parse()?, None)
                    .await?;
            Ok(JsonOut(self::record(&v, r)))
        }

        /// The record's last versions, newest first.
        GET "/workspaces/:workspace/collections/:collection/records/:record/history"
        async fn history(
            workspace: tenant::Path<op::RecordRead>,
            collection: Path<String>,
            record: Path<String>,
        ) -> Json<History> {
            let (v, _, versions) =
                records::history(&workspace, &collection.parse()?, &record.parse()?).await?;
            Ok(Json(History {
                items: versions.into_iter().map(|x| version(&v, x)).collect(),
            }))
        }

        /// Restores an earlier version's values as a new version.
        POST "/workspaces/:workspace/collections/:collection/records/:record/history/:version/restore"
        async fn restore(
            workspace: tenant::Path<op::RecordUpdate>,
            collection: Path<String>,
            record: Path<String>,
            version: Path<String>,
        ) -> JsonOut<RecordOut> {
            let n: i64 = version.0.parse().map_err(|_| Error::NotFound("version"))?;
            let (v, r) = records::restore_version(
                &workspace,
                &workspace.state().control,
                &collection.parse()?,
                &record.parse()?,
                n,
            )
            .await?;
            Ok(JsonOut(self::record(&v, r)))
        }

        /// Streams the collection as CSV (`id`, `created_at`, `updated_at`, then
        /// one column per field; a file field's column lists its file names,
        /// not the files). Audited.
        GET "/workspaces/:workspace/collections/:collection/export"
        async fn export(
            workspace: tenant::Path<op::RecordExport>,
            collection: Path<String>,
        ) -> Download<CsvType> {
            let rx =
                csv_io::export(&workspace, &workspace.state().bounds, &collection.parse()?).await?;
            Ok(Download::new(
                "text/csv; charset=utf-8",
                format!("attachment; filename=\"collection-{}.csv\"", collection.0),
                Body::from_bytes_stream(ReceiverStream::new(rx)),
            ))
        }

        /// Imports CSV rows as new records: all of them, or none with every
        /// problem named by line and column. The header row names the fields.
        /// Files are not imported: a file field's column is skipped (upload
        /// files through the record's files route).
        POST "/workspaces/:workspace/collections/:collection/import"
        async fn import(
            workspace: tenant::Path<op::RecordImport>,
            collection: Path<String>,
            body: CsvBody,
        ) -> Json<ImportResult> {
            let (csv, over, _reserved) = body.stream(workspace.state()).await?;
            let n = match csv_io::import(
                &workspace,
                &workspace.state().control,
                &collection.parse()?,
                csv,
            )
            .await
            {
                Err(_) if over.happened() => {
                    return Err(super::body::too_large(
                        crate::web::middleware::IMPORT_BODY_LIMIT,
                    ));
                }
                r => r?,
            };
            Ok(Json(ImportResult { imported: n as u64 }))
        }
    }
}

#[cfg(test)]
#[path = "records_tests.rs"]
mod tests;
