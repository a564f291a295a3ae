//! SQL for programmatic credentials in control.db: refresh-token families and
//! `aura_` API tokens. Secrets arrive here already hashed; token names are
//! sealed under the platform key.

use rusqlite::{OptionalExtension, params};

use super::control::PlatformKeys;
use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::Slot;
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::Role;

// ---- refresh-token families --------------------------------------------------

/// What `/auth/refresh` needs to know about a presented refresh token.
#[derive(Clone, Debug)]
pub struct RefreshLookup {
    pub family_id: String,
    pub user_id: UserId,
    pub used: bool,
    pub family_revoked: bool,
    pub family_expires_at: i64,
    pub user_disabled: bool,
}

/// Where an API sign-in came from: its IP and device label.
pub struct Origin {
    pub ip: Option<String>,
    pub device: Option<String>,
}

pub fn insert_family(
    tx: &dyn SqlTx,
    id: &str,
    user: UserId,
    now: i64,
    expires_at: i64,
    from: &Origin,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO token_families (id, user_id, created_at, expires_at, ip, device)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, user.to_string(), now, expires_at, from.ip, from.device],
    )?;
    Ok(())
}

pub fn insert_refresh(tx: &dyn SqlTx, hash: &[u8], family: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO refresh_tokens (hash, family_id, created_at) VALUES (?1, ?2, ?3)",
        params![hash, family, now],
    )?;
    Ok(())
}

pub fn find_refresh(conn: &dyn Sql, hash: &[u8]) -> Result<Option<RefreshLookup>> {
    let conn = conn.conn(TOKEN);
    let row = conn
        .query_row(
            "SELECT f.id, f.user_id, r.used_at IS NOT NULL, f.revoked_at IS NOT NULL,
                    f.expires_at, u.disabled
             FROM refresh_tokens r
             JOIN token_families f ON f.id = r.family_id
             JOIN users u ON u.id = f.user_id
             WHERE r.hash = ?1",
            [hash],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, bool>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, bool>(5)?,
                ))
            },
        )
        .optional()?;
    row.map(|(family_id, user, used, revoked, expires, disabled)| {
        Ok(RefreshLookup {
            family_id,
            user_id: user.parse()?,
            used,
            family_revoked: revoked,
            family_expires_at: expires,
            user_disabled: disabled,
        })
    })
    .transpose()
}

/// Marks a refresh token used. Returns false when another request used it
/// first (the loser of a race is treated as a reuse).
pub fn mark_refresh_used(tx: &dyn SqlTx, hash: &[u8], now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "UPDATE refresh_tokens SET used_at = ?2 WHERE hash = ?1 AND used_at IS NULL",
        params![hash, now],
    )?;
    Ok(n == 1)
}

pub fn revoke_family(tx: &dyn SqlTx, id: &str, now: i64, reason: &str) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "UPDATE token_families SET revoked_at = ?2, revoked_reason = ?3
         WHERE id = ?1 AND revoked_at IS NULL",
        params![id, now, reason],
    )?)
}

pub fn revoke_user_families(
    tx: &dyn SqlTx,
    user: UserId,
    except: Option<&str>,
    now: i64,
    reason: &str,
) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "UPDATE token_families SET revoked_at = ?2, revoked_reason = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?4",
        params![user.to_string(), now, reason, except],
    )?)
}

/// The state an access JWT is checked against on every request: is its family
/// still live and its account still enabled. Expiry is compared with the
/// clock by the caller (`live_at`), so the state can be cached.
#[derive(Clone, Debug)]
pub struct FamilyState {
    pub user_id: UserId,
    /// Not revoked, and the account enabled.
    pub live: bool,
    pub expires_at: i64,
    pub platform_admin: bool,
}

impl FamilyState {
    pub fn live_at(&self, now: i64) -> bool {
        self.live && self.expires_at > now
    }
}

pub fn family_state(conn: &dyn Sql, id: &str) -> Result<Option<FamilyState>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(
        "SELECT f.user_id, f.revoked_at IS NULL AND u.disabled = 0, f.expires_at,
                u.platform_admin
         FROM token_families f JOIN users u ON u.id = f.user_id WHERE f.id = ?1",
    )?;
    let row = stmt
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, bool>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .optional()?;
    row.map(|(u, live, expires_at, admin)| {
        Ok(FamilyState {
            user_id: u.parse()?,
            live,
            expires_at,
            platform_admin: admin,
        })
    })
    .transpose()
}

