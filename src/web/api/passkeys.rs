//! Passkeys over HTTP: your passkeys (register with the password again, list,
//! remove), and the sign-in ceremonies the browser drives (a passkey as the
//! second step of a sign-in, or on its own).

use poem_openapi::param::Path;
use poem_openapi::payload::{Json, Response};
use poem_openapi::{ApiResponse, Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::Name;
use super::list::list;
use super::mfa::Reauth;
use super::routes::api;
use super::{ApiTags, Done};
use crate::clock::rfc3339;
use crate::error::Error;
use crate::identity::passkeys;
use crate::store::passkeys::PasskeyRow;
use crate::web::session::{Me, PublicCall, session_cookie};

#[derive(Object)]
pub struct PasskeyInfo {
    pub id: String,
    pub name: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

impl From<PasskeyRow> for PasskeyInfo {
    fn from(r: PasskeyRow) -> Self {
        Self {
            id: r.id,
            name: r.name,
            created_at: rfc3339(r.created_at),
            last_used_at: r.last_used_at.map(rfc3339),
        }
    }
}

list!(PasskeyList of PasskeyInfo);

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterStart {
    #[oai(validator(min_length = 1))]
    pub password: String,
    /// A label, such as "Laptop".
    pub name: Name,
}

#[derive(Object)]
#[oai(rename = "PasskeyCeremony")]
pub struct Ceremony {
    pub ceremony: String,
    /// The WebAuthn options for `navigator.credentials.create()` or `.get()`
    /// (binary fields base64url-encoded).
    pub options: serde_json::Value,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
#[oai(rename = "PasskeyCeremonyFinish")]
pub struct CeremonyFinish {
    #[oai(validator(min_length = 1))]
    pub ceremony: String,
    /// The credential the browser returned, binary fields base64url-encoded.
    pub credential: serde_json::Value,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignInStart {
    /// The one-time token of a sign-in waiting for its second step; absent:
    /// sign in with a passkey alone.
    pub mfa_token: Option<String>,
}

#[derive(Object)]
pub struct SignedInAs {
    pub user_id: String,
}

#[derive(ApiResponse)]
pub enum Created {
    #[oai(status = 201)]
    Created(Json<PasskeyInfo>),
}

fn options(v: impl serde::Serialize) -> Result<serde_json::Value, Error> {
    serde_json::to_value(v).map_err(|_| Error::internal("serializing WebAuthn options"))
}

fn credential<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, Error> {
    serde_json::from_value(v)
        .map_err(|_| Error::field("credential", "is not a WebAuthn credential"))
}

#[derive(Default)]
pub struct PasskeysApi;

api! {
    #[OpenApi(tag = "ApiTags::Me")]
    impl PasskeysApi {
        /// Your passkeys.
        GET "/me/passkeys"
        async fn list(me: Me) -> Json<PasskeyList> {
            Ok(Json(
                passkeys::list(&me.deps(), me.who.user_id).await?.into(),
            ))
        }

        /// Starts registering a passkey (your password again).
        POST "/me/passkeys/register/start"
        async fn register_start(me: Me, body: JsonBody<RegisterStart>) -> Json<Ceremony> {
            let RegisterStart { password, name } = body.0;
            let (ceremony, opts) =
                passkeys::start_registration(&me.deps(), &me.who, password, &name, &me.meta)
                    .await?;
            Ok(Json(Ceremony {
                ceremony,
                options: options(opts)?,
            }))
        }

        /// Finishes registering a passkey.
        POST "/me/passkeys/register/finish"
        async fn register_finish(me: Me, body: JsonBody<CeremonyFinish>) -> Created {
            let CeremonyFinish {
                ceremony,
                credential: c,
            } = body.0;
            let cred = credential(c)?;
            let row =
                passkeys::finish_registration(&me.deps(), &me.who, &ceremony, &cred, &me.meta)
                    .await?;
            Ok(Created::Created(Json(row.into())))
        }

        /// Removes one of your passkeys (your password again).
        POST "/me/passkeys/:id/remove"
        async fn remove(me: Me, id: Path<String>, body: JsonBody<Reauth>) -> Done {
            passkeys::remove(&me.deps(), &me.who, &id, body.0.password, &me.meta).await?;
            Ok(Done::Done)
        }

        /// Starts a passkey sign-in: the second step of a sign-in (with its
        /// `mfa_token`), or a passkey alone.
        POST "/auth/passkey/start"
        async fn sign_in_start(call: PublicCall, body: JsonBody<SignInStart>) -> Json<Ceremony> {
            let (ceremony, opts) = match body.0.mfa_token.as_deref() {
                Some(t) => passkeys::start_second_factor(&call.deps(), t).await?,
                None => passkeys::start_discoverable(&call.deps(), &call.meta)?,
            };
            Ok(Json(Ceremony {
                ceremony,
                options: options(opts)?,
            }))
        }

        /// Finishes a passkey sign-in and sets the session cookie.
        POST "/auth/passkey/finish"
        async fn sign_in_finish(
            call: PublicCall,
            body: JsonBody<CeremonyFinish>,
        ) -> Response<Json<SignedInAs>> {
            let CeremonyFinish {
                ceremony,
                credential: c,
            } = body.0;
            let cred = credential(c)?;
            let (user, mark) =
                passkeys::finish_sign_in(&call.deps(), &ceremony, &cred, &call.meta).await?;
            let s = crate::identity::sessions::sign_in_marked(&call.deps(), user, mark, &call.meta)
                .await?;
            Ok(Response::new(Json(SignedInAs {
                user_id: user.to_string(),
            }))
            .header("set-cookie", session_cookie(&call.state.config, &s.token)))
        }
    }
}
