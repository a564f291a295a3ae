//! SQL of outbound webhook endpoints and their deliveries (one workspace's
//! data.db). URLs, signing secrets and payloads are sealed; event types,
//! status codes and Aura's own error categories are not.

use rusqlite::{OptionalExtension, params};

use super::handle::{Sql, SqlTx, TOKEN};
use crate::crypto::{Sealer, Slot};
use crate::error::Result;

/// A sealed current value, the sealed previous one and when it stops working.
type Sealed = (Vec<u8>, Option<Vec<u8>>, Option<i64>);

const ENDPOINTS: &str = "webhook_endpoints";
const DELIVERIES: &str = "webhook_deliveries";

#[derive(Clone, Debug)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: i64,
    /// The previous signing secret still signs until then.
    pub previous_until: Option<i64>,
}

pub fn insert_endpoint(
    tx: &dyn SqlTx,
    sealer: &Sealer,
    row: &EndpointRow,
    secret: &str,
) -> Result<()> {
    let tx = tx.tx(TOKEN);
    let s = |col| Slot::new(ENDPOINTS, &row.id, col);
    tx.execute(
        "INSERT INTO webhook_endpoints(id, url_ct, events, secret_ct, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
        params![
            row.id,
            sealer.seal_str(s("url"), &row.url)?,
            row.events.join(","),
            sealer.seal_str(s("secret"), secret)?,
            row.created_at
        ],
    )?;
    Ok(())
}

fn endpoint_row(sealer: &Sealer, r: &rusqlite::Row<'_>) -> Result<EndpointRow> {
    let id: String = r.get(0)?;
    let events: String = r.get(2)?;
    Ok(EndpointRow {
        url: sealer.open_string(Slot::new(ENDPOINTS, &id, "url"), &r.get::<_, Vec<u8>>(1)?)?,
        events: events
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        created_at: r.get(3)?,
        previous_until: r.get(4)?,
        id,
    })
}

const ENDPOINT_COLS: &str = "id, url_ct, events, created_at, previous_until";

pub fn list_endpoints(conn: &dyn Sql, sealer: &Sealer) -> Result<Vec<EndpointRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints ORDER BY created_at, id"
    ))?;
    let mut rows = stmt.query([])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(endpoint_row(sealer, r)?);
    }
    Ok(out)
}

pub fn get_endpoint(conn: &dyn Sql, sealer: &Sealer, id: &str) -> Result<Option<EndpointRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {ENDPOINT_COLS} FROM webhook_endpoints WHERE id = ?1"
    ))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => Ok(Some(endpoint_row(sealer, r)?)),
        None => Ok(None),
    }
}

/// The secrets that sign now: the current one, then the previous one while
/// its overlap lasts.
pub fn endpoint_secrets(
    conn: &dyn Sql,
    sealer: &Sealer,
    id: &str,
    now: i64,
) -> Result<Vec<String>> {
    let conn = conn.conn(TOKEN);
    let row: Option<Sealed> = conn
        .query_row(
            "SELECT secret_ct, previous_ct, previous_until FROM webhook_endpoints WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .optional()?;
    let Some((current, previous, until)) = row else {
        return Ok(Vec::new());
    };
    let mut out = vec![sealer.open_string(Slot::new(ENDPOINTS, id, "secret"), &current)?];
    if let (Some(p), Some(u)) = (previous, until)
        && u > now
    {
        out.push(sealer.open_string(Slot::new(ENDPOINTS, id, "previous"), &p)?);
    }
    Ok(out)
}

pub fn rotate_endpoint_secret(
    tx: &dyn SqlTx,
    sealer: &Sealer,
    id: &str,
    secret: &str,
    previous_until: Option<i64>,
    now: i64,
) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let Some(current) = endpoint_secrets(tx, sealer, id, now)?.into_iter().next() else {
        return Ok(false);
    };
    let s = |col| Slot::new(ENDPOINTS, id, col);
    let previous = match previous_until {
        Some(_) => Some(sealer.seal_str(s("previous"), &current)?),
        None => None,
    };
    tx.execute(
        "UPDATE webhook_endpoints SET secret_ct = ?2, previous_ct = ?3, previous_until = ?4
         WHERE id = ?1",
        params![
            id,
            sealer.seal_str(s("secret"), secret)?,
            previous,
            previous_until
        ],
    )?;
    Ok(true)
}

