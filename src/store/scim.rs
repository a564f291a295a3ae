//! SQL for SCIM provisioning in control.db: each workspace's one SCIM bearer
//! token (kept as its SHA-256) and the people its identity provider manages
//! (`scim_users`, the provider's `externalId` sealed under the platform key).
//! Every statement names the workspace.

use rusqlite::{OptionalExtension, params};

use super::control::PlatformKeys;
use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::Slot;
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::Role;

// ---- the token ----------------------------------------------------------------

/// A workspace's SCIM token as the settings page shows it (never the secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScimTokenRow {
    pub id: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

fn token_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ScimTokenRow> {
    Ok(ScimTokenRow {
        id: r.get(0)?,
        created_by: r.get(1)?,
        created_at: r.get(2)?,
        last_used_at: r.get(3)?,
    })
}

pub fn scim_token(conn: &dyn Sql, ws: WorkspaceId) -> Result<Option<ScimTokenRow>> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT id, created_by, created_at, last_used_at FROM scim_tokens
             WHERE workspace_id = ?1",
            [ws.to_string()],
            token_row,
        )
        .optional()?)
}

/// Issues the workspace's token, replacing the one before (returned, for the
/// audit entry): a rotation ends the old token in the same transaction.
pub fn put_scim_token(
    tx: &dyn SqlTx,
    ws: WorkspaceId,
    id: &str,
    hash: &[u8],
    created_by: &str,
    now: i64,
) -> Result<Option<ScimTokenRow>> {
    let before = scim_token(tx, ws)?;
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO scim_tokens (workspace_id, id, hash, created_by, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT(workspace_id) DO UPDATE SET id = excluded.id, hash = excluded.hash,
             created_by = excluded.created_by, created_at = excluded.created_at,
             last_used_at = NULL",
        params![ws.to_string(), id, hash, created_by, now],
    )?;
    Ok(before)
}

/// Revokes the workspace's token; `NotFound` when it has none.
pub fn delete_scim_token(tx: &dyn SqlTx, ws: WorkspaceId) -> Result<ScimTokenRow> {
    let before = scim_token(tx, ws)?.ok_or(Error::NotFound("SCIM token"))?;
    let tx = tx.tx(TOKEN);
    tx.execute(
        "DELETE FROM scim_tokens WHERE workspace_id = ?1",
        [ws.to_string()],
    )?;
    Ok(before)
}

/// The token presented on `ws`'s SCIM routes, if it is that workspace's
/// live token and the workspace is active or being deleted (read-only); a
/// token of another workspace is found nowhere here.
pub fn find_scim_token(
    conn: &dyn Sql,
    ws: WorkspaceId,
    hash: &[u8],
) -> Result<Option<ScimTokenRow>> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT t.id, t.created_by, t.created_at, t.last_used_at
             FROM scim_tokens t JOIN workspaces w ON w.id = t.workspace_id
             WHERE t.workspace_id = ?1 AND t.hash = ?2 AND w.state IN ('active', 'deleting')",
            params![ws.to_string(), hash],
            token_row,
        )
        .optional()?)
}

pub fn touch_scim_token(tx: &dyn SqlTx, ws: WorkspaceId, id: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE scim_tokens SET last_used_at = ?3 WHERE workspace_id = ?1 AND id = ?2",
        params![ws.to_string(), id, now],
    )?;
    Ok(())
}

// ---- the people the provider manages ---------------------------------------------

/// How a person came under the provider's management.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// SCIM made the account.
    Created,
    /// SCIM added an account that existed already.
    Linked,
    /// A member the provider first changed (matched by `userName`).
    Adopted,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Created => "created",
            Origin::Linked => "linked",
            Origin::Adopted => "adopted",
        }
    }

    fn parse(s: &str) -> Result<Self> {
        match s {
            "created" => Ok(Origin::Created),
            "linked" => Ok(Origin::Linked),
            "adopted" => Ok(Origin::Adopted),
            other => Err(Error::internal(format!("unknown SCIM origin {other}"))),
        }
    }
}

#[derive(Clone, Debug)]
pub struct ScimUserRow {
    pub user_id: UserId,
    pub origin: Origin,
    pub external_id: Option<String>,
    pub active: bool,
    /// The role held now, or (inactive) the role to come back with.
    pub role: Role,
    pub created_at: i64,
    pub updated_at: i64,
}

