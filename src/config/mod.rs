//! Configuration: built-in defaults, then the TOML file, then `AURA_*` variables
//! (nested keys with `__`, e.g. `AURA_STORAGE__SYNCHRONOUS=normal`). Unknown keys
//! are an error that names the key, its source and, for files, the line.
//! `packaging/aura.toml` (`aura init` writes it) documents every key; a test keeps it in sync.

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

mod data_limits;
mod files;
mod integrations;
mod limits;
mod replication;
pub mod residency;
mod sections;
mod sso;
mod trust;
pub use data_limits::DataLimitsConfig;
pub use files::FilesConfig;
pub use integrations::IntegrationsConfig;
pub use limits::{LimitsConfig, RateBudget, RateConfig};
pub use replication::ReplicationConfig;
pub use residency::{OutboundConfig, OutboundHost};
pub use sections::*;
pub use sso::{PlatformConfig, PlatformSsoConfig, SsoConfig};
pub use trust::{DeclaredSubprocessor, TrustConfig, TrustLink};

pub const DEFAULT_CONFIG_PATH: &str = "/etc/aura/aura.toml";
pub const DEV_DATA_DIR: &str = "aura-dev";
pub const DEV_LISTEN: &str = "127.0.0.1:8080";
pub const DOCUMENTED_DEFAULTS: &str = include_str!("../../packaging/aura.toml");

/// Variables with the `AURA_` prefix that are not config keys.
const NON_CONFIG_ENV: &[&str] = &[
    "config",
    "master_key",
    "test_clock_offset",
    "test_power_cut_vfs",
    "test_wedge_after_ms",
    "test_commit_delay_ms",
];

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FileConfig {
    pub data_dir: PathBuf,
    pub master_key_file: PathBuf,
    pub listen: String,
    pub public_url: String,
    pub region: String,
    pub residency: String,
    pub storage: StorageConfig,
    pub auth: AuthConfig,
    pub audit: AuditConfig,
    pub tls: TlsConfig,
    pub backup: BackupConfig,
    pub metrics: MetricsConfig,
    pub security_txt: SecurityTxtConfig,
    pub trust: TrustConfig,
    pub mail: MailConfig,
    pub log: LogConfig,
    pub lifecycle: LifecycleConfig,
    pub integrations: IntegrationsConfig,
    pub sso: SsoConfig,
    pub platform: PlatformConfig,
    pub data_limits: DataLimitsConfig,
    pub files: FilesConfig,
    pub limits: LimitsConfig,
    pub outbound: OutboundConfig,
    pub replication: ReplicationConfig,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    pub synchronous: Synchronous,
    pub busy_timeout_ms: u64,
    pub tenant_pool_size: usize,
    /// A workspace database nobody has used for this long is closed (its
    /// files, its keys and caches leave memory); the next request opens it.
    pub tenant_idle_secs: u64,
}

pub use crate::model::Synchronous;

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub session_idle_minutes: u64,
    pub session_absolute_hours: u64,
    pub argon2_memory_kib: u32,
    pub argon2_iterations: u32,
    pub argon2_parallelism: u32,
    pub password_workers: usize,
    /// Lifetime of an access JWT from `/auth/token`.
    pub access_token_minutes: u64,
    /// How long a refresh-token family lives, however often it rotates.
    pub refresh_token_days: u64,
    /// Failed sign-ins one IP may make per window before it gets 429.
    pub login_failures_per_ip: u32,
    pub login_failure_window_minutes: u64,
    /// Failed sign-ins on one account before each further attempt waits
    /// 2^n seconds (0 turns the per-account backoff off).
    pub account_backoff_after: u32,
    /// Accepted invitations (which may create accounts) per IP per 30 minutes.
    pub registrations_per_ip: u32,
    /// Offer sign-in by a single-use link sent by mail (needs `[mail]`).
    pub magic_links: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Auto,
    Json,
    Pretty,
}

impl Default for FileConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("/var/lib/aura"),
            master_key_file: PathBuf::from("/etc/aura/master.key"),
            listen: DEV_LISTEN.to_owned(),
            public_url: String::new(),
            region: String::new(),
            residency: String::new(),
            storage: StorageConfig::default(),
            auth: AuthConfig::default(),
            audit: AuditConfig::default(),
            tls: TlsConfig::default(),
            backup: BackupConfig::default(),
            metrics: MetricsConfig::default(),
            security_txt: SecurityTxtConfig::default(),
            trust: TrustConfig::default(),
            mail: MailConfig::default(),
            log: LogConfig::default(),
            lifecycle: LifecycleConfig::default(),
            integrations: IntegrationsConfig::default(),
            sso: SsoConfig::default(),
            platform: PlatformConfig::default(),
            data_limits: DataLimitsConfig::default(),
            files: FilesConfig::default(),
            limits: LimitsConfig::default(),
            outbound: OutboundConfig::default(),
            replication: ReplicationConfig::default(),
        }
    }
}

