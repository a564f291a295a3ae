//! The password check every sign-in path shares (browser session and
//! `/auth/token`), with its rate limits:
//! - per IP: `login_failures_per_ip` failures per sliding window, then 429;
//! - per account: after `account_backoff_after` failures, each further attempt
//!   waits 2^n seconds (capped at 15 minutes).
//!
//! Unknown and known emails take the same path: the account limiter is keyed
//! by the email's blind index whether or not an account exists, and an unknown
//! email still runs a full argon2 verification against a dummy hash.
//!
//! Counters live in memory, on the appliance's clock. A restart forgets them,
//! which costs an attacker a restart they cannot cause.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use crate::app::AppState;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::store::audit;
use crate::store::control::{self, UserRow};

const MAX_BACKOFF_SECS: i64 = 15 * 60;
/// Above this many tracked keys, stale ones are swept on the next write.
const SWEEP_ABOVE: usize = 10_000;

/// Sliding-window failure counters keyed by a string (an IP, a purpose).
#[derive(Default)]
pub struct Window {
    hits: Mutex<HashMap<String, VecDeque<i64>>>,
}

impl Window {
    /// Seconds to wait when `key` already has `limit` hits inside `window`.
    pub fn retry_after(&self, key: &str, now: i64, limit: u32, window: i64) -> Option<u64> {
        let mut map = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        let q = map.get_mut(key)?;
        while q.front().is_some_and(|t| *t <= now - window) {
            q.pop_front();
        }
        if q.len() as u64 >= u64::from(limit) {
            let oldest = q.front().copied().unwrap_or(now);
            Some((oldest + window - now).max(1) as u64)
        } else {
            None
        }
    }

    pub fn record(&self, key: &str, now: i64, window: i64) {
        let mut map = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, q| q.back().is_some_and(|t| *t > now - window));
        }
        map.entry(key.to_owned()).or_default().push_back(now);
    }

    pub fn clear(&self, key: &str) {
        let mut map = self.hits.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

/// Per-account exponential backoff: (consecutive failures, last failure).
#[derive(Default)]
pub struct Backoff {
    accounts: Mutex<HashMap<Vec<u8>, (u32, i64)>>,
}

impl Backoff {
    fn wait(&self, key: &[u8], now: i64, after: u32) -> Option<u64> {
        if after == 0 {
            return None;
        }
        let map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let (fails, last) = *map.get(key)?;
        if fails < after {
            return None;
        }
        let exp = (fails - after).min(20);
        let wait = (1i64 << exp).min(MAX_BACKOFF_SECS);
        let until = last + wait;
        (now < until).then(|| (until - now) as u64)
    }

    fn fail(&self, key: &[u8], now: i64) {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() > SWEEP_ABOVE {
            map.retain(|_, (_, last)| *last > now - MAX_BACKOFF_SECS);
        }
        let e = map.entry(key.to_vec()).or_insert((0, now));
        e.0 = e.0.saturating_add(1);
        e.1 = now;
    }

    fn succeed(&self, key: &[u8]) {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        map.remove(key);
    }
}

/// The limiters of one running appliance.
#[derive(Default)]
pub struct Limits {
    pub login_ip: Window,
    pub accounts: Backoff,
    /// Wrong second-factor codes per account.
    pub totp: Window,
    /// Invitation acceptances (which may create accounts) per IP.
    pub registrations: Window,
    /// Browser sign-ins waiting for their second factor.
    pub mfa_pending: super::mfa::Pending,
}

fn ip_key(meta: &RequestMeta) -> String {
    format!("login:{}", meta.ip.as_deref().unwrap_or("-"))
}

/// Checks an email and password under the limits. Returns the account on
/// success; every failure (wrong password, unknown email, disabled account)
/// is the same `InvalidCredentials` and is audited as `auth.login_failed`.
pub async fn check_password(
    state: &AppState,
    email: &str,
    password: String,
    meta: &RequestMeta,
) -> Result<UserRow> {
    let auth = &state.config.file.auth;
    let window = (auth.login_failure_window_minutes as i64).saturating_mul(60);
    let now = state.clock.unix();
    let ip = ip_key(meta);
    let account = control::email_index(&state.control.keys, email);
    let limited = state
        .limits
        .login_ip
        .retry_after(&ip, now, auth.login_failures_per_ip, window)
        .or_else(|| {
            state
                .limits
                .accounts
                .wait(&account, now, auth.account_backoff_after)
        });
    if let Some(retry_after_secs) = limited {
        tracing::warn!(retry_after_secs, "sign-in refused by rate limit");
        return Err(Error::RateLimited { retry_after_secs });
    }

    let keys = state.control.keys.clone();
    let email_owned = email.to_owned();
    let user = state
        .control
        .db
        .read_async(move |c| control::find_user_by_email(c, &keys, &email_owned))
        .await?;
    let stored = user.as_ref().and_then(|u| u.password_hash.clone());
    let password_ok = state.hasher.verify(password, stored).await?;
    match user {
        Some(u) if password_ok && !u.disabled => {
            state.limits.accounts.succeed(&account);
            Ok(u)
        }
        other => {
            let now = state.clock.unix();
            state.limits.login_ip.record(&ip, now, window);
            state.limits.accounts.fail(&account, now);
            let target = other.map(|u| u.id);
            let keys = state.control.keys.clone();
            let meta = meta.clone();
            state
                .control
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_refuses_after_limit_and_forgets() {
        let w = Window::default();
        for t in 0..5 {
            assert_eq!(w.retry_after("ip", t, 5, 900), None);
            w.record("ip", t, 900);
        }
        assert_eq!(w.retry_after("ip", 10, 5, 900), Some(890));
        assert_eq!(w.retry_after("other", 10, 5, 900), None);
        assert_eq!(
            w.retry_after("ip", 900, 5, 900),
            None,
            "the oldest aged out"
        );
    }

    #[test]
    fn backoff_doubles_and_resets() {
        let b = Backoff::default();
        for _ in 0..5 {
            assert_eq!(b.wait(b"a", 100, 5), None);
            b.fail(b"a", 100);
        }
        assert_eq!(b.wait(b"a", 100, 5), Some(1));
        b.fail(b"a", 101);
        assert_eq!(b.wait(b"a", 101, 5), Some(2));
        b.fail(b"a", 103);
        assert_eq!(b.wait(b"a", 103, 5), Some(4));
        b.succeed(b"a");
        assert_eq!(b.wait(b"a", 103, 5), None);
        assert_eq!(b.wait(b"a", 103, 0), None, "0 turns it off");
    }
}
