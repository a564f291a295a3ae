//! Where the sealed bytes of attached files live: each workspace's
//! `tenants/<id>/files/` directory, or an S3-compatible bucket
//! (`[files] url = "s3://bucket/prefix"`) as `<prefix>/<workspace>/<file id>`.
//! Only sealed bytes ever reach either (`crypto::file_seal`), so the
//! storage's operator holds ciphertext and ids, nothing a person typed.
//!
//! S3 work runs on a small runtime of its own and the caller waits on a
//! plain channel: the callers are blocking code (the upload's reader thread,
//! backups, restores, shredding, the database writer), which may not enter
//! the server's runtime, and a wait here never stalls that runtime's tasks.

use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::ObjectStore;
use object_store::buffered::BufWriter as ObjWriter;
use object_store::path::Path as ObjPath;
use tokio::io::AsyncWriteExt;

use crate::error::{Error, Result};
use crate::model::file_ref::is_file_id;

/// One part of a multipart upload (S3's smallest but the last), and how
/// many go up at once: an upload holds at most about 3 parts in memory.
const PART: usize = 5 * 1024 * 1024;
const PARTS_IN_FLIGHT: usize = 2;

/// Where every workspace's files go on this appliance.
pub enum Storage {
    Local,
    S3(S3Files),
}

pub struct S3Files {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    rt: IoRuntime,
    /// The url, for messages.
    pub label: String,
}

fn s3_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Io(io::Error::other(format!("file storage {what}: {e}")))
}

impl Storage {
    /// `url` empty: local; else `s3://bucket/prefix` in `region`.
    pub fn from_url(url: &str, region: &str) -> Result<Storage> {
        let url = url.trim();
        if url.is_empty() {
            return Ok(Storage::Local);
        }
        let (bucket, prefix) = super::s3::parse_url(url)
            .ok_or_else(|| Error::Config(format!("key `files.url`: `{url}` is not s3://")))?;
        let store = super::s3::bucket(bucket, "", region)
            .map_err(|e| Error::Config(format!("key `files.url`: {e}")))?;
        Ok(Storage::S3(S3Files {
            store: Arc::new(store),
            prefix: prefix.to_owned(),
            rt: IoRuntime::new()?,
            label: url.to_owned(),
        }))
    }

    pub fn is_remote(&self) -> bool {
        matches!(self, Storage::S3(_))
    }

    /// Marks the bucket prefix as this appliance's (`<prefix>/.aura-owner`,
    /// created by a conditional write), or refuses when another appliance
    /// holds it: two appliances on one prefix would each sweep and shred
    /// the other's files. `owner` names the appliance (its audit key). A
    /// copy of the same appliance (a standby, a restored data dir) has the
    /// same owner and is not stopped.
    pub fn claim(&self, owner: &str) -> Result<()> {
        let Storage::S3(s) = self else {
            return Ok(());
        };
        let (store, key) = (Arc::clone(&s.store), s.key(".aura-owner"));
        let mine = owner.to_owned();
        let held = s.rt.run(async move {
            let opts = object_store::PutOptions {
                mode: object_store::PutMode::Create,
                ..Default::default()
            };
            let put = store
                .put_opts(
                    &key,
                    object_store::PutPayload::from(mine.into_bytes()),
                    opts,
                )
                .await;
            match put {
                Ok(_) => Ok(None),
                Err(object_store::Error::AlreadyExists { .. })
                | Err(object_store::Error::Precondition { .. }) => {
                    let got = store.get(&key).await?.bytes().await?;
                    Ok(Some(String::from_utf8_lossy(&got).trim().to_owned()))
                }
                Err(e) => Err(e),
            }
        })?;
        match held {
            Ok(None) => Ok(()),
            Ok(Some(other)) if other == owner => Ok(()),
            Ok(Some(other)) => Err(Error::Config(format!(
                "key `files.url`: `{}` belongs to another appliance (its .aura-owner names {other}); two appliances on one prefix would delete each other's files: give this one its own prefix",
                s.label
            ))),
            Err(e) => Err(s3_err("claim", e)),
        }
    }
}

/// A runtime for S3 calls, shut down in the background when dropped
/// (dropping a runtime inside another one's task would panic).
struct IoRuntime(Option<tokio::runtime::Runtime>);

impl IoRuntime {
    fn new() -> Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("aura-files-io")
            .enable_all()
            .build()?;
        Ok(Self(Some(rt)))
    }

    /// Runs `f` there and waits for it (blocking the calling thread).
    fn run<F>(&self, f: F) -> io::Result<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let rt = self
            .0
            .as_ref()
            .ok_or_else(|| io::Error::other("file storage stopped"))?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        rt.spawn(async move {
            let _ = tx.send(f.await);
        });
        rx.recv()
            .map_err(|_| io::Error::other("file storage task stopped"))
    }
}

impl Drop for IoRuntime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

/// One workspace's files on this appliance's storage. Cheap to clone.
#[derive(Clone)]
pub struct Blobs {
    storage: Arc<Storage>,
    /// `tenants/<id>`: the local files' directory is `files/` under it.
    dir: PathBuf,
    workspace: String,
}

