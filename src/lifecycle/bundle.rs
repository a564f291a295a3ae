//! The move bundle: `age(zstd(tar(bundle.json, data.db, files/<id>...)))`,
//! encrypted to the target appliance's age recipient only. The attached
//! files travel sealed as they are stored (their keys are in data.db, under
//! the workspace's data keys), each listed with its SHA-256 and checked
//! before anything is imported. `bundle.json` carries what lives
//! outside the workspace's database: its name and settings, its data keys
//! (raw, so only the target's identity can read them), its members, and its
//! chain's signed checkpoints with the source's public audit key. That key
//! only says who the bundle claims to come from: age does not authenticate
//! the sender, so `move-in` checks the checkpoints against the key the
//! operator names (`--source-key`), never against this one alone.

use std::io::{BufReader, Read, Write};
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::file_ref::is_file_id;

pub const FORMAT: u32 = 1;
const MANIFEST: &str = "bundle.json";
const DATA: &str = "data.db";
const FILES: &str = "files/";

#[derive(Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub aura_version: String,
    pub created_at: i64,
    pub source_region: String,
    pub workspace: Workspace,
    pub keys: Vec<Key>,
    pub members: Vec<Member>,
    /// The source's Ed25519 audit key (hex), which signed `checkpoints`.
    pub audit_public_key: String,
    pub checkpoints: Vec<Checkpoint>,
    pub data_sha256: String,
    /// The region `move-out --target-region` named (empty from older
    /// sources, or when no rule asked for one).
    #[serde(default)]
    pub target_region: String,
    /// The source operator's `--allow-cross-region` reason, if the move
    /// leaves the workspace's region.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_region_reason: Option<String>,
    /// The sealed attached files, each as `files/<id>` in the bundle.
    #[serde(default)]
    pub files: Vec<File>,
}

/// One sealed file in the bundle.
#[derive(Serialize, Deserialize)]
pub struct File {
    pub id: String,
    pub size: u64,
    pub sha256: String,
}

#[derive(Serialize, Deserialize)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub region: String,
    pub require_mfa: bool,
}

#[derive(Serialize, Deserialize)]
pub struct Key {
    pub key_id: u32,
    pub key_hex: String,
}

impl Drop for Key {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.key_hex);
    }
}

#[derive(Serialize, Deserialize)]
pub struct Member {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    /// `person` or `service`.
    pub kind: String,
    pub role: String,
}

#[derive(Serialize, Deserialize)]
pub struct Checkpoint {
    pub seq: i64,
    pub hash: String,
    pub time: i64,
    pub reason: String,
    /// Its place in the chain of checkpoints (absent when signed before
    /// checkpoints were chained, or by an older source).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    pub signature: String,
}

/// Writes the bundle to `out` (under a temporary name, synced, then renamed;
/// mode 0600); the files `manifest` lists are read from `files_dir`.
pub fn write(
    out: &Path,
    recipient: &age::x25519::Recipient,
    manifest: &Manifest,
    data: &Path,
    files_dir: &Path,
) -> Result<u64> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "bundle".into());
    let tmp = out.with_file_name(format!(".{name}.partial"));
    let result = (|| -> Result<()> {
        let mut f = crate::store::create_private_file(&tmp)?;
        let json = serde_json::to_vec_pretty(manifest)?;
        crate::backup::archive::encrypt_to(std::slice::from_ref(recipient), &mut f, |w| {
            let mut z = zstd::Encoder::new(w, 3)?;
            {
                let mut tar = tar::Builder::new(&mut z);
                let mut h = tar::Header::new_gnu();
                h.set_size(json.len() as u64);
                h.set_mode(0o600);
                h.set_mtime(manifest.created_at.max(0) as u64);
                h.set_cksum();
                tar.append_data(&mut h, MANIFEST, json.as_slice())?;
                tar.append_path_with_name(data, DATA)?;
                for f in &manifest.files {
                    tar.append_path_with_name(files_dir.join(&f.id), format!("{FILES}{}", f.id))?;
                }
                tar.finish()?;
            }
            z.finish()?;
            Ok(())
        })?;
        f.flush()?;
        f.sync_all()?;
        Ok(())
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, out)?;
    crate::dirsync::sync_parent(out)?;
    Ok(std::fs::metadata(out)?.len())
}

