//! Aura: a self-hostable appliance that keeps the promises of a SaaS trust page
//! and proves them. See ARCHITECTURE.md (shared) and docs/architecture.md.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

/// This build's id: a SHA-256 prefix over the sources (see build.rs). The
/// test harness compares the binary's id with its own and refuses a mismatch.
pub const BUILD_ID: &str = env!("SOURCES_BUILD_ID");

/// What `aura --version` and `aura version` print after the name.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (build ",
    env!("SOURCES_BUILD_ID"),
    ")"
);

pub mod access;
pub mod app;
pub mod audit;
pub mod backup;
pub mod bounds;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod dirsync;
pub mod error;
pub mod export;
pub mod identity;
pub mod ids;
pub mod integrations;
pub mod lifecycle;
pub mod mail;
pub mod model;
pub mod notices;
pub mod ops;
pub mod platform;
pub mod records;
pub mod replication;
pub mod search;
pub mod store;
pub mod subjects;
pub mod telemetry;
pub mod tls;
pub mod web;
pub mod workspace;