impl crate::store::DbOptions {
    /// The store's connection options from `[storage]` (here, so the store
    /// need not know the config).
    pub fn from_config(c: &StorageConfig) -> Self {
        Self {
            synchronous: c.synchronous,
            busy_timeout: std::time::Duration::from_millis(c.busy_timeout_ms),
        }
    }
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            synchronous: Synchronous::Full,
            busy_timeout_ms: 5_000,
            tenant_pool_size: 256,
            tenant_idle_secs: 60,
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            session_idle_minutes: 60,
            session_absolute_hours: 12,
            argon2_memory_kib: crate::crypto::password::MIN_M_KIB,
            argon2_iterations: crate::crypto::password::MIN_T,
            argon2_parallelism: crate::crypto::password::MIN_P,
            password_workers: 2,
            access_token_minutes: 10,
            refresh_token_days: 30,
            login_failures_per_ip: 5,
            login_failure_window_minutes: 15,
            account_backoff_after: 5,
            registrations_per_ip: 3,
            magic_links: false,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Auto,
            level: "info".to_owned(),
        }
    }
}

/// What the command line contributes on top of the layers.
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    pub config_path: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
    pub dev: bool,
}

/// The validated runtime configuration, passed by reference.
#[derive(Clone, Debug)]
pub struct Config {
    pub file: FileConfig,
    pub data_dir: PathBuf,
    pub listen: SocketAddr,
    /// The URL people use to reach Aura (for links and cookie security).
    pub public_url: String,
    pub dev: bool,
    /// Parsed `tls.trusted_proxies`.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Where the file layer came from, if any (for messages).
    pub source: Option<PathBuf>,
}

impl Config {
    /// Cookies get `Secure` and the `__Host-` prefix when served over TLS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    pub fn tls_on(&self) -> bool {
        self.file.tls.mode != TlsMode::Off
    }

    pub fn control_db_path(&self) -> PathBuf {
        self.data_dir.join("control.db")
    }

    pub fn tenants_dir(&self) -> PathBuf {
        self.data_dir.join("tenants")
    }

    pub fn dev_key_path(&self) -> PathBuf {
        dev_key_path(&self.data_dir)
    }
}

pub fn dev_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-master.key")
}

/// Loads and validates. A file named explicitly must exist; otherwise the
/// default path is used when present, except in dev mode, which runs with no
/// file at all (so `--dev` never picks up an installed appliance's config,
/// its data dir or its key).
pub fn load(ov: &Overrides) -> Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(FileConfig::default()));
    let explicit = ov.config_path.clone();
    let path = explicit
        .clone()
        .or_else(|| (!ov.dev).then(|| PathBuf::from(DEFAULT_CONFIG_PATH)));
    let mut source = None;
    if let Some(path) = path.filter(|p| p.exists()) {
        fig = fig.merge(Toml::file_exact(&path));
        source = Some(path);
    } else if let Some(path) = &explicit {
        return Err(Error::Config(format!(
            "config file {} does not exist; create it with `aura init --config {}`",
            path.display(),
            path.display()
        )));
    }
    fig = fig.merge(Env::prefixed("AURA_").split("__").ignore(NON_CONFIG_ENV));
    let mut file: FileConfig = fig
        .extract()
        .map_err(|e| describe_figment_error(e, source.as_deref()))?;

    if ov.dev && ov.data_dir.is_none() && !env_sets("AURA_DATA_DIR") && !file_sets_data_dir(&source)
    {
        file.data_dir = PathBuf::from(DEV_DATA_DIR);
    }
    if let Some(d) = &ov.data_dir {
        file.data_dir = d.clone();
    }
    if let Some(l) = &ov.listen {
        file.listen = l.clone();
    }
    validate(file, ov.dev, source)
}

fn env_sets(var: &str) -> bool {
    std::env::var_os(var).is_some()
}

