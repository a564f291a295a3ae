//! Deleting in the browser: the workspace settings page with its "Delete
//! workspace" section (type the name to confirm; then the due date and a
//! Cancel button), and "Delete my account" on /account.

use maud::{Markup, html};
use poem::{Request, Response, handler};

use super::csrf_field;
use super::forms::{AccountPost, WsPost, at, see_other, status_for, summary};
use crate::access::Role;
use crate::access::op;
use crate::clock::rfc3339;
use crate::error::{Error, FieldError};
use crate::lifecycle::{self, accounts};
use crate::web::tenant::TenantPage;

/// The settings page (200), or with the errors of a failed form (422).
/// The settings page; after a refused deletion, with its errors and the
/// name as typed (`confirm_name`).
async fn render<O>(
    ctx: &TenantPage<O>,
    errors: &[FieldError],
    confirm_name: &str,
) -> poem::Result<Response> {
    let state = ctx.state();
    let ws = ctx.db.id().to_string();
    let s = lifecycle::status(ctx, &state.control).await?;
    let owner = ctx.role == Role::Owner;
    let days = state.config.file.lifecycle.workspace_grace_days;
    let rotation = crate::workspace::key_rotation::status(&state.control, ctx.db.id())?;
    let banner = super::notices::banner_in(state, ctx, ctx.csrf()).await;
    ctx.page_with(banner, status_for(errors), "Workspace settings", |token| {
        html! {
            section.card {
                h1 { "Workspace settings" }
                (summary(errors, &[("confirm_name", "The workspace's name", "confirm_name")]))
            }
            (super::keys::section(&ws, rotation.as_ref(), owner, token))
            section.card id="deletion" data-state=(s.state) {
                h2 { "Delete workspace" }
                @match s.state {
                    "deleting" => {
                        div.notice role="status" {
                            p {
                                strong { "Scheduled for deletion. " }
                                "The workspace is read-only. On "
                                time id="deletion-due" { (s.due_at.map(rfc3339).unwrap_or_default()) }
                                " its key is destroyed: its data, and every backup of it, can no longer be read."
                            }
                        }
                        @if owner {
                            form id="deletion-cancel" method="post" action=(format!("/w/{ws}/deletion/cancel")) {
                                (csrf_field(token))
                                button type="submit" { "Cancel the deletion" }
                            }
                        }
                    }
                    "moving" => {
                        p { "The workspace is being moved to another appliance and is read-only here until the operator confirms or calls it off." }
                    }
                    _ => {
                        @if owner {
                            p {
                                "The workspace turns read-only at once and its owners are told by mail. After "
                                (days) " days its data key is destroyed, so its data and every backup of it can no longer be read, and its files are removed. Until then any owner can cancel."
                            }
                            form id="deletion-form" method="post" action=(format!("/w/{ws}/deletion")) {
                                (csrf_field(token))
                                label for="confirm_name" { "Type the workspace's name to confirm" }
                                @let e = at(errors, "confirm_name", "confirm_name");
                                input id="confirm_name" name="confirm_name" value=(confirm_name) required autocomplete="off" aria-invalid=[e.invalid] aria-describedby=[e.described];
                                (e.note)
                                button.danger type="submit" { "Delete workspace" }
                            }
                        } @else {
                            p.muted { "Only owners can delete the workspace." }
                        }
                    }
                }
            }
        }
    })
    .await
}

#[handler]
pub async fn settings_page(ctx: TenantPage<op::WorkspaceRead>) -> poem::Result<Response> {
    render(&ctx, &[], "").await
}

#[handler]
pub async fn schedule_deletion(p: WsPost<op::WorkspaceDelete>) -> poem::Result<Response> {
    let name = p.form.text("confirm_name");
    let r = lifecycle::schedule(&p.state.lifecycle_deps(), &p.ctx, name).await;
    p.then(
        r,
        |_| format!("/w/{}/settings", p.ctx.db.id()),
        async |ctx, errors| render(ctx, errors, name).await,
    )
    .await
}

#[handler]
pub async fn cancel_deletion(p: WsPost<op::WorkspaceDeletionCancel>) -> poem::Result<Response> {
    match lifecycle::cancel(&p.state.lifecycle_deps(), &p.ctx).await {
        // Nothing scheduled (a second click): the page shows where it stands.
        Ok(_) | Err(Error::Conflict(_)) => Ok(p.done(format!("/w/{}/settings", p.ctx.db.id()))),
        Err(e) => Err(e.into()),
    }
}

/// The "Delete my account" section of /account.
pub fn account_section(token: &str, due: Option<i64>, grace_days: u32) -> Markup {
    html! {
        section.card id="account-deletion" {
            h2 { "Delete my account" }
            @if let Some(due) = due {
                div.notice role="status" {
                    p {
                        strong { "Scheduled for deletion. " }
                        "On " time id="account-deletion-due" { (rfc3339(due)) }
                        " your memberships end and the account is deleted. Until then it works as before."
                    }
                }
                form id="account-deletion-cancel" method="post" action="/account/deletion/cancel" {
                    (csrf_field(token))
                    button type="submit" { "Cancel the deletion" }
                }
            } @else {
                p.muted {
                    "After " (grace_days) " days your memberships end and your account is deleted; until then you can cancel. "
                    "If you are the last owner of a workspace, make someone else owner first (or delete the workspace)."
                }
                form id="account-deletion-form" method="post" action="/account/deletion" {
                    (csrf_field(token))
                    label for="deletion-password" { "Password" }
                    input id="deletion-password" name="password" type="password" required autocomplete="current-password";
                    button.danger type="submit" { "Delete my account" }
                }
            }
        }
    }
}

#[handler]
pub async fn schedule_account_deletion(req: &Request, p: AccountPost) -> poem::Result<Response> {
    let password = p.form.owned("password");
    match accounts::schedule(&p.state.deps(), &p.who.0, password, &p.meta).await {
        Ok(_) => Ok(see_other("/account#account-deletion".into())),
        Err(Error::Forbidden) => Err(Error::Forbidden.into()),
        Err(e) => p.failed(req, e).await,
    }
}

#[handler]
pub async fn cancel_account_deletion(p: AccountPost) -> poem::Result<Response> {
    match accounts::cancel(&p.state.deps(), &p.who.0, &p.meta).await {
        Ok(()) | Err(Error::Conflict(_)) => Ok(see_other("/account#account-deletion".into())),
        Err(e) => Err(e.into()),
    }
}
