//! Config sections for TLS, audit, backups and metrics; `config` re-exports
//! them. Every key's default is documented in packaging/aura.toml.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    pub mode: TlsMode,
    pub domains: Vec<String>,
    pub https_listen: String,
    pub http_listen: String,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    pub trusted_proxies: Vec<String>,
    pub acme: AcmeConfig,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    Off,
    Acme,
    Files,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AcmeConfig {
    pub contact: String,
    pub directory_url: String,
    pub challenge: AcmeChallenge,
    pub ca_root_file: PathBuf,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum AcmeChallenge {
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    #[serde(rename = "http-01")]
    Http01,
}

impl Default for TlsConfig {
    fn default() -> Self {
        Self {
            mode: TlsMode::Off,
            domains: Vec::new(),
            https_listen: "0.0.0.0:443".into(),
            http_listen: "0.0.0.0:80".into(),
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            trusted_proxies: Vec::new(),
            acme: AcmeConfig::default(),
        }
    }
}

impl Default for AcmeConfig {
    fn default() -> Self {
        Self {
            contact: String::new(),
            directory_url: "https://acme-v02.api.letsencrypt.org/directory".into(),
            challenge: AcmeChallenge::TlsAlpn01,
            ca_root_file: PathBuf::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    pub retention_days: u32,
    pub checkpoint_interval_secs: u64,
    pub verify_interval_secs: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            retention_days: 365,
            checkpoint_interval_secs: 300,
            verify_interval_secs: 86_400,
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    pub bearer_token: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    pub schedule: String,
    pub drill_schedule: String,
    /// An age identity for scheduled restore drills (optional; drills run by
    /// hand take `--identity`).
    pub drill_identity_file: PathBuf,
    pub recipients: Vec<String>,
    pub keep_daily: u32,
    pub keep_weekly: u32,
    pub targets: Vec<BackupTarget>,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            schedule: "daily".into(),
            drill_schedule: "weekly".into(),
            drill_identity_file: PathBuf::new(),
            recipients: Vec::new(),
            keep_daily: 7,
            keep_weekly: 4,
            targets: Vec::new(),
        }
    }
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct BackupTarget {
    pub kind: BackupTargetKind,
    #[serde(default)]
    pub path: PathBuf,
    #[serde(default)]
    pub bucket: String,
    #[serde(default)]
    pub endpoint: String,
    #[serde(default)]
    pub region: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BackupTargetKind {
    Local,
    S3,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityTxtConfig {
    pub contact: String,
    pub expires_days: u32,
    pub policy: String,
    pub preferred_languages: String,
}

impl Default for SecurityTxtConfig {
    fn default() -> Self {
        Self {
            contact: String::new(),
            expires_days: 365,
            policy: String::new(),
            preferred_languages: "en".into(),
        }
    }
}

/// A `YYYY-MM-DD` day as the unix time of its midnight UTC.
pub fn parse_day(s: &str) -> Option<i64> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), &fmt)
        .ok()
        .map(|d| d.midnight().assume_utc().unix_timestamp())
}

/// Outgoing mail (invitations). With no `smtp_host`, mail cannot be sent,
/// except under `serve --dev`, where it goes to `outbox_file` (default
/// `<data_dir>/dev-outbox.txt`) for the developer to read.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub smtp_host: String,
    pub smtp_port: u16,
    /// `starttls` (default), `tls` (implicit TLS, usually port 465) or
    /// `none` (only for a relay on the same host).
    pub smtp_tls: SmtpTls,
    pub username: String,
    pub password: String,
    pub from: String,
    pub outbox_file: PathBuf,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    Starttls,
    Tls,
    None,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_tls: SmtpTls::Starttls,
            username: String::new(),
            password: String::new(),
            from: "Aura <aura@localhost>".into(),
            outbox_file: PathBuf::new(),
        }
    }
}

/// Deleting workspaces and accounts: how long the grace period lasts before
/// the workspace's key is destroyed (or the account deleted), and how often
/// the server looks for deletions that are due.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LifecycleConfig {
    pub workspace_grace_days: u32,
    pub account_grace_days: u32,
    pub purge_interval_secs: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            workspace_grace_days: 14,
            account_grace_days: 14,
            purge_interval_secs: 3600,
        }
    }
}
