//! Opening a persisted index, and what each commit records in it: the
//! watermark (the last row it holds) and the generation of the rows it was
//! built from, so a restart goes on from there instead of rebuilding. An
//! index whose files do not open (tampered, truncated, sealed under a key
//! since destroyed) or whose schema changed is discarded and rebuilt from the
//! sealed rows, and that is logged and counted
//! (`aura_search_index_rebuilds_total`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use tantivy::Index;

use super::sealed_dir::SealedDir;
use super::{MemIndex, search_err};
use crate::crypto::Sealer;
use crate::error::Result;

static REBUILDS: AtomicU64 = AtomicU64::new(0);

/// Indexes built from the sealed rows since the start: a first use, a
/// missing or unreadable index file, a restore or an anonymisation.
pub fn rebuilds() -> u64 {
    REBUILDS.load(Ordering::Relaxed)
}

/// Where a workspace's index for `purpose` lives: `tenants/<id>/search/<purpose>`.
pub fn index_dir(workspace_dir: &Path, purpose: &str) -> PathBuf {
    workspace_dir.join("search").join(purpose)
}

/// Bumped when what a document holds changes: older indexes are rebuilt.
const FORMAT: u32 = 1;

/// Recorded in each commit's `meta.json` (sealed like every file).
#[derive(Serialize, Deserialize)]
pub(super) struct Payload {
    format: u32,
    through: i64,
    generation: u64,
    docs: u64,
}

impl Payload {
    pub(super) fn of(i: &MemIndex) -> Self {
        Self {
            format: FORMAT,
            through: i.indexed_through,
            generation: i.generation,
            docs: i.docs,
        }
    }

    pub(super) fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl MemIndex {
    /// Opens the index persisted in `disk`, or starts an empty one there
    /// (the caller's catch-up fills it from the sealed rows).
    pub fn open_sealed(disk: &Path, purpose: &str, sealer: Arc<Sealer>) -> Result<Self> {
        match Self::reopen(disk, purpose, Arc::clone(&sealer)) {
            Ok(Some(i)) => return Ok(i),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(index = purpose, error = %e, "search index unreadable: discarding it and rebuilding from the sealed rows");
            }
        }
        super::sealed_dir::remove_files(disk);
        Self::fresh(disk, purpose, sealer).or_else(|e| {
            // No usable directory (permissions, a full disk): search still
            // works, from memory, as before indexes were persisted.
            tracing::warn!(index = purpose, error = %e, "search index cannot be persisted: kept in memory only");
            Self::new()
        })
    }

    fn fresh(disk: &Path, purpose: &str, sealer: Arc<Sealer>) -> Result<Self> {
        REBUILDS.fetch_add(1, Ordering::Relaxed);
        let mut i = Self::create(Some(SealedDir::open(disk, purpose, sealer)?))?;
        // An empty commit: the files on disk are a whole index from now on.
        i.commit()?;
        Ok(i)
    }

    /// `None`: nothing persisted yet.
    fn reopen(disk: &Path, purpose: &str, sealer: Arc<Sealer>) -> Result<Option<Self>> {
        let dir = SealedDir::open(disk, purpose, sealer)?;
        if !Index::exists(&dir).map_err(search_err)? {
            return Ok(None);
        }
        let index = Index::open(dir.clone()).map_err(search_err)?;
        if index.schema() != Self::schema() {
            return Err(search_err("the schema changed"));
        }
        let payload: Payload = index
            .load_metas()
            .map_err(search_err)?
            .payload
            .and_then(|p| serde_json::from_str(&p).ok())
            .ok_or_else(|| search_err("no watermark recorded"))?;
        if payload.format != FORMAT {
            return Err(search_err("an older index format"));
        }
        let mut i = Self::with_index(index, Some(dir))?;
        // Opening every segment now finds a missing file here, not in a query.
        i.reader.reload().map_err(search_err)?;
        i.indexed_through = payload.through;
        i.generation = payload.generation;
        i.docs = payload.docs;
        Ok(Some(i))
    }

    /// Empties the index to build it again from the sealed rows (a restore
    /// or a redaction changed them in place), deleting its files.
    pub fn reset(&mut self, generation: u64) -> Result<()> {
        if self.docs == 0 && self.indexed_through == 0 {
            // Nothing built yet: only the generation to record.
            self.generation = generation;
            return if self.sealed.is_some() {
                self.commit()
            } else {
                Ok(())
            };
        }
        let fresh = match &self.sealed {
            Some(d) if !d.is_closed() => {
                d.discard();
                Self::fresh(d.disk(), d.purpose(), d.sealer())?
            }
            _ => {
                REBUILDS.fetch_add(1, Ordering::Relaxed);
                Self::new()?
            }
        };
        *self = fresh;
        self.generation = generation;
        if self.sealed.is_some() {
            self.commit()?;
        }
        Ok(())
    }

    /// Bytes its sealed directory holds decrypted (metadata files and the
    /// chunk cache; 0 for an in-memory index).
    pub fn file_bytes(&self) -> usize {
        self.sealed.as_ref().map_or(0, SealedDir::ram_bytes)
    }
}
