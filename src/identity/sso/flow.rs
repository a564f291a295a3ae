//! The authorization code flow with PKCE, `state` and `nonce`. `start`
//! sends the browser to the provider with a one-time `state` bound to a
//! cookie of that browser; `finish` takes the callback once, exchanges the
//! code, checks the ID token (signature against the provider's keys, issuer,
//! audience, expiry, nonce) and hands the claims to `account`.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{
    AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    Scope, TokenResponse,
};
use serde_json::json;

use super::Sso;
use super::provider::{self, Fetch};
use super::settings::{Settings, load};
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::crypto::token::{random_token, sha256};
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::ids::WorkspaceId;

/// Whose provider a sign-in goes through: a workspace's, or the platform
/// area's (`[platform.sso]`, for operators).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Realm {
    Workspace(WorkspaceId),
    Platform,
}

impl Realm {
    pub fn workspace(self) -> Option<WorkspaceId> {
        match self {
            Realm::Workspace(ws) => Some(ws),
            Realm::Platform => None,
        }
    }
}

/// A sign-in waiting at the provider.
pub(super) struct Flow {
    realm: Realm,
    nonce: String,
    verifier: String,
    binding: [u8; 32],
    next: Option<String>,
}

/// Where `start` sends the browser, and the cookie value binding the flow
/// to it.
pub struct Started {
    pub url: String,
    pub binding: String,
}

/// Why a sign-in through a provider was refused: recorded (with the
/// workspace when known) and shown as a clear page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    BadState,
    ProviderDenied,
    Unreachable,
    Code,
    NoIdToken,
    Signature,
    Expired,
    Issuer,
    Audience,
    Nonce,
    InvalidToken,
    NoEmail,
    UnverifiedEmail,
    Domain,
    NotProvisioned,
    Disabled,
}

impl Refusal {
    pub fn code(self) -> &'static str {
        match self {
            Refusal::BadState => "bad_state",
            Refusal::ProviderDenied => "provider_denied",
            Refusal::Unreachable => "provider_unreachable",
            Refusal::Code => "code_refused",
            Refusal::NoIdToken => "no_id_token",
            Refusal::Signature => "bad_signature",
            Refusal::Expired => "expired_id_token",
            Refusal::Issuer => "wrong_issuer",
            Refusal::Audience => "wrong_audience",
            Refusal::Nonce => "wrong_nonce",
            Refusal::InvalidToken => "invalid_id_token",
            Refusal::NoEmail => "no_email",
            Refusal::UnverifiedEmail => "unverified_email",
            Refusal::Domain => "email_domain_not_allowed",
            Refusal::NotProvisioned => "not_provisioned",
            Refusal::Disabled => "account_disabled",
        }
    }

    /// What the person is told, and what to do next.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::BadState => {
                "This sign-in link is not valid any more (it was used, it expired, or it was started in another browser). Start again from the sign-in page."
            }
            Refusal::ProviderDenied => {
                "Your identity provider did not sign you in. Try again, or ask your administrator."
            }
            Refusal::Unreachable => {
                "Aura could not reach your organisation's identity provider. Try again in a moment, or ask your administrator to check the single sign-on settings."
            }
            Refusal::Code => {
                "Your identity provider refused to complete this sign-in (the code was already used or expired). Start again from the sign-in page."
            }
            Refusal::NoIdToken | Refusal::InvalidToken | Refusal::Audience => {
                "Your identity provider's answer could not be verified, so you were not signed in. Ask your administrator to check the single sign-on settings."
            }
            Refusal::Signature => {
                "Your identity provider's answer was not signed by one of its keys, so you were not signed in."
            }
            Refusal::Expired => {
                "Your identity provider's answer had expired, so you were not signed in. Start again; if it keeps happening, the provider's or this server's clock is wrong."
            }
            Refusal::Issuer => {
                "The answer came from another identity provider than the one this workspace uses, so you were not signed in."
            }
            Refusal::Nonce => {
                "This answer does not belong to the sign-in this browser started, so you were not signed in. Start again from the sign-in page."
            }
            Refusal::NoEmail => {
                "Your identity provider did not tell Aura your email address. Ask your administrator to add the email scope."
            }
            Refusal::UnverifiedEmail => {
                "Your identity provider says your email address is not verified. Verify it there, then try again."
            }
            Refusal::Domain => {
                "Your email address is not in a domain this workspace accepts for single sign-on."
            }
            Refusal::NotProvisioned => {
                "Your identity provider signed you in, but you are not a member of this workspace. Ask one of its admins to invite you."
            }
            Refusal::Disabled => "This account is disabled. Ask your administrator.",
        }
    }
}

