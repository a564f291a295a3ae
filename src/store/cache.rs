//! In-memory caches in front of the reads every request repeats: the
//! credential (a browser session, an API token, an access token's family)
//! and the membership gate (control.db), and each workspace's decrypted
//! collection definitions (its data.db).
//!
//! Invalidation is by construction, not by remembering to call something:
//! - control.db entries are tagged with a change number (`Watch`), read
//!   before the entry's data was read. It moves whenever any connection
//!   commits to control.db, in this process or another (the `aura` CLI
//!   beside a running server): it follows the WAL-index header at the start
//!   of control.db's `-shm` file (one `pread`, no lock), with `PRAGMA
//!   data_version` of a dedicated connection as the fallback. A cached entry
//!   is served only while the number is unchanged, so every change (logout,
//!   password change, disable, role change, removal, suspend, deletion and
//!   move freezes, MFA policy, a session touch) empties every map before the
//!   next request reads them.
//! - a collection definition is cached against its ciphertext: the row is
//!   read on every request and the cached plaintext is used only when the
//!   stored ciphertext is byte-for-byte the one it was decrypted from. Each
//!   seal uses a fresh nonce, so any change (an edit, a restore, a move)
//!   misses.
//!
//! Time-based rules (session idle and absolute expiry, token and family
//! expiry) are not cached: the callers compare the cached timestamps with the
//! clock on every request. Only live credentials are cached; an unknown or
//! dead one is looked up again each time.

use std::collections::HashMap;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::DbOptions;
use super::control::SessionLookup;
use super::handle::{Sql, TOKEN};
use super::mfa::Gate;
use super::records::{CollectionRow, RecordRow, record_from_row};
use super::tokens::{FamilyState, TokenAuth};
use crate::crypto::{Sealer, Slot};
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::schema::Definition;

/// Above this many entries a map is emptied before the next insert, which
/// bounds the memory at a few MiB whatever the traffic.
const MAX_ENTRIES: usize = 20_000;
/// Collection definitions kept per workspace.
const MAX_DEFS: usize = 512;

/// Entries that were read while control.db was at `version`.
struct Tagged<K, V> {
    version: i64,
    map: HashMap<K, V>,
}

impl<K: Eq + Hash, V: Clone> Tagged<K, V> {
    fn new() -> Self {
        Self {
            version: i64::MIN,
            map: HashMap::new(),
        }
    }

    fn get<Q>(&mut self, current: i64, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        if self.version != current {
            self.map.clear();
            self.version = current;
            return None;
        }
        self.map.get(key).cloned()
    }

    /// `read_at` is the version observed before the value was read.
    fn put(&mut self, read_at: i64, key: K, value: V) {
        if self.version != read_at {
            self.map.clear();
            self.version = read_at;
        }
        if self.map.len() >= MAX_ENTRIES {
            self.map.clear();
        }
        self.map.insert(key, value);
    }
}

/// The length of the two copies of the WAL-index header at the start of a
/// WAL database's `-shm` file (SQLite's walformat.html, section 2.1).
const WAL_INDEX_HEADERS: usize = 96;

/// Notices commits to control.db, by any connection of any process.
///
/// In WAL mode every commit rewrites the WAL-index header, kept twice at the
/// start of the `-shm` file, which every connection maps (its frame count,
/// change counter, salts and checksum all move). A commit becomes visible to
/// readers only once both copies hold the new header, so a header read that
/// still shows the old bytes proves no reader can see the commit yet, and a
/// value read after seeing a header is at least that new. Reading the 96
/// bytes with one `pread` costs a fraction of `PRAGMA data_version`, which
/// takes and drops the WAL read lock with two `fcntl` calls on every request.
///
/// A header caught mid-update (the copies differ) counts as a change, which
/// only empties the caches once more. The connection stays open so the
/// `-shm` file is never removed under the watch (SQLite deletes it only when
/// the last connection closes). If the file cannot be read, the watch falls
/// back to `PRAGMA data_version` for good.
struct Watch {
    conn: Connection,
    shm: Option<std::fs::File>,
    header: [u8; WAL_INDEX_HEADERS],
    data_version: i64,
    /// Goes up by one whenever either signal changes.
    generation: i64,
}

impl Watch {
    fn open(path: &std::path::Path, opts: DbOptions) -> Result<Self> {
        let conn = super::connect(path, opts, false)?;
        let mut w = Self {
            conn,
            shm: None,
            header: [0; WAL_INDEX_HEADERS],
            data_version: i64::MIN,
            generation: 0,
        };
        // A read transaction maps (and if need be creates) the -shm file.
        w.data_version()?;
        let mut shm_path = path.as_os_str().to_owned();
        shm_path.push("-shm");
        match std::fs::File::open(&shm_path) {
            Ok(f) => w.shm = Some(f),
            Err(e) => {
                tracing::debug!(error = %e, "control.db's WAL index is not readable; caches use PRAGMA data_version")
            }
        }
        Ok(w)
    }

