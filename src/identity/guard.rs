//! The password check every sign-in path shares (browser session and
//! `/auth/token`), with its rate limits:
//! - per IP: `login_failures_per_ip` failures per sliding window, then 429;
//! - per account: after `account_backoff_after` failures, each further attempt
//!   waits 2^n seconds (capped at 15 minutes).
//!
//! Attempts in flight count against both limits until they end, so parallel
//! guesses get no more password checks than sequential ones: those beyond a
//! limit wait for the verdicts ahead of them.
//!
//! Unknown and known emails take the same path: the account limiter is keyed
//! by the email's blind index whether or not an account exists, and an unknown
//! email still runs a full argon2 verification against a dummy hash.
//!
//! Counters live in memory, on the appliance's clock. A restart forgets them,
//! which costs an attacker a restart they cannot cause.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::config::AuthConfig;
use crate::error::{Error, Result};
use crate::identity::Deps;
use crate::store::audit;
use crate::store::control::{self, UserRow};

const MAX_BACKOFF_SECS: i64 = 15 * 60;
/// Above this many tracked keys, stale ones are swept on the next write.
const SWEEP_ABOVE: usize = 10_000;

/// What the limiters say to an attempt about to check a password.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Admit {
    /// Go ahead.
    Go,
    /// Attempts in flight could still use up a limit: wait for one to end.
    Wait,
    /// Refused: retry after this many seconds.
    Refuse(u64),
}

/// How an admitted attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    /// At this time, in milliseconds: the account backoff measures its waits
    /// to the millisecond (whole seconds made a "1 s" wait anything from 0 to
    /// 1 s, letting a parallel burst straddling a second get one more check).
    Failed(i64),
    Succeeded,
    /// Never reached a verdict (an error, or the request was dropped).
    Aborted,
}

#[derive(Default)]
struct Hits {
    failures: VecDeque<i64>,
    in_flight: u32,
}

/// Sliding-window failure counts keyed by a string (an IP), with the
/// attempts in flight, which count against the limit until they end.
#[derive(Default)]
struct Window {
    hits: HashMap<String, Hits>,
    /// Twice the live keys after the last sweep (amortised sweeping).
    sweep_above: usize,
}

impl Window {
    fn check(&mut self, key: &str, now: i64, limit: u32, window: i64) -> Admit {
        if self.hits.len() > self.sweep_above.max(SWEEP_ABOVE) {
            self.hits.retain(|_, h| {
                h.in_flight > 0 || h.failures.back().is_some_and(|t| *t > now - window)
            });
            self.sweep_above = self.hits.len() * 2;
        }
        let Some(h) = self.hits.get_mut(key) else {
            return Admit::Go;
        };
        while h.failures.front().is_some_and(|t| *t <= now - window) {
            h.failures.pop_front();
        }
        let failed = h.failures.len() as u64;
        if failed > 0 && failed >= u64::from(limit) {
            let oldest = h.failures.front().copied().unwrap_or(now);
            return Admit::Refuse((oldest + window - now).max(1) as u64);
        }
        if h.in_flight > 0 && failed + u64::from(h.in_flight) >= u64::from(limit) {
            return Admit::Wait;
        }
        Admit::Go
    }

    fn start(&mut self, key: &str) {
        self.hits.entry(key.to_owned()).or_default().in_flight += 1;
    }

    fn finish(&mut self, key: &str, outcome: Outcome) {
        if let Some(h) = self.hits.get_mut(key) {
            h.in_flight = h.in_flight.saturating_sub(1);
            if let Outcome::Failed(at_ms) = outcome {
                h.failures.push_back(at_ms.div_euclid(1000));
            }
            if h.in_flight == 0 && h.failures.is_empty() {
                self.hits.remove(key);
            }
        }
    }
}

#[derive(Default)]
struct Account {
    failures: u32,
    /// The newest failure, in milliseconds.
    last_ms: i64,
    in_flight: u32,
}

/// Per-account exponential backoff on consecutive failures, with the
/// attempts in flight as in `Window`.
#[derive(Default)]
struct Backoff {
    accounts: HashMap<Vec<u8>, Account>,
    sweep_above: usize,
}

