//! Refuses every write while this server may not write: another appliance
//! holds the replica lease (docs/replication.md). Reads go on; writes get
//! 503 with `Retry-After` and a problem+json body saying why.

use std::sync::Arc;

use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::app::AppState;

pub async fn gate<E: Endpoint>(next: E, req: Request) -> poem::Result<Response> {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let fenced = (!safe)
        .then(|| {
            req.data::<Arc<AppState>>()
                .and_then(|s| s.replication.fenced())
        })
        .flatten();
    if let Some(why) = fenced {
        let body = serde_json::json!({
            "type": "urn:aura:problem:not-primary",
            "title": "this server does not accept writes",
            "status": 503,
            "detail": why,
        });
        return Ok(Response::builder()
            .status(StatusCode::SERVICE_UNAVAILABLE)
            .header(header::RETRY_AFTER, "5")
            .content_type("application/problem+json")
            .body(body.to_string()));
    }
    Ok(next.call(req).await?.into_response())
}
