//! Inbound webhooks: an endpoint per integration,
//! `POST /hooks/{workspace}/{integration}`. A request must carry
//! `webhook-id` and `webhook-timestamp`, and either a Standard Webhooks
//! `webhook-signature` (mode `signature`) or `Authorization: Bearer <token>`
//! (mode `token`), made with the integration's stored secret (its previous
//! value too, during a rotation's overlap). A timestamp more than five minutes
//! away is refused, and so is a message id the integration has already
//! received (kept as a keyed digest). A verified event is stored sealed and
//! answered with 202 at once; the worker then processes it: with a target
//! collection, its JSON becomes a record there.

use serde_json::json;
use subtle::ConstantTimeEq;

use super::signing;
use crate::access::SystemTask;
use crate::access::enter::{Door, TenantHandle};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::ids::WorkspaceId;
use crate::store::integrations::{self as store, EventRow, InboundRow, NewEvent};

pub const MODES: &[&str] = &["signature", "token"];

pub struct NewInbound {
    pub name: String,
    pub mode: String,
    /// A stored secret to verify with; none: a new one is made (and shown once).
    pub secret_id: Option<String>,
    pub collection_id: Option<String>,
}

pub struct Created {
    pub integration: InboundRow,
    /// The generated secret, in this answer only.
    pub secret: Option<String>,
}

/// The address to give the sender.
pub fn hook_url(cfg: &Config, ws: WorkspaceId, id: &str) -> String {
    format!("{}/hooks/{ws}/{id}", cfg.public_url)
}

pub async fn list(ctx: &TenantHandle) -> Result<Vec<InboundRow>> {
    ctx.db.read(store::list_inbound).await
}

pub async fn create(ctx: &TenantHandle, req: NewInbound) -> Result<Created> {
    let name = crate::identity::validate_name("name", &req.name)?;
    if !MODES.contains(&req.mode.as_str()) {
        return Err(Error::field("mode", "must be signature or token"));
    }
    let collection_id = match req.collection_id.filter(|c| !c.is_empty()) {
        Some(c) => Some(
            crate::records::load(
                ctx,
                &c.parse()
                    .map_err(|_| Error::field("collection_id", "no such collection"))?,
                crate::records::Need::See,
            )
            .await
            .map_err(|_| Error::field("collection_id", "no such collection"))?
            .row
            .id,
        ),
        None => None,
    };
    let generated = match (&req.secret_id, req.mode.as_str()) {
        (Some(_), _) => None,
        (None, "signature") => Some(signing::generate_secret()),
        (None, _) => Some(format!("aura_in_{}", crate::crypto::token::random_token())),
    };
    let now = ctx.now();
    let id = super::new_id();
    let secret_id = req.secret_id.clone().unwrap_or_else(super::new_id);
    let row = InboundRow {
        id,
        name,
        secret_id,
        mode: req.mode,
        collection_id,
        created_at: now,
    };
    let (actor, m, r, g) = (
        ctx.actor.clone(),
        ctx.meta.clone(),
        row.clone(),
        generated.clone(),
    );
    let existing = req.secret_id.is_some();
    ctx.db
        .write(move |t| {
            if existing {
                store::get_secret(t, t.sealer, &r.secret_id)?
                    .ok_or_else(|| Error::field("secret_id", "no such secret"))?;
            }
            if let Some(value) = &g {
                let label = format!("Inbound: {}", r.name);
                store::insert_secret(t, t.sealer, &r.secret_id, &label, value, now)?;
            }
            store::insert_inbound(t, t.sealer, &r)?;
            t.audit(
                now,
                &NewEntry::new(actor, "inbound_integration.created", &m)
                    .target("inbound_integration", &r.id)
                    .after(json!({
                        "name": r.name, "mode": r.mode, "secret": r.secret_id,
                        "collection": r.collection_id,
                    })),
            )?;
            Ok(())
        })
        .await?;
    Ok(Created {
        integration: row,
        secret: generated,
    })
}

pub async fn delete(ctx: &TenantHandle, id: &str) -> Result<()> {
    let now = ctx.now();
    let (actor, m, id) = (ctx.actor.clone(), ctx.meta.clone(), id.to_owned());
    ctx.db
        .write(move |t| {
            let old =
                store::get_inbound(t, t.sealer, &id)?.ok_or(Error::NotFound("integration"))?;
            store::delete_inbound(t, &id)?;
            t.audit(
                now,
                &NewEntry::new(actor, "inbound_integration.deleted", &m)
                    .target("inbound_integration", &id)
                    .before(json!({ "name": old.name })),
            )?;
            Ok(())
        })
        .await
}

