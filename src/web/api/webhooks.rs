//! Outbound webhook endpoints over HTTP (admins): subscribe, rotate the
//! signing secret (shown once, like at creation), delete, read the delivery
//! log and redeliver a message.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::HttpsUrl;
use super::list::list;
use super::routes::api;
use super::{ApiTags, Created, Done};
use crate::access::op;
use crate::clock::rfc3339;
use crate::integrations::webhooks;
use crate::store::webhooks::{DeliveryRow, EndpointRow};
use crate::web::tenant;

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookCreate {
    /// `https://...` (`http://` only to an IP the operator allow-listed).
    pub url: HttpsUrl,
    /// Event types, e.g. `record.created`, `member.role_changed`.
    #[oai(validator(
        min_items = 1,
        pattern = r"^(record\.created|record\.updated|record\.restored|record\.deleted|record\.undeleted|records\.imported|member\.added|member\.role_changed|member\.removed)$"
    ))]
    pub events: Vec<String>,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookUpdate {
    /// A new receiver URL (checked like at creation, residency included).
    pub url: Option<HttpsUrl>,
    /// New event types (replace the old ones).
    #[oai(validator(
        min_items = 1,
        pattern = r"^(record\.created|record\.updated|record\.restored|record\.deleted|record\.undeleted|records\.imported|member\.added|member\.role_changed|member\.removed)$"
    ))]
    pub events: Option<Vec<String>>,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookRotate {
    /// How long the previous secret keeps signing too (0..720; default from
    /// the operator's config).
    #[oai(validator(minimum(value = "0"), maximum(value = "720")))]
    pub overlap_hours: Option<u32>,
}

#[derive(Object)]
pub struct WebhookEndpoint {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
    /// Deliveries carry a second signature with the previous secret until then.
    pub previous_secret_until: Option<String>,
}

impl WebhookEndpoint {
    fn from_row(r: EndpointRow, now: i64) -> Self {
        Self {
            id: r.id,
            url: r.url,
            events: r.events,
            created_at: rfc3339(r.created_at),
            previous_secret_until: r.previous_until.filter(|u| *u > now).map(rfc3339),
        }
    }
}

#[derive(Object)]
pub struct WebhookEndpointCreated {
    #[oai(flatten)]
    pub endpoint: WebhookEndpoint,
    /// The signing secret (`whsec_...`), shown this once.
    pub secret: String,
}

impl WebhookEndpointCreated {
    fn of(made: webhooks::Created, now: i64) -> Self {
        Self {
            endpoint: WebhookEndpoint::from_row(made.endpoint, now),
            secret: made.secret,
        }
    }
}

list!(WebhookEndpointList of WebhookEndpoint);

#[derive(Object)]
pub struct WebhookDelivery {
    pub id: String,
    pub webhook_id: String,
    /// The `webhook-id` header (the same for a redelivery).
    pub msg_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed` (no attempts left).
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: Option<String>,
    /// The receiver's last HTTP status.
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
    pub redelivery_of: Option<String>,
}

impl From<DeliveryRow> for WebhookDelivery {
    fn from(d: DeliveryRow) -> Self {
        Self {
            id: d.id,
            webhook_id: d.endpoint_id,
            msg_id: d.msg_id,
            event_type: d.event_type,
            next_attempt_at: d
                .next_attempt_ms
                .filter(|_| d.status == "pending")
                .map(crate::records::rfc3339_ms),
            status: d.status,
            attempts: d.attempts,
            last_status_code: d.last_status,
            last_error: d.last_error,
            created_at: rfc3339(d.created_at),
            finished_at: d.finished_at.map(rfc3339),
            redelivery_of: d.redelivery_of,
        }
    }
}

list!(WebhookDeliveryList of WebhookDelivery);

/// 202 Accepted: queued, sent by the worker.
#[derive(ApiResponse)]
pub enum Queued {
    #[oai(status = 202)]
    Queued(Json<WebhookDelivery>),
}

#[derive(Default)]
pub struct WebhooksApi;

api! {
    #[OpenApi(tag = "ApiTags::Integrations")]
    impl WebhooksApi {
        /// The workspace's webhook endpoints.
        GET "/workspaces/:workspace/webhooks"
        async fn list(workspace: tenant::Path<op::IntegrationRead>) -> Json<WebhookEndpointList> {
            let now = workspace.now();
            Ok(Json(
                webhooks::list(&workspace)
                    .await?
                    .into_iter()
                    .map(|e| WebhookEndpoint::from_row(e, now))
                    .collect(),
            ))
        }

        /// Subscribes an endpoint. The signing secret is in this answer only.
        POST "/workspaces/:workspace/webhooks"
        async fn create(
            workspace: tenant::Path<op::IntegrationCreate>,
            body: JsonBody<WebhookCreate>,
        ) -> Created<WebhookEndpointCreated> {
            let made = webhooks::create(
                &workspace,
                &workspace.state().config,
                &body.0.url,
                &body.0.events,
            )
            .await?;
            let created = WebhookEndpointCreated::of(made, workspace.now());
            Ok(Created::Created(Json(created)))
        }

        /// Changes an endpoint's URL or event types (the secret stays).
        PATCH "/workspaces/:workspace/webhooks/:webhook"
        async fn update(
            workspace: tenant::Path<op::IntegrationUpdate>,
            webhook: Path<String>,
            body: JsonBody<WebhookUpdate>,
        ) -> Json<WebhookEndpoint> {
            let b = body.0;
            let row = webhooks::update(
                &workspace,
                &workspace.state().config,
                &webhook,
                b.url.as_deref(),
                b.events.as_deref(),
            )
            .await?;
            Ok(Json(WebhookEndpoint::from_row(row, workspace.now())))
        }

        /// A new signing secret, shown this once; the previous one keeps signing
        /// (a second signature) for the overlap.
        POST "/workspaces/:workspace/webhooks/:webhook/rotate-secret"
        async fn rotate(
            workspace: tenant::Path<op::IntegrationUpdate>,
            webhook: Path<String>,
            body: JsonBody<WebhookRotate>,
        ) -> Json<WebhookEndpointCreated> {
            let made = webhooks::rotate_secret(
                &workspace,
                &workspace.state().config,
                &webhook,
                body.0.overlap_hours,
            )
            .await?;
            Ok(Json(WebhookEndpointCreated::of(made, workspace.now())))
        }

        /// Deletes an endpoint and its delivery log.
        DELETE "/workspaces/:workspace/webhooks/:webhook"
        async fn delete(
            workspace: tenant::Path<op::IntegrationDelete>,
            webhook: Path<String>,
        ) -> Done {
            webhooks::delete(&workspace, &webhook).await?;
            Ok(Done::Done)
        }

        /// The endpoint's newest 100 deliveries.
        GET "/workspaces/:workspace/webhooks/:webhook/deliveries"
        async fn deliveries(
            workspace: tenant::Path<op::IntegrationRead>,
            webhook: Path<String>,
        ) -> Json<WebhookDeliveryList> {
            Ok(Json(
                webhooks::deliveries(&workspace, &webhook, 100)
                    .await?
                    .into(),
            ))
        }

        /// Sends a delivery's message again (same `webhook-id`), as a new delivery.
        POST "/workspaces/:workspace/webhooks/:webhook/deliveries/:delivery/redeliver"
        async fn redeliver(
            workspace: tenant::Path<op::IntegrationUpdate>,
            webhook: Path<String>,
            delivery: Path<String>,
        ) -> Queued {
            let row = webhooks::redeliver(&workspace, &webhook, &delivery).await?;
            Ok(Queued::Queued(Json(row.into())))
        }
    }
}
