//! A tantivy `Directory` whose files are sealed on disk under the workspace's
//! search subkey, in chunks bound to the scope, the index's purpose, the
//! file's name and the chunk's place (`sealed_file`): a file renamed, or
//! copied to another index or workspace, does not open. Every chunk is
//! checked when the index opens; reads then decrypt the chunks they need
//! through a cache bounded per index.
//!
//! tantivy writes a segment file once and never changes it; `meta.json` and
//! `.managed.json` are replaced whole (and kept decrypted in memory: they are
//! small). Both reach the disk the same way: seal, write a temp file, fsync,
//! rename (and fsync the directory when tantivy asks). Locks stay in memory:
//! only one process serves a data dir.

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use tantivy::directory::error::{DeleteError, LockError, OpenReadError, OpenWriteError};
use tantivy::directory::{
    AntiCallToken, DirectoryLock, FileHandle, Lock, RamDirectory, TerminatingWrite, WatchCallback,
    WatchHandle, WritePtr,
};
use tantivy::{Directory, HasLen};

use super::sealed_file::{self, ChunkCache, SealedFile};
use crate::crypto::Sealer;
use crate::error::{Error, Result};

/// What a sealed file is called on disk.
const SUFFIX: &str = ".sealed";
const TMP_SUFFIX: &str = ".sealed.tmp";

#[derive(Clone)]
pub struct SealedDir {
    disk: Arc<PathBuf>,
    purpose: Arc<str>,
    sealer: Arc<Sealer>,
    /// Files written whole by `atomic_write` (tantivy's metadata), and
    /// files that could not be put on disk.
    ram: RamDirectory,
    /// Segment files, read from disk a chunk at a time.
    files: Arc<RwLock<HashMap<PathBuf, Arc<SealedFile>>>>,
    cache: Arc<ChunkCache>,
    next_id: Arc<AtomicU64>,
    /// A file failed to read after it was checked (`SealedFile`).
    corrupt: Arc<AtomicBool>,
    /// Set once the index is discarded (rebuilt, shredded, expired): writes
    /// still in flight (a merge) stay in memory and no longer reach the disk.
    closed: Arc<AtomicBool>,
}

impl std::fmt::Debug for SealedDir {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedDir")
            .field("disk", &self.disk)
            .finish_non_exhaustive()
    }
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

/// Only plain file names (tantivy's own: `meta.json`, `<uuid>.idx`, ...).
fn file_name(path: &Path) -> io::Result<&str> {
    match path.to_str() {
        Some(n) if !n.is_empty() && !n.contains(['/', '\\']) && n != "." && n != ".." => Ok(n),
        _ => Err(io_err(format!("unexpected index file name {path:?}"))),
    }
}

impl SealedDir {
    /// Opens `disk` (created if missing), decrypting every file into memory.
    /// Any file that does not open (tampered, truncated, another key) fails
    /// the whole open: the caller discards the index and rebuilds it.
    pub fn open(disk: &Path, purpose: &str, sealer: Arc<Sealer>) -> Result<Self> {
        crate::store::create_private_dir(disk)?;
        let dir = Self {
            disk: Arc::new(disk.to_owned()),
            purpose: Arc::from(purpose),
            sealer,
            ram: RamDirectory::create(),
            files: Arc::default(),
            cache: Arc::default(),
            next_id: Arc::default(),
            corrupt: Arc::default(),
            closed: Arc::new(AtomicBool::new(false)),
        };
        for entry in std::fs::read_dir(disk)? {
            let entry = entry?;
            let os_name = entry.file_name();
            let Some(name) = os_name.to_str() else {
                continue;
            };
            if name.ends_with(TMP_SUFFIX) {
                // A write cut short by a crash: never renamed, never used.
                let _ = std::fs::remove_file(entry.path());
                continue;
            }
            let Some(file) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            let opened = dir
                .open_file(&entry.path(), file)
                .map_err(|_| Error::Crypto("a search index file does not open"))?;
            if is_atomic(file) {
                let plain = opened.read_bytes(0..opened.len())?;
                dir.ram
                    .atomic_write(Path::new(file), plain.as_slice())
                    .map_err(|e| Error::internal(format!("search index: {e}")))?;
            } else {
                dir.keep(Path::new(file), opened);
            }
        }
        Ok(dir)
    }

