//! What the running replicator knows, for `/metrics`, `/trust` and the
//! `status.json` heartbeat it writes to the replica (what `aura replica
//! status` reads for lag). Memory only.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct DbStatus {
    /// The instant of the newest read the replica matches (shipped or
    /// found unchanged).
    pub synced_ms: i64,
    /// The newest shipped object's instant and sequence in its generation.
    pub shipped_ms: i64,
    pub seq: u64,
    pub generation: String,
    /// The oldest instant point-in-time recovery reaches (0: not known yet).
    pub oldest_ms: i64,
    /// Passes since this server started that compared every page for want
    /// of a WAL hint (the fallback), and WAL restarts the replicator made.
    #[serde(default)]
    pub full_compares: u64,
    #[serde(default)]
    pub wal_restarts: u64,
}

#[derive(Default)]
pub struct ReplicaStatus {
    /// Region of the target; empty while replication is off.
    region: Mutex<String>,
    dbs: Mutex<BTreeMap<String, DbStatus>>,
    /// Why this server refuses writes: another appliance holds the
    /// replica lease (see `lease`).
    fenced: Mutex<Option<String>>,
    /// A warm standby follows the replica instead of shipping to it.
    standby: std::sync::atomic::AtomicBool,
}

/// The heartbeat object.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Heartbeat {
    pub written_ms: i64,
    pub databases: BTreeMap<String, DbStatus>,
}

impl ReplicaStatus {
    pub fn set_region(&self, region: &str) {
        if let Ok(mut r) = self.region.lock() {
            *r = region.to_owned();
        }
    }

    pub fn region(&self) -> Option<String> {
        self.region
            .lock()
            .ok()
            .map(|r| r.clone())
            .filter(|r| !r.is_empty())
    }

    pub fn set_standby(&self, on: bool) {
        self.standby.store(on, std::sync::atomic::Ordering::SeqCst);
    }

    pub fn is_standby(&self) -> bool {
        self.standby.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_fenced(&self, why: Option<String>) {
        if let Ok(mut f) = self.fenced.lock() {
            *f = why;
        }
    }

    /// `Some(reason)` while writes must be refused.
    pub fn fenced(&self) -> Option<String> {
        self.fenced.lock().ok().and_then(|f| f.clone())
    }

    pub fn update(&self, db: &str, f: impl FnOnce(&mut DbStatus)) {
        if let Ok(mut m) = self.dbs.lock() {
            f(m.entry(db.to_owned()).or_default());
        }
    }

    pub fn remove(&self, db: &str) {
        if let Ok(mut m) = self.dbs.lock() {
            m.remove(db);
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, DbStatus> {
        self.dbs.lock().map(|m| m.clone()).unwrap_or_default()
    }

    /// (the largest lag in seconds, the oldest instant every database
    /// reaches), or `None` before the first pass.
    pub fn summary(&self, now_ms: i64) -> Option<(f64, i64)> {
        let m = self.snapshot();
        if m.is_empty() {
            return None;
        }
        let lag = m
            .values()
            .map(|d| lag_seconds(now_ms, d.synced_ms))
            .fold(0.0, f64::max);
        let oldest = m.values().map(|d| d.oldest_ms).max().unwrap_or(0);
        Some((lag, oldest))
    }

    /// `aura_replication_lag_seconds{database=...}` lines.
    pub fn render_metrics(&self, now_ms: i64, out: &mut String) {
        use std::fmt::Write;
        let m = self.snapshot();
        if m.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "# HELP aura_replication_lag_seconds Seconds since the replica last matched this database."
        );
        let _ = writeln!(out, "# TYPE aura_replication_lag_seconds gauge");
        for (db, d) in &m {
            let _ = writeln!(
                out,
                "aura_replication_lag_seconds{{database=\"{db}\"}} {:.3}",
                lag_seconds(now_ms, d.synced_ms)
            );
        }
        let _ = writeln!(
            out,
            "# HELP aura_replication_full_compares_total Passes that compared every page of a database for want of a WAL hint."
        );
        let _ = writeln!(out, "# TYPE aura_replication_full_compares_total counter");
        for (db, d) in &m {
            let _ = writeln!(
                out,
                "aura_replication_full_compares_total{{database=\"{db}\"}} {}",
                d.full_compares
            );
        }
        let _ = writeln!(
            out,
            "# HELP aura_replication_wal_restarts_total WAL restarts made by the replicator under the writer lock."
        );
        let _ = writeln!(out, "# TYPE aura_replication_wal_restarts_total counter");
        for (db, d) in &m {
            let _ = writeln!(
                out,
                "aura_replication_wal_restarts_total{{database=\"{db}\"}} {}",
                d.wal_restarts
            );
        }
    }
}

pub fn lag_seconds(now_ms: i64, synced_ms: i64) -> f64 {
    (now_ms.saturating_sub(synced_ms)).max(0) as f64 / 1000.0
}
