//! Backup targets. A local directory writes under a temporary name, syncs,
//! then renames, so a failed backup never replaces or deletes a good one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{BackupTargetKind, Config};
use crate::error::{Error, Result};

pub const ESCROW: &str = "keys-latest.age";

/// What `list` shows without decrypting: ids, times, sizes, counts.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct BackupMeta {
    pub id: String,
    pub created_at: i64,
    pub size: u64,
    pub sha256: String,
    pub workspaces: usize,
    pub region: String,
}

pub struct LocalTarget {
    pub dir: PathBuf,
    pub region: String,
}

impl LocalTarget {
    pub fn from_config(cfg: &Config) -> Result<LocalTarget> {
        let t = cfg
            .file
            .backup
            .targets
            .iter()
            .find(|t| t.kind == BackupTargetKind::Local);
        let (dir, region) = match t {
            Some(t) if !t.path.as_os_str().is_empty() => (
                t.path.clone(),
                if t.region.is_empty() {
                    cfg.file.region.clone()
                } else {
                    t.region.clone()
                },
            ),
            _ => (super::default_dir(cfg), cfg.file.region.clone()),
        };
        crate::store::create_private_dir(&dir)?;
        Ok(LocalTarget { dir, region })
    }

    pub fn archive_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.tar.zst.age"))
    }

    fn meta_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// Atomically places a finished file.
    pub fn put(
        &self,
        name: &str,
        write: impl FnOnce(&mut std::fs::File) -> Result<()>,
    ) -> Result<PathBuf> {
        let tmp = self.dir.join(format!(".{name}.partial"));
        let result = (|| {
            let mut f = crate::store::create_private_file(&tmp)?;
            write(&mut f)?;
            f.flush()?;
            f.sync_all()?;
            Ok::<_, Error>(())
        })();
        if let Err(e) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        let dest = self.dir.join(name);
        std::fs::rename(&tmp, &dest)?;
        crate::dirsync::sync_parent(&dest)?;
        Ok(dest)
    }

    pub fn put_meta(&self, meta: &BackupMeta) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(meta)?;
        self.put(&format!("{}.json", meta.id), |f| Ok(f.write_all(&bytes)?))?;
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<BackupMeta>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir)? {
            let p = e?.path();
            if p.extension().is_some_and(|x| x == "json") {
                if let Ok(m) = serde_json::from_slice::<BackupMeta>(&std::fs::read(&p)?) {
                    if self.archive_path(&m.id).exists() {
                        out.push(m);
                    }
                }
            }
        }
        out.sort_by_key(|m| (m.created_at, m.id.clone()));
        Ok(out)
    }

    pub fn latest(&self) -> Result<Option<BackupMeta>> {
        Ok(self.list()?.pop())
    }

    pub fn remove(&self, id: &str) -> Result<()> {
        std::fs::remove_file(self.archive_path(id))?;
        let _ = std::fs::remove_file(self.meta_path(id));
        Ok(())
    }

    pub fn escrow_path(&self) -> PathBuf {
        self.dir.join(ESCROW)
    }
}

pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Keeps the newest backup of each of the last `daily` days and of the last
/// `weekly` ISO weeks, and always the newest one.
pub fn prune(target: &LocalTarget, daily: usize, weekly: usize) -> Result<usize> {
    let mut all = target.list()?;
    all.reverse(); // newest first
    let mut keep = std::collections::HashSet::new();
    if let Some(n) = all.first() {
        keep.insert(n.id.clone());
    }
    let (mut days, mut weeks) = (Vec::new(), Vec::new());
    for m in &all {
        let t = time::OffsetDateTime::from_unix_timestamp(m.created_at)
            .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let day = t.date();
        let week = (t.year(), t.iso_week());
        if !days.contains(&day) && days.len() < daily {
            days.push(day);
            keep.insert(m.id.clone());
        }
        if !weeks.contains(&week) && weeks.len() < weekly {
            weeks.push(week);
            keep.insert(m.id.clone());
        }
    }
    let mut removed = 0;
    for m in &all {
        if !keep.contains(&m.id) {
            target.remove(&m.id)?;
            removed += 1;
        }
    }
    Ok(removed)
}
