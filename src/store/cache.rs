//! In-memory caches in front of the reads every request repeats: the
//! credential (a browser session, an API token, an access token's family)
//! and the membership gate (control.db), and each workspace's decrypted
//! collection definitions (its data.db).
//!
//! Invalidation is by construction, not by remembering to call something:
//! - control.db's triggers write what each commit changed into its
//!   `cache_changes` table (migration 0021), whoever the writer is: this
//!   process or another (the `aura` CLI beside a running server). A change
//!   number (`Watch`) notices every commit: it follows the WAL-index header
//!   at the start of control.db's `-shm` file (one `pread`, no lock), with
//!   `PRAGMA data_version` of a dedicated connection as the fallback. When
//!   it moves, the new `cache_changes` rows are read and exactly the entries
//!   they name are dropped (a session, an API token, a token family, all of
//!   one account's or one workspace's entries) before the next request
//!   reads the maps. A sign-in or a session touch therefore costs the other
//!   sessions nothing, while a logout, password change, disable, role
//!   change, removal, suspension, deletion or move freeze, or MFA policy
//!   still applies on the very next request. When the rows cannot tell
//!   (a table without targeted triggers changed, the cache fell more than
//!   the log's length behind, the file was replaced), every map is emptied.
//! - A value read before a change is never cached after it: `put` takes the
//!   change number read before the value was read, and is ignored once the
//!   number has moved.
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
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::Connection;
use rusqlite::types::Value;

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

/// What one `cache_changes` row asks to drop.
#[derive(Debug, PartialEq)]
enum Change {
    Session(Vec<u8>),
    Token(Vec<u8>),
    Family(String),
    User(UserId),
    Workspace(WorkspaceId),
    All,
}

impl Change {
    /// An unknown kind or a key of the wrong type drops everything.
    fn from_row(kind: &str, key: Value) -> Change {
        match (kind, key) {
            ("session", Value::Blob(b)) => Change::Session(b),
            ("token", Value::Blob(b)) => Change::Token(b),
            ("family", Value::Text(t)) => Change::Family(t),
            ("user", Value::Text(t)) => t.parse().map_or(Change::All, Change::User),
            ("workspace", Value::Text(t)) => t.parse().map_or(Change::All, Change::Workspace),
            _ => Change::All,
        }
    }
}

/// The cached control.db reads, all valid as of `generation`.
struct Maps {
    generation: i64,
    sessions: HashMap<Vec<u8>, SessionLookup>,
    /// `None` is a cached "not a member".
    gates: HashMap<(WorkspaceId, UserId), Option<Gate>>,
    /// API tokens by hash; only live ones are cached.
    api_tokens: HashMap<Vec<u8>, TokenAuth>,
    /// Access-token families by id.
    families: HashMap<String, FamilyState>,
}

impl Maps {
    fn new() -> Self {
        Self {
            generation: 0,
            sessions: HashMap::new(),
            gates: HashMap::new(),
            api_tokens: HashMap::new(),
            families: HashMap::new(),
        }
    }

    fn drop_matching(&mut self, change: &Change) {
        match change {
            Change::Session(h) => {
                self.sessions.remove(h);
            }
            Change::Token(h) => {
                self.api_tokens.remove(h);
            }
            Change::Family(id) => {
                self.families.remove(id);
            }
            Change::User(u) => {
                self.sessions.retain(|_, s| s.session.user_id != *u);
                self.gates.retain(|(_, user), _| user != u);
                self.api_tokens.retain(|_, t| t.user_id != *u);
                self.families.retain(|_, f| f.user_id != *u);
            }
            Change::Workspace(ws) => {
                self.gates.retain(|(w, _), _| w != ws);
                self.api_tokens.retain(|_, t| t.workspace_id != *ws);
            }
            Change::All => {
                self.sessions.clear();
                self.gates.clear();
                self.api_tokens.clear();
                self.families.clear();
            }
        }
    }
}

/// Inserts unless the map is at its bound, in which case it is emptied
/// first.
fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, value);
}

