//! Collection definitions now live in `model::schema` (below the store, which
//! reads them); this path re-exports them for the domain code.

pub use crate::model::schema::*;
