//! Workspace databases: `tenants/<workspace-id>/data.db`, opened lazily and
//! pooled. A `TenantDb` exists only for an `Admission` (which only the access
//! layer's `Grant` produces), and carries the workspace's own sealer, so code
//! holding one cannot touch another workspace.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::Transaction;

use super::admission::Admission;
use super::audit_hook::AuditHook;
use super::control::{self, Control};
use super::handle::{Sql, TOKEN};
use super::pool_lru::Lru;
use super::{Db, DbOptions, migrations};
use crate::crypto::{BlindIndex, DataKey, Sealer};
use crate::error::{Error, Result};
use crate::ids::WorkspaceId;
use crate::model::Frozen;
use crate::model::audit::{NewEntry, RequestMeta};

/// One workspace's keys: every live key id opens, the newest seals.
pub struct TenantKeys {
    pub sealer: Sealer,
    pub blind: BlindIndex,
    /// Seals the search index files, under its own HKDF subkey.
    pub search: Arc<Sealer>,
}

impl TenantKeys {
    /// `sealing`: the key id to seal with (default: the newest).
    fn from_control(control: &Control, id: WorkspaceId, sealing: Option<u32>) -> Result<Self> {
        let wrapped = control.db.read(|c| control::workspace_keys(c, id))?;
        if wrapped.is_empty() {
            return Err(Error::NotFound("workspace"));
        }
        let scope = id.to_string();
        let keys = wrapped
            .iter()
            .map(|(kid, w)| control.master.unwrap_key(&scope, *kid, w))
            .collect::<Result<Vec<DataKey>>>()?;
        let newest = keys
            .iter()
            .max_by_key(|k| k.key_id)
            .ok_or(Error::Crypto("workspace has no data key"))?;
        let current = match sealing {
            Some(id) => keys
                .iter()
                .find(|k| k.key_id == id)
                .ok_or(Error::Crypto("the sealing key is not among the keys"))?,
            None => newest,
        };
        Ok(Self {
            blind: BlindIndex::with_older(current, &keys),
            search: Arc::new(Sealer::under_subkey(
                scope.as_str(),
                &keys,
                current.key_id,
                "aura/v1/search-index",
            )?),
            sealer: Sealer::sealing_with(scope, &keys, current.key_id)?,
        })
    }
}

/// Shared by every clone of a handle, so a key rotation reaches requests
/// already holding one: writes take the keys inside their transaction.
type KeyCell = Arc<RwLock<Arc<TenantKeys>>>;

/// One workspace's storage with its keys. Cheap to clone.
#[derive(Clone)]
pub struct TenantDb {
    id: WorkspaceId,
    db: Arc<Db>,
    keys: KeyCell,
    /// Set from the admission: a workspace being deleted or moved refuses
    /// writes (audit entries of refusals still go through `record`).
    frozen: Option<Frozen>,
    /// Runs beside each audit entry of a write (the webhook outbox).
    hook: Arc<dyn AuditHook>,
    /// Decrypted collection definitions, checked against the stored
    /// ciphertext on every use (`store::cache`).
    defs: Arc<super::cache::DefCache>,
    /// Where the appliance keeps attached files' sealed bytes.
    files: Arc<super::blobs::Storage>,
}

impl std::fmt::Debug for TenantDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantDb").field("id", &self.id).finish()
    }
}

/// A write transaction in one workspace, with that workspace's keys.
pub struct TenantTx<'a> {
    pub(in crate::store) tx: &'a Transaction<'a>,
    pub sealer: &'a Sealer,
    pub blind: &'a BlindIndex,
    pub workspace: WorkspaceId,
    /// Set when this transaction queued webhook deliveries: the delivery
    /// worker is woken once the transaction has committed, never before (a
    /// worker woken early reads a snapshot without them and goes back to
    /// sleep until its next full scan).
    queued: std::cell::Cell<bool>,
    hook: &'a dyn AuditHook,
}

