//! The one permission table: role × action × resource. Route handlers ask it
//! for the least role an operation needs before they open the workspace; the
//! domain code checks the loaded resource itself (a team-owned collection, a
//! collection's own record permissions). `docs/permissions.md` is generated
//! from this table and a test keeps the two equal.

use super::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resource {
    Member,
    Team,
    Collection,
    Record,
    AuditLog,
    ServiceAccount,
    ApiToken,
    Workspace,
    Invitation,
    DataSubject,
    Integration,
    SingleSignOn,
    Scim,
}

impl Resource {
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::Member => "member",
            Resource::Team => "team",
            Resource::Collection => "collection",
            Resource::Record => "record",
            Resource::AuditLog => "audit log",
            Resource::ServiceAccount => "service account",
            Resource::ApiToken => "API token",
            Resource::Workspace => "workspace",
            Resource::Invitation => "invitation",
            Resource::DataSubject => "data subject",
            Resource::Integration => "integration",
            Resource::SingleSignOn => "single sign-on",
            Resource::Scim => "SCIM token",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
    Export,
    Import,
    Verify,
    Settings,
    RotateKey,
    Acknowledge,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
            Action::Export => "export",
            Action::Import => "import",
            Action::Verify => "verify",
            Action::Settings => "settings",
            Action::RotateKey => "rotate key",
            Action::Acknowledge => "acknowledge",
        }
    }
}

pub struct Rule {
    pub resource: Resource,
    pub action: Action,
    pub roles: &'static [Role],
    pub note: &'static str,
}

use Role::{Admin, Manager, Member, Owner, Viewer};

const EVERYONE: &[Role] = &[Owner, Admin, Manager, Member, Viewer];
const WRITERS: &[Role] = &[Owner, Admin, Manager, Member];
const MANAGERS: &[Role] = &[Owner, Admin, Manager];
const ADMINS: &[Role] = &[Owner, Admin];
const OWNERS: &[Role] = &[Owner];

