//! `POST /auth/login` and `POST /auth/logout`: browser-session sign-in.

use poem_openapi::payload::{Json, Response};
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::fields::Email;
use super::routes::api;
use super::{ApiTags, Done};
use crate::identity::magic::Purpose;
use crate::web::session::{PublicCall, SignedIn, clear_cookie, session_cookie};

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    #[oai(validator(min_length = 1))]
    pub email: String,
    #[oai(validator(min_length = 1))]
    pub password: String,
    /// The current TOTP code or a recovery code, when the account has a
    /// second factor (without it: 401 `mfa-required`).
    pub totp: Option<String>,
}

#[derive(Object)]
pub struct LoginResponse {
    pub user_id: String,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    #[oai(validator(min_length = 1))]
    pub email: String,
    #[oai(validator(min_length = 1))]
    pub password: String,
    /// The current TOTP code, when the account has enrolled one.
    pub totp: Option<String>,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    #[oai(validator(min_length = 1))]
    pub refresh_token: String,
}

#[derive(Object)]
pub struct TokenResponse {
    /// An EdDSA-signed JWT (`typ: at+jwt`); send it as `Authorization: Bearer`.
    pub access_token: String,
    /// Opaque and single-use: trade it at `/auth/refresh` for a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl From<crate::identity::tokens::TokenPair> for TokenResponse {
    fn from(p: crate::identity::tokens::TokenPair) -> Self {
        Self {
            access_token: p.access_token,
            refresh_token: p.refresh_token,
            token_type: "Bearer".into(),
            expires_in: p.expires_in,
        }
    }
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MagicLinkRequest {
    pub email: Email,
}

#[derive(Object)]
pub struct MagicLinkAccepted {
    /// The same for every address: whether it has an account is not said.
    pub message: String,
}

#[derive(poem_openapi::ApiResponse)]
pub enum MagicLinkResponse {
    #[oai(status = 202)]
    Accepted(Json<MagicLinkAccepted>),
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordResetConfirm {
    /// The token from the emailed link (`/reset/{token}`).
    #[oai(validator(min_length = 1))]
    pub token: String,
    #[oai(validator(min_length = 10, max_length = 256))]
    pub new_password: String,
}

#[derive(Object)]
pub struct LogoutResponse {
    pub signed_out: bool,
}

#[derive(Default)]
pub struct AuthApi;

/// The 202 of a link by mail, whoever the address belongs to.
async fn mail_link(
    call: &PublicCall,
    email: &str,
    purpose: Purpose,
    message: &str,
) -> poem::Result<MagicLinkResponse> {
    crate::identity::magic::request(&call.deps(), email, purpose, &call.meta).await?;
    Ok(MagicLinkResponse::Accepted(Json(MagicLinkAccepted {
        message: message.into(),
    })))
}

api! {
    #[OpenApi(tag = "ApiTags::Auth")]
    impl AuthApi {
        /// Signs in with email and password and sets the session cookie.
        /// A wrong password and an unknown email both answer 401.
        POST "/auth/login"
        async fn login(
            call: PublicCall,
            body: JsonBody<LoginRequest>,
        ) -> Response<Json<LoginResponse>> {
            let LoginRequest {
                email,
                password,
                totp,
            } = body.0;
            let done =
                crate::identity::login(&call.deps(), &email, password, totp.as_deref(), &call.meta)
                    .await?;
            Ok(Response::new(Json(LoginResponse {
                user_id: done.user_id.to_string(),
            }))
            .header(
                "set-cookie",
                session_cookie(&call.state.config, &done.token),
            ))
        }

        /// Trades email and password (plus `totp` once enrolled) for a short-lived
        /// access JWT and a refresh token. Shares the sign-in rate limits.
        POST "/auth/token"
        async fn token(call: PublicCall, body: JsonBody<TokenRequest>) -> Json<TokenResponse> {
            let TokenRequest {
                email,
                password,
                totp,
            } = body.0;
            let pair = crate::identity::tokens::issue(
                &call.deps(),
                &email,
                password,
                totp.as_deref(),
                &call.meta,
            )
            .await?;
            Ok(Json(pair.into()))
        }

        /// Rotates a refresh token: the presented one is spent, a new pair comes
        /// back. Presenting a spent one revokes its whole family (401).
        POST "/auth/refresh"
        async fn refresh(call: PublicCall, body: JsonBody<RefreshRequest>) -> Json<TokenResponse> {
            let pair =
                crate::identity::tokens::refresh(&call.deps(), &body.0.refresh_token, &call.meta)
                    .await?;
            Ok(Json(pair.into()))
        }

        /// Mails a single-use sign-in link (15 minutes), when the appliance has
        /// magic links on (`auth.magic_links`; else 404). Every address gets the
        /// same 202; 5 requests per IP per 15 minutes.
        POST "/auth/magic-link"
        async fn magic_link(
            call: PublicCall,
            body: JsonBody<MagicLinkRequest>,
        ) -> MagicLinkResponse {
            let message = "If this address has an account, a sign-in link is on its way.";
            mail_link(&call, &body.0.email, Purpose::SignIn, message).await
        }

        /// Mails a single-use password-reset link (15 minutes). Every address gets
        /// the same 202; 5 requests per IP per 15 minutes; 404 when no mail is
        /// configured.
        POST "/auth/password-reset"
        async fn password_reset(
            call: PublicCall,
            body: JsonBody<MagicLinkRequest>,
        ) -> MagicLinkResponse {
            let message = "If this address has an account, a reset link is on its way.";
            mail_link(&call, &body.0.email, Purpose::PasswordReset, message).await
        }

        /// Sets a new password with a reset link's token (401 when it is used,
        /// expired or unknown). Every session and API sign-in of the account ends;
        /// a second factor stays.
        POST "/auth/password-reset/confirm"
        async fn password_reset_confirm(
            call: PublicCall,
            body: JsonBody<PasswordResetConfirm>,
        ) -> Done {
            let PasswordResetConfirm {
                token,
                new_password,
            } = body.0;
            crate::identity::magic::reset_password(&call.deps(), &token, new_password, &call.meta)
                .await?;
            Ok(Done::Done)
        }

        /// Ends the current session (or, with a bearer access token, its whole
        /// refresh-token family) on the server and clears the cookie.
        POST "/auth/logout"
        async fn logout(call: PublicCall, who: SignedIn) -> Response<Json<LogoutResponse>> {
            crate::identity::logout(&call.deps(), &who.0, &call.meta).await?;
            Ok(Response::new(Json(LogoutResponse { signed_out: true }))
                .header("set-cookie", clear_cookie(&call.state.config)))
        }
    }
}
