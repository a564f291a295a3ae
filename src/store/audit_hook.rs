//! What runs beside each audit entry of a workspace write. The store calls
//! the hook; the layer that owns the work (`integrations::outbox`, installed
//! by `app.rs` when it builds the `TenantPool`) implements it. So the store
//! imports nothing above it, and the webhook events of a change are still
//! written in the transaction of its audit entry.

use super::tenant::TenantTx;
use crate::error::Result;
use crate::ids::WorkspaceId;
use crate::model::audit::NewEntry;

pub trait AuditHook: Send + Sync {
    /// Runs inside `t`, right after `entry` was appended to the chain: what it
    /// writes commits or rolls back with the entry.
    fn appended(&self, t: &TenantTx<'_>, now: i64, entry: &NewEntry<'_>) -> Result<()>;

    /// Runs after a transaction that called `TenantTx::queue_for_worker`
    /// has committed (never before: work woken early reads a snapshot
    /// without the new rows).
    fn committed(&self, workspace: WorkspaceId);
}
