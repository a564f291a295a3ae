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
use crate::audit::service::last_platform_entry;
use crate::config::Config;
use crate::store::audit as sql;
use crate::store::control::Control;
use crate::store::tenant::TenantPool;

/// Latency histogram bucket bounds, in seconds.
const BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

/// Per-route counters: by status class, and a latency histogram.
#[derive(Default)]
struct RouteStats {
    by_class: [u64; 6],
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_secs: f64,
}

/// Counters the request envelope updates.
#[derive(Default)]
pub struct Metrics {
    pub responses: [AtomicU64; 6],
    routes: std::sync::Mutex<std::collections::BTreeMap<String, RouteStats>>,
}

impl Metrics {
    pub fn record(&self, status: u16) {
        let class = usize::from(status / 100).min(5);
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    /// `label` is the request path as `web::middleware::path_forms` labels it.
    pub fn observe(&self, method: &str, label: &str, status: u16, secs: f64) {
        let key = format!("{method} {label}");
        if let Ok(mut routes) = self.routes.lock() {
            let r = routes.entry(key).or_default();
            r.by_class[usize::from(status / 100).min(5)] += 1;
            r.count += 1;
            r.sum_secs += secs;
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    r.buckets[i] += 1;
                }
            }
        }
    }

    fn render_routes(&self, out: &mut String) {
        let Ok(routes) = self.routes.lock() else {
            return;
        };
        let _ = writeln!(out, "# TYPE aura_http_requests_total counter");
        for (key, r) in routes.iter() {
            let (method, route) = key.split_once(' ').unwrap_or(("", key));
            for (class, n) in r.by_class.iter().enumerate().skip(1) {
                if *n > 0 {
                    let _ = writeln!(
                        out,
                        "aura_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{class}xx\"}} {n}"
                    );
                }
            }
        }
        let _ = writeln!(out, "# TYPE aura_http_request_duration_seconds histogram");
        for (key, r) in routes.iter() {
            let (method, route) = key.split_once(' ').unwrap_or(("", key));
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(
                    out,
                    "aura_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"{b}\"}} {}",
                    r.buckets[i]
                );
            }
            let _ = writeln!(
                out,
                "aura_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"+Inf\"}} {}",
                r.count
            );
            let _ = writeln!(
                out,
                "aura_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\"}} {}",
                r.sum_secs
            );
            let _ = writeln!(
                out,
                "aura_http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\"}} {}",
                r.count
            );
        }
    }
}

/// What a scrape reads: narrow values, not `AppState`; `load` is the
/// hostile-load bounds' section, rendered by the handler (`render_load`).
pub struct Sources<'a> {
    pub config: &'a Config,
    pub control: &'a Arc<Control>,
    pub tenants: &'a Arc<TenantPool>,
    pub metrics: &'a Metrics,
    pub replication: &'a crate::replication::status::ReplicaStatus,
    pub now_ms: i64,
    pub load: String,
}

