//! Access JWTs: the format and its keys live in `crypto::jwt` (control.db
//! loads the key pair with the other platform keys); this path re-exports them.

pub use crate::crypto::jwt::*;
