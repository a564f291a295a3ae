//! People and programs and how they sign in: accounts, passwords, browser
//! sessions, access JWTs with rotating refresh tokens, `aura_` API tokens and
//! service accounts, and the rate limits in front of all of it.

pub mod api_tokens;
pub mod guard;
pub mod invitations;
pub mod jwt;
pub mod magic;
pub mod members;
pub mod mfa;
pub mod passkeys;
pub mod sessions;
pub mod tokens;
pub mod users;

pub use sessions::{authenticate, login, logout};
pub use users::{create_user, validate_email, validate_name};

use crate::access::Principal;
use crate::app::AppState;
use crate::error::Result;

/// Resolves an `Authorization: Bearer` credential: an `aura_` API token, or
/// else an access JWT. A refresh token is neither, so it never authenticates
/// a request.
pub async fn authenticate_bearer(state: &AppState, credential: &str) -> Result<Principal> {
    if credential.starts_with(api_tokens::PREFIX) {
        api_tokens::authenticate(state, credential).await
    } else {
        tokens::authenticate_access(state, credential).await
    }
}
