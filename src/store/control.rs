//! control.db: users, sessions, workspaces, memberships, wrapped keys and the
//! platform audit chain. Person-typed columns are sealed under the platform data
//! key here, so nothing above this module handles ciphertext.

use std::path::Path;
use std::sync::Arc;

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use super::{Db, DbOptions, migrations};
use crate::crypto::blind::normalize_email;
use crate::crypto::jwt::JwtKeys;
use crate::crypto::{BlindIndex, DataKey, MasterKey, Sealer, Slot};
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::Role;
use crate::model::audit::NewEntry;
use crate::model::checkpoint::AuditSigner;

pub(super) const KEY_CHECK: &str = "key_check";
const PLATFORM_SCOPE: &str = "platform";

/// Sealing and blind-index keys of the platform scope.
pub struct PlatformKeys {
    pub sealer: Sealer,
    pub blind: BlindIndex,
}

/// control.db, opened only after the master key proved it matches.
pub struct Control {
    pub db: Arc<Db>,
    pub keys: Arc<PlatformKeys>,
    pub master: Arc<MasterKey>,
    /// Signs audit checkpoints; its secret is sealed under the platform key.
    pub signer: Arc<AuditSigner>,
    /// Signs and checks access JWTs; its secret is sealed the same way.
    pub jwt: Arc<JwtKeys>,
    /// Session and membership lookups, valid while control.db is unchanged.
    pub cache: Arc<super::cache::ControlCache>,
}

impl Control {
    /// Creates control.db with its key check and platform data key. Fails if it
    /// already exists (use `open`).
    pub fn initialize(path: &Path, opts: DbOptions, master: MasterKey) -> Result<Self> {
        if path.exists() {
            return Err(Error::Config(format!("{} already exists", path.display())));
        }
        let db = Db::open(path, opts, migrations::CONTROL)?;
        let check = master.make_key_check()?;
        let pk = DataKey::generate(1);
        let wrapped = master.wrap_key(PLATFORM_SCOPE, &pk)?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        db.write(|tx| {
            let tx = tx.tx(TOKEN);
            tx.execute(
                "INSERT INTO meta(key, value) VALUES (?1, ?2)",
                params![KEY_CHECK, check],
            )?;
            tx.execute(
                "INSERT INTO platform_keys(key_id, wrapped, created_at) VALUES (1, ?1, ?2)",
                params![wrapped, now],
            )?;
            super::master_rotation::record_since(tx, now)
        })?;
        // Put the key check into the main file, so the next start can verify the
        // key read-only, before it writes anything.
        db.checkpoint()?;
        Self::with_keys(db, master)
    }

    /// Opens an existing control.db. The master key is checked first through an
    /// immutable read-only handle: a wrong key changes no file at all.
    pub fn open(path: &Path, opts: DbOptions, master: MasterKey) -> Result<Self> {
        if !path.exists() {
            return Err(Error::Config(format!(
                "{} does not exist; run `aura init` (or `aura serve --dev`) first",
                path.display()
            )));
        }
        let master = super::control_key::key_before_opening(path, master)?;
        let db = Db::open(path, opts, migrations::CONTROL)?;
        // The check above reads the main file only: a master key rotation
        // committed to the WAL but not yet checkpointed shows only here.
        let check: Vec<u8> = db.read(|c| {
            let c = c.conn(TOKEN);
            Ok(
                c.query_row("SELECT value FROM meta WHERE key = ?1", [KEY_CHECK], |r| {
                    r.get(0)
                })?,
            )
        })?;
        let master = match master.verify_key_check(&check) {
            Ok(()) => master,
            Err(e) => db.read(super::control_key::pending_master_key)?.ok_or(e)?,
        };
        Self::with_keys(db, master)
    }