/// Replaces an endpoint's URL and event types (its secrets stay).
pub fn update_endpoint(tx: &dyn SqlTx, sealer: &Sealer, row: &EndpointRow) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    let url_ct = sealer.seal_str(Slot::new(ENDPOINTS, &row.id, "url"), &row.url)?;
    Ok(tx.execute(
        "UPDATE webhook_endpoints SET url_ct = ?2, events = ?3 WHERE id = ?1",
        params![row.id, url_ct, row.events.join(",")],
    )? > 0)
}

pub fn delete_endpoint(tx: &dyn SqlTx, id: &str) -> Result<bool> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute("DELETE FROM webhook_endpoints WHERE id = ?1", [id])? > 0)
}

pub fn count_endpoints(conn: &dyn Sql) -> Result<i64> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row("SELECT count(*) FROM webhook_endpoints", [], |r| r.get(0))?)
}

/// Endpoints subscribed to an event type.
pub fn subscribed(conn: &dyn Sql, event_type: &str) -> Result<Vec<String>> {
    let conn = conn.conn(TOKEN);
    // Cached: every audited write asks (integrations::outbox::emit).
    let mut stmt = conn.prepare_cached("SELECT id, events FROM webhook_endpoints")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (id, events) = row?;
        if events.split(',').any(|e| e == event_type) {
            out.push(id);
        }
    }
    Ok(out)
}

// ---- deliveries ---------------------------------------------------------------

