//! The Integrations page of a workspace (admins): stored secrets (add,
//! rotate, delete; name, last 4, created, last used), outbound webhook
//! endpoints (add with event types, the signing secret shown once, rotate,
//! delete) with the delivery log and a Redeliver button, and inbound
//! integrations (the URL to give the sender, a generated secret shown once)
//! with the received-events log.

use std::collections::HashMap;

use maud::{Markup, html};
use poem::{Response, handler};

use super::forms::{Posted, WsPost, every, status_for};
use super::sent::Sent;
use super::{csrf_field, row_action};
use crate::access::enter::TenantHandle;
use crate::access::op;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::error::{Error, FieldError};
use crate::integrations::{EVENT_TYPES, inbound, secrets, webhooks};
use crate::web::tenant::TenantPage;

/// A secret to show once, with what it belongs to.
struct Shown {
    what: &'static str,
    secret: String,
}

/// The error messages about `key` (or `key[i]`) of the form that was sent.
fn errors_at<'e>(
    errors: &'e [FieldError],
    sent: Option<Sent<'_>>,
    form: &str,
    key: &str,
) -> Vec<&'e str> {
    if sent.is_none_or(|s| s.form != form) {
        return Vec::new();
    }
    errors
        .iter()
        .filter(|e| {
            e.field == key
                || e.field
                    .strip_prefix(key)
                    .is_some_and(|r| r.starts_with('['))
        })
        .map(|e| e.message.as_str())
        .collect()
}

/// The summary of a sent form's errors, each linking to its input.
fn summary(errors: &[FieldError], sent: Option<Sent<'_>>) -> Markup {
    let anchor = |field: &str| -> Option<(String, String)> {
        let key = field.split('[').next().unwrap_or(field);
        let (label, id) = match (sent.map(|s| s.form)?, key) {
            ("secret", "name") => ("Secret name", "secret-name"),
            ("secret", "value") => ("Secret value", "secret-value"),
            ("webhook", "url") => ("URL", "webhook-url"),
            ("webhook", "events") => ("Events", "webhook-events"),
            ("inbound", "name") => ("Name", "inbound-name"),
            ("inbound", "mode") => ("Verifies by", "inbound-mode"),
            ("inbound", "secret_id") => ("Secret", "inbound-secret"),
            ("inbound", "collection_id") => ("Create a record in", "inbound-collection"),
            _ => return None,
        };
        Some((label.to_owned(), id.to_owned()))
    };
    super::forms::summary_by(errors, anchor)
}

fn when(t: Option<i64>) -> String {
    t.map(rfc3339).unwrap_or_else(|| "never".into())
}

