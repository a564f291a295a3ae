//! `GET /platform/status`: what an operator needs at a glance (version,
//! region, TLS mode and the last ACME event or error). Platform admins only.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::{Email, Name};
use super::list::list;
use super::routes::api;
use super::{ApiTags, Created, Done};
use crate::access::Role;
use crate::app::AppState;
use crate::audit::Actor;
use crate::clock::rfc3339;
use crate::web::session::Admin;

#[derive(Object)]
pub struct WorkspaceHealth {
    pub id: String,
    pub name: String,
    pub region: String,
    /// `active`, `suspended`, `deleting` (read-only until `deletion_due_at`)
    /// or `moving` (read-only until the move is confirmed or cancelled).
    pub state: String,
    pub members: i64,
    pub size_bytes: u64,
    pub created_at: String,
    pub deletion_due_at: Option<String>,
}

impl From<crate::platform::Health> for WorkspaceHealth {
    fn from(h: crate::platform::Health) -> Self {
        Self {
            id: h.row.id.to_string(),
            name: h.row.name,
            region: h.row.region,
            state: h.row.state,
            members: h.members,
            size_bytes: h.size_bytes,
            created_at: rfc3339(h.row.created_at),
            deletion_due_at: h.deletion_due_at.map(rfc3339),
        }
    }
}

list!(WorkspaceList of WorkspaceHealth);

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkspaceCreate {
    pub name: Name,
    /// The email of an existing account, who becomes the owner.
    pub owner_email: Email,
    /// A region label (default: the appliance's).
    #[oai(validator(max_length = 32, pattern = r"^[A-Za-z0-9_-]*$"))]
    pub region: Option<String>,
}

#[derive(Object)]
pub struct WorkspaceCreated {
    pub id: String,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImpersonationStart {
    /// Why (recorded in both audit chains; at least 10 characters).
    #[oai(validator(
        min_length = 10,
        max_length = 1000,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
    ))]
    pub reason: String,
    /// 1 to 60; default 30.
    #[oai(validator(minimum(value = "1"), maximum(value = "60")))]
    pub minutes: Option<u32>,
    /// The role to act with; default `viewer` (never `owner`).
    pub role: Option<Role>,
}

#[derive(Object)]
pub struct ImpersonationStarted {
    pub id: String,
    pub expires_at: String,
}

#[derive(Object)]
pub struct PlatformStatus {
    pub version: String,
    pub region: String,
    pub public_url: String,
    pub tls_mode: String,
    pub tls_last_event: Option<String>,
    /// The last ACME failure; the current certificate keeps serving meanwhile.
    pub tls_last_error: Option<String>,
}

pub fn status(state: &AppState) -> PlatformStatus {
    let tls = state
        .tls_status
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    PlatformStatus {
        version: env!("CARGO_PKG_VERSION").into(),
        region: state.config.file.region.clone(),
        public_url: state.config.public_url.clone(),
        tls_mode: if tls.mode.is_empty() {
            "off".into()
        } else {
            tls.mode
        },
        tls_last_event: tls.last_event,
        tls_last_error: tls.last_error,
    }
}

#[derive(Default)]
pub struct PlatformApi;

api! {
    #[OpenApi(tag = "ApiTags::Platform")]
    impl PlatformApi {
        /// The appliance's state for operators.
        GET "/platform/status"
        async fn status(admin: Admin) -> Json<PlatformStatus> {
            Ok(Json(status(&admin.state)))
        }

        /// Every workspace with its health: state, region, members, size.
        /// Nothing inside a workspace is shown here.
        GET "/platform/workspaces"
        async fn workspaces(admin: Admin) -> Json<WorkspaceList> {
            Ok(Json(crate::platform::list(&admin.deps()).await?.into()))
        }

        /// Creates a workspace owned by an existing account.
        POST "/platform/workspaces"
        async fn create_workspace(
            admin: Admin,
            body: JsonBody<WorkspaceCreate>,
        ) -> Created<WorkspaceCreated> {
            let WorkspaceCreate {
                name,
                owner_email,
                region,
            } = body.0;
            let id = crate::workspace::create_workspace(
                admin.state.platform(),
                crate::workspace::CreateWorkspace {
                    name: name.into(),
                    owner_email: owner_email.into(),
                    region,
                },
                Actor::User(admin.who.user_id),
                &admin.meta,
            )
            .await?;
            Ok(Created::Created(Json(WorkspaceCreated {
                id: id.to_string(),
            })))
        }

        /// Suspends a workspace: its members get 404 until it is resumed.
        POST "/platform/workspaces/:workspace/suspend"
        async fn suspend(admin: Admin, workspace: Path<String>) -> Done {
            crate::platform::set_active(&admin.deps(), &admin.who, &workspace, false, &admin.meta)
                .await?;
            Ok(Done::Done)
        }

        /// Resumes a suspended workspace.
        POST "/platform/workspaces/:workspace/resume"
        async fn resume(admin: Admin, workspace: Path<String>) -> Done {
            crate::platform::set_active(&admin.deps(), &admin.who, &workspace, true, &admin.meta)
                .await?;
            Ok(Done::Done)
        }

        /// Starts a recorded impersonation of a workspace for this browser
        /// session: a stated reason, an expiry, a role (default viewer). It is
        /// written to the platform log and to the workspace's own audit log.
        POST "/platform/workspaces/:workspace/impersonate"
        async fn impersonate(
            admin: Admin,
            workspace: Path<String>,
            body: JsonBody<ImpersonationStart>,
        ) -> Created<ImpersonationStarted> {
            let ImpersonationStart {
                reason,
                minutes,
                role,
            } = body.0;
            let started = crate::platform::impersonate(
                &admin.deps(),
                &admin.who,
                &workspace,
                &reason,
                minutes.unwrap_or(30),
                role.unwrap_or(Role::Viewer),
                &admin.meta,
            )
            .await?;
            Ok(Created::Created(Json(ImpersonationStarted {
                id: started.id,
                expires_at: rfc3339(started.expires_at),
            })))
        }

        /// Ends this session's impersonation (204 also when there was none).
        POST "/platform/impersonation/end"
        async fn end_impersonation(admin: Admin) -> Done {
            crate::platform::end(&admin.deps(), &admin.who, &admin.meta).await?;
            Ok(Done::Done)
        }
    }
}
