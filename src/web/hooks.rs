//! `POST /hooks/{workspace}/{integration}`: the public endpoint inbound
//! webhooks arrive at. It takes no session or cookie (and so no CSRF token);
//! the request authenticates by its signature or token. Answers are
//! problem+json: 404 for an unknown workspace or integration, 400 for a
//! missing `webhook-id`/`webhook-timestamp`, 403 for a bad signature or a
//! stale timestamp, 409 for a replayed message id, 202 once stored.

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json, Path};
use poem::{IntoResponse, Request, Response, handler};
use serde_json::json;

use crate::access::enter::Door;
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::integrations::inbound::{self, Incoming, Refusal};
use crate::web::problem::Problem;

fn header<'a>(req: &'a Request, name: &str) -> Option<&'a str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

#[handler]
pub async fn receive(
    req: &Request,
    state: Data<&Arc<AppState>>,
    meta: Data<&RequestMeta>,
    Path((ws, integration)): Path<(String, String)>,
    body: Vec<u8>,
) -> Response {
    let incoming = Incoming {
        msg_id: header(req, "webhook-id"),
        timestamp: header(req, "webhook-timestamp"),
        signature: header(req, "webhook-signature"),
        bearer: header(req, "authorization").and_then(|a| a.strip_prefix("Bearer ")),
        body: &body,
    };
    let door = Door {
        control: &state.control,
        tenants: &state.tenants,
        clock: &state.clock,
    };
    match inbound::receive(door, &meta, &ws, &integration, incoming).await {
        Ok(id) => {
            let mut r = Json(json!({ "id": id, "status": "received" })).into_response();
            r.set_status(StatusCode::ACCEPTED);
            r
        }
        Err(refusal) => problem(refusal).into_response(),
    }
}

fn problem(r: Refusal) -> Problem {
    match r {
        Refusal::NotFound => Problem::not_found().detail("no such inbound integration"),
        Refusal::BadRequest(h) => {
            Problem::bad_request(format!("the `{h}` header is missing or malformed"))
        }
        Refusal::BadSignature => Problem::new(
            StatusCode::FORBIDDEN,
            "urn:aura:problem:bad-signature",
            "Signature does not verify",
        ),
        Refusal::Stale => Problem::new(
            StatusCode::FORBIDDEN,
            "urn:aura:problem:stale-timestamp",
            "Timestamp outside the tolerance window",
        )
        .detail("webhook-timestamp must be within 5 minutes of the receiver's clock"),
        Refusal::Replay => Problem::new(
            StatusCode::CONFLICT,
            "urn:aura:problem:replayed",
            "Message already received",
        )
        .detail("this webhook-id was received before and is not processed again"),
        Refusal::Internal(e) => Problem::from(e),
    }
}
