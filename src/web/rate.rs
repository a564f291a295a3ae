//! Request budgets for the whole API and UI (issue 27, finding 10): each
//! request falls in a class (read, write, export, public, sign_in; the ops
//! probes are not counted) and spends from a budget per credential (session
//! cookie or bearer token, keyed on its normalised form: scheme case-folded,
//! whitespace trimmed) or, without one, per address network (a /64 for
//! IPv6). A request with a credential must also find its address's budget
//! not spent, and is charged to the address unless the authenticating
//! extractor verified its credential (`Verified`), so inventing or
//! re-spelling tokens buys no fresh budgets. The public and sign_in classes
//! always spend from the address's budget.
//!
//! Budgets are GCRA (a leaky bucket kept as one "theoretical arrival time"
//! per key): `q` requests per `w` = 60 s, all of them at once if saved up.
//! Answers carry the IETF httpapi `RateLimit-Policy: "read";q=..;w=60` and
//! `RateLimit: "read";r=..;t=..` headers; a refusal is 429 problem+json with
//! `Retry-After`, counted in `aura_rate_limited_total{class,by}`.

use std::collections::HashMap;
use std::fmt::Write;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use poem::http::{HeaderValue, Method, StatusCode};
use poem::{IntoResponse, Request, Response};

use crate::app::AppState;
use crate::config::{LimitsConfig, RateBudget, RateConfig};
use crate::web::problem::Problem;

const WINDOW_SECS: f64 = 60.0;
const SHARDS: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Class {
    Read,
    Write,
    Export,
    Public,
    SignIn,
}

