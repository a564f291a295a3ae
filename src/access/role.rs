//! Workspace roles, from most to least privileged, and the one place that
//! says which role a request acts with where a team place applies: the
//! holder's role raised by their team place, then capped by the scope of the
//! API token the request came with (`effective`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::Error;

#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    poem_openapi::Enum,
)]
#[serde(rename_all = "lowercase")]
#[oai(rename_all = "lowercase")]
pub enum Role {
    Owner,
    Admin,
    Manager,
    Member,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Owner,
        Role::Admin,
        Role::Manager,
        Role::Member,
        Role::Viewer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Admin => "admin",
            Role::Manager => "manager",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// True when `self` has at least the privileges of `other`.
    pub fn at_least(self, other: Role) -> bool {
        self <= other
    }
}

/// A person's place in a team.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TeamPlace {
    /// Leads the team: acts at least as a manager in what the team owns, and
    /// manages the team's members.
    Lead,
    Member,
}

impl TeamPlace {
    /// `lead` or `member` as stored; anything else is no place.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "lead" => Some(TeamPlace::Lead),
            "member" => Some(TeamPlace::Member),
            _ => None,
        }
    }
}

/// The role a request acts with: the holder's workspace role, raised to
/// manager where they lead the team in question, and never above `cap`, the
/// scope of the API token the request came with. Every role a request can
/// reach (workspace, collection, team) is computed here, so a token's scope
/// caps them all.
pub fn effective(workspace: Role, place: Option<TeamPlace>, cap: Option<Role>) -> Role {
    let raised = match place {
        Some(TeamPlace::Lead) => workspace.min(Role::Manager),
        _ => workspace,
    };
    // `Ord` runs from most to least privileged: the larger is the lesser.
    cap.map_or(raised, |c| raised.max(c))
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::field(
                    "role",
                    "must be one of owner, admin, manager, member, viewer",
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordering_and_parsing() {
        assert!(Role::Owner.at_least(Role::Admin));
        assert!(!Role::Viewer.at_least(Role::Member));
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn a_token_scope_caps_team_places() {
        use Role::*;
        let lead = Some(TeamPlace::Lead);
        let member = Some(TeamPlace::Member);
        assert_eq!(effective(Member, lead, None), Manager);
        assert_eq!(effective(Admin, lead, None), Admin);
        assert_eq!(effective(Member, member, None), Member);
        assert_eq!(effective(Member, lead, Some(Viewer)), Viewer);
        assert_eq!(effective(Member, lead, Some(Member)), Member);
        assert_eq!(effective(Admin, lead, Some(Manager)), Manager);
        assert_eq!(effective(Viewer, None, Some(Admin)), Viewer);
    }
}
