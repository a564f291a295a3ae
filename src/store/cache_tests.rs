use super::*;
use crate::store::{Db, connect, migrations, test_options};

/// A control.db with two people in one workspace, each signed in once.
struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
    db: Db,
    ws: WorkspaceId,
    u: UserId,
    v: UserId,
}

const SU: &[u8] = b"session-of-u";
const SV: &[u8] = b"session-of-v";

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("control.db");
        let db = Db::open(&path, test_options(), migrations::CONTROL).unwrap();
        let (ws, u, v) = (
            WorkspaceId::generate(),
            UserId::generate(),
            UserId::generate(),
        );
        let f = Self {
            _dir: dir,
            path,
            db,
            ws,
            u,
            v,
        };
        f.sql(&format!(
            "INSERT INTO workspaces (id, name_ct, created_at, updated_at) VALUES ('{ws}', x'00', 0, 0);
             INSERT INTO users (id, email_bidx, email_ct, created_at, updated_at)
                 VALUES ('{u}', x'01', x'00', 0, 0), ('{v}', x'02', x'00', 0, 0);
             INSERT INTO memberships (workspace_id, user_id, role, created_at)
                 VALUES ('{ws}', '{u}', 'member', 0), ('{ws}', '{v}', 'admin', 0);
             INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at)
                 VALUES (x'{}', '{u}', 0, 0, 9, 9), (x'{}', '{v}', 0, 0, 9, 9);",
            hex::encode(SU),
            hex::encode(SV),
        ));
        f
    }

    /// One commit, as any writer would make it (the `aura` CLI included).
    fn sql(&self, sql: &str) {
        let sql = sql.to_owned();
        self.db
            .write(move |tx| Ok(tx.tx(TOKEN).execute_batch(&sql)?))
            .unwrap();
    }

    /// Caches the sessions still there and both gates, as requests would.
    fn fill(&self, cache: &ControlCache) {
        let v = cache.version().unwrap();
        for (hash, user) in [(SU, self.u), (SV, self.v)] {
            let found = self
                .db
                .read(|c| crate::store::control::find_session(c, hash))
                .unwrap();
            if let Some(found) = found {
                cache.put_session(v, hash.to_vec(), found);
            }
            let gate = self
                .db
                .read(|c| crate::store::mfa::membership_gate(c, self.ws, user))
                .unwrap();
            cache.put_gate(v, self.ws, user, gate);
        }
    }

    /// Which of (u's session, v's session, u's gate, v's gate) are cached,
    /// as the next request finds them.
    fn cached(&self, cache: &ControlCache) -> [bool; 4] {
        cache.version().unwrap();
        [
            cache.session(SU).is_some(),
            cache.session(SV).is_some(),
            cache.gate(self.ws, self.u).is_some(),
            cache.gate(self.ws, self.v).is_some(),
        ]
    }
}

/// A sign-in or a session touch costs no other session its cached entries;
/// a change to an account, a workspace or anything untargeted drops what
/// depends on it, on the very next request.
#[test]
fn a_commit_drops_only_what_it_changed() {
    let f = Fixture::new();
    let cache = ControlCache::new(f.path.clone(), test_options());
    f.fill(&cache);
    assert_eq!(f.cached(&cache), [true; 4]);

    // Someone else signs in (a new session and an audit entry).
    f.sql(&format!(
        "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at)
             VALUES (x'0a0b', '{}', 0, 0, 9, 9)",
        f.u
    ));
    assert_eq!(
        f.cached(&cache),
        [true; 4],
        "a sign-in drops nothing cached"
    );

    // u's session is touched, then logged out.
    f.sql(&format!(
        "UPDATE sessions SET last_seen_at = 1 WHERE id_hash = x'{}'",
        hex::encode(SU)
    ));
    assert_eq!(f.cached(&cache), [false, true, true, true]);
    f.fill(&cache);
    f.sql(&format!(
        "DELETE FROM sessions WHERE id_hash = x'{}'",
        hex::encode(SU)
    ));
    assert_eq!(f.cached(&cache), [false, true, true, true]);

    // v is disabled: v's session and gate go, u's gate stays.
    f.fill(&cache);
    f.sql(&format!(
        "UPDATE users SET disabled = 1 WHERE id = '{}'",
        f.v
    ));
    assert_eq!(f.cached(&cache), [false, false, true, false]);

    // A role change (memberships) is the person's; a suspension is the
    // workspace's, for everyone in it.
    f.sql(&format!(
        "UPDATE users SET disabled = 0 WHERE id = '{}'",
        f.v
    ));
    f.refill(&cache);
    f.sql(&format!(
        "UPDATE memberships SET role = 'viewer' WHERE workspace_id = '{}' AND user_id = '{}'",
        f.ws, f.u
    ));
    assert_eq!(f.cached(&cache), [false, true, false, true]);
    f.refill(&cache);
    f.sql(&format!(
        "UPDATE workspaces SET state = 'suspended' WHERE id = '{}'",
        f.ws
    ));
    assert_eq!(f.cached(&cache), [true, true, false, false]);

    // A table with no targeted trigger empties everything.
    f.sql("UPDATE workspaces SET state = 'active'");
    f.refill(&cache);
    assert_eq!(f.cached(&cache), [true; 4]);
    f.sql("INSERT INTO meta (key, value) VALUES ('any', x'00')");
    assert_eq!(f.cached(&cache), [false; 4]);
}

