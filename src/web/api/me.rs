//! `GET /me`: the signed-in account and the workspaces it belongs to.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};

use super::ApiTags;
use crate::app::AppState;
use crate::error::Error;
use crate::store::control;
use crate::web::session::SignedIn;

#[derive(Object)]
pub struct MeWorkspace {
    pub id: String,
    pub name: String,
    pub role: String,
    pub region: String,
}

#[derive(Object)]
pub struct MeResponse {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub platform_admin: bool,
    pub workspaces: Vec<MeWorkspace>,
}

pub struct MeApi;

#[OpenApi(tag = "ApiTags::Me")]
impl MeApi {
    /// The signed-in account, with `workspaces: [{id, name, role}]`.
    #[oai(path = "/me", method = "get")]
    async fn me(
        &self,
        state: Data<&Arc<AppState>>,
        who: SignedIn,
    ) -> poem::Result<Json<MeResponse>> {
        Ok(Json(load_me(&state, &who).await?))
    }
}

pub async fn load_me(state: &AppState, who: &SignedIn) -> Result<MeResponse, Error> {
    let keys = state.control.keys.clone();
    let id = who.0.user_id;
    let user = state
        .control
        .db
        .read_async(move |c| control::get_user(c, &keys, id))
        .await?
        .ok_or(Error::Unauthenticated)?;
    let workspaces = crate::workspace::list_for_user(state, id)
        .await?
        .into_iter()
        .map(|(w, role)| MeWorkspace {
            id: w.id.to_string(),
            name: w.name,
            role: role.to_string(),
            region: w.region,
        })
        .collect();
    Ok(MeResponse {
        id: user.id.to_string(),
        email: user.email,
        name: user.name,
        platform_admin: user.platform_admin,
        workspaces,
    })
}
