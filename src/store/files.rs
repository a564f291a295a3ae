//! Attached files in one workspace: the `files` rows (what each belongs to,
//! its size, its key sealed by the workspace key) and the sealed bytes under
//! `tenants/<id>/files/`. A file is written to `files/tmp/` first (sealed
//! already, so nothing of it is ever plaintext on disk), synced, then
//! renamed into place inside the transaction that adds its row; a failed
//! upload removes its temporary file.

use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::{OptionalExtension, params};

use super::blobs::{Blobs, S3Sink};
use super::handle::{Sql, TOKEN};
use super::tenant::TenantTx;
use crate::crypto::file_seal::{FileBinding, OpeningReader, SealingWriter};
use crate::crypto::keys::KeyBytes;
use crate::crypto::{Sealer, Slot};
use crate::error::{Error, Result};
use crate::model::file_ref::is_file_id;

/// The directory of a workspace's local files (`tenants/<id>/files`).
pub fn dir(tenant_dir: &Path) -> PathBuf {
    tenant_dir.join("files")
}

/// Where a local sealed file lives; `None` for an id that is not a file id
/// (it could not name a path inside the directory).
pub fn path(tenant_dir: &Path, file: &str) -> Option<PathBuf> {
    is_file_id(file).then(|| dir(tenant_dir).join(file))
}

fn key_slot_row(record: &str, field: &str, file: &str) -> String {
    format!("{record}/{field}/{file}")
}

/// Where an upload's sealed bytes go as they are written.
enum Sink {
    /// `files/tmp/<id>.part`, renamed into place by `place`.
    Local(BufWriter<File>),
    /// A multipart upload to the file's final object.
    S3(Box<BufWriter<S3Sink>>),
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Local(w) => w.write(data),
            Sink::S3(w) => w.write(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sink::Local(w) => w.flush(),
            Sink::S3(w) => w.flush(),
        }
    }
}

/// An upload being sealed into `files/tmp/<id>.part` (or, on S3, a
/// multipart upload). Dropped before `place`, it removes that file (aborts
/// the multipart upload, or removes the finished object); dropped after
/// `place` but before `committed` (its transaction failed), it removes the
/// placed file.
pub struct Upload {
    pub file_id: String,
    key: KeyBytes,
    blobs: Blobs,
    tmp: Option<PathBuf>,
    writer: Option<SealingWriter<Sink>>,
    /// The finished S3 upload (its object exists until `committed`).
    uploaded: Option<S3Sink>,
    placed: Option<PathBuf>,
    committed: bool,
}

impl Upload {
    pub fn start(blobs: &Blobs, binding: FileBinding<'_>) -> Result<Self> {
        let key = KeyBytes::random();
        let (sink, tmp) = match blobs.s3_sink(binding.file) {
            Some(s3) => (
                Sink::S3(Box::new(BufWriter::with_capacity(256 * 1024, s3))),
                None,
            ),
            None => {
                let tmp_dir = blobs.local_dir().join("tmp");
                super::create_private_dir(&tmp_dir)?;
                clear_stale_uploads(&tmp_dir);
                let tmp = tmp_dir.join(format!("{}.part", binding.file));
                let f = super::create_private_file(&tmp)?;
                (
                    Sink::Local(BufWriter::with_capacity(256 * 1024, f)),
                    Some(tmp),
                )
            }
        };
        let mut up = Self {
            file_id: binding.file.to_owned(),
            key,
            blobs: blobs.clone(),
            tmp,
            writer: None,
            uploaded: None,
            placed: None,
            committed: false,
        };
        up.writer = Some(SealingWriter::new(&up.key, binding, sink)?);
        Ok(up)
    }

    pub fn write_all(&mut self, data: &[u8]) -> Result<()> {
        match self.writer.as_mut() {
            Some(w) => Ok(w.write_all(data)?),
            None => Err(Error::internal("upload already finished")),
        }
    }

    /// Seals the last chunk and syncs the temporary file to disk (on S3:
    /// completes the multipart upload).
    pub fn finish(&mut self) -> Result<()> {
        let w = self
            .writer
            .take()
            .ok_or_else(|| Error::internal("upload already finished"))?;
        match w.finish()? {
            Sink::Local(b) => {
                let f = b.into_inner().map_err(|e| Error::Io(e.into_error()))?;
                f.sync_all()?;
            }
            Sink::S3(b) => {
                let mut s3 = (*b).into_inner().map_err(|e| Error::Io(e.into_error()))?;
                s3.finish()?;
                self.uploaded = Some(s3);
            }
        }
        Ok(())
    }