    fn with_keys(db: Db, master: MasterKey) -> Result<Self> {
        let wrapped: Vec<(u32, Vec<u8>)> = db.read(|c| {
            let c = c.conn(TOKEN);
            let mut stmt =
                c.prepare("SELECT key_id, wrapped FROM platform_keys ORDER BY key_id")?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let keys = wrapped
            .iter()
            .map(|(id, w)| master.unwrap_key(PLATFORM_SCOPE, *id, w))
            .collect::<Result<Vec<_>>>()?;
        let newest = keys
            .iter()
            .max_by_key(|k| k.key_id)
            .ok_or(Error::Crypto("control.db has no platform data key"))?;
        let blind = BlindIndex::new(newest);
        let sealer = Sealer::new(PLATFORM_SCOPE, &keys)?;
        let (signer, jwt_key) = db.write(|tx| {
            Ok((
                AuditSigner::from_key(super::keypairs::load_or_create(
                    tx,
                    &sealer,
                    super::keypairs::AUDIT,
                )?),
                super::keypairs::load_or_create(tx, &sealer, super::keypairs::JWT)?,
            ))
        })?;
        let jwt = JwtKeys::new(&jwt_key)?;
        let cache = super::cache::ControlCache::new(db.path().to_owned(), db.opts);
        Ok(Self {
            cache: Arc::new(cache),
            db: Arc::new(db),
            keys: Arc::new(PlatformKeys { sealer, blind }),
            master: Arc::new(master),
            signer: Arc::new(signer),
            jwt: Arc::new(jwt),
        })
    }
}

impl Control {
    /// Appends one entry to the platform chain in a transaction of its own,
    /// for events that change nothing else (exports, verifications).
    pub fn audit_alone(&self, now: i64, entry: &NewEntry<'_>) -> Result<i64> {
        self.db
            .write(|tx| crate::store::audit::append(tx, &self.keys.sealer, now, entry))
    }
}

// ---- users ----------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct UserRow {
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub password_hash: Option<String>,
    pub platform_admin: bool,
    pub disabled: bool,
    pub created_at: i64,
}

pub struct NewUser<'a> {
    pub id: UserId,
    pub email: &'a str,
    pub name: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub platform_admin: bool,
}

pub fn email_index(keys: &PlatformKeys, email: &str) -> Vec<u8> {
    keys.blind.compute("users.email", &normalize_email(email))
}

pub fn insert_user(tx: &dyn SqlTx, keys: &PlatformKeys, u: &NewUser<'_>, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let id = u.id.to_string();
    let email_ct = keys
        .sealer
        .seal_str(Slot::new("users", &id, "email"), &normalize_email(u.email))?;
    let name_ct = u
        .name
        .map(|n| keys.sealer.seal_str(Slot::new("users", &id, "name"), n))
        .transpose()?;
    let r = tx.execute(
        "INSERT INTO users (id, email_bidx, email_ct, name_ct, password_hash, platform_admin,
                            disabled, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7)",
        params![
            id,
            email_index(keys, u.email),
            email_ct,
            name_ct,
            u.password_hash,
            u.platform_admin,
            now
        ],
    );
    match r {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(Error::Validation(vec![crate::error::FieldError {
                field: "email".into(),
                message: "an account with this email already exists".into(),
            }]))
        }
        other => {
            other?;
            Ok(())
        }
    }
}

pub(super) const USER_COLUMNS: &str =
    "id, email_ct, name_ct, password_hash, platform_admin, disabled, created_at";

pub(super) fn user_from_row(keys: &PlatformKeys, r: &rusqlite::Row<'_>) -> Result<UserRow> {
    let id: String = r.get(0)?;
    let email_ct: Vec<u8> = r.get(1)?;
    let name_ct: Option<Vec<u8>> = r.get(2)?;
    Ok(UserRow {
        email: keys
            .sealer
            .open_string(Slot::new("users", &id, "email"), &email_ct)?,
        name: name_ct
            .map(|c| keys.sealer.open_string(Slot::new("users", &id, "name"), &c))
            .transpose()?,
        id: id.parse()?,
        password_hash: r.get(3)?,
        platform_admin: r.get(4)?,
        disabled: r.get(5)?,
        created_at: r.get(6)?,
    })
}

pub fn find_user_by_email(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    email: &str,
) -> Result<Option<UserRow>> {
    let conn = conn.conn(TOKEN);
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_bidx = ?1");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([email_index(keys, email)])?;
    match rows.next()? {
        Some(r) => Ok(Some(user_from_row(keys, r)?)),
        None => Ok(None),
    }
}

pub fn get_user(conn: &dyn Sql, keys: &PlatformKeys, id: UserId) -> Result<Option<UserRow>> {
    let conn = conn.conn(TOKEN);
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
    let mut stmt = conn.prepare(&sql)?;
    let mut rows = stmt.query([id.to_string()])?;
    match rows.next()? {
        Some(r) => Ok(Some(user_from_row(keys, r)?)),
        None => Ok(None),
    }
}

