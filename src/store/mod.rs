//! All SQL lives under `store/`. A `Db` is one SQLite file with one writer
//! connection and a small set of readers (WAL lets them run beside the writer).
//! Writes run on the blocking pool, reads on the reader threads (`readers`);
//! callers hand in closures. A closure gets a handle (`handle::Sql`,
//! `handle::SqlTx`) to pass to store functions, never the connection itself.

pub mod accounts;
pub mod admission;
pub mod audit;
pub mod audit_hook;
pub mod backup;
pub mod blobs;
pub mod cache;
pub mod collections;
pub mod control;
mod control_key;
mod db_wal;
mod db_writer;
pub use db_wal::Scrubbed;
pub use db_writer::Wait;
pub mod dir_lock;
pub mod files;
pub mod handle;
pub mod idle_stamps;
pub mod integrations;
pub mod invitations;
pub mod key_rotation;
pub mod keypairs;
pub mod lifecycle;
pub mod links;
pub mod master_rotation;
pub mod mfa;
pub mod migrations;
pub mod notices;
pub mod ops;
pub mod passkeys;
pub mod platform;
mod pool_lru;
#[cfg(debug_assertions)]
pub mod power_cut;
pub mod readers;
pub mod records;
pub mod replica_copy;
pub mod replica_files;
pub mod retention;
pub mod s3;
pub mod scim;
pub mod sso;
pub mod subjects;
pub mod teams;
pub mod tenant;
pub mod tenant_settings;
pub mod tokens;
mod tombstones;
pub mod wal_wanted;
pub mod webhooks;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::model::Synchronous;
use handle::TOKEN;
pub use handle::{Detached, Sql, SqlTx};
use migrations::Migration;

#[derive(Clone, Copy, Debug)]
pub struct DbOptions {
    pub synchronous: Synchronous,
    pub busy_timeout: Duration,
}

/// What the unit tests of the store open databases with (the defaults of
/// `[storage]`; `DbOptions::from_config` is in `config`, above the store).
#[cfg(test)]
pub(crate) fn test_options() -> DbOptions {
    DbOptions {
        synchronous: Synchronous::Full,
        busy_timeout: Duration::from_millis(5_000),
    }
}

const MAX_IDLE_READERS: usize = 8;

pub struct Db {
    path: PathBuf,
    opts: DbOptions,
    /// Callers waiting for the writer (the write queue, for metrics).
    waiting: std::sync::atomic::AtomicUsize,
    /// Opened on the first write (or check of the writer): a workspace
    /// that is only read never opens it, so its first request opens (and
    /// parses the schema on) one connection, not two (issue 23).
    writer: std::sync::OnceLock<Mutex<Connection>>,
    /// Held while the writer is being opened.
    opening: Mutex<()>,
    readers: Mutex<Vec<Connection>>,
    /// Writes queued for the next group commit (see `write_async`).
    pending: Mutex<Vec<Job>>,
    /// Set while a blocking task drains `pending`: one drainer at a time.
    draining: std::sync::atomic::AtomicBool,
    /// Callers of `with_writer` waiting: a drainer hands them the lock
    /// between two batches (else it keeps it while writes keep coming).
    yielding: std::sync::atomic::AtomicUsize,
    /// A background task is emptying the WAL after a scrub (`db_wal`).
    wal_retrying: std::sync::atomic::AtomicBool,
}

/// Databases closed since the process started (every `Db` dropped: idle
/// closes, evictions, the start passes' visits). `ops::memory` gives the
/// allocators' free pages back to the OS once closes have happened.
static CLOSED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// See `CLOSED`.
pub fn databases_closed() -> u64 {
    CLOSED.load(std::sync::atomic::Ordering::Relaxed)
}