/// What a finished callback leads to.
pub enum Outcome {
    SignedIn {
        token: String,
        /// Where the person lands: their workspace, or the platform area.
        to: String,
        next: Option<String>,
    },
    /// Aura's own second factor, then the session (`login_with_code`).
    NeedsCode {
        pending: String,
        next: Option<String>,
    },
    /// An account with this email exists: it must prove itself first.
    NeedsLink {
        token: String,
        email: String,
    },
    Refused(Refusal),
}

/// The claims a sign-in acts on, read from the verified ID token (and the
/// userinfo answer where the token leaves them out).
pub(super) struct Claims {
    pub issuer: String,
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub name: Option<String>,
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    pub acr: Option<String>,
}

pub(super) fn redirect_uri(deps: &Deps<'_>) -> String {
    format!(
        "{}/auth/oidc/callback",
        deps.config.public_url.trim_end_matches('/')
    )
}

/// The workspace an email's domain leads to, when exactly one claims it.
pub async fn workspace_for_email(deps: &Deps<'_>, email: &str) -> Result<Option<WorkspaceId>> {
    let Some((_, domain)) = email.trim().rsplit_once('@') else {
        return Ok(None);
    };
    let (keys, domain) = (deps.control.keys.clone(), domain.to_owned());
    let found = deps
        .control
        .db
        .read_async(move |c| crate::store::sso::workspaces_for_domain(c, &keys, &domain))
        .await?;
    Ok(match found.as_slice() {
        [one] => Some(*one),
        _ => None,
    })
}

/// Starts a sign-in through the realm's provider. A workspace without one
/// answers like a missing workspace.
pub async fn start(
    deps: &Deps<'_>,
    sso: &Sso,
    realm: Realm,
    login_hint: Option<&str>,
    next: Option<String>,
) -> Result<std::result::Result<Started, Refusal>> {
    let Some((settings, secret)) = load(deps, realm).await? else {
        return Err(Error::NotFound("single sign-on"));
    };
    let cfg = &deps.config.file.sso;
    let http = provider::http(cfg)?;
    let now = deps.clock.unix();
    let md = match sso
        .providers
        .metadata(cfg, &http, &settings.issuer, now, false)
        .await
    {
        Ok(md) => md,
        Err(e) => {
            tracing::warn!(realm = ?realm, error = %e, "single sign-on: provider unreachable");
            return Ok(Err(Refusal::Unreachable));
        }
    };
    let client = provider::client(md, &settings.client_id, &secret, &redirect_uri(deps))?;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut req = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge);
    for s in settings.scopes.iter().filter(|s| *s != "openid") {
        req = req.add_scope(Scope::new(s.clone()));
    }
    if let Some(h) = login_hint.filter(|h| !h.is_empty() && h.len() <= 320) {
        req = req.add_extra_param("login_hint", h.to_owned());
    }
    let (url, state, nonce) = req.url();
    let binding = random_token();
    let flow = Flow {
        realm,
        nonce: nonce.secret().clone(),
        verifier: verifier.secret().clone(),
        binding: sha256(binding.as_bytes()),
        next,
    };
    let expires = now + (cfg.flow_minutes as i64) * 60;
    sso.flows.put(state.secret(), flow, expires, now);
    Ok(Ok(Started {
        url: url.to_string(),
        binding,
    }))
}

/// The callback's parameters.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Callback {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub error: Option<String>,
    /// RFC 9207: the issuer that answers, when the provider says it.
    #[serde(default)]
    pub iss: Option<String>,
}

