//! `/healthz` answers while the process runs; `/readyz` only when storage and
//! keys work (a real query against control.db).

use std::sync::Arc;

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde_json::json;

use crate::app::AppState;

#[handler]
pub fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

#[handler]
pub async fn readyz(state: Data<&Arc<AppState>>) -> Response {
    if let Some(why) = state.replication.fenced() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready", "reason": why })),
        )
            .into_response();
    }
    let probe = state
        .control
        .db
        .read_async(crate::store::ops::platform_key_count)
        .await;
    match probe {
        Ok(n) if n > 0 => Json(json!({ "status": "ready" })).into_response(),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not ready" })),
        )
            .into_response(),
    }
}
