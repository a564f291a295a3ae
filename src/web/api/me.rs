//! `GET /me`: the signed-in account and the workspaces it belongs to.

use std::sync::Arc;

use poem::web::Data;
use poem_openapi::param::Path;
use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::list::list;
use super::routes::api;
use super::{ApiTags, Done};
use crate::access::{Principal, Via};
use crate::app::AppState;
use crate::audit::RequestMeta;
use crate::clock::rfc3339;
use crate::error::Error;
use crate::store::{accounts, control};
use crate::web::session::Me;
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

#[derive(Object)]
pub struct SignInInfo {
    pub id: String,
    /// `browser` (a session cookie) or `api` (an `/auth/token` sign-in).
    pub kind: String,
    pub current: bool,
    pub created_at: String,
    pub last_seen_at: Option<String>,
    pub expires_at: String,
    pub ip: Option<String>,
    /// The browser and system it came from, e.g. "Firefox on Linux",
    /// from its User-Agent when it began.
    pub device: Option<String>,
}

list!(SignInList of SignInInfo);

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    #[oai(validator(min_length = 1))]
    pub current_password: String,
    #[oai(validator(min_length = 10, max_length = 256))]
    pub new_password: String,
}

#[derive(Default)]
pub struct MeApi;

api! {
    #[OpenApi(tag = "ApiTags::Me")]
    impl MeApi {
        /// The signed-in account, with `workspaces: [{id, name, role}]`.
        GET "/me"
        async fn me(state: Data<&Arc<AppState>>, who: SignedIn) -> Json<MeResponse> {
            Ok(Json(load_me(&state, &who).await?))
        }

        /// Your live sign-ins: browser sessions and API (`/auth/token`) sign-ins.
        GET "/me/sessions"
        async fn sessions(me: Me) -> Json<SignInList> {
            Ok(Json(
                sign_ins(&me.state, &me.who)
                    .await?
                    .into_iter()
                    .map(|(s, current)| SignInInfo {
                        id: s.id,
                        kind: if s.browser { "browser" } else { "api" }.into(),
                        current,
                        created_at: rfc3339(s.created_at),
                        last_seen_at: s.last_seen_at.map(rfc3339),
                        expires_at: rfc3339(s.expires_at),
                        ip: s.ip,
                        device: s.device,
                    })
                    .collect(),
            ))
        }

        /// Ends one of your sign-ins, server-side, at once.
        DELETE "/me/sessions/:id"
        async fn end_session(me: Me, id: Path<String>) -> Done {
            end_sign_in(&me.state, &me.who, &id, &me.meta).await?;
            Ok(Done::Done)
        }

        /// Changes your password (the current one is required). Every other
        /// session and API sign-in of yours ends.
        POST "/me/password"
        async fn change_password(me: Me, body: JsonBody<PasswordChange>) -> Done {
            let PasswordChange {
                current_password,
                new_password,
            } = body.0;
            crate::identity::users::change_password(
                &me.deps(),
                &me.who,
                current_password,
                new_password,
                &me.meta,
            )
            .await?;
            Ok(Done::Done)
        }
    }
}

/// The caller's sign-ins, each with whether it is the one in use.
pub async fn sign_ins(
    state: &AppState,
    who: &Principal,
) -> Result<Vec<(accounts::SignIn, bool)>, Error> {
    let id = who.user_id;
    let now = state.clock.unix();
    let list = state
        .control
        .db
        .read_async(move |c| accounts::live_sign_ins(c, id, now))
        .await?;
    let current = match &who.via {
        Via::Session { hash, .. } => Some(accounts::session_public_id(hash)),
        Via::Access { family } => Some(family.clone()),
        Via::ApiToken { .. } => None,
    };
    Ok(list
        .into_iter()
        .map(|s| {
            let cur = current.as_deref() == Some(s.id.as_str());
            (s, cur)
        })
        .collect())
}

pub async fn end_sign_in(
    state: &AppState,
    who: &Principal,
    id: &str,
    meta: &RequestMeta,
) -> Result<(), Error> {
    let user = who.user_id;
    let now = state.clock.unix();
    let id = id.to_owned();
    crate::identity::self_change(
        &state.deps(),
        user,
        "auth.session_ended",
        now,
        meta,
        move |tx| {
            if !accounts::end_sign_in(tx, user, &id, now)? {
                return Err(Error::NotFound("session"));
            }
            Ok(())
        },
    )
    .await
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
    // A workspace API token sees its own workspace only.
    let only = match &who.0.via {
        Via::ApiToken { workspace, .. } => Some(*workspace),
        _ => None,
    };
    let workspaces = crate::workspace::list_for_user(&state.control, id)
        .await?
        .into_iter()
        .filter(|(w, _)| only.is_none_or(|o| o == w.id))
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
