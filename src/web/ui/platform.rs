//! The platform area: its index, and the workspaces page (health, create,
//! suspend and resume, and starting a recorded impersonation).

use maud::html;
use poem::http::StatusCode;
use poem::web::Path;
use poem::{Response, handler};

use super::admin_page::{AdminPage, heading, next_or_again};
use super::csrf_field;
use super::forms::{at, see_other, summary};
use crate::access::Role;
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::error::{Error, FieldError};
use crate::platform::MAX_IMPERSONATION_MINUTES;
use crate::web::session::Admin;

async fn render(
    p: &AdminPage<'_>,
    status: StatusCode,
    errors: &[FieldError],
) -> poem::Result<Response> {
    let list = crate::platform::list(&p.admin.deps()).await?;
    // A refused form's fields (none on a GET), shown again as typed.
    let kept = |key: &str| p.form.owned(key);
    p.page(status, "Workspaces (platform)", |token| {
        html! {
            section.card {
                (heading("Workspaces"))
                p.muted { "Health only: what is inside a workspace is not shown here. To help a workspace, start an impersonation: it is recorded, with your reason, in the platform log and in the workspace's own audit log, and ends by itself." }
                (summary(errors, &[
                    ("name", "Name", "ws-name"),
                    ("owner", "Owner's email", "ws-owner"),
                    ("region", "Region", "ws-region"),
                ]))
                table.list id="platform-workspaces" {
                    thead { tr { th { "Workspace" } th { "Region" } th { "State" } th { "Members" } th { "Size" } th { "Created" } th {} } }
                    tbody {
                        @for h in &list {
                            @let id = h.row.id.to_string();
                            tr data-workspace=(id) {
                                td { (h.row.name) br; code.muted { (id) } }
                                td { (h.row.region) }
                                td {
                                    span.badge { (h.row.state) }
                                    @if let Some(due) = h.deletion_due_at { br; small.muted { "key destroyed " (rfc3339(due)) } }
                                }
                                td { (h.members) }
                                td data-bytes=(h.size_bytes) { (super::forms::human_size(h.size_bytes)) }
                                td { (rfc3339(h.row.created_at)) }
                                td {
                                    @let (label, to) = if h.row.state == "active" { ("Suspend", "suspend") } else { ("Resume", "resume") };
                                    @if matches!(h.row.state.as_str(), "active" | "suspended") {
                                        form method="post" action=(format!("/platform/workspaces/{id}/{to}"))
                                            data-confirm=[(to == "suspend").then_some("Suspend this workspace? Its members cannot open it until it is resumed.")]
                                            data-confirm-label=[(to == "suspend").then_some("Suspend")] {
                                            (csrf_field(token))
                                            button.secondary type="submit" { (label) }
                                        }
                                    }
                                    @if h.row.state == "active" {
                                        form.impersonate method="post" action=(format!("/platform/workspaces/{id}/impersonate")) {
                                            (csrf_field(token))
                                            input name="reason" required minlength="10" placeholder="Reason (ticket number)" aria-label="Reason";
                                            input name="minutes" type="number" min="1" max=(MAX_IMPERSONATION_MINUTES) value="30" aria-label="Minutes";
                                            select name="role" aria-label="Role" {
                                                @for r in [Role::Viewer, Role::Member, Role::Manager, Role::Admin] {
                                                    option value=(r.as_str()) { (r.as_str()) }
                                                }
                                            }
                                            button type="submit" { "Impersonate" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "New workspace" }
                form id="new-workspace" method="post" action="/platform/workspaces" {
                    (csrf_field(token))
                    label for="ws-name" { "Name" }
                    @let e = at(errors, "name", "ws-name");
                    input id="ws-name" name="name" value=(kept("name")) required maxlength="200" aria-invalid=[e.invalid] aria-describedby=[e.described];
                    (e.note)
                    label for="ws-owner" { "Owner's email (an existing account)" }
                    @let e = at(errors, "owner", "ws-owner");
                    input id="ws-owner" name="owner_email" type="email" value=(kept("owner_email")) required aria-invalid=[e.invalid] aria-describedby=[e.described];
                    (e.note)
                    label for="ws-region" { "Region (empty: this appliance's)" }
                    @let e = at(errors, "region", "ws-region");
                    input id="ws-region" name="region" value=(kept("region")) maxlength="32" aria-invalid=[e.invalid] aria-describedby=[e.described];
                    (e.note)
                    button type="submit" { "Create workspace" }
                }
            }
        }
    })
    .await
}

/// `/platform`: what the platform area holds, with a line of live state each.
#[handler]
pub async fn index(p: AdminPage<'_>) -> poem::Result<Response> {
    let admin = &p.admin;
    let list = crate::platform::list(&admin.deps()).await?;
    let active = list.iter().filter(|h| h.row.state == "active").count();
    let accounts = crate::identity::staff::list(&admin.deps()).await?;
    let disabled = accounts.iter().filter(|a| a.user.disabled).count();
    p.page(StatusCode::OK, "Platform", |_| {
        html! {
            section.card {
                h1 { "Platform" }
                p.muted { "Operator tools for this appliance. What is inside a workspace is not shown here." }
                ul.platform-areas id="platform-areas" {
                    li { a href="/platform/workspaces" {
                        strong { "Workspaces" }
                        (list.len()) " in all, " (active) " active. Create, suspend, resume, impersonate."
                    } }
                    li { a href="/platform/accounts" {
                        strong { "Accounts" }
                        (accounts.len()) " in all, " (disabled) " disabled. Create and invite by mail, disable, enable, platform rights."
                    } }
                    li { a href="/platform/audit" {
                        strong { "Platform audit log" }
                        "Sign-ins, accounts and workspace changes, signed and verifiable."
                    } }
                    li { a href="/platform/backups" {
                        strong { "Backups" }
                        "Runs, restore drills and how to restore."
                    } }
                    li { a href="/trust" {
                        strong { "Trust page" }
                        "What this appliance promises, with live evidence."
                    } }
                }
            }
        }
    })
    .await
}

#[handler]
pub async fn workspaces_page(p: AdminPage<'_>) -> poem::Result<Response> {
    render(&p, StatusCode::OK, &[]).await
}

/// On to `to`, or the workspaces page again with the refusal's field errors.
async fn done(p: &AdminPage<'_>, r: Result<(), Error>, to: String) -> poem::Result<Response> {
    next_or_again(
        r,
        |()| see_other(to),
        async |errors| render(p, StatusCode::UNPROCESSABLE_ENTITY, errors).await,
    )
    .await
}

#[handler]
pub async fn create_workspace(p: AdminPage<'_>) -> poem::Result<Response> {
    let admin = &p.admin;
    let region = p
        .form
        .get("region")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(str::to_owned);
    let r = crate::workspace::create_workspace(
        admin.state.platform(),
        crate::workspace::CreateWorkspace {
            name: p.form.owned("name"),
            owner_email: p.form.owned("owner_email"),
            region,
        },
        Actor::User(admin.who.user_id),
        &admin.meta,
    )
    .await
    .map(|_| ());
    done(&p, r, "/platform/workspaces".into()).await
}

/// Suspends (`active` false) or resumes a workspace.
async fn set_active(p: AdminPage<'_>, ws: String, active: bool) -> poem::Result<Response> {
    let a = &p.admin;
    let r = crate::platform::set_active(&a.deps(), &a.who, &ws, active, &a.meta).await;
    done(&p, r, "/platform/workspaces".into()).await
}

#[handler]
pub async fn suspend(p: AdminPage<'_>, Path(ws): Path<String>) -> poem::Result<Response> {
    set_active(p, ws, false).await
}

#[handler]
pub async fn resume(p: AdminPage<'_>, Path(ws): Path<String>) -> poem::Result<Response> {
    set_active(p, ws, true).await
}

#[handler]
pub async fn impersonate(p: AdminPage<'_>, Path(ws): Path<String>) -> poem::Result<Response> {
    let admin = &p.admin;
    let minutes = p
        .form
        .get("minutes")
        .unwrap_or("30")
        .trim()
        .parse::<u32>()
        .map_err(|_| Error::field("minutes", "must be a whole number of minutes"));
    let role = p
        .form
        .get("role")
        .unwrap_or("viewer")
        .parse::<Role>()
        .map_err(|_| Error::field("role", "must be admin, manager, member or viewer"));
    let r = match (minutes, role) {
        (Ok(m), Ok(role)) => {
            let reason = p.form.text("reason");
            crate::platform::impersonate(
                &admin.deps(),
                &admin.who,
                &ws,
                reason,
                m,
                role,
                &admin.meta,
            )
            .await
            .map(|_| ())
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
    };
    done(&p, r, format!("/w/{ws}")).await
}

#[handler]
pub async fn end_impersonation(admin: Admin) -> poem::Result<Response> {
    crate::platform::end(&admin.deps(), &admin.who, &admin.meta).await?;
    Ok(see_other("/platform/workspaces".into()))
}
