//! Operations endpoints and jobs: health, readiness, the dev bootstrap.

pub mod dev;
pub mod health;
pub mod jobs;
pub mod metrics;
pub mod schedule;
pub mod systemd;
pub mod trust;