pub fn set_password_hash(tx: &dyn SqlTx, id: UserId, hash: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
        params![id.to_string(), hash, now],
    )?;
    if n == 0 {
        return Err(Error::NotFound("user"));
    }
    Ok(())
}

// ---- workspaces -----------------------------------------------------------

#[derive(Clone, Debug)]
pub struct WorkspaceRow {
    pub id: WorkspaceId,
    pub name: String,
    pub region: String,
    pub state: String,
    pub created_at: i64,
}

pub fn insert_workspace(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    id: WorkspaceId,
    name: &str,
    region: &str,
    wrapped_key: (u32, &[u8]),
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let ids = id.to_string();
    let name_ct = keys
        .sealer
        .seal_str(Slot::new("workspaces", &ids, "name"), name)?;
    tx.execute(
        "INSERT INTO workspaces (id, name_ct, region, state, created_at, updated_at)
         VALUES (?1, ?2, ?3, 'active', ?4, ?4)",
        params![ids, name_ct, region, now],
    )?;
    tx.execute(
        "INSERT INTO workspace_keys (workspace_id, key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![ids, wrapped_key.0, wrapped_key.1, now],
    )?;
    Ok(())
}

fn workspace_from_row(keys: &PlatformKeys, r: &rusqlite::Row<'_>) -> Result<WorkspaceRow> {
    let id: String = r.get(0)?;
    let name_ct: Vec<u8> = r.get(1)?;
    Ok(WorkspaceRow {
        name: keys
            .sealer
            .open_string(Slot::new("workspaces", &id, "name"), &name_ct)?,
        id: id.parse()?,
        region: r.get(2)?,
        state: r.get(3)?,
        created_at: r.get(4)?,
    })
}

pub fn list_workspaces(conn: &dyn Sql, keys: &PlatformKeys) -> Result<Vec<WorkspaceRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT id, name_ct, region, state, created_at FROM workspaces ORDER BY created_at, id",
    )?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(workspace_from_row(keys, r)?);
    }
    Ok(out)
}

pub fn get_workspace(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    id: WorkspaceId,
) -> Result<Option<WorkspaceRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn
        .prepare("SELECT id, name_ct, region, state, created_at FROM workspaces WHERE id = ?1")?;
    let mut rows = stmt.query([id.to_string()])?;
    match rows.next()? {
        Some(r) => Ok(Some(workspace_from_row(keys, r)?)),
        None => Ok(None),
    }
}

pub fn workspace_keys(conn: &dyn Sql, id: WorkspaceId) -> Result<Vec<(u32, Vec<u8>)>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT key_id, wrapped FROM workspace_keys WHERE workspace_id = ?1 ORDER BY key_id",
    )?;
    let rows = stmt.query_map([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

// ---- memberships ----------------------------------------------------------

pub fn insert_membership(
    tx: &dyn SqlTx,
    ws: WorkspaceId,
    user: UserId,
    role: Role,
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO memberships (workspace_id, user_id, role, created_at) VALUES (?1, ?2, ?3, ?4)",
        params![ws.to_string(), user.to_string(), role.as_str(), now],
    )?;
    Ok(())
}

/// The caller's role in an active workspace, if they are a member.
pub fn active_membership(conn: &dyn Sql, ws: WorkspaceId, user: UserId) -> Result<Option<Role>> {
    let conn = conn.conn(TOKEN);
    let role: Option<String> = conn
        .query_row(
            "SELECT m.role FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
             WHERE m.workspace_id = ?1 AND m.user_id = ?2 AND w.state = 'active'",
            params![ws.to_string(), user.to_string()],
            |r| r.get(0),
        )
        .optional()?;
    role.map(|r| r.parse()).transpose()
}

/// A workspace's members with their accounts, for member lists and `member`
/// fields.
pub fn workspace_members(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    ws: WorkspaceId,
) -> Result<Vec<(UserRow, Role)>> {
    let conn = conn.conn(TOKEN);
    let cols = USER_COLUMNS
        .split(", ")
        .map(|c| format!("u.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!(
        "SELECT {cols}, m.role FROM memberships m JOIN users u ON u.id = m.user_id
         WHERE m.workspace_id = ?1 ORDER BY m.created_at, u.id"
    ))?;
    let mut rows = stmt.query([ws.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let role: String = r.get(7)?;
        out.push((user_from_row(keys, r)?, role.parse()?));
    }
    Ok(out)
}

pub fn memberships_for_user(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    user: UserId,
) -> Result<Vec<(WorkspaceRow, Role)>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT w.id, w.name_ct, w.region, w.state, w.created_at, m.role
         FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
         WHERE m.user_id = ?1 ORDER BY w.created_at, w.id",
    )?;
    let mut rows = stmt.query([user.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let role: String = r.get(5)?;
        out.push((workspace_from_row(keys, r)?, role.parse()?));
    }
    Ok(out)
}

// ---- sessions -------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct SessionRow {
    pub id_hash: Vec<u8>,
    pub user_id: UserId,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub idle_expires_at: i64,
    pub absolute_expires_at: i64,
    pub ip: Option<String>,
    /// "Firefox on Linux": see `identity::device`.
    pub device: Option<String>,
    /// Signed in through this workspace's provider (and whether its second
    /// factor counts).
    pub sso: Option<super::sso::SsoMark>,
}