pub const TABLE: &[Rule] = &[
    Rule {
        resource: Resource::Member,
        action: Action::Read,
        roles: EVERYONE,
        note: "the member list (names, emails, roles) of the workspace",
    },
    Rule {
        resource: Resource::Member,
        action: Action::Update,
        roles: ADMINS,
        note: "change a member's role; only an owner grants, changes or removes `owner`, and the last owner stays",
    },
    Rule {
        resource: Resource::Member,
        action: Action::Delete,
        roles: ADMINS,
        note: "remove a member: their sessions reach the workspace no more, their tokens in it are revoked",
    },
    Rule {
        resource: Resource::Invitation,
        action: Action::Read,
        roles: ADMINS,
        note: "list invitations (pending, accepted, revoked)",
    },
    Rule {
        resource: Resource::Invitation,
        action: Action::Create,
        roles: ADMINS,
        note: "invite by email with a role no higher than one's own; only owners invite owners",
    },
    Rule {
        resource: Resource::Invitation,
        action: Action::Delete,
        roles: ADMINS,
        note: "revoke a pending invitation; its link stops working",
    },
    Rule {
        resource: Resource::ServiceAccount,
        action: Action::Read,
        roles: ADMINS,
        note: "list service accounts",
    },
    Rule {
        resource: Resource::ServiceAccount,
        action: Action::Create,
        roles: ADMINS,
        note: "create a service account with a role no higher than the creator's",
    },
    Rule {
        resource: Resource::ApiToken,
        action: Action::Read,
        roles: ADMINS,
        note: "list the workspace's API tokens (names, scopes, expiry, last use; never the secret)",
    },
    Rule {
        resource: Resource::ApiToken,
        action: Action::Create,
        roles: ADMINS,
        note: "create a token for oneself or a service account, scoped no higher than the creator's role",
    },
    Rule {
        resource: Resource::ApiToken,
        action: Action::Delete,
        roles: ADMINS,
        note: "revoke a token; it stops working on the next request",
    },
    Rule {
        resource: Resource::Scim,
        action: Action::Read,
        roles: ADMINS,
        note: "whether the workspace has a SCIM token for its identity provider, when it was issued and last used (never the secret)",
    },
    Rule {
        resource: Resource::Scim,
        action: Action::Create,
        roles: ADMINS,
        note: "issue or rotate the SCIM token: the identity provider then creates, deactivates and removes members and manages teams",
    },
    Rule {
        resource: Resource::Scim,
        action: Action::Delete,
        roles: ADMINS,
        note: "revoke the SCIM token; the provider's next request is refused",
    },
    Rule {
        resource: Resource::Workspace,
        action: Action::Read,
        roles: EVERYONE,
        note: "the workspace's settings, such as whether it requires two-factor sign-in",
    },
    Rule {
        resource: Resource::Workspace,
        action: Action::Settings,
        roles: OWNERS,
        note: "require two-factor sign-in: members without it reach nothing until they enrol",
    },
    Rule {
        resource: Resource::SingleSignOn,
        action: Action::Read,
        roles: ADMINS,
        note: "the workspace's OpenID provider settings and mappings (never the client secret)",
    },
    Rule {
        resource: Resource::SingleSignOn,
        action: Action::Update,
        roles: ADMINS,
        note: "set the workspace's OpenID provider, its role and team mappings, provisioning, and whether it requires single sign-on (with a break-glass owner)",
    },
    Rule {
        resource: Resource::SingleSignOn,
        action: Action::Delete,
        roles: ADMINS,
        note: "remove the workspace's OpenID provider, and with it any single sign-on requirement",
    },
    Rule {
        resource: Resource::Workspace,
        action: Action::Delete,
        roles: OWNERS,
        note: "schedule the workspace's deletion (read-only through the grace period, then its key is destroyed) or cancel it",
    },
    Rule {
        resource: Resource::Workspace,
        action: Action::RotateKey,
        roles: OWNERS,
        note: "rotate the workspace's data key: new writes use a new key at once, old values are re-sealed in the background, then the old key is destroyed",
    },
    Rule {
        resource: Resource::Workspace,
        action: Action::Acknowledge,
        roles: EVERYONE,
        note: "acknowledge an incident notice shown on the workspace's pages",
    },
    Rule {
        resource: Resource::Team,
        action: Action::Read,
        roles: EVERYONE,
        note: "team names, leads and members",
    },
    Rule {
        resource: Resource::Team,
        action: Action::Create,
        roles: ADMINS,
        note: "create teams",
    },
    Rule {
        resource: Resource::Team,
        action: Action::Update,
        roles: ADMINS,
        note: "add and remove team members; a team's lead may also manage its own team's members",
    },
    Rule {
        resource: Resource::Team,
        action: Action::Delete,
        roles: ADMINS,
        note: "delete a team that owns no collection",
    },
    Rule {
        resource: Resource::Collection,
        action: Action::Read,
        roles: EVERYONE,
        note: "see a collection and its schema; a team-owned one only its team's lead and members see",
    },
    Rule {
        resource: Resource::Collection,
        action: Action::Create,
        roles: MANAGERS,
        note: "define a collection (owned by the workspace or a team)",
    },
    Rule {
        resource: Resource::Collection,
        action: Action::Update,
        roles: MANAGERS,
        note: "change the schema and the record permissions; in a team-owned collection, the team's lead",
    },
    Rule {
        resource: Resource::Collection,
        action: Action::Delete,
        roles: ADMINS,
        note: "delete a collection and all its records",
    },
    Rule {
        resource: Resource::Record,
        action: Action::Read,
        roles: EVERYONE,
        note: "default; each collection sets its own list (search and CSV export follow it)",
    },
    Rule {
        resource: Resource::Record,
        action: Action::Create,
        roles: WRITERS,
        note: "default; each collection sets its own list (CSV import needs it too)",
    },
    Rule {
        resource: Resource::Record,
        action: Action::Update,
        roles: WRITERS,
        note: "default; each collection sets its own list (restoring a version is an update)",
    },
    Rule {
        resource: Resource::Record,
        action: Action::Delete,
        roles: MANAGERS,
        note: "default; each collection sets its own list",
    },
    Rule {
        resource: Resource::Record,
        action: Action::Export,
        roles: EVERYONE,
        note: "CSV export, for those the collection lets read",
    },
    Rule {
        resource: Resource::Record,
        action: Action::Import,
        roles: WRITERS,
        note: "CSV import, for those the collection lets create",
    },
    Rule {
        resource: Resource::AuditLog,
        action: Action::Read,
        roles: ADMINS,
        note: "search and read the workspace's audit entries (a collection's values only for those who may read its records)",
    },
    Rule {
        resource: Resource::AuditLog,
        action: Action::Export,
        roles: ADMINS,
        note: "export the audit log (itself audited)",
    },
    Rule {
        resource: Resource::AuditLog,
        action: Action::Verify,
        roles: ADMINS,
        note: "verify the chain now",
    },
    Rule {
        resource: Resource::AuditLog,
        action: Action::Settings,
        roles: OWNERS,
        note: "set the retention period",
    },
    Rule {
        resource: Resource::Workspace,
        action: Action::Export,
        roles: ADMINS,
        note: "export the workspace as one archive (members, teams, the collections and records the requester may read, the audit log; itself audited)",
    },
    Rule {
        resource: Resource::DataSubject,
        action: Action::Read,
        roles: ADMINS,
        note: "find every record that refers to a person by a pii value, in every collection the requester may read (audited)",
    },
    Rule {
        resource: Resource::DataSubject,
        action: Action::Export,
        roles: ADMINS,
        note: "export a person's records (those the requester may read) with their history and audit entries as JSON (audited)",
    },
    Rule {
        resource: Resource::DataSubject,
        action: Action::Delete,
        roles: ADMINS,
        note: "anonymise a person: pii values become a keyed pseudonym, in records, versions and audit details (audited)",
    },
    Rule {
        resource: Resource::Integration,
        action: Action::Read,
        roles: ADMINS,
        note: "list integration secrets (name, last 4 characters, times; never a value), webhook endpoints and their delivery log, inbound integrations and their received events",
    },
    Rule {
        resource: Resource::Integration,
        action: Action::Create,
        roles: ADMINS,
        note: "store a secret, subscribe a webhook endpoint, create an inbound integration (a generated secret is shown once)",
    },
    Rule {
        resource: Resource::Integration,
        action: Action::Update,
        roles: ADMINS,
        note: "rotate a secret or an endpoint's signing secret (the previous one works for an overlap), redeliver a webhook message",
    },
    Rule {
        resource: Resource::Integration,
        action: Action::Delete,
        roles: ADMINS,
        note: "delete a secret (not while an inbound integration uses it), an endpoint or an inbound integration",
    },
];