    /// In the transaction that adds the file to its record: the row, with
    /// the file key sealed by the workspace key, and the file renamed into
    /// place (its directory synced; on S3 the object is in place already).
    /// If the transaction then fails, dropping the upload removes the file.
    pub fn place(
        &mut self,
        t: &TenantTx<'_>,
        record: &str,
        field: &str,
        size: u64,
        now: i64,
    ) -> Result<()> {
        if self.writer.is_some() {
            return Err(Error::internal("upload not finished"));
        }
        let key_ct = t.sealer.seal(
            Slot::new("files", &key_slot_row(record, field, &self.file_id), "key"),
            self.key.expose(),
        )?;
        t.tx.execute(
            "INSERT INTO files (id, record_id, field_id, size, key_ct, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                self.file_id,
                record,
                field,
                i64::try_from(size).unwrap_or(i64::MAX),
                key_ct,
                now
            ],
        )?;
        if let Some(tmp) = &self.tmp {
            let to = self
                .blobs
                .local_path(&self.file_id)
                .ok_or(Error::NotFound("file"))?;
            std::fs::rename(tmp, &to)?;
            self.placed = Some(to.clone());
            crate::dirsync::sync_parent(&to)?;
        }
        Ok(())
    }

    /// The transaction that placed the file has committed: it stays.
    pub fn committed(mut self) {
        self.committed = true;
    }
}

/// Temporary files older than any request may run: uploads cut short by a
/// crash (a running upload removes its own on failure).
fn clear_stale_uploads(tmp_dir: &Path) {
    let stale = std::time::Duration::from_secs(15 * 60);
    let Ok(entries) = std::fs::read_dir(tmp_dir) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > stale);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        if self.committed {
            return;
        }
        // An unfinished S3 upload aborts as its writer drops.
        drop(self.writer.take());
        if let Some(s3) = self.uploaded.as_mut() {
            s3.discard();
        }
        match (&self.placed, &self.tmp) {
            (Some(p), _) => {
                let _ = std::fs::remove_file(p);
            }
            (None, Some(tmp)) => {
                let _ = std::fs::remove_file(tmp);
            }
            (None, None) => {}
        }
    }
}

