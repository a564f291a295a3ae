//! Workspace exports over HTTP (owners and admins): start one, watch its
//! progress, download the archive. See `crate::export` for what it holds.

use std::sync::Arc;

use poem::Body;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;

use super::ApiTags;
use super::body::{Download, JsonBody, MediaTypes};
use super::list::list;
use super::routes::api;
use crate::access::op;
use crate::app::AppState;
use crate::export::jobs::{self, Job};
use crate::web::tenant;

#[derive(Object, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// Encrypt the archive to this age recipient (`age1...`); without it the
    /// download is the plain `.tar.zst`.
    #[serde(default)]
    // Blank means none (`export::recipient` trims).
    #[oai(validator(
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(age1[02-9ac-hj-np-z]{58})?[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    ))]
    pub recipient: Option<String>,
}

#[derive(Object)]
pub struct ExportJob {
    pub id: String,
    /// `running`, `ready` or `failed`.
    pub state: String,
    /// Records and audit entries written so far, of `total`.
    pub done: u64,
    pub total: u64,
    pub encrypted: bool,
    pub file_name: String,
    pub created_at: String,
    /// Where to fetch the archive once `state` is `ready`.
    pub download: String,
    pub records: Option<u64>,
    pub audit_entries: Option<u64>,
    pub bytes: Option<u64>,
    pub error: Option<String>,
}

impl ExportJob {
    pub fn of(j: &Job) -> Self {
        let s = j.status();
        Self {
            id: j.id.to_string(),
            state: s.state.to_owned(),
            done: s.done,
            total: s.total,
            encrypted: j.to_recipient,
            file_name: j.file_name(),
            created_at: crate::clock::rfc3339(j.created_at),
            download: format!(
                "/api/v1/workspaces/{}/exports/{}/download",
                j.workspace, j.id
            ),
            records: s.summary.as_ref().map(|x| x.records),
            audit_entries: s.summary.as_ref().map(|x| x.audit_entries),
            bytes: s.summary.as_ref().map(|x| x.bytes),
            error: s.error,
        }
    }
}

list!(ExportJobs of ExportJob);

#[derive(ApiResponse)]
pub enum ExportStarted {
    /// The export runs; poll it until `state` is `ready`.
    #[oai(status = 202)]
    Accepted(Json<ExportJob>),
}

/// The appliance's parts an export job uses (`export::jobs::Exporter`).
pub(crate) fn exporter(state: &AppState) -> jobs::Exporter<'_> {
    jobs::Exporter {
        control: &state.control,
        jobs: &state.exports,
        bulk: &state.bounds.bulk,
    }
}

/// A workspace export's media types (`ExportJob::content_type`).
pub struct ExportTypes;

impl MediaTypes for ExportTypes {
    const TYPES: &'static [&'static str] = &["application/zstd", "application/octet-stream"];
}

/// One of the workspace's exports, by the id in the path (404 when it is
/// another workspace's, expired or unknown).
fn job(workspace: &tenant::Path<op::WorkspaceExport>, export: &str) -> poem::Result<Arc<Job>> {
    let id = export.parse()?;
    Ok(workspace
        .state()
        .exports
        .get(workspace.db.id(), &id, workspace.now())?)
}

#[derive(Default)]
pub struct ExportsApi;

api! {
    #[OpenApi(tag = "ApiTags::Privacy")]
    impl ExportsApi {
        /// Starts an export of the whole workspace (owners and admins; audited
        /// as `workspace.exported`).
        POST "/workspaces/:workspace/exports"
        async fn start(
            workspace: tenant::Path<op::WorkspaceExport>,
            body: JsonBody<ExportRequest>,
        ) -> ExportStarted {
            let recipient = match body.0.recipient.as_deref().map(str::trim) {
                None | Some("") => None,
                Some(r) => Some(crate::export::recipient("recipient", r)?),
            };
            let job = jobs::start(&workspace, exporter(workspace.state()), recipient).await?;
            Ok(ExportStarted::Accepted(Json(ExportJob::of(&job))))
        }

        /// The workspace's exports of the last hour, newest first.
        GET "/workspaces/:workspace/exports"
        async fn list(workspace: tenant::Path<op::WorkspaceExport>) -> Json<ExportJobs> {
            let list = workspace
                .state()
                .exports
                .list(workspace.db.id(), workspace.now())?;
            Ok(Json(list.iter().map(|j| ExportJob::of(j)).collect()))
        }

        /// One export's progress.
        GET "/workspaces/:workspace/exports/:export"
        async fn get(
            workspace: tenant::Path<op::WorkspaceExport>,
            export: Path<String>,
        ) -> Json<ExportJob> {
            job(&workspace, &export).map(|j| Json(ExportJob::of(&j)))
        }

        /// The archive, streamed (409 until the export is ready).
        GET "/workspaces/:workspace/exports/:export/download"
        async fn download(
            workspace: tenant::Path<op::WorkspaceExport>,
            export: Path<String>,
        ) -> Download<ExportTypes> {
            let job = job(&workspace, &export)?;
            let (name, ctype) = (job.file_name(), job.content_type());
            let rx = jobs::download(job)?;
            Ok(Download::new(
                ctype,
                format!("attachment; filename=\"{name}\""),
                Body::from_bytes_stream(ReceiverStream::new(rx)),
            ))
        }
    }
}