impl TenantTx<'_> {
    /// Notes that this transaction queued work for the delivery worker.
    pub fn queue_for_worker(&self) {
        self.queued.set(true);
    }

    /// Appends to this workspace's audit chain inside this transaction.
    /// Webhook events of the change are queued here too, in the same
    /// transaction (the pool's `AuditHook`, `integrations::outbox`).
    pub fn audit(&self, now: i64, entry: &NewEntry<'_>) -> Result<i64> {
        let seq = super::audit::append(self.tx, self.sealer, now, entry)?;
        self.hook.appended(self, now, entry)?;
        Ok(seq)
    }
}

impl TenantDb {
    /// A clone carrying the grant's read-only state (its `Admission`).
    fn for_grant(&self, grant: &Admission) -> Self {
        let mut t = self.clone();
        t.frozen = grant.frozen();
        t
    }

    pub fn id(&self) -> WorkspaceId {
        self.id
    }

    /// The keys as they are now (a rotation may replace them any time).
    pub fn keys(&self) -> Arc<TenantKeys> {
        snapshot(&self.keys)
    }

    /// This workspace's directory (`tenants/<id>`), beside its database.
    pub fn dir(&self) -> &std::path::Path {
        self.db.path().parent().unwrap_or(std::path::Path::new("."))
    }

    /// This workspace's attached files (local or in the S3 bucket).
    pub fn files(&self) -> super::blobs::Blobs {
        super::blobs::Blobs::new(
            Arc::clone(&self.files),
            self.dir().to_owned(),
            self.id.to_string(),
        )
    }

    /// Dead once this workspace is closed (evicted from the pool and no
    /// request holding it): what lives beside it in memory (its search
    /// indexes) goes with it.
    pub fn liveness(&self) -> std::sync::Weak<dyn std::any::Any + Send + Sync> {
        let db: Arc<dyn std::any::Any + Send + Sync> = self.db.clone();
        Arc::downgrade(&db)
    }

    /// This workspace's cache of decrypted collection definitions.
    pub fn defs(&self) -> Arc<super::cache::DefCache> {
        Arc::clone(&self.defs)
    }

    /// Why this handle refuses writes, if it does.
    pub fn frozen(&self) -> Option<Frozen> {
        self.frozen
    }

    /// Refuses with 409 `workspace-deleting` / `workspace-moving` when the
    /// workspace is read-only for this handle.
    pub fn writable(&self) -> Result<()> {
        match self.frozen {
            Some(k) => Err(Error::WorkspaceReadOnly(k)),
            None => Ok(()),
        }
    }

