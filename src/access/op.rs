//! One zero-sized type per workspace operation, each carrying what the door
//! needs to know about it: the resource and action of the permission table
//! (`permissions::TABLE`), the label a refusal is audited under, whether the
//! loaded resource has the last word (a collection's own permissions, a
//! team's lead), whether it hands out access that outlives the request, and
//! whether a read-only workspace still allows it. A handler names its
//! operation in its signature (`Tenant<op::RecordCreate>`), so there are no
//! free-text labels to match and no role written twice.

use super::Role;
use super::permissions::{Action, Resource, needs};

/// What an operation is, for the door (`access::enter::enter`).
pub trait Op: Send + Sync + 'static {
    const RESOURCE: Resource;
    const ACTION: Action;
    /// The label a refusal is recorded under (`access.denied`'s `attempted`).
    const LABEL: &'static str;
    /// The loaded resource decides (a collection's record permissions, a
    /// team's lead): the door lets every member through and the domain code
    /// checks the resource it loaded, recording its own refusal.
    const RESOURCE_DECIDES: bool = false;
    /// Hands out access lasting beyond the request (tokens, invitations,
    /// roles, team places, integrations): never while impersonating.
    const GRANTS_ACCESS: bool = false;
    /// Allowed in a read-only workspace (being deleted or moved), besides
    /// reading, exporting and verifying, which always are.
    const WHILE_FROZEN: bool = false;

    /// The least role the door lets through.
    fn needs() -> Role {
        if Self::RESOURCE_DECIDES {
            Role::Viewer
        } else {
            needs(Self::RESOURCE, Self::ACTION)
        }
    }

    /// Whether a read-only workspace allows this operation.
    fn allowed_while_frozen() -> bool {
        Self::WHILE_FROZEN || matches!(Self::ACTION, Action::Read | Action::Export | Action::Verify)
    }
}

macro_rules! ops {
    ($( $(#[$doc:meta])* $name:ident = $res:ident $act:ident $label:literal $({ $($flag:ident),* })?; )*) => {
        $(
            $(#[$doc])*
            pub struct $name;
            impl Op for $name {
                const RESOURCE: Resource = Resource::$res;
                const ACTION: Action = Action::$act;
                const LABEL: &'static str = $label;
                $($(const $flag: bool = true;)*)?
            }
        )*

        /// Every operation, for the tests that keep this list and the
        /// permission table in step: (resource, action, label).
        pub const ALL: &[(Resource, Action, &str)] = &[
            $( (Resource::$res, Action::$act, $label), )*
        ];
    };
}

ops! {
    MemberRead = Member Read "member.read";
    MemberUpdate = Member Update "member.update" { GRANTS_ACCESS };
    MemberDelete = Member Delete "member.delete";
    InvitationRead = Invitation Read "invitation.read";
    InvitationCreate = Invitation Create "invitation.create" { GRANTS_ACCESS };
    InvitationDelete = Invitation Delete "invitation.delete";
    ServiceAccountRead = ServiceAccount Read "service_account.read";
    ServiceAccountCreate = ServiceAccount Create "service_account.create" { GRANTS_ACCESS };
    ApiTokenRead = ApiToken Read "api_token.read";
    ApiTokenCreate = ApiToken Create "api_token.create" { GRANTS_ACCESS };
    ApiTokenDelete = ApiToken Delete "api_token.delete";
    ScimTokenRead = Scim Read "scim.read";
    /// Issuing or rotating the SCIM token hands the identity provider
    /// lasting control of the workspace's members.
    ScimTokenIssue = Scim Create "scim.token_issue" { GRANTS_ACCESS };
    ScimTokenRevoke = Scim Delete "scim.token_revoke";
    WorkspaceRead = Workspace Read "workspace.read";
    WorkspaceSettings = Workspace Settings "workspace.settings";
    WorkspaceDelete = Workspace Delete "workspace.delete";
    SsoRead = SingleSignOn Read "sso.read";
    SsoUpdate = SingleSignOn Update "sso.update" { GRANTS_ACCESS };
    SsoDelete = SingleSignOn Delete "sso.delete";
    /// Cancelling a scheduled deletion: the one change a workspace being
    /// deleted allows.
    WorkspaceDeletionCancel = Workspace Delete "workspace.deletion" { WHILE_FROZEN };
    WorkspaceExport = Workspace Export "workspace.export";
    WorkspaceRotateKey = Workspace RotateKey "keys.rotate";
    /// Reading the workspace's incident notices.
    IncidentRead = Workspace Read "incident.read";
    /// Acknowledging an incident notice: every member may.
    IncidentAcknowledge = Workspace Acknowledge "incident.acknowledge" { WHILE_FROZEN };
    TeamRead = Team Read "team.read";
    TeamCreate = Team Create "team.create";
    /// Admins, or the team's own lead (checked on the loaded team).
    TeamUpdate = Team Update "team.update" { GRANTS_ACCESS, RESOURCE_DECIDES };
    TeamDelete = Team Delete "team.delete";
    CollectionRead = Collection Read "collection.read";
    CollectionCreate = Collection Create "collection.create";
    /// Managers, or the owning team's lead (checked on the loaded collection).
    CollectionUpdate = Collection Update "collection.update" { RESOURCE_DECIDES };
    CollectionDelete = Collection Delete "collection.delete";
    RecordRead = Record Read "records.read" { RESOURCE_DECIDES };
    RecordCreate = Record Create "records.create" { RESOURCE_DECIDES };
    RecordUpdate = Record Update "records.update" { RESOURCE_DECIDES };
    RecordDelete = Record Delete "records.delete" { RESOURCE_DECIDES };
    /// Undoing a deletion: whoever may delete may undo.
    RecordUndelete = Record Delete "records.undelete" { RESOURCE_DECIDES };
    RecordExport = Record Export "records.export";
    RecordImport = Record Import "records.import";
    AuditRead = AuditLog Read "audit.read";
    AuditExport = AuditLog Export "audit.export";
    AuditVerify = AuditLog Verify "audit.verify";
    AuditSettings = AuditLog Settings "audit.settings";
    DataSubjectRead = DataSubject Read "data_subject.read";
    DataSubjectExport = DataSubject Export "data_subject.export";
    DataSubjectDelete = DataSubject Delete "data_subject.anonymise";
    IntegrationRead = Integration Read "integration.read";
    IntegrationCreate = Integration Create "integration.create" { GRANTS_ACCESS };
    IntegrationUpdate = Integration Update "integration.update" { GRANTS_ACCESS };
    IntegrationDelete = Integration Delete "integration.delete";
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::access::permissions::TABLE;

    #[test]
    fn every_operation_is_in_the_permission_table() {
        for (res, act, label) in ALL {
            assert!(
                TABLE.iter().any(|r| r.resource == *res && r.action == *act),
                "{label}: {res:?} {act:?} has no row in permissions::TABLE"
            );
        }
    }

    #[test]
    fn every_table_row_has_an_operation() {
        for r in TABLE {
            assert!(
                ALL.iter()
                    .any(|(res, act, _)| r.resource == *res && r.action == *act),
                "{:?} {:?} has no operation in access::op",
                r.resource,
                r.action
            );
        }
    }

    #[test]
    fn labels_are_unique() {
        let mut labels: Vec<&str> = ALL.iter().map(|(_, _, l)| *l).collect();
        labels.sort_unstable();
        let n = labels.len();
        labels.dedup();
        assert_eq!(n, labels.len(), "two operations share a label");
    }
}
