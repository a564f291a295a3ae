//! `[limits]`: the bounds that keep one caller from exhausting the appliance
//! (connections, request heads, buffered bodies, the password-hashing queue,
//! passkey ceremonies, request rates). docs/operations.md lists each with its
//! default; packaging/aura.toml documents every key.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Connections open at once, over all clients. The server lowers it to
    /// fit under its descriptor limit (`LimitNOFILE=`), keeping a reserve for
    /// databases and outbound calls.
    pub max_connections: usize,
    /// Connections open at once from one address (per `ipv6_prefix` for IPv6).
    pub max_connections_per_ip: usize,
    /// A request head (request line and headers) must arrive whole within
    /// this many seconds of the connection opening, or of its first byte on
    /// a kept-alive connection.
    pub header_read_timeout_secs: u64,
    /// Addresses are grouped by this prefix for every per-address limit:
    /// one IPv6 subscriber usually holds a whole /64.
    pub ipv6_prefix: u8,
    pub ipv4_prefix: u8,
    /// Request bytes buffered in memory at once, over all requests; a
    /// request that would pass it waits briefly, then gets 503.
    pub buffered_body_bytes: usize,
    /// Of that budget, what the requests from one address (per
    /// `ipv6_prefix` for IPv6) may hold at once; beyond it, 429. A trusted
    /// proxy's own address is exempt.
    pub buffered_body_bytes_per_ip: usize,
    /// A buffered request body must arrive whole within this many seconds
    /// of the request head, or the request gets 408.
    pub body_read_timeout_secs: u64,
    /// Password checks allowed to wait for a hashing worker; beyond it a
    /// sign-in gets 429 with `Retry-After` instead of joining the queue.
    pub password_queue: usize,
    /// Passkey sign-in ceremonies kept in memory at once.
    pub passkey_ceremonies: usize,
    /// Anonymous passkey sign-in starts per address per minute.
    pub passkey_starts_per_ip_per_minute: u32,
    pub rate: RateConfig,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_connections: 8192,
            max_connections_per_ip: 512,
            header_read_timeout_secs: 10,
            ipv6_prefix: 64,
            ipv4_prefix: 32,
            buffered_body_bytes: 128 * 1024 * 1024,
            buffered_body_bytes_per_ip: 8 * 1024 * 1024,
            body_read_timeout_secs: 10,
            password_queue: 64,
            passkey_ceremonies: 10_000,
            passkey_starts_per_ip_per_minute: 30,
            rate: RateConfig::default(),
        }
    }
}

/// Request budgets per minute, per class of route; `per_token` counts by
/// credential (session cookie, bearer token), `per_address` counts requests
/// without one (and those whose credential was not verified, and every
/// public and sign_in request). 0 turns a budget off.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RateConfig {
    pub read: RateBudget,
    pub write: RateBudget,
    pub export: RateBudget,
    pub public: RateBudget,
    pub sign_in: RateBudget,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RateBudget {
    #[serde(default)]
    pub per_token: u32,
    #[serde(default)]
    pub per_address: u32,
}

impl Default for RateConfig {
    // Generous: far above what a person or a well-behaved integration sends
    // (and above scripts/bench's load), so only a runaway or hostile caller
    // meets them.
    fn default() -> Self {
        Self {
            read: RateBudget {
                per_token: 3_000_000,
                per_address: 12_000,
            },
            write: RateBudget {
                per_token: 1_200_000,
                per_address: 3_000,
            },
            export: RateBudget {
                per_token: 600,
                per_address: 60,
            },
            public: RateBudget {
                per_token: 6_000,
                per_address: 6_000,
            },
            sign_in: RateBudget {
                per_token: 6_000,
                per_address: 6_000,
            },
        }
    }
}

impl LimitsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.max_connections == 0 || self.max_connections_per_ip == 0 {
            return Err(
                "keys `limits.max_connections` and `limits.max_connections_per_ip` must be above 0"
                    .into(),
            );
        }
        if self.header_read_timeout_secs == 0 || self.header_read_timeout_secs > 300 {
            return Err("key `limits.header_read_timeout_secs` must be between 1 and 300".into());
        }
        if !(16..=128).contains(&self.ipv6_prefix) || !(8..=32).contains(&self.ipv4_prefix) {
            return Err(
                "keys `limits.ipv6_prefix` (16..=128) and `limits.ipv4_prefix` (8..=32) are out of range"
                    .into(),
            );
        }
        if self.buffered_body_bytes < 16 * 1024 * 1024 {
            return Err(
                "key `limits.buffered_body_bytes` must be at least 16777216 (one CSV import)"
                    .into(),
            );
        }
        if self.buffered_body_bytes_per_ip < 64 * 1024
            || self.buffered_body_bytes_per_ip > self.buffered_body_bytes
        {
            return Err(
                "key `limits.buffered_body_bytes_per_ip` must be between 65536 (one request) and `limits.buffered_body_bytes`"
                    .into(),
            );
        }
        if self.body_read_timeout_secs == 0 || self.body_read_timeout_secs > 300 {
            return Err("key `limits.body_read_timeout_secs` must be between 1 and 300".into());
        }
        if self.passkey_ceremonies == 0 {
            return Err("key `limits.passkey_ceremonies` must be above 0".into());
        }
        Ok(())
    }
}
