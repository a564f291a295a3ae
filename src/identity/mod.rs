//! People and their sign-in: accounts, passwords and browser sessions.

pub mod sessions;
pub mod users;

pub use sessions::{authenticate, login, logout};
pub use users::{create_user, validate_email, validate_name};