    /// Appends one audit entry that records no change (a refused action), even
    /// while the workspace is read-only.
    pub async fn append_audit<F>(&self, now: i64, meta: RequestMeta, entry: F) -> Result<i64>
    where
        F: for<'m> FnOnce(&'m RequestMeta) -> NewEntry<'m> + Send + 'static,
    {
        let cell = Arc::clone(&self.keys);
        self.db
            .write_async(move |tx| {
                super::audit::append(tx, &snapshot(&cell).sealer, now, &entry(&meta))
            })
            .await
    }

    pub async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&TenantTx<'_>) -> Result<T> + Send + 'static,
    {
        self.writable()?;
        let cell = Arc::clone(&self.keys);
        let hook = Arc::clone(&self.hook);
        let workspace = self.id;
        let (out, queued) = self
            .db
            .write_async(move |tx| {
                let k = snapshot(&cell);
                let t = TenantTx {
                    tx: tx.tx(TOKEN),
                    sealer: &k.sealer,
                    blind: &k.blind,
                    workspace,
                    queued: std::cell::Cell::new(false),
                    hook: hook.as_ref(),
                };
                Ok((f(&t)?, t.queued.get()))
            })
            .await?;
        // Answered only after the commit: the deliveries are visible now.
        if queued {
            self.hook.committed(workspace);
        }
        Ok(out)
    }

    /// `record` on the calling thread: one audit entry for something that
    /// changes no data (an export), allowed while the workspace is read-only.
    pub fn append_audit_blocking(&self, now: i64, entry: &NewEntry<'_>) -> Result<i64> {
        self.db
            .write(|tx| super::audit::append(tx, &self.keys().sealer, now, entry))
    }

    pub fn write_blocking<T>(&self, f: impl FnOnce(&TenantTx<'_>) -> Result<T>) -> Result<T> {
        self.writable()?;
        let (out, queued) = self.db.write(|tx| {
            let k = self.keys();
            let t = TenantTx {
                tx: tx.tx(TOKEN),
                sealer: &k.sealer,
                blind: &k.blind,
                workspace: self.id,
                queued: std::cell::Cell::new(false),
                hook: self.hook.as_ref(),
            };
            Ok((f(&t)?, t.queued.get()))
        })?;
        if queued {
            self.hook.committed(self.id);
        }
        Ok(out)
    }

    pub async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Sql, &Sealer) -> Result<T> + Send + 'static,
    {
        let cell = Arc::clone(&self.keys);
        self.db
            .read_async(move |c| f(c, &snapshot(&cell).sealer))
            .await
    }

    pub fn read_blocking<T>(&self, f: impl FnOnce(&dyn Sql, &Sealer) -> Result<T>) -> Result<T> {
        self.db.read(|c| f(c, &self.keys().sealer))
    }

    /// Re-reads the keys from control.db (a rotation added or destroyed one);
    /// every clone of this handle uses them from its next transaction.
    pub fn reload_keys(&self, control: &Control) -> Result<()> {
        self.reload_keys_sealing(control, None)
    }

    /// `reload_keys`, still sealing with `sealing`: every key opens, so a
    /// new key is known to all readers before any value is sealed with it.
    pub fn reload_keys_sealing(&self, control: &Control, sealing: Option<u32>) -> Result<()> {
        let fresh = Arc::new(TenantKeys::from_control(control, self.id, sealing)?);
        match self.keys.write() {
            Ok(mut k) => *k = fresh,
            Err(p) => *p.into_inner() = fresh,
        }
        Ok(())
    }

    /// See `Db::scrub`: runs on the blocking pool.
    pub async fn scrub(&self) -> Result<()> {
        super::db_wal::scrub(Arc::clone(&self.db)).await
    }

    /// Overwrites this database with `src` through SQLite's online backup API
    /// (restore of one workspace). Readers and writers elsewhere wait on the
    /// lock for the moment of the copy.
    pub fn replace_from(&self, src: &dyn Sql) -> Result<()> {
        self.db.replace_from(src)?;
        crate::store::tenant_settings::bump_generation(&self.db)
    }
}

fn snapshot(cell: &KeyCell) -> Arc<TenantKeys> {
    match cell.read() {
        Ok(k) => Arc::clone(&k),
        Err(p) => Arc::clone(&p.into_inner()),
    }
}

/// Lazily opened, pooled workspace databases: at most `capacity` open
/// (`storage.tenant_pool_size`), the least recently used idle one closed to
/// make room, and each closed after `idle` without use (`close_idle`). A
/// handle is idle when no request holds a clone of it: the pool never
/// closes a database under a request, and while more than `capacity` are in
/// use at once it holds them all and shrinks again as they finish.
pub struct TenantPool {
    dir: PathBuf,
    /// Given to every handle: runs beside each audit entry of a write.
    hook: Arc<dyn AuditHook>,
    opts: DbOptions,
    capacity: usize,
    open: Mutex<Lru<TenantDb>>,
    files: Arc<super::blobs::Storage>,
}

/// See `TenantPool::file_stamp`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStamp(pub(super) [(u64, u128); 2]);

/// True while a request (or a job) holds a clone of the handle: the pool's
/// own copy is then not the only one.
fn in_use(t: &TenantDb) -> bool {
    Arc::strong_count(&t.db) > 1
}

impl TenantPool {
    /// `hook` runs beside every workspace audit entry; `app.rs` installs the
    /// webhook outbox. `files`: where attached files' bytes go.
    pub fn new(
        dir: PathBuf,
        opts: DbOptions,
        capacity: usize,
        hook: Arc<dyn AuditHook>,
        files: Arc<super::blobs::Storage>,
    ) -> Self {
        Self {
            dir,
            hook,
            opts,
            capacity: capacity.max(1),
            open: Mutex::new(Lru::default()),
            files,
        }
    }

    /// A workspace's attached files, without opening its database (a
    /// shredded workspace's, a moved-in one's).
    /// Where attached files go on this appliance.
    pub fn storage(&self) -> &super::blobs::Storage {
        &self.files
    }

