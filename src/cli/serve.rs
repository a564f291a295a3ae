//! `aura serve`: open storage, bind, print how to sign in (dev), serve.

use std::process::ExitCode;
use std::sync::Arc;

use super::{Global, open_state, overrides};
use crate::config;
use crate::error::Result;

pub async fn run(g: &Global, listen: Option<String>, standby: bool) -> Result<ExitCode> {
    let listen_again = listen.clone();
    let mut cfg = config::load(&overrides(g, listen))?;
    let _log = crate::telemetry::init(&cfg.file.log);
    crate::app::listen_for_shutdown()?;
    if cfg.tls_on() {
        return run_tls(g, cfg, standby).await;
    }
    let (listener, addr) = crate::app::bind(&cfg).await?;
    if cfg.file.public_url.is_empty() {
        cfg.public_url = format!("http://{addr}");
    }
    let dev = cfg.dev;
    let url = cfg.public_url.clone();
    let _dir_lock = crate::store::dir_lock::shared(&cfg.data_dir)?;
    let state = open_state(g, cfg, dev)?;
    state.exports.clear_spool();
    spawn_reload(Arc::clone(&state), overrides(g, listen_again), None);
    if dev {
        let demo = crate::ops::dev::bootstrap(&state).await?;
        use std::fmt::Write as _;
        let mut banner = String::from("\n");
        let _ = writeln!(
            banner,
            "  Aura {} is running in DEV mode.",
            env!("CARGO_PKG_VERSION")
        );
        let _ = writeln!(banner, "  Sign in at  {url}/login");
        let _ = writeln!(banner, "  Email       {}", demo.email);
        let _ = writeln!(banner, "  Password    {}", demo.password);
        let _ = writeln!(banner, "  Data dir    {}", state.config.data_dir.display());
        let mail = &state.config.file.mail;
        if mail.smtp_host.is_empty() {
            let outbox = if mail.outbox_file.as_os_str().is_empty() {
                state.config.data_dir.join("dev-outbox.txt")
            } else {
                mail.outbox_file.clone()
            };
            let _ = writeln!(
                banner,
                "  Mail        {} (invitations and sign-in links)",
                outbox.display()
            );
        }
        banner.push('\n');
        // Not println!: it panics when stdout is full (see telemetry).
        let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
    }
    crate::replication::standby::enter(&state.replication_deps(), standby)?;
    crate::replication::confirm_lease(&state.replication_deps()).await;
    tracing::info!(addr = %addr, url = %url, "listening");
    crate::app::serve(state, listener).await?;
    Ok(ExitCode::SUCCESS)
}

async fn bind(addr: &str, key: &str) -> Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| {
        crate::error::Error::Config(format!(
            "key `{key}`: cannot listen on {addr}: {e} (ports below 1024 need CAP_NET_BIND_SERVICE)"
        ))
    })
}

/// TLS on: HTTPS on `tls.https_listen`, and on `tls.http_listen` only ACME
/// http-01 answers and a redirect. SIGHUP (or a change of the files) reloads
/// the operator's certificate.
async fn run_tls(g: &Global, mut cfg: crate::config::Config, standby: bool) -> Result<ExitCode> {
    let https = bind(&cfg.file.tls.https_listen, "tls.https_listen").await?;
    let https_addr = https.local_addr()?;
    let http = if cfg.file.tls.http_listen.is_empty() {
        None
    } else {
        Some(bind(&cfg.file.tls.http_listen, "tls.http_listen").await?)
    };
    if cfg.file.public_url.is_empty() {
        let host = cfg
            .file
            .tls
            .domains
            .first()
            .cloned()
            .unwrap_or_else(|| https_addr.ip().to_string());
        cfg.public_url = if https_addr.port() == 443 {
            format!("https://{host}")
        } else {
            format!("https://{host}:{}", https_addr.port())
        };
    }
    let url = cfg.public_url.clone();
    let _dir_lock = crate::store::dir_lock::shared(&cfg.data_dir)?;
    let state = open_state(g, cfg, false)?;
    state.exports.clear_spool();
    let Some(tls) = crate::tls::setup(
        &state.config,
        &state.control.keys,
        Arc::clone(&state.tls_status),
    )?
    else {
        return Ok(ExitCode::FAILURE);
    };
    if let Some(http) = http {
        let http_addr = http.local_addr()?;
        let app = crate::tls::redirect::app(tls.http01.clone(), https_addr.port());
        let limiter = Arc::clone(&state.conns);
        tokio::spawn(async move {
            let acceptor = match crate::web::conn::LimitedTcpAcceptor::new(http, limiter) {
                Ok(a) => a,
                Err(e) => {
                    tracing::error!(error = %e, "http listener failed");
                    return;
                }
            };
            let _ = poem::Server::new_with_acceptor(acceptor)
                .run_with_graceful_shutdown(
                    app,
                    crate::app::shutdown_signal(),
                    Some(std::time::Duration::from_secs(5)),
                )
                .await;
        });
        tracing::info!(addr = %http_addr, "http_listening");
    }
    spawn_reload(Arc::clone(&state), overrides(g, None), tls.files.clone());
    let acceptor = crate::tls::acceptor::TlsAcceptor::new(
        https,
        tls.server_config.clone(),
        tls.challenge_config.clone(),
        Arc::clone(&state.conns),
    )?;
    crate::replication::standby::enter(&state.replication_deps(), standby)?;
    crate::replication::confirm_lease(&state.replication_deps()).await;
    tracing::info!(addr = %https_addr, url = %url, "listening");
    crate::app::serve_with(state, acceptor).await?;
    Ok(ExitCode::SUCCESS)
}

/// SIGHUP re-reads the config (security.txt, the metrics token) and, with
/// operator certificate files, the certificate; a change of those files is
/// also picked up every 10 s. Everything else needs a restart.
fn spawn_reload(
    state: Arc<crate::app::AppState>,
    ov: crate::config::Overrides,
    files: Option<Arc<crate::tls::files::FilesResolver>>,
) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        let mut seen = files.as_ref().and_then(|f| f.modified());
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
        loop {
            let hup_fired = tokio::select! {
                _ = hup.recv() => true,
                _ = tick.tick() => false,
            };
            if hup_fired {
                crate::ops::systemd::status("reloading");
                match state.reload(&ov) {
                    Ok(()) => tracing::info!("configuration reloaded"),
                    Err(e) => {
                        tracing::warn!(error = %e, "configuration reload failed; the current settings stay")
                    }
                }
            }
            if let Some(f) = &files {
                let now = f.modified();
                if hup_fired || now != seen {
                    seen = now;
                    match f.reload() {
                        Ok(()) => tracing::info!(
                            trigger = if hup_fired { "SIGHUP" } else { "file change" },
                            "certificate reloaded"
                        ),
                        Err(e) => {
                            tracing::warn!(error = %e, "certificate reload failed; the current one keeps serving")
                        }
                    }
                }
            }
            if hup_fired {
                crate::ops::systemd::status(&format!("serving {}", state.config.public_url));
            }
        }
    });
}
