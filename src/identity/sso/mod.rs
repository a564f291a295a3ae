//! Single sign-on through a workspace's OpenID provider (docs/identity.md).
//!
//! An owner or admin names the provider (`settings`); a person signs in
//! with the authorization code flow, PKCE, `state` and `nonce` (`flow`);
//! the provider's identity (issuer + subject, never the email alone) finds
//! or links an account, or makes one when the workspace provisions people
//! (`account`); a claim maps to roles and teams at every sign-in
//! (`mapping`). A workspace may require it of its people, with one named
//! break-glass owner (`access::grant_for` refuses the rest).

pub mod account;
pub mod flow;
mod mapping;
mod provider;
mod settings;

use std::collections::HashMap;
use std::sync::Mutex;

pub use flow::{Outcome, Refusal};
pub use settings::{RoleMapping, Settings, SsoChange, SsoView, TeamMapping};

use crate::crypto::token::sha256;

/// What single sign-on keeps in memory: sign-ins waiting at a provider,
/// accounts waiting for the proof that links them, and providers' metadata.
#[derive(Default)]
pub struct Sso {
    flows: Pending<flow::Flow>,
    links: Pending<account::Link>,
    /// Links mailed to an existing account: their token, to the waiting link's.
    mails: Pending<String>,
    /// Waiting links already mailed (one mail per link).
    mailed: Pending<()>,
    providers: provider::Cache,
}

/// A bounded map of one-time entries keyed by the SHA-256 of a token the
/// browser carries: taking an entry removes it, so it works once.
struct Pending<T> {
    map: Mutex<HashMap<[u8; 32], (T, i64)>>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
        }
    }
}

/// Entries kept at once; beyond it the oldest expiry goes first, so a flood
/// of started sign-ins cannot grow memory without bound.
const PENDING_CAP: usize = 10_000;

impl<T> Pending<T> {
    fn put(&self, token: &str, value: T, expires: i64, now: i64) {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, (_, e)| *e > now);
        if map.len() >= PENDING_CAP
            && let Some(k) = map.iter().min_by_key(|(_, (_, e))| *e).map(|(k, _)| *k)
        {
            map.remove(&k);
        }
        map.insert(sha256(token.as_bytes()), (value, expires));
    }

    fn take(&self, token: &str, now: i64) -> Option<T> {
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(&sha256(token.as_bytes()))
            .filter(|(_, e)| *e > now)
            .map(|(v, _)| v)
    }

    fn peek<R>(&self, token: &str, now: i64, f: impl FnOnce(&T) -> R) -> Option<R> {
        let map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&sha256(token.as_bytes()))
            .filter(|(_, e)| *e > now)
            .map(|(v, _)| f(v))
    }
}

/// Whether the provider's claims say a second factor was used, by the
/// operator's lists (`[sso] mfa_amr`, `mfa_acr`), when the operator trusts it.
pub fn provider_mfa(cfg: &crate::config::SsoConfig, amr: &[String], acr: Option<&str>) -> bool {
    cfg.trust_provider_mfa
        && (amr.iter().any(|a| cfg.mfa_amr.contains(a))
            || acr.is_some_and(|a| cfg.mfa_acr.iter().any(|x| x == a)))
}

/// The SSRF policy for providers (`[sso] allowed_cidrs`).
pub fn policy(cfg: &crate::config::SsoConfig) -> crate::integrations::ssrf::Policy {
    crate::integrations::ssrf::Policy::new(cfg.validate().unwrap_or_default())
}

pub use settings::{counts, delete, get, put, start_link};

/// The role people brought in by the workspace's provider get (SSO's
/// just-in-time provisioning and SCIM): its `default_role`, else member.
pub fn default_role(
    conn: &dyn crate::store::Sql,
    keys: &crate::store::control::PlatformKeys,
    ws: crate::ids::WorkspaceId,
) -> crate::error::Result<crate::access::Role> {
    Ok(match crate::store::sso::get(conn, keys, ws)? {
        Some(row) => serde_json::from_str::<Settings>(&row.settings)
            .map(|s| s.default_role)
            .unwrap_or(crate::access::Role::Member),
        None => crate::access::Role::Member,
    })
}

/// Records `action` in the workspace's chain, about `user` (acting for
/// themself) or by an anonymous caller (a refused sign-in).
pub(super) async fn in_workspace(
    deps: &crate::identity::Deps<'_>,
    ws: crate::ids::WorkspaceId,
    user: Option<crate::ids::UserId>,
    action: &'static str,
    detail: serde_json::Value,
    meta: &crate::audit::RequestMeta,
) -> crate::error::Result<()> {
    use crate::audit::{Actor, NewEntry};
    let now = deps.clock.unix();
    let why = crate::access::SystemTask::SsoSignIn;
    crate::audit::service::record_in_workspace(
        deps.control,
        deps.tenants,
        ws,
        why,
        now,
        meta,
        move |m| match user {
            Some(u) => NewEntry::new(Actor::User(u), action, m)
                .target("user", u)
                .after(detail),
            None => NewEntry::new(Actor::Anonymous, action, m).after(detail),
        },
    )
    .await
}