    fn version(&mut self) -> Result<i64> {
        if let Some(shm) = &self.shm {
            let mut now = [0u8; WAL_INDEX_HEADERS];
            match std::os::unix::fs::FileExt::read_exact_at(shm, &mut now, 0) {
                Ok(()) => {
                    if now != self.header {
                        self.header = now;
                        self.generation += 1;
                    }
                    return Ok(self.generation);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read control.db's WAL index; caches use PRAGMA data_version");
                    self.shm = None;
                }
            }
        }
        self.data_version()
    }

    fn data_version(&mut self) -> Result<i64> {
        let mut stmt = self.conn.prepare_cached("PRAGMA data_version")?;
        let dv: i64 = stmt.query_row([], |r| r.get(0))?;
        if dv != self.data_version {
            self.data_version = dv;
            self.generation += 1;
        }
        Ok(self.generation)
    }
}

/// The control.db caches of one running appliance.
pub struct ControlCache {
    path: PathBuf,
    opts: DbOptions,
    /// Opened on first use, so CLI commands that never authenticate a
    /// request open nothing extra.
    watch: Mutex<Option<Watch>>,
    sessions: Mutex<Tagged<Vec<u8>, SessionLookup>>,
    gates: Mutex<Tagged<(WorkspaceId, UserId), Option<Gate>>>,
    /// API tokens by hash; only live ones are cached.
    api_tokens: Mutex<Tagged<Vec<u8>, TokenAuth>>,
    /// Access-token families by id.
    families: Mutex<Tagged<String, FamilyState>>,
}

impl ControlCache {
    pub fn new(path: PathBuf, opts: DbOptions) -> Self {
        Self {
            path,
            opts,
            watch: Mutex::new(None),
            sessions: Mutex::new(Tagged::new()),
            gates: Mutex::new(Tagged::new()),
            api_tokens: Mutex::new(Tagged::new()),
            families: Mutex::new(Tagged::new()),
        }
    }

    /// A number that changes whenever anything commits to control.db, in
    /// this process or another. Read it before reading what is to be cached.
    pub fn version(&self) -> Result<i64> {
        let mut watch = self
            .watch
            .lock()
            .map_err(|_| Error::internal("cache watch lock poisoned"))?;
        let w = match watch.as_mut() {
            Some(w) => w,
            None => watch.insert(Watch::open(&self.path, self.opts)?),
        };
        w.version()
    }

    pub fn session(&self, version: i64, id_hash: &[u8]) -> Option<SessionLookup> {
        self.sessions.lock().ok()?.get(version, id_hash)
    }

    pub fn put_session(&self, read_at: i64, id_hash: Vec<u8>, found: SessionLookup) {
        if let Ok(mut m) = self.sessions.lock() {
            m.put(read_at, id_hash, found);
        }
    }

    pub fn api_token(&self, version: i64, hash: &[u8]) -> Option<TokenAuth> {
        self.api_tokens.lock().ok()?.get(version, hash)
    }

    pub fn put_api_token(&self, read_at: i64, hash: Vec<u8>, found: TokenAuth) {
        if let Ok(mut m) = self.api_tokens.lock() {
            m.put(read_at, hash, found);
        }
    }

    pub fn family(&self, version: i64, id: &str) -> Option<FamilyState> {
        self.families.lock().ok()?.get(version, id)
    }

    pub fn put_family(&self, read_at: i64, id: String, found: FamilyState) {
        if let Ok(mut m) = self.families.lock() {
            m.put(read_at, id, found);
        }
    }

    /// `Some(None)` is a cached "not a member".
    pub fn gate(&self, version: i64, ws: WorkspaceId, user: UserId) -> Option<Option<Gate>> {
        self.gates.lock().ok()?.get(version, &(ws, user))
    }

    pub fn put_gate(&self, read_at: i64, ws: WorkspaceId, user: UserId, gate: Option<Gate>) {
        if let Ok(mut m) = self.gates.lock() {
            m.put(read_at, (ws, user), gate);
        }
    }
}

/// A decrypted definition and the ciphertext it was decrypted from.
type CachedDef = (Vec<u8>, Arc<Definition>);

/// One workspace's decrypted collection definitions, each with the
/// ciphertext it came from. Lives in the pooled `TenantDb`, so it is dropped
/// with the workspace's keys.
#[derive(Default)]
pub struct DefCache {
    defs: Mutex<HashMap<String, CachedDef>>,
}

/// `store::records::get_collection` through the cache: the row is read every
/// time; only the decryption and parsing of an unchanged definition is saved.
pub fn get_collection(
    conn: &dyn Sql,
    sealer: &Sealer,
    cache: &DefCache,
    id: &str,
) -> Result<Option<CollectionRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(
        "SELECT id, team_id, def_ct, created_at, updated_at FROM collections WHERE id = ?1",
    )?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(collection_from_row(sealer, cache, r)?)),
        None => Ok(None),
    }
}