#[derive(Clone, Debug)]
pub struct DeliveryRow {
    pub id: String,
    pub endpoint_id: String,
    pub msg_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed` (gave up).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_ms: Option<i64>,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    pub redelivery_of: Option<String>,
}

pub struct NewDelivery<'a> {
    pub id: &'a str,
    pub endpoint_id: &'a str,
    pub msg_id: &'a str,
    pub event_type: &'a str,
    pub payload: &'a [u8],
    pub now: i64,
    pub now_ms: i64,
    pub redelivery_of: Option<&'a str>,
}

pub fn insert_delivery(tx: &dyn SqlTx, sealer: &Sealer, d: &NewDelivery<'_>) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT INTO webhook_deliveries(id, endpoint_id, msg_id, event_type, payload_ct, status,
         next_attempt_ms, created_at, redelivery_of)
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7, ?8)",
        params![
            d.id,
            d.endpoint_id,
            d.msg_id,
            d.event_type,
            sealer.seal(Slot::new(DELIVERIES, d.id, "payload"), d.payload)?,
            d.now_ms,
            d.now,
            d.redelivery_of
        ],
    )?;
    Ok(())
}

const DELIVERY_COLS: &str = "id, endpoint_id, msg_id, event_type, status, attempts, \
    next_attempt_ms, last_status, last_error, created_at, finished_at, redelivery_of";

fn delivery_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryRow> {
    Ok(DeliveryRow {
        id: r.get(0)?,
        endpoint_id: r.get(1)?,
        msg_id: r.get(2)?,
        event_type: r.get(3)?,
        status: r.get(4)?,
        attempts: r.get(5)?,
        next_attempt_ms: r.get(6)?,
        last_status: r.get(7)?,
        last_error: r.get(8)?,
        created_at: r.get(9)?,
        finished_at: r.get(10)?,
        redelivery_of: r.get(11)?,
    })
}

/// The newest deliveries, of one endpoint or of all.
pub fn list_deliveries(
    conn: &dyn Sql,
    endpoint: Option<&str>,
    limit: usize,
) -> Result<Vec<DeliveryRow>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {DELIVERY_COLS} FROM webhook_deliveries
         WHERE ?1 IS NULL OR endpoint_id = ?1 ORDER BY seq DESC LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![endpoint, limit as i64], delivery_row)?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// One delivery of one endpoint, with its payload.
pub fn get_delivery(
    conn: &dyn Sql,
    sealer: &Sealer,
    endpoint: &str,
    id: &str,
) -> Result<Option<(DeliveryRow, Vec<u8>)>> {
    let conn = conn.conn(TOKEN);
    let found = conn
        .query_row(
            &format!(
                "SELECT {DELIVERY_COLS}, payload_ct FROM webhook_deliveries
                 WHERE endpoint_id = ?1 AND id = ?2"
            ),
            [endpoint, id],
            |r| Ok((delivery_row(r)?, r.get::<_, Vec<u8>>(12)?)),
        )
        .optional()?;
    match found {
        Some((row, ct)) => {
            let payload = sealer.open(Slot::new(DELIVERIES, &row.id, "payload"), &ct)?;
            Ok(Some((row, payload)))
        }
        None => Ok(None),
    }
}

/// Pending deliveries whose time has come, oldest first.
pub fn due_deliveries(
    conn: &dyn Sql,
    sealer: &Sealer,
    now_ms: i64,
    limit: usize,
) -> Result<Vec<(DeliveryRow, Vec<u8>)>> {
    let conn = conn.conn(TOKEN);
    let mut stmt = conn.prepare(&format!(
        "SELECT {DELIVERY_COLS}, payload_ct FROM webhook_deliveries
         WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, seq LIMIT ?2"
    ))?;
    let rows = stmt.query_map(params![now_ms, limit as i64], |r| {
        Ok((delivery_row(r)?, r.get::<_, Vec<u8>>(12)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (row, ct) = row?;
        let payload = sealer.open(Slot::new(DELIVERIES, &row.id, "payload"), &ct)?;
        out.push((row, payload));
    }
    Ok(out)
}

/// Moves the pending deliveries of one endpoint to `until_ms` at the
/// earliest, counting no attempt (the endpoint is backed off). Returns how
/// many moved.
pub fn postpone_endpoint(tx: &dyn SqlTx, endpoint_id: &str, until_ms: i64) -> Result<usize> {
    let tx = tx.tx(TOKEN);
    Ok(tx.execute(
        "UPDATE webhook_deliveries SET next_attempt_ms = ?2
         WHERE endpoint_id = ?1 AND status = 'pending' AND next_attempt_ms < ?2",
        params![endpoint_id, until_ms],
    )?)
}

pub fn has_pending(conn: &dyn Sql) -> Result<bool> {
    let conn = conn.conn(TOKEN);
    Ok(conn.query_row(
        "SELECT EXISTS(SELECT 1 FROM webhook_deliveries WHERE status = 'pending')
             OR EXISTS(SELECT 1 FROM inbound_events WHERE status = 'received')",
        [],
        |r| r.get(0),
    )?)
}

/// One attempt's outcome and what follows.
pub struct Attempt<'a> {
    pub delivery_id: &'a str,
    pub attempt: i64,
    pub time: i64,
    pub status_code: Option<u16>,
    pub error: Option<&'a str>,
    pub duration_ms: i64,
    /// `None`: delivered or given up (see `succeeded`); else when to retry.
    pub next_attempt_ms: Option<i64>,
    pub succeeded: bool,
}

pub fn record_attempt(tx: &dyn SqlTx, a: &Attempt<'_>) -> Result<()> {
    let tx = tx.tx(TOKEN);
    tx.execute(
        "INSERT OR REPLACE INTO webhook_attempts(delivery_id, attempt, time, status_code, error,
         duration_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            a.delivery_id,
            a.attempt,
            a.time,
            a.status_code,
            a.error,
            a.duration_ms
        ],
    )?;
    let status = match (a.succeeded, a.next_attempt_ms) {
        (true, _) => "succeeded",
        (false, Some(_)) => "pending",
        (false, None) => "failed",
    };
    let finished = if status == "pending" {
        None
    } else {
        Some(a.time)
    };
    tx.execute(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_attempt_ms = ?4,
         last_status = ?5, last_error = ?6, finished_at = ?7 WHERE id = ?1",
        params![
            a.delivery_id,
            status,
            a.attempt,
            a.next_attempt_ms,
            a.status_code,
            a.error,
            finished
        ],
    )?;
    Ok(())
}

/// Every endpoint's host (for the trust page's subprocessors).
pub fn endpoint_hosts(conn: &dyn Sql, sealer: &Sealer) -> Result<Vec<String>> {
    let conn = conn.conn(TOKEN);
    Ok(list_endpoints(conn, sealer)?
        .into_iter()
        .filter_map(|e| url::Url::parse(&e.url).ok()?.host_str().map(str::to_owned))
        .collect())
}
