//! The `[data_limits]` section: caps on the heavy data paths (audit
//! verification and exports, search, streamed CSV exports, collection
//! definitions). Every key's default is documented in packaging/aura.toml and
//! in docs/operations.md ("Limits: data paths").

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataLimitsConfig {
    /// Collections one workspace may define.
    pub max_collections: usize,
    /// Fields one collection may define (retired fields count too); at most
    /// the schema's own limit of 100.
    pub max_fields: usize,
    /// Bytes of one collection's definition (name, fields, options,
    /// permissions) as stored.
    pub max_definition_bytes: usize,
    /// Searches (records and audit) running at once on the appliance.
    pub search_concurrent: usize,
    /// Searches that may wait for a slot; more get 429 with Retry-After.
    pub search_queue: usize,
    /// One search's time budget (catching the index up and the query); the
    /// work stops when it runs out and the caller gets 503.
    pub search_time_budget_ms: u64,
    /// Most words one free-text query may have.
    pub search_max_terms: usize,
    /// Streamed exports (collection CSV, audit NDJSON/CSV) at once, in all.
    pub export_concurrent: usize,
    /// The same per workspace.
    pub export_concurrent_per_workspace: usize,
    /// A streamed export whose reader takes nothing for this long is cut.
    pub export_stall_secs: u64,
    /// After `export_stall_secs`, a streamed export whose reader averages
    /// fewer bytes per second than this is cut.
    pub export_min_bytes_per_sec: u64,
    /// Audit verifications and workspace archive exports running at once;
    /// more wait their turn (up to `bulk_queue`), then get 429.
    pub bulk_concurrent: usize,
    pub bulk_queue: usize,
}

impl Default for DataLimitsConfig {
    fn default() -> Self {
        Self {
            max_collections: 500,
            max_fields: 100,
            max_definition_bytes: 256 * 1024,
            search_concurrent: 4,
            search_queue: 64,
            search_time_budget_ms: 5_000,
            search_max_terms: 16,
            export_concurrent: 16,
            export_concurrent_per_workspace: 4,
            export_stall_secs: 30,
            export_min_bytes_per_sec: 1024,
            bulk_concurrent: 1,
            bulk_queue: 16,
        }
    }
}

impl DataLimitsConfig {
    /// Checks the section; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_collections", self.max_collections),
            ("max_fields", self.max_fields),
            ("search_concurrent", self.search_concurrent),
            ("search_max_terms", self.search_max_terms),
            ("export_concurrent", self.export_concurrent),
            (
                "export_concurrent_per_workspace",
                self.export_concurrent_per_workspace,
            ),
            ("bulk_concurrent", self.bulk_concurrent),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(format!("key `data_limits.{key}` must be above 0"));
            }
        }
        // The schema's own limit (records::schema::MAX_FIELDS).
        if self.max_fields > 100 {
            return Err("key `data_limits.max_fields` must be at most 100".into());
        }
        if self.max_definition_bytes < 4096 {
            return Err("key `data_limits.max_definition_bytes` must be at least 4096".into());
        }
        if self.search_time_budget_ms < 100 || self.export_stall_secs == 0 {
            return Err("keys `data_limits.search_time_budget_ms` (>= 100) and `export_stall_secs` (> 0) are too small".into());
        }
        Ok(())
    }
}