/// Every collection of the workspace, oldest first, each definition from the
/// cache while its ciphertext is unchanged (a reader's scope is built per
/// request).
pub fn list_collections(
    conn: &dyn Sql,
    sealer: &Sealer,
    cache: &DefCache,
) -> Result<Vec<CollectionRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(
        "SELECT id, team_id, def_ct, created_at, updated_at FROM collections ORDER BY created_at, id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(collection_from_row(sealer, cache, r)?);
    }
    Ok(out)
}

/// `get_collection` and the live record `record` of that collection, in one
/// statement: one read of the WAL index and its locks instead of two, on the
/// route every integration polls.
pub fn get_collection_and_record(
    conn: &dyn Sql,
    sealer: &Sealer,
    cache: &DefCache,
    collection: &str,
    record: &str,
) -> Result<Option<(CollectionRow, Option<RecordRow>)>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(concat!(
        "SELECT c.id, c.team_id, c.def_ct, c.created_at, c.updated_at, ",
        crate::store::records::record_cols!("r."),
        " FROM collections c LEFT JOIN records r",
        " ON r.id = ?2 AND r.collection_id = c.id AND r.deleted = 0",
        " WHERE c.id = ?1"
    ))?;
    let mut rows = stmt.query([collection, record])?;
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let coll = collection_from_row(sealer, cache, r)?;
    let rec = match r.get_ref(5)? {
        rusqlite::types::ValueRef::Null => None,
        _ => Some(record_from_row(sealer, r, 5)?),
    };
    Ok(Some((coll, rec)))
}

/// A `collections` row (id, team_id, def_ct, created_at, updated_at), its
/// definition from the cache while the ciphertext is unchanged.
fn collection_from_row(
    sealer: &Sealer,
    cache: &DefCache,
    r: &rusqlite::Row<'_>,
) -> Result<CollectionRow> {
    let id: String = r.get(0)?;
    let ct = r.get_ref(2)?.as_blob().map_err(rusqlite::Error::from)?;
    let cached = cache
        .defs
        .lock()
        .ok()
        .and_then(|m| m.get(&id).filter(|(c, _)| c == ct).map(|(_, d)| d.clone()));
    let def = match cached {
        Some(d) => d,
        None => {
            let def: Arc<Definition> = Arc::new(serde_json::from_slice(
                &sealer.open(Slot::new("collections", &id, "def"), ct)?,
            )?);
            if let Ok(mut m) = cache.defs.lock() {
                if m.len() >= MAX_DEFS {
                    m.clear();
                }
                m.insert(id.clone(), (ct.to_vec(), def.clone()));
            }
            def
        }
    };
    Ok(CollectionRow {
        id,
        team_id: r.get(1)?,
        def,
        created_at: r.get(3)?,
        updated_at: r.get(4)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagged_entries_die_with_their_version() {
        let mut t: Tagged<u8, &str> = Tagged::new();
        t.put(7, 1, "a");
        assert_eq!(t.get(7, &1), Some("a"));
        assert_eq!(t.get(8, &1), None, "a newer version empties the map");
        assert_eq!(t.get(7, &1), None);
        // A value read before a change must not come back after it.
        t.put(8, 2, "b");
        t.put(7, 3, "stale");
        assert_eq!(t.get(8, &2), None);
        assert_eq!(t.get(8, &3), None);
    }

    /// Both signals, the WAL-index header and the `PRAGMA data_version`
    /// fallback: a commit by another connection changes the number, while
    /// reads (which move the read marks just after the headers) do not.
    #[test]
    fn version_sees_commits_of_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.db");
        let opts = crate::store::test_options();
        let db = super::super::Db::open(&path, opts, super::super::migrations::TENANT).unwrap();
        let other = super::super::connect(&path, opts, false).unwrap();
        let mut n = 0;
        let mut commit = || {
            n += 1;
            db.write(move |tx| {
                let tx = tx.tx(TOKEN);
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, x'00')",
                    [format!("k{n}")],
                )?;
                Ok(())
            })
            .unwrap();
        };
        for via_shm in [true, false] {
            let cache = ControlCache::new(path.clone(), opts);
            let v1 = cache.version().unwrap();
            if !via_shm {
                let mut w = cache.watch.lock().unwrap();
                let w = w.as_mut().unwrap();
                assert!(w.shm.is_some(), "the WAL index is read on Linux");
                w.shm = None;
            }
            assert_eq!(cache.version().unwrap(), v1, "no commit, no change");
            let _: i64 = other
                .query_row("SELECT count(*) FROM meta", [], |r| r.get(0))
                .unwrap();
            assert_eq!(cache.version().unwrap(), v1, "a read is not a change");
            commit();
            let v2 = cache.version().unwrap();
            assert_ne!(v2, v1, "a commit is a change (via_shm {via_shm})");
            assert_eq!(cache.version().unwrap(), v2);
            commit();
            assert_ne!(cache.version().unwrap(), v2);
        }
    }
}
