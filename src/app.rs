//! Application state and the server loop: open storage with the master key,
//! bind, serve until SIGTERM/SIGINT, then drain and close the databases.

use std::sync::Arc;
use std::time::Duration;

use poem::Server;

use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::MasterKey;
use crate::crypto::password::PasswordHasher;
use crate::error::{Error, Result};
use crate::search::IndexRegistry;
use crate::store::DbOptions;
use crate::store::control::Control;
use crate::store::tenant::TenantPool;

pub struct AppState {
    pub config: Arc<Config>,
    pub clock: SharedClock,
    pub control: Arc<Control>,
    pub tenants: Arc<TenantPool>,
    pub hasher: PasswordHasher,
    /// The WebAuthn relying party and passkey ceremonies in flight.
    pub passkeys: crate::identity::passkeys::Passkeys,
    /// Single sign-on: sign-ins at providers, links waiting, provider metadata.
    pub sso: crate::identity::sso::Sso,
    /// Outgoing mail (SMTP, or the outbox file under --dev).
    pub mailer: Arc<crate::mail::Mailer>,
    /// Sign-in rate limits and per-account backoff (in memory).
    pub limits: crate::identity::guard::Limits,
    /// In-memory search indexes (never on disk), keyed by purpose and scope.
    pub indexes: IndexRegistry,
    /// The TLS side's state (mode, last ACME event and error), for operators.
    pub tls_status: crate::tls::SharedStatus,
    pub metrics: crate::ops::metrics::Metrics,
    /// Settings SIGHUP re-reads without a restart.
    pub reloadable: std::sync::RwLock<Reloadable>,
    /// Workspace exports being written or waiting for download.
    pub exports: crate::export::jobs::ExportJobs,
    /// Pools and caps of the heavy data paths (`[data_limits]`).
    pub bounds: crate::bounds::DataBounds,
    /// Bounds against hostile load (issue 27): connections, buffered
    /// bodies, request rates.
    pub conns: Arc<crate::web::conn::ConnLimiter>,
    pub bodies: crate::web::budget::BodyBudget,
    pub rates: crate::web::rate::RateLimiter,
    /// The public trust page, computed once per control.db change.
    pub trust: crate::ops::trust::TrustCache,
    /// The newest checkpoint of each chain this server has seen (memory only).
    pub checkpoint_tips: crate::audit::chains::SeenTips,
    /// What the replicator knows (lag per database), for /metrics and /trust.
    pub replication: Arc<crate::replication::status::ReplicaStatus>,
}

/// The part of the config that takes effect on SIGHUP.
#[derive(Clone, Debug)]
pub struct Reloadable {
    pub security_txt: crate::config::SecurityTxtConfig,
    pub metrics_token: String,
}

impl Reloadable {
    pub fn from_config(c: &Config) -> Self {
        Self {
            security_txt: c.file.security_txt.clone(),
            metrics_token: c.file.metrics.bearer_token.clone(),
        }
    }
}

impl AppState {
    /// What sign-in, accounts and the platform area need, lent to them.
    pub fn deps(&self) -> crate::identity::Deps<'_> {
        crate::identity::Deps {
            config: &self.config,
            clock: &self.clock,
            control: &self.control,
            tenants: &self.tenants,
            hasher: &self.hasher,
            mailer: &self.mailer,
            limits: &self.limits,
            passkeys: &self.passkeys,
        }
    }

    /// The narrow values the audit service takes.
    pub fn audit_deps(&self) -> crate::audit::service::Deps<'_> {
        crate::audit::service::Deps {
            control: &self.control,
            tenants: &self.tenants,
            clock: &self.clock,
            bounds: &self.bounds,
            indexes: &self.indexes,
            config: &self.config.file.audit,
        }
    }

    /// The narrow values backups, drills and restores take.
    pub fn backup_deps(&self) -> crate::backup::Deps<'_> {
        crate::backup::Deps {
            config: &self.config,
            control: &self.control,
            tenants: &self.tenants,
            clock: &self.clock,
        }
    }

    /// What deleting, purging and moving workspaces take.
    pub fn lifecycle_deps(&self) -> crate::lifecycle::Deps<'_> {
        crate::lifecycle::Deps {
            config: &self.config,
            clock: &self.clock,
            control: &self.control,
            tenants: &self.tenants,
            identity: self.deps(),
            indexes: &self.indexes,
        }
    }

    /// What the integrations worker owns while the server runs.
    pub fn integrations_deps(&self) -> crate::integrations::worker::Deps {
        crate::integrations::worker::Deps {
            config: Arc::clone(&self.config),
            clock: Arc::clone(&self.clock),
            control: Arc::clone(&self.control),
            tenants: Arc::clone(&self.tenants),
        }
    }

    /// What the replicator, a standby and replica restores own.
    pub fn replication_deps(&self) -> crate::replication::Deps {
        crate::replication::Deps {
            config: Arc::clone(&self.config),
            clock: Arc::clone(&self.clock),
            control: Arc::clone(&self.control),
            tenants: Arc::clone(&self.tenants),
            status: Arc::clone(&self.replication),
        }
    }

    /// What creating a workspace or adding a member takes (`workspace::Platform`).
    pub fn platform(&self) -> crate::workspace::Platform<'_> {
        crate::workspace::Platform {
            control: &self.control,
            tenants: &self.tenants,
            clock: &self.clock,
            default_region: &self.config.file.region,
        }
    }

    pub fn reloadable(&self) -> Reloadable {
        self.reloadable
            .read()
            .map(|r| r.clone())
            .unwrap_or_else(|_| Reloadable::from_config(&self.config))
    }

    /// Re-reads the config with the same overrides and applies what can
    /// change at runtime; the rest waits for a restart.
    pub fn reload(&self, ov: &crate::config::Overrides) -> Result<()> {
        let fresh = crate::config::load(ov)?;
        let mut r = self
            .reloadable
            .write()
            .map_err(|_| Error::internal("reload lock poisoned"))?;
        *r = Reloadable::from_config(&fresh);
        Ok(())
    }
}

