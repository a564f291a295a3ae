//! SQL for passkeys. The webauthn-rs `Passkey` (public key, counter) and the
//! label are sealed under the platform key, bound to the row.

use rusqlite::params;

use super::control::PlatformKeys;
use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::Slot;
use crate::error::{Error, Result};
use crate::ids::UserId;

#[derive(Clone, Debug)]
pub struct PasskeyRow {
    pub id: String,
    pub user_id: UserId,
    pub name: String,
    /// The serialized `webauthn_rs::prelude::Passkey`.
    pub passkey_json: Vec<u8>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

pub fn insert(tx: &dyn SqlTx, keys: &PlatformKeys, row: &PasskeyRow, cred_id: &[u8]) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let name_ct = keys
        .sealer
        .seal_str(Slot::new("passkeys", &row.id, "name"), &row.name)?;
    let pk_ct = keys
        .sealer
        .seal(Slot::new("passkeys", &row.id, "passkey"), &row.passkey_json)?;
    let r = tx.execute(
        "INSERT INTO passkeys (id, user_id, cred_id, name_ct, passkey_ct, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            row.id,
            row.user_id.to_string(),
            cred_id,
            name_ct,
            pk_ct,
            row.created_at
        ],
    );
    match r {
        Err(rusqlite::Error::SqliteFailure(e, _))
            if e.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            Err(Error::Conflict("this passkey is already registered".into()))
        }
        other => other.map(|_| ()).map_err(Error::from),
    }
}

pub fn for_user(conn: &dyn Sql, keys: &PlatformKeys, user: UserId) -> Result<Vec<PasskeyRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(
        "SELECT id, name_ct, passkey_ct, created_at, last_used_at FROM passkeys
         WHERE user_id = ?1 ORDER BY created_at, id",
    )?;
    let mut rows = stmt.query([user.to_string()])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let name_ct: Vec<u8> = r.get(1)?;
        let pk_ct: Vec<u8> = r.get(2)?;
        out.push(PasskeyRow {
            name: keys
                .sealer
                .open_string(Slot::new("passkeys", &id, "name"), &name_ct)?,
            passkey_json: keys
                .sealer
                .open(Slot::new("passkeys", &id, "passkey"), &pk_ct)?,
            user_id: user,
            created_at: r.get(3)?,
            last_used_at: r.get(4)?,
            id,
        });
    }
    Ok(out)
}

pub fn update(
    tx: &dyn SqlTx,
    keys: &PlatformKeys,
    id: &str,
    passkey_json: &[u8],
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let pk_ct = keys
        .sealer
        .seal(Slot::new("passkeys", id, "passkey"), passkey_json)?;
    tx.execute(
        "UPDATE passkeys SET passkey_ct = ?2, last_used_at = ?3 WHERE id = ?1",
        params![id, pk_ct, now],
    )?;
    Ok(())
}

pub fn delete(tx: &dyn SqlTx, user: UserId, id: &str) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let n = tx.execute(
        "DELETE FROM passkeys WHERE id = ?1 AND user_id = ?2",
        params![id, user.to_string()],
    )?;
    if n == 0 {
        return Err(Error::NotFound("passkey"));
    }
    Ok(())
}

pub fn count_for_user(conn: &dyn Sql, user: UserId) -> Result<i64> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT count(*) FROM passkeys WHERE user_id = ?1",
        [user.to_string()],
        |r| r.get(0),
    )?)
}
