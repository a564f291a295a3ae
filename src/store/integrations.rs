//! SQL of integration secrets and inbound integrations with their received
//! events (one workspace's data.db). Names, values, message ids, bodies and
//! processing errors are sealed; a sender's message id is also kept as a
//! keyed digest so a replay is refused by a unique index.

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::{BlindIndex, Sealer, Slot};
use crate::error::Result;

/// A sealed current value, the sealed previous one and when it stops working.
type Sealed = (Vec<u8>, Option<Vec<u8>>, Option<i64>);

const SECRETS: &str = "integration_secrets";

/// A stored secret as the UI and API show it: never its value.
#[derive(Clone, Debug)]
pub struct SecretRow {
    pub id: String,
    pub name: String,
    pub last4: String,
    pub created_at: i64,
    pub rotated_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The previous value still verifies until then (rotation overlap).
    pub previous_until: Option<i64>,
}

/// The last four characters, which is all that is ever shown of a value.
pub fn last4(value: &str) -> String {
    let chars: Vec<char> = value.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

pub fn insert_secret(
    tx: &dyn SqlTx,
    sealer: &Sealer,
    id: &str,
    name: &str,
    value: &str,
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let s = |col| Slot::new(SECRETS, id, col);
    tx.execute(
        "INSERT INTO integration_secrets(id, name_ct, value_ct, last4_ct, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            id,
            sealer.seal_str(s("name"), name)?,
            sealer.seal_str(s("value"), value)?,
            sealer.seal_str(s("last4"), &last4(value))?,
            now
        ],
    )?;
    Ok(())
}

const SECRET_COLS: &str =
    "id, name_ct, last4_ct, created_at, rotated_at, last_used_at, previous_until";

fn secret_row(sealer: &Sealer, r: &rusqlite::Row<'_>) -> Result<SecretRow> {
    let id: String = r.get(0)?;
    let s = |col| Slot::new(SECRETS, &id, col);
    Ok(SecretRow {
        name: sealer.open_string(s("name"), &r.get::<_, Vec<u8>>(1)?)?,
        last4: sealer.open_string(s("last4"), &r.get::<_, Vec<u8>>(2)?)?,
        created_at: r.get(3)?,
        rotated_at: r.get(4)?,
        last_used_at: r.get(5)?,
        previous_until: r.get(6)?,
        id,
    })
}

pub fn list_secrets(conn: &dyn Sql, sealer: &Sealer) -> Result<Vec<SecretRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {SECRET_COLS} FROM integration_secrets ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(secret_row(sealer, r)?);
    }
    Ok(out)
}

pub fn get_secret(conn: &dyn Sql, sealer: &Sealer, id: &str) -> Result<Option<SecretRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {SECRET_COLS} FROM integration_secrets WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(secret_row(sealer, r)?)),
        None => Ok(None),
    }
}

/// The values that verify now: the current one, then the previous one while
/// its overlap lasts. `None` for an unknown id.
pub fn secret_values(
    conn: &dyn Sql,
    sealer: &Sealer,
    id: &str,
    now: i64,
) -> Result<Option<Vec<String>>> {
    let conn = conn.conn(TOKEN);
    let row: Option<Sealed> = conn
        .query_row(
            "SELECT value_ct, previous_ct, previous_until FROM integration_secrets WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((value, previous, until)) = row else {
        return Ok(None);
    };
    let mut out = vec![sealer.open_string(Slot::new(SECRETS, id, "value"), &value)?];
    if let (Some(p), Some(u)) = (previous, until)
        && u > now
    {
        out.push(sealer.open_string(Slot::new(SECRETS, id, "previous"), &p)?);
    }
    Ok(Some(out))
}

