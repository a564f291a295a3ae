//! A workspace's single sign-on over HTTP: its OpenID provider, mappings
//! and policy (owners and admins). docs/identity.md.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::routes::api;
use super::{ApiTags, Done};
use crate::access::{Role, Via, op};
use crate::app::AppState;
use crate::clock::rfc3339;
use crate::identity::sso::{self, RoleMapping, Settings, SsoChange, SsoView, TeamMapping};
use crate::ids::UserId;
use crate::web::session::SignedIn;
use crate::web::tenant;

/// A group of the provider mapped to a workspace role (never owner).
#[derive(Object, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SsoRoleMapping {
    #[oai(validator(min_length = 1, max_length = 256))]
    pub group: String,
    pub role: Role,
}

/// A group of the provider mapped to a team of the workspace (its id).
#[derive(Object, Deserialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct SsoTeamMapping {
    #[oai(validator(min_length = 1, max_length = 256))]
    pub group: String,
    #[oai(validator(min_length = 1, max_length = 64))]
    pub team: String,
}

/// The workspace's provider as written. `client_secret` may be left out
/// to keep the stored one; it is never read back.
#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SsoInput {
    /// The issuer URL (`https://login.example.com/realms/acme`); its
    /// `/.well-known/openid-configuration` must name this very issuer.
    #[oai(validator(min_length = 1, max_length = 2048))]
    pub issuer: String,
    #[oai(validator(min_length = 1, max_length = 255))]
    pub client_id: String,
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub client_secret: Option<String>,
    /// Scopes asked for besides `openid` (default: email, profile).
    #[oai(default = "default_scopes", validator(max_items = 20))]
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Email domains accepted (lower case); empty accepts any verified email.
    #[oai(default, validator(max_items = 50))]
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// The role of a person the provider brings in (never owner).
    #[oai(default = "default_role")]
    #[serde(default = "default_role")]
    pub default_role: Role,
    /// Whether a person with no account or membership gets one at first
    /// sign-in (just-in-time provisioning).
    #[oai(default)]
    #[serde(default)]
    pub provisioning: bool,
    /// The claim holding the person's groups.
    #[oai(
        default = "default_groups_claim",
        validator(min_length = 1, max_length = 64)
    )]
    #[serde(default = "default_groups_claim")]
    pub groups_claim: String,
    #[oai(default, validator(max_items = 100))]
    #[serde(default)]
    pub role_mappings: Vec<SsoRoleMapping>,
    #[oai(default, validator(max_items = 100))]
    #[serde(default)]
    pub team_mappings: Vec<SsoTeamMapping>,
    /// Members may sign in to this workspace only through the provider
    /// (service accounts and `break_glass` excepted).
    #[oai(default)]
    #[serde(default)]
    pub require_sso: bool,
    /// An owner who may still sign in with a password or passkey (every
    /// use audited); required with `require_sso`.
    pub break_glass: Option<String>,
}

fn default_scopes() -> Vec<String> {
    vec!["email".into(), "profile".into()]
}

fn default_role() -> Role {
    Role::Member
}

fn default_groups_claim() -> String {
    "groups".into()
}

/// The workspace's provider as read (no secret).
#[derive(Object)]
pub struct SsoSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret_set: bool,
    pub scopes: Vec<String>,
    pub allowed_domains: Vec<String>,
    pub default_role: Role,
    pub provisioning: bool,
    pub groups_claim: String,
    pub role_mappings: Vec<SsoRoleMapping>,
    pub team_mappings: Vec<SsoTeamMapping>,
    pub require_sso: bool,
    pub break_glass: Option<String>,
    /// Where the provider sends people back (register it there).
    pub redirect_uri: String,
    /// The link people sign in to this workspace with.
    pub sign_in_url: String,
    pub updated_at: String,
}