impl Blobs {
    pub fn new(storage: Arc<Storage>, tenant_dir: PathBuf, workspace: String) -> Self {
        Self {
            storage,
            dir: tenant_dir,
            workspace,
        }
    }

    pub fn is_remote(&self) -> bool {
        self.storage.is_remote()
    }

    /// The workspace's directory (`tenants/<id>`).
    pub fn tenant_dir(&self) -> &Path {
        &self.dir
    }

    /// The local directory of sealed files (`tenants/<id>/files`).
    pub fn local_dir(&self) -> PathBuf {
        self.dir.join("files")
    }

    /// Where a local sealed file lives; `None` for an id that is not a
    /// file id (it could not name a path inside the directory).
    pub fn local_path(&self, file: &str) -> Option<PathBuf> {
        is_file_id(file).then(|| self.local_dir().join(file))
    }

    pub fn s3(&self) -> Option<&S3Files> {
        match self.storage.as_ref() {
            Storage::S3(s) => Some(s),
            Storage::Local => None,
        }
    }

    /// The object of a file: `<prefix>/<workspace>/<file id>`.
    fn key(&self, s: &S3Files, file: &str) -> ObjPath {
        s.key(&format!("{}/{file}", self.workspace))
    }

    fn ws_prefix(&self, s: &S3Files) -> ObjPath {
        s.key(&self.workspace)
    }

    /// Starts a multipart upload of a file's sealed bytes (S3 only).
    pub fn s3_sink(&self, file: &str) -> Option<S3Sink> {
        let s = self.s3()?;
        let w = ObjWriter::with_capacity(Arc::clone(&s.store), self.key(s, file), PART)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        Some(S3Sink {
            w: Some(w),
            blobs: self.clone(),
            file: file.to_owned(),
            done: false,
        })
    }

    /// A reader of a file's sealed bytes; `NotFound("file")` when absent.
    pub fn reader(&self, file: &str) -> Result<Box<dyn Read + Send>> {
        if !is_file_id(file) {
            return Err(Error::NotFound("file"));
        }
        let Some(s) = self.s3() else {
            let p = self.local_path(file).ok_or(Error::NotFound("file"))?;
            return match std::fs::File::open(&p) {
                Ok(f) => Ok(Box::new(io::BufReader::with_capacity(128 * 1024, f))),
                Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound("file")),
                Err(e) => Err(e.into()),
            };
        };
        let (store, key) = (Arc::clone(&s.store), self.key(s, file));
        let got = s.rt.run(async move { store.get(&key).await })?;
        match got {
            Ok(g) => Ok(Box::new(S3Read {
                stream: Some(g.into_stream()),
                buf: Bytes::new(),
                blobs: self.clone(),
            })),
            Err(object_store::Error::NotFound { .. }) => Err(Error::NotFound("file")),
            Err(e) => Err(s3_err("download", e)),
        }
    }

    /// Removes files' sealed bytes; one already gone is no error.
    pub fn remove(&self, ids: &[String]) -> Result<()> {
        let Some(s) = self.s3() else {
            return remove_local(self, ids);
        };
        let keys: Vec<ObjPath> = ids
            .iter()
            .filter(|i| is_file_id(i))
            .map(|i| self.key(s, i))
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        let store = Arc::clone(&s.store);
        s.rt.run(async move {
            for k in keys {
                match store.delete(&k).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(s3_err("delete", e)),
                }
            }
            Ok(())
        })?
    }

    /// The file ids stored for this workspace, with how long ago each was
    /// written (S3 only; local listing reads the directory).
    pub fn list_s3(&self) -> Result<Vec<(String, std::time::Duration)>> {
        let Some(s) = self.s3() else {
            return Ok(Vec::new());
        };
        let (store, base) = (Arc::clone(&s.store), self.ws_prefix(s));
        let metas = s.rt.run(async move {
            let mut out = Vec::new();
            let mut l = store.list(Some(&base));
            while let Some(m) = l.next().await {
                out.push(m.map_err(|e| s3_err("listing", e))?);
            }
            Ok::<_, Error>(out)
        })??;
        let now = chrono::Utc::now();
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_owned();
                let age = (now - m.last_modified).to_std().unwrap_or_default();
                is_file_id(&name).then_some((name, age))
            })
            .collect())
    }

    /// Writes `local` (a sealed file) as file `id`, streamed in parts.
    pub fn put_from(&self, local: &Path, id: &str) -> Result<()> {
        if !is_file_id(id) {
            return Err(Error::NotFound("file"));
        }
        let Some(s) = self.s3() else {
            let dest = self.local_path(id).ok_or(Error::NotFound("file"))?;
            super::create_private_dir(&self.local_dir())?;
            std::fs::copy(local, &dest)?;
            std::fs::File::open(&dest)?.sync_all()?;
            return Ok(());
        };
        let f = std::fs::File::open(local)?;
        let mut w = ObjWriter::with_capacity(Arc::clone(&s.store), self.key(s, id), PART)
            .with_max_concurrency(PARTS_IN_FLIGHT);
        s.rt.run(async move {
            let mut f = tokio::fs::File::from_std(f);
            let copied = tokio::io::copy(&mut f, &mut w).await;
            let done = match copied {
                Ok(_) => w.shutdown().await,
                Err(e) => Err(e),
            };
            if let Err(e) = done {
                let _ = w.abort().await;
                return Err(s3_err("upload", e));
            }
            Ok(())
        })?
    }

    /// Whether file `id` is stored.
    pub fn exists(&self, id: &str) -> Result<bool> {
        let Some(s) = self.s3() else {
            return Ok(self.local_path(id).is_some_and(|p| p.exists()));
        };
        let (store, key) = (Arc::clone(&s.store), self.key(s, id));
        match s.rt.run(async move { store.head(&key).await })? {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(s3_err("lookup", e)),
        }
    }

    /// Copies file `id`'s sealed bytes to the new file `dest`, streamed.
    pub fn copy_to(&self, id: &str, dest: &Path) -> Result<()> {
        let mut r = self.reader(id)?;
        let mut out = super::create_private_file(dest)?;
        io::copy(&mut r, &mut out)?;
        out.sync_all()?;
        Ok(())
    }

    /// Removes every file of the workspace (its key is destroyed): the
    /// bucket's objects; the local directory goes with the workspace's.
    pub fn remove_all(&self) -> Result<usize> {
        let all: Vec<String> = self.list_s3()?.into_iter().map(|(n, _)| n).collect();
        self.remove(&all)?;
        Ok(all.len())
    }
}

