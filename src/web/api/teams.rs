//! A workspace's members and teams over HTTP.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::ShortName;
use super::list::list;
use super::routes::api;
use super::{ApiTags, Done};
use crate::access::{Role, op};
use crate::clock::rfc3339;
use crate::ids::TeamId;
use crate::records::teams;
use crate::store::teams::TeamRow;
use crate::web::tenant;

#[derive(Object)]
pub struct Member {
    pub user_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
}

list!(MemberList of Member);

#[derive(Object)]
pub struct TeamMember {
    pub user_id: String,
    /// `lead` or `member`.
    pub role: String,
}

#[derive(Object)]
pub struct Team {
    pub id: String,
    pub name: String,
    pub members: Vec<TeamMember>,
    pub created_at: String,
}

impl From<TeamRow> for Team {
    fn from(t: TeamRow) -> Self {
        Self {
            id: t.id,
            name: t.name,
            members: t
                .members
                .into_iter()
                .map(|(user_id, role)| TeamMember { user_id, role })
                .collect(),
            created_at: rfc3339(t.created_at),
        }
    }
}

list!(TeamList of Team);

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamCreate {
    pub name: ShortName,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamRole {
    pub role: TeamRoleKind,
}

/// A member's role in a team.
#[derive(poem_openapi::Enum, Deserialize, Clone, Copy)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum TeamRoleKind {
    Lead,
    Member,
}

impl TeamRoleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "lead",
            Self::Member => "member",
        }
    }
}

#[derive(ApiResponse)]
pub enum TeamCreated {
    #[oai(status = 201)]
    Created(Json<Team>),
}

#[derive(Default)]
pub struct TeamsApi;

api! {
    #[OpenApi(tag = "ApiTags::Teams")]
    impl TeamsApi {
        /// The workspace's members and their roles.
        GET "/workspaces/:workspace/members"
        async fn members(workspace: tenant::Path<op::MemberRead>) -> Json<MemberList> {
            let items = teams::members(&workspace.state().control, &workspace).await?;
            Ok(Json(
                items
                    .into_iter()
                    .map(|(u, role)| Member {
                        user_id: u.id.to_string(),
                        email: u.email,
                        name: u.name,
                        role,
                    })
                    .collect(),
            ))
        }

        /// Teams with their leads and members.
        GET "/workspaces/:workspace/teams"
        async fn list(workspace: tenant::Path<op::TeamRead>) -> Json<TeamList> {
            Ok(Json(teams::list(&workspace).await?.into()))
        }

        /// Creates a team (admins).
        POST "/workspaces/:workspace/teams"
        async fn create(
            workspace: tenant::Path<op::TeamCreate>,
            body: JsonBody<TeamCreate>,
        ) -> TeamCreated {
            let t = teams::create(&workspace, &body.0.name).await?;
            Ok(TeamCreated::Created(Json(t.into())))
        }

        /// Deletes a team that owns no collection (admins).
        DELETE "/workspaces/:workspace/teams/:team"
        async fn delete(workspace: tenant::Path<op::TeamDelete>, team: Path<String>) -> Done {
            teams::delete(&workspace, team.parse::<TeamId>()?).await?;
            Ok(Done::Done)
        }

        /// Adds a workspace member to the team, or changes their team role
        /// (admins, or the team's lead).
        PUT "/workspaces/:workspace/teams/:team/members/:user"
        async fn set_member(
            workspace: tenant::Path<op::TeamUpdate>,
            team: Path<String>,
            user: Path<String>,
            body: JsonBody<TeamRole>,
        ) -> Done {
            teams::set_member(
                &workspace.state().control,
                &workspace,
                team.parse::<TeamId>()?,
                &user,
                body.0.role.as_str(),
            )
            .await?;
            Ok(Done::Done)
        }

        /// Removes someone from the team (admins, or the team's lead).
        DELETE "/workspaces/:workspace/teams/:team/members/:user"
        async fn remove_member(
            workspace: tenant::Path<op::TeamUpdate>,
            team: Path<String>,
            user: Path<String>,
        ) -> Done {
            teams::remove_member(&workspace, team.parse::<TeamId>()?, &user).await?;
            Ok(Done::Done)
        }
    }
}
