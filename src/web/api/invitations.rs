//! Invitations over HTTP: admins invite by email; the invited person reads
//! and accepts the invitation with the token from the link.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::{Email, Name};
use super::list::list;
use super::routes::api;
use super::{ApiTags, Done};
use crate::access::{Role, op};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::identity::invitations::{self, InviteMail, NewAccount};
use crate::store::invitations::InvitationRow;
use crate::web::session::{PublicCall, SignedIn};
use crate::web::tenant;

/// What sending an invitation takes from the appliance (API and UI).
pub(crate) fn invite_mail(state: &AppState) -> InviteMail<'_> {
    InviteMail {
        control: &state.control,
        mailer: &state.mailer,
        public_url: &state.config.public_url,
    }
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationCreate {
    pub email: Email,
    pub role: Role,
}

#[derive(Object)]
pub struct Invitation {
    pub id: String,
    pub email: String,
    pub role: Role,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    pub created_at: String,
    pub expires_at: String,
}

impl Invitation {
    pub fn from_row(r: InvitationRow, now: i64) -> Self {
        let status = if r.accepted_at.is_some() {
            "accepted"
        } else if r.revoked_at.is_some() {
            "revoked"
        } else if r.expires_at <= now {
            "expired"
        } else {
            "pending"
        };
        Self {
            id: r.id,
            email: r.email,
            role: r.role,
            status: status.into(),
            created_at: rfc3339(r.created_at),
            expires_at: rfc3339(r.expires_at),
        }
    }
}

list!(InvitationList of Invitation);

#[derive(Object)]
pub struct InvitationPreview {
    pub workspace_name: String,
    pub email: String,
    pub role: Role,
    pub expires_at: String,
    /// The address has an account: sign in as it, then accept.
    pub account_exists: bool,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvitationAccept {
    /// For a new account: your name.
    pub name: Option<Name>,
    /// For a new account: your password.
    #[oai(validator(min_length = 10, max_length = 256))]
    pub password: Option<String>,
}

#[derive(Object)]
pub struct InvitationAccepted {
    pub workspace_id: String,
    pub user_id: String,
    /// A new account was created; sign in with its email and password.
    pub account_created: bool,
}

#[derive(ApiResponse)]
pub enum Created {
    #[oai(status = 201)]
    Created(Json<Invitation>),
}

#[derive(Default)]
pub struct InvitationsApi;

api! {
    #[OpenApi(tag = "ApiTags::Access")]
    impl InvitationsApi {
        /// Invites an email address with a role; the link goes out by mail,
        /// works once and expires after 7 days.
        POST "/workspaces/:workspace/invitations"
        async fn create(
            workspace: tenant::Path<op::InvitationCreate>,
            body: JsonBody<InvitationCreate>,
        ) -> Created {
            let row = invitations::invite(
                invite_mail(workspace.state()),
                &workspace,
                &body.0.email,
                body.0.role,
            )
            .await?;
            Ok(Created::Created(Json(Invitation::from_row(
                row,
                workspace.now(),
            ))))
        }

        /// The workspace's invitations, newest first.
        GET "/workspaces/:workspace/invitations"
        async fn list(workspace: tenant::Path<op::InvitationRead>) -> Json<InvitationList> {
            let now = workspace.now();
            Ok(Json(
                invitations::list(&workspace.state().control, &workspace)
                    .await?
                    .into_iter()
                    .map(|r| Invitation::from_row(r, now))
                    .collect(),
            ))
        }

        /// Revokes a pending invitation.
        DELETE "/workspaces/:workspace/invitations/:invitation"
        async fn revoke(
            workspace: tenant::Path<op::InvitationDelete>,
            invitation: Path<String>,
        ) -> Done {
            invitations::revoke(&workspace.state().control, &workspace, &invitation).await?;
            Ok(Done::Done)
        }

        /// What an invitation link offers (404 once used, revoked or expired).
        GET "/invitations/:token"
        async fn preview(
            state: Data<&Arc<AppState>>,
            token: Path<String>,
        ) -> Json<InvitationPreview> {
            let p = invitations::preview(&state.deps(), &token).await?;
            Ok(Json(InvitationPreview {
                workspace_name: p.workspace_name,
                email: p.invitation.email,
                role: p.invitation.role,
                expires_at: rfc3339(p.invitation.expires_at),
                account_exists: p.account_exists,
            }))
        }

        /// Accepts an invitation: with `name` and `password` when the address has
        /// no account yet, else signed in as that account. At most 3 attempts per
        /// IP per 30 minutes.
        POST "/invitations/:token/accept"
        async fn accept(
            call: PublicCall,
            who: Option<SignedIn>,
            token: Path<String>,
            body: JsonBody<InvitationAccept>,
        ) -> Json<InvitationAccepted> {
            let new_account = match (body.0.name, body.0.password) {
                (Some(name), Some(password)) => Some(NewAccount {
                    name: name.into(),
                    password,
                }),
                _ => None,
            };
            let done = invitations::accept(
                &call.deps(),
                &token,
                who.as_ref().map(|w| &w.0),
                new_account,
                &call.meta,
            )
            .await?;
            Ok(Json(InvitationAccepted {
                workspace_id: done.workspace.to_string(),
                user_id: done.user.to_string(),
                account_created: done.created,
            }))
        }
    }
}
