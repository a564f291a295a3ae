//! Prometheus text metrics at `/metrics`, never public by default: the route
//! answers 404 until `metrics.bearer_token` is set, and then only to that
//! bearer token. Backup and drill figures are read from the platform audit
//! log at scrape time, so runs from the CLI count too.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use poem::http::StatusCode;
use poem::web::Data;
use poem::{IntoResponse, Request, Response, handler};
use subtle::ConstantTimeEq;

use crate::app::AppState;
use crate::audit::search::view;
use crate::store::audit::{self as sql, SqlFilter};

/// Counters the request envelope updates.
#[derive(Default)]
pub struct Metrics {
    pub responses: [AtomicU64; 6],
}

impl Metrics {
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100).min(5);
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }
}

fn last(state: &AppState, action: &str) -> Option<(i64, serde_json::Value)> {
    let f = SqlFilter {
        action: Some(action.to_owned()),
        ..Default::default()
    };
    let keys = state.control.keys.clone();
    state
        .control
        .db
        .read(|c| {
            Ok(sql::query(c, &f, 1)?
                .first()
                .map(|e| (e.time, view(e, &keys.sealer).after)))
        })
        .ok()
        .flatten()
}

pub fn render(state: &AppState) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE aura_build_info gauge");
    let _ = writeln!(
        out,
        "aura_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "# TYPE aura_http_responses_total counter");
    for (i, c) in state.metrics.responses.iter().enumerate().skip(1) {
        let _ = writeln!(
            out,
            "aura_http_responses_total{{class=\"{i}xx\"}} {}",
            c.load(Ordering::Relaxed)
        );
    }
    if let Some((t, after)) = last(state, "backup.completed") {
        let _ = writeln!(
            out,
            "# TYPE aura_backup_last_success_timestamp_seconds gauge"
        );
        let _ = writeln!(out, "aura_backup_last_success_timestamp_seconds {t}");
        let size = after.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
        let _ = writeln!(out, "# TYPE aura_backup_last_size_bytes gauge");
        let _ = writeln!(out, "aura_backup_last_size_bytes {size}");
    }
    if let Some((t, _)) = last(state, "backup.failed") {
        let _ = writeln!(
            out,
            "# TYPE aura_backup_last_failure_timestamp_seconds gauge"
        );
        let _ = writeln!(out, "aura_backup_last_failure_timestamp_seconds {t}");
    }
    if let Some((t, after)) = last(state, "backup.drill") {
        let ok = after.get("ok").and_then(|v| v.as_bool()).unwrap_or(false);
        let _ = writeln!(out, "# TYPE aura_backup_drill_last_timestamp_seconds gauge");
        let _ = writeln!(out, "aura_backup_drill_last_timestamp_seconds {t}");
        let _ = writeln!(out, "# TYPE aura_backup_drill_last_ok gauge");
        let _ = writeln!(out, "aura_backup_drill_last_ok {}", u8::from(ok));
    }
    if let Ok((seq, _)) = state.control.db.read(sql::head) {
        let _ = writeln!(out, "# TYPE aura_audit_chain_head_seq gauge");
        let _ = writeln!(out, "aura_audit_chain_head_seq{{scope=\"platform\"}} {seq}");
    }
    out
}

#[handler]
pub async fn metrics(req: &Request, state: Data<&Arc<AppState>>) -> Response {
    let token = &state.config.file.metrics.bearer_token;
    if token.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let sent = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(sent.as_bytes().ct_eq(token.as_bytes())) {
        return Response::builder()
            .status(StatusCode::UNAUTHORIZED)
            .header("www-authenticate", "Bearer")
            .finish();
    }
    let st = Arc::clone(&state);
    match tokio::task::spawn_blocking(move || render(&st)).await {
        Ok(body) => Response::builder()
            .content_type("text/plain; version=0.0.4")
            .body(body),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}
