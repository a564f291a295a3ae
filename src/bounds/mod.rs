//! Bounds on the heavy data paths, so no caller can exhaust the appliance
//! through them (issue 27, findings 4 to 7): a bounded pool per kind of
//! heavy work (search, streamed exports, bulk audit/export jobs), each with
//! its own thread budget instead of tokio's shared blocking pool, a waiting
//! queue of fixed length that sheds with 429 and `Retry-After`, and per-key
//! caps (streamed exports per workspace). The numbers come from
//! `[data_limits]` (docs/operations.md, "Limits: data paths").

pub mod paced;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::DataLimitsConfig;
use crate::error::{Error, Result};

/// What a shed caller is told to wait before trying again.
const RETRY_AFTER_SECS: u64 = 2;
/// The longest a queued caller waits for a slot before it is shed.
const MAX_QUEUE_WAIT: Duration = Duration::from_secs(30);

/// A fixed number of slots for one kind of work, and a queue of fixed length
/// in front of them. A slot is held until the work really ends (a blocking
/// closure keeps it even when its caller has gone), so the bound holds for
/// threads, not just for requests.
pub struct Pool {
    name: &'static str,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    queue: usize,
}

/// A held slot; dropping it frees the slot.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(name: &'static str, slots: usize, queue: usize) -> Self {
        Self {
            name,
            slots: Arc::new(Semaphore::new(slots.max(1))),
            waiting: AtomicUsize::new(0),
            queue,
        }
    }

    /// Slots free now (for metrics and tests).
    pub fn available(&self) -> usize {
        self.slots.available_permits()
    }

    /// Takes a slot, waiting in the queue if there is room; 429 otherwise.
    pub async fn slot(&self) -> Result<Slot> {
        if let Ok(p) = Arc::clone(&self.slots).try_acquire_owned() {
            return Ok(Slot { _permit: p });
        }
        let shed = || {
            tracing::warn!(pool = self.name, "bounded pool full: request shed");
            Error::RateLimited {
                retry_after_secs: RETRY_AFTER_SECS,
            }
        };
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(shed());
        }
        let got =
            tokio::time::timeout(MAX_QUEUE_WAIT, Arc::clone(&self.slots).acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        match got {
            Ok(Ok(p)) => Ok(Slot { _permit: p }),
            _ => Err(shed()),
        }
    }

    /// Runs `f` on a blocking thread while holding a slot of this pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T> + Send + 'static,
    {
        let slot = self.slot().await?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            f()
        })
        .await?
    }
}

/// At most `cap` holders per key (a workspace id); the guard gives its place
/// back when dropped.
pub struct KeyedCap {
    cap: usize,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

pub struct KeyedGuard {
    key: String,
    held: Arc<Mutex<HashMap<String, usize>>>,
}

impl KeyedCap {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            held: Arc::default(),
        }
    }

    /// A place for `key`, or 429 when it holds `cap` already.
    pub fn take(&self, key: &str) -> Result<KeyedGuard> {
        let mut held = self
            .held
            .lock()
            .map_err(|_| Error::internal("keyed cap lock poisoned"))?;
        let n = held.entry(key.to_owned()).or_insert(0);
        if *n >= self.cap {
            return Err(Error::RateLimited {
                retry_after_secs: RETRY_AFTER_SECS,
            });
        }
        *n += 1;
        Ok(KeyedGuard {
            key: key.to_owned(),
            held: Arc::clone(&self.held),
        })
    }
}

impl Drop for KeyedGuard {
    fn drop(&mut self) {
        if let Ok(mut held) = self.held.lock() {
            if let Some(n) = held.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    held.remove(&self.key);
                }
            }
        }
    }
}

/// The pools and caps of the data paths, built once from the config.
pub struct DataBounds {
    pub limits: DataLimitsConfig,
    /// Record and audit searches.
    pub search: Pool,
    /// Streamed exports (collection CSV, audit NDJSON/CSV), in all.
    pub exports: Pool,
    /// The same per workspace.
    pub exports_per_workspace: KeyedCap,
    /// Audit verifications and workspace archive exports.
    pub bulk: Pool,
}

impl DataBounds {
    pub fn new(limits: &DataLimitsConfig) -> Self {
        Self {
            search: Pool::new("search", limits.search_concurrent, limits.search_queue),
            // A streamed export does not queue: its caller would hold a
            // connection while it waits.
            exports: Pool::new("exports", limits.export_concurrent, 0),
            exports_per_workspace: KeyedCap::new(limits.export_concurrent_per_workspace),
            bulk: Pool::new("bulk", limits.bulk_concurrent, limits.bulk_queue),
            limits: limits.clone(),
        }
    }

    /// The slots one streamed export holds until its body ends.
    pub async fn export_slot(&self, workspace: &str) -> Result<ExportSlot> {
        let per_ws = self.exports_per_workspace.take(workspace)?;
        let slot = self.exports.slot().await?;
        Ok(ExportSlot {
            _slot: slot,
            _per_ws: per_ws,
        })
    }

    pub fn search_budget(&self) -> Duration {
        Duration::from_millis(self.limits.search_time_budget_ms)
    }
}

/// Held by a streamed export's producer; released when it ends.
pub struct ExportSlot {
    _slot: Slot,
    _per_ws: KeyedGuard,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_pool_sheds_beyond_its_queue_and_frees_slots_on_drop() {
        let p = Pool::new("t", 1, 0);
        let held = p.slot().await.unwrap();
        assert!(matches!(p.slot().await, Err(Error::RateLimited { .. })));
        drop(held);
        assert!(p.slot().await.is_ok());
    }

    #[test]
    fn a_keyed_cap_counts_per_key() {
        let c = KeyedCap::new(2);
        let a1 = c.take("a").unwrap();
        let _a2 = c.take("a").unwrap();
        assert!(c.take("a").is_err());
        assert!(c.take("b").is_ok());
        drop(a1);
        assert!(c.take("a").is_ok());
    }
}
