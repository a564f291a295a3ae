//! The `[sso]` section: how workspaces' OpenID providers are reached and how
//! far Aura trusts what they say. Every key's default is documented in
//! packaging/aura.toml.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SsoConfig {
    /// CIDRs a workspace's provider may be reached at although they are not
    /// global (private, loopback, ...): the same guard as webhooks. An issuer
    /// whose host is an IP literal inside one may use plain `http://`.
    pub allowed_cidrs: Vec<String>,
    /// Whether a provider's own second factor (its `amr` or `acr` claims)
    /// counts: it then satisfies a workspace's two-factor policy and stands
    /// in for Aura's own code at sign-in.
    pub trust_provider_mfa: bool,
    /// `amr` values that mean a second factor was used (RFC 8176).
    pub mfa_amr: Vec<String>,
    /// `acr` values that mean a second factor was used (provider-specific).
    pub mfa_acr: Vec<String>,
    /// How long a provider's discovery document and keys are kept before
    /// they are fetched again (an unknown signing key fetches them at once).
    pub metadata_cache_secs: u64,
    /// How long a sign-in may stay at the provider before it expires.
    pub flow_minutes: u64,
    /// One request to a provider (discovery, keys, token, userinfo).
    pub timeout_secs: u64,
}

impl Default for SsoConfig {
    fn default() -> Self {
        Self {
            allowed_cidrs: Vec::new(),
            trust_provider_mfa: false,
            mfa_amr: ["mfa", "otp", "hwk", "sc"].map(String::from).to_vec(),
            mfa_acr: Vec::new(),
            metadata_cache_secs: 3600,
            flow_minutes: 10,
            timeout_secs: 10,
        }
    }
}

impl SsoConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<Vec<ipnet::IpNet>, String> {
        let nets = self
            .allowed_cidrs
            .iter()
            .map(|c| {
                c.parse::<ipnet::IpNet>()
                    .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!("key `sso.allowed_cidrs`: `{c}` is not a CIDR like 10.0.0.0/8")
                    })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if self.flow_minutes == 0 || self.flow_minutes > 60 {
            return Err("key `sso.flow_minutes` must be between 1 and 60".into());
        }
        if self.timeout_secs == 0 || self.timeout_secs > 120 {
            return Err("key `sso.timeout_secs` must be between 1 and 120".into());
        }
        Ok(nets)
    }
}

/// The `[platform]` section: how operators sign in to the platform area.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformConfig {
    pub sso: PlatformSsoConfig,
}

/// `[platform.sso]`: an OpenID provider for the platform area. Only existing,
/// enabled platform admins sign in through it (never a new account); the
/// first sign-in links the provider's identity after the account proves
/// itself, like a workspace's.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PlatformSsoConfig {
    pub enabled: bool,
    pub issuer: String,
    pub client_id: String,
    /// A file holding the client secret (mode 0600, or a systemd credential).
    pub client_secret_file: std::path::PathBuf,
    pub scopes: Vec<String>,
    /// Email domains accepted; empty accepts any email the provider verified.
    pub allowed_domains: Vec<String>,
    pub groups_claim: String,
    /// When set, the ID token's groups must include it.
    pub admin_group: String,
}

impl Default for PlatformSsoConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            issuer: String::new(),
            client_id: String::new(),
            client_secret_file: std::path::PathBuf::new(),
            scopes: vec!["email".into(), "profile".into()],
            allowed_domains: Vec::new(),
            groups_claim: "groups".into(),
            admin_group: String::new(),
        }
    }
}

impl PlatformSsoConfig {
    /// Checks the section when it is on; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !self.enabled {
            return Ok(());
        }
        // The guard checks the address at every request (`[sso] allowed_cidrs`).
        let url_ok = url::Url::parse(&self.issuer)
            .is_ok_and(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some());
        if !url_ok {
            return Err(
                "key `platform.sso.issuer` must be the provider's https:// issuer URL".into(),
            );
        }
        if self.client_id.is_empty() || self.client_secret_file.as_os_str().is_empty() {
            return Err("keys `platform.sso.client_id` and `platform.sso.client_secret_file` are required when `platform.sso.enabled` is true".into());
        }
        Ok(())
    }
}

/// Checks `[sso]` and `[platform.sso]`; the error names the key.
pub fn validate(sso: &SsoConfig, platform: &PlatformConfig) -> Result<(), String> {
    sso.validate()?;
    platform.sso.validate()
}
