//! The invitation link's page: what it offers, and accepting it (creating
//! the account when the address has none).

use std::sync::Arc;

use maud::html;
use poem::web::{Data, Path};
use poem::{IntoResponse, Request, Response, handler};

use super::csrf_field;
use super::forms::{PublicPage, errors_box, see_other};
use crate::app::AppState;
use crate::error::{Error, FieldError};
use crate::identity::invitations::{self, NewAccount, Preview};
use crate::web::session::{SignedIn, session_cookie};

fn render(
    req: &Request,
    state: &AppState,
    token: &str,
    p: &Preview,
    signed_in_as: Option<&str>,
    errors: &[FieldError],
) -> Response {
    let status = super::forms::status_for(errors);
    let inv = &p.invitation;
    super::public_page(
        req,
        state,
        status,
        "Invitation",
        signed_in_as,
        |csrf_token| {
            html! {
                section.card.narrow {
                    h1 { "Join " (p.workspace_name) }
                    p { "You are invited as " strong { (inv.role.as_str()) } " (" (inv.email) ")." }
                    (errors_box(errors))
                    @if p.account_exists {
                        @if signed_in_as == Some(inv.email.as_str()) {
                            form id="accept-form" method="post" action=(format!("/invite/{token}")) {
                                (csrf_field(csrf_token))
                                button type="submit" { "Accept and join" }
                            }
                        } @else {
                            p { "This address already has an account. "
                                a href="/login" { "Sign in as " (inv.email) } ", then open this link again." }
                        }
                    } @else {
                        form id="accept-form" method="post" action=(format!("/invite/{token}")) {
                            (csrf_field(csrf_token))
                            label for="name" { "Your name" }
                            input id="name" name="name" required maxlength="200" autocomplete="name";
                            label for="password" { "Choose a password (10 characters or more)" }
                            input id="password" name="password" type="password" required minlength="10" autocomplete="new-password";
                            button type="submit" { "Create account and join" }
                        }
                    }
                }
            }
        },
    )
}

async fn email_of(state: &AppState, who: &Option<SignedIn>) -> Option<String> {
    let me = who.as_ref()?;
    crate::web::api::me::load_me(state, me)
        .await
        .ok()
        .map(|m| m.email)
}

/// The invitation's page (200), or its form again with the errors (422).
async fn show(
    req: &Request,
    state: &AppState,
    who: &Option<SignedIn>,
    token: &str,
    errors: &[FieldError],
) -> poem::Result<Response> {
    let p = invitations::preview(&state.deps(), token).await?;
    let email = email_of(state, who).await;
    Ok(render(req, state, token, &p, email.as_deref(), errors))
}

#[handler]
pub async fn invite_page(
    req: &Request,
    state: Data<&Arc<AppState>>,
    who: Option<SignedIn>,
    Path(token): Path<String>,
) -> poem::Result<Response> {
    show(req, &state, &who, &token, &[]).await
}

#[handler]
pub async fn accept(
    p: PublicPage<'_>,
    who: Option<SignedIn>,
    Path(token): Path<String>,
) -> poem::Result<Response> {
    let (state, meta) = (&p.state, &p.meta);
    let new_account = match (p.form.get("name"), p.form.get("password")) {
        (Some(name), Some(password)) => Some(NewAccount {
            name: name.to_owned(),
            password: password.to_owned(),
        }),
        _ => None,
    };
    let principal = who.as_ref().map(|w| &w.0);
    match invitations::accept(&state.deps(), &token, principal, new_account, meta).await {
        Ok(done) => {
            let mut resp = see_other(format!("/w/{}", done.workspace));
            if done.created {
                let s =
                    crate::identity::sessions::sign_in_new(&state.deps(), done.user, meta).await?;
                if let Ok(v) = session_cookie(&state.config, &s.token).parse() {
                    resp.headers_mut().insert("set-cookie", v);
                }
            }
            Ok(resp.into_response())
        }
        Err(Error::Validation(errors)) => show(p.req, state, &who, &token, &errors).await,
        Err(e) => Err(e.into()),
    }
}
