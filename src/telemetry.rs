//! Logging: JSON lines when stdout is not a terminal (journald, files, tests),
//! human-readable otherwise. Person-typed content never goes into a log line;
//! the canary test scans the log to prove it.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Lines buffered for the log writer before new ones are dropped: about
/// 2-4 MiB of JSON lines.
const BUFFERED_LINES: usize = 8_192;

/// Keeps the log writer thread; dropping it flushes what is buffered.
pub struct LogGuard(Option<tracing_appender::non_blocking::WorkerGuard>);

/// Log lines dropped because the destination did not keep up (a full disk
/// behind stdout, a pipe nobody reads); exposed on `/metrics`.
static DROPPED: std::sync::OnceLock<tracing_appender::non_blocking::ErrorCounter> =
    std::sync::OnceLock::new();

pub fn dropped_lines() -> usize {
    DROPPED.get().map_or(0, |c| c.dropped_lines())
}

/// The server's logging. Lines go to stdout through a bounded queue and a
/// writer thread: a destination that is full or stops reading costs
/// dropped lines (counted), never a blocked request or a panic.
pub fn init(cfg: &LogConfig) -> LogGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match cfg.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(BUFFERED_LINES)
        .thread_name("aura-log")
        .finish(std::io::stdout());
    let _ = DROPPED.set(writer.error_counter());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_target(false);
    let _ = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            // The request span's fields (id, method, path) once, under
            // "span"; the list of every enclosing span repeated them.
            .with_span_list(false)
            .try_init()
    } else {
        builder.try_init()
    };
    LogGuard(Some(guard))
}

impl Drop for LogGuard {
    /// Flushes for at most two seconds: the worker guard's own drop can
    /// wait on (or print to) a stdout that no longer drains, and a server
    /// asked to stop must stop.
    fn drop(&mut self) {
        let Some(guard) = self.0.take() else { return };
        let (done, finished) = std::sync::mpsc::channel();
        let spawned = std::thread::Builder::new()
            .name("aura-log-flush".into())
            .spawn(move || {
                drop(guard);
                let _ = done.send(());
            });
        if spawned.is_ok() {
            let _ = finished.recv_timeout(std::time::Duration::from_secs(2));
        }
    }
}

/// CLI commands log only warnings, to stderr, so stdout stays parseable.
pub fn init_cli() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