/// Decrypts and unpacks a bundle into `dir` (which must be private to the
/// service): only `bundle.json`, `data.db` and `files/<file id>` are
/// accepted, and the data and every file must match the SHA-256 the
/// manifest lists (a file it does not list is refused).
pub fn unpack(bundle: &Path, identity: &age::x25519::Identity, dir: &Path) -> Result<Manifest> {
    let bad = |m: String| Error::Usage(format!("bundle rejected: {m}"));
    let f = std::fs::File::open(bundle)
        .map_err(|e| Error::Usage(format!("cannot open {}: {e}", bundle.display())))?;
    let dec = age::Decryptor::new_buffered(BufReader::new(f))
        .map_err(|e| bad(format!("not an age file ({e})")))?;
    let reader = dec
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| {
            bad(format!(
                "it does not decrypt with this identity ({e}); use the identity whose recipient was given to `move-out --to-recipient`"
            ))
        })?;
    let z = zstd::Decoder::new(reader).map_err(|e| bad(format!("not zstd inside: {e}")))?;
    let mut tar = tar::Archive::new(z);
    crate::store::create_private_dir(dir)?;
    let mut json = Vec::new();
    for entry in tar.entries().map_err(|e| bad(format!("not a tar: {e}")))? {
        let mut entry = entry.map_err(|e| bad(format!("damaged: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("bad path: {e}")))?
            .to_string_lossy()
            .to_string();
        if !entry.header().entry_type().is_file() {
            return Err(bad(format!("unexpected entry `{path}`")));
        }
        match path.as_str() {
            MANIFEST => {
                entry
                    .read_to_end(&mut json)
                    .map_err(|e| bad(format!("damaged manifest: {e}")))?;
            }
            DATA => {
                let mut out = crate::store::create_private_file(&dir.join(DATA))?;
                std::io::copy(&mut entry, &mut out).map_err(|e| {
                    crate::error::or_disk_full(e, |e| bad(format!("damaged data: {e}")))
                })?;
                out.sync_all()?;
            }
            other => match other.strip_prefix(FILES).filter(|id| is_file_id(id)) {
                Some(id) => {
                    crate::store::create_private_dir(&dir.join("files"))?;
                    let mut out = crate::store::create_private_file(&dir.join("files").join(id))?;
                    std::io::copy(&mut entry, &mut out).map_err(|e| {
                        crate::error::or_disk_full(e, |e| bad(format!("damaged file: {e}")))
                    })?;
                    out.sync_all()?;
                }
                None => return Err(bad(format!("unexpected file `{other}`"))),
            },
        }
    }
    let manifest: Manifest =
        serde_json::from_slice(&json).map_err(|e| bad(format!("unreadable manifest: {e}")))?;
    if manifest.format != FORMAT {
        return Err(bad(format!(
            "format {} is not supported by this version",
            manifest.format
        )));
    }
    let data = dir.join(DATA);
    if !data.exists() {
        return Err(bad("it holds no data.db".into()));
    }
    if crate::backup::target::sha256_file(&data)? != manifest.data_sha256 {
        return Err(bad("data.db does not match its SHA-256".into()));
    }
    check_files(&manifest, &dir.join("files")).map_err(bad)?;
    Ok(manifest)
}

/// Every listed file is there with its SHA-256, and nothing else is.
fn check_files(manifest: &Manifest, files: &Path) -> std::result::Result<(), String> {
    for f in &manifest.files {
        if !is_file_id(&f.id) {
            return Err(format!("`{}` is not a file id", f.id));
        }
        let p = files.join(&f.id);
        if !p.exists() {
            return Err(format!("file {} is listed but missing", f.id));
        }
        let sha = crate::backup::target::sha256_file(&p).map_err(|e| e.to_string())?;
        if sha != f.sha256 {
            return Err(format!("file {} does not match its SHA-256", f.id));
        }
    }
    for e in std::fs::read_dir(files).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !manifest.files.iter().any(|f| f.id == name) {
            return Err(format!("file {name} is not listed in bundle.json"));
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "bundle_proptests.rs"]
mod proptests;