fn remove_local(b: &Blobs, ids: &[String]) -> Result<()> {
    let mut any = None;
    for id in ids {
        if let Some(p) = b.local_path(id) {
            match std::fs::remove_file(&p) {
                Ok(()) => any = Some(p),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    if let Some(p) = any {
        crate::dirsync::sync_parent(&p)?;
    }
    Ok(())
}

impl S3Files {
    fn key(&self, rel: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }
}

/// A multipart upload of one file, written from a blocking thread. Dropped
/// before `finish`, the upload is aborted (nothing of it stays in the
/// bucket); after, the object exists and `discard` removes it.
pub struct S3Sink {
    w: Option<ObjWriter>,
    blobs: Blobs,
    file: String,
    done: bool,
}

impl S3Sink {
    fn rt(&self) -> io::Result<&IoRuntime> {
        self.blobs
            .s3()
            .map(|s| &s.rt)
            .ok_or_else(|| io::Error::other("not on S3"))
    }

    /// Completes the upload: the object becomes visible, whole.
    pub fn finish(&mut self) -> Result<()> {
        let mut w = self
            .w
            .take()
            .ok_or_else(|| Error::internal("upload already finished"))?;
        let r = self.rt()?.run(async move {
            match w.shutdown().await {
                Ok(()) => Ok(()),
                Err(e) => {
                    let _ = w.abort().await;
                    Err(e)
                }
            }
        })?;
        r.map_err(|e| s3_err("upload", e))?;
        self.done = true;
        Ok(())
    }

    /// Removes the finished object (its row did not commit).
    pub fn discard(&mut self) {
        if self.done {
            self.done = false;
            if let Err(e) = self.blobs.remove(std::slice::from_ref(&self.file)) {
                tracing::warn!(file = %self.file, error = %e, "an upload whose transaction failed is left in the bucket; the next sweep removes it");
            }
        }
    }
}

impl Write for S3Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let mut w = self
            .w
            .take()
            .ok_or_else(|| io::Error::other("upload already finished"))?;
        let chunk = data.to_vec();
        let (w, r) = self.rt()?.run(async move {
            let r = w.write_all(&chunk).await;
            (w, r)
        })?;
        self.w = Some(w);
        r.map(|()| data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for S3Sink {
    fn drop(&mut self) {
        if let Some(mut w) = self.w.take() {
            let aborted = self.rt().and_then(|rt| {
                rt.run(async move { w.abort().await.map_err(io::Error::other) })
                    .and_then(|r| r)
            });
            if let Err(e) = aborted {
                tracing::warn!(file = %self.file, error = %e, "could not abort a multipart upload; a bucket lifecycle rule removes it");
            }
        }
    }
}

/// A file's sealed bytes as they arrive from the bucket.
struct S3Read {
    stream: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    buf: Bytes,
    blobs: Blobs,
}

impl Read for S3Read {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.buf.is_empty() {
            let Some(mut s) = self.stream.take() else {
                return Ok(0);
            };
            let rt = &self
                .blobs
                .s3()
                .ok_or_else(|| io::Error::other("not on S3"))?
                .rt;
            let (s, next) = rt.run(async move {
                let n = s.next().await;
                (s, n)
            })?;
            match next {
                None => return Ok(0),
                Some(Ok(b)) => {
                    self.buf = b;
                    self.stream = Some(s);
                }
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf[..n]);
        self.buf = self.buf.slice(n..);
        Ok(n)
    }
}
