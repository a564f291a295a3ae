//! The SCIM part of a workspace's Members page (owners and admins): whether
//! the identity provider has a token, when it was issued and last used, the
//! base URL to paste into the provider, and the forms that issue, rotate
//! and revoke the token (rotation and revocation behind a confirmation).
//! The secret is shown once, on the page answering the issuing form.

use maud::{Markup, html};
use poem::{Response, handler};

use super::forms::{WsPost, when};
use super::{csrf_field, row_action};
use crate::access::op;
use crate::identity::scim_token;
use crate::store::scim::ScimTokenRow;
use crate::web::tenant::TenantPage;

/// What the section shows.
pub struct Status {
    pub token: Option<ScimTokenRow>,
    pub base_url: String,
    pub now: i64,
}

pub async fn status<O>(ctx: &TenantPage<O>) -> poem::Result<Status> {
    let state = ctx.state();
    Ok(Status {
        token: scim_token::status(&state.control, ctx).await?,
        base_url: crate::web::scim::base_url(&state.config.public_url, &ctx.db.id().to_string()),
        now: ctx.now(),
    })
}

pub fn section(s: &Status, ws: &str, csrf: &str, secret: Option<&str>, edit: bool) -> Markup {
    html! {
        section.card id="scim" {
            h2 { "Provisioning from your identity provider (SCIM)" }
            p.muted { "Entra ID, Okta and other identity providers can add people to this workspace, remove them when they leave, and keep teams in step with their groups. Give the provider the base URL and the token below." }
            dl.facts {
                dt { "SCIM base URL" }
                dd { code id="scim-base-url" { (s.base_url) } }
                dt { "Token" }
                dd id="scim-token-state" {
                    @match &s.token {
                        Some(t) => {
                            span.badge { "active" } " issued "
                            (when(t.created_at, s.now))
                            ", last used "
                            @match t.last_used_at {
                                Some(u) => (when(u, s.now)),
                                None => "never",
                            }
                        }
                        None => "None: the identity provider cannot reach this workspace.",
                    }
                }
            }
            @if let Some(secret) = secret {
                div.notice role="status" {
                    p { strong { "Copy this token into your identity provider now. " } "Aura keeps only a fingerprint of it, so it cannot be shown again." }
                    code id="new-scim-token" { (secret) }
                }
            }
            @if edit {
                @match &s.token {
                    Some(_) => {
                        form.inline method="post" action=(format!("/w/{ws}/scim/token"))
                            data-confirm="Rotate the SCIM token: the identity provider's current token stops working at once, until you paste the new one." data-confirm-label="Rotate" {
                            (csrf_field(csrf))
                            button.secondary type="submit" { "Rotate token" }
                        }
                        (row_action(csrf, &format!("/w/{ws}/scim/token/revoke"), ("confirm", &"yes"), ("danger", "Revoke token")))
                    }
                    None => {
                        form method="post" action=(format!("/w/{ws}/scim/token")) {
                            (csrf_field(csrf))
                            button type="submit" { "Issue a SCIM token" }
                        }
                    }
                }
            }
        }
    }
}

#[handler]
pub async fn issue_token(p: WsPost<op::ScimTokenIssue>) -> poem::Result<Response> {
    match scim_token::issue(&p.state.control, &p.ctx).await {
        Ok(made) => super::access::render_with_scim(&p.ctx, &made.secret).await,
        Err(e) => p.back_scim(Err::<(), _>(e)).await,
    }
}

#[handler]
pub async fn revoke_token(p: WsPost<op::ScimTokenRevoke>) -> poem::Result<Response> {
    let r = scim_token::revoke(&p.state.control, &p.ctx).await;
    p.back_scim(r).await
}