fn file_sets_data_dir(source: &Option<PathBuf>) -> bool {
    source
        .as_ref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .is_some_and(|t| t.lines().any(|l| l.trim_start().starts_with("data_dir")))
}

fn validate(file: FileConfig, dev: bool, source: Option<PathBuf>) -> Result<Config> {
    let listen: SocketAddr = file.listen.parse().map_err(|_| {
        Error::Config(format!(
            "key `listen`: `{}` is not an address like 127.0.0.1:8080",
            file.listen
        ))
    })?;
    if file.data_dir.as_os_str().is_empty() {
        return Err(Error::Config("key `data_dir` must not be empty".into()));
    }
    let url_ok = file.public_url.is_empty()
        || file.public_url.starts_with("http://")
        || file.public_url.starts_with("https://");
    if !url_ok {
        return Err(Error::Config(
            "key `public_url` must start with http:// or https://".into(),
        ));
    }
    if file.storage.tenant_pool_size == 0 || file.storage.tenant_idle_secs == 0 {
        return Err(Error::Config(
            "keys `storage.tenant_pool_size` and `storage.tenant_idle_secs` must be above 0".into(),
        ));
    }
    if file.storage.busy_timeout_ms == 0 {
        return Err(Error::Config(
            "key `storage.busy_timeout_ms` must be above 0".into(),
        ));
    }
    if file.auth.access_token_minutes == 0 || file.auth.refresh_token_days == 0 {
        return Err(Error::Config(
            "keys `auth.access_token_minutes` and `auth.refresh_token_days` must be above 0".into(),
        ));
    }
    if file.auth.session_idle_minutes == 0 || file.auth.session_absolute_hours == 0 {
        return Err(Error::Config(
            "keys `auth.session_idle_minutes` and `auth.session_absolute_hours` must be above 0"
                .into(),
        ));
    }
    let a = &file.audit;
    if a.retention_days < 7 || a.retention_days > 36_500 {
        return Err(Error::Config(
            "key `audit.retention_days` must be between 7 and 36500".into(),
        ));
    }
    if a.checkpoint_interval_secs == 0 || a.verify_interval_secs == 0 {
        return Err(Error::Config(
            "keys `audit.checkpoint_interval_secs` and `audit.verify_interval_secs` must be above 0".into(),
        ));
    }
    let l = &file.lifecycle;
    if l.workspace_grace_days > 3650 || l.account_grace_days > 3650 || l.purge_interval_secs == 0 {
        return Err(Error::Config(
            "keys `lifecycle.workspace_grace_days` and `lifecycle.account_grace_days` must be at most 3650, and `lifecycle.purge_interval_secs` above 0".into(),
        ));
    }
    let public_url = if file.public_url.is_empty() && file.tls.mode != TlsMode::Off {
        let port = file
            .tls
            .https_listen
            .parse::<SocketAddr>()
            .map(|a| a.port())
            .unwrap_or(443);
        let host = file.tls.domains.first().cloned().unwrap_or_default();
        if port == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{port}")
        }
    } else if file.public_url.is_empty() {
        format!("http://{listen}")
    } else {
        file.public_url.trim_end_matches('/').to_owned()
    };
    for (i, target) in file.backup.targets.iter().enumerate() {
        let what = format!(
            "{:?} {}",
            target.kind,
            if target.kind == BackupTargetKind::Local {
                target.path.display().to_string()
            } else {
                target.bucket.clone()
            }
        );
        residency::check_target(
            &format!("backup.targets[{i}]"),
            &what,
            residency::target_region(&target.region, &file.region),
            &file.residency,
        )
        .map_err(Error::Config)?;
        if target.kind == BackupTargetKind::S3
            && (target.bucket.is_empty() || target.endpoint.is_empty())
        {
            return Err(Error::Config(format!(
                "key `backup.targets[{i}]`: an s3 target needs `bucket` and `endpoint`"
            )));
        }
    }
    for (key, v) in [
        ("backup.schedule", &file.backup.schedule),
        ("backup.drill_schedule", &file.backup.drill_schedule),
    ] {
        crate::ops::schedule::Schedule::parse(v)
            .map_err(|e| Error::Config(format!("key `{key}`: {e}")))?;
    }
    for r in &file.backup.recipients {
        if r.parse::<age::x25519::Recipient>().is_err() {
            return Err(Error::Config(format!(
                "key `backup.recipients`: `{r}` is not an age recipient (age1...)"
            )));
        }
    }
    file.integrations.validate().map_err(Error::Config)?;
    sso::validate(&file.sso, &file.platform).map_err(Error::Config)?;
    residency::validate(&file.outbound).map_err(Error::Config)?;
    if !file.mail.smtp_host.is_empty()
        && let Err(e) = residency::Residency::from_file(&file).check_host_str(&file.mail.smtp_host)
    {
        return Err(Error::Config(format!(
            "key `mail.smtp_host`: the SMTP relay is refused: {e}; declare it with `[[outbound.hosts]]` in region `{}`, choose an in-region relay, or change `residency`",
            file.residency
        )));
    }
    file.data_limits.validate().map_err(Error::Config)?;
    file.files
        .validate(&file.region, &file.residency)
        .map_err(Error::Config)?;
    file.limits.validate().map_err(Error::Config)?;
    file.replication
        .validate(&file.region, &file.residency)
        .map_err(Error::Config)?;
    let t = &file.tls;
    let trusted_proxies = t
        .trusted_proxies
        .iter()
        .map(|c| {
            c.parse::<ipnet::IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    Error::Config(format!(
                        "key `tls.trusted_proxies`: `{c}` is not a CIDR like 10.0.0.0/8"
                    ))
                })
        })
        .collect::<Result<Vec<_>>>()?;
    match t.mode {
        TlsMode::Off => {}
        TlsMode::Acme => {
            if t.domains.is_empty() {
                return Err(Error::Config(
                    "key `tls.domains` must name at least one domain when tls.mode = \"acme\""
                        .into(),
                ));
            }
            if t.acme.contact.is_empty() || !t.acme.contact.contains('@') {
                return Err(Error::Config(
                    "key `tls.acme.contact` must be an email address when tls.mode = \"acme\""
                        .into(),
                ));
            }
        }
        TlsMode::Files => {
            if t.cert_file.as_os_str().is_empty() || t.key_file.as_os_str().is_empty() {
                return Err(Error::Config("keys `tls.cert_file` and `tls.key_file` are required when tls.mode = \"files\"".into()));
            }
        }
    }
    for (key, v) in [
        ("tls.https_listen", &t.https_listen),
        ("tls.http_listen", &t.http_listen),
    ] {
        if !v.is_empty() && v.parse::<SocketAddr>().is_err() {
            return Err(Error::Config(format!(
                "key `{key}`: `{v}` is not an address like 0.0.0.0:443"
            )));
        }
    }
    file.trust.validate().map_err(Error::Config)?;
    Ok(Config {
        trusted_proxies,
        data_dir: file.data_dir.clone(),
        listen,
        public_url,
        dev,
        source,
        file,
    })
}

