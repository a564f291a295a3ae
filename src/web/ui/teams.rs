//! Team management: teams with their leads and members, create and delete
//! (admins), add and remove people (admins, or the team's lead).

use maud::html;
use poem::{Response, handler};

use super::forms::{Id, WsPost, errors_box, status_for};
use super::{csrf_field, row_action};
use crate::access::permissions::{Action, Resource};
use crate::access::{Role, TeamPlace, op};
use crate::error::FieldError;
use crate::ids::TeamId;
use crate::records::teams;
use crate::web::tenant::TenantPage;

#[handler]
pub async fn teams_page(ctx: TenantPage<op::TeamRead>) -> poem::Result<Response> {
    render(&ctx, &[], "").await
}

/// The page, or the page again with a refused form's errors and the new
/// team's name as typed (`name`).
async fn render<O>(
    ctx: &TenantPage<O>,
    errors: &[FieldError],
    name: &str,
) -> poem::Result<Response> {
    let ws = ctx.ws();
    let name_err = errors
        .iter()
        .find(|e| e.field == "name")
        .map(|e| e.message.as_str());
    let list = teams::list(ctx).await?;
    let members = teams::members(&ctx.state().control, ctx).await?;
    let email = |id: &str| {
        members
            .iter()
            .find(|(u, _)| u.id.to_string() == id)
            .map(|(u, _)| u.email.clone())
            .unwrap_or_else(|| id.to_owned())
    };
    let admin = ctx.may(Resource::Team, Action::Update);
    let me = ctx.user.to_string();
    // A lead manages their team only where the credential's scope reaches
    // manager (the same rule as `records::teams`).
    let lead_manages =
        ctx.writable() && ctx.role_with(Some(TeamPlace::Lead)).at_least(Role::Manager);
    ctx.page(status_for(errors), "Teams", |token| {
        html! {
            section.card {
                h1 { "Teams" }
                (errors_box(errors))
                p.muted { "A team can own collections: only its leads and members see them. Leads manage their team's members and collections." }
                @if list.is_empty() { p.muted { "No teams yet." } }
                @for t in &list {
                    @let lead = lead_manages && t.members.iter().any(|(u, r)| *u == me && r == "lead");
                    article.team data-team=(t.id) {
                        h2 { (t.name) }
                        table.list {
                            thead { tr { th { "Person" } th { "Team role" } th {} } }
                            tbody {
                                @for (uid, role) in &t.members {
                                    tr {
                                        td { (email(uid)) }
                                        td { span.badge { (role) } }
                                        td { @if admin || lead {
                                            (row_action(token, &format!("/w/{ws}/teams/{}/members/remove", t.id), ("user_id", &uid), ("secondary", "Remove")))
                                        } }
                                    }
                                }
                            }
                        }
                        @if admin || lead {
                            form.inline method="post" action=(format!("/w/{ws}/teams/{}/members", t.id)) {
                                (csrf_field(token))
                                select name="user_id" aria-label="Person" {
                                    @for (u, _) in &members { option value=(u.id) { (u.email) } }
                                }
                                select name="role" aria-label="Team role" {
                                    option value="member" { "member" }
                                    option value="lead" { "lead" }
                                }
                                button type="submit" { "Add to team" }
                            }
                        }
                        @if admin {
                            form method="post" action=(format!("/w/{ws}/teams/{}/delete", t.id))
                                data-confirm="Delete this team? This cannot be undone." data-confirm-label="Delete team" {
                                (csrf_field(token))
                                button.danger type="submit" { "Delete team" }
                            }
                        }
                    }
                }
            }
            @if ctx.may(Resource::Team, Action::Create) {
                section.card {
                    h2 { "New team" }
                    form id="new-team" method="post" action=(format!("/w/{ws}/teams")) {
                        (csrf_field(token))
                        label for="team-name" { "Name" }
                        input id="team-name" name="name" value=(name) required maxlength="64" aria-invalid=[name_err.map(|_| "true")] aria-describedby=[name_err.map(|_| "err-team-name")];
                        @if let Some(m) = name_err { span.field-error id="err-team-name" { (m) } }
                        button type="submit" { "Create team" }
                    }
                }
            }
        }
    })
    .await
}

/// Back to the teams page after a change.
fn back<O: crate::access::op::Op>(p: &WsPost<O>) -> Response {
    p.done(format!("/w/{}/teams", p.ctx.ws()))
}

/// A new team; a refused name comes back as typed, its error beside it.
#[handler]
pub async fn create_team(p: WsPost<op::TeamCreate>) -> poem::Result<Response> {
    let r = teams::create(&p.ctx, p.form.text("name")).await;
    let to = |_| format!("/w/{}/teams", p.ctx.ws());
    p.then(r, to, async |ctx, errors| {
        render(ctx, errors, p.form.text("name")).await
    })
    .await
}

#[handler]
pub async fn delete_team(
    p: WsPost<op::TeamDelete>,
    Id(team): Id<TeamId>,
) -> poem::Result<Response> {
    teams::delete(&p.ctx, team).await?;
    Ok(back(&p))
}

#[handler]
pub async fn add_member(p: WsPost<op::TeamUpdate>, Id(team): Id<TeamId>) -> poem::Result<Response> {
    let (user, role) = (p.form.text("user_id"), p.form.text("role"));
    teams::set_member(&p.state.control, &p.ctx, team, user, role).await?;
    Ok(back(&p))
}

#[handler]
pub async fn remove_member(
    p: WsPost<op::TeamUpdate>,
    Id(team): Id<TeamId>,
) -> poem::Result<Response> {
    teams::remove_member(&p.ctx, team, p.form.text("user_id")).await?;
    Ok(back(&p))
}
