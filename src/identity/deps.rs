//! What sign-in, accounts, the platform area and account deletion need from
//! the running server, as narrow borrowed values: domain code takes a
//! `&Deps` instead of the whole application state, so `identity/`, `notices/`,
//! `platform/` and `lifecycle::accounts` never import `app` back. `app.rs`
//! lends one with `AppState::deps()`.

use std::sync::Arc;

use super::guard::Limits;
use super::passkeys::Passkeys;
use crate::clock::SharedClock;
use crate::config::Config;
use crate::crypto::password::PasswordHasher;
use crate::mail::Mailer;
use crate::store::control::Control;
use crate::store::tenant::TenantPool;

#[derive(Clone, Copy)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub clock: &'a SharedClock,
    pub control: &'a Arc<Control>,
    /// Only for the closed system doors (`SystemTask`): an entry in a
    /// workspace's own chain, account deletion.
    pub tenants: &'a Arc<TenantPool>,
    pub hasher: &'a PasswordHasher,
    pub mailer: &'a Arc<Mailer>,
    /// Sign-in rate limits and per-account backoff (in memory).
    pub limits: &'a Limits,
    /// The WebAuthn relying party and passkey ceremonies in flight.
    pub passkeys: &'a Passkeys,
}