impl Fixture {
    /// Signs u in again under the same hash and caches everything.
    fn refill(&self, cache: &ControlCache) {
        self.sql(&format!(
            "INSERT OR IGNORE INTO sessions (id_hash, user_id, created_at, last_seen_at, idle_expires_at, absolute_expires_at)
                 VALUES (x'{}', '{}', 0, 0, 9, 9)",
            hex::encode(SU),
            self.u
        ));
        self.fill(cache);
    }
}

/// A value read before a commit must not be cached after the commit was
/// seen: it may be what the commit changed.
#[test]
fn a_value_read_before_a_change_is_not_cached_after_it() {
    let f = Fixture::new();
    let cache = ControlCache::new(f.path.clone(), test_options());
    let before = cache.version().unwrap();
    let stale =
        f.db.read(|c| crate::store::control::find_session(c, SV))
            .unwrap()
            .unwrap();
    f.sql(&format!(
        "UPDATE users SET disabled = 1 WHERE id = '{}'",
        f.v
    ));
    let after = cache.version().unwrap();
    assert_ne!(after, before);
    cache.put_session(before, SV.to_vec(), stale);
    assert!(cache.session(SV).is_none(), "the stale read was cached");
}

/// A cache further behind than the log's length, or whose log was swapped
/// (a standby applying the primary's copy), cannot tell what changed and
/// forgets everything.
#[test]
fn a_cache_that_cannot_tell_what_changed_forgets_everything() {
    let f = Fixture::new();
    let cache = ControlCache::new(f.path.clone(), test_options());
    f.fill(&cache);
    // 4,100 touches of u's session in one commit: the log keeps 4,096.
    let mut many = String::new();
    for i in 0..4_100 {
        many.push_str(&format!(
            "UPDATE sessions SET last_seen_at = {i} WHERE id_hash = x'{}';",
            hex::encode(SU)
        ));
    }
    f.sql(&many);
    assert_eq!(
        f.cached(&cache),
        [false; 4],
        "v's entries outlived a lost change"
    );
    let rows: i64 =
        f.db.read(|c| {
            Ok(c.conn(TOKEN)
                .query_row("SELECT count(*) FROM cache_changes", [], |r| r.get(0))?)
        })
        .unwrap();
    assert!(rows <= 4_096, "the log is trimmed: {rows}");

    f.fill(&cache);
    cache.forget_all();
    assert_eq!(f.cached(&cache), [false; 4]);
}

/// Every control.db table either reports its changes to the caches or is
/// named here as feeding no cached read. A new table must choose.
#[test]
fn every_control_table_reports_its_changes() {
    const FEEDS_NO_CACHE: &[&str] = &[
        "audit_log",
        "audit_checkpoints",
        "audit_verifications",
        "refresh_tokens",
        "magic_links",
        "recovery_codes",
        "cache_changes",
        "schema_migrations",
        "idle_stamps",
    ];
    let f = Fixture::new();
    let (tables, triggers): (Vec<String>, Vec<String>) =
        f.db.read(|c| {
            let c = c.conn(TOKEN);
            let names = |kind: &str| -> rusqlite::Result<Vec<String>> {
                let mut s = c.prepare(
                    "SELECT name FROM sqlite_master WHERE type = ?1 AND name NOT LIKE 'sqlite_%'",
                )?;
                s.query_map([kind], |r| r.get(0))?.collect()
            };
            Ok((names("table")?, names("trigger")?))
        })
        .unwrap();
    assert!(tables.len() > 30, "{tables:?}");
    for t in tables
        .iter()
        .filter(|t| !FEEDS_NO_CACHE.contains(&t.as_str()))
    {
        for ev in ["ins", "upd", "del"] {
            let name = format!("cache_{t}_{ev}");
            assert!(
                triggers.contains(&name),
                "control.db table {t} has no trigger {name}"
            );
        }
    }
    // The tables every cached read joins are targeted, not 'all'.
    let sql: String = f
        .db
        .read(|c| {
            Ok(c.conn(TOKEN).query_row(
                "SELECT group_concat(sql, ' ') FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'cache_%'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    for (t, kind) in [
        ("sessions", "session"),
        ("users", "user"),
        ("memberships", "user"),
        ("totp", "user"),
        ("passkeys", "user"),
        ("workspaces", "workspace"),
        ("workspace_lifecycle", "workspace"),
        ("workspace_sso", "workspace"),
        ("api_tokens", "token"),
        ("token_families", "family"),
    ] {
        let needle =
            format!("ON {t} BEGIN\n    INSERT INTO cache_changes (kind, key) VALUES ('{kind}'");
        assert!(
            sql.contains(&needle),
            "{t} does not report '{kind}' changes"
        );
    }
}

/// Both signals, the WAL-index header and the `PRAGMA data_version`
/// fallback: a commit by another connection changes the number, while
/// reads (which move the read marks just after the headers) do not.
#[test]
fn version_sees_commits_of_other_connections() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.db");
    let opts = test_options();
    let db = Db::open(&path, opts, migrations::TENANT).unwrap();
    let other = connect(&path, opts, false).unwrap();
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
