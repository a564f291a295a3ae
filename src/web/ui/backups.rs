//! The platform's backups page: targets and schedule, every backup, the last
//! restore drill and the last failure, with "run now" buttons (POST, then
//! redirect back; outcomes land in the platform audit log).

use std::sync::Arc;

use maud::html;
use poem::web::{Data, Redirect};
use poem::{IntoResponse, Response, handler};

use super::admin_page::{AdminPage, heading};
use super::csrf_field;
use super::forms::human_size;
use crate::app::AppState;
use crate::audit::search::EntryView;
use crate::audit::service::{last_platform_entry, recent_platform_entries};
use crate::backup::target::{BackupMeta, LocalTarget};
use crate::clock::rfc3339;
use crate::error::Result;
use crate::web::session::PlatformAdmin;
use poem::http::StatusCode;

/// How many of the newest restore drills the page lists.
const DRILLS_SHOWN: i64 = 10;

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

/// The next time a schedule (`daily`, a cron line...) runs after `now`,
/// as RFC 3339, or why there is none.
fn next_run(schedule: &str, now: i64) -> String {
    let now = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
    match crate::ops::schedule::Schedule::parse(schedule) {
        Ok(s) => s
            .next_after(now)
            .map_or_else(|| "not scheduled".into(), |t| rfc3339(t.timestamp())),
        Err(_) => "not scheduled (the schedule does not parse)".into(),
    }
}

#[handler]
pub async fn page(p: AdminPage<'_>) -> poem::Result<Response> {
    let admin = &p.admin;
    let st = Arc::clone(&admin.state);
    let s = tokio::task::spawn_blocking(move || status(&st))
        .await
        .map_err(crate::error::Error::from)??;
    let st = Arc::clone(&admin.state);
    let drills = tokio::task::spawn_blocking(move || {
        recent_platform_entries(&st.control, "backup.drill", DRILLS_SHOWN)
    })
    .await
    .map_err(crate::error::Error::from)?;
    let cfg = &admin.state.config.file.backup;
    let now = admin.state.clock.unix();
    let drills_skipped = cfg.drill_identity_file.as_os_str().is_empty() && !admin.state.config.dev;
    let data_dir = admin.state.config.file.data_dir.display().to_string();
    let newest = s.backups.last().map_or("ID", |b| b.id.as_str()).to_owned();
    let failure_is_newest = match (&s.last_failure, &s.last_success) {
        (Some(f), Some(ok)) => f.seq > ok.seq,
        (Some(_), None) => true,
        _ => false,
    };
    p.page(StatusCode::OK, "Backups", |csrf| html! {
        section.card {
            (heading("Backups"))
            p.muted { "Encrypted with age to " (cfg.recipients.len().max(1)) " recipient(s) into " code { (s.target) }
                @if !s.region.is_empty() { " (region " (s.region) ")" }
                "; keeping " (cfg.keep_daily) " daily and " (cfg.keep_weekly) " weekly." }
            dl.schedule id="backup-schedule" {
                dt { "Backups" } dd { code { (cfg.schedule) } " — next run " span id="next-backup" { (next_run(&cfg.schedule, now)) } }
                dt { "Restore drills" } dd { code { (cfg.drill_schedule) } " — next run " span id="next-drill" { (next_run(&cfg.drill_schedule, now)) }
                    @if drills_skipped {
                        br; small.muted { "Scheduled drills are skipped until " code { "backup.drill_identity_file" } " names an age identity; the button below runs one now." }
                    }
                }
            }
            @if failure_is_newest {
                @if let Some(f) = &s.last_failure {
                    p.error { "The last backup failed at " (f.time) ": " (f.after.get("error").and_then(|v| v.as_str()).unwrap_or(""))
                        " (" a href=(format!("/platform/audit/{}", f.seq)) { "entry " (f.seq) } ")" }
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
                            tr { td { code { (b.id) } } td { (rfc3339(b.created_at)) } td data-bytes=(b.size) { (human_size(b.size)) } td { (b.workspaces) } }
                        }
                    }
                }
            }
        }
        section.card {
            h2 { "Restore drills" }
            @if drills.is_empty() { p.muted { "No restore drill yet." } } @else {
                table.list id="drills" {
                    thead { tr { th { "When" } th { "Backup" } th { "Result" } th { "Took" } th { "Audit entry" } } }
                    tbody {
                        @for d in &drills {
                            @let ok = d.after.get("ok").and_then(|v| v.as_bool()) == Some(true);
                            tr {
                                td { (d.time) }
                                td { (d.target.clone().unwrap_or_default()) }
                                td { @if ok { "passed" } @else {
                                    strong { "FAILED" } " at "
                                    (d.after.get("failed_step").and_then(|v| v.as_str()).unwrap_or("?"))
                                } }
                                td { @if let Some(secs) = d.after.get("secs").and_then(|v| v.as_f64()) { (format!("{secs:.1} s")) } }
                                td { a href=(format!("/platform/audit/{}", d.seq)) { "#" (d.seq) } }
                            }
                        }
                    }
                }
            }
        }
        section.card id="restore" {
            h2 { "How to restore" }
            p { "On the appliance's host, as the service's user, with the age identity that matches a backup recipient (kept offline, not on this server). A restore runs the drill's checks on the archive before anything is written." }
            h3 { "The whole appliance, into a new data dir" }
            pre.command { code { "aura restore --from " (newest) " --to " (data_dir) "-restored --identity /path/to/backup-identity.txt" } }
            p { "Then stop the server and start it on the new dir with the same master key: " code { "aura serve --data-dir " (data_dir) "-restored" } ". The data dir in use is not touched; a rejected archive or a full disk leaves the new dir as it was." }
            h3 { "One workspace, in place, beside the running server" }
            pre.command { code { "aura restore --from " (newest) " --workspace WORKSPACE_ID --identity /path/to/backup-identity.txt" } }
            p { "Only that workspace waits for the moment of the copy; its audit chain records " code { "backup.restored" } " and is signed anew. Workspace ids are on the " a href="/platform/workspaces" { "workspaces page" } "." }
            p.muted { "Check an archive without restoring it: " code { "aura backup verify " (newest) " --identity /path/to/backup-identity.txt" } ". Details: docs/backups.md." }
        }
    })
    .await
}

