//! Who may act in a workspace, over HTTP: member roles and removal, service
//! accounts, and `aura_` API tokens.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::Name;
use super::list::list;
use super::routes::api;
use super::{ApiTags, Created, Done};
use crate::access::{Role, op};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::{api_tokens, members};
use crate::ids::{TokenId, UserId};
use crate::store::tokens::ApiTokenRow;
use crate::web::tenant;

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleChange {
    pub role: Role,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceAccountCreate {
    pub name: Name,
    pub role: Role,
}

#[derive(Object)]
pub struct ServiceAccount {
    pub id: String,
    pub name: String,
    pub role: Role,
}

list!(ServiceAccountList of ServiceAccount);

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenCreate {
    pub name: Name,
    /// The most this token may do; at most the creator's role.
    pub scope: Role,
    /// Days until it expires; absent means it does not expire.
    #[oai(validator(minimum(value = "1"), maximum(value = "3650")))]
    pub expires_in_days: Option<u32>,
    /// A service account of this workspace; absent means the creator's own.
    pub service_account: Option<String>,
}

#[derive(Object)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub scope: Role,
    /// The account the token acts as.
    pub holder_id: String,
    pub holder_name: Option<String>,
    pub created_by: String,
    pub created_at: String,
    pub expires_at: Option<String>,
    pub last_used_at: Option<String>,
    pub revoked_at: Option<String>,
}

impl ApiToken {
    fn from_row(t: ApiTokenRow, holder_name: Option<String>) -> Self {
        Self {
            id: t.id,
            name: t.name,
            scope: t.scope,
            holder_id: t.user_id.to_string(),
            holder_name,
            created_by: t.created_by.to_string(),
            created_at: rfc3339(t.created_at),
            expires_at: t.expires_at.map(rfc3339),
            last_used_at: t.last_used_at.map(rfc3339),
            revoked_at: t.revoked_at.map(rfc3339),
        }
    }
}

#[derive(Object)]
pub struct ApiTokenCreated {
    #[oai(flatten)]
    pub token: ApiToken,
    /// The secret, shown this once: only its SHA-256 is kept.
    pub secret: String,
}

list!(ApiTokenList of ApiToken);

fn user_id(raw: &str) -> Result<UserId, Error> {
    raw.parse().map_err(|_| Error::NotFound("member"))
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MfaPolicy {
    /// Members (people) must have a second factor to reach the workspace.
    pub required: bool,
}

#[derive(Default)]
pub struct AccessApi;

api! {
    #[OpenApi(tag = "ApiTags::Access")]
    impl AccessApi {
        /// Changes a member's role (admins; only owners touch `owner`, and the
        /// last owner stays). Takes effect on the member's next request.
        PUT "/workspaces/:workspace/members/:user"
        async fn set_role(
            workspace: tenant::Path<op::MemberUpdate>,
            user: Path<String>,
            body: JsonBody<RoleChange>,
        ) -> Done {
            members::set_role(
                &workspace.state().control,
                &workspace,
                user_id(&user)?,
                body.0.role,
            )
            .await?;
            Ok(Done::Done)
        }

        /// Removes a member: their access to this workspace ends at once and
        /// their API tokens for it are revoked.
        DELETE "/workspaces/:workspace/members/:user"
        async fn remove(workspace: tenant::Path<op::MemberDelete>, user: Path<String>) -> Done {
            members::remove(&workspace.state().control, &workspace, user_id(&user)?).await?;
            Ok(Done::Done)
        }

        /// The workspace's service accounts (admins).
        GET "/workspaces/:workspace/service-accounts"
        async fn service_accounts(
            workspace: tenant::Path<op::ServiceAccountRead>,
        ) -> Json<ServiceAccountList> {
            Ok(Json(
                members::service_accounts(&workspace.state().control, &workspace)
                    .await?
                    .into_iter()
                    .map(|(id, name, role)| ServiceAccount {
                        id: id.to_string(),
                        name,
                        role,
                    })
                    .collect(),
            ))
        }

        /// Creates a service account with a role no higher than the caller's.
        POST "/workspaces/:workspace/service-accounts"
        async fn create_service_account(
            workspace: tenant::Path<op::ServiceAccountCreate>,
            body: JsonBody<ServiceAccountCreate>,
        ) -> Created<ServiceAccount> {
            let ServiceAccountCreate { name, role } = body.0;
            let id = members::create_service_account(
                &workspace.state().control,
                &workspace,
                &name,
                role,
            )
            .await?;
            Ok(Created::Created(Json(ServiceAccount {
                id: id.to_string(),
                name: name.trim().to_owned(),
                role,
            })))
        }

        /// The workspace's API tokens, revoked ones included (admins). Secrets
        /// are never shown again.
        GET "/workspaces/:workspace/tokens"
        async fn tokens(workspace: tenant::Path<op::ApiTokenRead>) -> Json<ApiTokenList> {
            let names = api_tokens::holder_names(&workspace.state().control, &workspace).await?;
            Ok(Json(
                api_tokens::list(&workspace.state().control, &workspace)
                    .await?
                    .into_iter()
                    .map(|t| {
                        let n = names.get(&t.user_id).cloned();
                        ApiToken::from_row(t, n)
                    })
                    .collect(),
            ))
        }

        /// Creates an `aura_` token for the caller or a service account. The
        /// secret is in this response only.
        POST "/workspaces/:workspace/tokens"
        async fn create_token(
            workspace: tenant::Path<op::ApiTokenCreate>,
            body: JsonBody<TokenCreate>,
        ) -> Created<ApiTokenCreated> {
            let TokenCreate {
                name,
                scope,
                expires_in_days,
                service_account,
            } = body.0;
            let req = api_tokens::NewToken {
                name: name.into(),
                scope,
                expires_in_days,
                service_account,
            };
            let made = api_tokens::create(&workspace.state().control, &workspace, req).await?;
            Ok(Created::Created(Json(ApiTokenCreated {
                token: ApiToken::from_row(made.row, None),
                secret: made.secret,
            })))
        }

        /// Revokes a token; it fails from the next request on.
        DELETE "/workspaces/:workspace/tokens/:token"
        async fn revoke_token(
            workspace: tenant::Path<op::ApiTokenDelete>,
            token: Path<String>,
        ) -> Done {
            api_tokens::revoke(
                &workspace.state().control,
                &workspace,
                token.parse::<TokenId>()?,
            )
            .await?;
            Ok(Done::Done)
        }

        /// Whether the workspace requires two-factor sign-in.
        GET "/workspaces/:workspace/mfa-policy"
        async fn mfa_policy(workspace: tenant::Path<op::WorkspaceRead>) -> Json<MfaPolicy> {
            let required = members::mfa_policy(&workspace.state().control, &workspace).await?;
            Ok(Json(MfaPolicy { required }))
        }

        /// Requires (or stops requiring) two-factor sign-in (owners). Members
        /// without a second factor then get 403 `mfa-enrolment-required` until
        /// they enrol.
        PUT "/workspaces/:workspace/mfa-policy"
        async fn set_mfa_policy(
            workspace: tenant::Path<op::WorkspaceSettings>,
            body: JsonBody<MfaPolicy>,
        ) -> Json<MfaPolicy> {
            members::set_mfa_policy(&workspace.state().control, &workspace, body.0.required)
                .await?;
            Ok(Json(MfaPolicy {
                required: body.0.required,
            }))
        }
    }
}