/// The newest received events of one integration (404 if unknown), or of
/// every integration.
pub async fn events(ctx: &TenantHandle, id: Option<&str>, limit: usize) -> Result<Vec<EventRow>> {
    let id = id.map(str::to_owned);
    ctx.db
        .read(move |c, s| {
            if let Some(i) = &id {
                store::get_inbound(c, s, i)?.ok_or(Error::NotFound("integration"))?;
            }
            store::list_events(c, s, id.as_deref(), limit)
        })
        .await
}

/// Why an inbound request was refused.
#[derive(Debug)]
pub enum Refusal {
    /// No such workspace or integration (or a suspended workspace).
    NotFound,
    /// A required header is missing or malformed.
    BadRequest(&'static str),
    /// The signature or token does not match.
    BadSignature,
    /// The timestamp is outside the 5-minute window.
    Stale,
    /// This message id was received before.
    Replay,
    Internal(Error),
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        match e {
            Error::NotFound(_) => Refusal::NotFound,
            other => Refusal::Internal(other),
        }
    }
}

/// The parts of an inbound request the check needs.
pub struct Incoming<'a> {
    pub msg_id: Option<&'a str>,
    pub timestamp: Option<&'a str>,
    pub signature: Option<&'a str>,
    pub bearer: Option<&'a str>,
    pub body: &'a [u8],
}

fn token_matches(values: &[String], sent: &str) -> bool {
    let mut ok = false;
    for v in values {
        ok |= bool::from(v.as_bytes().ct_eq(sent.as_bytes()));
    }
    ok
}

/// Verifies and stores one inbound event; its id on success.
pub async fn receive(
    door: Door<'_>,
    meta: &RequestMeta,
    workspace: &str,
    integration: &str,
    req: Incoming<'_>,
) -> std::result::Result<String, Refusal> {
    let ws: WorkspaceId = workspace.parse().map_err(|_| Refusal::NotFound)?;
    let iid = uuid::Uuid::parse_str(integration)
        .map_err(|_| Refusal::NotFound)?
        .to_string();
    let keys = door.control.keys.clone();
    let active = door
        .control
        .db
        .read_async(move |c| crate::store::control::get_workspace(c, &keys, ws))
        .await?
        .is_some_and(|w| w.state == "active");
    if !active {
        return Err(Refusal::NotFound);
    }
    let db = door
        .tenants
        .open_async(door.control, SystemTask::InboundWebhook.grant(ws))
        .await?;
    let now = door.clock.unix();
    let i2 = iid.clone();
    let (row, values) = db
        .read(move |c, s| {
            let row = store::get_inbound(c, s, &i2)?.ok_or(Error::NotFound("integration"))?;
            let values = store::secret_values(c, s, &row.secret_id, now)?.unwrap_or_default();
            Ok((row, values))
        })
        .await?;
    let msg_id = req
        .msg_id
        .filter(|m| (1..=255).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(Refusal::BadRequest("webhook-id"))?;
    let ts: i64 = req
        .timestamp
        .and_then(|t| t.trim().parse().ok())
        .ok_or(Refusal::BadRequest("webhook-timestamp"))?;
    let verified = match row.mode.as_str() {
        "signature" => req
            .signature
            .is_some_and(|h| signing::verify(&values, h, msg_id, ts, req.body)),
        _ => req.bearer.is_some_and(|b| token_matches(&values, b)),
    };
    if !verified || values.is_empty() {
        return Err(Refusal::BadSignature);
    }
    if !signing::fresh(ts, now) {
        return Err(Refusal::Stale);
    }
    let event_id = super::new_id();
    let (e, msg, body, m) = (
        event_id.clone(),
        msg_id.to_owned(),
        req.body.to_vec(),
        meta.clone(),
    );
    let stored = db
        .write(move |t| {
            let fresh = store::insert_event(
                t,
                t.sealer,
                t.blind,
                &NewEvent {
                    id: &e,
                    integration_id: &row.id,
                    msg_id: &msg,
                    sent_at: ts,
                    received_at: now,
                    body: &body,
                },
            )?;
            if !fresh {
                return Ok(false);
            }
            store::touch_secret(t, &row.secret_id, now)?;
            t.audit(
                now,
                &NewEntry::new(Actor::System, "inbound.received", &m)
                    .target("inbound_event", &e)
                    .after(json!({ "integration": row.id, "bytes": body.len() })),
            )?;
            Ok(true)
        })
        .await?;
    if !stored {
        return Err(Refusal::Replay);
    }
    super::outbox::wake(ws);
    Ok(event_id)
}
