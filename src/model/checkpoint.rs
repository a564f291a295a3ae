//! Audit checkpoints as values: what a checkpoint signs (`CheckpointBody`,
//! its place in its scope's checkpoint chain `ChainLink`), a signed one as
//! stored, the report of a chain walk, and the Ed25519 signer and check.
//!
//! Checkpoints of one scope form their own chain: each (v2) checkpoint signs
//! its place in that chain and the SHA-256 of the previous one's message, so a
//! deleted or reordered checkpoint breaks the chain. Checkpoints signed before
//! the chain existed (v1, no link) still verify with their original message.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Signs audit checkpoints; its secret is sealed under the platform key in
/// control.db (`store::keypairs`).
pub struct AuditSigner {
    key: SigningKey,
}

impl std::fmt::Debug for AuditSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditSigner(<redacted>)")
    }
}

/// What a checkpoint signs: the head of one chain at one moment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CheckpointBody {
    pub scope: String,
    pub seq: i64,
    #[serde(with = "hex::serde")]
    pub hash: Vec<u8>,
    pub time: i64,
    pub reason: String,
    /// Where this checkpoint sits in its scope's checkpoint chain; `None` on
    /// checkpoints signed before checkpoints were chained.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub link: Option<ChainLink>,
}

/// A checkpoint's place in its scope's checkpoint chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainLink {
    /// 1 for the first chained checkpoint of the scope, then +1 each.
    pub index: i64,
    /// `digest()` of the previous checkpoint (32 zero bytes for the first).
    #[serde(with = "hex::serde")]
    pub prev: Vec<u8>,
}

impl CheckpointBody {
    /// The signed message: a versioned JSON array in a fixed order.
    pub fn message(&self) -> Vec<u8> {
        match &self.link {
            None => serde_json::to_vec(&(
                "aura-audit-checkpoint-v1",
                &self.scope,
                self.seq,
                hex::encode(&self.hash),
                self.time,
                &self.reason,
            )),
            Some(l) => serde_json::to_vec(&(
                "aura-audit-checkpoint-v2",
                &self.scope,
                self.seq,
                hex::encode(&self.hash),
                self.time,
                &self.reason,
                l.index,
                hex::encode(&l.prev),
            )),
        }
        .unwrap_or_default()
    }

    /// What the next checkpoint of the chain names as its predecessor.
    pub fn digest(&self) -> Vec<u8> {
        Sha256::digest(self.message()).to_vec()
    }

    /// The link a checkpoint signed after `last` (the scope's newest) carries.
    pub fn link_after(last: Option<&CheckpointBody>) -> ChainLink {
        ChainLink {
            index: last
                .and_then(|l| l.link.as_ref())
                .map(|l| l.index + 1)
                .unwrap_or(1),
            prev: last
                .map(CheckpointBody::digest)
                .unwrap_or_else(|| super::audit::GENESIS.to_vec()),
        }
    }
}

impl AuditSigner {
    /// The signer of the key pair `store::keypairs` keeps for audit
    /// checkpoints (purpose `keypairs::AUDIT`).
    pub fn from_key(key: SigningKey) -> Self {
        Self { key }
    }

    pub fn public_key(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    pub fn sign(&self, body: &CheckpointBody) -> Vec<u8> {
        self.key.sign(&body.message()).to_bytes().to_vec()
    }
}

/// What every trust-document signature signs before the document's bytes:
/// checkpoint messages are JSON arrays (`[`), so neither kind of signature
/// can pass for the other.
pub const TRUST_DOCUMENT_CONTEXT: &[u8] = b"aura-trust-document-v1\n";

fn trust_message(document: &[u8]) -> Vec<u8> {
    let mut m = TRUST_DOCUMENT_CONTEXT.to_vec();
    m.extend_from_slice(document);
    m
}

impl AuditSigner {
    /// Signs the canonical bytes of a /trust.json document, with the same
    /// key as the audit checkpoints (one key for a buyer to pin).
    pub fn sign_trust_document(&self, document: &[u8]) -> [u8; 64] {
        self.key.sign(&trust_message(document)).to_bytes()
    }
}

/// True when `signature` is `public_key`'s signature of a trust document.
pub fn verify_trust_document(public_key: &[u8; 32], document: &[u8], signature: &[u8]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    vk.verify_strict(&trust_message(document), &sig).is_ok()
}

/// True when `signature` is `public_key`'s signature of `body`.
pub fn verify_signature(public_key: &[u8; 32], body: &CheckpointBody, signature: &[u8]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    vk.verify(&body.message(), &sig).is_ok()
}

/// The outcome of walking one chain (`audit::verify::check`), as stored by
/// `store::audit::insert_verification`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub scope: String,
    pub entries: u64,
    pub head_seq: i64,
    /// The newest signed checkpoint's sequence number.
    pub checkpoint_seq: Option<i64>,
    pub first_bad_seq: Option<i64>,
    pub reason: Option<String>,
}

impl ChainReport {
    pub fn ok(&self) -> bool {
        self.first_bad_seq.is_none()
    }
}

/// A checkpoint as stored: what was signed and the signature.
#[derive(Clone, Debug)]
pub struct SignedCheckpoint {
    pub body: CheckpointBody,
    pub signature: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_every_field() {
        let signer = AuditSigner::from_key(SigningKey::generate(&mut rand::rngs::OsRng));
        let body = CheckpointBody {
            scope: "platform".into(),
            seq: 7,
            hash: vec![1; 32],
            time: 100,
            reason: "schedule".into(),
            link: Some(ChainLink {
                index: 2,
                prev: vec![3; 32],
            }),
        };
        let sig = signer.sign(&body);
        let pk = signer.public_key();
        assert!(verify_signature(&pk, &body, &sig));
        for tampered in [
            CheckpointBody {
                seq: 8,
                ..body.clone()
            },
            CheckpointBody {
                scope: "ws".into(),
                ..body.clone()
            },
            CheckpointBody {
                hash: vec![2; 32],
                ..body.clone()
            },
            CheckpointBody {
                time: 101,
                ..body.clone()
            },
            CheckpointBody {
                link: Some(ChainLink {
                    index: 1,
                    prev: vec![3; 32],
                }),
                ..body.clone()
            },
            CheckpointBody {
                link: Some(ChainLink {
                    index: 2,
                    prev: vec![4; 32],
                }),
                ..body.clone()
            },
            CheckpointBody {
                link: None,
                ..body.clone()
            },
        ] {
            assert!(!verify_signature(&pk, &tampered, &sig));
        }
        let other = AuditSigner::from_key(SigningKey::generate(&mut rand::rngs::OsRng));
        assert!(!verify_signature(&other.public_key(), &body, &sig));
    }
}
