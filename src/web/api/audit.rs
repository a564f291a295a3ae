//! The audit log over HTTP: search, entries, streamed export, verification
//! status and retention, for a workspace's owners and admins, and the platform
//! chain for platform admins.

use poem::Body;
use poem_openapi::param::{Path, Query};
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;
use tokio_stream::wrappers::ReceiverStream;

use super::ApiTags;
use super::body::JsonBody;
use super::routes::api;
use crate::access::op;
use crate::audit::Actor;
use crate::audit::chains::Chain;
use crate::audit::export::Format;
use crate::audit::search::{EntryView, SearchPage};
use crate::audit::service::{self, ChainStatus};
use crate::audit::verify::ChainReport;
use crate::error::Error;
use crate::web::session::Admin;
use crate::web::tenant;

#[derive(Object)]
pub struct AuditEntry {
    pub seq: i64,
    /// RFC 3339.
    pub time: String,
    pub time_unix: i64,
    /// The actor's id, or its kind when it has none (`system`, `operator`, `anonymous`).
    pub actor: String,
    pub actor_type: String,
    pub action: String,
    pub target: Option<String>,
    pub target_type: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    pub user_agent: Option<String>,
    /// Why platform staff were inside the workspace (entries they caused
    /// while impersonating).
    pub impersonation_reason: Option<String>,
    pub before: serde_json::Value,
    pub after: serde_json::Value,
    pub hash: String,
    pub prev_hash: String,
    /// An anonymisation (or a collection's deletion) replaced the details;
    /// the chain still commits to the originals.
    pub redacted: bool,
    /// The entry holds values of a collection the caller may not read:
    /// `before` and `after` are left out (a person sees a record's values
    /// only where they may read that record).
    pub withheld: bool,
}

impl From<EntryView> for AuditEntry {
    fn from(v: EntryView) -> Self {
        Self {
            seq: v.seq,
            time: v.time,
            time_unix: v.time_unix,
            actor: v.actor,
            actor_type: v.actor_type,
            action: v.action,
            target: v.target,
            target_type: v.target_type,
            impersonation_reason: v.impersonation_reason,
            ip: v.ip,
            request_id: v.request_id,
            user_agent: v.user_agent,
            before: v.before,
            after: v.after,
            hash: v.hash,
            prev_hash: v.prev_hash,
            redacted: v.redacted,
            withheld: v.withheld,
        }
    }
}

