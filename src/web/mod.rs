//! HTTP surfaces: the JSON API, the server-rendered UI, static assets, and the
//! ops endpoints, wrapped in one envelope of middleware.

pub mod api;
pub mod assets;
pub mod csrf;
pub mod middleware;
pub mod problem;
pub mod session;
pub mod ui;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route, get, post};

use crate::app::AppState;

/// Every UI route that changes state (HTML form posts). The router registers
/// POST handlers only from this list, so a new form route cannot be added
/// without appearing here, and the CSRF and audit tests walk this list.
pub const UI_FORM_ROUTES: &[&str] = &[
    "/login",
    "/logout",
    "/w/:ws/audit/verify",
    "/platform/audit/verify",
    "/platform/backups/run",
    "/platform/backups/drill",
];

fn ui_form(path: &str) -> Option<poem::endpoint::BoxEndpoint<'static>> {
    Some(match path {
        "/login" => ui::pages::login_submit.boxed(),
        "/logout" => ui::pages::logout_submit.boxed(),
        "/w/:ws/audit/verify" => ui::audit::workspace_verify.boxed(),
        "/platform/audit/verify" => ui::audit::platform_verify.boxed(),
        "/platform/backups/run" => ui::backups::run_now.boxed(),
        "/platform/backups/drill" => ui::backups::drill_now.boxed(),
        _ => return None,
    })
}

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = api::service(&state.config.public_url);
    let spec = api.spec_endpoint();
    let mut route = Route::new()
        .at("/healthz", get(crate::ops::health::healthz))
        .at("/readyz", get(crate::ops::health::readyz))
        .at("/metrics", get(crate::ops::metrics::metrics))
        .at("/trust", get(crate::ops::trust::trust_page))
        .at("/trust.json", get(crate::ops::trust::trust_json))
        .at(
            "/.well-known/security.txt",
            get(crate::ops::trust::security_txt),
        )
        .nest("/api/v1", api)
        .at("/api/openapi.json", spec)
        .at("/", get(ui::pages::home))
        .at("/workspaces", get(ui::pages::workspaces))
        .at("/w/:ws/audit", get(ui::audit::workspace_audit))
        .at("/w/:ws/audit/:seq", get(ui::audit::workspace_entry))
        .at("/platform/audit", get(ui::audit::platform_audit))
        .at("/platform/audit/:seq", get(ui::audit::platform_entry))
        .at("/platform/backups", get(ui::backups::page))
        .at("/assets/*path", get(assets::serve));
    for path in UI_FORM_ROUTES {
        let Some(ep) = ui_form(path) else { continue };
        route = if *path == "/login" {
            route.at(*path, get(ui::pages::login_form).post(ep))
        } else {
            route.at(*path, post(ep))
        };
    }
    route.around(middleware::envelope).data(state)
}