fn slot_row(ws: WorkspaceId, user: UserId) -> String {
    format!("{ws}/{user}")
}

const COLS: &str = "user_id, origin, external_id_ct, active, role, created_at, updated_at";

fn user_row(keys: &PlatformKeys, ws: WorkspaceId, r: &rusqlite::Row<'_>) -> Result<ScimUserRow> {
    let user: UserId = r.get::<_, String>(0)?.parse()?;
    let origin: String = r.get(1)?;
    let ext: Option<Vec<u8>> = r.get(2)?;
    let role: String = r.get(4)?;
    let row = slot_row(ws, user);
    Ok(ScimUserRow {
        user_id: user,
        origin: Origin::parse(&origin)?,
        external_id: ext
            .map(|c| {
                keys.sealer
                    .open_string(Slot::new("scim_users", &row, "external_id"), &c)
            })
            .transpose()?,
        active: r.get(3)?,
        role: role.parse()?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

pub fn scim_user(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    ws: WorkspaceId,
    user: UserId,
) -> Result<Option<ScimUserRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM scim_users WHERE workspace_id = ?1 AND user_id = ?2"
    ))?;
    let mut rows = stmt.query(params![ws.to_string(), user.to_string()])?;
    match rows.next()? {
        Some(r) => Ok(Some(user_row(keys, ws, r)?)),
        None => Ok(None),
    }
}

pub fn scim_users(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    ws: WorkspaceId,
) -> Result<Vec<ScimUserRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLS} FROM scim_users WHERE workspace_id = ?1 ORDER BY created_at, user_id"
    ))?;
    let mut rows = stmt.query([ws.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(user_row(keys, ws, r)?);
    }
    Ok(out)
}

pub struct NewScimUser<'a> {
    pub ws: WorkspaceId,
    pub user: UserId,
    pub origin: Origin,
    pub external_id: Option<&'a str>,
    pub active: bool,
    pub role: Role,
}

pub fn insert_scim_user(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    u: &NewScimUser<'_>,
    now: i64,
) -> Result<()> {
    let ext = seal_external(keys, u.ws, u.user, u.external_id)?;
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO scim_users (workspace_id, user_id, origin, external_id_ct, active, role,
                                 created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
        params![
            u.ws.to_string(),
            u.user.to_string(),
            u.origin.as_str(),
            ext,
            u.active,
            u.role.as_str(),
            now
        ],
    )?;
    Ok(())
}

fn seal_external(
    keys: &PlatformKeys,
    ws: WorkspaceId,
    user: UserId,
    ext: Option<&str>,
) -> Result<Option<Vec<u8>>> {
    let row = slot_row(ws, user);
    ext.map(|e| {
        keys.sealer
            .seal_str(Slot::new("scim_users", &row, "external_id"), e)
    })
    .transpose()
}

/// Marks the person active or not, with the role they hold (or will hold
/// again when brought back).
pub fn set_scim_user_state(
    tx: &dyn SqlTx,
    ws: WorkspaceId,
    user: UserId,
    active: bool,
    role: Role,
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "UPDATE scim_users SET active = ?3, role = ?4, updated_at = ?5
         WHERE workspace_id = ?1 AND user_id = ?2",
        params![ws.to_string(), user.to_string(), active, role.as_str(), now],
    )?;
    if n == 0 {
        return Err(Error::NotFound("user"));
    }
    Ok(())
}

pub fn set_scim_external_id(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    ws: WorkspaceId,
    user: UserId,
    ext: Option<&str>,
    now: i64,
) -> Result<()> {
    let sealed = seal_external(keys, ws, user, ext)?;
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE scim_users SET external_id_ct = ?3, updated_at = ?4
         WHERE workspace_id = ?1 AND user_id = ?2",
        params![ws.to_string(), user.to_string(), sealed, now],
    )?;
    Ok(())
}

pub fn delete_scim_user(tx: &dyn SqlTx, ws: WorkspaceId, user: UserId) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "DELETE FROM scim_users WHERE workspace_id = ?1 AND user_id = ?2",
        params![ws.to_string(), user.to_string()],
    )? > 0)
}

