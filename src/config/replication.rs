//! `[replication]`: continuous replication of every database to S3-compatible
//! storage or a directory (docs/replication.md). Empty `url` turns it off.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReplicationConfig {
    /// `s3://bucket/prefix` (endpoint and credentials from `AWS_*`) or
    /// `file:///mnt/replica`; empty = off.
    pub url: String,
    /// The target's region; empty = the appliance's `region`.
    pub region: String,
    /// How often each database's new commits are shipped, in ms.
    pub interval_ms: u64,
    /// How far back point-in-time recovery reaches.
    pub retention_days: u32,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            region: String::new(),
            interval_ms: 1000,
            retention_days: 7,
        }
    }
}

impl ReplicationConfig {
    pub fn on(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The region the target is tagged with (its own, or the appliance's).
    pub fn effective_region<'a>(&'a self, appliance_region: &'a str) -> &'a str {
        super::residency::target_region(&self.region, appliance_region)
    }

    /// Checks the keys, and the region against `residency` as backup
    /// targets are checked: a replica outside the region never starts.
    pub fn validate(&self, appliance_region: &str, residency: &str) -> Result<(), String> {
        if !self.on() {
            return Ok(());
        }
        let url = self.url.trim();
        let ok = url
            .strip_prefix("file://")
            .is_some_and(|p| p.starts_with('/'))
            || super::residency::is_s3_url(url);
        if !ok {
            return Err(format!(
                "key `replication.url`: `{url}` is not `s3://bucket/prefix` or `file:///absolute/dir`"
            ));
        }
        if self.interval_ms < 50 || self.interval_ms > 600_000 {
            return Err("key `replication.interval_ms` must be between 50 and 600000".into());
        }
        if self.retention_days == 0 {
            return Err("key `replication.retention_days` must be at least 1".into());
        }
        super::residency::check_target(
            "replication.region",
            &format!("the replica target {url}"),
            self.effective_region(appliance_region),
            residency,
        )
    }
}
