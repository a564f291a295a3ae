//! `POST /auth/login` and `POST /auth/logout`: browser-session sign-in.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::payload::{Json, Response};
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::ApiTags;
use super::body::JsonBody;
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::web::session::{SignedIn, clear_cookie, session_cookie};

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Object)]
pub struct LoginResponse {
    pub user_id: String,
}

#[derive(Object)]
pub struct LogoutResponse {
    pub signed_out: bool,
}

pub struct AuthApi;

#[OpenApi(tag = "ApiTags::Auth")]
impl AuthApi {
    /// Signs in with email and password and sets the session cookie.
    /// A wrong password and an unknown email both answer 401.
    #[oai(path = "/auth/login", method = "post")]
    async fn login(
        &self,
        state: Data<&Arc<AppState>>,
        meta: Data<&RequestMeta>,
        body: JsonBody<LoginRequest>,
    ) -> poem::Result<Response<Json<LoginResponse>>> {
        let LoginRequest { email, password } = body.0;
        let done = crate::identity::login(&state, &email, password, &meta).await?;
        Ok(Response::new(Json(LoginResponse {
            user_id: done.user_id.to_string(),
        }))
        .header("set-cookie", session_cookie(&state.config, &done.token)))
    }

    /// Ends the current session on the server and clears the cookie.
    #[oai(path = "/auth/logout", method = "post")]
    async fn logout(
        &self,
        state: Data<&Arc<AppState>>,
        meta: Data<&RequestMeta>,
        who: SignedIn,
    ) -> poem::Result<Response<Json<LogoutResponse>>> {
        crate::identity::logout(&state, &who.0, &meta).await?;
        Ok(Response::new(Json(LogoutResponse { signed_out: true }))
            .header("set-cookie", clear_cookie(&state.config)))
    }
}
