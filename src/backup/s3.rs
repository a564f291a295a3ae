//! S3-compatible targets (AWS S3, MinIO, Ceph, Garage...) through object_store.
//! Uploads are multipart and become visible only when complete, so a failed
//! upload never replaces a good object. The bucket is opened by
//! `store::s3::bucket`, credentials from the `AWS_*` environment.

use std::path::Path;
use std::sync::Arc;

use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path as ObjPath;
use tokio::io::AsyncWriteExt;

use crate::config::{BackupTarget, BackupTargetKind, Config};
use crate::error::{Error, Result};

pub struct S3Target {
    pub label: String,
    pub region: String,
    store: Arc<dyn ObjectStore>,
}

fn s3_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("S3 {what}: {e}"))
}

impl S3Target {
    pub fn new(t: &BackupTarget, appliance_region: &str) -> Result<S3Target> {
        let region = if t.region.is_empty() {
            appliance_region.to_owned()
        } else {
            t.region.clone()
        };
        let store = crate::store::s3::bucket(&t.bucket, &t.endpoint, &region)
            .map_err(|e| s3_err("configuration", e))?;
        Ok(S3Target {
            label: format!("s3://{}", t.bucket),
            region,
            store: Arc::new(store),
        })
    }

    pub fn all(cfg: &Config) -> Result<Vec<S3Target>> {
        cfg.file
            .backup
            .targets
            .iter()
            .filter(|t| t.kind == BackupTargetKind::S3)
            .map(|t| S3Target::new(t, &cfg.file.region))
            .collect()
    }

    pub async fn upload(&self, local: &Path, name: &str) -> Result<()> {
        let mut file = tokio::fs::File::open(local).await?;
        let mut w = BufWriter::new(Arc::clone(&self.store), ObjPath::from(name));
        if let Err(e) = tokio::io::copy(&mut file, &mut w).await {
            let _ = w.abort().await;
            return Err(s3_err("upload", e));
        }
        w.shutdown().await.map_err(|e| s3_err("upload", e))
    }

    pub async fn download(&self, name: &str, dest: &Path) -> Result<()> {
        let got = self
            .store
            .get(&ObjPath::from(name))
            .await
            .map_err(|e| s3_err("download", e))?;
        let bytes = got.bytes().await.map_err(|e| s3_err("download", e))?;
        let tmp = dest.with_extension("partial");
        let mut f = tokio::fs::File::from_std(crate::store::create_private_file(&tmp)?);
        tokio::io::AsyncWriteExt::write_all(&mut f, &bytes).await?;
        f.sync_all().await?;
        tokio::fs::rename(&tmp, dest).await?;
        Ok(())
    }

    pub async fn exists(&self, name: &str) -> bool {
        self.store.head(&ObjPath::from(name)).await.is_ok()
    }

    pub async fn delete(&self, name: &str) -> Result<()> {
        self.store
            .delete(&ObjPath::from(name))
            .await
            .map_err(|e| s3_err("delete", e))
    }
}
