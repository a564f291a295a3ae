//! SQL for second factors (TOTP, recovery codes) and the workspace MFA policy.

use rusqlite::{OptionalExtension, params};

use super::control::PlatformKeys;
use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::Slot;
use crate::error::{Error, Result};
use crate::ids::{UserId, WorkspaceId};
use crate::model::Role;

pub struct TotpRow {
    pub secret: Vec<u8>,
    pub confirmed: bool,
    pub last_step: i64,
}

fn slot(user: &str) -> Slot<'_> {
    Slot::new("totp", user, "secret")
}

pub fn get_totp(conn: &dyn Sql, keys: &PlatformKeys, user: UserId) -> Result<Option<TotpRow>> {
    let conn = conn.conn(TOKEN);
    let u = user.to_string();
    let row = conn
        .query_row(
            "SELECT secret_ct, confirmed_at IS NOT NULL, last_step FROM totp WHERE user_id = ?1",
            [&u],
            |r| {
                Ok((
                    r.get::<_, Vec<u8>>(0)?,
                    r.get::<_, bool>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    row.map(|(ct, confirmed, last_step)| {
        Ok(TotpRow {
            secret: keys.sealer.open(slot(&u), &ct)?,
            confirmed,
            last_step,
        })
    })
    .transpose()
}

/// Stores a new, unconfirmed secret (replacing an unconfirmed one). A
/// confirmed authenticator must be removed first.
pub fn put_pending_totp(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    user: UserId,
    secret: &[u8],
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let u = user.to_string();
    let ct = keys.sealer.seal(slot(&u), secret)?;
    let n = tx.execute(
        "INSERT INTO totp (user_id, secret_ct, created_at) VALUES (?1, ?2, ?3)
         ON CONFLICT(user_id) DO UPDATE SET secret_ct = excluded.secret_ct,
             created_at = excluded.created_at, last_step = 0
         WHERE totp.confirmed_at IS NULL",
        params![u, ct, now],
    )?;
    if n == 0 {
        return Err(Error::Conflict(
            "two-factor sign-in is already set up; remove it first to enrol another authenticator"
                .into(),
        ));
    }
    Ok(())
}

pub fn confirm_totp(tx: &dyn SqlTx, user: UserId, step: i64, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE totp SET confirmed_at = ?2, last_step = ?3 WHERE user_id = ?1",
        params![user.to_string(), now, step],
    )?;
    Ok(())
}

/// Moves `last_step` forward; false when `step` was already used (replay).
pub fn use_step(tx: &dyn SqlTx, user: UserId, step: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "UPDATE totp SET last_step = ?2 WHERE user_id = ?1 AND last_step < ?2",
        params![user.to_string(), step],
    )? == 1)
}

pub fn delete_mfa(tx: &dyn SqlTx, user: UserId) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let u = user.to_string();
    tx.execute("DELETE FROM totp WHERE user_id = ?1", [&u])?;
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&u])?;
    Ok(())
}

pub fn replace_recovery_codes(tx: &dyn SqlTx, user: UserId, hashes: &[Vec<u8>]) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let u = user.to_string();
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [&u])?;
    for h in hashes {
        tx.execute(
            "INSERT INTO recovery_codes (user_id, hash) VALUES (?1, ?2)",
            params![u, h],
        )?;
    }
    Ok(())
}

/// Spends a recovery code; false when it is unknown or already spent.
pub fn use_recovery_code(tx: &dyn SqlTx, user: UserId, hash: &[u8], now: i64) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "UPDATE recovery_codes SET used_at = ?3
         WHERE user_id = ?1 AND hash = ?2 AND used_at IS NULL",
        params![user.to_string(), hash, now],
    )? == 1)
}

pub fn recovery_code_unused(conn: &dyn Sql, user: UserId, hash: &[u8]) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT 1 FROM recovery_codes WHERE user_id = ?1 AND hash = ?2 AND used_at IS NULL",
            params![user.to_string(), hash],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub fn recovery_codes_left(conn: &dyn Sql, user: UserId) -> Result<i64> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT count(*) FROM recovery_codes WHERE user_id = ?1 AND used_at IS NULL",
        [user.to_string()],
        |r| r.get(0),
    )?)
}

