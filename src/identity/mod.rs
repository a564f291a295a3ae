//! People and programs and how they sign in: accounts, passwords, browser
//! sessions, access JWTs with rotating refresh tokens, `aura_` API tokens and
//! service accounts, and the rate limits in front of all of it.

pub mod api_tokens;
mod deps;
pub mod device;
pub mod guard;
pub mod invitations;
/// Moved to `crypto::jwt` (control.db loads the key with the platform keys);
/// re-exported here.
pub mod jwt {
    pub use crate::crypto::jwt::*;
}
pub mod magic;
pub mod members;
pub mod mfa;
pub mod netkey;
pub mod passkeys;
pub mod scim;
pub mod scim_groups;
pub mod scim_token;
pub mod sessions;
pub mod sso;
pub mod staff;
pub mod tokens;
pub mod users;

pub use deps::Deps;
pub use sessions::{authenticate, login, logout};
pub use users::{create_user, validate_email, validate_name};

use crate::access::Principal;
use crate::audit::{Actor, NewEntry, RequestMeta};
use crate::error::Result;
use crate::ids::UserId;
use crate::store::SqlTx;

/// A change a person makes to their own account (sign-ins, password, second
/// factors): `change` and its entry (actor and target the account) in one
/// control.db transaction.
pub(crate) async fn self_change<T, F>(
    deps: &Deps<'_>,
    user: UserId,
    action: &'static str,
    now: i64,
    meta: &RequestMeta,
    change: F,
) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce(&dyn SqlTx) -> Result<T> + Send + 'static,
{
    let keys = deps.control.keys.clone();
    let meta = meta.clone();
    deps.control
        .db
        .write_async(move |tx| {
            let out = change(tx)?;
            crate::store::audit::append(
                tx,
                &keys.sealer,
                now,
                &NewEntry::new(Actor::User(user), action, &meta).target("user", user),
            )?;
            Ok(out)
        })
        .await
}

/// Resolves an `Authorization: Bearer` credential: an `aura_` API token, or
/// else an access JWT. A refresh token is neither, so it never authenticates
/// a request.
pub async fn authenticate_bearer(deps: &Deps<'_>, credential: &str) -> Result<Principal> {
    if credential.starts_with(api_tokens::PREFIX) {
        api_tokens::authenticate(deps.control, deps.clock.unix(), credential).await
    } else {
        tokens::authenticate_access(deps, credential).await
    }
}