pub fn view(state: &AppState, ws: crate::ids::WorkspaceId, v: SsoView) -> SsoSettings {
    let base = state.config.public_url.trim_end_matches('/');
    SsoSettings {
        issuer: v.settings.issuer,
        client_id: v.settings.client_id,
        client_secret_set: true,
        scopes: v.settings.scopes,
        allowed_domains: v.settings.allowed_domains,
        default_role: v.settings.default_role,
        provisioning: v.settings.provisioning,
        groups_claim: v.settings.groups_claim,
        role_mappings: v
            .settings
            .role_mappings
            .into_iter()
            .map(|m| SsoRoleMapping {
                group: m.group,
                role: m.role,
            })
            .collect(),
        team_mappings: v
            .settings
            .team_mappings
            .into_iter()
            .map(|m| SsoTeamMapping {
                group: m.group,
                team: m.team,
            })
            .collect(),
        require_sso: v.require_sso,
        break_glass: v.break_glass.map(|b| b.to_string()),
        redirect_uri: format!("{base}/auth/oidc/callback"),
        sign_in_url: format!("{base}{}", sso::start_link(ws)),
        updated_at: rfc3339(v.updated_at),
    }
}

impl SsoInput {
    pub fn into_change(self) -> Result<SsoChange, crate::error::Error> {
        let break_glass = self
            .break_glass
            .filter(|b| !b.is_empty())
            .map(|b| {
                b.parse::<UserId>()
                    .map_err(|_| crate::error::Error::field("break_glass", "is not a member's id"))
            })
            .transpose()?;
        Ok(SsoChange {
            settings: Settings {
                issuer: self.issuer,
                client_id: self.client_id,
                scopes: self.scopes,
                allowed_domains: self.allowed_domains,
                default_role: self.default_role,
                provisioning: self.provisioning,
                groups_claim: self.groups_claim,
                role_mappings: self
                    .role_mappings
                    .into_iter()
                    .map(|m| RoleMapping {
                        group: m.group,
                        role: m.role,
                    })
                    .collect(),
                team_mappings: self
                    .team_mappings
                    .into_iter()
                    .map(|m| TeamMapping {
                        group: m.group,
                        team: m.team,
                    })
                    .collect(),
            },
            client_secret: self.client_secret,
            require_sso: self.require_sso,
            break_glass,
        })
    }
}

/// Whether the caller signed in through this workspace's provider.
pub fn signed_in_by_sso(who: &SignedIn, ws: crate::ids::WorkspaceId) -> bool {
    matches!(&who.0.via, Via::Session { sso: Some(m), .. } if m.workspace == ws)
}

#[derive(Default)]
pub struct SsoApi;

api! {
    #[OpenApi(tag = "ApiTags::Access")]
    impl SsoApi {
        /// The workspace's OpenID provider, mappings and policy (owners and
        /// admins); 404 when it has none.
        GET "/workspaces/:workspace/sso"
        async fn get_sso(workspace: tenant::Path<op::SsoRead>) -> Json<SsoSettings> {
            let v = sso::get(&workspace.state().control, &workspace).await?;
            Ok(Json(view(workspace.state(), workspace.db.id(), v)))
        }

        /// Sets the workspace's OpenID provider (owners and admins). Requiring
        /// single sign-on needs a break-glass owner, and a caller signed in
        /// through the provider (or the break-glass owner themself).
        PUT "/workspaces/:workspace/sso"
        async fn put_sso(
            workspace: tenant::Path<op::SsoUpdate>,
            who: SignedIn,
            body: JsonBody<SsoInput>,
        ) -> Json<SsoSettings> {
            let ws = workspace.db.id();
            let change = body.0.into_change()?;
            let by_sso = signed_in_by_sso(&who, ws);
            let v = sso::put(
                &workspace.state().control,
                &workspace.state().config.file.sso,
                &workspace,
                by_sso,
                change,
            )
            .await?;
            Ok(Json(view(workspace.state(), ws, v)))
        }

        /// Removes the workspace's OpenID provider and any SSO requirement.
        DELETE "/workspaces/:workspace/sso"
        async fn delete_sso(workspace: tenant::Path<op::SsoDelete>) -> Done {
            sso::delete(&workspace.state().control, &workspace).await?;
            Ok(Done::Done)
        }
    }
}
