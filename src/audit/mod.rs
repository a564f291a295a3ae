//! The audit chain. Every database (control.db for the platform, each
//! workspace's data.db) keeps its own append-only chain, where
//! `hash = SHA-256(prev_hash || canonical(entry))` and the first `prev_hash` is
//! 32 zero bytes. Entries are written by `store::audit::append` inside the
//! transaction of the change they record. Details (before/after, user agent) are
//! sealed like every other person-typed value; the chain commits to their
//! ciphertext's hash.

pub mod anchor;
/// Moved to `model::bounded` (a `NewEntry` bounds its sides); re-exported here.
pub mod bounded {
    pub use crate::model::bounded::*;
}
pub mod chains;
pub mod export;
pub mod search;
pub mod service;
pub mod signing;
pub mod verify;
mod verify_checkpoints;

pub use crate::model::audit::{Actor, GENESIS, NewEntry, RequestMeta, StoredEntry};

/// The result of walking a chain without checkpoints (unit tests, quick checks).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChainCheck {
    Intact { entries: u64 },
    Broken { seq: i64, reason: String },
}

pub fn verify_chain(entries: &[StoredEntry]) -> ChainCheck {
    let inputs = verify::Inputs::new("", verify::Entries::Slice(entries), &[], None);
    // A chain in memory reads no database, so `check` cannot fail here.
    let r = match verify::check(&inputs) {
        Ok(r) => r,
        Err(e) => {
            return ChainCheck::Broken {
                seq: 0,
                reason: e.to_string(),
            };
        }
    };
    match (r.first_bad_seq, r.reason) {
        (Some(seq), reason) => ChainCheck::Broken {
            seq,
            reason: reason.unwrap_or_default(),
        },
        _ => ChainCheck::Intact { entries: r.entries },
    }
}
