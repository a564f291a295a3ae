//! Operations endpoints and jobs: health, readiness, the dev bootstrap.

pub mod background;
pub mod dev;
pub mod health;
pub mod jobs;
pub mod memory;
pub mod metrics;
pub mod schedule;
pub mod systemd;
pub mod trust;
pub mod trust_facts;
pub mod trust_outbound;
pub mod trust_sign;

/// Tests abort the process at a named step (`TEST_AURA_CRASH_AT`), which is
/// what a kill -9 there would do: key rotations must survive every such step.
/// Debug builds only; release builds never read the variable.
pub fn crash_point(step: &str) {
    if cfg!(debug_assertions) && std::env::var("TEST_AURA_CRASH_AT").is_ok_and(|v| v == step) {
        eprintln!("TEST_AURA_CRASH_AT: aborting at {step}");
        std::process::abort();
    }
}