impl Drop for Db {
    fn drop(&mut self) {
        CLOSED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A queued write: runs inside the batch's transaction (in its own savepoint)
/// and returns what to do once the batch's commit has succeeded or failed.
type Job = Box<dyn FnOnce(&Transaction<'_>) -> Ack + Send>;
type Ack = Box<dyn FnOnce(Option<&rusqlite::Error>) + Send>;

/// How many queued writes one transaction (one fsync) may carry.
const MAX_BATCH: usize = 256;

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("path", &self.path).finish()
    }
}

impl Db {
    /// Opens (creating if needed) and brings the schema up to date. An
    /// existing file whose schema is current is checked on a reader
    /// connection, which stays pooled; the writer opens on the first write.
    pub fn open(path: &Path, opts: DbOptions, migrations: &[Migration]) -> Result<Self> {
        let created = !path.exists();
        let mut conn = connect(path, opts, created)?;
        let (writer, readers) = if !created && migrations::up_to_date(&conn, migrations)? {
            (std::sync::OnceLock::new(), vec![conn])
        } else {
            migrations::apply(&mut conn, migrations)?;
            (std::sync::OnceLock::from(Mutex::new(conn)), Vec::new())
        };
        if created {
            // SQLite syncs a new file's contents, not its directory entry.
            crate::dirsync::sync_parent(path)?;
        }
        Ok(Self {
            path: path.to_owned(),
            opts,
            waiting: Default::default(),
            writer,
            opening: Mutex::new(()),
            readers: Mutex::new(readers),
            pending: Mutex::new(Vec::new()),
            draining: Default::default(),
            yielding: Default::default(),
            wal_retrying: Default::default(),
        })
    }

    /// Opens a database that must already exist, without migrating it (doctor,
    /// and the key check before anything may be written).
    pub fn open_existing(path: &Path, opts: DbOptions) -> Result<Self> {
        if !path.exists() {
            return Err(Error::Config(format!(
                "{} does not exist; run `aura init` first",
                path.display()
            )));
        }
        let writer = connect(path, opts, false)?;
        Ok(Self {
            path: path.to_owned(),
            opts,
            waiting: Default::default(),
            writer: std::sync::OnceLock::from(Mutex::new(writer)),
            opening: Mutex::new(()),
            readers: Mutex::new(Vec::new()),
            pending: Mutex::new(Vec::new()),
            draining: Default::default(),
            yielding: Default::default(),
            wal_retrying: Default::default(),
        })
    }

    /// Whether the writer connection is open (this process has written, or
    /// asked to write, since the database was opened).
    pub fn writer_open(&self) -> bool {
        self.writer.get().is_some()
    }

    /// The writer connection's lock, the connection opened if this is the
    /// first write.
    fn writer(&self) -> Result<&Mutex<Connection>> {
        if let Some(w) = self.writer.get() {
            return Ok(w);
        }
        let _opening = self
            .opening
            .lock()
            .map_err(|_| Error::internal("writer open lock poisoned"))?;
        if self.writer.get().is_none() {
            let conn = connect(&self.path, self.opts, false)?;
            let _ = self.writer.set(Mutex::new(conn));
        }
        self.writer
            .get()
            .ok_or_else(|| Error::internal("writer connection missing"))
    }

    pub fn write_waiters(&self) -> usize {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// One IMMEDIATE transaction: the change and its audit entry commit together
    /// or not at all.
    pub fn write<T>(&self, f: impl FnOnce(&dyn SqlTx) -> Result<T>) -> Result<T> {
        use std::sync::atomic::Ordering;
        let writer = self.writer()?;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let lock = writer.lock();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let mut conn = lock.map_err(|_| Error::internal("writer lock poisoned"))?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        Ok(out)
    }

    pub fn read<T>(&self, f: impl FnOnce(&dyn Sql) -> Result<T>) -> Result<T> {
        let pooled = self
            .readers
            .lock()
            .map_err(|_| Error::internal("reader pool lock poisoned"))?
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => connect(&self.path, self.opts, false)?,
        };
        let out = f(&conn);
        if let Ok(mut idle) = self.readers.lock() {
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
        }
        out
    }

