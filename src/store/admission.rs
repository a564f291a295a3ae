//! The store's half of the door to a workspace: `TenantPool::open` takes an
//! `Admission`, a plain value the store can name without knowing the access
//! layer above it. The access layer's `Grant` (membership, MFA, role and
//! frozen state checked) is what produces one.

use crate::ids::WorkspaceId;
use crate::model::Frozen;

/// Leave to open one workspace's database: which workspace, and whether it is
/// read-only for this caller. Only `access::Grant` produces one (`From<Grant>`
/// in `access::admission`): scripts/check-layers fails on `Admission::new`
/// anywhere outside src/access/ (and this file), so a `TenantDb` still exists
/// only for a verified grant.
#[derive(Clone, Copy, Debug)]
pub struct Admission {
    workspace: WorkspaceId,
    frozen: Option<Frozen>,
}

impl Admission {
    pub fn new(workspace: WorkspaceId, frozen: Option<Frozen>) -> Self {
        Self { workspace, frozen }
    }

    pub fn workspace(&self) -> WorkspaceId {
        self.workspace
    }

    /// Why the handle refuses writes, if it does.
    pub fn frozen(&self) -> Option<Frozen> {
        self.frozen
    }
}

impl From<&Admission> for Admission {
    fn from(a: &Admission) -> Self {
        *a
    }
}