pub fn render(src: &Sources<'_>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# TYPE aura_build_info gauge");
    let _ = writeln!(
        out,
        "aura_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    );
    src.replication.render_metrics(src.now_ms, &mut out);
    let _ = writeln!(out, "# TYPE aura_http_responses_total counter");
    for (i, c) in src.metrics.responses.iter().enumerate().skip(1) {
        let _ = writeln!(
            out,
            "aura_http_responses_total{{class=\"{i}xx\"}} {}",
            c.load(Ordering::Relaxed)
        );
    }
    if let Some((t, after)) =
        last_platform_entry(src.control, "backup.completed").map(|e| (e.time_unix, e.after))
    {
        let _ = writeln!(
            out,
            "# TYPE aura_backup_last_success_timestamp_seconds gauge"
        );
        let _ = writeln!(out, "aura_backup_last_success_timestamp_seconds {t}");
        let size = after.get("size").and_then(|v| v.as_u64()).unwrap_or(0);
        let _ = writeln!(out, "# TYPE aura_backup_last_size_bytes gauge");
        let _ = writeln!(out, "aura_backup_last_size_bytes {size}");
    }
    if let Some((t, _)) =
        last_platform_entry(src.control, "backup.failed").map(|e| (e.time_unix, e.after))
    {
        let _ = writeln!(
            out,
            "# TYPE aura_backup_last_failure_timestamp_seconds gauge"
        );
        let _ = writeln!(out, "aura_backup_last_failure_timestamp_seconds {t}");
    }
    if let Some((t, after)) =
        last_platform_entry(src.control, "backup.drill").map(|e| (e.time_unix, e.after))
    {
        let ok = after.get("ok").and_then(|v| v.as_bool()).unwrap_or(false);
        let _ = writeln!(out, "# TYPE aura_backup_drill_last_timestamp_seconds gauge");
        let _ = writeln!(out, "aura_backup_drill_last_timestamp_seconds {t}");
        let _ = writeln!(out, "# TYPE aura_backup_drill_last_ok gauge");
        let _ = writeln!(out, "aura_backup_drill_last_ok {}", u8::from(ok));
    }
    src.metrics.render_routes(&mut out);
    out.push_str(&src.load);
    let _ = writeln!(out, "# TYPE aura_db_write_waiters gauge");
    let _ = writeln!(
        out,
        "aura_db_write_waiters{{db=\"control\"}} {}",
        src.control.db.write_waiters()
    );
    let _ = writeln!(out, "# TYPE aura_audit_chain_head_seq gauge");
    for chain in crate::audit::chains::all_chains(src.control).unwrap_or_default() {
        let head = match chain {
            crate::audit::chains::Chain::Platform => src.control.db.read(sql::head).ok(),
            crate::audit::chains::Chain::Workspace(ws) => crate::audit::chains::open_tenant(
                src.control,
                src.tenants,
                ws,
                crate::access::SystemTask::Metrics,
            )
            .and_then(|t| t.read_blocking(|c, _| sql::head(c)))
            .ok(),
        };
        if let Some((seq, _)) = head {
            let _ = writeln!(
                out,
                "aura_audit_chain_head_seq{{scope=\"{}\"}} {seq}",
                chain.scope()
            );
        }
    }
    if let Some((_, not_after)) = crate::tls::current_certificate(src.config, &src.control.keys) {
        let _ = writeln!(
            out,
            "# TYPE aura_tls_certificate_expiry_timestamp_seconds gauge"
        );
        let _ = writeln!(
            out,
            "aura_tls_certificate_expiry_timestamp_seconds {not_after}"
        );
    }
    out
}

#[handler]
pub async fn metrics(req: &Request, state: Data<&Arc<AppState>>) -> Response {
    let token = state.reloadable().metrics_token;
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
    let render_all = move || {
        let mut load = String::new();
        render_load(&st, &mut load);
        render(&Sources {
            config: &st.config,
            control: &st.control,
            tenants: &st.tenants,
            metrics: &st.metrics,
            replication: &st.replication,
            now_ms: st.clock.unix_ms(),
            load,
        })
    };
    match tokio::task::spawn_blocking(render_all).await {
        Ok(body) => Response::builder()
            .content_type("text/plain; version=0.0.4")
            .body(body),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The hostile-load bounds (issue 27): connections, request budgets, the
/// buffered-body budget and the password queue.
fn render_load(state: &AppState, out: &mut String) {
    state.conns.render(out);
    state.rates.render(out);
    let _ = writeln!(out, "# TYPE aura_buffered_body_bytes gauge");
    let _ = writeln!(out, "aura_buffered_body_bytes {}", state.bodies.in_use());
    let _ = writeln!(out, "# TYPE aura_buffered_body_refused_total counter");
    let _ = writeln!(
        out,
        "aura_buffered_body_refused_total {}",
        state.bodies.refused.load(Ordering::Relaxed)
    );
    let _ = writeln!(out, "# TYPE aura_password_queue_shed_total counter");
    let _ = writeln!(
        out,
        "aura_password_queue_shed_total {}",
        state.hasher.shed()
    );
    let _ = writeln!(out, "# TYPE aura_log_lines_dropped_total counter");
    let _ = writeln!(
        out,
        "aura_log_lines_dropped_total {}",
        crate::telemetry::dropped_lines()
    );
    let _ = writeln!(out, "# TYPE aura_search_index_rebuilds_total counter");
    let _ = writeln!(
        out,
        "aura_search_index_rebuilds_total {}",
        crate::search::rebuilds()
    );
}
