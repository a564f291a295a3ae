//! The session cookie and the extractors that turn it into a `Principal`.
//! A handler's signature says what it needs: `SignedIn` for any account,
//! `AccountHolder` for the routes that manage the account itself (no
//! workspace API token), `PlatformAdmin` for the platform area.

use std::sync::Arc;

use poem::http::header;
use poem::{FromRequest, Request, RequestBody};

use crate::access::Principal;
use crate::app::AppState;
use crate::config::Config;
use crate::error::Error;

pub const COOKIE_PLAIN: &str = "aura_session";
/// `__Host-` pins the cookie to this exact host, path `/`, and TLS.
pub const COOKIE_TLS: &str = "__Host-aura_session";

pub fn cookie_name(cfg: &Config) -> &'static str {
    if cfg.secure_cookies() {
        COOKIE_TLS
    } else {
        COOKIE_PLAIN
    }
}

/// `Set-Cookie` value for a new session. Lives as long as the absolute timeout;
/// the server enforces both timeouts regardless.
pub fn session_cookie(cfg: &Config, token: &str) -> String {
    let max_age = cfg.file.auth.session_absolute_hours.saturating_mul(3600);
    let secure = if cfg.secure_cookies() { "; Secure" } else { "" };
    format!(
        "{}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}",
        cookie_name(cfg)
    )
}

pub fn clear_cookie(cfg: &Config) -> String {
    let secure = if cfg.secure_cookies() { "; Secure" } else { "" };
    format!(
        "{}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}",
        cookie_name(cfg)
    )
}

pub fn token_from_request(req: &Request, cfg: &Config) -> Option<String> {
    cookie(req, cookie_name(cfg))
}

/// The value of the request's cookie `name`; an empty one counts as absent.
pub fn cookie(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
        .filter(|v| !v.is_empty())
}

pub fn app_state(req: &Request) -> poem::Result<Arc<AppState>> {
    req.data::<Arc<AppState>>()
        .cloned()
        .ok_or_else(|| poem::Error::from(Error::internal("app state missing")))
}

/// The credential of `Authorization: Bearer <credential>`, if the header is
/// there. A malformed header is an error, not a fall-back to the cookie.
pub fn bearer_from_request(req: &Request) -> Option<Result<String, Error>> {
    let v = req.headers().get(header::AUTHORIZATION)?;
    let parsed = v
        .to_str()
        .ok()
        .and_then(|s| s.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, cred)| cred.trim().to_owned())
        .filter(|c| !c.is_empty());
    Some(parsed.ok_or(Error::Unauthenticated))
}

/// Any signed-in account: a bearer credential (API token or access JWT) when
/// the request carries one, else the session cookie.
pub struct SignedIn(pub Principal);

impl<'a> FromRequest<'a> for SignedIn {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = app_state(req)?;
        let p = if let Some(bearer) = bearer_from_request(req) {
            crate::identity::authenticate_bearer(&state.deps(), &bearer?).await?
        } else {
            let token = token_from_request(req, &state.config).ok_or(Error::Unauthenticated)?;
            crate::identity::authenticate(&state.deps(), &token).await?
        };
        // A verified credential spends only its own request budget.
        if let Some(v) = req.data::<crate::web::rate::Verified>() {
            v.set();
        }
        Ok(SignedIn(p))
    }
}

/// A caller who manages the account itself: its sign-ins, second factors,
/// passkeys, password and deletion. Every account-level route (API
/// `/me/...` but `/me`, the UI's `/account...`) takes this extractor, the one
/// place that keeps workspace API tokens out of them: they get 403
/// (`Principal::manages_account`).
pub struct AccountHolder(pub Principal);

impl<'a> FromRequest<'a> for AccountHolder {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let SignedIn(p) = SignedIn::from_request(req, body).await?;
        p.manages_account()?;
        Ok(AccountHolder(p))
    }
}

impl From<AccountHolder> for SignedIn {
    fn from(a: AccountHolder) -> Self {
        SignedIn(a.0)
    }
}

/// A signed-in platform admin; anyone else gets 403 (the platform area's
/// existence is no secret, its contents are).
pub struct PlatformAdmin(pub Principal);

impl<'a> FromRequest<'a> for PlatformAdmin {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let SignedIn(p) = SignedIn::from_request(req, body).await?;
        if p.platform_admin {
            Ok(PlatformAdmin(p))
        } else {
            Err(Error::Forbidden.into())
        }
    }
}

/// A call that needs no one signed in (sign-in, links by mail): the
/// appliance and the request's metadata. One parameter instead of two.
pub struct PublicCall {
    pub state: Arc<AppState>,
    pub meta: crate::audit::RequestMeta,
}

impl<'a> FromRequest<'a> for PublicCall {
    async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
        let state = poem::web::Data::<&Arc<AppState>>::from_request(req, body).await?;
        let meta = poem::web::Data::<&crate::audit::RequestMeta>::from_request(req, body).await?;
        Ok(PublicCall {
            state: Arc::clone(&state),
            meta: meta.clone(),
        })
    }
}

impl PublicCall {
    /// What identity code needs from the appliance.
    pub fn deps(&self) -> crate::identity::Deps<'_> {
        self.state.deps()
    }
}

/// A call outside any workspace by `W` (an account holder, a platform
/// admin), with what its handler hands on: the appliance and the request's
/// metadata. One parameter instead of three.
pub struct Call<W> {
    pub state: Arc<AppState>,
    pub meta: crate::audit::RequestMeta,
    pub who: Principal,
    by: std::marker::PhantomData<W>,
}

/// A call by the account holder about their own account.
pub type Me = Call<AccountHolder>;
/// A call by a platform admin.
pub type Admin = Call<PlatformAdmin>;

/// `Call<W>` for each extractor `W` that yields a verified `Principal`.
/// (One impl per type, not a generic one: a generic bound over every
/// lifetime trips rust-lang/rust#100013 in `#[handler]` functions.)
macro_rules! call_by {
    ($($w:ident),*) => {$(
        impl<'a> FromRequest<'a> for Call<$w> {
            async fn from_request(req: &'a Request, body: &mut RequestBody) -> poem::Result<Self> {
                let PublicCall { state, meta } = PublicCall::from_request(req, body).await?;
                let $w(who) = $w::from_request(req, body).await?;
                Ok(Call {
                    state,
                    meta,
                    who,
                    by: std::marker::PhantomData,
                })
            }
        }
    )*};
}

call_by!(AccountHolder, PlatformAdmin);

impl<W> Call<W> {
    /// What identity code needs from the appliance.
    pub fn deps(&self) -> crate::identity::Deps<'_> {
        self.state.deps()
    }
}
