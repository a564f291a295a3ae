//! `GET /platform/status`: what an operator needs at a glance (version,
//! region, TLS mode and the last ACME event or error). Platform admins only.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use crate::app::AppState;
use crate::web::session::PlatformAdmin;

#[derive(Object)]
pub struct PlatformStatus {
    pub version: String,
    pub region: String,
    pub public_url: String,
    pub tls_mode: String,
    pub tls_last_event: Option<String>,
    /// The last ACME failure; the current certificate keeps serving meanwhile.
    pub tls_last_error: Option<String>,
}

pub fn status(state: &AppState) -> PlatformStatus {
    let tls = state
        .tls_status
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    PlatformStatus {
        version: env!("CARGO_PKG_VERSION").into(),
        region: state.config.file.region.clone(),
        public_url: state.config.public_url.clone(),
        tls_mode: if tls.mode.is_empty() {
            "off".into()
        } else {
            tls.mode
        },
        tls_last_event: tls.last_event,
        tls_last_error: tls.last_error,
    }
}

pub struct PlatformApi;

#[OpenApi(tag = "ApiTags::Platform")]
impl PlatformApi {
    /// The appliance's state for operators.
    #[oai(path = "/platform/status", method = "get")]
    async fn status(
        &self,
        state: Data<&Arc<AppState>>,
        _admin: PlatformAdmin,
    ) -> Json<PlatformStatus> {
        Json(status(&state))
    }
}
