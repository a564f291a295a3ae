//! The operator's certificate and key (PEM), swapped atomically on reload: a
//! bad new pair is refused and the current one keeps serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::error::{Error, Result};

#[derive(Debug)]
pub struct FilesResolver {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
}

pub fn load_pair(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey> {
    let read = |p: &Path| {
        std::fs::read(p).map_err(|e| Error::Config(format!("cannot read {}: {e}", p.display())))
    };
    let certs = rustls_pemfile::certs(&mut read(cert_file)?.as_slice())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| {
            Error::Config(format!(
                "{} is not a PEM certificate chain",
                cert_file.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{} holds no certificate",
            cert_file.display()
        )));
    }
    let key = rustls_pemfile::private_key(&mut read(key_file)?.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| Error::Config(format!("{} holds no private key", key_file.display())))?;
    let signing = super::provider()
        .key_provider
        .load_private_key(key)
        .map_err(|e| Error::Config(format!("{}: {e}", key_file.display())))?;
    Ok(CertifiedKey::new(certs, signing))
}

impl FilesResolver {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<Self> {
        let pair = load_pair(cert_file, key_file)?;
        Ok(Self {
            cert_file: cert_file.to_owned(),
            key_file: key_file.to_owned(),
            current: RwLock::new(Arc::new(pair)),
        })
    }

    /// Re-reads both files; on error the current pair stays.
    pub fn reload(&self) -> Result<()> {
        let pair = load_pair(&self.cert_file, &self.key_file)?;
        let mut cur = self
            .current
            .write()
            .map_err(|_| Error::internal("certificate lock poisoned"))?;
        *cur = Arc::new(pair);
        Ok(())
    }

    /// The newest modification time of the two files, for change detection.
    pub fn modified(&self) -> Option<std::time::SystemTime> {
        let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        m(&self.cert_file).max(m(&self.key_file))
    }
}

impl ResolvesServerCert for FilesResolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}