/// Replaces the value; the old one is kept until `previous_until` (none: it
/// stops at once). False when there is no such secret.
pub fn rotate_secret(
    tx: &dyn SqlTx,
    sealer: &Sealer,
    id: &str,
    value: &str,
    previous_until: Option<i64>,
    now: i64,
) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let Some(current) = secret_values(tx, sealer, id, now)?.and_then(|v| v.into_iter().next())
    else {
        return Ok(false);
    };
    let s = |col| Slot::new(SECRETS, id, col);
    let previous = match previous_until {
        Some(_) => Some(sealer.seal_str(s("previous"), &current)?),
        None => None,
    };
    tx.execute(
        "UPDATE integration_secrets SET value_ct = ?2, last4_ct = ?3, previous_ct = ?4,
         previous_until = ?5, rotated_at = ?6 WHERE id = ?1",
        params![
            id,
            sealer.seal_str(s("value"), value)?,
            sealer.seal_str(s("last4"), &last4(value))?,
            previous,
            previous_until,
            now
        ],
    )?;
    Ok(true)
}

pub fn delete_secret(tx: &dyn SqlTx, id: &str) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute("DELETE FROM integration_secrets WHERE id = ?1", [id])? > 0)
}

/// The inbound integrations that verify with this secret.
pub fn secret_users(conn: &dyn Sql, id: &str) -> Result<i64> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT count(*) FROM inbound_integrations WHERE secret_id = ?1",
        [id],
        |r| r.get(0),
    )?)
}

pub fn touch_secret(tx: &dyn SqlTx, id: &str, now: i64) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "UPDATE integration_secrets SET last_used_at = ?2 WHERE id = ?1",
        params![id, now],
    )?;
    Ok(())
}

// ---- inbound integrations ---------------------------------------------------

const INBOUND: &str = "inbound_integrations";
const EVENTS: &str = "inbound_events";

#[derive(Clone, Debug)]
pub struct InboundRow {
    pub id: String,
    pub name: String,
    pub secret_id: String,
    /// `signature` (Standard Webhooks HMAC) or `token` (a bearer token).
    pub mode: String,
    /// Verified events become records of this collection.
    pub collection_id: Option<String>,
    pub created_at: i64,
}

pub fn insert_inbound(tx: &dyn SqlTx, sealer: &Sealer, row: &InboundRow) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO inbound_integrations(id, name_ct, secret_id, mode, collection_id, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            row.id,
            sealer.seal_str(Slot::new(INBOUND, &row.id, "name"), &row.name)?,
            row.secret_id,
            row.mode,
            row.collection_id,
            row.created_at
        ],
    )?;
    Ok(())
}

const INBOUND_COLS: &str = "id, name_ct, secret_id, mode, collection_id, created_at";

fn inbound_row(sealer: &Sealer, r: &rusqlite::Row<'_>) -> Result<InboundRow> {
    let id: String = r.get(0)?;
    Ok(InboundRow {
        name: sealer.open_string(Slot::new(INBOUND, &id, "name"), &r.get::<_, Vec<u8>>(1)?)?,
        secret_id: r.get(2)?,
        mode: r.get(3)?,
        collection_id: r.get(4)?,
        created_at: r.get(5)?,
        id,
    })
}

pub fn list_inbound(conn: &dyn Sql, sealer: &Sealer) -> Result<Vec<InboundRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {INBOUND_COLS} FROM inbound_integrations ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(inbound_row(sealer, r)?);
    }
    Ok(out)
}

pub fn get_inbound(conn: &dyn Sql, sealer: &Sealer, id: &str) -> Result<Option<InboundRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {INBOUND_COLS} FROM inbound_integrations WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(inbound_row(sealer, r)?)),
        None => Ok(None),
    }
}

pub fn delete_inbound(tx: &dyn SqlTx, id: &str) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute("DELETE FROM inbound_integrations WHERE id = ?1", [id])? > 0)
}

/// A received event as the log shows it.
#[derive(Clone, Debug)]
pub struct EventRow {
    pub id: String,
    pub integration_id: String,
    pub msg_id: String,
    pub sent_at: i64,
    pub received_at: i64,
    /// `received` (waiting for the worker), `processed` or `failed`.
    pub status: String,
    pub record_id: Option<String>,
    pub error: Option<String>,
    pub body: Vec<u8>,
}

pub struct NewEvent<'a> {
    pub id: &'a str,
    pub integration_id: &'a str,
    pub msg_id: &'a str,
    pub sent_at: i64,
    pub received_at: i64,
    pub body: &'a [u8],
}

