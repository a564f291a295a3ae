//! The replica target: a directory (`file:///...`) or an S3-compatible bucket
//! (`s3://bucket/prefix`, endpoint and credentials from the `AWS_*`
//! environment as for backup targets), both through object_store. Object
//! names are relative to the target's prefix.

use std::sync::Arc;

use futures_util::TryStreamExt;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, PutPayload};

use crate::config::Config;
use crate::error::{Error, Result};

pub struct Replica {
    store: Arc<dyn ObjectStore>,
    /// The directory of a `file://` target (its lease is written there with
    /// an exclusive `flock` and rename; object_store has no conditional update for it).
    pub local_root: Option<std::path::PathBuf>,
    prefix: String,
    /// The url, for messages.
    pub label: String,
    pub region: String,
}

fn err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("replica {what}: {e}"))
}

impl Replica {
    /// `None` when replication is off.
    pub fn from_config(cfg: &Config) -> Result<Option<Replica>> {
        let r = &cfg.file.replication;
        if !r.on() {
            return Ok(None);
        }
        let url = r.url.trim();
        let region = r.effective_region(&cfg.file.region).to_owned();
        let local_root = url.strip_prefix("file://").map(std::path::PathBuf::from);
        let (store, prefix): (Arc<dyn ObjectStore>, String) =
            if let Some(dir) = url.strip_prefix("file://") {
                crate::store::create_private_dir(std::path::Path::new(dir))?;
                let fs = object_store::local::LocalFileSystem::new_with_prefix(dir)
                    .map_err(|e| err("directory", e))?;
                (Arc::new(fs), String::new())
            } else if let Some((bucket, prefix)) = crate::store::s3::parse_url(url) {
                let s3 = crate::store::s3::bucket(bucket, "", &region)
                    .map_err(|e| err("configuration", e))?;
                (Arc::new(s3), prefix.to_owned())
            } else {
                return Err(Error::Config(format!(
                    "key `replication.url`: `{url}` is not s3:// or file://"
                )));
            };
        Ok(Some(Replica {
            store,
            local_root,
            prefix,
            label: url.to_owned(),
            region,
        }))
    }

    /// A `file://` target in `dir`, for tests.
    #[cfg(test)]
    pub fn in_dir(dir: &std::path::Path) -> Replica {
        let fs = object_store::local::LocalFileSystem::new_with_prefix(dir).unwrap();
        Replica {
            store: Arc::new(fs),
            local_root: Some(dir.to_owned()),
            prefix: String::new(),
            label: format!("file://{}", dir.display()),
            region: "EU".into(),
        }
    }

