//! The `[files]` section: where attached files (file fields) are kept and
//! the operator's ceilings on them. Every key's default is documented in
//! packaging/aura.toml and in docs/files.md.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
    /// `s3://bucket/prefix` (endpoint and credentials from the `AWS_*`
    /// environment, as for the replica); empty = each workspace's
    /// `tenants/<id>/files/`.
    pub url: String,
    /// The bucket's region; empty = the appliance's `region`. Checked
    /// against `residency` like backup targets and the replica.
    pub region: String,
    /// The largest file one upload may carry, in bytes; a field's own
    /// `max_size` may only lower it.
    pub max_file_bytes: u64,
    /// The bytes of files one workspace may hold in all (plaintext sizes).
    pub workspace_quota_bytes: u64,
    /// Seconds between two runs of the retention purge (the first runs at
    /// start).
    pub retention_interval_secs: u64,
}

impl Default for FilesConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            region: String::new(),
            max_file_bytes: 256 * 1024 * 1024,
            workspace_quota_bytes: 10 * 1024 * 1024 * 1024,
            retention_interval_secs: 3600,
        }
    }
}

impl FilesConfig {
    /// Whether files go to an S3-compatible bucket.
    pub fn on_s3(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The region the bucket is tagged with (its own, or the appliance's).
    pub fn effective_region<'a>(&'a self, appliance_region: &'a str) -> &'a str {
        super::residency::target_region(&self.region, appliance_region)
    }

    /// Checks the section (the error names the key), and the bucket's
    /// region against `residency` as every other outbound target is.
    pub fn validate(&self, appliance_region: &str, residency: &str) -> Result<(), String> {
        if self.max_file_bytes == 0 {
            return Err("key `files.max_file_bytes` must be above 0".into());
        }
        if !(1..=7 * 86_400).contains(&self.retention_interval_secs) {
            return Err(
                "key `files.retention_interval_secs` must be from 1 to 604800 (a week)".into(),
            );
        }
        if self.workspace_quota_bytes < self.max_file_bytes {
            return Err(
                "key `files.workspace_quota_bytes` must be at least `files.max_file_bytes`".into(),
            );
        }
        if !self.on_s3() {
            return Ok(());
        }
        let url = self.url.trim();
        if !super::residency::is_s3_url(url) {
            return Err(format!(
                "key `files.url`: `{url}` is not `s3://bucket/prefix` (leave it empty to keep files in the data dir)"
            ));
        }
        super::residency::check_target(
            "files.region",
            &format!("the file storage {url}"),
            self.effective_region(appliance_region),
            residency,
        )
    }
}