pub fn has_confirmed_totp(conn: &dyn Sql, user: UserId) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT 1 FROM totp WHERE user_id = ?1 AND confirmed_at IS NOT NULL",
            [user.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// A confirmed TOTP or at least one passkey.
pub fn has_second_factor(conn: &dyn Sql, user: UserId) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(has_confirmed_totp(conn, user)? || super::passkeys::count_for_user(conn, user)? > 0)
}

/// Whether any active workspace the user belongs to requires a second factor.
pub fn required_for(conn: &dyn Sql, user: UserId) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT 1 FROM memberships m JOIN workspaces w ON w.id = m.workspace_id
             WHERE m.user_id = ?1 AND w.require_mfa = 1 AND w.state = 'active' LIMIT 1",
            [user.to_string()],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

/// Refuses to remove a second factor that is the account's last one while a
/// workspace it belongs to requires one (the account would be shut out).
pub fn check_last_factor(conn: &dyn Sql, user: UserId, factors_left: i64) -> Result<()> {
    let conn = conn.conn(TOKEN);
    if factors_left == 0 && required_for(conn, user)? {
        return Err(Error::Conflict(
            "a workspace you belong to requires two-factor sign-in: add another factor before removing this one".into(),
        ));
    }
    Ok(())
}

pub fn set_require_mfa(tx: &dyn SqlTx, ws: WorkspaceId, required: bool, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE workspaces SET require_mfa = ?2, updated_at = ?3 WHERE id = ?1",
        params![ws.to_string(), required, now],
    )?;
    Ok(())
}

pub fn require_mfa(conn: &dyn Sql, ws: WorkspaceId) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn
        .query_row(
            "SELECT require_mfa FROM workspaces WHERE id = ?1",
            [ws.to_string()],
            |r| r.get::<_, bool>(0),
        )
        .optional()?
        .unwrap_or(false))
}

/// What entering a workspace needs in one read: the caller's role in an
/// active workspace, and whether its MFA policy shuts them out (a person
/// without a confirmed second factor in a workspace that requires one).
pub fn membership_gate(conn: &dyn Sql, ws: WorkspaceId, user: UserId) -> Result<Option<Gate>> {
    let conn = conn.conn(TOKEN);
    // role, blocked by the MFA policy, frozen, needs SSO, break-glass owner
    type Row = (String, bool, Option<String>, Option<bool>, Option<bool>);
    let row: Option<Row> = conn
        .query_row(
            "SELECT m.role,
                    w.require_mfa = 1 AND u.kind = 'person'
                    AND NOT EXISTS (SELECT 1 FROM totp t
                                    WHERE t.user_id = u.id AND t.confirmed_at IS NOT NULL)
                    AND NOT EXISTS (SELECT 1 FROM passkeys p WHERE p.user_id = u.id),
                    (SELECT l.kind FROM workspace_lifecycle l WHERE l.workspace_id = w.id),
                    (SELECT s.required = 1 AND u.kind = 'person'
                            AND NOT (s.break_glass IS u.id AND m.role = 'owner')
                     FROM workspace_sso s WHERE s.workspace_id = w.id),
                    (SELECT s.required = 1 AND s.break_glass IS u.id AND m.role = 'owner'
                     FROM workspace_sso s WHERE s.workspace_id = w.id)
             FROM memberships m
             JOIN workspaces w ON w.id = m.workspace_id
             JOIN users u ON u.id = m.user_id
             WHERE m.workspace_id = ?1 AND m.user_id = ?2 AND w.state IN ('active', 'deleting')",
            params![ws.to_string(), user.to_string()],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .optional()?;
    row.map(|(role, blocked, frozen, sso, glass)| {
        Ok(Gate {
            role: role.parse()?,
            needs_mfa: blocked,
            needs_sso: sso.unwrap_or(false),
            break_glass: glass.unwrap_or(false),
            frozen: frozen
                .map(|k| super::lifecycle::Kind::parse(&k))
                .transpose()?,
        })
    })
    .transpose()
}

/// What entering a workspace needs to know about a membership.
#[derive(Clone, Debug)]
pub struct Gate {
    pub role: Role,
    /// The workspace requires a second factor this person has not set up.
    pub needs_mfa: bool,
    /// The workspace requires single sign-on of this person (not a service
    /// account, not its break-glass owner).
    pub needs_sso: bool,
    /// The workspace requires single sign-on and this is its break-glass
    /// owner: let in by other means, each use audited.
    pub break_glass: bool,
    /// The workspace is read-only (being deleted or moved).
    pub frozen: Option<super::lifecycle::Kind>,
}
