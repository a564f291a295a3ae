//! TLS: automatic certificates through ACME (rustls-acme), the operator's
//! certificate files (reloaded on SIGHUP or change), or off (plain HTTP behind
//! a trusted reverse proxy). Only TLS 1.2 and 1.3 with forward-secret AEAD
//! suites are offered (rustls' defaults). With TLS on, the plain HTTP port
//! serves only ACME http-01 answers and a redirect to HTTPS.

pub mod acceptor;
pub mod acme;
pub mod files;
pub mod redirect;

use std::sync::{Arc, Mutex};

use rustls::ServerConfig;
use rustls::server::ResolvesServerCert;

use crate::config::{Config, TlsMode};
use crate::error::{Error, Result};
use crate::store::control::PlatformKeys;

/// What the running TLS setup reports (doctor, logs, later /trust and metrics).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct TlsStatus {
    pub mode: String,
    pub last_event: Option<String>,
    pub last_error: Option<String>,
}

pub type SharedStatus = Arc<Mutex<TlsStatus>>;

/// Everything the listeners need.
pub struct TlsSetup {
    pub server_config: Arc<ServerConfig>,
    /// For TLS-ALPN-01 validation handshakes (ACME only).
    pub challenge_config: Option<Arc<ServerConfig>>,
    /// Answers http-01 challenges (ACME only).
    pub http01: Option<Arc<rustls_acme::ResolvesServerCertAcme>>,
    pub files: Option<Arc<files::FilesResolver>>,
    pub status: SharedStatus,
}

pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

pub fn server_config(resolver: Arc<dyn ResolvesServerCert>) -> Result<Arc<ServerConfig>> {
    let mut cfg = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    // HTTP/1.1 only: poem's graceful shutdown waits out idle HTTP/2
    // connections until its timeout, which would stall every SIGTERM.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Builds the TLS side for the configured mode; `None` when TLS is off.
/// `keys` seal the ACME account and certificates at rest; `status` is what
/// operators see of the TLS side.
pub fn setup(
    config: &Config,
    keys: &Arc<PlatformKeys>,
    status: SharedStatus,
) -> Result<Option<TlsSetup>> {
    if let Ok(mut s) = status.lock() {
        s.mode = format!("{:?}", config.file.tls.mode).to_lowercase();
    }
    match config.file.tls.mode {
        TlsMode::Off => Ok(None),
        TlsMode::Files => {
            let t = &config.file.tls;
            let resolver = Arc::new(files::FilesResolver::load(&t.cert_file, &t.key_file)?);
            Ok(Some(TlsSetup {
                server_config: server_config(resolver.clone())?,
                challenge_config: None,
                http01: None,
                files: Some(resolver),
                status,
            }))
        }
        TlsMode::Acme => acme::setup(config, keys, status).map(Some),
    }
}

/// The certificate being served (files, or the sealed ACME cache): its
/// issuer and expiry, for /trust.
pub fn current_certificate(
    config: &crate::config::Config,
    keys: &crate::store::control::PlatformKeys,
) -> Option<(String, i64)> {
    let t = &config.file.tls;
    let pem = match t.mode {
        TlsMode::Off => return None,
        TlsMode::Files => std::fs::read(&t.cert_file).ok()?,
        TlsMode::Acme => {
            let dir = config.data_dir.join("acme");
            let entry = std::fs::read_dir(&dir)
                .ok()?
                .filter_map(|e| e.ok())
                .find(|e| e.file_name().to_string_lossy().starts_with("cert-"))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let sealed = std::fs::read(entry.path()).ok()?;
            keys.sealer
                .open(crate::crypto::Slot::new("acme", &name, "blob"), &sealed)
                .ok()?
        }
    };
    let der = rustls_pemfile::certs(&mut pem.as_slice()).next()?.ok()?;
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    Some((
        cert.issuer().to_string(),
        cert.validity().not_after.timestamp(),
    ))
}
