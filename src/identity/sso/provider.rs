//! Reaching a provider: every request (discovery, keys, token, userinfo)
//! through the webhooks' SSRF guard (its URL checked, names resolved to
//! permitted addresses only, no redirects, a time limit and a size cap),
//! and each provider's metadata and keys cached, fetched again when a token
//! names a key not seen yet (a rotated signing key).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::Duration;

use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{ClientId, ClientSecret, HttpRequest, HttpResponse, IssuerUrl, RedirectUrl};

use crate::config::SsoConfig;
use crate::error::{Error, Result};

/// The largest answer read from a provider.
const MAX_BODY: usize = 1 << 20;

/// Why a request to a provider failed (kept for the log, never shown).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct FetchError(String);

/// The guarded HTTP client openidconnect calls.
pub struct Fetch {
    client: reqwest::Client,
    policy: crate::integrations::ssrf::Policy,
}

pub fn http(cfg: &SsoConfig) -> Result<Fetch> {
    let policy = super::policy(cfg);
    let client =
        crate::integrations::ssrf::client(policy.clone(), Duration::from_secs(cfg.timeout_secs))?;
    Ok(Fetch { client, policy })
}

impl<'c> openidconnect::AsyncHttpClient<'c> for Fetch {
    type Error = FetchError;
    type Future = Pin<
        Box<dyn Future<Output = std::result::Result<HttpResponse, FetchError>> + Send + Sync + 'c>,
    >;

    fn call(&'c self, req: HttpRequest) -> Self::Future {
        Box::pin(async move {
            let url = req.uri().to_string();
            // IP literals never reach the guarded resolver: check each URL.
            self.policy
                .check_url(&url)
                .map_err(|_| FetchError(format!("{url}: refused by the outbound guard")))?;
            let req = reqwest::Request::try_from(req).map_err(|e| FetchError(e.to_string()))?;
            let mut resp = reqwest::Client::execute(&self.client, req)
                .await
                .map_err(|e| FetchError(format!("{url}: {e}")))?;
            let mut out = openidconnect::http::Response::builder().status(resp.status());
            for (k, v) in resp.headers() {
                out = out.header(k, v);
            }
            let mut body = Vec::new();
            while let Some(chunk) = resp.chunk().await.map_err(|e| FetchError(e.to_string()))? {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(FetchError(format!("{url}: answer larger than 1 MiB")));
                }
                body.extend_from_slice(&chunk);
            }
            out.body(body).map_err(|e| FetchError(e.to_string()))
        })
    }
}

/// Providers' metadata (with their keys), by issuer.
#[derive(Default)]
pub struct Cache {
    map: Mutex<HashMap<String, (i64, CoreProviderMetadata)>>,
}

impl Cache {
    /// The provider's metadata and keys: cached, or fetched when older than
    /// `[sso] metadata_cache_secs` or when `fresh` asks for it.
    pub async fn metadata(
        &self,
        cfg: &SsoConfig,
        http: &Fetch,
        issuer: &str,
        now: i64,
        fresh: bool,
    ) -> std::result::Result<CoreProviderMetadata, String> {
        if !fresh {
            let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, md)) = map.get(issuer)
                && now - at < cfg.metadata_cache_secs as i64
            {
                return Ok(md.clone());
            }
        }
        let url =
            IssuerUrl::new(issuer.to_owned()).map_err(|_| "the issuer is not a URL".to_owned())?;
        // Discovery checks that the document names this very issuer.
        let md = CoreProviderMetadata::discover_async(url, http)
            .await
            .map_err(|e| {
                tracing::warn!(issuer, error = %e, "OpenID discovery failed");
                format!("the provider's discovery failed: {}", short(&e.to_string()))
            })?;
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > 1000 {
            map.clear();
        }
        map.insert(issuer.to_owned(), (now, md.clone()));
        Ok(md)
    }
}

/// An error's first line, bounded, for an operator-facing message.
fn short(s: &str) -> String {
    s.lines().next().unwrap_or("").chars().take(200).collect()
}

/// The relying party for one workspace's provider.
pub type Client = openidconnect::Client<
    openidconnect::EmptyAdditionalClaims,
    openidconnect::core::CoreAuthDisplay,
    openidconnect::core::CoreGenderClaim,
    openidconnect::core::CoreJweContentEncryptionAlgorithm,
    openidconnect::core::CoreJsonWebKey,
    openidconnect::core::CoreAuthPrompt,
    openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    openidconnect::core::CoreTokenResponse,
    openidconnect::core::CoreTokenIntrospectionResponse,
    openidconnect::core::CoreRevocableToken,
    openidconnect::core::CoreRevocationErrorResponse,
    openidconnect::EndpointSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointNotSet,
    openidconnect::EndpointMaybeSet,
    openidconnect::EndpointMaybeSet,
>;

pub fn client(
    md: CoreProviderMetadata,
    client_id: &str,
    secret: &str,
    redirect: &str,
) -> Result<Client> {
    let redirect = RedirectUrl::new(redirect.to_owned())
        .map_err(|e| Error::internal(format!("redirect URL: {e}")))?;
    // A provider that takes the secret only in the body says so.
    let post_only = md.token_endpoint_auth_methods_supported().is_some_and(|m| {
        !m.contains(&openidconnect::core::CoreClientAuthMethod::ClientSecretBasic)
            && m.contains(&openidconnect::core::CoreClientAuthMethod::ClientSecretPost)
    });
    let c = CoreClient::from_provider_metadata(
        md,
        ClientId::new(client_id.to_owned()),
        Some(ClientSecret::new(secret.to_owned())),
    )
    .set_redirect_uri(redirect);
    Ok(if post_only {
        c.set_auth_type(openidconnect::AuthType::RequestBody)
    } else {
        c
    })
}
