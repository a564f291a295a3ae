//! The outbox: webhook events queued inside the transaction of the change
//! they describe (`Outbox`, the `AuditHook` that `TenantTx::audit` calls),
//! and the wake-up signal the delivery worker waits on.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use serde_json::{Value, json};

use crate::audit::NewEntry;
use crate::error::Result;
use crate::ids::WorkspaceId;
use crate::store::audit_hook::AuditHook;
use crate::store::tenant::TenantTx;
use crate::store::webhooks::{self, NewDelivery};

struct Signal {
    dirty: Mutex<HashSet<WorkspaceId>>,
    notify: tokio::sync::Notify,
}

fn signal() -> &'static Signal {
    static S: OnceLock<Signal> = OnceLock::new();
    S.get_or_init(|| Signal {
        dirty: Mutex::new(HashSet::new()),
        notify: tokio::sync::Notify::new(),
    })
}

/// The hook `app.rs` gives the `TenantPool`: each workspace audit entry
/// queues its webhook deliveries in its own transaction (`emit`), and the
/// worker is woken once that transaction has committed (`wake`).
pub struct Outbox;

impl AuditHook for Outbox {
    fn appended(&self, t: &TenantTx<'_>, now: i64, entry: &NewEntry<'_>) -> Result<()> {
        emit(t, now, entry)
    }

    fn committed(&self, workspace: WorkspaceId) {
        wake(workspace);
    }
}

/// Tells the worker that a workspace has new work (deliveries, events).
/// Call it after the transaction that stored the work has committed.
pub fn wake(ws: WorkspaceId) {
    if let Ok(mut d) = signal().dirty.lock() {
        d.insert(ws);
    }
    signal().notify.notify_one();
}

/// The workspaces marked since the last call.
pub fn take_dirty() -> HashSet<WorkspaceId> {
    signal()
        .dirty
        .lock()
        .map(|mut d| std::mem::take(&mut *d))
        .unwrap_or_default()
}

pub async fn woken() {
    signal().notify.notified().await;
}

/// Queues a delivery to every endpoint subscribed to this entry's action, in
/// the entry's transaction. Payloads are thin: ids and what the audit entry
/// records, never record values (receivers fetch those with an API token,
/// which keeps the collection's own permissions in force).
pub fn emit(t: &TenantTx<'_>, now: i64, entry: &NewEntry<'_>) -> Result<()> {
    if !super::EVENT_TYPES.contains(&entry.action) {
        return Ok(());
    }
    let endpoints = webhooks::subscribed(t, entry.action)?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let mut data = match entry.after.as_ref().or(entry.before.as_ref()) {
        Some(Value::Object(m)) => Value::Object(m.clone()),
        _ => json!({}),
    };
    // Record values stay out of webhook payloads (the audit entry keeps them,
    // sealed): receivers fetch the record with a token, under the
    // collection's own permissions.
    if let Some(m) = data.as_object_mut() {
        m.remove("values");
    }
    data["workspace_id"] = json!(t.workspace.to_string());
    if let (Some(kind), Some(id)) = (entry.target_type, &entry.target_id) {
        data["object"] = json!(kind);
        data["id"] = json!(id);
    }
    let payload = serde_json::to_vec(&json!({
        "type": entry.action,
        "timestamp": crate::clock::rfc3339(now),
        "data": data,
    }))?;
    let msg_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    for endpoint in endpoints {
        let id = super::new_id();
        webhooks::insert_delivery(
            t,
            t.sealer,
            &NewDelivery {
                id: &id,
                endpoint_id: &endpoint,
                msg_id: &msg_id,
                event_type: entry.action,
                payload: &payload,
                now,
                now_ms: now.saturating_mul(1000),
                redelivery_of: None,
            },
        )?;
    }
    // Woken by `TenantDb::write` once this transaction has committed.
    t.queue_for_worker();
    Ok(())
}
