//! Databases whose WAL a `TRUNCATE` checkpoint of this process is waiting
//! to empty (a scrub's, `Db::scrub`). The replicator lets go of its read
//! transaction on them at once (`replication::shipper::Shipper::let_go_if_wanted`):
//! held until its next pass, it would hold the checkpoint up as long.
//! Databases are known by their file's device and inode, so two spellings
//! of one path are one database.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

static ANY: AtomicUsize = AtomicUsize::new(0);
static WANTED: Mutex<BTreeMap<(u64, u64), usize>> = Mutex::new(BTreeMap::new());

fn id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Registered while it lives.
pub struct Wanting(Option<(u64, u64)>);

impl Wanting {
    pub fn new(path: &Path) -> Wanting {
        let key = id(path).filter(|k| match WANTED.lock() {
            Ok(mut w) => {
                *w.entry(*k).or_default() += 1;
                ANY.fetch_add(1, Ordering::AcqRel);
                true
            }
            Err(_) => false,
        });
        Wanting(key)
    }
}

impl Drop for Wanting {
    fn drop(&mut self) {
        let Some(k) = self.0 else { return };
        if let Ok(mut w) = WANTED.lock() {
            if let Some(n) = w.get_mut(&k) {
                *n -= 1;
                if *n == 0 {
                    w.remove(&k);
                }
            }
            ANY.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// Whether a checkpoint of this process waits to empty the WAL of the
/// database at `path` (one atomic load while none does).
pub fn wanted(path: &Path) -> bool {
    if ANY.load(Ordering::Acquire) == 0 {
        return false;
    }
    let Some(k) = id(path) else { return false };
    WANTED.lock().map(|w| w.contains_key(&k)).unwrap_or(false)
}
