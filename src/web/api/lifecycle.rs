//! Deleting a workspace (owners) or one's own account, with a grace period
//! and a way back: `POST` schedules, `DELETE` cancels, `GET` tells.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::body::JsonBody;
use crate::access::op;
use crate::app::AppState;
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

#[OpenApi]
impl LifecycleApi {
    /// Whether the workspace is being deleted (and when) or moved.
    #[oai(
        path = "/workspaces/:workspace/deletion",
        method = "get",
        tag = "ApiTags::Access"
    )]
    async fn workspace_status(
        &self,
        state: Data<&Arc<AppState>>,
        workspace: tenant::Path<op::WorkspaceRead>,
    ) -> poem::Result<Json<WorkspaceDeletion>> {
        Ok(Json(
            lifecycle::status(&workspace, &state.control).await?.into(),
        ))
    }

    /// Schedules the workspace's deletion (owners): it turns read-only (writes
    /// get 409 `workspace-deleting`), its owners are mailed, and after the
    /// grace period its key is destroyed, with its data in every backup.
    #[oai(
        path = "/workspaces/:workspace/deletion",
        method = "post",
        tag = "ApiTags::Access"
    )]
    async fn schedule_workspace(
        &self,
        state: Data<&Arc<AppState>>,
        workspace: tenant::Path<op::WorkspaceDelete>,
        body: JsonBody<WorkspaceDeletionRequest>,
    ) -> poem::Result<Json<WorkspaceDeletion>> {
        let s =
            lifecycle::schedule(&state.lifecycle_deps(), &workspace, &body.0.confirm_name).await?;
        Ok(Json(s.into()))
    }

    /// Cancels a scheduled deletion (owners); 409 when none is scheduled.
    #[oai(
        path = "/workspaces/:workspace/deletion",
        method = "delete",
        tag = "ApiTags::Access"
    )]
    async fn cancel_workspace(
        &self,
        state: Data<&Arc<AppState>>,
        workspace: tenant::Path<op::WorkspaceDeletionCancel>,
    ) -> poem::Result<Json<WorkspaceDeletion>> {
        Ok(Json(
            lifecycle::cancel(&state.lifecycle_deps(), &workspace)
                .await?
                .into(),
        ))
    }

    /// Whether your account is scheduled for deletion.
    #[oai(path = "/me/deletion", method = "get", tag = "ApiTags::Me")]
    async fn account_status(&self, me: Me) -> poem::Result<Json<AccountDeletion>> {
        let due = accounts::due(&me.deps(), me.who.user_id).await?;
        Ok(Json(AccountDeletion {
            scheduled: due.is_some(),
            due_at: due.map(rfc3339),
        }))
    }

    /// Schedules your account's deletion (password required). Refused with
    /// 409, naming them, while you are the last owner of a workspace. At the
    /// end of the grace period your memberships end and the account is gone.
    #[oai(path = "/me/deletion", method = "post", tag = "ApiTags::Me")]
    async fn schedule_account(
        &self,
        me: Me,
        body: JsonBody<AccountDeletionRequest>,
    ) -> poem::Result<Json<AccountDeletion>> {
        let due = accounts::schedule(&me.deps(), &me.who, body.0.password, &me.meta).await?;
        Ok(Json(AccountDeletion {
            scheduled: true,
            due_at: Some(rfc3339(due)),
        }))
    }

    /// Cancels your account's deletion; 409 when none is scheduled.
    #[oai(path = "/me/deletion", method = "delete", tag = "ApiTags::Me")]
    async fn cancel_account(&self, me: Me) -> poem::Result<Json<AccountDeletion>> {
        accounts::cancel(&me.deps(), &me.who, &me.meta).await?;
        Ok(Json(AccountDeletion {
            scheduled: false,
            due_at: None,
        }))
    }
}