pub fn insert_session(tx: &dyn SqlTx, s: &SessionRow) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, idle_expires_at,
                               absolute_expires_at, ip, device, sso_workspace, sso_mfa)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            s.id_hash,
            s.user_id.to_string(),
            s.created_at,
            s.last_seen_at,
            s.idle_expires_at,
            s.absolute_expires_at,
            s.ip,
            s.device,
            s.sso.map(|m| m.workspace.to_string()),
            s.sso.is_some_and(|m| m.mfa)
        ],
    )?;
    Ok(())
}

/// A session with its user's state.
#[derive(Clone, Debug)]
pub struct SessionLookup {
    pub session: SessionRow,
    pub user_disabled: bool,
    pub platform_admin: bool,
}

pub fn find_session(conn: &dyn Sql, id_hash: &[u8]) -> Result<Option<SessionLookup>> {
    let conn = conn.conn(TOKEN);
    let row = conn
        .query_row(
            "SELECT s.id_hash, s.user_id, s.created_at, s.last_seen_at, s.idle_expires_at,
                    s.absolute_expires_at, s.ip, u.disabled, u.platform_admin, s.device,
                    s.sso_workspace, s.sso_mfa
             FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id_hash = ?1",
            [id_hash],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, bool>(7)?,
                    r.get::<_, bool>(8)?,
                    r.get::<_, Option<String>>(9)?,
                    r.get::<_, Option<String>>(10)?,
                    r.get::<_, bool>(11)?,
                ))
            },
        )
        .optional()?;
    row.map(
        |(h, u, c, l, i, a, ip, disabled, admin, device, sso_ws, sso_mfa)| {
            Ok(SessionLookup {
                session: SessionRow {
                    id_hash: h,
                    user_id: u.parse()?,
                    created_at: c,
                    last_seen_at: l,
                    idle_expires_at: i,
                    absolute_expires_at: a,
                    ip,
                    device,
                    sso: sso_ws
                        .map(|w| {
                            Ok::<_, crate::error::Error>(super::sso::SsoMark {
                                workspace: w.parse()?,
                                mfa: sso_mfa,
                            })
                        })
                        .transpose()?,
                },
                user_disabled: disabled,
                platform_admin: admin,
            })
        },
    )
    .transpose()
}

pub fn touch_session(tx: &dyn SqlTx, id_hash: &[u8], now: i64, idle_expires_at: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE sessions SET last_seen_at = ?2, idle_expires_at = min(?3, absolute_expires_at)
         WHERE id_hash = ?1",
        params![id_hash, now, idle_expires_at],
    )?;
    Ok(())
}

pub fn delete_session(tx: &dyn SqlTx, id_hash: &[u8]) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [id_hash])?)
}

pub fn delete_user_sessions(tx: &dyn SqlTx, user: UserId) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "DELETE FROM sessions WHERE user_id = ?1",
        [user.to_string()],
    )?)
}

pub fn delete_expired_sessions(tx: &dyn SqlTx, now: i64) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "DELETE FROM sessions WHERE idle_expires_at <= ?1 OR absolute_expires_at <= ?1",
        [now],
    )?)
}

pub fn workspace_ids(conn: &dyn Sql) -> Result<Vec<WorkspaceId>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT id FROM workspaces ORDER BY created_at, id")?;
    let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
    rows.map(|r| r.map_err(Error::from).and_then(|s| s.parse()))
        .collect()
}