/// Whether this workspace's SCIM made the account (created it, not merely
/// added an account that existed) and the account belongs to nothing else:
/// an active member here, not an owner, not a platform admin, and a member
/// of no other workspace. Only then may the workspace's own provider link
/// it by its email at a first SSO sign-in: it vouches for nothing beyond
/// what it made.
pub fn scim_provisioned(conn: &dyn Sql, ws: WorkspaceId, user: UserId) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT 1 FROM scim_users s
             JOIN memberships m ON m.workspace_id = s.workspace_id AND m.user_id = s.user_id
             JOIN users u ON u.id = s.user_id
             WHERE s.workspace_id = ?1 AND s.user_id = ?2
             AND s.origin = 'created' AND s.active = 1 AND m.role != 'owner'
             AND u.platform_admin = 0 AND u.password_hash IS NULL
             AND NOT EXISTS (SELECT 1 FROM memberships o
                             WHERE o.user_id = s.user_id AND o.workspace_id != s.workspace_id)",
            params![ws.to_string(), user.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Whether this workspace's provider deactivated the person through SCIM
/// (single sign-on's provisioning must not bring them back).
pub fn scim_deactivated(conn: &dyn Sql, ws: WorkspaceId, user: UserId) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT 1 FROM scim_users WHERE workspace_id = ?1 AND user_id = ?2 AND active = 0",
            params![ws.to_string(), user.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::{BlindIndex, DataKey, Sealer};
    use crate::store::control::{NewUser, insert_membership, insert_user, insert_workspace};
    use crate::store::{Db, migrations, test_options};

    #[test]
    fn scim_provisioned_means_made_or_added_by_scim_and_a_member_now() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(
            &dir.path().join("c.db"),
            test_options(),
            migrations::CONTROL,
        )
        .unwrap();
        let key = DataKey::generate(1);
        let keys = PlatformKeys {
            sealer: Sealer::new("platform", std::slice::from_ref(&key)).unwrap(),
            blind: BlindIndex::new(&key),
        };
        let id = || uuid::Uuid::now_v7().to_string();
        let (ws, other): (WorkspaceId, WorkspaceId) =
            (id().parse().unwrap(), id().parse().unwrap());
        let people: Vec<UserId> = (0..4).map(|_| id().parse().unwrap()).collect();
        db.write(|tx| {
            for w in [ws, other] {
                insert_workspace(tx, &keys, w, "W", "eu", (1, b"wrapped"), 1)?;
            }
            for (i, u) in people.iter().enumerate() {
                let email = format!("p{i}@example.com");
                let new = NewUser {
                    id: *u,
                    email: &email,
                    name: None,
                    password_hash: None,
                    platform_admin: false,
                };
                insert_user(tx, &keys, &new, 1)?;
            }
            let rows = [
                (people[0], Origin::Created, true, true),
                (people[1], Origin::Linked, true, true),
                (people[2], Origin::Created, false, false),
                (people[3], Origin::Adopted, true, true),
            ];
            for (u, origin, active, member) in rows {
                let row = NewScimUser {
                    ws,
                    user: u,
                    origin,
                    external_id: Some("ext"),
                    active,
                    role: Role::Member,
                };
                insert_scim_user(tx, &keys, &row, 1)?;
                if member {
                    insert_membership(tx, ws, u, Role::Member, 1)?;
                }
            }
            Ok(())
        })
        .unwrap();
        let provisioned =
            |w: WorkspaceId, u: UserId| db.read(|c| scim_provisioned(c, w, u)).unwrap();
        assert!(provisioned(ws, people[0]), "made by SCIM, a member");
        assert!(
            !provisioned(ws, people[1]),
            "an account that existed: SCIM only added it"
        );
        assert!(!provisioned(ws, people[2]), "deactivated");
        assert!(!provisioned(ws, people[3]), "a member SCIM only adopted");
        assert!(!provisioned(other, people[0]), "another workspace");
        db.write(|tx| insert_membership(tx, other, people[0], Role::Member, 2))
            .unwrap();
        assert!(
            !provisioned(ws, people[0]),
            "a member of another workspace too: this provider does not vouch for it"
        );
        let row = db
            .read(|c| scim_user(c, &keys, ws, people[0]))
            .unwrap()
            .unwrap();
        assert_eq!(row.external_id.as_deref(), Some("ext"), "sealed and opened");
    }
}
