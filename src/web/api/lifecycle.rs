//! Deleting a workspace (owners) or one's own account, with a grace period
//! and a way back: `POST` schedules, `DELETE` cancels, `GET` tells.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::body::JsonBody;
use super::routes::api;
use crate::access::op;
use crate::clock::rfc3339;
use crate::lifecycle::{self, Status, accounts};
use crate::web::session::Me;
use crate::web::tenant;

/// A workspace's deletion state.
#[derive(Object)]
#[oai(rename = "WorkspaceDeletion")]
pub struct WorkspaceDeletion {
    /// `active`, `deleting` (read-only until `due_at`) or `moving`.
    pub state: String,
    pub requested_at: Option<String>,
    /// When the workspace's key is destroyed, unless an owner cancels first.
    pub due_at: Option<String>,
}

impl From<Status> for WorkspaceDeletion {
    fn from(s: Status) -> Self {
        Self {
            state: s.state.into(),
            requested_at: s.requested_at.map(rfc3339),
            due_at: s.due_at.map(rfc3339),
        }
    }
}

#[derive(Object, Deserialize)]
#[oai(rename = "WorkspaceDeletionRequest")]
#[serde(deny_unknown_fields)]
pub struct WorkspaceDeletionRequest {
    /// The workspace's name, typed to confirm.
    #[oai(validator(
        max_length = 200,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub confirm_name: String,
}

/// The signed-in account's deletion state.
#[derive(Object)]
#[oai(rename = "AccountDeletion")]
pub struct AccountDeletion {
    pub scheduled: bool,
    /// When the account is deleted, unless cancelled first.
    pub due_at: Option<String>,
}

#[derive(Object, Deserialize)]
#[oai(rename = "AccountDeletionRequest")]
#[serde(deny_unknown_fields)]
pub struct AccountDeletionRequest {
    /// Your password, again.
    #[oai(validator(min_length = 1))]
    pub password: String,
}

#[derive(Default)]
pub struct LifecycleApi;

api! {
    #[OpenApi]
    impl LifecycleApi {
        /// Whether the workspace is being deleted (and when) or moved.
        GET "/workspaces/:workspace/deletion" tag = "ApiTags::Access"
        async fn workspace_status(
            workspace: tenant::Path<op::WorkspaceRead>,
        ) -> Json<WorkspaceDeletion> {
            Ok(Json(
                lifecycle::status(&workspace, &workspace.state().control)
                    .await?
                    .into(),
            ))
        }

        /// Schedules the workspace's deletion (owners): it turns read-only (writes
        /// get 409 `workspace-deleting`), its owners are mailed, and after the
        /// grace period its key is destroyed, with its data in every backup.
        POST "/workspaces/:workspace/deletion" tag = "ApiTags::Access"
        async fn schedule_workspace(
            workspace: tenant::Path<op::WorkspaceDelete>,
            body: JsonBody<WorkspaceDeletionRequest>,
        ) -> Json<WorkspaceDeletion> {
            let s = lifecycle::schedule(
                &workspace.state().lifecycle_deps(),
                &workspace,
                &body.0.confirm_name,
            )
            .await?;
            Ok(Json(s.into()))
        }

        /// Cancels a scheduled deletion (owners); 409 when none is scheduled.
        DELETE "/workspaces/:workspace/deletion" tag = "ApiTags::Access"
        async fn cancel_workspace(
            workspace: tenant::Path<op::WorkspaceDeletionCancel>,
        ) -> Json<WorkspaceDeletion> {
            Ok(Json(
                lifecycle::cancel(&workspace.state().lifecycle_deps(), &workspace)
                    .await?
                    .into(),
            ))
        }

        /// Whether your account is scheduled for deletion.
        GET "/me/deletion" tag = "ApiTags::Me"
        async fn account_status(me: Me) -> Json<AccountDeletion> {
            let due = accounts::due(&me.deps(), me.who.user_id).await?;
            Ok(Json(AccountDeletion {
                scheduled: due.is_some(),
                due_at: due.map(rfc3339),
            }))
        }

        /// Schedules your account's deletion (password required). Refused with
        /// 409, naming them, while you are the last owner of a workspace. At the
        /// end of the grace period your memberships end and the account is gone.
        POST "/me/deletion" tag = "ApiTags::Me"
        async fn schedule_account(
            me: Me,
            body: JsonBody<AccountDeletionRequest>,
        ) -> Json<AccountDeletion> {
            let due = accounts::schedule(&me.deps(), &me.who, body.0.password, &me.meta).await?;
            Ok(Json(AccountDeletion {
                scheduled: true,
                due_at: Some(rfc3339(due)),
            }))
        }

        /// Cancels your account's deletion; 409 when none is scheduled.
        DELETE "/me/deletion" tag = "ApiTags::Me"
        async fn cancel_account(me: Me) -> Json<AccountDeletion> {
            accounts::cancel(&me.deps(), &me.who, &me.meta).await?;
            Ok(Json(AccountDeletion {
                scheduled: false,
                due_at: None,
            }))
        }
    }
}