// ---- API tokens -------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct ApiTokenRow {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub created_by: UserId,
    pub name: String,
    pub scope: Role,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub struct NewApiToken<'a> {
    pub id: &'a str,
    pub hash: &'a [u8],
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub created_by: UserId,
    pub name: &'a str,
    pub scope: Role,
    pub expires_at: Option<i64>,
}

pub fn insert_api_token(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    t: &NewApiToken<'_>,
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let name_ct = keys
        .sealer
        .seal_str(Slot::new("api_tokens", t.id, "name"), t.name)?;
    tx.execute(
        "INSERT INTO api_tokens (id, hash, workspace_id, user_id, created_by, name_ct, scope,
                                 created_at, expires_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            t.id,
            t.hash,
            t.workspace_id.to_string(),
            t.user_id.to_string(),
            t.created_by.to_string(),
            name_ct,
            t.scope.as_str(),
            now,
            t.expires_at
        ],
    )?;
    Ok(())
}

const TOKEN_COLUMNS: &str = "id, workspace_id, user_id, created_by, name_ct, scope, created_at,
                             expires_at, last_used_at, revoked_at";

fn token_from_row(keys: &PlatformKeys, r: &rusqlite::Row<'_>) -> Result<ApiTokenRow> {
    let id: String = r.get(0)?;
    let ws: String = r.get(1)?;
    let user: String = r.get(2)?;
    let by: String = r.get(3)?;
    let name_ct: Vec<u8> = r.get(4)?;
    let scope: String = r.get(5)?;
    Ok(ApiTokenRow {
        name: keys
            .sealer
            .open_string(Slot::new("api_tokens", &id, "name"), &name_ct)?,
        id,
        workspace_id: ws.parse()?,
        user_id: user.parse()?,
        created_by: by.parse()?,
        scope: scope.parse()?,
        created_at: r.get(6)?,
        expires_at: r.get(7)?,
        last_used_at: r.get(8)?,
        revoked_at: r.get(9)?,
    })
}

pub fn list_api_tokens(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    ws: WorkspaceId,
) -> Result<Vec<ApiTokenRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE workspace_id = ?1 ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query([ws.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(token_from_row(keys, r)?);
    }
    Ok(out)
}

pub fn get_api_token(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    ws: WorkspaceId,
    id: &str,
) -> Result<Option<ApiTokenRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE workspace_id = ?1 AND id = ?2"
    ))?;
    let mut rows = stmt.query(params![ws.to_string(), id])?;
    match rows.next()? {
        Some(r) => Ok(Some(token_from_row(keys, r)?)),
        None => Ok(None),
    }
}

/// What authenticating with an API token needs: no names, no decryption.
#[derive(Clone, Debug)]
pub struct TokenAuth {
    pub id: String,
    pub workspace_id: WorkspaceId,
    pub user_id: UserId,
    pub scope: Role,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl TokenAuth {
    pub fn live_at(&self, now: i64) -> bool {
        self.expires_at.is_none_or(|e| e > now)
    }
}

/// A live token by its hash: not revoked, not expired, its account enabled.
pub fn find_live_api_token(conn: &dyn Sql, hash: &[u8], now: i64) -> Result<Option<TokenAuth>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare_cached(
        "SELECT t.id, t.workspace_id, t.user_id, t.scope, t.expires_at, t.last_used_at
         FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.hash = ?1 AND t.revoked_at IS NULL
           AND (t.expires_at IS NULL OR t.expires_at > ?2) AND u.disabled = 0",
    )?;
    let row = stmt
        .query_row(params![hash, now], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<i64>>(4)?,
                r.get::<_, Option<i64>>(5)?,
            ))
        })
        .optional()?;
    row.map(|(id, ws, user, scope, expires_at, last)| {
        Ok(TokenAuth {
            id,
            workspace_id: ws.parse()?,
            user_id: user.parse()?,
            scope: scope.parse()?,
            expires_at,
            last_used_at: last,
        })
    })
    .transpose()
}