/// Runs `job` (`ops::jobs`) on a blocking thread, logs how it went, and
/// answers with the backups page again. The error it could not run with is
/// handed to `refused`.
async fn run_job(
    state: &Arc<AppState>,
    what: &str,
    job: fn(&AppState) -> Result<String>,
    refused: impl FnOnce(&crate::error::Error),
) -> Response {
    let st = Arc::clone(state);
    match tokio::task::spawn_blocking(move || job(&st)).await {
        Ok(Ok(summary)) => tracing::info!(%summary, "{what} run from the UI"),
        Ok(Err(e)) => refused(&e),
        Err(e) => tracing::warn!(error = %e, "{what} task failed"),
    }
    Redirect::see_other("/platform/backups").into_response()
}

#[handler]
pub async fn run_now(state: Data<&Arc<AppState>>, _admin: PlatformAdmin) -> Response {
    run_job(&state, "backup", crate::ops::jobs::backup_now, |e| {
        tracing::warn!(error = %e, "backup from the UI failed");
    })
    .await
}

#[handler]
pub async fn drill_now(state: Data<&Arc<AppState>>, _admin: PlatformAdmin) -> Response {
    run_job(&state, "drill", crate::ops::jobs::drill_now, |e| {
        tracing::warn!(error = %e, "drill from the UI could not run");
        let _ = state.control.audit_alone(
            state.clock.unix(),
            &crate::audit::NewEntry::new(
                crate::audit::Actor::System,
                "backup.drill",
                &crate::audit::RequestMeta::default(),
            )
            .after(
                serde_json::json!({ "ok": false, "failed_step": "start", "error": e.to_string() }),
            ),
        );
    })
    .await
}
