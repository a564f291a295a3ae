//! Aura: a self-hostable appliance that keeps the promises of a SaaS trust page
//! and proves them. See ARCHITECTURE.md (shared) and docs/architecture.md.

#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::await_holding_lock
)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

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
pub mod ops;
pub mod platform;
pub mod records;
pub mod search;
pub mod store;
pub mod subjects;
pub mod telemetry;
pub mod tls;
pub mod web;
pub mod workspace;
