//! Incident notices in the UI: the banner a workspace's pages show while an
//! incident affecting it is unacknowledged, the form with which an owner or
//! admin acknowledges it, and the public page of one incident (its summary
//! and every update), which /trust links to.

use std::sync::Arc;

use maud::{Markup, html};
use poem::http::StatusCode;
use poem::web::{Data, Path};
use poem::{Request, Response, handler};

use super::forms::WsPost;
use super::{Chrome, csrf_field, html_response, layout};
use crate::access::Role;
use crate::access::enter::TenantHandle;
use crate::access::op;
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::notices;
use crate::web::session::SignedIn;
use crate::web::tenant::{self, TenantPage};

/// The banner for a page under `/w/<ws>/` whose handler did not enter the
/// workspace: entered once, for reading incidents (a non-member gets
/// nothing), empty when nothing is unacknowledged.
pub async fn banner(req: &Request, state: &AppState, who: &SignedIn, csrf: &str) -> Markup {
    let Some(ws) = req
        .uri()
        .path()
        .strip_prefix("/w/")
        .and_then(|rest| rest.split('/').next())
    else {
        return html! {};
    };
    match tenant::open_for::<op::IncidentRead>(req, who, ws).await {
        Ok(ctx) => banner_in(state, &ctx, csrf).await,
        Err(_) => html! {},
    }
}

/// `banner` for a workspace page whose handler entered it for something
/// else: entered again, for reading incidents, with the page's metadata.
pub async fn banner_for<O>(page: &TenantPage<O>) -> Markup {
    let (state, meta) = (page.state(), page.meta.clone());
    match tenant::open_with::<op::IncidentRead>(state, page.who(), page.ws(), meta).await {
        Ok(ctx) => banner_in(state, &ctx, page.csrf()).await,
        Err(_) => html! {},
    }
}

/// The banner, read through the workspace the page already entered.
pub async fn banner_in(state: &AppState, ctx: &TenantHandle, csrf: &str) -> Markup {
    let open = match notices::unacknowledged(ctx, &state.control).await {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "incident banner unavailable");
            return html! {};
        }
    };
    let admin = ctx.role.at_least(Role::Admin);
    let ws = ctx.db.id();
    html! {
        @if !open.is_empty() {
            div.banner role="alert" id="incident-banner" {
                @for i in &open {
                    p {
                        strong { "Security incident" } " declared " (rfc3339(i.declared_at))
                        " affecting this workspace (" (notices::scope_words(i)) "); status: "
                        strong { (i.status) } ". "
                        a href=(format!("/trust/incidents/{}", i.id)) { "Summary and updates" }
                    }
                    @if admin {
                        form.inline-end method="post" action=(format!("/w/{ws}/incidents/ack")) {
                            (csrf_field(csrf))
                            input type="hidden" name="incident_id" value=(i.id);
                            button.secondary type="submit" { "Acknowledge" }
                        }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn acknowledge(p: WsPost<op::IncidentAcknowledge>) -> poem::Result<Response> {
    let id = p.form.text("incident_id");
    notices::acknowledge(&p.ctx, &p.state.control, id).await?;
    Ok(p.done(format!("/w/{}", p.ctx.db.id())))
}

/// `/trust/incidents/:id`: public, like /trust; it names no workspace.
#[handler]
pub async fn incident_page(
    state: Data<&Arc<AppState>>,
    Path(id): Path<String>,
) -> poem::Result<Response> {
    let (i, updates) = notices::public(&state.deps(), &id).await?;
    let body = html! {
        section.card.trust {
            p.crumbs { a href="/trust" { "Trust" } }
            h1 { "Incident " code { (i.id) } }
            table.kv {
                tr { th { "Declared" } td { (rfc3339(i.declared_at)) } }
                tr { th { "Scope" } td { (notices::scope_words(&i)) } }
                tr { th { "Status" } td id="incident-status" { (i.status)
                    @if let Some(r) = i.resolved_at { " (" (rfc3339(r)) ")" } } }
            }
            @for u in &updates {
                article.update {
                    h2 { (u.kind) " " small { (rfc3339(u.at)) } }
                    @if let Some(s) = &u.summary { pre.summary { (s) } }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        layout("Incident", &Chrome::ANONYMOUS, body),
    ))
}
