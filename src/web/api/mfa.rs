//! Your second factor over HTTP: TOTP enrolment (with a QR code), its
//! confirmation (which returns the recovery codes once), status and removal.

use poem_openapi::payload::Json;
use poem_openapi::{Object, OpenApi};
use serde::Deserialize;

use super::body::JsonBody;
use super::routes::api;
use super::{ApiTags, Done};
use crate::identity::mfa;
use crate::web::session::Me;

#[derive(Object)]
pub struct MfaStatus {
    pub totp_enabled: bool,
    pub recovery_codes_left: i64,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reauth {
    /// Your current password. An account without one (made by single
    /// sign-on or SCIM) sends any value, from a session its provider opened
    /// in the last 10 minutes.
    #[oai(validator(min_length = 1))]
    pub password: String,
}

#[derive(Object)]
pub struct TotpEnrolment {
    /// Base32, for typing into an app by hand.
    pub secret: String,
    pub otpauth_uri: String,
    /// The same URI as a QR code, an SVG document.
    pub qr_svg: String,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Code {
    #[oai(validator(min_length = 1))]
    pub code: String,
}

#[derive(Object)]
pub struct RecoveryCodes {
    /// Ten single-use codes, shown this once; only their hashes are kept.
    pub recovery_codes: Vec<String>,
}

#[derive(Object, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoveTotp {
    #[oai(validator(min_length = 1))]
    pub password: String,
    /// A current TOTP code or a recovery code.
    #[oai(validator(min_length = 1))]
    pub code: String,
}

#[derive(Default)]
pub struct MfaApi;

api! {
    #[OpenApi(tag = "ApiTags::Me")]
    impl MfaApi {
        /// Whether you have a second factor, and how many recovery codes are left.
        GET "/me/mfa"
        async fn status(me: Me) -> Json<MfaStatus> {
            let (totp_enabled, recovery_codes_left) =
                mfa::status(&me.deps(), me.who.user_id).await?;
            Ok(Json(MfaStatus {
                totp_enabled,
                recovery_codes_left,
            }))
        }

        /// Starts TOTP enrolment (your password required). Confirm it with a code.
        POST "/me/mfa/totp"
        async fn start(me: Me, body: JsonBody<Reauth>) -> Json<TotpEnrolment> {
            let e = mfa::start_enrolment(&me.deps(), &me.who, body.0.password, &me.meta).await?;
            Ok(Json(TotpEnrolment {
                secret: e.secret_base32,
                otpauth_uri: e.otpauth_uri,
                qr_svg: e.qr_svg,
            }))
        }

        /// Confirms enrolment with a code from the app; answers the recovery
        /// codes, once.
        POST "/me/mfa/totp/confirm"
        async fn confirm(me: Me, body: JsonBody<Code>) -> Json<RecoveryCodes> {
            let recovery_codes = mfa::confirm(&me.deps(), &me.who, &body.0.code, &me.meta).await?;
            Ok(Json(RecoveryCodes { recovery_codes }))
        }

        /// New recovery codes in place of the old ones, which stop working
        /// (your password required; two-factor sign-in must be on). Answers
        /// them this once.
        POST "/me/mfa/recovery-codes"
        async fn recovery_codes(me: Me, body: JsonBody<Reauth>) -> Json<RecoveryCodes> {
            let recovery_codes =
                mfa::regenerate_recovery_codes(&me.deps(), &me.who, body.0.password, &me.meta)
                    .await?;
            Ok(Json(RecoveryCodes { recovery_codes }))
        }

        /// Removes the second factor (password and a current code required).
        POST "/me/mfa/totp/remove"
        async fn remove(me: Me, body: JsonBody<RemoveTotp>) -> Done {
            let RemoveTotp { password, code } = body.0;
            mfa::remove(&me.deps(), &me.who, password, &code, &me.meta).await?;
            Ok(Done::Done)
        }
    }
}
