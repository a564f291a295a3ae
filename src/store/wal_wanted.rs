//! Databases whose WAL a `TRUNCATE` checkpoint of this process is waiting
//! to empty (a scrub's, `Db::scrub`). The replicator lets go of its read
//! transaction on them at once (`replication::shipper::Shipper::let_go_if_wanted`):
//! held until its next pass, it would hold the checkpoint up as long.
//! Databases are known by their file's device and inode, so two spellings
//! of one path are one database.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};

static ANY: AtomicUsize = AtomicUsize::new(0);
static WANTED: Mutex<BTreeMap<(u64, u64), usize>> = Mutex::new(BTreeMap::new());

/// The registry, even if a holder panicked (nothing here can leave it
/// half-changed).
fn registry() -> MutexGuard<'static, BTreeMap<(u64, u64), usize>> {
    WANTED.lock().unwrap_or_else(PoisonError::into_inner)
}

fn id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Registered while it lives.
pub struct Wanting(Option<(u64, u64)>);

impl Wanting {
    pub fn new(path: &Path) -> Wanting {
        let key = id(path);
        if let Some(k) = key {
            *registry().entry(k).or_default() += 1;
            ANY.fetch_add(1, Ordering::AcqRel);
        }
        Wanting(key)
    }
}

impl Drop for Wanting {
    fn drop(&mut self) {
        let Some(k) = self.0 else { return };
        let mut w = registry();
        if let Some(n) = w.get_mut(&k) {
            *n -= 1;
            if *n == 0 {
                w.remove(&k);
            }
        }
        ANY.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether a checkpoint of this process waits to empty the WAL of the
/// database at `path` (one atomic load while none does).
pub fn wanted(path: &Path) -> bool {
    if !any() {
        return false;
    }
    let Some(k) = id(path) else { return false };
    registry().contains_key(&k)
}

/// Whether a checkpoint of this process waits to empty any WAL.
pub fn any() -> bool {
    ANY.load(Ordering::Acquire) > 0
}