impl Backoff {
    fn check(&mut self, key: &[u8], now_ms: i64, after: u32) -> Admit {
        if self.accounts.len() > self.sweep_above.max(SWEEP_ABOVE) {
            self.accounts
                .retain(|_, a| a.in_flight > 0 || a.last_ms > now_ms - MAX_BACKOFF_SECS * 1000);
            self.sweep_above = self.accounts.len() * 2;
        }
        let Some(a) = self.accounts.get(key) else {
            return Admit::Go;
        };
        if after == 0 {
            return Admit::Go;
        }
        if a.failures >= after {
            let exp = (a.failures - after).min(20);
            let until_ms = a.last_ms + (1i64 << exp).min(MAX_BACKOFF_SECS) * 1000;
            if now_ms < until_ms {
                // Whole seconds for Retry-After, rounded up.
                return Admit::Refuse((until_ms - now_ms + 999).div_euclid(1000) as u64);
            }
        }
        if a.in_flight > 0 && a.failures.saturating_add(a.in_flight) >= after {
            return Admit::Wait;
        }
        Admit::Go
    }

    fn start(&mut self, key: &[u8]) {
        self.accounts.entry(key.to_vec()).or_default().in_flight += 1;
    }

    fn finish(&mut self, key: &[u8], outcome: Outcome) {
        if let Some(a) = self.accounts.get_mut(key) {
            a.in_flight = a.in_flight.saturating_sub(1);
            match outcome {
                Outcome::Failed(at_ms) => {
                    a.failures = a.failures.saturating_add(1);
                    a.last_ms = a.last_ms.max(at_ms);
                }
                Outcome::Succeeded => a.failures = 0,
                Outcome::Aborted => {}
            }
            if a.in_flight == 0 && a.failures == 0 {
                self.accounts.remove(key);
            }
        }
    }
}

#[derive(Default)]
struct Counters {
    login_ip: Window,
    accounts: Backoff,
    /// Address networks with a successful sign-in in the last day, and
    /// when: their sign-ins go first for a hashing worker.
    known_good: HashMap<String, i64>,
    known_good_sweep_above: usize,
}

/// How long a successful sign-in gives its address network priority.
const KNOWN_GOOD_SECS: i64 = 24 * 60 * 60;

/// The limiters of one running appliance. Both are checked and an attempt
/// counted in both under one lock, so an attempt never holds one limiter's
/// place while waiting on the other.
#[derive(Default)]
pub struct Limits {
    counters: Mutex<Counters>,
    /// Woken whenever an attempt ends, for those waiting on it.
    ended: tokio::sync::Notify,
    /// Wrong second-factor codes per account.
    pub totp: SlidingWindow,
    /// Invitation acceptances (which may create accounts) per IP.
    pub registrations: SlidingWindow,
    /// Magic-link requests per IP.
    pub magic: SlidingWindow,
    /// Browser sign-ins waiting for their second factor.
    pub mfa_pending: super::mfa::Pending,
    /// Attempts waiting for others' verdicts (bounded in `attempt`).
    waiting: AtomicUsize,
    /// Anonymous passkey sign-in starts per address.
    pub passkey_starts: SlidingWindow,
}

/// One attempt's place among the waiting; given back when it ends.
struct WaitSlot<'a>(&'a AtomicUsize);

impl Drop for WaitSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One admitted attempt; ending it (also by being dropped, when the request
/// goes away mid-check) updates both limiters and wakes waiting attempts.
struct Attempt<'a> {
    limits: &'a Limits,
    ip: String,
    account: Vec<u8>,
    outcome: Outcome,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        {
            let mut c = self.limits.lock();
            c.login_ip.finish(&self.ip, self.outcome);
            c.accounts.finish(&self.account, self.outcome);
        }
        self.limits.ended.notify_waiters();
    }
}