#[derive(Object)]
pub struct AuditPage {
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl From<SearchPage> for AuditPage {
    fn from(p: SearchPage) -> Self {
        Self {
            items: p.items.into_iter().map(AuditEntry::from).collect(),
            next_cursor: p.next_cursor,
        }
    }
}

#[derive(Object)]
pub struct AuditStatus {
    pub retention_days: u32,
    pub checkpoint_seq: Option<i64>,
    pub checkpoint_time: Option<i64>,
    pub last_verified_at: Option<i64>,
    pub last_verification_ok: Option<bool>,
    pub last_verification_entries: Option<i64>,
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

impl From<ChainStatus> for AuditStatus {
    fn from(s: ChainStatus) -> Self {
        let v = s.last_verification;
        Self {
            retention_days: s.retention_days,
            checkpoint_seq: s.checkpoint_seq,
            checkpoint_time: s.checkpoint_time,
            last_verified_at: v.as_ref().map(|v| v.time),
            last_verification_ok: v.as_ref().map(|v| v.ok),
            last_verification_entries: v.as_ref().map(|v| v.entries),
            first_bad_seq: v.as_ref().and_then(|v| v.first_bad_seq),
            reason: v.and_then(|v| v.reason),
        }
    }
}

#[derive(Object)]
pub struct VerifyResult {
    pub ok: bool,
    pub entries: u64,
    pub head_seq: i64,
    pub checkpoint_seq: Option<i64>,
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

impl From<ChainReport> for VerifyResult {
    fn from(r: ChainReport) -> Self {
        Self {
            ok: r.ok(),
            entries: r.entries,
            head_seq: r.head_seq,
            checkpoint_seq: r.checkpoint_seq,
            first_bad_seq: r.first_bad_seq,
            reason: r.reason,
        }
    }
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Days to keep entries (7..36500).
    #[oai(validator(minimum(value = "7"), maximum(value = "36500")))]
    pub retention_days: u32,
}

#[derive(Default)]
pub struct AuditApi;

/// The audit export's media types (`Format::content_type`).
pub struct AuditExportTypes;

impl super::body::MediaTypes for AuditExportTypes {
    const TYPES: &'static [&'static str] = &["application/x-ndjson", "text/csv"];
}

type ExportResponse = super::body::Download<AuditExportTypes>;

fn export_response(
    format: Format,
    line: crate::audit::export::CheckpointLine,
    rx: service::ExportStream,
) -> ExportResponse {
    let checkpoint = serde_json::to_string(&line).unwrap_or_default();
    super::body::Download::new(
        format.content_type(),
        format!(
            "attachment; filename=\"audit-{}-{}.{}\"",
            line.scope,
            line.seq,
            format.extension()
        ),
        Body::from_bytes_stream(ReceiverStream::new(rx)),
    )
    .header("x-aura-checkpoint", checkpoint)
}

api! {
    #[OpenApi(tag = "ApiTags::Audit")]
    impl AuditApi {
        /// Searches a workspace's audit log, newest first. `action` matches a
        /// dotted prefix (`member` matches `member.role_changed`; `rec*` any
        /// prefix); `q` is free text over the decrypted entries.
        #[allow(clippy::too_many_arguments)]
        GET "/workspaces/:workspace/audit"
        async fn search(
            workspace: tenant::Path<op::AuditRead>,
            q: Query<Option<String>>,
            actor: Query<Option<String>>,
            action: Query<Option<String>>,
            target: Query<Option<String>>,
            ip: Query<Option<String>>,
            from: Query<Option<String>>,
            to: Query<Option<String>>,
            cursor: Query<Option<String>>,
            limit: Query<Option<i64>>,
        ) -> Json<AuditPage> {
            let p = service::params(
                q.0, actor.0, action.0, target.0, ip.0, from.0, to.0, cursor.0, limit.0,
            )?;
            Ok(Json(
                service::search_workspace(workspace.state().audit_deps(), &workspace, p)
                    .await?
                    .into(),
            ))
        }

        /// Streams the workspace's audit log as NDJSON (first line: the signed
        /// checkpoint it was cut at) or CSV (checkpoint in `x-aura-checkpoint`).
        #[allow(clippy::too_many_arguments)]
        GET "/workspaces/:workspace/audit/export"
        async fn export(
            workspace: tenant::Path<op::AuditExport>,
            format: Query<Option<String>>,
            actor: Query<Option<String>>,
            action: Query<Option<String>>,
            target: Query<Option<String>>,
            ip: Query<Option<String>>,
            from: Query<Option<String>>,
            to: Query<Option<String>>,
        ) -> ExportResponse {
            let format = Format::parse(format.0.as_deref().unwrap_or("ndjson"))?;
            let p = service::params(
                None, actor.0, action.0, target.0, ip.0, from.0, to.0, None, None,
            )?;
            let (line, rx) = service::export_workspace(
                workspace.state().audit_deps(),
                &workspace,
                p.filter,
                format,
            )
            .await?;
            Ok(export_response(format, line, rx))
        }

        /// One entry, with its state before and after.
        GET "/workspaces/:workspace/audit/entries/:seq"
        async fn entry(
            workspace: tenant::Path<op::AuditRead>,
            seq: Path<String>,
        ) -> Json<AuditEntry> {
            let seq: i64 = seq.0.parse().map_err(|_| Error::NotFound("audit entry"))?;
            Ok(Json(
                service::entry_workspace(&workspace, seq).await?.into(),
            ))
        }

        /// Retention, the newest signed checkpoint and the last verification.
        GET "/workspaces/:workspace/audit/status"
        async fn status(workspace: tenant::Path<op::AuditRead>) -> Json<AuditStatus> {
            Ok(Json(
                service::status_workspace(workspace.state().audit_deps(), &workspace)
                    .await?
                    .into(),
            ))
        }

        /// Verifies the workspace's chain against its signed checkpoints now.
        POST "/workspaces/:workspace/audit/verify"
        async fn verify(workspace: tenant::Path<op::AuditVerify>) -> Json<VerifyResult> {
            let chain = Chain::Workspace(workspace.db.id());
            let actor = workspace.actor.clone();
            Ok(Json(
                service::verify_now(
                    workspace.state().audit_deps(),
                    chain,
                    actor,
                    &workspace.meta,
                )
                .await?
                .into(),
            ))
        }

        /// Sets how long this workspace keeps audit entries (owners only).
        PUT "/workspaces/:workspace/audit/settings"
        async fn settings(
            workspace: tenant::Path<op::AuditSettings>,
            body: JsonBody<RetentionSettings>,
        ) -> Json<RetentionSettings> {
            let days = service::set_retention(
                &workspace,
                &workspace.state().config.file.audit,
                body.0.retention_days,
            )
            .await?;
            Ok(Json(RetentionSettings {
                retention_days: days,
            }))
        }

        /// Searches the platform's own chain (sign-ins, accounts, workspaces).
        #[allow(clippy::too_many_arguments)]
        GET "/platform/audit"
        async fn platform_search(
            admin: Admin,
            q: Query<Option<String>>,
            actor: Query<Option<String>>,
            action: Query<Option<String>>,
            target: Query<Option<String>>,
            ip: Query<Option<String>>,
            from: Query<Option<String>>,
            to: Query<Option<String>>,
            cursor: Query<Option<String>>,
            limit: Query<Option<i64>>,
        ) -> Json<AuditPage> {
            let p = service::params(
                q.0, actor.0, action.0, target.0, ip.0, from.0, to.0, cursor.0, limit.0,
            )?;
            Ok(Json(
                service::search_platform(admin.state.audit_deps(), p)
                    .await?
                    .into(),
            ))
        }

        /// Streams the platform chain (same formats as the workspace export).
        GET "/platform/audit/export"
        async fn platform_export(admin: Admin, format: Query<Option<String>>) -> ExportResponse {
            let format = Format::parse(format.0.as_deref().unwrap_or("ndjson"))?;
            let (line, rx) = service::export(
                admin.state.audit_deps(),
                Chain::Platform,
                Default::default(),
                format,
                Actor::User(admin.who.user_id),
                &admin.meta,
                None,
            )
            .await?;
            Ok(export_response(format, line, rx))
        }

        /// One platform entry.
        GET "/platform/audit/entries/:seq"
        async fn platform_entry(admin: Admin, seq: Path<String>) -> Json<AuditEntry> {
            let seq: i64 = seq.0.parse().map_err(|_| Error::NotFound("audit entry"))?;
            Ok(Json(
                service::entry_platform(&admin.state.control, seq)
                    .await?
                    .into(),
            ))
        }

        /// Verifies the platform chain now.
        POST "/platform/audit/verify"
        async fn platform_verify(admin: Admin) -> Json<VerifyResult> {
            Ok(Json(
                service::verify_now(
                    admin.state.audit_deps(),
                    Chain::Platform,
                    Actor::User(admin.who.user_id),
                    &admin.meta,
                )
                .await?
                .into(),
            ))
        }
    }
}
