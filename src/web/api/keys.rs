//! A workspace's data key rotation (owners): `POST .../keys/rotate` starts
//! one (or answers the one under way), `GET .../keys/rotation` tells where it
//! stands. The work happens in the server's background job.

use std::sync::Arc;

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use super::routes::api;
use crate::access::op;
use crate::clock::rfc3339;
use crate::store::key_rotation::Rotation;
use crate::web::tenant;
use crate::workspace::key_rotation;

/// Where a workspace's newest data key rotation stands.
#[derive(Object)]
#[oai(rename = "KeyRotation")]
pub struct KeyRotation {
    /// `running` or `finished`.
    pub state: String,
    pub requested_at: String,
    /// The new data key's id, once it exists.
    pub key_id: Option<u32>,
    /// Values re-sealed under the new key so far.
    pub resealed: i64,
    /// Values still under an older key (unknown until the first batch).
    pub remaining: Option<i64>,
    /// When the old key was destroyed.
    pub finished_at: Option<String>,
}

impl From<Rotation> for KeyRotation {
    fn from(r: Rotation) -> Self {
        Self {
            state: if r.finished_at.is_some() {
                "finished"
            } else {
                "running"
            }
            .into(),
            requested_at: rfc3339(r.requested_at),
            key_id: r.new_key_id,
            resealed: r.resealed,
            remaining: r.remaining,
            finished_at: r.finished_at.map(rfc3339),
        }
    }
}

#[derive(Default)]
pub struct KeysApi;

api! {
    #[OpenApi]
    impl KeysApi {
        /// Rotates the workspace's data key (owners): new writes use a new key at
        /// once, every older value is re-sealed in the background, then the old
        /// key is destroyed. Reads work throughout. A second call while one runs
        /// answers that one.
        POST "/workspaces/:workspace/keys/rotate" tag = "ApiTags::Access"
        async fn rotate(workspace: tenant::Path<op::WorkspaceRotateKey>) -> Json<KeyRotation> {
            let r = key_rotation::request_for(&workspace.state().control, &workspace).await?;
            Ok(Json(r.into()))
        }

        /// The workspace's newest data key rotation (owners); 404 if none ever ran.
        GET "/workspaces/:workspace/keys/rotation" tag = "ApiTags::Access"
        async fn rotation(workspace: tenant::Path<op::WorkspaceRotateKey>) -> Json<KeyRotation> {
            let (control, ws) = (Arc::clone(&workspace.state().control), workspace.db.id());
            let r = tokio::task::spawn_blocking(move || key_rotation::status(&control, ws))
                .await
                .map_err(crate::error::Error::from)??
                .ok_or(crate::error::Error::NotFound("key rotation"))?;
            Ok(Json(r.into()))
        }
    }
}
