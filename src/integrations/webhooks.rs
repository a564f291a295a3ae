//! Outbound webhook endpoints: an HTTPS URL, the event types it subscribes
//! to, and a `whsec_` signing secret shown once (at creation and rotation).
//! Its delivery log, and a manual redeliver that sends the same message
//! (same `webhook-id`) again as a new delivery.

use serde_json::json;

use super::ssrf::Policy;
use crate::access::enter::TenantHandle;
use crate::audit::NewEntry;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::webhooks::{self as store, DeliveryRow, EndpointRow, NewDelivery};

pub struct Created {
    pub endpoint: EndpointRow,
    /// `whsec_...`, in this answer only.
    pub secret: String,
}

fn validate_events(events: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let e = e.trim();
        if !super::EVENT_TYPES.contains(&e) {
            return Err(Error::field(
                format!("events[{i}]"),
                format!("must be one of {}", super::EVENT_TYPES.join(", ")),
            ));
        }
        if !out.iter().any(|x| x == e) {
            out.push(e.to_owned());
        }
    }
    if out.is_empty() {
        return Err(Error::field("events", "choose at least one event type"));
    }
    Ok(out)
}

fn host(url: &url::Url) -> String {
    url.host_str().unwrap_or_default().to_owned()
}

/// With `residency` set, the receiver's host must be declared in region
/// (`[[outbound.hosts]]`); the worker checks again at every attempt.
fn check_residency(cfg: &Config, url: &url::Url) -> Result<()> {
    crate::config::residency::Residency::from_file(&cfg.file)
        .check_url(url)
        .map_err(|e| Error::field("url", format!("is refused by residency: {e}")))
}

/// Whether a stored endpoint's deliveries are refused by residency now (the
/// integrations page says so beside it).
pub fn outside_residency(cfg: &Config, url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| check_residency(cfg, &u).is_err())
}

pub async fn list(ctx: &TenantHandle) -> Result<Vec<EndpointRow>> {
    ctx.db.read(store::list_endpoints).await
}

/// The hosts this workspace's webhook endpoints send data to, sorted and
/// deduplicated: shown to the workspace's members (never on the public trust
/// page, which would tell anyone which services each workspace uses).
pub async fn receiver_hosts(ctx: &TenantHandle) -> Result<Vec<String>> {
    let mut hosts = ctx.db.read(store::endpoint_hosts).await?;
    hosts.sort();
    hosts.dedup();
    Ok(hosts)
}

pub async fn create(
    ctx: &TenantHandle,
    cfg: &Config,
    url: &str,
    events: &[String],
) -> Result<Created> {
    let policy = Policy::from_config(&cfg.file.integrations);
    let url = policy
        .check_url(url)
        .and_then(|u| check_residency(cfg, &u).map(|()| u));
    // Both checked, so one answer names every problem.
    let (url, events) = match (url, validate_events(events)) {
        (Ok(u), Ok(e)) => (u, e),
        (Err(Error::Validation(mut a)), Err(Error::Validation(b))) => {
            a.extend(b);
            return Err(Error::Validation(a));
        }
        (Err(e), _) | (_, Err(e)) => return Err(e),
    };
    let now = ctx.now();
    let endpoint = EndpointRow {
        id: super::new_id(),
        url: url.to_string(),
        events,
        created_at: now,
        previous_until: None,
    };
    let secret = super::signing::generate_secret();
    let (actor, m, row, s) = (
        ctx.actor.clone(),
        ctx.meta.clone(),
        endpoint.clone(),
        secret.clone(),
    );
    ctx.db
        .write(move |t| {
            if store::count_endpoints(t)? >= super::MAX_ENDPOINTS {
                return Err(Error::Conflict(format!(
                    "a workspace has at most {} webhook endpoints",
                    super::MAX_ENDPOINTS
                )));
            }
            store::insert_endpoint(t, t.sealer, &row, &s)?;
            t.audit(
                now,
                &NewEntry::new(actor, "webhook.created", &m)
                    .target("webhook", &row.id)
                    .after(json!({ "host": host(&url), "events": row.events })),
            )?;
            Ok(())
        })
        .await?;
    Ok(Created { endpoint, secret })
}

/// Changes an endpoint's URL or event types; a new URL passes the same
/// checks as at creation (SSRF guard, residency).
pub async fn update(
    ctx: &TenantHandle,
    cfg: &Config,
    id: &str,
    url: Option<&str>,
    events: Option<&[String]>,
) -> Result<EndpointRow> {
    if url.is_none() && events.is_none() {
        return Err(Error::field(
            "url",
            "give a new `url`, new `events`, or both",
        ));
    }
    let url = match url {
        Some(u) => {
            let u = Policy::from_config(&cfg.file.integrations).check_url(u)?;
            check_residency(cfg, &u)?;
            Some(u)
        }
        None => None,
    };
    let events = events.map(validate_events).transpose()?;
    let now = ctx.now();
    let (actor, m, id) = (ctx.actor.clone(), ctx.meta.clone(), id.to_owned());
    ctx.db
        .write(move |t| {
            let old = store::get_endpoint(t, t.sealer, &id)?.ok_or(Error::NotFound("webhook"))?;
            let row = EndpointRow {
                url: url
                    .as_ref()
                    .map_or_else(|| old.url.clone(), |u| u.to_string()),
                events: events.clone().unwrap_or_else(|| old.events.clone()),
                ..old.clone()
            };
            if !store::update_endpoint(t, t.sealer, &row)? {
                return Err(Error::NotFound("webhook"));
            }
            let host_of = |u: &str| url::Url::parse(u).map(|u| host(&u)).unwrap_or_default();
            t.audit(
                now,
                &NewEntry::new(actor, "webhook.updated", &m)
                    .target("webhook", &id)
                    .before(json!({ "host": host_of(&old.url), "events": old.events }))
                    .after(json!({ "host": host_of(&row.url), "events": row.events })),
            )?;
            Ok(row)
        })
        .await
}