/// The page: with a secret shown once, or with the errors of a failed form
/// (422).
async fn render<O>(
    ctx: &TenantPage<O>,
    errors: &[FieldError],
    shown: Option<Shown>,
    sent: Option<Sent<'_>>,
) -> poem::Result<Response> {
    let kept = |form: &str, key: &str| sent.and_then(|s| s.kept(form, key)).unwrap_or_default();
    let checked = |form: &str, key: &str, v: &str| sent.is_some_and(|s| s.checked(form, key, v));
    let at = |form: &str, key: &str, id: &str| {
        let a = super::forms::at_messages(id, &errors_at(errors, sent, form, key));
        (a.invalid, a.described, a.note)
    };
    let (state, ws, now) = (ctx.state(), ctx.db.id(), ctx.now());
    let stored = secrets::list(ctx).await?;
    let endpoints = webhooks::list(ctx).await?;
    let deliveries = webhooks::recent_deliveries(ctx, 30).await?;
    let inbounds = inbound::list(ctx).await?;
    let events = inbound::events(ctx, None, 30).await?;
    let colls = crate::records::list_collections(ctx).await?;
    let url_of: HashMap<&str, &str> = endpoints
        .iter()
        .map(|e| (e.id.as_str(), e.url.as_str()))
        .collect();
    let name_of: HashMap<&str, &str> = inbounds
        .iter()
        .map(|i| (i.id.as_str(), i.name.as_str()))
        .collect();
    let coll_name: HashMap<&str, &str> = colls
        .iter()
        .map(|c| (c.row.id.as_str(), c.row.def.name.as_str()))
        .collect();
    let banner = super::notices::banner_in(state, ctx, ctx.csrf()).await;
    ctx.page_with(banner, status_for(errors), "Integrations", |token| html! {
        section.card {
            h1 { "Integrations" }
            (summary(errors, sent))
            @if let Some(s) = &shown {
                div.notice role="status" {
                    p { strong { "Copy this " (s.what) " now. " } "It is stored sealed and cannot be shown again." }
                    code id="new-secret" { (s.secret) }
                }
            }
        }
        section.card id="secrets" {
            h2 { "Secrets" }
            p.muted { "API keys and tokens for integrations. Values are write-only: only the last 4 characters are ever shown. A rotation keeps the previous value working for the overlap." }
            table.list {
                thead { tr { th { "Name" } th { "Last 4" } th { "Created" } th { "Last used" } th { "Rotate" } th {} } }
                tbody {
                    @for s in &stored {
                        tr data-secret=(s.id) {
                            td { (s.name) }
                            td { code { "…" (s.last4) } }
                            td { (rfc3339(s.created_at)) }
                            td { (when(s.last_used_at)) }
                            td {
                                form.inline method="post" action=(format!("/w/{ws}/integrations/secrets/rotate")) {
                                    (csrf_field(token))
                                    input type="hidden" name="secret_id" value=(s.id);
                                    input name="value" type="password" required minlength="8" autocomplete="off" placeholder="New value" aria-label="New value";
                                    input name="overlap_hours" type="number" min="0" max="720" placeholder="Overlap (hours)" aria-label="Overlap in hours";
                                    button.secondary type="submit" { "Rotate" }
                                }
                                @if let Some(u) = s.previous_until.filter(|u| *u > now) { p.muted { "previous value works until " (rfc3339(u)) } }
                            }
                            td {
                                (row_action(token, &format!("/w/{ws}/integrations/secrets/delete"), ("secret_id", &s.id), ("danger", "Delete")))
                            }
                        }
                    }
                }
            }
            form.inline id="new-secret-form" method="post" action=(format!("/w/{ws}/integrations/secrets")) {
                (csrf_field(token))
                @let (inv, desc, msg) = at("secret", "name", "secret-name");
                input id="secret-name" name="name" value=(kept("secret", "name")) required maxlength="200" placeholder="Name" aria-label="Name" aria-invalid=[inv] aria-describedby=[desc];
                (msg)
                // A secret's value is never sent back to the browser.
                @let (inv, desc, msg) = at("secret", "value", "secret-value");
                input id="secret-value" name="value" type="password" required minlength="8" autocomplete="off" placeholder="Value" aria-label="Value" aria-invalid=[inv] aria-describedby=[desc];
                (msg)
                button type="submit" { "Store secret" }
            }
        }
        section.card id="webhooks" {
            h2 { "Outbound webhooks" }
            p.muted { "Signed with Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature). Failed deliveries are retried with exponential backoff." }
            table.list {
                thead { tr { th { "URL" } th { "Events" } th { "Created" } th {} th {} } }
                tbody {
                    @for e in &endpoints {
                        tr data-webhook=(e.id) {
                            td { code { (e.url) }
                                @if webhooks::outside_residency(&state.config, &e.url) {
                                    p.muted.residency-refused { "Outside this appliance's residency: deliveries are refused (nothing is sent)." }
                                } }
                            td { (e.events.join(", ")) }
                            td { (rfc3339(e.created_at)) }
                            td {
                                (row_action(token, &format!("/w/{ws}/integrations/webhooks/rotate"), ("webhook_id", &e.id), ("secondary", "Rotate secret")))
                            }
                            td {
                                (row_action(token, &format!("/w/{ws}/integrations/webhooks/delete"), ("webhook_id", &e.id), ("danger", "Delete")))
                            }
                        }
                    }
                }
            }
            form id="new-webhook-form" method="post" action=(format!("/w/{ws}/integrations/webhooks")) {
                (csrf_field(token))
                label for="webhook-url" { "URL (https://)" }
                @let (inv, desc, msg) = at("webhook", "url", "webhook-url");
                input id="webhook-url" name="url" type="url" value=(kept("webhook", "url")) required maxlength="2048" placeholder="https://example.com/hooks/aura" aria-invalid=[inv] aria-describedby=[desc];
                (msg)
                @let (inv, desc, msg) = at("webhook", "events", "webhook-events");
                fieldset id="webhook-events" aria-invalid=[inv] aria-describedby=[desc] {
                    legend { "Events" }
                    @for t in EVENT_TYPES {
                        label.check { input type="checkbox" name="events" value=(t) checked[checked("webhook", "events", t)]; " " (t) }
                    }
                }
                (msg)
                button type="submit" { "Add endpoint" }
            }
            h3 { "Delivery log" }
            table.list id="deliveries" {
                thead { tr { th { "Created" } th { "Endpoint" } th { "Event" } th { "Status" } th { "Attempts" } th { "Last code" } th { "Error" } th {} } }
                tbody {
                    @for d in &deliveries {
                        tr data-delivery=(d.id) {
                            td { (rfc3339(d.created_at)) }
                            td { code { (url_of.get(d.endpoint_id.as_str()).copied().unwrap_or("")) } }
                            td { (d.event_type) }
                            td { span.badge { (d.status) } }
                            td { (d.attempts) }
                            td { (d.last_status.map(|s| s.to_string()).unwrap_or_default()) }
                            td { (d.last_error.clone().unwrap_or_default()) }
                            td {
                                form method="post" action=(format!("/w/{ws}/integrations/webhooks/redeliver")) {
                                    (csrf_field(token))
                                    input type="hidden" name="webhook_id" value=(d.endpoint_id);
                                    input type="hidden" name="delivery_id" value=(d.id);
                                    button.secondary type="submit" { "Redeliver" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section.card id="inbound" {
            h2 { "Inbound webhooks" }
            p.muted { "Senders sign with Standard Webhooks headers (or send a bearer token); timestamps older than 5 minutes and repeated message ids are refused." }
            table.list {
                thead { tr { th { "Name" } th { "URL to give the sender" } th { "Verifies by" } th { "Creates records in" } th {} } }
                tbody {
                    @for i in &inbounds {
                        tr data-inbound=(i.id) {
                            td { (i.name) }
                            td { code { (inbound::hook_url(&state.config, ws, &i.id)) } }
                            td { (i.mode) }
                            td { (i.collection_id.as_deref().and_then(|c| coll_name.get(c).copied()).unwrap_or("—")) }
                            td {
                                (row_action(token, &format!("/w/{ws}/integrations/inbound/delete"), ("integration_id", &i.id), ("danger", "Delete")))
                            }
                        }
                    }
                }
            }
            form id="new-inbound-form" method="post" action=(format!("/w/{ws}/integrations/inbound")) {
                (csrf_field(token))
                label for="inbound-name" { "Name" }
                @let (inv, desc, msg) = at("inbound", "name", "inbound-name");
                input id="inbound-name" name="name" value=(kept("inbound", "name")) required maxlength="200" aria-invalid=[inv] aria-describedby=[desc];
                (msg)
                label for="inbound-mode" { "Verifies by" }
                @let (inv, desc, msg) = at("inbound", "mode", "inbound-mode");
                select id="inbound-mode" name="mode" aria-invalid=[inv] aria-describedby=[desc] {
                    option value="signature" { "signature (Standard Webhooks HMAC)" }
                    option value="token" selected[kept("inbound", "mode") == "token"] { "token (Authorization: Bearer)" }
                }
                (msg)
                label for="inbound-secret" { "Secret" }
                @let (inv, desc, msg) = at("inbound", "secret_id", "inbound-secret");
                select id="inbound-secret" name="secret_id" aria-invalid=[inv] aria-describedby=[desc] {
                    option value="" { "generate a new one" }
                    @for s in &stored { option value=(s.id) selected[kept("inbound", "secret_id") == s.id] { (s.name) " (…" (s.last4) ")" } }
                }
                (msg)
                label for="inbound-collection" { "Create a record in (optional)" }
                @let (inv, desc, msg) = at("inbound", "collection_id", "inbound-collection");
                select id="inbound-collection" name="collection_id" aria-invalid=[inv] aria-describedby=[desc] {
                    option value="" { "no collection: keep the event only" }
                    @for c in &colls { option value=(c.row.id) selected[kept("inbound", "collection_id") == c.row.id] { (c.row.def.name) } }
                }
                (msg)
                button type="submit" { "Add inbound integration" }
            }
            h3 { "Received events" }
            table.list id="received-events" {
                thead { tr { th { "Received" } th { "Integration" } th { "Message id" } th { "Status" } th { "Record" } th { "Error" } } }
                tbody {
                    @for e in &events {
                        tr data-event=(e.id) {
                            td { (rfc3339(e.received_at)) }
                            td { (name_of.get(e.integration_id.as_str()).copied().unwrap_or("")) }
                            td { code { (e.msg_id) } }
                            td { span.badge { (e.status) } }
                            td { (e.record_id.clone().unwrap_or_default()) }
                            td { (e.error.clone().unwrap_or_default()) }
                        }
                    }
                }
            }
        }
    })
    .await
}

#[handler]
pub async fn page(ctx: TenantPage<op::IntegrationRead>) -> poem::Result<Response> {
    render(&ctx, &[], None, None).await
}

/// After a change: back to the page, the page with a secret shown once, or
/// the page again with what went wrong.
/// `form` names the form for `Sent`.
async fn done<O: crate::access::op::Op>(
    p: &WsPost<O>,
    form: &'static str,
    r: Result<Option<Shown>, Error>,
) -> poem::Result<Response> {
    match r {
        Ok(Some(s)) => render(&p.ctx, &[], Some(s), None).await,
        r => {
            p.back_to_section(r, "integrations", form, async |ctx, errors, sent| {
                render(ctx, errors, None, Some(sent)).await
            })
            .await
        }
    }
}

fn overlap(form: &Posted) -> Result<Option<u32>, Error> {
    match form.get("overlap_hours").map(str::trim) {
        None | Some("") => Ok(None),
        Some(h) => h
            .parse()
            .map(Some)
            .map_err(|_| Error::field("overlap_hours", "must be a whole number of hours")),
    }
}

macro_rules! form_handler {
    ($name:ident, $op:ty, $form:literal, |$cfg:pat, $ctx:ident, $pairs:ident| $body:expr) => {
        #[handler]
        pub async fn $name(p: WsPost<$op>) -> poem::Result<Response> {
            let r: Result<Option<Shown>, Error> = {
                let ($cfg, $ctx, $pairs): (&Config, &TenantHandle, &Posted) =
                    (&p.state.config, &p.ctx, &p.form);
                $body
            };
            done(&p, $form, r).await
        }
    };
}

form_handler!(
    create_secret,
    op::IntegrationCreate,
    "secret",
    |_, ctx, p| {
        let (name, value) = (p.text("name"), p.text("value"));
        secrets::create(ctx, name, value).await.map(|_| None)
    }
);

form_handler!(
    rotate_secret,
    op::IntegrationUpdate,
    "rotate-secret",
    |cfg, ctx, p| {
        match overlap(p) {
            Ok(h) => {
                let (id, value) = (p.text("secret_id"), p.text("value"));
                secrets::rotate(ctx, cfg, id, value, h).await.map(|_| None)
            }
            Err(e) => Err(e),
        }
    }
);

form_handler!(
    delete_secret,
    op::IntegrationDelete,
    "delete-secret",
    |_, ctx, p| {
        secrets::delete(ctx, p.text("secret_id"))
            .await
            .map(|_| None)
    }
);

form_handler!(
    create_webhook,
    op::IntegrationCreate,
    "webhook",
    |cfg, ctx, p| {
        let events: Vec<String> = every(&p.0, "events")
            .into_iter()
            .map(str::to_owned)
            .collect();
        webhooks::create(ctx, cfg, p.text("url"), &events)
            .await
            .map(|c| {
                Some(Shown {
                    what: "signing secret",
                    secret: c.secret,
                })
            })
    }
);

form_handler!(
    rotate_webhook,
    op::IntegrationUpdate,
    "rotate-webhook",
    |cfg, ctx, p| {
        match overlap(p) {
            Ok(h) => webhooks::rotate_secret(ctx, cfg, p.text("webhook_id"), h)
                .await
                .map(|c| {
                    Some(Shown {
                        what: "signing secret",
                        secret: c.secret,
                    })
                }),
            Err(e) => Err(e),
        }
    }
);

form_handler!(
    delete_webhook,
    op::IntegrationDelete,
    "delete-webhook",
    |_, ctx, p| {
        webhooks::delete(ctx, p.text("webhook_id"))
            .await
            .map(|_| None)
    }
);

form_handler!(
    redeliver,
    op::IntegrationUpdate,
    "redeliver",
    |_, ctx, p| {
        let (hook, delivery) = (p.text("webhook_id"), p.text("delivery_id"));
        webhooks::redeliver(ctx, hook, delivery).await.map(|_| None)
    }
);

form_handler!(
    create_inbound,
    op::IntegrationCreate,
    "inbound",
    |_, ctx, p| {
        let opt = |k| p.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
        let req = inbound::NewInbound {
            name: p.text("name").to_owned(),
            mode: p.get("mode").unwrap_or("signature").to_owned(),
            secret_id: opt("secret_id"),
            collection_id: opt("collection_id"),
        };
        inbound::create(ctx, req).await.map(|c| {
            c.secret.map(|secret| Shown {
                what: "inbound secret",
                secret,
            })
        })
    }
);

form_handler!(
    delete_inbound,
    op::IntegrationDelete,
    "delete-inbound",
    |_, ctx, p| {
        inbound::delete(ctx, p.text("integration_id"))
            .await
            .map(|_| None)
    }
);
