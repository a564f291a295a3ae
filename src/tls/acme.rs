//! ACME through rustls-acme. The account key and certificates are cached in
//! `<data_dir>/acme/`, sealed under the platform data key, so a restart
//! reuses the cached certificate without a new order, and a copy of the data
//! dir alone reveals no private key. When the CA is unreachable the current
//! certificate keeps serving; the failure is logged and kept in the status.

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use rustls::{ClientConfig, RootCertStore};
use rustls_acme::{AccountCache, AcmeConfig, CertCache, UseChallenge};
use sha2::{Digest, Sha256};
use tokio_stream::StreamExt;

use super::{SharedStatus, TlsSetup};
use crate::config::{AcmeChallenge, Config};
use crate::crypto::Slot;
use crate::error::{Error, Result};
use crate::store::control::PlatformKeys;

/// Files in `<data_dir>/acme/`, each sealed and bound to its own name.
pub struct SealedCache {
    dir: PathBuf,
    keys: Arc<PlatformKeys>,
}

impl SealedCache {
    fn name(kind: &str, parts: &[String], directory_url: &str) -> String {
        let mut h = Sha256::new();
        h.update(kind.as_bytes());
        for p in parts {
            h.update([0]);
            h.update(p.as_bytes());
        }
        h.update([0]);
        h.update(directory_url.as_bytes());
        format!("{kind}-{}", hex::encode(&h.finalize()[..16]))
    }

    async fn load(&self, name: String) -> std::result::Result<Option<Vec<u8>>, String> {
        let path = self.dir.join(&name);
        match tokio::fs::read(&path).await {
            Ok(sealed) => self
                .keys
                .sealer
                .open(Slot::new("acme", &name, "blob"), &sealed)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    async fn store(&self, name: String, data: &[u8]) -> std::result::Result<(), String> {
        let sealed = self
            .keys
            .sealer
            .seal(Slot::new("acme", &name, "blob"), data)
            .map_err(|e| e.to_string())?;
        crate::store::create_private_dir(&self.dir).map_err(|e| e.to_string())?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let dest = self.dir.join(&name);
        // Synced before the rename and the directory after it: a power cut
        // must not leave an empty account key or certificate in its place.
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&sealed)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &dest)?;
            crate::dirsync::sync_parent(&dest)
        })
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
    }
}

#[async_trait]
impl CertCache for SealedCache {
    type EC = String;
    async fn load_cert(
        &self,
        domains: &[String],
        directory_url: &str,
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        self.load(Self::name("cert", domains, directory_url)).await
    }
    async fn store_cert(
        &self,
        domains: &[String],
        directory_url: &str,
        cert: &[u8],
    ) -> std::result::Result<(), String> {
        self.store(Self::name("cert", domains, directory_url), cert)
            .await
    }
}

#[async_trait]
impl AccountCache for SealedCache {
    type EA = String;
    async fn load_account(
        &self,
        contact: &[String],
        directory_url: &str,
    ) -> std::result::Result<Option<Vec<u8>>, String> {
        self.load(Self::name("account", contact, directory_url))
            .await
    }
    async fn store_account(
        &self,
        contact: &[String],
        directory_url: &str,
        account: &[u8],
    ) -> std::result::Result<(), String> {
        self.store(Self::name("account", contact, directory_url), account)
            .await
    }
}

/// The client config for talking to the CA: web PKI roots plus, optionally,
/// the operator's extra root (an internal CA, or a test CA).
pub fn client_config(ca_root_file: &std::path::Path) -> Result<Arc<ClientConfig>> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if !ca_root_file.as_os_str().is_empty() {
        let pem = std::fs::read(ca_root_file).map_err(|e| {
            Error::Config(format!(
                "key `tls.acme.ca_root_file`: cannot read {}: {e}",
                ca_root_file.display()
            ))
        })?;
        for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
            let cert =
                cert.map_err(|_| Error::Config(format!("{} is not PEM", ca_root_file.display())))?;
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("{}: {e}", ca_root_file.display())))?;
        }
    }
    let cfg = ClientConfig::builder_with_provider(super::provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS client setup: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

pub fn setup(config: &Config, keys: &Arc<PlatformKeys>, status: SharedStatus) -> Result<TlsSetup> {
    let t = &config.file.tls;
    let challenge = match t.acme.challenge {
        AcmeChallenge::TlsAlpn01 => UseChallenge::TlsAlpn01,
        AcmeChallenge::Http01 => UseChallenge::Http01,
    };
    let cache = SealedCache {
        dir: config.data_dir.join("acme"),
        keys: Arc::clone(keys),
    };
    let mut acme =
        AcmeConfig::new_with_client_config(t.domains.clone(), client_config(&t.acme.ca_root_file)?)
            .cache(cache)
            .contact_push(format!("mailto:{}", t.acme.contact))
            .directory(&t.acme.directory_url)
            .challenge_type(challenge)
            .state();
    let resolver = acme.resolver();
    let challenge_config = acme.challenge_rustls_config();
    let server_config = super::server_config(resolver.clone())?;
    let st = Arc::clone(&status);
    tokio::spawn(async move {
        while let Some(event) = acme.next().await {
            let mut s = match st.lock() {
                Ok(s) => s,
                Err(_) => continue,
            };
            match event {
                Ok(ok) => {
                    tracing::info!(event = ?ok, "acme");
                    s.last_event = Some(format!("{ok:?}"));
                    s.last_error = None;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "acme failed; the current certificate keeps serving");
                    s.last_error = Some(err.to_string());
                }
            }
        }
    });
    Ok(TlsSetup {
        server_config,
        challenge_config: Some(challenge_config),
        http01: Some(resolver),
        files: None,
        status,
    })
}