pub fn touch_api_token(tx: &dyn SqlTx, id: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    // cross-workspace: by the token's own id, from the verified token
    tx.execute(
        "UPDATE api_tokens SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

pub fn revoke_api_token(tx: &dyn SqlTx, ws: WorkspaceId, id: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, ?3)
         WHERE workspace_id = ?1 AND id = ?2",
        params![ws.to_string(), id, now],
    )?;
    if n == 0 {
        return Err(Error::NotFound("token"));
    }
    Ok(())
}

/// Revokes the tokens a user holds in one workspace (used when a member is
/// removed). Tokens of the workspace's service accounts stay: they belong to
/// the workspace, not to whoever created them.
pub fn revoke_member_tokens(
    tx: &dyn SqlTx,
    ws: WorkspaceId,
    user: UserId,
    now: i64,
) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "UPDATE api_tokens SET revoked_at = ?3
         WHERE workspace_id = ?1 AND user_id = ?2 AND revoked_at IS NULL",
        params![ws.to_string(), user.to_string(), now],
    )?)
}

/// Why the account's own event revoked its personal tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Revocation {
    PasswordReset,
    AccountDisabled,
}

impl Revocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::PasswordReset => "password_reset",
            Revocation::AccountDisabled => "account_disabled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "password_reset" => Some(Revocation::PasswordReset),
            "account_disabled" => Some(Revocation::AccountDisabled),
            _ => None,
        }
    }
}

/// Revokes every API token the account itself holds, in every workspace
/// (its personal tokens), and returns them. Tokens of service accounts are
/// held by the service account, not by whoever made them, so they stay.
pub fn revoke_personal_tokens(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    user: UserId,
    now: i64,
    why: Revocation,
) -> Result<Vec<ApiTokenRow>> {
    let tx = tx.tx(TOKEN);
    // cross-workspace: an account's personal tokens in every workspace, revoked together on a password reset or disabling
    let mut stmt = tx.prepare(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens
         WHERE user_id = ?1 AND revoked_at IS NULL ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query([user.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let mut t = token_from_row(keys, r)?;
        t.revoked_at = Some(now);
        out.push(t);
    }
    // cross-workspace: as above
    tx.execute(
        "UPDATE api_tokens SET revoked_at = ?2, revoked_reason = ?3
         WHERE user_id = ?1 AND revoked_at IS NULL",
        params![user.to_string(), now, why.as_str()],
    )?;
    Ok(out)
}

/// The account's personal tokens that a password reset or disabling the
/// account revoked, newest first (for the account page).
pub fn revoked_personal_tokens(
    conn: &dyn Sql,
    keys: &PlatformKeys,
    user: UserId,
) -> Result<Vec<(ApiTokenRow, Revocation)>> {
    let conn = conn.conn(TOKEN);
    // cross-workspace: the account page lists its revoked tokens from every workspace
    let mut stmt = conn.prepare(&format!(
        "SELECT {TOKEN_COLUMNS}, revoked_reason FROM api_tokens
         WHERE user_id = ?1 AND revoked_reason IS NOT NULL
         ORDER BY revoked_at DESC, created_at, id"
    ))?;
    let mut rows = stmt.query([user.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let why: String = r.get(10)?;
        if let Some(why) = Revocation::parse(&why) {
            out.push((token_from_row(keys, r)?, why));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cached credentials carry their expiry, so a cache hit still expires
    /// on time.
    #[test]
    fn cached_credentials_expire_by_the_clock() {
        let user: UserId = uuid::Uuid::now_v7().to_string().parse().unwrap();
        let fam = FamilyState {
            user_id: user,
            live: true,
            expires_at: 100,
            platform_admin: false,
        };
        assert!(fam.live_at(99));
        assert!(!fam.live_at(100));
        assert!(!FamilyState { live: false, ..fam }.live_at(0));
        let tok = TokenAuth {
            id: "t".into(),
            workspace_id: uuid::Uuid::now_v7().to_string().parse().unwrap(),
            user_id: user,
            scope: Role::Member,
            expires_at: Some(100),
            last_used_at: None,
        };
        assert!(tok.live_at(99));
        assert!(!tok.live_at(100));
        assert!(
            TokenAuth {
                expires_at: None,
                ..tok
            }
            .live_at(i64::MAX)
        );
    }
}
