//! The appliance's Ed25519 audit key. Its secret half is sealed under the
//! platform data key in control.db; its public half is stored in the clear and
//! shipped with every export, so anyone can check a checkpoint offline.
//!
//! The signer, what it signs and the signature check are values in
//! `model::checkpoint`, re-exported here.

use crate::error::Result;
pub use crate::model::checkpoint::{
    AuditSigner, ChainLink, CheckpointBody, TRUST_DOCUMENT_CONTEXT, verify_signature,
    verify_trust_document,
};
use crate::store::Sql;
use crate::store::keypairs;

/// The stored public key, for verifiers that hold no secret.
pub fn stored_public_key(conn: &dyn Sql) -> Result<Option<[u8; 32]>> {
    keypairs::stored_public(conn, keypairs::AUDIT)
}
