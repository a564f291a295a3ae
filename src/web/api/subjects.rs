//! Data-subject requests over HTTP (owners and admins): find, export and
//! anonymise the records that refer to a person. The identifier travels in a
//! POST body, never in a URL (which proxies and logs keep).

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;
use serde_json::Value;

use super::ApiTags;
use super::body::JsonBody;
use super::list::list;
use super::routes::api;
use crate::access::op;
use crate::subjects;
use crate::web::tenant;

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubjectRequest {
    /// An email, a phone number, or any value of a `pii` field.
    #[oai(validator(max_length = 1000, pattern = r"\S"))]
    pub identifier: String,
}

#[derive(Object)]
pub struct SubjectMatch {
    pub collection_id: String,
    pub collection: String,
    pub record_id: String,
    /// A deleted record: its values are gone, its audit entries keep them.
    pub deleted: bool,
    /// The pii fields whose value matched, by name.
    pub matched_fields: Vec<String>,
    /// The record as `GET .../records/{id}` shows it; absent when deleted.
    pub record: Option<Value>,
}

impl From<subjects::Match> for SubjectMatch {
    fn from(m: subjects::Match) -> Self {
        Self {
            collection_id: m.collection_id,
            collection: m.collection,
            record_id: m.record_id,
            deleted: m.deleted,
            matched_fields: m.matched_fields,
            record: m.record,
        }
    }
}

list!(SubjectMatches of SubjectMatch);

#[derive(Object)]
pub struct AnonymiseResult {
    /// The keyed pseudonym that now stands for the person in this workspace.
    pub pseudonym: String,
    /// Live records rewritten.
    pub records: u64,
    /// Deleted records whose audit entries were rewritten.
    pub deleted_records: u64,
    /// Kept versions rewritten.
    pub versions: u64,
    /// Audit entries whose sealed details were rewritten.
    pub audit_entries: u64,
}

#[derive(Default)]
pub struct SubjectsApi;

api! {
    #[OpenApi(tag = "ApiTags::Privacy")]
    impl SubjectsApi {
        /// Finds every record that refers to a person, through the pii blind
        /// indexes (owners and admins; audited as `data_subject.searched`).
        POST "/workspaces/:workspace/data-subjects/search"
        async fn search(
            workspace: tenant::Path<op::DataSubjectRead>,
            body: JsonBody<SubjectRequest>,
        ) -> Json<SubjectMatches> {
            let found = subjects::find(&workspace, &body.0.identifier).await?;
            Ok(Json(found.into()))
        }

        /// Exports the person's records, their kept versions and their audit
        /// entries as one JSON document (audited as `data_subject.exported`).
        POST "/workspaces/:workspace/data-subjects/export"
        async fn export(
            workspace: tenant::Path<op::DataSubjectExport>,
            body: JsonBody<SubjectRequest>,
        ) -> Json<Value> {
            let out = subjects::export(&workspace, &body.0.identifier).await?;
            Ok(Json(
                serde_json::to_value(out).map_err(crate::error::Error::from)?,
            ))
        }

        /// Anonymises the person: every pii value in their records, the records'
        /// kept versions and their audit entries becomes the keyed pseudonym (or is
        /// removed where no pseudonym fits the type); other values stay. The
        /// audit chain still verifies (audited as `data_subject.anonymised`).
        POST "/workspaces/:workspace/data-subjects/anonymise"
        async fn anonymise(
            workspace: tenant::Path<op::DataSubjectDelete>,
            body: JsonBody<SubjectRequest>,
        ) -> Json<AnonymiseResult> {
            let a = subjects::anonymise(&workspace, &body.0.identifier).await?;
            let n = |x: usize| u64::try_from(x).unwrap_or(u64::MAX);
            Ok(Json(AnonymiseResult {
                pseudonym: a.pseudonym,
                records: n(a.records),
                deleted_records: n(a.deleted_records),
                versions: n(a.versions),
                audit_entries: n(a.audit_entries),
            }))
        }
    }
}