fn rule(resource: Resource, action: Action) -> Option<&'static Rule> {
    TABLE
        .iter()
        .find(|r| r.resource == resource && r.action == action)
}

/// The roles the table allows; none for a pair it does not list.
pub fn roles_for(resource: Resource, action: Action) -> Vec<Role> {
    rule(resource, action)
        .map(|r| r.roles.to_vec())
        .unwrap_or_default()
}

pub fn allows(role: Role, resource: Resource, action: Action) -> bool {
    rule(resource, action).is_some_and(|r| r.roles.contains(&role))
}

/// The least privileged role allowed (role lists are always "this role and
/// every higher one"), for the route's first narrowing. A pair missing from
/// the table needs `Owner`, so forgetting a rule fails closed.
pub fn needs(resource: Resource, action: Action) -> Role {
    rule(resource, action)
        .and_then(|r| r.roles.iter().max().copied())
        .unwrap_or(Role::Owner)
}

/// The table as Markdown, for `docs/permissions.md`.
pub fn markdown() -> String {
    let mut out = String::from("| Resource | Action |");
    for r in Role::ALL {
        out.push_str(&format!(" {r} |"));
    }
    out.push_str(" Notes |\n|---|---|");
    for _ in Role::ALL {
        out.push_str(":-:|");
    }
    out.push_str("---|\n");
    for rule in TABLE {
        out.push_str(&format!(
            "| {} | {} |",
            rule.resource.as_str(),
            rule.action.as_str()
        ));
        for r in Role::ALL {
            out.push_str(if rule.roles.contains(&r) {
                " ✔ |"
            } else {
                " — |"
            });
        }
        out.push_str(&format!(" {} |\n", rule.note));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_lists_are_contiguous_from_owner() {
        for r in TABLE {
            let want: Vec<Role> = Role::ALL
                .into_iter()
                .filter(|x| x.at_least(needs(r.resource, r.action)))
                .collect();
            assert_eq!(r.roles, want.as_slice(), "{:?} {:?}", r.resource, r.action);
        }
    }

    #[test]
    fn docs_are_generated_from_the_table() {
        let doc = include_str!("../../docs/permissions.md");
        let table = markdown();
        if !doc.contains(&table) {
            panic!("docs/permissions.md is out of date; replace its table with:\n\n{table}");
        }
    }
}
