//! Open indexes by key, capped in number and dropped with their workspace.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::{Liveness, MemIndex, sealed_dir};
use crate::crypto::Sealer;
use crate::error::{Error, Result};

/// One key's index, opened once even when searches race for it.
type Slot = Arc<Mutex<Option<Arc<Mutex<MemIndex>>>>>;

pub(super) struct Entry {
    slot: Slot,
    alive: Option<Liveness>,
}

impl Entry {
    fn in_use(&self) -> bool {
        match self.slot.try_lock() {
            Ok(s) => s.as_ref().is_some_and(|i| Arc::strong_count(i) > 1),
            Err(_) => true,
        }
    }

    fn closed(&self) -> bool {
        self.alive.as_ref().is_some_and(|a| a.strong_count() == 0)
    }
}

fn retain_live(open: &mut HashMap<String, Entry>) {
    open.retain(|_, e| !e.closed() || e.in_use());
}

/// Open indexes by key (e.g. `audit:<workspace-id>`), capped in number and
/// dropped with their workspace; an evicted index reopens from its sealed
/// files (or is rebuilt from the sealed rows) on its next use. Cheap to
/// clone.
#[derive(Clone)]
pub struct IndexRegistry {
    cap: usize,
    pub(super) open: Arc<Mutex<HashMap<String, Entry>>>,
}

impl IndexRegistry {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(1),
            open: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn slot(&self, key: &str, alive: Option<Liveness>) -> Result<Slot> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| Error::internal("index registry lock poisoned"))?;
        // Workspaces closed since: their indexes go (unless a search runs).
        retain_live(&mut open);
        if let Some(e) = open.get(key) {
            return Ok(Arc::clone(&e.slot));
        }
        if open.len() >= self.cap {
            open.retain(|_, e| e.in_use());
        }
        let slot: Slot = Arc::default();
        open.insert(
            key.to_owned(),
            Entry {
                slot: Arc::clone(&slot),
                alive,
            },
        );
        Ok(slot)
    }

    fn get_or_open(
        &self,
        key: &str,
        alive: Option<Liveness>,
        open: impl FnOnce() -> Result<MemIndex>,
    ) -> Result<Arc<Mutex<MemIndex>>> {
        let slot = self.slot(key, alive)?;
        let mut s = slot
            .lock()
            .map_err(|_| Error::internal("index registry lock poisoned"))?;
        if let Some(i) = s.as_ref() {
            return Ok(Arc::clone(i));
        }
        let idx = Arc::new(Mutex::new(open()?));
        *s = Some(Arc::clone(&idx));
        Ok(idx)
    }

    /// An index held in memory only (the platform's).
    pub fn get(&self, key: &str) -> Result<Arc<Mutex<MemIndex>>> {
        self.get_or_open(key, None, MemIndex::new)
    }

    /// A workspace's index persisted sealed in `disk` (see `index_dir`),
    /// opened from its files, or rebuilt when they are missing or do not
    /// open. Blocking: it decrypts the files.
    pub fn get_sealed(
        &self,
        key: &str,
        disk: &Path,
        sealer: Arc<Sealer>,
        alive: Liveness,
    ) -> Result<Arc<Mutex<MemIndex>>> {
        let purpose = key.split(':').next().unwrap_or(key);
        let current = Arc::clone(&sealer);
        let idx = self.get_or_open(key, Some(alive), || {
            MemIndex::open_sealed(disk, purpose, sealer)
        })?;
        // A data key rotation since it opened: it reopens under the new key,
        // so new files are not sealed with a key being retired (files still
        // under a key since destroyed do not open, and are rebuilt). A file
        // that stopped opening since: it reopens, and so is rebuilt.
        if let Ok(mut g) = idx.try_lock()
            && g.sealed.as_ref().is_some_and(|d| {
                d.is_corrupt() || d.sealer().current_key_id() != current.current_key_id()
            })
        {
            *g = MemIndex::open_sealed(disk, purpose, current)?;
        }
        Ok(idx)
    }

    /// Drops the indexes of workspaces closed since (unless a search runs),
    /// with their decrypted chunks: the idle-close job calls it, so what a
    /// closed workspace's searches decrypted does not wait for the next
    /// search to go. Returns how many went.
    pub fn prune_closed(&self) -> usize {
        self.open.lock().map_or(0, |mut open| {
            let before = open.len();
            retain_live(&mut open);
            before - open.len()
        })
    }

    /// Forgets an index (after retention or a restore), so it is rebuilt.
    pub fn drop_index(&self, key: &str) {
        if let Ok(mut open) = self.open.lock() {
            open.remove(key);
        }
    }

    /// Forgets an index and deletes its sealed files (`disk`), whether it
    /// is open or not: what it held is gone from the rows (retention, a
    /// shredded workspace), so the next search rebuilds it.
    pub fn discard(&self, key: &str, disk: &Path) {
        let entry = self.open.lock().ok().and_then(|mut o| o.remove(key));
        if let Some(e) = entry
            && let Ok(s) = e.slot.lock()
            && let Some(i) = s.as_ref()
            && let Ok(idx) = i.lock()
            && let Some(d) = &idx.sealed
        {
            d.discard();
        }
        sealed_dir::remove_files(disk);
    }
}