    fn path(&self, rel: &str) -> ObjPath {
        if self.prefix.is_empty() {
            ObjPath::from(rel)
        } else {
            ObjPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    fn rel(&self, p: &ObjPath) -> String {
        let s = p.as_ref();
        if self.prefix.is_empty() {
            s.to_owned()
        } else {
            s.strip_prefix(&format!("{}/", self.prefix))
                .unwrap_or(s)
                .to_owned()
        }
    }

    /// Writes a whole object; it becomes visible complete or not at all.
    pub async fn put(&self, rel: &str, bytes: Vec<u8>) -> Result<()> {
        self.store
            .put(&self.path(rel), PutPayload::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| err("upload", e))
    }

    /// An object and its version (S3: its e-tag), `None` when absent.
    pub async fn get_versioned(
        &self,
        rel: &str,
    ) -> Result<Option<(Vec<u8>, object_store::UpdateVersion)>> {
        match self.store.get(&self.path(rel)).await {
            Ok(got) => {
                let v = object_store::UpdateVersion {
                    e_tag: got.meta.e_tag.clone(),
                    version: got.meta.version.clone(),
                };
                let bytes = got.bytes().await.map_err(|e| err("download", e))?;
                Ok(Some((bytes.to_vec(), v)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err("download", e)),
        }
    }

    /// A conditional write: create when `expected` is `None` (S3
    /// `If-None-Match: *`), else replace only that version (`If-Match`).
    /// `Ok(false)`: someone else wrote first.
    pub async fn put_if(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        expected: Option<object_store::UpdateVersion>,
    ) -> Result<bool> {
        let mode = match expected {
            None => object_store::PutMode::Create,
            Some(v) => object_store::PutMode::Update(v),
        };
        let opts = object_store::PutOptions {
            mode,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&self.path(rel), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(err("conditional write", e)),
        }
    }

    pub async fn get(&self, rel: &str) -> Result<Vec<u8>> {
        let got = self
            .store
            .get(&self.path(rel))
            .await
            .map_err(|e| err("download", e))?;
        Ok(got.bytes().await.map_err(|e| err("download", e))?.to_vec())
    }

    /// Every object under `rel_prefix`, as (name, size).
    pub async fn list(&self, rel_prefix: &str) -> Result<Vec<(String, u64)>> {
        let base = self.path(rel_prefix);
        let items: Vec<object_store::ObjectMeta> = self
            .store
            .list(Some(&base))
            .try_collect()
            .await
            .map_err(|e| err("listing", e))?;
        Ok(items
            .iter()
            .map(|m| (self.rel(&m.location), m.size))
            .collect())
    }

    /// The first-level names under the root that are databases (`control`,
    /// `ws-<id>`; not `files/`, which holds attached files).
    pub async fn databases(&self) -> Result<Vec<String>> {
        let mut out = self.children("").await?;
        out.retain(|d| d == super::CONTROL || d.starts_with("ws-"));
        Ok(out)
    }

    /// The names one level below `rel_prefix` (`""`: the root), sorted.
    pub async fn children(&self, rel_prefix: &str) -> Result<Vec<String>> {
        let rel_prefix = rel_prefix.trim_end_matches('/');
        let root = if rel_prefix.is_empty() {
            (!self.prefix.is_empty()).then(|| ObjPath::from(self.prefix.as_str()))
        } else {
            Some(self.path(rel_prefix))
        };
        let l = self
            .store
            .list_with_delimiter(root.as_ref())
            .await
            .map_err(|e| err("listing", e))?;
        let mut out: Vec<String> = l
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        out.sort();
        Ok(out)
    }

    /// Uploads the file at `from` as one object, streamed (a multipart
    /// upload in 8 MiB parts, at most 4 in flight, past 8 MiB): never the
    /// whole file in memory.
    pub async fn put_file(&self, rel: &str, from: &std::path::Path) -> Result<()> {
        use tokio::io::AsyncReadExt;
        const PART: usize = 8 << 20;
        let mut f = tokio::fs::File::open(from).await?;
        let len = f.metadata().await?.len();
        if len <= PART as u64 {
            let mut buf = Vec::with_capacity(len as usize);
            f.read_to_end(&mut buf).await?;
            return self.put(rel, buf).await;
        }
        let upload = self
            .store
            .put_multipart(&self.path(rel))
            .await
            .map_err(|e| err("upload", e))?;
        let mut w = object_store::WriteMultipart::new_with_chunk_size(upload, PART);
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            if let Err(e) = w.wait_for_capacity(4).await {
                let _ = w.abort().await;
                return Err(err("upload", e));
            }
            w.write(&buf[..n]);
        }
        w.finish().await.map(|_| ()).map_err(|e| err("upload", e))
    }

    /// Downloads an object into a new private file at `to`, streamed;
    /// `Ok(false)` when there is no such object.
    pub async fn get_to_file(&self, rel: &str, to: &std::path::Path) -> Result<bool> {
        use std::io::Write;
        let got = match self.store.get(&self.path(rel)).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(err("download", e)),
        };
        let mut out = std::io::BufWriter::new(crate::store::create_private_file(to)?);
        let mut stream = got.into_stream();
        while let Some(chunk) = stream.try_next().await.map_err(|e| err("download", e))? {
            out.write_all(&chunk)?;
        }
        out.into_inner()
            .map_err(|e| Error::Io(e.into_error()))?
            .sync_all()?;
        Ok(true)
    }

    pub async fn delete(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.path(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err("delete", e)),
        }
    }

    /// Deletes every object under `rel_prefix`; returns how many.
    pub async fn delete_all(&self, rel_prefix: &str) -> Result<usize> {
        let all = self.list(rel_prefix).await?;
        for (name, _) in &all {
            self.delete(name).await?;
        }
        Ok(all.len())
    }
}
