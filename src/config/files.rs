//! The `[files]` section: the operator's ceilings on attached files (file
//! fields). Every key's default is documented in packaging/aura.toml and in
//! docs/files.md.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FilesConfig {
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
            max_file_bytes: 256 * 1024 * 1024,
            workspace_quota_bytes: 10 * 1024 * 1024 * 1024,
            retention_interval_secs: 3600,
        }
    }
}

impl FilesConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
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
        Ok(())
    }
}