impl AppState {
    /// Opens control.db with the master key; refuses (touching nothing) if the
    /// key does not match. With `create`, a missing control.db is initialised.
    pub fn open(
        config: Config,
        master: MasterKey,
        clock: SharedClock,
        create: bool,
    ) -> Result<Self> {
        let opts = DbOptions::from_config(&config.file.storage);
        let path = config.control_db_path();
        let control = if !path.exists() && create {
            crate::store::create_private_dir(&config.data_dir)?;
            Control::initialize(&path, opts, master)?
        } else {
            Control::open(&path, opts, master)?
        };
        let a = &config.file.auth;
        let hasher = PasswordHasher::new(
            a.argon2_memory_kib,
            a.argon2_iterations,
            a.argon2_parallelism,
            a.password_workers,
        )?
        .with_queue(config.file.limits.password_queue);
        let files = crate::store::blobs::Storage::from_url(
            &config.file.files.url,
            config.file.files.effective_region(&config.file.region),
        )?;
        let tenants = TenantPool::new(
            config.tenants_dir(),
            opts,
            config.file.storage.tenant_pool_size,
            Arc::new(crate::integrations::outbox::Outbox),
            Arc::new(files),
        );
        let reloadable = std::sync::RwLock::new(Reloadable::from_config(&config));
        let mailer = Arc::new(crate::mail::Mailer::from_config(&config)?);
        let passkeys = crate::identity::passkeys::Passkeys::from_config(&config);
        let exports = crate::export::jobs::ExportJobs::new(&config.data_dir);
        let bounds = crate::bounds::DataBounds::new(&config.file.data_limits);
        let conns = Arc::new(crate::web::conn::ConnLimiter::from_config(&config));
        let bodies = crate::web::budget::BodyBudget::new(
            config.file.limits.buffered_body_bytes,
            config.file.limits.buffered_body_bytes_per_ip,
        );
        let rates = crate::web::rate::RateLimiter::new(&config.file.limits);
        Ok(Self {
            bounds,
            conns,
            bodies,
            rates,
            exports,
            passkeys,
            sso: Default::default(),
            mailer,
            config: Arc::new(config),
            clock,
            control: Arc::new(control),
            tenants: Arc::new(tenants),
            hasher,
            limits: Default::default(),
            indexes: IndexRegistry::new(32),
            tls_status: Default::default(),
            metrics: Default::default(),
            reloadable,
            trust: Default::default(),
            checkpoint_tips: Default::default(),
            replication: Default::default(),
        })
    }

    pub fn close(&self) {
        self.tenants.close_all();
        if let Err(e) = self.control.db.checkpoint() {
            tracing::warn!(error = %e, "checkpoint at shutdown failed");
        }
    }
}

/// Binds the configured address (port 0 picks a free one) and returns the
/// listener with the address it really got.
pub async fn bind(config: &Config) -> Result<(tokio::net::TcpListener, std::net::SocketAddr)> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| Error::Config(format!("cannot listen on {}: {e}", config.listen)))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

pub async fn serve(state: Arc<AppState>, listener: tokio::net::TcpListener) -> Result<()> {
    let acceptor = crate::web::conn::LimitedTcpAcceptor::new(listener, Arc::clone(&state.conns))?;
    serve_with(state, acceptor).await
}

