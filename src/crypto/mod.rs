//! Cryptography, built only from audited crates (RustCrypto): key hierarchy,
//! sealing, blind indexes, password hashing and token hashing. Nothing here is
//! a home-made primitive; this module only fixes formats and bindings.

pub mod blind;
pub mod file_seal;
pub mod jwt;
pub mod keys;
pub mod master_source;
pub mod password;
pub mod seal;
pub mod token;

pub use blind::BlindIndex;
pub use keys::{DataKey, MasterKey};
pub use seal::{Sealer, Slot};
