//! Team places, and the one place that says which role (`model::Role`,
//! re-exported here) a request acts with where a team place applies: the
//! holder's role raised by their team place, then capped by the scope of the
//! API token the request came with (`effective`).

pub use crate::model::Role;

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

#[cfg(test)]
mod tests {
    use super::*;

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