impl Limits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `ip` signed in successfully in the last day and has no
    /// failures counted in its window: its checks go first.
    fn priority(&self, ip: &str, now: i64) -> bool {
        let c = self.lock();
        c.known_good
            .get(ip)
            .is_some_and(|t| now - *t < KNOWN_GOOD_SECS)
            && c.login_ip
                .hits
                .get(ip)
                .is_none_or(|h| h.failures.is_empty())
    }

    fn remember_good(&self, ip: &str, now: i64) {
        let mut c = self.lock();
        if c.known_good.len() > c.known_good_sweep_above.max(SWEEP_ABOVE) {
            c.known_good.retain(|_, t| now - *t < KNOWN_GOOD_SECS);
            c.known_good_sweep_above = c.known_good.len() * 2;
        }
        c.known_good.insert(ip.to_owned(), now);
    }

    fn admit(&self, ip: &str, account: &[u8], now_ms: i64, auth: &AuthConfig) -> Admit {
        let window = (auth.login_failure_window_minutes as i64).saturating_mul(60);
        let mut c = self.lock();
        let by_ip = c.login_ip.check(
            ip,
            now_ms.div_euclid(1000),
            auth.login_failures_per_ip,
            window,
        );
        let by_account = c
            .accounts
            .check(account, now_ms, auth.account_backoff_after);
        match (by_ip, by_account) {
            (Admit::Refuse(secs), _) | (_, Admit::Refuse(secs)) => Admit::Refuse(secs),
            (Admit::Go, Admit::Go) => {
                c.login_ip.start(ip);
                c.accounts.start(account);
                Admit::Go
            }
            _ => Admit::Wait,
        }
    }

    /// Admits an attempt, waiting while attempts in flight could still use
    /// up a limit.
    async fn attempt(&self, deps: &Deps<'_>, ip: String, account: Vec<u8>) -> Result<Attempt<'_>> {
        let auth = &deps.config.file.auth;
        // Attempts waiting on others' verdicts are bounded too: beyond
        // `max_waiting`, an attempt is refused rather than queued.
        let max_waiting = deps.config.file.limits.password_queue.saturating_mul(4);
        let mut waiting: Option<WaitSlot<'_>> = None;
        loop {
            // Registered before the check, so an attempt ending in between
            // still wakes this one.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            match self.admit(&ip, &account, deps.clock.unix_ms(), auth) {
                Admit::Go => {
                    return Ok(Attempt {
                        limits: self,
                        ip,
                        account,
                        outcome: Outcome::Aborted,
                    });
                }
                Admit::Refuse(retry_after_secs) => {
                    tracing::warn!(retry_after_secs, "sign-in refused by rate limit");
                    return Err(Error::RateLimited { retry_after_secs });
                }
                Admit::Wait => {
                    if waiting.is_none() {
                        if self.waiting.fetch_add(1, Ordering::Relaxed) >= max_waiting {
                            self.waiting.fetch_sub(1, Ordering::Relaxed);
                            tracing::warn!("sign-in refused: too many attempts waiting");
                            return Err(Error::RateLimited {
                                retry_after_secs: 1,
                            });
                        }
                        waiting = Some(WaitSlot(&self.waiting));
                    }
                    ended.await
                }
            }
        }
    }
}

/// A plain sliding-window counter for limits that are counted as they happen
/// (second-factor codes, invitation acceptances, magic-link requests).
#[derive(Default)]
pub struct SlidingWindow {
    hits: Mutex<HashMap<String, VecDeque<i64>>>,
    /// Sweep again once the map has grown past this (twice the live keys
    /// after the last sweep), so a sweep is not a full scan per request.
    sweep_above: std::sync::atomic::AtomicUsize,
}

impl SlidingWindow {
    /// Counts one attempt, or refuses it (`RateLimited`) when `key` already
    /// has `limit` inside `window`. The check and the count happen under one
    /// lock, so parallel attempts cannot all pass the check before any of
    /// them is counted.
    pub fn hit(&self, key: &str, now: i64, limit: u32, window: i64) -> Result<()> {
        let mut map = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        // Sweep once the map has doubled since the last sweep, so a sweep
        // is not a full scan per request.
        let above = self.sweep_above.load(Ordering::Relaxed).max(SWEEP_ABOVE);
        if map.len() > above {
            map.retain(|_, q| q.back().is_some_and(|t| *t > now - window));
            self.sweep_above
                .store((map.len() * 2).max(SWEEP_ABOVE), Ordering::Relaxed);
        }
        let q = map.entry(key.to_owned()).or_default();
        while q.front().is_some_and(|t| *t <= now - window) {
            q.pop_front();
        }
        if q.len() as u64 >= u64::from(limit) {
            let oldest = q.front().copied().unwrap_or(now);
            return Err(Error::RateLimited {
                retry_after_secs: (oldest + window - now).max(1) as u64,
            });
        }
        q.push_back(now);
        Ok(())
    }

    /// Takes back one attempt counted at `at` by `hit` (it turned out not to
    /// count against the limit, e.g. a right second-factor code).
    pub fn give_back(&self, key: &str, at: i64) {
        let mut map = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(q) = map.get_mut(key) {
            if let Some(i) = q.iter().rposition(|t| *t == at) {
                q.remove(i);
            }
            if q.is_empty() {
                map.remove(key);
            }
        }
    }
}