/// Turns figment's error into one line per problem: the key, the source and,
/// when the source is a file, the line the key is on.
fn describe_figment_error(err: figment::Error, file: Option<&Path>) -> Error {
    let mut lines = Vec::new();
    for e in err {
        let key = e.path.join(".");
        let src = e
            .metadata
            .as_ref()
            .map(|m| match &m.source {
                Some(figment::Source::File(p)) => {
                    let line = find_key_line(p, e.path.last().map(String::as_str));
                    match line {
                        Some(n) => format!("{}:{n}", p.display()),
                        None => p.display().to_string(),
                    }
                }
                Some(other) => format!("{} ({other})", m.name),
                None => m.name.to_string(),
            })
            .or_else(|| file.map(|p| p.display().to_string()))
            .unwrap_or_else(|| "defaults".into());
        let kind = match &e.kind {
            figment::error::Kind::UnknownField(name, allowed) => {
                let full = if key.is_empty() || key.ends_with(name.as_str()) {
                    key.clone()
                } else {
                    format!("{key}.{name}")
                };
                lines.push(format!(
                    "unknown key `{full}` in {src}; allowed here: {}",
                    allowed.join(", ")
                ));
                continue;
            }
            other => other.to_string(),
        };
        lines.push(format!("key `{key}` in {src}: {kind}"));
    }
    Error::Config(lines.join("\n"))
}

fn find_key_line(path: &Path, key: Option<&str>) -> Option<usize> {
    let key = key?;
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .position(|l| {
            let t = l.trim_start();
            !t.starts_with('#')
                && (t.starts_with(&format!("{key} "))
                    || t.starts_with(&format!("{key}="))
                    || t.starts_with(&format!("[{key}]")))
        })
        .map(|i| i + 1)
}

#[cfg(test)]
#[path = "mod_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "load_proptests.rs"]
mod load_proptests;