/// The length of the two copies of the WAL-index header at the start of a
/// WAL database's `-shm` file (SQLite's walformat.html, section 2.1).
const WAL_INDEX_HEADERS: usize = 96;

/// Notices commits to control.db, by any connection of any process, and
/// reads what they changed.
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
/// only reads the change log once more. The connection stays open so the
/// `-shm` file is never removed under the watch (SQLite deletes it only when
/// the last connection closes). If the file cannot be read, the watch falls
/// back to `PRAGMA data_version` for good.
struct Watch {
    conn: Connection,
    shm: Option<std::fs::File>,
    header: [u8; WAL_INDEX_HEADERS],
    data_version: i64,
    /// The newest `cache_changes` row already applied to the maps; `None`
    /// when the database has no change log (every change empties the maps).
    applied: Option<i64>,
}

/// What a moved change number found in the log.
enum Found {
    /// The rows after the last applied one, and the newest row's number.
    Changes(Vec<Change>, i64),
    /// The log cannot say what changed (the cache fell behind its length,
    /// the file was replaced, or there is no log).
    Unknown(Option<i64>),
}

impl Watch {
    fn open(path: &std::path::Path, opts: DbOptions) -> Result<Self> {
        let conn = super::connect(path, opts, false)?;
        let mut w = Self {
            conn,
            shm: None,
            header: [0; WAL_INDEX_HEADERS],
            data_version: i64::MIN,
            applied: None,
        };
        // A read transaction maps (and if need be creates) the -shm file.
        w.data_version_moved()?;
        let mut shm_path = path.as_os_str().to_owned();
        shm_path.push("-shm");
        match std::fs::File::open(&shm_path) {
            Ok(f) => w.shm = Some(f),
            Err(e) => {
                tracing::debug!(error = %e, "control.db's WAL index is not readable; caches use PRAGMA data_version")
            }
        }
        if let Found::Unknown(newest) = w.changes()? {
            w.applied = newest;
        }
        Ok(w)
    }

    /// Whether anything committed since the last call.
    fn moved(&mut self) -> Result<bool> {
        if let Some(shm) = &self.shm {
            let mut now = [0u8; WAL_INDEX_HEADERS];
            match std::os::unix::fs::FileExt::read_exact_at(shm, &mut now, 0) {
                Ok(()) => {
                    let moved = now != self.header;
                    self.header = now;
                    return Ok(moved);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read control.db's WAL index; caches use PRAGMA data_version");
                    self.shm = None;
                }
            }
        }
        self.data_version_moved()
    }

    fn data_version_moved(&mut self) -> Result<bool> {
        let mut stmt = self.conn.prepare_cached("PRAGMA data_version")?;
        let dv: i64 = stmt.query_row([], |r| r.get(0))?;
        let moved = dv != self.data_version;
        self.data_version = dv;
        Ok(moved)
    }