/// Sign-in limits count an address by its network (`limits.ipv6_prefix`:
/// a /64), so fresh addresses from one subscriber share one budget.
fn ip_key(deps: &Deps<'_>, meta: &RequestMeta) -> String {
    format!(
        "login:{}",
        super::netkey::key(meta.ip.as_deref(), &deps.config.file.limits)
    )
}

/// Checks an email and password under the limits. Returns the account on
/// success; every failure (wrong password, unknown email, disabled account)
/// is the same `InvalidCredentials` and is audited as `auth.login_failed`.
pub async fn check_password(
    deps: &Deps<'_>,
    email: &str,
    password: String,
    meta: &RequestMeta,
) -> Result<UserRow> {
    let account = control::email_index(&deps.control.keys, email);
    let mut attempt = deps
        .limits
        .attempt(deps, ip_key(deps, meta), account)
        .await?;
    // An address network that signed in before (and has no failures in its
    // window) goes ahead of unknown ones for a hashing worker, so a flood
    // from fresh addresses cannot starve the people who use the appliance.
    let priority = deps.limits.priority(&attempt.ip, deps.clock.unix());

    let keys = deps.control.keys.clone();
    let email_owned = email.to_owned();
    let user = deps
        .control
        .db
        .read_async(move |c| control::find_user_by_email(c, &keys, &email_owned))
        .await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let password_ok = deps.hasher.verify_as(password, stored, priority).await?;
    match user {
        Some(u) if password_ok && !u.disabled => {
            attempt.outcome = Outcome::Succeeded;
            deps.limits.remember_good(&attempt.ip, deps.clock.unix());
            Ok(u)
        }
        other => {
            let now = deps.clock.unix();
            attempt.outcome = Outcome::Failed(deps.clock.unix_ms());
            drop(attempt);
            let target = other.map(|u| u.id);
            let keys = deps.control.keys.clone();
            let meta = meta.clone();
            deps.control
                .db
                .write_async(move |tx| {
                    let mut e = NewEntry::new(Actor::Anonymous, "auth.login_failed", &meta);
                    if let Some(id) = target {
                        e = e.target("user", id);
                    }
                    audit::append(tx, &keys.sealer, now, &e)?;
                    Ok(())
                })
                .await?;
            Err(Error::InvalidCredentials)
        }
    }
}

/// Re-authentication before a change to the account's own credentials
/// (password, second factors): a person, not an API token, giving their
/// password again under the sign-in limits. A wrong one is an error on
/// `field`.
pub async fn reauthenticate(
    deps: &Deps<'_>,
    who: &crate::access::Principal,
    password: String,
    field: &str,
    meta: &RequestMeta,
) -> Result<UserRow> {
    if matches!(who.via, crate::access::Via::ApiToken { .. }) {
        return Err(Error::Forbidden);
    }
    let keys = deps.control.keys.clone();
    let id = who.user_id;
    let me = deps
        .control
        .db
        .read_async(move |c| control::get_user(c, &keys, id))
        .await?
        .ok_or(Error::Unauthenticated)?;
    // An account without a password (made by single sign-on or SCIM)
    // proves itself by a sign-in through its provider in the last
    // `SSO_REAUTH_SECS`; whatever `password` says is not read.
    if me.password_hash.is_none() {
        return match fresh_sso_session(deps, who).await? {
            true => Ok(me),
            false => Err(Error::field(
                field,
                "this account has no password: sign in again through your organisation's provider, then do this within 10 minutes",
            )),
        };
    }
    if password.is_empty() {
        return Err(Error::field(field, "is required"));
    }
    check_password(deps, &me.email, password, meta)
        .await
        .map_err(|e| e.wrong_password(field))
}

/// How recent a provider's sign-in must be to stand in for a password.
const SSO_REAUTH_SECS: i64 = 600;

/// Whether the caller's browser session was opened by a provider's sign-in
/// in the last `SSO_REAUTH_SECS`.
async fn fresh_sso_session(deps: &Deps<'_>, who: &crate::access::Principal) -> Result<bool> {
    let crate::access::Via::Session { hash, sso: Some(_) } = &who.via else {
        return Ok(false);
    };
    let h = hash.clone();
    let found = deps
        .control
        .db
        .read_async(move |c| control::find_session(c, &h))
        .await?;
    let now = deps.clock.unix();
    Ok(found
        .is_some_and(|f| f.session.sso.is_some() && now - f.session.created_at <= SSO_REAUTH_SECS))
}

#[cfg(test)]
#[path = "guard_tests.rs"]
mod tests;
