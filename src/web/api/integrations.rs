//! Integration secrets and inbound integrations over HTTP (admins). A stored
//! secret's value is never returned: only its name, last four characters and
//! times. A generated inbound secret is in the creating answer only.

use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::{Name, SecretValue};
use super::list::list;
use super::routes::api;
use super::{ApiTags, Created, Done};
use crate::access::enter::TenantHandle;
use crate::access::op;
use crate::clock::rfc3339;
use crate::config::Config;
use crate::integrations::{inbound, secrets};
use crate::store::integrations::{EventRow, InboundRow, SecretRow};
use crate::web::tenant;

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSecretCreate {
    pub name: Name,
    /// The API key or token; stored sealed and never shown again.
    pub value: SecretValue,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSecretRotate {
    pub value: SecretValue,
    /// How long the previous value keeps working (0..720; default from the
    /// operator's config).
    #[oai(validator(minimum(value = "0"), maximum(value = "720")))]
    pub overlap_hours: Option<u32>,
}

/// A stored secret, without its value.
#[derive(Object)]
pub struct IntegrationSecret {
    pub id: String,
    pub name: String,
    /// The last four characters of the value.
    pub last4: String,
    pub created_at: String,
    pub rotated_at: Option<String>,
    pub last_used_at: Option<String>,
    /// The previous value still works until then.
    pub previous_valid_until: Option<String>,
}

impl IntegrationSecret {
    pub fn from_row(r: SecretRow, now: i64) -> Self {
        Self {
            id: r.id,
            name: r.name,
            last4: r.last4,
            created_at: rfc3339(r.created_at),
            rotated_at: r.rotated_at.map(rfc3339),
            last_used_at: r.last_used_at.map(rfc3339),
            previous_valid_until: r.previous_until.filter(|u| *u > now).map(rfc3339),
        }
    }
}

list!(IntegrationSecretList of IntegrationSecret);

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InboundCreate {
    pub name: Name,
    pub mode: InboundMode,
    /// A stored secret to verify with; absent: a new one is generated and
    /// returned once.
    pub secret_id: Option<String>,
    /// Verified events become records of this collection.
    pub collection_id: Option<String>,
}

/// How an inbound integration authenticates its sender.
#[derive(poem_openapi::Enum, Deserialize, Clone, Copy)]
#[oai(rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum InboundMode {
    /// Standard Webhooks HMAC headers.
    Signature,
    /// `Authorization: Bearer`.
    Token,
}

impl InboundMode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signature => "signature",
            Self::Token => "token",
        }
    }
}

#[derive(Object)]
pub struct InboundIntegration {
    pub id: String,
    pub name: String,
    pub mode: String,
    pub secret_id: String,
    pub collection_id: Option<String>,
    /// The address to give the sender.
    pub url: String,
    pub created_at: String,
}

impl InboundIntegration {
    fn from_row(cfg: &Config, ctx: &TenantHandle, r: InboundRow) -> Self {
        Self {
            url: inbound::hook_url(cfg, ctx.db.id(), &r.id),
            id: r.id,
            name: r.name,
            mode: r.mode,
            secret_id: r.secret_id,
            collection_id: r.collection_id,
            created_at: rfc3339(r.created_at),
        }
    }
}

#[derive(Object)]
pub struct InboundIntegrationCreated {
    #[oai(flatten)]
    pub integration: InboundIntegration,
    /// The generated secret, shown this once (absent with `secret_id`).
    pub secret: Option<String>,
}

list!(InboundIntegrationList of InboundIntegration);

/// A received, verified event.
#[derive(Object)]
pub struct InboundEvent {
    pub id: String,
    pub integration_id: String,
    /// The sender's `webhook-id`.
    pub msg_id: String,
    pub sent_at: String,
    pub received_at: String,
    /// `received`, `processed` or `failed`.
    pub status: String,
    /// The record it became, if any.
    pub record_id: Option<String>,
    pub error: Option<String>,
    /// The body as received (UTF-8, lossy).
    pub body: String,
}

impl From<EventRow> for InboundEvent {
    fn from(e: EventRow) -> Self {
        Self {
            id: e.id,
            integration_id: e.integration_id,
            msg_id: e.msg_id,
            sent_at: rfc3339(e.sent_at),
            received_at: rfc3339(e.received_at),
            status: e.status,
            record_id: e.record_id,
            error: e.error,
            body: String::from_utf8_lossy(&e.body).into_owned(),
        }
    }
}

