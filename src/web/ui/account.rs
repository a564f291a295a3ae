//! The signed-in person's own account: where they are signed in (and ending
//! any of it), and changing the password, which ends every other sign-in.

use std::sync::Arc;

use maud::html;
use poem::http::StatusCode;
use poem::web::Data;
use poem::{Request, Response, handler};

use super::csrf_field;
use super::forms::{errors_box, form_pairs, one, page, see_other, validation_errors};
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::clock::rfc3339;
use crate::error::FieldError;
use crate::web::api::me::{end_sign_in, sign_ins};
use crate::web::session::SignedIn;

async fn render(
    req: &Request,
    state: &AppState,
    who: &SignedIn,
    status: StatusCode,
    errors: &[FieldError],
    notice: Option<&str>,
) -> poem::Result<Response> {
    let list = sign_ins(state, &who.0).await?;
    page(req, state, who, status, "Your account", |token| {
        html! {
            section.card {
                h1 { "Your account" }
                @if let Some(n) = notice { div.notice role="status" { (n) } }
                (errors_box(errors))
                h2 { "Where you are signed in" }
                table.list id="sessions" {
                    thead { tr { th { "Kind" } th { "Since" } th { "Last seen" } th { "From" } th {} } }
                    tbody {
                        @for (s, current) in &list {
                            tr data-session=(s.id) {
                                td { @if s.browser { "browser" } @else { "API sign-in" } }
                                td { (rfc3339(s.created_at)) }
                                td { (s.last_seen_at.map(rfc3339).unwrap_or_default()) }
                                td { (s.ip.clone().unwrap_or_default()) }
                                td {
                                    @if *current { span.badge { "this one" } }
                                    @else {
                                        form method="post" action="/account/sessions/end" {
                                            (csrf_field(token))
                                            input type="hidden" name="id" value=(s.id);
                                            button.danger type="submit" { "Sign out" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section.card {
                h2 { "Change password" }
                p.muted { "Every other browser session and API sign-in of yours ends." }
                form id="password-form" method="post" action="/account/password" {
                    (csrf_field(token))
                    label for="current_password" { "Current password" }
                    input id="current_password" name="current_password" type="password" required autocomplete="current-password";
                    label for="new_password" { "New password" }
                    input id="new_password" name="new_password" type="password" required minlength="10" autocomplete="new-password";
                    button type="submit" { "Change password" }
                }
            }
        }
    })
    .await
}

#[handler]
pub async fn account_page(
    req: &Request,
    state: Data<&Arc<AppState>>,
    who: SignedIn,
) -> poem::Result<Response> {
    let changed = req.uri().query() == Some("changed=1");
    let note = changed.then_some("Password changed; your other sign-ins have ended.");
    render(req, &state, &who, StatusCode::OK, &[], note).await
}

#[handler]
pub async fn change_password(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
) -> poem::Result<Response> {
    let pairs = form_pairs(req);
    let current = one(&pairs, "current_password")
        .unwrap_or_default()
        .to_owned();
    let new = one(&pairs, "new_password").unwrap_or_default().to_owned();
    match crate::identity::users::change_password(&state, &who.0, current, new, &meta).await {
        Ok(()) => Ok(see_other("/account?changed=1".into())),
        Err(e) => {
            let errors = validation_errors(e)?;
            render(
                req,
                &state,
                &who,
                StatusCode::UNPROCESSABLE_ENTITY,
                &errors,
                None,
            )
            .await
        }
    }
}

#[handler]
pub async fn end_session(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    who: SignedIn,
) -> poem::Result<Response> {
    let pairs = form_pairs(req);
    end_sign_in(&state, &who.0, one(&pairs, "id").unwrap_or_default(), &meta).await?;
    Ok(see_other("/account".into()))
}
