//! The start-up sweep of sealed files: before the server takes its first
//! request, each workspace's `files/` loses the sealed files no `files` row
//! names (a crash between a commit and the removal of what it dropped, or
//! between placing an upload and its commit) and every `files/tmp/*.part`
//! (uploads a stop cut short). No upload can be running then, so nothing an
//! upload is about to commit is ever taken; while the server runs, uploads
//! clear their own temporary files and stale ones (`store::files`).

use crate::access::SystemTask;
use crate::error::Result;
use crate::store::control::Control;
use crate::store::files as fstore;
use crate::store::tenant::TenantPool;

/// Sweeps every workspace that has a `files/` directory; returns how many
/// files went. Blocking. A workspace that fails is logged and passed over.
pub fn sweep_all(control: &Control, tenants: &TenantPool) -> Result<usize> {
    let mut gone = 0;
    for ws in control.db.read(crate::store::control::workspace_ids)? {
        let dir = tenants.tenants_dir().join(ws.to_string());
        if !fstore::dir(&dir).is_dir() {
            continue;
        }
        let swept = tenants
            .visit(control, &SystemTask::FileSweep.grant(ws))
            .and_then(|t| t.read_blocking(|c, _| fstore::sweep(c, &t.files(), true)));
        match swept {
            Ok(n) => {
                if n > 0 {
                    tracing::info!(workspace = %ws, files = n, "orphaned sealed files removed");
                }
                gone += n;
            }
            Err(e) => tracing::warn!(workspace = %ws, error = %e, "file sweep failed"),
        }
    }
    Ok(gone)
}
