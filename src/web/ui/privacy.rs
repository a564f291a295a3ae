//! "Privacy and export" (owners and admins): export the whole workspace with
//! its progress, and answer data-subject requests: find a person's records,
//! download them as JSON, anonymise them.

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::{IntoResponse, Response, handler};

use super::csrf_field;
use super::forms::{Id, WsPost, one, status_for};
use crate::access::op;
use crate::error::{Error, FieldError};
use crate::export::jobs;
use crate::ids::ExportId;
use crate::subjects::{self, Match};
use crate::web::api::exports::exporter;
use crate::web::tenant::TenantPage;

fn crumbs(ws: &str) -> Markup {
    html! { p.crumbs { a href=(format!("/w/{ws}/privacy")) { "Privacy and export" } } }
}

fn field_errors(errors: &[FieldError]) -> Markup {
    super::forms::summary(
        errors,
        &[
            ("recipient", "Age public key", "export-recipient"),
            ("identifier", "Identifier", "subject-identifier"),
        ],
    )
}

#[handler]
pub async fn privacy_page(c: TenantPage<op::WorkspaceExport>) -> poem::Result<Response> {
    render(&c, &[], &[]).await
}

/// The page, also for a data-subject form sent back with its errors (the
/// same people may export the workspace and answer data-subject requests).
/// The page; after a refused form, with its errors and what it sent
/// (`sent`) shown again.
async fn render<O>(
    c: &TenantPage<O>,
    errors: &[FieldError],
    sent: &[(String, String)],
) -> poem::Result<Response> {
    let kept = |key: &str| one(sent, key).unwrap_or_default().to_owned();
    let (state, ws) = (c.state(), c.ws());
    let exports = state.exports.list(c.db.id(), c.now())?;
    c.page(status_for(errors), "Privacy and export", |token| {
        html! {
            section.card {
                (crumbs(ws))
                h1 { "Privacy and export" }
                (field_errors(errors))
                h2 { "Export this workspace" }
                p.muted { "One archive with the members, teams, collections (their fields, and records as JSON and CSV) and the audit log, with a list of checksums that proves nothing was changed. To have it encrypted so only you can open it, paste your age public key (it starts with age1)." }
                form method="post" action=(format!("/w/{ws}/privacy/export")) {
                    (csrf_field(token))
                    @let e = super::forms::at(errors, "recipient", "export-recipient");
                    label { "Encrypt to this age public key (optional) " input name="recipient" id="export-recipient" value=(kept("recipient")) placeholder="age1..." autocomplete="off" aria-invalid=[e.invalid] aria-describedby=[e.described]; }
                    (e.note)
                    button type="submit" id="start-export" { "Start export" }
                }
                @if !exports.is_empty() {
                    table.list {
                        thead { tr { th { "Started" } th { "State" } th { "Records" } th {} } }
                        tbody {
                            @for j in &exports {
                                @let s = j.status();
                                tr {
                                    td { (crate::clock::rfc3339(j.created_at)) }
                                    td { a href=(format!("/w/{ws}/privacy/exports/{}", j.id)) { (s.state) } }
                                    td { (s.summary.as_ref().map(|x| x.records).unwrap_or(s.done)) }
                                    td { @if s.state == "ready" { a href=(format!("/api/v1/workspaces/{ws}/exports/{}/download", j.id)) { "Download " (j.file_name()) } } }
                                }
                            }
                        }
                    }
                }
                h2 { "Data subject requests" }
                p.muted { "Find every record that refers to a person by their email, phone or any value of a field marked as personal data, in every collection. Then download their data or anonymise them. Each step is recorded in the audit log; the identifier itself is never kept." }
                form method="post" action=(format!("/w/{ws}/privacy/subjects")) {
                    (csrf_field(token))
                    @let e = super::forms::at(errors, "identifier", "subject-identifier");
                    label { "Email, phone or other identifier " input name="identifier" id="subject-identifier" value=(kept("identifier")) required autocomplete="off" aria-invalid=[e.invalid] aria-describedby=[e.described]; }
                    (e.note)
                    button type="submit" id="find-subject" { "Find records" }
                }
            }
        }
    })
    .await
}

#[handler]
pub async fn start_export(p: WsPost<op::WorkspaceExport>) -> poem::Result<Response> {
    let recipient = match p.form.get("recipient").map(str::trim) {
        None | Some("") => None,
        Some(r) => match crate::export::recipient("recipient", r) {
            Ok(r) => Some(r),
            Err(Error::Validation(errors)) => return render(&p.ctx, &errors, &p.form.0).await,
            Err(e) => return Err(e.into()),
        },
    };
    let job = jobs::start(&p.ctx, exporter(&p.state), recipient).await?;
    Ok(p.done(format!("/w/{}/privacy/exports/{}", p.ctx.ws(), job.id)))
}