pub async fn rotate_secret(
    ctx: &TenantHandle,
    cfg: &Config,
    id: &str,
    overlap_hours: Option<u32>,
) -> Result<Created> {
    let now = ctx.now();
    let until = super::previous_until(
        overlap_hours,
        cfg.file.integrations.secret_overlap_hours,
        now,
    )?;
    let secret = super::signing::generate_secret();
    let (actor, m, id, s) = (
        ctx.actor.clone(),
        ctx.meta.clone(),
        id.to_owned(),
        secret.clone(),
    );
    let endpoint = ctx
        .db
        .write(move |t| {
            let old = store::get_endpoint(t, t.sealer, &id)?.ok_or(Error::NotFound("webhook"))?;
            if !store::rotate_endpoint_secret(t, t.sealer, &id, &s, until, now)? {
                return Err(Error::NotFound("webhook"));
            }
            t.audit(
                now,
                &NewEntry::new(actor, "webhook.secret_rotated", &m)
                    .target("webhook", &id)
                    .before(json!({ "previous_valid_until": old.previous_until }))
                    .after(json!({ "previous_valid_until": until })),
            )?;
            store::get_endpoint(t, t.sealer, &id)?.ok_or(Error::NotFound("webhook"))
        })
        .await?;
    Ok(Created { endpoint, secret })
}

pub async fn delete(ctx: &TenantHandle, id: &str) -> Result<()> {
    let now = ctx.now();
    let (actor, m, id) = (ctx.actor.clone(), ctx.meta.clone(), id.to_owned());
    ctx.db
        .write(move |t| {
            let old = store::get_endpoint(t, t.sealer, &id)?.ok_or(Error::NotFound("webhook"))?;
            store::delete_endpoint(t, &id)?;
            let h = url::Url::parse(&old.url)
                .map(|u| host(&u))
                .unwrap_or_default();
            t.audit(
                now,
                &NewEntry::new(actor, "webhook.deleted", &m)
                    .target("webhook", &id)
                    .before(json!({ "host": h, "events": old.events })),
            )?;
            Ok(())
        })
        .await
}

/// The newest deliveries of one endpoint (404 for an unknown endpoint).
pub async fn deliveries(ctx: &TenantHandle, id: &str, limit: usize) -> Result<Vec<DeliveryRow>> {
    let id = id.to_owned();
    ctx.db
        .read(move |c, s| {
            store::get_endpoint(c, s, &id)?.ok_or(Error::NotFound("webhook"))?;
            store::list_deliveries(c, Some(&id), limit)
        })
        .await
}

/// The newest deliveries of every endpoint (the integrations page).
pub async fn recent_deliveries(ctx: &TenantHandle, limit: usize) -> Result<Vec<DeliveryRow>> {
    ctx.db
        .read(move |c, _| store::list_deliveries(c, None, limit))
        .await
}

/// Sends a delivery's message again, now, as a new delivery with the same
/// message id.
pub async fn redeliver(ctx: &TenantHandle, endpoint: &str, delivery: &str) -> Result<DeliveryRow> {
    let now = ctx.now();
    let now_ms = ctx.clock.unix_ms();
    let (actor, m) = (ctx.actor.clone(), ctx.meta.clone());
    let (endpoint, delivery) = (endpoint.to_owned(), delivery.to_owned());
    let row = ctx
        .db
        .write(move |t| {
            let (old, payload) = store::get_delivery(t, t.sealer, &endpoint, &delivery)?
                .ok_or(Error::NotFound("delivery"))?;
            let id = super::new_id();
            store::insert_delivery(
                t,
                t.sealer,
                &NewDelivery {
                    id: &id,
                    endpoint_id: &endpoint,
                    msg_id: &old.msg_id,
                    event_type: &old.event_type,
                    payload: &payload,
                    now,
                    now_ms,
                    redelivery_of: Some(&old.id),
                },
            )?;
            t.audit(
                now,
                &NewEntry::new(actor, "webhook.redelivered", &m)
                    .target("webhook_delivery", &id)
                    .after(json!({ "webhook": endpoint, "redelivery_of": old.id })),
            )?;
            let (row, _) = store::get_delivery(t, t.sealer, &endpoint, &id)?
                .ok_or(Error::NotFound("delivery"))?;
            Ok(row)
        })
        .await?;
    super::outbox::wake(ctx.db.id());
    Ok(row)
}