/// Stores a verified event; false when the integration already has one with
/// this message id (a replay), and then nothing is written.
pub fn insert_event(
    tx: &dyn SqlTx,
    sealer: &Sealer,
    blind: &BlindIndex,
    e: &NewEvent<'_>,
) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let digest = blind.compute(
        "inbound.msg_id",
        &format!("{}:{}", e.integration_id, e.msg_id),
    );
    let s = |col| Slot::new(EVENTS, e.id, col);
    let n = tx.execute(
        "INSERT INTO inbound_events(id, integration_id, msg_digest, msg_id_ct, sent_at,
         received_at, body_ct, status) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'received')
         ON CONFLICT(integration_id, msg_digest) DO NOTHING",
        params![
            e.id,
            e.integration_id,
            digest,
            sealer.seal_str(s("msg_id"), e.msg_id)?,
            e.sent_at,
            e.received_at,
            sealer.seal(s("body"), e.body)?
        ],
    )?;
    Ok(n > 0)
}

const EVENT_COLS: &str =
    "id, integration_id, msg_id_ct, sent_at, received_at, status, record_id, error_ct, body_ct";

fn event_row(sealer: &Sealer, r: &rusqlite::Row<'_>) -> Result<EventRow> {
    let id: String = r.get(0)?;
    let s = |col| Slot::new(EVENTS, &id, col);
    let error = match r.get::<_, Option<Vec<u8>>>(7)? {
        Some(ct) => Some(sealer.open_string(s("error"), &ct)?),
        None => None,
    };
    Ok(EventRow {
        integration_id: r.get(1)?,
        msg_id: sealer.open_string(s("msg_id"), &r.get::<_, Vec<u8>>(2)?)?,
        sent_at: r.get(3)?,
        received_at: r.get(4)?,
        status: r.get(5)?,
        record_id: r.get(6)?,
        error,
        body: sealer.open(s("body"), &r.get::<_, Vec<u8>>(8)?)?,
        id,
    })
}

/// The newest events, of one integration or of all.
pub fn list_events(
    conn: &dyn Sql,
    sealer: &Sealer,
    integration: Option<&str>,
    limit: usize,
) -> Result<Vec<EventRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {EVENT_COLS} FROM inbound_events
         WHERE ?1 IS NULL OR integration_id = ?1 ORDER BY seq DESC LIMIT ?2"
    ))?;
    let mut rows = stmt.query(params![integration, limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(event_row(sealer, r)?);
    }
    Ok(out)
}

/// Events waiting for the worker, oldest first.
pub fn received_events(conn: &dyn Sql, sealer: &Sealer, limit: usize) -> Result<Vec<EventRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {EVENT_COLS} FROM inbound_events WHERE status = 'received' ORDER BY seq LIMIT ?1"
    ))?;
    let mut rows = stmt.query([limit as i64])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(event_row(sealer, r)?);
    }
    Ok(out)
}

pub fn finish_event(
    tx: &dyn SqlTx,
    sealer: &Sealer,
    id: &str,
    record_id: Option<&str>,
    error: Option<&str>,
    now: i64,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let error_ct = match error {
        Some(e) => Some(sealer.seal_str(Slot::new(EVENTS, id, "error"), e)?),
        None => None,
    };
    tx.execute(
        "UPDATE inbound_events SET status = ?2, record_id = ?3, error_ct = ?4, processed_at = ?5
         WHERE id = ?1",
        params![
            id,
            if error.is_some() {
                "failed"
            } else {
                "processed"
            },
            record_id,
            error_ct,
            now
        ],
    )?;
    Ok(())
}

/// Runs `f` in a savepoint of the transaction: what it wrote stays when it
/// succeeds and is undone alone when it fails (the event then says why).
pub fn in_event_savepoint<T>(conn: &dyn Sql, f: impl FnOnce() -> Result<T>) -> Result<Result<T>> {
    let conn = conn.conn(TOKEN);
    conn.execute_batch("SAVEPOINT inbound_event")?;
    match f() {
        Ok(v) => {
            conn.execute_batch("RELEASE inbound_event")?;
            Ok(Ok(v))
        }
        Err(e) => {
            conn.execute_batch("ROLLBACK TO inbound_event; RELEASE inbound_event")?;
            Ok(Err(e))
        }
    }
}