    fn open_file(&self, disk: &Path, name: &str) -> io::Result<SealedFile> {
        SealedFile::open(
            disk,
            name,
            Arc::clone(&self.purpose),
            Arc::clone(&self.sealer),
            Arc::clone(&self.cache),
            self.next_id.fetch_add(1, Ordering::Relaxed),
            Arc::clone(&self.corrupt),
        )
    }

    /// True once a file failed to read after the index opened.
    pub fn is_corrupt(&self) -> bool {
        self.corrupt.load(Ordering::SeqCst)
    }

    fn keep(&self, path: &Path, f: SealedFile) {
        if let Ok(mut files) = self.files.write() {
            files.insert(path.to_owned(), Arc::new(f));
        }
    }

    fn on_disk(&self, path: &Path) -> Option<Arc<SealedFile>> {
        self.files.read().ok()?.get(path).cloned()
    }

    /// Stops writing to disk and deletes every file of this index.
    pub fn discard(&self) {
        self.closed.store(true, Ordering::SeqCst);
        remove_files(&self.disk);
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    pub fn disk(&self) -> &Path {
        &self.disk
    }

    pub fn purpose(&self) -> &str {
        &self.purpose
    }

    pub fn sealer(&self) -> Arc<Sealer> {
        Arc::clone(&self.sealer)
    }

    /// Bytes held decrypted by this directory (tantivy keeps some of what
    /// it reads besides).
    pub fn ram_bytes(&self) -> usize {
        self.ram.total_mem_usage() + self.cache.bytes()
    }

    /// Seals `data` and puts it on disk as `name`. A disk that refuses
    /// (full, read-only) does not fail the search: the index goes on in
    /// memory only, its files are removed, and the next start rebuilds it.
    /// The file on disk, when it was written there.
    fn persist(&self, path: &Path, data: &[u8]) -> Option<PathBuf> {
        if self.closed.load(Ordering::SeqCst) {
            return None;
        }
        match self.write_sealed(path, data) {
            Ok(dest) => Some(dest),
            Err(e) => {
                tracing::warn!(error = %e, index = %self.purpose, "could not write a search index file: the index stays in memory until the next start");
                self.discard();
                None
            }
        }
    }

    /// Seal, temp file, fsync, rename.
    fn write_sealed(&self, path: &Path, data: &[u8]) -> io::Result<PathBuf> {
        let name = file_name(path)?;
        let tmp = self.disk.join(format!("{name}{TMP_SUFFIX}"));
        let dest = self.disk.join(format!("{name}{SUFFIX}"));
        {
            let mut f = BufWriter::new(crate::store::create_private_file(&tmp)?);
            sealed_file::write(&mut f, &self.sealer, &self.purpose, name, data)?;
            f.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        }
        std::fs::rename(&tmp, &dest)?;
        Ok(dest)
    }
}

/// tantivy's metadata files, replaced whole by `atomic_write`.
fn is_atomic(name: &str) -> bool {
    name == "meta.json" || name == ".managed.json"
}

/// Deletes an index's files (its directory stays, empty).
pub fn remove_files(disk: &Path) {
    let Ok(entries) = std::fs::read_dir(disk) else {
        return;
    };
    for e in entries.flatten() {
        if let Err(err) = std::fs::remove_file(e.path())
            && err.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(error = %err, "could not delete a search index file");
        }
    }
}

/// Buffers a new file; it is sealed and written when tantivy terminates it.
struct SealedWriter {
    path: PathBuf,
    data: Vec<u8>,
    dir: SealedDir,
}

impl Write for SealedWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.data.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl TerminatingWrite for SealedWriter {
    fn terminate_ref(&mut self, _: AntiCallToken) -> io::Result<()> {
        let data = std::mem::take(&mut self.data);
        let on_disk = self.dir.persist(&self.path, &data).and_then(|dest| {
            let name = file_name(&self.path).ok()?;
            self.dir.open_file(&dest, name).ok()
        });
        match on_disk {
            Some(f) => {
                self.dir.keep(&self.path, f);
                // The name's placeholder in memory is not needed any more.
                let _ = self.dir.ram.delete(&self.path);
                Ok(())
            }
            None => self.dir.ram.atomic_write(&self.path, &data),
        }
    }
}

impl Directory for SealedDir {
    fn get_file_handle(
        &self,
        path: &Path,
    ) -> std::result::Result<Arc<dyn FileHandle>, OpenReadError> {
        match self.on_disk(path) {
            Some(f) => Ok(f),
            None => self.ram.get_file_handle(path),
        }
    }