    pub fn blobs(&self, id: WorkspaceId) -> super::blobs::Blobs {
        super::blobs::Blobs::new(
            Arc::clone(&self.files),
            self.dir.join(id.to_string()),
            id.to_string(),
        )
    }

    /// Whether attached files go to an S3-compatible bucket.
    pub fn files_remote(&self) -> bool {
        self.files.is_remote()
    }

    fn path_for(&self, id: WorkspaceId) -> PathBuf {
        // The id is a parsed UUID, so it cannot contain path separators.
        self.dir.join(id.to_string()).join("data.db")
    }

    fn pooled(&self) -> Result<std::sync::MutexGuard<'_, Lru<TenantDb>>> {
        self.open
            .lock()
            .map_err(|_| Error::internal("tenant pool lock poisoned"))
    }

    /// The pooled handle of the grant's workspace, marked as just used.
    fn cached(&self, grant: &Admission) -> Result<Option<TenantDb>> {
        Ok(self
            .pooled()?
            .get(&grant.workspace())
            .map(|t| t.for_grant(grant)))
    }

    /// Opens the workspace named by the admission (a `Grant` converts). Blocking:
    /// call from the blocking pool or the CLI (`open_async` wraps it).
    pub fn open<G>(&self, control: &Control, grant: &G) -> Result<TenantDb>
    where
        for<'g> &'g G: Into<Admission>,
    {
        let grant: &Admission = &grant.into();
        if let Some(t) = self.cached(grant)? {
            return Ok(t);
        }
        let id = grant.workspace();
        let keys = TenantKeys::from_control(control, id, None)?;
        let path = self.path_for(id);
        if let Some(parent) = path.parent() {
            super::create_private_dir(parent)?;
        }
        let db = Db::open(&path, self.opts, migrations::TENANT)?;
        let handle = TenantDb {
            id,
            db: Arc::new(db),
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            frozen: None,
            hook: Arc::clone(&self.hook),
            defs: Default::default(),
            files: Arc::clone(&self.files),
        };
        let (out, closed) = {
            let mut open = self.pooled()?;
            let mut closed = open.make_room(self.capacity, in_use);
            let (kept, spare) = open.insert(id, handle);
            let out = kept.for_grant(grant);
            closed.extend(spare);
            (out, closed)
        };
        // Closing a database checkpoints its WAL: outside the pool's lock.
        drop(closed);
        Ok(out)
    }

    pub async fn open_async(
        self: &Arc<Self>,
        control: &Arc<Control>,
        grant: impl Into<Admission>,
    ) -> Result<TenantDb> {
        let grant: Admission = grant.into();
        // An open handle needs no blocking work: skip the hop to the pool.
        if let Some(t) = self.cached(&grant)? {
            return Ok(t);
        }
        let pool = Arc::clone(self);
        let control = Arc::clone(control);
        tokio::task::spawn_blocking(move || pool.open(&control, &grant)).await?
    }

    /// Whether the workspace has a pooled handle now.
    pub fn is_open(&self, id: WorkspaceId) -> bool {
        self.open.lock().is_ok_and(|o| o.contains(&id))
    }

    /// Closes the workspace's database if nobody holds it. Blocking.
    pub fn close_if_idle(&self, id: WorkspaceId) {
        self.release(id, 0);
    }

    /// Takes the workspace out of the pool if nobody but the pool and
    /// `holders` other handles (the caller's own) hold it; it closes when
    /// the last of those drops.
    fn release(&self, id: WorkspaceId, holders: usize) {
        let gone = self
            .open
            .lock()
            .ok()
            .and_then(|mut o| o.remove_if(&id, |t| Arc::strong_count(&t.db) <= 1 + holders));
        drop(gone);
    }

    /// `open` for a job that walks many workspaces (checkpoints, backups,
    /// verification): the database is closed again when the visit ends,
    /// unless it was open before (a workspace in use stays pooled) or
    /// someone holds it then. Such a walk keeps one database open at a time
    /// instead of filling the pool with ones no request wants.
    pub fn visit<G>(&self, control: &Control, grant: &G) -> Result<Visit<'_>>
    where
        for<'g> &'g G: Into<Admission>,
    {
        let grant: &Admission = &grant.into();
        let was_open = self.is_open(grant.workspace());
        Ok(Visit {
            pool: self,
            db: self.open::<Admission>(control, grant)?,
            was_open,
        })
    }

    /// Closes every database nobody has used for `idle` and nobody holds now;
    /// returns how many. Blocking (each close checkpoints its WAL).
    pub fn close_idle(&self, idle: std::time::Duration) -> usize {
        let closed = match self.open.lock() {
            Ok(mut open) => open.take_idle(idle, in_use),
            Err(_) => return 0,
        };
        closed.len()
    }

    /// Drops the pooled handle of a workspace (it was shredded or moved
    /// away): its keys leave the pool; requests still holding a clone finish
    /// with it.
    pub fn forget(&self, id: WorkspaceId) {
        let gone = self.open.lock().ok().and_then(|mut open| open.remove(&id));
        drop(gone);
    }

    /// The workspaces with a pooled handle.
    pub fn open_ids(&self) -> Vec<WorkspaceId> {
        self.open.lock().map(|o| o.ids()).unwrap_or_default()
    }

    /// The length and modification time of a workspace's `data.db` and
    /// its WAL, as seen from outside, without opening it: equal stamps taken
    /// before two looks mean nothing committed in between, so a periodic job
    /// can skip a cold workspace instead of opening it. `None` when a file
    /// changed within the last two seconds (a later commit in the same
    /// timestamp tick could leave an equal stamp: too recent to trust, as
    /// git treats a "racy" index) or cannot be read.
    pub fn file_stamp(&self, id: WorkspaceId) -> Option<FileStamp> {
        let db = self.path_for(id);
        let wal = db.with_file_name("data.db-wal");
        let now = std::time::SystemTime::now();
        let one = |p: &std::path::Path| -> Option<(u64, u128)> {
            match std::fs::metadata(p) {
                // An empty WAL holds nothing (opening a database makes one).
                Ok(m) if m.len() == 0 && p == wal => Some((0, 0)),
                Ok(m) => {
                    let t = m.modified().ok()?;
                    let age = now.duration_since(t).ok()?;
                    if age < std::time::Duration::from_secs(2) {
                        return None;
                    }
                    let at = t.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
                    Some((m.len(), at))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some((0, 0)),
                Err(_) => None,
            }
        };
        Some(FileStamp([one(&db)?, one(&wal)?]))
    }

    /// `Db::with_writer` on the workspace's pooled database; `None` when
    /// this process has no writer on it (not pooled, or only read so far)
    /// or when its writer stayed busy for all of `wait`.
    pub fn with_writer<T>(
        &self,
        id: WorkspaceId,
        wait: super::Wait,
        f: impl FnOnce(&dyn super::Sql) -> Result<T>,
    ) -> Option<Result<T>> {
        let db = self.pooled().ok()?.get(&id).map(|t| Arc::clone(&t.db))?;
        db.writer_open()
            .then(|| db.with_writer(wait, f).transpose())?
    }

    /// How many databases the pool holds open now.
    pub fn open_count(&self) -> usize {
        self.open.lock().map(|o| o.len()).unwrap_or(0)
    }

    pub fn tenants_dir(&self) -> &PathBuf {
        &self.dir
    }

    /// Closes every pooled database (clean shutdown).
    pub fn close_all(&self) {
        let all = self.open.lock().map(|mut o| o.drain()).unwrap_or_default();
        for t in &all {
            let _ = t.db.checkpoint();
        }
    }
}

/// See `TenantPool::visit`. Dropping it may close the database: blocking.
pub struct Visit<'a> {
    pool: &'a TenantPool,
    db: TenantDb,
    was_open: bool,
}

impl std::ops::Deref for Visit<'_> {
    type Target = TenantDb;

    fn deref(&self) -> &TenantDb {
        &self.db
    }
}

impl Drop for Visit<'_> {
    fn drop(&mut self) {
        if !self.was_open {
            // Out of the pool unless a request holds it too; it closes when
            // this visit's own handle drops, right after.
            self.pool.release(self.db.id, 1);
        }
    }
}