const CLASSES: [Class; 5] = [
    Class::Read,
    Class::Write,
    Class::Export,
    Class::Public,
    Class::SignIn,
];

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Read => "read",
            Class::Write => "write",
            Class::Export => "export",
            Class::Public => "public",
            Class::SignIn => "sign_in",
        }
    }

    /// The class of a request; `None` for the ops probes, which are cheap
    /// and must answer monitoring whatever else happens.
    pub fn of(method: &Method, path: &str) -> Option<Class> {
        if matches!(path, "/healthz" | "/readyz" | "/metrics") {
            return None;
        }
        let public = path.starts_with("/hooks/")
            || matches!(path, "/trust" | "/trust.json" | "/api/openapi.json")
            || path.starts_with("/trust/")
            || path.starts_with("/.well-known/");
        let sign_in = path.starts_with("/api/v1/auth/")
            || matches!(path, "/login" | "/login/magic" | "/reset")
            || path.starts_with("/magic/")
            || path.starts_with("/reset/")
            || path.starts_with("/invite/")
            || (path.starts_with("/api/v1/invitations/") && path.ends_with("/accept"));
        Some(if public {
            Class::Public
        } else if sign_in {
            Class::SignIn
        } else if is_export(method, path) {
            Class::Export
        } else if matches!(*method, Method::GET | Method::HEAD) {
            Class::Read
        } else {
            Class::Write
        })
    }

    fn budget(self, cfg: &RateConfig) -> RateBudget {
        match self {
            Class::Read => cfg.read,
            Class::Write => cfg.write,
            Class::Export => cfg.export,
            Class::Public => cfg.public,
            Class::SignIn => cfg.sign_in,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Work that streams or builds a whole data set: a path ending in
/// `/export` (CSV, audit, data subjects, the privacy page's form), an export
/// download, or starting a workspace export. Polling a job's state is a read.
fn is_export(method: &Method, path: &str) -> bool {
    let last = path.rsplit('/').next().unwrap_or("");
    last == "export"
        || (last == "download" && path.contains("/exports/"))
        || (*method == Method::POST && path.ends_with("/exports"))
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    class: Class,
    by_credential: bool,
    hash: u64,
}

struct Shard {
    /// Theoretical arrival time, in seconds since `RateLimiter::epoch`.
    tat: HashMap<Key, f64>,
    sweep_above: usize,
}

/// What one key's budget said.
#[derive(Clone, Copy, Debug)]
struct Verdict {
    allowed: bool,
    quota: u32,
    remaining: u64,
    /// Seconds until the budget is whole again (allowed) or until the next
    /// request is (refused).
    secs: u64,
}

pub struct RateLimiter {
    cfg: RateConfig,
    limits: LimitsConfig,
    shards: Vec<Mutex<Shard>>,
    epoch: Instant,
    keys: RandomState,
    /// [class][0 = address, 1 = credential]
    refused: [[AtomicU64; 2]; 5],
}

/// The decision for one request, applied to its response.
pub struct Decision {
    class: Class,
    address: u64,
    /// The address is still to be charged unless the credential is verified.
    charge_unless_verified: bool,
    verified: Verified,
    verdict: Verdict,
}

impl Decision {
    /// The marker the middleware puts in the request's data, for the
    /// authenticating extractor to set.
    pub fn marker(&self) -> Verified {
        self.verified.clone()
    }
}

/// Set by the extractor that authenticates a request's credential
/// (`web::session::SignedIn`); a credentialed request without it is charged
/// to its address.
#[derive(Clone, Default)]
pub struct Verified(Arc<AtomicBool>);

impl Verified {
    pub fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

impl RateLimiter {
    pub fn new(limits: &LimitsConfig) -> Self {
        Self {
            cfg: limits.rate.clone(),
            limits: limits.clone(),
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        tat: HashMap::new(),
                        sweep_above: 4096,
                    })
                })
                .collect(),
            epoch: Instant::now(),
            keys: RandomState::new(),
            refused: Default::default(),
        }
    }

    fn now(&self) -> f64 {
        self.epoch.elapsed().as_secs_f64()
    }

    /// GCRA: spends one request from `key`'s budget of `quota` per window,
    /// or (with `spend` false) only says whether one is left.
    fn take(&self, key: Key, quota: u32, spend: bool) -> Verdict {
        let t = self.now();
        let interval = WINDOW_SECS / f64::from(quota);
        let tolerance = WINDOW_SECS - interval;
        let shard = &self.shards[(key.hash as usize) % SHARDS];
        let mut s = shard.lock().unwrap_or_else(|p| p.into_inner());
        if s.tat.len() > s.sweep_above {
            // Keys whose budget is whole again are the same as absent ones.
            s.tat.retain(|_, tat| *tat > t);
            s.sweep_above = (s.tat.len() * 2).max(4096);
        }
        let tat = s.tat.get(&key).copied().unwrap_or(t).max(t);
        if tat - t > tolerance {
            return Verdict {
                allowed: false,
                quota,
                remaining: 0,
                secs: (tat - t - tolerance).ceil().max(1.0) as u64,
            };
        }
        let next = tat + interval;
        if spend {
            s.tat.insert(key, next);
        }
        let used = if spend { next - t } else { tat - t };
        Verdict {
            allowed: true,
            quota,
            remaining: ((WINDOW_SECS - used) / interval).floor().max(0.0) as u64,
            secs: used.ceil().max(0.0) as u64,
        }
    }

    fn hash(&self, s: &str) -> u64 {
        self.keys.hash_one(s)
    }

    /// The credential a request carries, as a keyed hash of its normalised
    /// form: a bearer token with its scheme case-folded and whitespace trimmed
    /// (every spelling `web::session` accepts is one key), or the session
    /// cookie's value.
    fn credential_of(&self, req: &Request, state: &AppState) -> Option<u64> {
        if let Some(v) = req.headers().get(poem::http::header::AUTHORIZATION) {
            let raw = v.to_str().unwrap_or("").trim();
            let (scheme, token) = raw
                .split_once(|c: char| c.is_ascii_whitespace())
                .unwrap_or((raw, ""));
            let normal = format!("authz {} {}", scheme.to_ascii_lowercase(), token.trim());
            return Some(self.hash(&normal));
        }
        crate::web::session::token_from_request(req, &state.config)
            .map(|t| self.hash(&format!("cookie {}", t.trim())))
    }

    /// Decides a request; `Err` is the 429 answer to send instead.
    pub fn decide(
        &self,
        req: &Request,
        state: &AppState,
        address: Option<std::net::IpAddr>,
    ) -> Option<Result<Decision, Response>> {
        let class = Class::of(req.method(), req.uri().path())?;
        let budget = class.budget(&self.cfg);
        let net = address
            .map(|ip| crate::identity::netkey::network(ip, &self.limits).to_string())
            .unwrap_or_default();
        let address = self.hash(&net);
        let credential = self.credential_of(req, state);
        let addr_key = Key {
            class,
            by_credential: false,
            hash: address,
        };
        // Public and sign-in routes check no credential of their own: a
        // credential there must not spare the address. Elsewhere the address
        // is charged after the handler, unless the credential was verified.
        let always_address = matches!(class, Class::Public | Class::SignIn);
        let spend_address = credential.is_none() || always_address;
        let mut address_verdict = None;
        if budget.per_address > 0 {
            let v = self.take(addr_key, budget.per_address, spend_address);
            if !v.allowed {
                return Some(Err(self.refuse(class, false, v)));
            }
            address_verdict = Some(v);
        }
        let mut credential_verdict = None;
        if let Some(c) = credential.filter(|_| budget.per_token > 0) {
            let key = Key {
                class,
                by_credential: true,
                hash: c,
            };
            let v = self.take(key, budget.per_token, true);
            if !v.allowed {
                return Some(Err(self.refuse(class, true, v)));
            }
            credential_verdict = Some(v);
        }
        // The headers tell of the budget nearer to its end among those spent.
        let verdict = match (credential_verdict, address_verdict) {
            (Some(c), Some(a)) if spend_address && a.remaining < c.remaining => a,
            (Some(c), _) => c,
            (None, Some(a)) => a,
            (None, None) => return None,
        };
        Some(Ok(Decision {
            class,
            address,
            charge_unless_verified: credential.is_some()
                && !spend_address
                && budget.per_address > 0,
            verified: Verified::default(),
            verdict,
        }))
    }

    fn refuse(&self, class: Class, by_credential: bool, v: Verdict) -> Response {
        self.refused[class.index()][usize::from(by_credential)].fetch_add(1, Ordering::Relaxed);
        let mut resp = Problem {
            retry_after: Some(v.secs),
            ..Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "urn:aura:problem:rate-limited",
                "Too many requests",
            )
            .detail(format!(
                "the {} request budget is spent; try again in {} s",
                class.name(),
                v.secs
            ))
        }
        .into_response();
        headers(&mut resp, class, v);
        resp
    }

    /// After the handler: the budget headers, and a credential the request
    /// did not verify (refused, invented, or never looked at) is charged to
    /// its address.
    pub fn finish(&self, d: &Decision, resp: &mut Response) {
        if d.charge_unless_verified && !d.verified.is_set() {
            let quota = d.class.budget(&self.cfg).per_address;
            if quota > 0 {
                let key = Key {
                    class: d.class,
                    by_credential: false,
                    hash: d.address,
                };
                self.take(key, quota, true);
            }
        }
        headers(resp, d.class, d.verdict);
    }

    /// `aura_rate_limited_total{class,by}`.
    pub fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# TYPE aura_rate_limited_total counter");
        for class in CLASSES {
            for (i, by) in ["address", "credential"].iter().enumerate() {
                let n = self.refused[class.index()][i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "aura_rate_limited_total{{class=\"{}\",by=\"{by}\"}} {n}",
                    class.name()
                );
            }
        }
    }
}