/// Serves the app on any acceptor (plain TCP, or TLS) until SIGTERM/SIGINT,
/// then drains, signs the audit heads and closes the databases.
pub async fn serve_with<A: poem::listener::Acceptor + 'static>(
    state: Arc<AppState>,
    acceptor: A,
) -> Result<()> {
    // A bucket prefix for files belongs to one appliance (`Storage::claim`).
    let st = Arc::clone(&state);
    tokio::task::spawn_blocking(move || {
        let owner = hex::encode(st.control.signer.public_key());
        st.tenants.storage().claim(&owner)
    })
    .await
    .map_err(|_| crate::error::Error::internal("the files bucket check stopped"))??;
    // Before the first request: no upload runs yet, so the sweep cannot
    // take a file an upload is about to commit. A standby's files follow
    // the primary's and are left alone.
    if !state.replication.is_standby() {
        let st = Arc::clone(&state);
        match tokio::task::spawn_blocking(move || {
            crate::records::files_sweep::sweep_all(&st.control, &st.tenants)
        })
        .await
        {
            Ok(Ok(n)) => tracing::info!(files = n, "start-up sweep of sealed files done"),
            Ok(Err(e)) => tracing::warn!(error = %e, "start-up sweep of sealed files failed"),
            Err(e) => tracing::warn!(error = %e, "start-up sweep of sealed files panicked"),
        }
    }
    let app = crate::web::routes(Arc::clone(&state));
    let jobs = crate::ops::jobs::spawn(Arc::clone(&state));
    // READY before the first watchdog ping: the watchdog's first tick is at
    // once, and a ping before READY tells systemd nothing true yet.
    crate::ops::systemd::ready(&format!("serving {}", state.config.public_url));
    let watchdog = crate::ops::systemd::spawn_watchdog(Arc::clone(&state));
    // Response bodies get a write deadline: a reader that takes nothing for
    // the stall window loses its connection (docs/operations.md, limits).
    let stall = Duration::from_secs(state.config.file.data_limits.export_stall_secs);
    let acceptor = crate::bounds::paced::DeadlineAcceptor::new(acceptor, stall);
    Server::new_with_acceptor(acceptor)
        .idle_timeout(Duration::from_secs(75))
        .run_with_graceful_shutdown(app, shutdown_signal(), Some(Duration::from_secs(30)))
        .await?;
    jobs.abort();
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("stopped accepting; signing audit heads and closing databases");
    let st = Arc::clone(&state);
    let signed = tokio::task::spawn_blocking(move || {
        let now = st.clock.unix();
        let pass = crate::audit::chains::checkpoint_all_watched(
            &st.control,
            &st.tenants,
            "shutdown",
            now,
            &st.checkpoint_tips,
        )?;
        crate::ops::jobs::record_refusals(&st, &pass.refused, now)?;
        Ok::<_, Error>(pass.signed)
    })
    .await;
    if let Ok(Err(e)) = signed {
        tracing::warn!(error = %e, "could not sign audit heads at shutdown");
    }
    state.close();
    Ok(())
}

/// Set once a SIGTERM or SIGINT has arrived; every server of the process
/// (HTTPS, the HTTP redirect) drains on it.
static SHUTDOWN: std::sync::OnceLock<tokio::sync::watch::Sender<bool>> = std::sync::OnceLock::new();

/// Takes over SIGTERM and SIGINT for the whole process. Called by `serve`
/// before it binds: until a handler is registered, a SIGTERM (systemd
/// stopping a service that just started) kills the process mid-start
/// instead of draining it.
pub fn listen_for_shutdown() -> Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    if SHUTDOWN.get().is_some() {
        return Ok(());
    }
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let (tx, _) = tokio::sync::watch::channel(false);
    let _ = SHUTDOWN.set(tx.clone());
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM received, draining"),
            _ = int.recv() => tracing::info!("SIGINT received, draining"),
        }
        // `send_replace` stores the value even with no receiver yet.
        tx.send_replace(true);
    });
    Ok(())
}

/// Resolves once the process is asked to stop (see `listen_for_shutdown`);
/// never, if nothing listens.
pub async fn shutdown_signal() {
    match SHUTDOWN.get() {
        Some(tx) => {
            let mut rx = tx.subscribe();
            // Sees a signal that came before this call too.
            let _ = rx.wait_for(|stopped| *stopped).await;
        }
        None => std::future::pending::<()>().await,
    }
    crate::ops::systemd::stopping();
    arm_forced_exit();
}

/// A last resort after SIGTERM: if draining has not finished well after the
/// 30 s grace period, exit anyway. Every acknowledged write is already
/// durable (synchronous=FULL), so this loses nothing but the final
/// checkpoint, which the next start signs.
fn arm_forced_exit() {
    static ARMED: std::sync::Once = std::sync::Once::new();
    ARMED.call_once(|| {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(45));
            tracing::error!("shutdown did not finish in 45 s; exiting");
            std::process::exit(0);
        });
    });
}
