//! Bounded audit details now live in `model::bounded` (a `NewEntry` bounds
//! its sides as it is built); this path re-exports them.

pub use crate::model::bounded::*;
