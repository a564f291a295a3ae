//! The bottom layer: value types that the store reads and writes and the
//! layers above pass around. Nothing here opens a database or knows a
//! request; `model` imports only `ids`, `error` and `clock` from the crate
//! (scripts/check-layers holds it to that).
//!
//! The old paths (`access::Role`, `audit::NewEntry`, `records::schema`, ...)
//! re-export these, so code above the store may use either.

pub mod audit;
pub mod bounded;
pub mod checkpoint;
pub mod email;
pub mod field_type;
pub mod file_ref;
pub mod frozen;
pub mod retention;
pub mod rights;
pub mod role;
pub mod schema;
pub mod synchronous;
pub mod values;

pub use frozen::Frozen;
pub use role::Role;
pub use synchronous::Synchronous;