/// Finishes a sign-in: one use of the flow, from the browser that started it.
pub async fn finish(
    deps: &Deps<'_>,
    sso: &Sso,
    cb: Callback,
    binding: Option<&str>,
    meta: &RequestMeta,
) -> Result<Outcome> {
    let now = deps.clock.unix();
    // Only the browser that started the flow spends it: a callback carried
    // to another browser is refused and leaves the flow to its owner.
    let state = cb.state.as_deref().unwrap_or("");
    let b = binding.map(|b| sha256(b.as_bytes()));
    let mine = sso.flows.peek(state, now, |f| b == Some(f.binding)) == Some(true);
    let flow = if mine {
        sso.flows.take(state, now)
    } else {
        None
    };
    let Some(flow) = flow else {
        refuse(deps, None, Refusal::BadState, None, meta).await?;
        return Ok(Outcome::Refused(Refusal::BadState));
    };
    let ws = flow.realm.workspace();
    match verify(deps, sso, &flow, &cb).await? {
        Ok((claims, settings)) => {
            let out = match flow.realm {
                Realm::Workspace(w) => {
                    let (b, next) = (flow.binding, flow.next);
                    super::account::sign_in(deps, sso, w, &settings, claims, b, next, meta).await?
                }
                Realm::Platform => {
                    super::account::platform_sign_in(
                        deps,
                        sso,
                        &settings,
                        claims,
                        flow.binding,
                        meta,
                    )
                    .await?
                }
            };
            if let Outcome::Refused(r) = &out {
                refuse(deps, ws, *r, None, meta).await?;
            }
            Ok(out)
        }
        Err((r, issuer)) => {
            refuse(deps, ws, r, issuer, meta).await?;
            Ok(Outcome::Refused(r))
        }
    }
}

type Verified = std::result::Result<(Claims, Settings), (Refusal, Option<String>)>;

async fn verify(deps: &Deps<'_>, sso: &Sso, flow: &Flow, cb: &Callback) -> Result<Verified> {
    let Some((settings, secret)) = load(deps, flow.realm).await? else {
        return Ok(Err((Refusal::BadState, None)));
    };
    let issuer = Some(settings.issuer.clone());
    let fail = |r: Refusal| Ok(Err((r, issuer.clone())));
    if cb.error.is_some() {
        return fail(Refusal::ProviderDenied);
    }
    if cb.iss.as_deref().is_some_and(|i| i != settings.issuer) {
        return fail(Refusal::Issuer);
    }
    let Some(code) = cb.code.clone().filter(|c| !c.is_empty() && c.len() <= 4096) else {
        return fail(Refusal::Code);
    };
    let cfg = &deps.config.file.sso;
    let http = provider::http(cfg)?;
    let now = deps.clock.unix();
    let Ok(md) = sso
        .providers
        .metadata(cfg, &http, &settings.issuer, now, false)
        .await
    else {
        return fail(Refusal::Unreachable);
    };
    let redirect = redirect_uri(deps);
    let client = provider::client(md, &settings.client_id, &secret, &redirect)?;
    let token = match client.exchange_code(AuthorizationCode::new(code)) {
        Ok(req) => {
            req.set_pkce_verifier(PkceCodeVerifier::new(flow.verifier.clone()))
                .request_async(&http)
                .await
        }
        Err(_) => return fail(Refusal::Unreachable),
    };
    let token = match token {
        Ok(t) => t,
        Err(e) => {
            tracing::info!(realm = ?flow.realm, error = %e, "single sign-on: the code was refused");
            return fail(Refusal::Code);
        }
    };
    let Some(id_token) = token.id_token() else {
        return fail(Refusal::NoIdToken);
    };
    let nonce = Nonce::new(flow.nonce.clone());
    let mut checked = check(&client, id_token, &nonce, now);
    if checked == Err(Refusal::Signature) {
        // A key not seen yet: the provider may have rotated; fetch its keys
        // again, once.
        if let Ok(md) = sso
            .providers
            .metadata(cfg, &http, &settings.issuer, now, true)
            .await
        {
            let fresh = provider::client(md, &settings.client_id, &secret, &redirect)?;
            checked = check(&fresh, id_token, &nonce, now);
        }
    }
    if let Err(r) = checked {
        return fail(r);
    }
    let mut claims = match read_claims(id_token, &settings.groups_claim) {
        Some(c) => c,
        None => return fail(Refusal::InvalidToken),
    };
    if claims.email.is_none() || claims.groups.is_empty() {
        fill_from_userinfo(
            &client,
            &http,
            token.access_token(),
            &settings.groups_claim,
            &mut claims,
        )
        .await;
    }
    Ok(Ok((claims, settings)))
}