list!(InboundEventList of InboundEvent);

#[derive(Default)]
pub struct IntegrationsApi;

api! {
    #[OpenApi(tag = "ApiTags::Integrations")]
    impl IntegrationsApi {
        /// The stored secrets: names, last four characters and times, never values.
        GET "/workspaces/:workspace/integrations/secrets"
        async fn secrets(
            workspace: tenant::Path<op::IntegrationRead>,
        ) -> Json<IntegrationSecretList> {
            let now = workspace.now();
            Ok(Json(
                secrets::list(&workspace)
                    .await?
                    .into_iter()
                    .map(|r| IntegrationSecret::from_row(r, now))
                    .collect(),
            ))
        }

        /// Stores a secret (sealed). The answer does not contain the value.
        POST "/workspaces/:workspace/integrations/secrets"
        async fn create_secret(
            workspace: tenant::Path<op::IntegrationCreate>,
            body: JsonBody<IntegrationSecretCreate>,
        ) -> Created<IntegrationSecret> {
            let row = secrets::create(&workspace, &body.0.name, &body.0.value).await?;
            Ok(Created::Created(Json(IntegrationSecret::from_row(
                row,
                workspace.now(),
            ))))
        }

        /// Replaces a secret's value; the previous one keeps working for the overlap.
        POST "/workspaces/:workspace/integrations/secrets/:secret_id/rotate"
        async fn rotate_secret(
            workspace: tenant::Path<op::IntegrationUpdate>,
            secret_id: Path<String>,
            body: JsonBody<IntegrationSecretRotate>,
        ) -> Json<IntegrationSecret> {
            let b = body.0;
            let row = secrets::rotate(
                &workspace,
                &workspace.state().config,
                &secret_id,
                &b.value,
                b.overlap_hours,
            )
            .await?;
            Ok(Json(IntegrationSecret::from_row(row, workspace.now())))
        }

        /// Deletes a secret (409 while an inbound integration verifies with it).
        DELETE "/workspaces/:workspace/integrations/secrets/:secret_id"
        async fn delete_secret(
            workspace: tenant::Path<op::IntegrationDelete>,
            secret_id: Path<String>,
        ) -> Done {
            secrets::delete(&workspace, &secret_id).await?;
            Ok(Done::Done)
        }

        /// The inbound integrations, with the URL each sender posts to.
        GET "/workspaces/:workspace/integrations/inbound"
        async fn inbound(
            workspace: tenant::Path<op::IntegrationRead>,
        ) -> Json<InboundIntegrationList> {
            Ok(Json(
                inbound::list(&workspace)
                    .await?
                    .into_iter()
                    .map(|r| InboundIntegration::from_row(&workspace.state().config, &workspace, r))
                    .collect(),
            ))
        }

        /// Creates an inbound integration. Without `secret_id` a secret is
        /// generated and returned in this answer only.
        POST "/workspaces/:workspace/integrations/inbound"
        async fn create_inbound(
            workspace: tenant::Path<op::IntegrationCreate>,
            body: JsonBody<InboundCreate>,
        ) -> Created<InboundIntegrationCreated> {
            let b = body.0;
            let req = inbound::NewInbound {
                name: b.name.into(),
                mode: b.mode.as_str().into(),
                secret_id: b.secret_id,
                collection_id: b.collection_id,
            };
            let made = inbound::create(&workspace, req).await?;
            Ok(Created::Created(Json(InboundIntegrationCreated {
                integration: InboundIntegration::from_row(
                    &workspace.state().config,
                    &workspace,
                    made.integration,
                ),
                secret: made.secret,
            })))
        }

        /// Deletes an inbound integration and its received events (its secret stays).
        DELETE "/workspaces/:workspace/integrations/inbound/:integration"
        async fn delete_inbound(
            workspace: tenant::Path<op::IntegrationDelete>,
            integration: Path<String>,
        ) -> Done {
            inbound::delete(&workspace, &integration).await?;
            Ok(Done::Done)
        }

        /// The newest 100 events an inbound integration received.
        GET "/workspaces/:workspace/integrations/inbound/:integration/events"
        async fn inbound_events(
            workspace: tenant::Path<op::IntegrationRead>,
            integration: Path<String>,
        ) -> Json<InboundEventList> {
            Ok(Json(
                inbound::events(&workspace, Some(&integration), 100)
                    .await?
                    .into(),
            ))
        }
    }
}
