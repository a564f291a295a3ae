//! Taking a backup: consistent snapshots (`VACUUM INTO`, while writes go on),
//! a manifest, then tar → zstd → age into the target, atomically; and the
//! reverse, with every check the drill and restore rely on.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use rand::RngCore;
use serde_json::json;

use super::target::{BackupMeta, LocalTarget, sha256_file};
use super::{FORMAT_VERSION, FileEntry, Manifest, ManifestWorkspace};
use crate::access::SystemTask;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::{Error, Result};
use crate::store::Detached;
use crate::store::control;

pub struct RunSummary {
    pub id: String,
    pub path: PathBuf,
    pub size: u64,
    pub workspaces: usize,
    pub secs: f64,
}

/// Wrapped workspace keys, kept out of the archives (see the module docs).
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Escrow {
    pub created_at: i64,
    pub keys: Vec<EscrowKey>,
    /// Workspaces whose keys were destroyed: a restore skips them knowingly.
    #[serde(default)]
    pub shredded: Vec<String>,
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct EscrowKey {
    pub workspace: String,
    pub key_id: u32,
    pub wrapped_hex: String,
}

fn new_id(now: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(now).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let mut r = [0u8; 3];
    rand::rngs::OsRng.fill_bytes(&mut r);
    format!(
        "b-{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z-{}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        time::OffsetDateTime::now_utc().millisecond(),
        hex::encode(r)
    )
}

pub fn table_counts(path: &Path) -> Result<std::collections::BTreeMap<String, i64>> {
    let conn = Detached::read_only(path)?;
    crate::store::backup::table_counts(&conn)
}

pub(crate) fn encrypt_to(
    recipients: &[age::x25519::Recipient],
    out: &mut std::fs::File,
    write: impl FnOnce(&mut dyn Write) -> Result<()>,
) -> Result<()> {
    let enc = age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
        .map_err(|e| Error::internal(format!("age: {e}")))?;
    let mut w = enc.wrap_output(out)?;
    write(&mut w)?;
    w.finish()?;
    Ok(())
}

/// Takes one backup into the local target.
pub fn run(deps: super::Deps<'_>, progress: &dyn Fn(&str)) -> Result<RunSummary> {
    let started = std::time::Instant::now();
    let cfg = &deps.config;
    let recipients = super::recipients(cfg)?;
    let target = LocalTarget::from_config(cfg)?;
    let now = deps.clock.unix();
    let id = new_id(now);
    let scratch = cfg.data_dir.join("backups").join(format!(".work-{id}"));
    crate::store::create_private_dir(&scratch)?;
    let result = (|| {
        // Every chain's head is signed first, so the manifest's anchor names
        // the newest entries the archive holds.
        progress("sign the audit chains' heads");
        crate::audit::chains::checkpoint_all(deps.control, deps.tenants, "backup", now)?;
        progress("snapshot control.db");
        let control_copy = scratch.join("control.db");
        deps.control
            .db
            .read(|c| crate::store::vacuum_into_private(c, &control_copy))?;
        let audit_anchor = crate::audit::anchor::Anchor::current(
            &Detached::read_only(&control_copy)?,
            &deps.control.signer.public_key(),
        )?;
        // The wrapped workspace keys leave the archive; they go to the escrow.
        let escrow = super::escrow::current(deps.control, now)?;
        {
            let c = Detached::read_write(&control_copy)?;
            crate::store::backup::strip_workspace_keys(&c)?;
        }
        let ids = deps.control.db.read(control::workspace_ids)?;
        let mut workspaces = Vec::new();
        let mut file_paths = Vec::new();
        for (n, ws) in ids.iter().enumerate() {
            progress(&format!(
                "snapshot workspace {} of {}: {ws}",
                n + 1,
                ids.len()
            ));
            // One workspace open at a time (bounded memory at 10,000).
            let t = deps
                .tenants
                .visit(deps.control, &SystemTask::Backup.grant(*ws))?;
            let dest = scratch.join("tenants").join(ws.to_string()).join("data.db");
            t.read_blocking(|c, _| crate::store::vacuum_into_private(c, &dest))?;
            // The sealed files the snapshot's rows name (a file's bytes
            // never change once placed, so linking is a snapshot).
            let linked = crate::store::files::snapshot_into(
                &Detached::read_only(&dest)?,
                &t.files(),
                &scratch.join("tenants").join(ws.to_string()),
            )?;
            file_paths.extend(
                linked
                    .into_iter()
                    .map(|f| format!("tenants/{ws}/files/{f}")),
            );
            workspaces.push(ManifestWorkspace {
                id: ws.to_string(),
                key_ids: escrow
                    .keys
                    .iter()
                    .filter(|k| k.workspace == ws.to_string())
                    .map(|k| k.key_id)
                    .collect(),
            });
        }
        let mut rel: Vec<String> = vec!["control.db".into()];
        rel.extend(ids.iter().map(|w| format!("tenants/{w}/data.db")));
        rel.extend(file_paths);
        let files = rel
            .iter()
            .map(|r| {
                let p = scratch.join(r);
                Ok(FileEntry {
                    path: r.clone(),
                    sha256: sha256_file(&p)?,
                    size: std::fs::metadata(&p)?.len(),
                    tables: if is_sealed_file(r) {
                        Default::default()
                    } else {
                        table_counts(&p)?
                    },
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let manifest = Manifest {
            format: FORMAT_VERSION,
            id: id.clone(),
            aura_version: env!("CARGO_PKG_VERSION").into(),
            created_at: now,
            region: target.region.clone(),
            residency: cfg.file.residency.clone(),
            workspaces,
            files,
            audit_anchor: Some(audit_anchor),
        };
        progress("compress and encrypt");
        let manifest_bytes = serde_json::to_vec_pretty(&manifest)?;
        let path = target.put(&format!("{id}.tar.zst.age"), |f| {
            encrypt_to(&recipients, f, |w| {
                let mut z = zstd::Encoder::new(w, 3)?;
                {
                    let mut tar = tar::Builder::new(&mut z);
                    let mut h = tar::Header::new_gnu();
                    h.set_size(manifest_bytes.len() as u64);
                    h.set_mode(0o600);
                    h.set_mtime(now.max(0) as u64);
                    h.set_cksum();
                    tar.append_data(&mut h, "manifest.json", manifest_bytes.as_slice())?;
                    for r in &rel {
                        tar.append_path_with_name(scratch.join(r), r)?;
                    }
                    tar.finish()?;
                }
                z.finish()?;
                Ok(())
            })
        })?;
        let escrow_bytes = serde_json::to_vec(&escrow)?;
        target.put(super::target::ESCROW, |f| {
            encrypt_to(&recipients, f, |w| Ok(w.write_all(&escrow_bytes)?))
        })?;
        let size = std::fs::metadata(&path)?.len();
        let meta = BackupMeta {
            id: id.clone(),
            created_at: now,
            size,
            sha256: sha256_file(&path)?,
            workspaces: ids.len(),
            region: target.region.clone(),
        };
        target.put_meta(&meta)?;
        // Copies to every S3-compatible target (same residency rules).
        let remotes = super::s3::S3Target::all(cfg)?;
        if !remotes.is_empty() {
            progress("upload to S3");
            let handle = tokio::runtime::Handle::try_current()
                .map_err(|_| Error::internal("S3 upload needs the async runtime"))?;
            for r in &remotes {
                handle.block_on(async {
                    r.upload(&path, &format!("{id}.tar.zst.age")).await?;
                    r.upload(&target.escrow_path(), super::target::ESCROW)
                        .await?;
                    let meta_path = target.dir.join(format!("{id}.json"));
                    r.upload(&meta_path, &format!("{id}.json")).await
                })?;
            }
        }
        deps.control.audit_alone(
            now,
            &NewEntry::new(Actor::System, "backup.completed", &RequestMeta::default())
                .target("backup", &id)
                .after(json!({ "size": size, "workspaces": ids.len(), "region": target.region, "remote_targets": remotes.len() })),
        )?;
        Ok(RunSummary {
            id: id.clone(),
            path,
            size,
            workspaces: ids.len(),
            secs: started.elapsed().as_secs_f64(),
        })
    })();
    let _ = std::fs::remove_dir_all(&scratch);
    result
}

fn decrypting_reader(path: &Path, identity: &age::x25519::Identity) -> Result<impl Read> {
    let f = std::fs::File::open(path)
        .map_err(|e| Error::Usage(format!("cannot open {}: {e}", path.display())))?;
    let dec = age::Decryptor::new_buffered(BufReader::new(f)).map_err(|e| {
        Error::Usage(format!(
            "{} is not an age file ({e}); it was altered or is not an Aura backup",
            path.display()
        ))
    })?;
    dec.decrypt(std::iter::once(identity as &dyn age::Identity))
        .map_err(|e| Error::Usage(format!("{} does not decrypt with this identity ({e}); use the identity matching `backup.recipients`", path.display())))
}

fn allowed(path: &str) -> bool {
    if path == "manifest.json" || path == "control.db" {
        return true;
    }
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), ["tenants", id, "data.db"] if id.parse::<crate::ids::WorkspaceId>().is_ok())
        || is_sealed_file(path)
}

/// `tenants/<id>/files/<file id>`: a sealed attached file (not a database).
pub fn is_sealed_file(path: &str) -> bool {
    let parts: Vec<&str> = path.split('/').collect();
    matches!(parts.as_slice(), ["tenants", id, "files", f]
        if id.parse::<crate::ids::WorkspaceId>().is_ok() && crate::model::file_ref::is_file_id(f))
}

/// Decrypts and unpacks an archive into `dir`, then checks every file against
/// the manifest (presence, size, SHA-256, nothing extra). Any tampering with
/// the ciphertext fails the age authentication before a byte is used.
pub fn unpack(
    archive: &Path,
    identity: &age::x25519::Identity,
    dir: &Path,
    expected_id: Option<&str>,
) -> Result<Manifest> {
    let bad = |m: String| Error::Usage(format!("backup rejected: {m}"));
    crate::store::create_private_dir(dir)?;
    let reader = decrypting_reader(archive, identity)?;
    let z = zstd::Decoder::new(reader).map_err(|e| bad(format!("not zstd inside: {e}")))?;
    let mut tar = tar::Archive::new(z);
    let mut seen = Vec::new();
    let entries = tar
        .entries()
        .map_err(|e| bad(format!("not a tar inside: {e}")))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("damaged archive: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("bad path: {e}")))?
            .to_string_lossy()
            .to_string();
        if entry.header().entry_type().is_dir() {
            let p = path.trim_end_matches('/');
            let parts: Vec<&str> = p.split('/').collect();
            let ok = matches!(parts.as_slice(), ["tenants"])
                || matches!(parts.as_slice(), ["tenants", id] | ["tenants", id, "files"] if id.parse::<crate::ids::WorkspaceId>().is_ok());
            if ok {
                continue;
            }
            return Err(bad(format!("unexpected directory `{path}` in the archive")));
        }
        if !allowed(&path) || !entry.header().entry_type().is_file() {
            return Err(bad(format!("unexpected file `{path}` in the archive")));
        }
        let dest = dir.join(&path);
        if let Some(p) = dest.parent() {
            crate::store::create_private_dir(p)?;
        }
        let mut out = crate::store::create_private_file(&dest)?;
        std::io::copy(&mut entry, &mut out).map_err(|e| {
            crate::error::or_disk_full(e, |e| bad(format!("damaged archive ({path}): {e}")))
        })?;
        out.sync_all()?;
        seen.push(path);
    }
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).map_err(|_| bad("no manifest".into()))?,
    )
    .map_err(|e| bad(format!("unreadable manifest: {e}")))?;
    if manifest.format != super::FORMAT_VERSION {
        return Err(bad(format!(
            "format {} is not supported by this version",
            manifest.format
        )));
    }
    if let Some(id) = expected_id {
        if manifest.id != id {
            return Err(bad(format!(
                "the archive named {id} holds backup {} (a swapped file)",
                manifest.id
            )));
        }
    }
    for f in &manifest.files {
        let p = dir.join(&f.path);
        if !p.exists() {
            return Err(bad(format!(
                "{} is listed in the manifest but missing",
                f.path
            )));
        }
        if std::fs::metadata(&p)?.len() != f.size || sha256_file(&p)? != f.sha256 {
            return Err(bad(format!(
                "{} does not match its SHA-256 in the manifest",
                f.path
            )));
        }
    }
    for s in &seen {
        if s != "manifest.json" && !manifest.files.iter().any(|f| &f.path == s) {
            return Err(bad(format!("{s} is not in the manifest")));
        }
    }
    Ok(manifest)
}

/// Decrypts the key escrow next to the archives.
pub fn read_escrow(path: &Path, identity: &age::x25519::Identity) -> Result<Escrow> {
    let mut r = decrypting_reader(path, identity)?;
    let mut buf = Vec::new();
    r.read_to_end(&mut buf)?;
    serde_json::from_slice(&buf).map_err(|e| Error::Usage(format!("key escrow unreadable: {e}")))
}

#[cfg(test)]
#[path = "archive_proptests.rs"]
pub(crate) mod proptests;