    fn delete(&self, path: &Path) -> std::result::Result<(), DeleteError> {
        let was_on_disk = self
            .files
            .write()
            .ok()
            .and_then(|mut f| f.remove(path))
            .is_some();
        if !was_on_disk {
            self.ram.delete(path)?;
        }
        if let Ok(name) = file_name(path) {
            let on_disk = self.disk.join(format!("{name}{SUFFIX}"));
            if let Err(e) = std::fs::remove_file(&on_disk)
                && e.kind() != io::ErrorKind::NotFound
            {
                return Err(DeleteError::IoError {
                    io_error: Arc::new(e),
                    filepath: path.to_owned(),
                });
            }
        }
        Ok(())
    }

    fn exists(&self, path: &Path) -> std::result::Result<bool, OpenReadError> {
        Ok(self.on_disk(path).is_some() || self.ram.exists(path)?)
    }

    fn open_write(&self, path: &Path) -> std::result::Result<WritePtr, OpenWriteError> {
        file_name(path).map_err(|e| OpenWriteError::wrap_io_error(e, path.to_owned()))?;
        if self.on_disk(path).is_some() {
            return Err(OpenWriteError::FileAlreadyExists(path.to_owned()));
        }
        // Claims the name in memory (and refuses an existing one).
        drop(self.ram.open_write(path)?);
        Ok(BufWriter::new(Box::new(SealedWriter {
            path: path.to_owned(),
            data: Vec::new(),
            dir: self.clone(),
        })))
    }

    fn atomic_read(&self, path: &Path) -> std::result::Result<Vec<u8>, OpenReadError> {
        match self.on_disk(path) {
            Some(f) => f
                .read_bytes(0..f.len())
                .map(|b| b.as_slice().to_vec())
                .map_err(|e| OpenReadError::wrap_io_error(e, path.to_owned())),
            None => self.ram.atomic_read(path),
        }
    }

    fn atomic_write(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        self.persist(path, data);
        self.ram.atomic_write(path, data)
    }

    fn sync_directory(&self) -> io::Result<()> {
        if self.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        if let Err(e) = std::fs::File::open(&*self.disk).and_then(|d| d.sync_all()) {
            tracing::warn!(error = %e, index = %self.purpose, "could not sync a search index directory: the index stays in memory until the next start");
            self.discard();
        }
        Ok(())
    }

    fn acquire_lock(&self, lock: &Lock) -> std::result::Result<DirectoryLock, LockError> {
        self.ram.acquire_lock(lock)
    }

    fn watch(&self, watch_callback: WatchCallback) -> tantivy::Result<WatchHandle> {
        self.ram.watch(watch_callback)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::DataKey;

    fn sealer(scope: &str) -> Arc<Sealer> {
        let k = DataKey::generate(1);
        Arc::new(Sealer::under_subkey(scope, &[k], 1, "aura/v1/search-index").unwrap())
    }

    #[test]
    fn files_are_sealed_bound_to_their_name_and_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        let s = sealer("ws");
        let d = SealedDir::open(tmp.path(), "audit", Arc::clone(&s)).unwrap();
        let mut w = d.open_write(Path::new("a.idx")).unwrap();
        w.write_all(b"plaintext-canary").unwrap();
        w.terminate().unwrap();
        d.atomic_write(Path::new("meta.json"), b"{\"meta\":1}")
            .unwrap();
        let raw = std::fs::read(tmp.path().join("a.idx.sealed")).unwrap();
        assert!(!raw.windows(9).any(|x| x == b"plaintext"));
        let again = SealedDir::open(tmp.path(), "audit", Arc::clone(&s)).unwrap();
        assert_eq!(
            again.atomic_read(Path::new("a.idx")).unwrap(),
            b"plaintext-canary"
        );
        // Another purpose (or a renamed file) does not open.
        assert!(SealedDir::open(tmp.path(), "records", Arc::clone(&s)).is_err());
        std::fs::rename(
            tmp.path().join("a.idx.sealed"),
            tmp.path().join("b.idx.sealed"),
        )
        .unwrap();
        assert!(SealedDir::open(tmp.path(), "audit", Arc::clone(&s)).is_err());
        // Discarded: files gone, later writes stay in memory.
        again.discard();
        again.atomic_write(Path::new("x"), b"y").unwrap();
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
}
