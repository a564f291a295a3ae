//! Record values now live in `model::values` (below the store, which indexes
//! them); this path re-exports them for the domain code.

pub use crate::model::values::*;