    /// Group commit. The write is queued; whichever caller next holds the
    /// writer runs every queued write in one IMMEDIATE transaction, each in its
    /// own savepoint (a failing write rolls back alone, with its audit entry),
    /// commits once (one fsync for the whole batch) and only then answers each
    /// caller. Concurrent requests therefore share fsyncs, and an answer still
    /// means "committed durably".
    ///
    /// Only one blocking task drains the queue at a time (`draining`); a
    /// write queued meanwhile just waits for its answer. Each caller used to
    /// start a blocking task that parked on the writer lock until the batch
    /// holding its write had committed, then found the queue empty: a thread
    /// wake-up and two futex calls per write, about a tenth of a create's
    /// CPU at 64 clients (perf, docs/benchmarks.md).
    pub async fn write_async<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn SqlTx) -> Result<T> + Send + 'static,
    {
        let (done, answer) = tokio::sync::oneshot::channel::<Result<T>>();
        let job: Job = Box::new(move |tx: &Transaction<'_>| {
            // SQLite rolls the whole transaction back on some errors (a full
            // disk while a page spills): a later job's SAVEPOINT would then
            // open and RELEASE commit a transaction of its own, outside the
            // batch. It fails instead, as the batch's commit will.
            let out = if tx.is_autocommit() {
                Err(Error::Unavailable("the write batch was rolled back"))
            } else {
                in_savepoint(tx, f)
            };
            Box::new(move |commit_error: Option<&rusqlite::Error>| {
                let out = match (out, commit_error) {
                    (Ok(v), None) => Ok(v),
                    (Ok(_), Some(e)) => Err(commit_failed(e)),
                    (Err(e), _) => Err(e),
                };
                let _ = done.send(out);
            })
        });
        self.pending
            .lock()
            .map_err(|_| Error::internal("write queue lock poisoned"))?
            .push(job);
        if !self
            .draining
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            let db = Arc::clone(self);
            tokio::task::spawn_blocking(move || db.drain()).await??;
        }
        answer
            .await
            .map_err(|_| Error::internal("queued write was dropped"))?
    }

    /// Runs `run_pending` as the one drainer (`draining` is set by the
    /// caller), until no write is left that no drainer will see.
    fn drain(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        /// Clears the flag however the run ends (an error, a panic).
        struct Done<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        loop {
            let done = Done(&self.draining);
            let run = self.run_pending();
            if run.is_err() {
                // No write may wait for a drainer that is gone: those still
                // queued fail (their answer channels close) as the batch did.
                let stale: Vec<Job> = self
                    .pending
                    .lock()
                    .map(|mut q| q.drain(..).collect())
                    .unwrap_or_default();
                drop(stale);
            }
            drop(done);
            run?;
            // A write queued after the queue was last seen empty, but before
            // the flag was cleared, found the flag set and started no
            // drainer: take it, unless another drainer has started since.
            let queued = !self
                .pending
                .lock()
                .map_err(|_| Error::internal("write queue lock poisoned"))?
                .is_empty();
            if !queued || self.draining.swap(true, Ordering::AcqRel) {
                return Ok(());
            }
        }
    }

    /// Runs queued writes in batches until the queue is empty. A caller whose
    /// write another caller already took finds the queue empty and returns; its
    /// answer arrives through its channel.
    fn run_pending(&self) -> Result<()> {
        use std::sync::atomic::Ordering;
        let writer = self.writer()?;
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let lock = writer.lock();
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        let mut conn = lock.map_err(|_| Error::internal("writer lock poisoned"))?;
        loop {
            if self.yielding.load(Ordering::Acquire) > 0 {
                // Re-taken at once, it would beat the waiter the unlock woke.
                drop(conn);
                let mut spins = 0u32;
                while self.yielding.load(Ordering::Acquire) > 0 && spins < 100_000 {
                    std::thread::yield_now();
                    spins += 1;
                }
                conn = self
                    .writer()?
                    .lock()
                    .map_err(|_| Error::internal("writer lock poisoned"))?;
            }
            let batch: Vec<Job> = {
                let mut q = self
                    .pending
                    .lock()
                    .map_err(|_| Error::internal("write queue lock poisoned"))?;
                let n = q.len().min(MAX_BATCH);
                q.drain(..n).collect()
            };
            if batch.is_empty() {
                return Ok(());
            }
            // A failure to begin drops the batch's jobs, which answers each of
            // their callers with an error.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let acks: Vec<Ack> = batch.into_iter().map(|job| job(&tx)).collect();
            commit_delay_for_tests();
            let committed = tx.commit();
            for ack in acks {
                ack(committed.as_ref().err());
            }
        }
    }

    pub async fn read_async<T, F>(self: &Arc<Self>, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql) -> Result<T> + Send + 'static,
    {
        let db = Arc::clone(self);
        readers::run(move || db.read(f)).await
    }

    /// Overwrites this database with another through the online backup API.
    pub fn replace_from(&self, src: &dyn Sql) -> Result<()> {
        let src = src.conn(TOKEN);
        let mut conn = self
            .writer()?
            .lock()
            .map_err(|_| Error::internal("writer lock poisoned"))?;
        let backup = rusqlite::backup::Backup::new(src, &mut conn)?;
        backup.run_to_completion(256, std::time::Duration::from_millis(0), None)?;
        Ok(())
    }
}