    /// The log's rows from the last applied one on, in one read.
    fn changes(&mut self) -> Result<Found> {
        let from = self.applied.unwrap_or(0);
        let rows: Vec<(i64, String, Value)> = {
            let stmt = self.conn.prepare_cached(
                "SELECT seq, kind, key FROM cache_changes WHERE seq >= ?1 ORDER BY seq",
            );
            let mut stmt = match stmt {
                Ok(s) => s,
                // control.db before migration 0021 (or another database).
                Err(_) => return Ok(Found::Unknown(None)),
            };
            let rows = stmt.query_map([from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let newest = rows.last().map(|(seq, _, _)| *seq);
        // The last applied row must still be there: otherwise the log was
        // trimmed past it or the file is another one.
        match (self.applied, rows.first()) {
            (Some(applied), Some((first, _, _))) if *first == applied => {
                let changes = rows
                    .into_iter()
                    .skip(1)
                    .map(|(_, kind, key)| Change::from_row(&kind, key))
                    .collect();
                Ok(Found::Changes(
                    changes,
                    applied.max(newest.unwrap_or(applied)),
                ))
            }
            _ => Ok(Found::Unknown(newest)),
        }
    }
}

/// The control.db caches of one running appliance.
pub struct ControlCache {
    path: PathBuf,
    opts: DbOptions,
    /// Opened on first use, so CLI commands that never authenticate a
    /// request open nothing extra.
    watch: Mutex<Option<Watch>>,
    maps: Mutex<Maps>,
}

impl ControlCache {
    pub fn new(path: PathBuf, opts: DbOptions) -> Self {
        Self {
            path,
            opts,
            watch: Mutex::new(None),
            maps: Mutex::new(Maps::new()),
        }
    }

    fn maps(&self) -> Option<MutexGuard<'_, Maps>> {
        self.maps.lock().ok()
    }

    /// A number that moves whenever anything commits to control.db, in this
    /// process or another; by the time it is returned, the maps hold nothing
    /// those commits changed. Read it before reading what is to be cached.
    pub fn version(&self) -> Result<i64> {
        let mut watch = self
            .watch
            .lock()
            .map_err(|_| Error::internal("cache watch lock poisoned"))?;
        let w = match watch.as_mut() {
            Some(w) => w,
            None => watch.insert(Watch::open(&self.path, self.opts)?),
        };
        // The log is read before the maps are locked, so requests keep
        // reading them meanwhile: they all read the number before this.
        // A log that cannot be read (the move is already recorded) empties
        // everything rather than leave the change unapplied.
        let found = if w.moved()? {
            Some(w.changes().unwrap_or_else(|e| {
                tracing::warn!(error = %e, "cannot read control.db's change log; caches emptied");
                Found::Unknown(None)
            }))
        } else {
            None
        };
        let mut maps = self
            .maps
            .lock()
            .map_err(|_| Error::internal("cache lock poisoned"))?;
        if let Some(found) = found {
            match found {
                Found::Changes(changes, newest) => {
                    for c in &changes {
                        maps.drop_matching(c);
                    }
                    w.applied = Some(newest);
                }
                Found::Unknown(newest) => {
                    maps.drop_matching(&Change::All);
                    w.applied = newest;
                }
            }
            maps.generation += 1;
        }
        Ok(maps.generation)
    }

    /// Empties every map, for when control.db's content was swapped under
    /// it (a standby applying the primary's copy).
    pub fn forget_all(&self) {
        if let Some(mut m) = self.maps() {
            m.drop_matching(&Change::All);
            m.generation += 1;
        }
    }

    pub fn session(&self, id_hash: &[u8]) -> Option<SessionLookup> {
        self.maps()?.sessions.get(id_hash).cloned()
    }

    pub fn put_session(&self, read_at: i64, id_hash: Vec<u8>, found: SessionLookup) {
        if let Some(mut m) = self.maps().filter(|m| m.generation == read_at) {
            bounded_insert(&mut m.sessions, id_hash, found);
        }
    }

    pub fn api_token(&self, hash: &[u8]) -> Option<TokenAuth> {
        self.maps()?.api_tokens.get(hash).cloned()
    }

    pub fn put_api_token(&self, read_at: i64, hash: Vec<u8>, found: TokenAuth) {
        if let Some(mut m) = self.maps().filter(|m| m.generation == read_at) {
            bounded_insert(&mut m.api_tokens, hash, found);
        }
    }

    pub fn family(&self, id: &str) -> Option<FamilyState> {
        self.maps()?.families.get(id).cloned()
    }

    pub fn put_family(&self, read_at: i64, id: String, found: FamilyState) {
        if let Some(mut m) = self.maps().filter(|m| m.generation == read_at) {
            bounded_insert(&mut m.families, id, found);
        }
    }

    /// `Some(None)` is a cached "not a member".
    pub fn gate(&self, ws: WorkspaceId, user: UserId) -> Option<Option<Gate>> {
        self.maps()?.gates.get(&(ws, user)).cloned()
    }

    pub fn put_gate(&self, read_at: i64, ws: WorkspaceId, user: UserId, gate: Option<Gate>) {
        if let Some(mut m) = self.maps().filter(|m| m.generation == read_at) {
            bounded_insert(&mut m.gates, (ws, user), gate);
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
#[path = "cache_tests.rs"]
mod tests;