fn headers(resp: &mut Response, class: Class, v: Verdict) {
    let h = resp.headers_mut();
    let name = class.name();
    if let Ok(p) = HeaderValue::from_str(&format!(
        "\"{name}\";q={};w={}",
        v.quota, WINDOW_SECS as u64
    )) {
        h.insert("ratelimit-policy", p);
    }
    if let Ok(r) = HeaderValue::from_str(&format!("\"{name}\";r={};t={}", v.remaining, v.secs)) {
        h.insert("ratelimit", r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(hash: u64) -> Key {
        Key {
            class: Class::Read,
            by_credential: false,
            hash,
        }
    }

    #[test]
    fn a_budget_allows_its_quota_at_once_then_refuses() {
        let r = RateLimiter::new(&LimitsConfig::default());
        for i in 0..10 {
            let v = r.take(key(1), 10, true);
            assert!(v.allowed, "request {i}");
            assert_eq!(v.remaining, 9 - i);
        }
        let v = r.take(key(1), 10, true);
        assert!(!v.allowed);
        assert!((1..=6).contains(&v.secs), "{v:?}");
        assert!(r.take(key(2), 10, true).allowed, "another key");
        assert!(!r.take(key(1), 10, false).allowed, "a peek spends nothing");
    }

    #[test]
    fn classes() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(Class::of(&get, "/healthz"), None);
        assert_eq!(Class::of(&get, "/trust.json"), Some(Class::Public));
        assert_eq!(
            Class::of(&get, "/trust/incidents/inc_1"),
            Some(Class::Public)
        );
        assert_eq!(Class::of(&post, "/hooks/a/b"), Some(Class::Public));
        assert_eq!(Class::of(&post, "/api/v1/auth/token"), Some(Class::SignIn));
        assert_eq!(Class::of(&post, "/login"), Some(Class::SignIn));
        assert_eq!(
            Class::of(&get, "/api/v1/workspaces/x/collections/y/export"),
            Some(Class::Export)
        );
        assert_eq!(
            Class::of(&get, "/api/v1/workspaces/x/exports/y/download"),
            Some(Class::Export)
        );
        assert_eq!(
            Class::of(&post, "/api/v1/workspaces/x/exports"),
            Some(Class::Export)
        );
        assert_eq!(
            Class::of(&get, "/api/v1/workspaces/x/exports/y"),
            Some(Class::Read),
            "polling a job"
        );
        assert_eq!(Class::of(&get, "/api/v1/me"), Some(Class::Read));
        assert_eq!(
            Class::of(&post, "/api/v1/workspaces/x/records"),
            Some(Class::Write)
        );
    }
}
