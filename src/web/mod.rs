//! HTTP surfaces: the JSON API, the server-rendered UI, static assets, and the
//! ops endpoints, wrapped in one envelope of middleware.

pub mod api;
pub mod assets;
pub mod middleware;
pub mod problem;
pub mod session;
pub mod ui;

use std::sync::Arc;

use poem::{Endpoint, EndpointExt, Route, get, post};

use crate::app::AppState;

pub fn routes(state: Arc<AppState>) -> impl Endpoint {
    let api = api::service(&state.config.public_url);
    let spec = api.spec_endpoint();
    Route::new()
        .at("/healthz", get(crate::ops::health::healthz))
        .at("/readyz", get(crate::ops::health::readyz))
        .nest("/api/v1", api)
        .at("/api/openapi.json", spec)
        .at("/", get(ui::pages::home))
        .at(
            "/login",
            get(ui::pages::login_form).post(ui::pages::login_submit),
        )
        .at("/logout", post(ui::pages::logout_submit))
        .at("/workspaces", get(ui::pages::workspaces))
        .at("/w/:ws/audit", get(ui::audit::workspace_audit))
        .at("/w/:ws/audit/verify", post(ui::audit::workspace_verify))
        .at("/w/:ws/audit/:seq", get(ui::audit::workspace_entry))
        .at("/platform/audit", get(ui::audit::platform_audit))
        .at("/platform/audit/verify", post(ui::audit::platform_verify))
        .at("/platform/audit/:seq", get(ui::audit::platform_entry))
        .at("/assets/*path", get(assets::serve))
        .around(middleware::envelope)
        .data(state)
}
