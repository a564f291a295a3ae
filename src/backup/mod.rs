//! Backups that prove they restore. An archive is
//! `age(zstd(tar(manifest.json, control.db, tenants/<id>/data.db...)))`,
//! encrypted to the configured age recipients, so the standard `age` tool with
//! an offline identity opens it without Aura. Inside, workspace data stays
//! sealed under the workspace keys.
//!
//! Crypto-shredding: archives never contain the wrapped workspace keys. Those
//! go to one key escrow per target, `keys-latest.age`, rewritten at every
//! backup (no history). Deleting a workspace's key and rewriting the escrow
//! makes its rows in every archive unreadable. See docs/backups.md.

pub mod archive;
pub mod drill;
pub mod escrow;
pub mod restore;
pub mod s3;
pub mod target;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::clock::SharedClock;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::store::control::Control;
use crate::store::tenant::TenantPool;

/// What backups, drills and restores need from the appliance: narrow
/// values, borrowed for one run (`AppState::backup_deps`).
#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub control: &'a Arc<Control>,
    pub tenants: &'a Arc<TenantPool>,
    pub clock: &'a SharedClock,
}

pub const FORMAT_VERSION: u32 = 1;
pub const DEV_IDENTITY_FILE: &str = "dev-backup-identity.txt";

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
    pub size: u64,
    /// Rows per table, for the drill and restore checks.
    pub tables: std::collections::BTreeMap<String, i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ManifestWorkspace {
    pub id: String,
    pub key_ids: Vec<u32>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    pub aura_version: String,
    pub created_at: i64,
    pub region: String,
    pub residency: String,
    pub workspaces: Vec<ManifestWorkspace>,
    pub files: Vec<FileEntry>,
    /// The newest signed checkpoint of every chain in this backup, with the
    /// appliance's audit public key: an outside copy for `aura audit verify
    /// --anchor manifest.json` and for the drill. Absent in older backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_anchor: Option<crate::audit::anchor::Anchor>,
}

/// The age recipients to encrypt to: the configured ones, or in dev mode the
/// dev identity's (generated on first use).
pub fn recipients(cfg: &Config) -> Result<Vec<age::x25519::Recipient>> {
    if !cfg.file.backup.recipients.is_empty() {
        return cfg
            .file
            .backup
            .recipients
            .iter()
            .map(|r| {
                r.parse().map_err(|_| {
                    Error::Config(format!(
                        "key `backup.recipients`: `{r}` is not an age recipient"
                    ))
                })
            })
            .collect();
    }
    if cfg.dev || crate::crypto::master_source::data_dir_has_dev_key(&cfg.data_dir) {
        return Ok(vec![dev_identity(&cfg.data_dir)?.to_public()]);
    }
    Err(Error::Config(
        "no backup recipients: set `backup.recipients = [\"age1...\"]` (make one with `age-keygen`)".into(),
    ))
}

/// `<data_dir>/dev-backup-identity.txt`, created (0600) when missing.
pub fn dev_identity(data_dir: &Path) -> Result<age::x25519::Identity> {
    use age::secrecy::ExposeSecret;
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = data_dir.join(DEV_IDENTITY_FILE);
    if !path.exists() {
        let id = age::x25519::Identity::generate();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        writeln!(
            f,
            "# Aura DEV backup identity; public key: {}",
            id.to_public()
        )?;
        writeln!(f, "{}", id.to_string().expose_secret())?;
        f.sync_all()?;
        crate::dirsync::sync_parent(&path)?;
    }
    read_identity(&path)
}

/// Reads an age identity file (as written by `age-keygen`); `-` reads it
/// from standard input.
pub fn read_identity(path: &Path) -> Result<age::x25519::Identity> {
    let text = if path.as_os_str() == "-" {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)?;
        s
    } else {
        std::fs::read_to_string(path)
            .map_err(|e| Error::Usage(format!("cannot read identity {}: {e}", path.display())))?
    };
    text.lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .and_then(|l| l.parse().ok())
        .ok_or_else(|| {
            Error::Usage(format!(
                "{} holds no age identity (AGE-SECRET-KEY-...)",
                path.display()
            ))
        })
}

/// Where local backups go by default.
pub fn default_dir(cfg: &Config) -> PathBuf {
    cfg.data_dir.join("backups")
}

/// Applies retention to the local target and removes the same backups from
/// every S3 target. Never removes the newest.
pub fn prune_all(cfg: &Config) -> Result<usize> {
    let local = target::LocalTarget::from_config(cfg)?;
    let before: Vec<String> = local.list()?.into_iter().map(|m| m.id).collect();
    let removed = target::prune(
        &local,
        cfg.file.backup.keep_daily as usize,
        cfg.file.backup.keep_weekly as usize,
    )?;
    let after: Vec<String> = local.list()?.into_iter().map(|m| m.id).collect();
    let gone: Vec<&String> = before.iter().filter(|id| !after.contains(id)).collect();
    let remotes = s3::S3Target::all(cfg)?;
    if !gone.is_empty() && !remotes.is_empty() {
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::internal("pruning S3 needs the async runtime"))?;
        for r in &remotes {
            for id in &gone {
                handle.block_on(async {
                    r.delete(&format!("{id}.tar.zst.age")).await?;
                    r.delete(&format!("{id}.json")).await
                })?;
            }
        }
    }
    Ok(removed)
}