/// Bytes of files the workspace holds (the quota counts plaintext bytes).
pub fn used_bytes(c: &dyn Sql) -> Result<u64> {
    let c = c.conn(TOKEN);
    let n: i64 = c.query_row("SELECT coalesce(sum(size), 0) FROM files", [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// How many files the workspace holds.
pub fn count(c: &dyn Sql) -> Result<i64> {
    let c = c.conn(TOKEN);
    Ok(c.query_row("SELECT count(*) FROM files", [], |r| r.get(0))?)
}

/// A file's key, if the file belongs to that record and field.
pub fn file_key(
    c: &dyn Sql,
    sealer: &Sealer,
    record: &str,
    field: &str,
    file: &str,
) -> Result<Option<KeyBytes>> {
    let c = c.conn(TOKEN);
    let ct: Option<Vec<u8>> = c
        .query_row(
            "SELECT key_ct FROM files WHERE id = ?1 AND record_id = ?2 AND field_id = ?3",
            params![file, record, field],
            |r| r.get(0),
        )
        .optional()?;
    let Some(ct) = ct else { return Ok(None) };
    let plain = sealer.open(
        Slot::new("files", &key_slot_row(record, field, file), "key"),
        &ct,
    )?;
    Ok(Some(KeyBytes::from_slice(&plain)?))
}

/// Opens a placed file for reading with its key.
pub fn open(
    blobs: &Blobs,
    key: &KeyBytes,
    binding: FileBinding<'_>,
) -> Result<OpeningReader<Box<dyn Read + Send>>> {
    let src = blobs.reader(binding.file)?;
    Ok(OpeningReader::new(key, binding, src)?)
}

/// Ids of the files a record holds (every field).
pub fn files_of_record(c: &dyn Sql, record: &str) -> Result<Vec<String>> {
    let c = c.conn(TOKEN);
    let mut stmt = c.prepare_cached("SELECT id FROM files WHERE record_id = ?1 ORDER BY id")?;
    let rows = stmt.query_map([record], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Which of `ids` still exist for that record.
pub fn existing(c: &dyn Sql, record: &str, ids: &[String]) -> Result<Vec<String>> {
    let all = files_of_record(c, record)?;
    Ok(ids.iter().filter(|i| all.contains(i)).cloned().collect())
}

/// Drops the rows of `ids` (of that record); the caller removes the bytes
/// with `remove_blobs` once the transaction has committed.
pub fn forget(t: &TenantTx<'_>, record: &str, ids: &[String]) -> Result<()> {
    let mut stmt =
        t.tx.prepare_cached("DELETE FROM files WHERE id = ?1 AND record_id = ?2")?;
    for id in ids {
        stmt.execute(params![id, record])?;
    }
    Ok(())
}

/// Removes files' sealed bytes (after the rows are gone), then syncs the
/// directory. A file that is already gone is no error.
pub fn remove_blobs(blobs: &Blobs, ids: &[String]) -> Result<()> {
    blobs.remove(ids)
}

/// `remove_blobs` from async code: on a bucket each delete is a network
/// call, so it runs on the blocking pool, not on an async worker.
pub async fn remove_blobs_async(blobs: Blobs, ids: Vec<String>) -> Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    tokio::task::spawn_blocking(move || remove_blobs(&blobs, &ids))
        .await
        .map_err(|_| Error::internal("file removal stopped"))?
}

/// Every file id the database `c` names.
pub fn all_ids(c: &dyn Sql) -> Result<Vec<String>> {
    let conn = c.conn(TOKEN);
    let mut stmt = conn.prepare("SELECT id FROM files ORDER BY id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Links (or copies, across file systems, or downloads from S3) into
/// `<to>/files/` every sealed file the database `c` (a backup's snapshot,
/// a move's) names, from the live storage; returns their ids. A file
/// removed since the snapshot is left out (its removal committed after it;
/// a restore lists a file it cannot serve, which answers 404).
pub fn snapshot_into(c: &dyn Sql, blobs: &Blobs, to: &Path) -> Result<Vec<String>> {
    let ids = all_ids(c)?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(dest) = path(to, &id) else {
            continue;
        };
        if out.is_empty() {
            super::create_private_dir(&dir(to))?;
        }
        let copied = match blobs.local_path(&id) {
            Some(from) if !blobs.is_remote() => std::fs::hard_link(&from, &dest)
                .or_else(|_| std::fs::copy(&from, &dest).map(|_| ()))
                .map_err(Error::from),
            _ => blobs.copy_to(&id, &dest),
        };
        match copied {
            Ok(()) => out.push(id),
            Err(Error::NotFound(_)) => {
                tracing::warn!(file = %id, "a file removed since the snapshot is not in the copy");
            }
            Err(Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                tracing::warn!(file = %id, "a file removed since the snapshot is not in the copy");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// Puts into the live storage the sealed files of a restored snapshot
/// (`from` holds `files/`) that it lacks; ids are never reused, so a file
/// present is the same file.
pub fn restore_from(from: &Path, blobs: &Blobs) -> Result<usize> {
    let Ok(entries) = std::fs::read_dir(dir(from)) else {
        return Ok(0);
    };
    let mut n = 0;
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_file_id(&name) && !blobs.exists(&name)? {
            blobs.put_from(&entry.path(), &name)?;
            n += 1;
        }
    }
    if n > 0 && !blobs.is_remote() {
        crate::dirsync::sync_parent(&blobs.local_dir().join("x"))?;
    }
    Ok(n)
}

/// On S3 storage, moves into the bucket the sealed files found in the
/// workspace's local `files/` (a full restore writes them there; an
/// appliance switching to S3 has them there), then removes the local
/// copies. Returns how many moved.
pub fn adopt_local(blobs: &Blobs) -> Result<usize> {
    if !blobs.is_remote() {
        return Ok(0);
    }
    let Ok(entries) = std::fs::read_dir(blobs.local_dir()) else {
        return Ok(0);
    };
    let mut n = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_file_id(&name) {
            continue;
        }
        if !blobs.exists(&name)? {
            blobs.put_from(&entry.path(), &name)?;
        }
        std::fs::remove_file(entry.path())?;
        n += 1;
    }
    Ok(n)
}

/// Removes every file of a workspace whose key is destroyed (in a bucket;
/// local files go with the workspace's directory).
pub fn remove_all(blobs: &Blobs) -> Result<usize> {
    blobs.remove_all()
}

/// Removes sealed files no row names (a crash between a commit and the
/// removal of what it dropped; the files of a state a restore replaced)
/// and, with `uploads_too` (at startup, when none can be running), the
/// temporary files of uploads cut short. On S3, an object younger than 15
/// minutes is left unless `uploads_too` (it may be an upload whose
/// transaction has not committed yet); a later sweep takes it. Returns how
/// many went.
pub fn sweep(c: &dyn Sql, blobs: &Blobs, uploads_too: bool) -> Result<usize> {
    let conn = c.conn(TOKEN);
    let mut known = conn.prepare_cached("SELECT 1 FROM files WHERE id = ?1")?;
    if blobs.is_remote() {
        let young = std::time::Duration::from_secs(15 * 60);
        let mut gone = Vec::new();
        for (name, age) in blobs.list_s3()? {
            if !known.exists([&name])? && (uploads_too || age > young) {
                gone.push(name);
            }
        }
        blobs.remove(&gone)?;
        return Ok(gone.len());
    }
    let d = blobs.local_dir();
    if !d.is_dir() {
        return Ok(0);
    }
    let mut gone = 0;
    for entry in std::fs::read_dir(&d)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_file_id(&name) && !known.exists([&name])? {
            std::fs::remove_file(entry.path())?;
            gone += 1;
        }
    }
    if let Some(tmp) = uploads_too
        .then(|| std::fs::read_dir(d.join("tmp")).ok())
        .flatten()
    {
        for entry in tmp.flatten() {
            let _ = std::fs::remove_file(entry.path());
            gone += 1;
        }
    }
    Ok(gone)
}