/// Runs one queued write inside a savepoint of the batch's transaction.
fn in_savepoint<T>(tx: &Transaction<'_>, f: impl FnOnce(&dyn SqlTx) -> Result<T>) -> Result<T> {
    // Cached statements: two per queued write, parsed once per connection.
    tx.prepare_cached("SAVEPOINT job")?.execute([])?;
    match f(tx) {
        Ok(v) => {
            tx.prepare_cached("RELEASE job")?.execute([])?;
            Ok(v)
        }
        Err(e) => {
            // The job's own error is the answer; if the savepoint is gone
            // (SQLite rolled the transaction back), the batch fails at commit.
            if let Err(undo) = tx.execute_batch("ROLLBACK TO job; RELEASE job") {
                tracing::warn!(error = %undo, cause = %e, "savepoint rollback failed");
            }
            Err(e)
        }
    }
}

/// The error every caller of a batch gets when its commit failed, keeping
/// SQLite's code (SQLITE_FULL becomes a 507, not a 500).
fn commit_failed(e: &rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(code, msg) => {
            Error::Storage(rusqlite::Error::SqliteFailure(*code, msg.clone()))
        }
        other => Error::internal(format!("commit failed: {other}")),
    }
}

/// The length SQLite cuts a WAL file back to when it starts the WAL over
/// (`PRAGMA journal_size_limit`, on every connection). SQLite alone never
/// lets a WAL grow near it (it starts over every ~4 MiB); a WAL the
/// replicator held longer shrinks again, so a WAL *file* past this length
/// means a WAL in use past it (`replication::shipper::Shipper::early_due`).
pub const WAL_SIZE_LIMIT: u64 = 8 << 20;

fn connect(path: &Path, opts: DbOptions, create: bool) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(opts.busy_timeout)?;
    // The query planner stability guarantee: a plan never depends on the
    // values bound to it. Without it, SQLite plans `LIMIT ?` with the bound
    // value and so re-prepares such a cached statement on every use (a
    // record page spent ~9 % of its time re-parsing its SQL).
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )?;
    let sync = match opts.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Extra => "EXTRA",
        Synchronous::Normal => "NORMAL",
    };
    // temp_store=MEMORY keeps sorter and temp-table spills off the disk;
    // secure_delete overwrites freed pages so deleted ciphertext does not linger;
    // journal_size_limit: see `WAL_SIZE_LIMIT`.
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL;
         PRAGMA journal_size_limit={WAL_SIZE_LIMIT};
         PRAGMA synchronous={sync};
         PRAGMA foreign_keys=ON;
         PRAGMA temp_store=MEMORY;
         PRAGMA secure_delete=ON;"
    ))?;
    Ok(conn)
}

/// Creates a file readable only by the service user: mode 0600 whatever
/// the umask, and never an earlier attempt's leftover with its old mode
/// (backups, exports, move bundles and their temporary files).
pub fn create_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

/// `VACUUM INTO dest`, into a file made first with mode 0600 (SQLite would
/// create it 0644): a snapshot for a backup or a move bundle.
pub fn vacuum_into_private(conn: &dyn Sql, dest: &Path) -> Result<()> {
    let conn = conn.conn(TOKEN);
    if let Some(p) = dest.parent() {
        create_private_dir(p)?;
    }
    create_private_file(dest)?;
    conn.execute("VACUUM INTO ?1", [dest.display().to_string()])?;
    Ok(())
}

/// Test hook, debug builds only (release builds do not contain it):
/// `AURA_TEST_COMMIT_DELAY_MS=N` holds every group commit N ms before its
/// COMMIT, as a slow disk would, so tests can show that nothing acts on a
/// write before it has committed.
#[cfg(debug_assertions)]
fn commit_delay_for_tests() {
    static DELAY: std::sync::OnceLock<Option<std::time::Duration>> = std::sync::OnceLock::new();
    let delay = DELAY.get_or_init(|| {
        std::env::var("AURA_TEST_COMMIT_DELAY_MS")
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .map(std::time::Duration::from_millis)
    });
    if let Some(d) = delay {
        std::thread::sleep(*d);
    }
}

#[cfg(not(debug_assertions))]
fn commit_delay_for_tests() {}

/// Creates a directory readable only by the service user.
pub fn create_private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if path.is_dir() {
        return Ok(());
    }
    let missing: Vec<&Path> = path
        .ancestors()
        .take_while(|p| !p.as_os_str().is_empty() && !p.exists())
        .collect();
    let failed = |e: std::io::Error| {
        crate::error::or_disk_full(e, |e| {
            Error::Config(format!("cannot create {}: {e}", path.display()))
        })
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(failed)?;
    // Outermost first: each new directory's entry in its parent.
    for dir in missing.iter().rev() {
        crate::dirsync::sync_parent(dir).map_err(failed)?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;
