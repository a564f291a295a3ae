//! The platform's backups page: targets and schedule, every backup, the last
//! restore drill and the last failure, with "run now" buttons (POST, then
//! redirect back; outcomes land in the platform audit log).

use std::sync::Arc;

use maud::html;
use poem::web::{Data, Redirect};
use poem::{IntoResponse, Request, Response, handler};

use super::csrf_field;
use crate::app::AppState;
use crate::audit::search::EntryView;
use crate::audit::service::last_platform_entry;
use crate::backup::target::{BackupMeta, LocalTarget};
use crate::clock::rfc3339;
use crate::error::Result;
use crate::web::session::{Admin, SignedIn};
use poem::http::StatusCode;

pub struct BackupStatus {
    pub backups: Vec<BackupMeta>,
    pub target: String,
    pub region: String,
    pub last_drill: Option<EntryView>,
    pub last_failure: Option<EntryView>,
    pub last_success: Option<EntryView>,
}

pub fn status(state: &AppState) -> Result<BackupStatus> {
    let target = LocalTarget::from_config(&state.config)?;
    Ok(BackupStatus {
        backups: target.list()?,
        target: target.dir.display().to_string(),
        region: target.region.clone(),
        last_drill: last_platform_entry(&state.control, "backup.drill"),
        last_failure: last_platform_entry(&state.control, "backup.failed"),
        last_success: last_platform_entry(&state.control, "backup.completed"),
    })
}

#[handler]
pub async fn page(req: &Request, admin: Admin) -> poem::Result<Response> {
    let st = Arc::clone(&admin.state);
    let s = tokio::task::spawn_blocking(move || status(&st))
        .await
        .map_err(crate::error::Error::from)??;
    let cfg = &admin.state.config.file.backup;
    let failure_is_newest = match (&s.last_failure, &s.last_success) {
        (Some(f), Some(ok)) => f.seq > ok.seq,
        (Some(_), None) => true,
        _ => false,
    };
    let who = SignedIn(admin.who.clone());
    super::forms::page(req, &admin.state, &who, StatusCode::OK, "Backups", |csrf| html! {
        section.card {
            p.crumbs { a href="/platform" { "Platform" } }
            h1 { "Backups" }
            p.muted { "Encrypted with age to " (cfg.recipients.len().max(1)) " recipient(s) into " code { (s.target) }
                @if !s.region.is_empty() { " (region " (s.region) ")" }
                ". Schedule: " (cfg.schedule) "; restore drill: " (cfg.drill_schedule)
                "; keeping " (cfg.keep_daily) " daily and " (cfg.keep_weekly) " weekly." }
            @if failure_is_newest {
                @if let Some(f) = &s.last_failure {
                    p.error { "The last backup failed at " (f.time) ": " (f.after.get("error").and_then(|v| v.as_str()).unwrap_or("")) }
                }
            }
            @match &s.last_drill {
                Some(d) if d.after.get("ok").and_then(|v| v.as_bool()) == Some(true) => {
                    p.ok-line { "Last restore drill passed " (d.time) " (" (d.target.clone().unwrap_or_default()) ")." }
                }
                Some(d) => {
                    p.error { "Last restore drill FAILED " (d.time) " at step "
                        (d.after.get("failed_step").and_then(|v| v.as_str()).unwrap_or("?")) "." }
                }
                None => p.muted { "No restore drill yet." }
            }
            div.actions {
                form method="post" action="/platform/backups/run" { (csrf_field(csrf)) button type="submit" { "Run backup now" } }
                form method="post" action="/platform/backups/drill" { (csrf_field(csrf)) button.secondary type="submit" { "Run restore drill now" } }
            }
        }
        section.card {
            h2 { "History" }
            @if s.backups.is_empty() { p.muted { "No backups yet." } } @else {
                table.list.backups {
                    thead { tr { th { "Backup" } th { "Created" } th { "Size" } th { "Workspaces" } } }
                    tbody {
                        @for b in s.backups.iter().rev() {
                            tr { td { code { (b.id) } } td { (rfc3339(b.created_at)) } td { (b.size) " bytes" } td { (b.workspaces) } }
                        }
                    }
                }
            }
        }
    })
    .await
}

#[handler]
pub async fn run_now(
    state: Data<&Arc<AppState>>,
    _admin: crate::web::session::PlatformAdmin,
) -> Response {
    let st = Arc::clone(&state);
    match tokio::task::spawn_blocking(move || crate::ops::jobs::backup_now(&st)).await {
        Ok(Ok(summary)) => tracing::info!(%summary, "backup run from the UI"),
        Ok(Err(e)) => tracing::warn!(error = %e, "backup from the UI failed"),
        Err(e) => tracing::warn!(error = %e, "backup task failed"),
    }
    Redirect::see_other("/platform/backups").into_response()
}

#[handler]
pub async fn drill_now(
    state: Data<&Arc<AppState>>,
    _admin: crate::web::session::PlatformAdmin,
) -> Response {
    let st = Arc::clone(&state);
    match tokio::task::spawn_blocking(move || crate::ops::jobs::drill_now(&st)).await {
        Ok(Ok(summary)) => tracing::info!(%summary, "drill run from the UI"),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "drill from the UI could not run");
            let _ = state.control.audit_alone(
                state.clock.unix(),
                &crate::audit::NewEntry::new(crate::audit::Actor::System, "backup.drill", &crate::audit::RequestMeta::default())
                    .after(serde_json::json!({ "ok": false, "failed_step": "start", "error": e.to_string() })),
            );
        }
        Err(e) => tracing::warn!(error = %e, "drill task failed"),
    }
    Redirect::see_other("/platform/backups").into_response()
}