#[handler]
pub async fn export_page(
    c: TenantPage<op::WorkspaceExport>,
    Id(id): Id<ExportId>,
) -> poem::Result<Response> {
    let ws = c.ws();
    let job = c.state().exports.get(c.db.id(), &id, c.now())?;
    let s = job.status();
    let mut resp = c.page(StatusCode::OK, "Workspace export", |_| {
        html! {
            section.card {
                (crumbs(ws))
                h1 { "Workspace export" }
                p { "Records and audit entries written: " (s.done) " of " (s.total) }
                progress id="export-progress" value=(s.done) max=(s.total.max(1)) {}
                @match s.state {
                    "ready" => {
                        p id="export-ready" { "Ready: " (s.summary.as_ref().map(|x| x.records).unwrap_or(0)) " records, " (s.summary.as_ref().map(|x| x.audit_entries).unwrap_or(0)) " audit entries." }
                        p { a.button id="download-export" href=(format!("/api/v1/workspaces/{ws}/exports/{}/download", job.id)) { "Download " (job.file_name()) } }
                        p.muted { "The download stays available for an hour." }
                    },
                    "failed" => { p.error role="alert" { (s.error.clone().unwrap_or_default()) } },
                    _ => { p.muted { "Writing the archive; this page refreshes itself." } },
                }
            }
        }
    })
    .await?;
    if s.state == "running" {
        resp.headers_mut()
            .insert("refresh", poem::http::HeaderValue::from_static("1"));
    }
    Ok(resp)
}

/// A found record as people name it: a text value of it (the API shape,
/// `{"values": {"Name": ...}}`; the first by field name).
fn record_title(record: &serde_json::Value) -> Option<String> {
    record["values"]
        .as_object()?
        .values()
        .find_map(|v| v.as_str().filter(|s| !s.trim().is_empty()))
        .map(|s| s.chars().take(80).collect())
}

fn matches_table(found: &[Match], ws: &str) -> Markup {
    html! {
        table.list id="subject-matches" {
            thead { tr { th { "Collection" } th { "Record" } th { "Matched" } th { "State" } } }
            tbody {
                @for m in found {
                    tr {
                        td { (m.collection) }
                        @let title = m.record.as_ref().and_then(record_title).unwrap_or_else(|| m.record_id.clone());
                        td { @if m.deleted { span title=(m.record_id) { "a deleted record" } } @else { a href=(format!("/w/{ws}/c/{}/r/{}", m.collection_id, m.record_id)) title=(m.record_id) { (title) } } }
                        td { (m.matched_fields.join(", ")) }
                        td { @if m.deleted { "deleted (audit entries keep values)" } @else { "live" } }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn find_subject(p: WsPost<op::DataSubjectRead>) -> poem::Result<Response> {
    let (c, ws, id) = (&p.ctx, p.ctx.ws(), p.form.text("identifier"));
    let found = match subjects::find(c, id).await {
        Ok(f) => f,
        Err(Error::Validation(errors)) => return render(c, &errors, &p.form.0).await,
        Err(e) => return Err(e.into()),
    };
    c.page(StatusCode::OK, "Data subject request", |token| {
        html! {
            section.card {
                (crumbs(ws))
                h1 { "Data subject request" }
                p id="subject-count" { (found.len()) " record(s) refer to this person." }
                @if !found.is_empty() {
                    (matches_table(&found, ws))
                    form method="post" action=(format!("/w/{ws}/privacy/subjects/export")) {
                        (csrf_field(token))
                        input type="hidden" name="identifier" value=(id);
                        button type="submit" id="export-subject" { "Download their data (JSON)" }
                    }
                    form method="post" action=(format!("/w/{ws}/privacy/subjects/anonymise")) {
                        (csrf_field(token))
                        input type="hidden" name="identifier" value=(id);
                        label { input type="checkbox" name="confirm" value="yes" id="confirm-anonymise" required; " Replace this person's personal data with a pseudonym everywhere. This cannot be undone." }
                        button.danger type="submit" id="anonymise-subject" { "Anonymise" }
                    }
                }
            }
        }
    })
    .await
}

#[handler]
pub async fn export_subject(p: WsPost<op::DataSubjectExport>) -> poem::Result<Response> {
    let out = subjects::export(&p.ctx, p.form.text("identifier")).await?;
    let body = serde_json::to_vec_pretty(&out).map_err(Error::from)?;
    Ok(body
        .with_content_type("application/json")
        .with_header(
            "content-disposition",
            "attachment; filename=\"data-subject-export.json\"",
        )
        .into_response())
}

#[handler]
pub async fn anonymise_subject(p: WsPost<op::DataSubjectDelete>) -> poem::Result<Response> {
    if p.form.get("confirm") != Some("yes") {
        let errors = vec![FieldError {
            field: "confirm".into(),
            message: "tick the box to confirm the anonymisation".into(),
        }];
        return render(&p.ctx, &errors, &p.form.0).await;
    }
    let done = subjects::anonymise(&p.ctx, p.form.text("identifier")).await?;
    p.ctx.page(StatusCode::OK, "Anonymised", |_| {
        html! {
            section.card {
                (crumbs(p.ctx.ws()))
                h1 { "Anonymised" }
                p id="anonymised" { "The person is now " code { (done.pseudonym) } " in this workspace: " (done.records) " record(s), " (done.versions) " kept version(s), " (done.deleted_records) " deleted record(s) and " (done.audit_entries) " audit entries rewritten. Amounts, dates and other values stay, so totals still add up." }
            }
        }
    })
    .await
}
