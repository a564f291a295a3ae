//! Fair scheduling of webhook deliveries across workspaces (issue 27,
//! finding 8). Each workspace with due work runs on a task of its own, at
//! most `workspaces_in_parallel` at once and one per workspace, so one
//! workspace's slow receivers never hold up another's deliveries; inside a
//! workspace, `workspace_concurrency` attempts are in flight at most and a
//! pass yields after `workspace_budget_secs`. An endpoint that keeps timing
//! out (or refusing connections) is backed off: its pending deliveries wait
//! `endpoint_backoff_secs` without spending attempts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::IntegrationsConfig;

/// Consecutive slow failures per endpoint, and until when it is left alone.
#[derive(Default)]
pub struct EndpointBackoff {
    state: Mutex<HashMap<String, (u32, Option<Instant>)>>,
}

/// Endpoints remembered at most (the oldest entries are dropped beyond).
const REMEMBERED: usize = 10_000;

impl EndpointBackoff {
    /// How long the endpoint is still backed off, if it is.
    pub fn remaining(&self, endpoint: &str) -> Option<Duration> {
        let state = self.state.lock().ok()?;
        let until = state.get(endpoint)?.1?;
        until.checked_duration_since(Instant::now())
    }

    /// Notes an attempt's outcome. `slow` is a timeout or a failed connect:
    /// the failures that tie up a worker slot. Returns the backoff to apply
    /// when this one crossed the threshold.
    pub fn note(&self, cfg: &IntegrationsConfig, endpoint: &str, slow: bool) -> Option<Duration> {
        let mut state = self.state.lock().ok()?;
        if !slow {
            state.remove(endpoint);
            return None;
        }
        if state.len() >= REMEMBERED && !state.contains_key(endpoint) {
            state.clear();
        }
        let e = state.entry(endpoint.to_owned()).or_insert((0, None));
        e.0 += 1;
        if e.0 >= cfg.endpoint_backoff_after {
            let wait = Duration::from_secs(cfg.endpoint_backoff_secs);
            e.0 = 0;
            e.1 = Some(Instant::now() + wait);
            return Some(wait);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_backed_off_after_repeated_slow_failures_and_forgiven_on_success() {
        let cfg = IntegrationsConfig {
            endpoint_backoff_after: 2,
            endpoint_backoff_secs: 60,
            ..Default::default()
        };
        let b = EndpointBackoff::default();
        assert_eq!(b.note(&cfg, "e", true), None);
        assert!(b.note(&cfg, "e", true).is_some());
        assert!(b.remaining("e").is_some());
        assert!(b.remaining("other").is_none());
        b.note(&cfg, "e", false);
        assert!(b.remaining("e").is_none());
    }
}
