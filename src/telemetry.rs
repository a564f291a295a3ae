//! Logging: JSON lines when stdout is not a terminal (journald, files, tests),
//! human-readable otherwise. Person-typed content never goes into a log line;
//! the canary test scans the log to prove it.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(&cfg.level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let json = match cfg.format {
        LogFormat::Json => true,
        LogFormat::Pretty => false,
        LogFormat::Auto => !std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
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
