//! Where the master key comes from, in order:
//! 1. the systemd credential `$CREDENTIALS_DIRECTORY/master.key`;
//! 2. in dev mode (`--dev`, or a data dir holding a dev key): `AURA_MASTER_KEY`
//!    (64 hex characters), else `<data_dir>/dev-master.key`, created if missing;
//! 3. the configured `master_key_file`.
//!
//! Key files readable by group or others are refused.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::keys::{KeyBytes, MasterKey, parse_master_key};
use crate::config::Config;
use crate::error::{Error, Result};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyOrigin {
    Credential(PathBuf),
    File(PathBuf),
    DevEnv,
    DevFile(PathBuf),
}

impl KeyOrigin {
    pub fn is_dev(&self) -> bool {
        matches!(self, KeyOrigin::DevEnv | KeyOrigin::DevFile(_))
    }

    pub fn describe(&self) -> String {
        match self {
            KeyOrigin::Credential(p) => format!("systemd credential {}", p.display()),
            KeyOrigin::File(p) => format!("key file {}", p.display()),
            KeyOrigin::DevEnv => "AURA_MASTER_KEY (dev)".into(),
            KeyOrigin::DevFile(p) => format!("dev key {}", p.display()),
        }
    }
}

pub const DEV_WARNING: &str = "\
!!! ====================================================================== !!!
!!!  DEV MODE: the master key is kept INSIDE the data dir (dev-master.key)  !!!
!!!  or taken from AURA_MASTER_KEY. Anyone who can read the data dir can    !!!
!!!  read everything. Never use dev mode for real data.                     !!!
!!! ====================================================================== !!!";

/// True when this data dir was made by `serve --dev`.
pub fn data_dir_has_dev_key(data_dir: &Path) -> bool {
    crate::config::dev_key_path(data_dir).exists()
}

pub fn load(cfg: &Config) -> Result<(MasterKey, KeyOrigin)> {
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = PathBuf::from(dir).join("master.key");
        if p.exists() {
            return Ok((read_key_file(&p)?, KeyOrigin::Credential(p)));
        }
    }
    if cfg.dev || data_dir_has_dev_key(&cfg.data_dir) {
        if let Ok(hexkey) = std::env::var("AURA_MASTER_KEY") {
            return Ok((parse_master_key(hexkey.as_bytes())?, KeyOrigin::DevEnv));
        }
        let p = cfg.dev_key_path();
        if !p.exists() {
            crate::store::create_private_dir(&cfg.data_dir)?;
            create_key_file(&p)?;
        }
        return Ok((read_key_file(&p)?, KeyOrigin::DevFile(p)));
    }
    let p = cfg.file.master_key_file.clone();
    if !p.exists() {
        return Err(Error::Config(format!(
            "master key file {} does not exist; run `aura init` to create it, or set master_key_file",
            p.display()
        )));
    }
    Ok((read_key_file(&p)?, KeyOrigin::File(p)))
}

/// Refuses files that group or others may read, before reading a byte.
pub fn check_mode(path: &Path) -> Result<()> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Config(format!(
            "master key file {} has mode {mode:04o}, readable by group or others; run `chmod 600 {}`",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

pub fn read_key_file(path: &Path) -> Result<MasterKey> {
    check_mode(path)?;
    let raw = std::fs::read(path)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    parse_master_key(&raw).map_err(|_| {
        Error::Config(format!(
            "{} is not a master key (32 bytes or 64 hex characters)",
            path.display()
        ))
    })
}

/// Writes 32 fresh random bytes with mode 0600; never overwrites.
pub fn create_key_file(path: &Path) -> Result<()> {
    let key = KeyBytes::random();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::Config(format!("cannot create {}: {e}", path.display())))?;
    f.write_all(key.expose())?;
    f.sync_all()?;
    crate::dirsync::sync_parent(path)?;
    Ok(())
}

/// Puts a rotation's new key file in place of the configured one, atomically:
/// the old file is kept as a hard link `<name>.retired-<unix>` (the key that
/// opens backups made before the rotation), then the new file is renamed over
/// the configured path, or copied beside it and renamed when it lives on
/// another file system. Returns the retired copy's path.
pub fn install_key_file(new_file: &Path, target: &Path, now: i64) -> Result<Option<PathBuf>> {
    let io = |what: &str, e: std::io::Error| Error::Config(format!("{what}: {e}"));
    let retired = if target.exists() {
        let mut name = target.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".retired-{now}"));
        let r = target.with_file_name(name);
        if !r.exists() {
            std::fs::hard_link(target, &r)
                .map_err(|e| io(&format!("cannot keep the old key as {}", r.display()), e))?;
        }
        Some(r)
    } else {
        None
    };
    if std::fs::rename(new_file, target).is_err() {
        let bytes = std::fs::read(new_file)
            .map_err(|e| io(&format!("cannot read {}", new_file.display()), e))?;
        let mut tmp_name = target.file_name().unwrap_or_default().to_os_string();
        tmp_name.push(".tmp");
        let tmp = target.with_file_name(tmp_name);
        let _ = std::fs::remove_file(&tmp);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io(&format!("cannot create {}", tmp.display()), e))?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, target)
            .map_err(|e| io(&format!("cannot rename onto {}", target.display()), e))?;
        let _ = std::fs::remove_file(new_file);
    }
    if let Some(dir) = target.parent() {
        std::fs::File::open(dir).and_then(|d| d.sync_all())?;
    }
    Ok(retired)
}