fn check(
    client: &provider::Client,
    id_token: &openidconnect::core::CoreIdToken,
    nonce: &Nonce,
    now: i64,
) -> std::result::Result<(), Refusal> {
    use openidconnect::ClaimsVerificationError as E;
    let at = chrono::DateTime::from_timestamp(now, 0).unwrap_or_default();
    let verifier = client.id_token_verifier().set_time_fn(move || at);
    match id_token.claims(&verifier, nonce) {
        Ok(_) => Ok(()),
        Err(E::Expired(_)) => Err(Refusal::Expired),
        Err(E::InvalidIssuer(_)) => Err(Refusal::Issuer),
        Err(E::InvalidAudience(_)) => Err(Refusal::Audience),
        Err(E::InvalidNonce(_)) => Err(Refusal::Nonce),
        Err(E::SignatureVerification(_)) => Err(Refusal::Signature),
        Err(e) => {
            tracing::info!(error = %e, "single sign-on: ID token refused");
            Err(Refusal::InvalidToken)
        }
    }
}

/// Reads the claims of an ID token whose signature and claims were checked
/// (`check`): its payload, including the workspace's groups claim.
fn read_claims(id_token: &openidconnect::core::CoreIdToken, groups_claim: &str) -> Option<Claims> {
    use base64::Engine;
    let jwt = id_token.to_string();
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
    Some(Claims {
        issuer: s("iss")?,
        subject: s("sub")?,
        email: s("email"),
        email_verified: v.get("email_verified").and_then(bool_claim),
        name: s("name"),
        groups: strings(v.get(groups_claim)),
        amr: strings(v.get("amr")),
        acr: s("acr"),
    })
}

/// A boolean claim, also as the string some providers send.
fn bool_claim(v: &serde_json::Value) -> Option<bool> {
    v.as_bool()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
}

/// A claim holding a list of strings (or one string).
fn strings(v: Option<&serde_json::Value>) -> Vec<String> {
    match v {
        Some(serde_json::Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_str())
            .take(1000)
            .map(|x| x.chars().take(256).collect())
            .collect(),
        Some(serde_json::Value::String(s)) => vec![s.chars().take(256).collect()],
        _ => Vec::new(),
    }
}

/// Email, name and groups from the userinfo endpoint, when the ID token
/// left them out; only an answer about the same subject counts.
async fn fill_from_userinfo(
    client: &provider::Client,
    http: &Fetch,
    access: &openidconnect::AccessToken,
    groups_claim: &str,
    claims: &mut Claims,
) {
    let Ok(req) = client.user_info(access.clone(), None) else {
        return;
    };
    let got: std::result::Result<openidconnect::core::CoreUserInfoClaims, _> =
        req.request_async(http).await;
    let Ok(info) = got else { return };
    let Ok(v) = serde_json::to_value(&info) else {
        return;
    };
    if v.get("sub").and_then(|s| s.as_str()) != Some(claims.subject.as_str()) {
        return;
    }
    if claims.email.is_none() {
        claims.email = v.get("email").and_then(|e| e.as_str()).map(str::to_owned);
        claims.email_verified = v.get("email_verified").and_then(bool_claim);
    }
    if claims.name.is_none() {
        claims.name = v.get("name").and_then(|e| e.as_str()).map(str::to_owned);
    }
    if claims.groups.is_empty() {
        claims.groups = strings(v.get(groups_claim));
    }
}

/// Records a refused sign-in: in the platform's chain, and in the
/// workspace's when the flow named one.
pub(super) async fn refuse(
    deps: &Deps<'_>,
    ws: Option<WorkspaceId>,
    r: Refusal,
    issuer: Option<String>,
    meta: &RequestMeta,
) -> Result<()> {
    let now = deps.clock.unix();
    let detail = json!({
        "reason": r.code(), "issuer": issuer, "workspace": ws.map(|w| w.to_string()),
    });
    let keys = deps.control.keys.clone();
    let (m, d) = (meta.clone(), detail.clone());
    deps.control
        .db
        .write_async(move |tx| {
            let e = NewEntry::new(Actor::Anonymous, "sso.refused", &m).after(d);
            crate::store::audit::append(tx, &keys.sealer, now, &e).map(|_| ())
        })
        .await?;
    if let Some(ws) = ws {
        super::in_workspace(deps, ws, None, "sso.refused", detail, meta).await?;
    }
    Ok(())
}
