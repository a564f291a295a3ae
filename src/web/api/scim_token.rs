//! The workspace's SCIM token over HTTP (owners and admins): whether there
//! is one, issue or rotate it (the secret is in that answer only), revoke
//! it. The SCIM routes themselves are `web::scim`, outside this API.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::routes::api;
use super::{ApiTags, Created, Done};
use crate::access::op;
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::identity::scim_token;
use crate::store::scim::ScimTokenRow;
use crate::web::tenant;

#[derive(Object)]
pub struct ScimToken {
    /// Whether the workspace has a live SCIM token.
    pub exists: bool,
    pub id: Option<String>,
    pub created_by: Option<String>,
    pub created_at: Option<String>,
    pub last_used_at: Option<String>,
    /// The SCIM base URL to give the identity provider.
    pub base_url: String,
}

impl ScimToken {
    fn from_row(row: Option<ScimTokenRow>, base_url: String) -> Self {
        Self {
            exists: row.is_some(),
            id: row.as_ref().map(|r| r.id.clone()),
            created_by: row.as_ref().map(|r| r.created_by.clone()),
            created_at: row.as_ref().map(|r| rfc3339(r.created_at)),
            last_used_at: row.and_then(|r| r.last_used_at).map(rfc3339),
            base_url,
        }
    }
}

#[derive(Object)]
pub struct ScimTokenIssued {
    #[oai(flatten)]
    pub token: ScimToken,
    /// The secret, shown this once: only its SHA-256 is kept.
    pub secret: String,
}

#[derive(Default)]
pub struct ScimTokenApi;

fn base(state: &AppState, ws: &tenant::Tenant<impl Sized>) -> String {
    crate::web::scim::base_url(&state.config.public_url, &ws.db.id().to_string())
}

api! {
    #[OpenApi(tag = "ApiTags::Access")]
    impl ScimTokenApi {
        /// The workspace's SCIM token: whether it exists, when it was issued and
        /// last used, and the SCIM base URL (admins). Never the secret.
        GET "/workspaces/:workspace/scim/token"
        async fn get(workspace: tenant::Path<op::ScimTokenRead>) -> Json<ScimToken> {
            let row = scim_token::status(&workspace.state().control, &workspace).await?;
            Ok(Json(ScimToken::from_row(
                row,
                base(workspace.state(), &workspace),
            )))
        }

        /// Issues the workspace's SCIM token, or rotates it: the token before
        /// stops working at once. The secret is in this response only.
        POST "/workspaces/:workspace/scim/token"
        async fn issue(workspace: tenant::Path<op::ScimTokenIssue>) -> Created<ScimTokenIssued> {
            let made = scim_token::issue(&workspace.state().control, &workspace).await?;
            Ok(Created::Created(Json(ScimTokenIssued {
                token: ScimToken::from_row(Some(made.row), base(workspace.state(), &workspace)),
                secret: made.secret,
            })))
        }

        /// Revokes the SCIM token; the provider's next request gets 401.
        DELETE "/workspaces/:workspace/scim/token"
        async fn revoke(workspace: tenant::Path<op::ScimTokenRevoke>) -> Done {
            scim_token::revoke(&workspace.state().control, &workspace).await?;
            Ok(Done::Done)
        }
    }
}
