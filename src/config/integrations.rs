//! The `[integrations]` section: the SSRF allow-list for outbound webhooks,
//! the retry schedule of deliveries and the default overlap of rotated
//! secrets. Every key's default is documented in packaging/aura.toml.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationsConfig {
    /// CIDRs that outbound webhooks may reach although they are not global
    /// (private, loopback, link-local, ...). An endpoint whose host is an IP
    /// literal inside one of them may also use plain `http://`.
    pub allowed_cidrs: Vec<String>,
    /// Attempts per delivery before it is marked failed.
    pub max_attempts: u32,
    /// The first retry waits about this long; each further one twice as long
    /// (with jitter), up to `retry_max_secs`.
    pub retry_base_ms: u64,
    pub retry_max_secs: u64,
    /// One delivery attempt's time limit (connect, send, answer).
    pub timeout_secs: u64,
    /// How often the delivery worker looks for due work.
    pub poll_interval_ms: u64,
    /// How long a rotated secret's previous value keeps working, unless the
    /// rotation names its own overlap.
    pub secret_overlap_hours: u32,
    /// Workspaces whose deliveries run at once (each on its own task).
    pub workspaces_in_parallel: usize,
    /// Attempts in flight for one workspace.
    pub workspace_concurrency: usize,
    /// One pass over a workspace stops taking new deliveries after this long
    /// and yields to the others.
    pub workspace_budget_secs: u64,
    /// Consecutive timeouts or connection failures of one endpoint after
    /// which it is backed off.
    pub endpoint_backoff_after: u32,
    /// How long a backed-off endpoint's deliveries wait (not counted as
    /// attempts).
    pub endpoint_backoff_secs: u64,
}

impl Default for IntegrationsConfig {
    fn default() -> Self {
        Self {
            allowed_cidrs: Vec::new(),
            max_attempts: 8,
            retry_base_ms: 30_000,
            retry_max_secs: 21_600,
            timeout_secs: 10,
            poll_interval_ms: 1_000,
            secret_overlap_hours: 24,
            workspaces_in_parallel: 16,
            workspace_concurrency: 8,
            workspace_budget_secs: 20,
            endpoint_backoff_after: 3,
            endpoint_backoff_secs: 300,
        }
    }
}

impl IntegrationsConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<Vec<ipnet::IpNet>, String> {
        let nets = self
            .allowed_cidrs
            .iter()
            .map(|c| {
                c.parse::<ipnet::IpNet>()
                    .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        format!(
                            "key `integrations.allowed_cidrs`: `{c}` is not a CIDR like 10.0.0.0/8"
                        )
                    })
            })
            .collect::<Result<Vec<_>, String>>()?;
        if self.max_attempts == 0 || self.max_attempts > 50 {
            return Err("key `integrations.max_attempts` must be between 1 and 50".into());
        }
        if self.retry_base_ms == 0 || self.timeout_secs == 0 || self.poll_interval_ms == 0 {
            return Err("keys `integrations.retry_base_ms`, `timeout_secs` and `poll_interval_ms` must be above 0".into());
        }
        if self.workspaces_in_parallel == 0
            || self.workspace_concurrency == 0
            || self.workspace_budget_secs == 0
            || self.endpoint_backoff_after == 0
        {
            return Err("keys `integrations.workspaces_in_parallel`, `workspace_concurrency`, `workspace_budget_secs` and `endpoint_backoff_after` must be above 0".into());
        }
        if self.secret_overlap_hours > 720 {
            return Err("key `integrations.secret_overlap_hours` must be at most 720".into());
        }
        Ok(nets)
    }
}
