//! The values of the audit chain: who acted (`Actor`), where the request came
//! from (`RequestMeta`), an entry about to be appended (`NewEntry`) and one as
//! stored (`StoredEntry`, with the canonical encoding its hash commits to).
//! The chain itself is described in `audit`; `store::audit` writes it.

use serde::Serialize;
use sha2::{Digest, Sha256};

use super::bounded;
use crate::ids::UserId;

pub const GENESIS: [u8; 32] = [0u8; 32];

/// Who did it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Actor {
    User(UserId),
    /// The operator at the server's shell (`aura ...` commands).
    Operator,
    /// Aura itself (schedules, dev bootstrap).
    System,
    /// An unauthenticated caller (failed logins).
    Anonymous,
    /// A program using an API token (its id, never the secret).
    Token(String),
    /// The workspace's identity provider through its SCIM token (its id).
    Scim(String),
    /// Platform staff inside a workspace through recorded impersonation; the
    /// stated reason is person-typed, so it goes into the sealed details.
    Staff {
        staff: UserId,
        reason: String,
    },
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::User(_) => "user",
            Actor::Operator => "operator",
            Actor::System => "system",
            Actor::Anonymous => "anonymous",
            Actor::Token(_) => "token",
            Actor::Scim(_) => "scim",
            Actor::Staff { .. } => "staff",
        }
    }

    /// What the sealed details carry about the actor (the impersonation reason).
    pub fn sealed_context(&self) -> Option<serde_json::Value> {
        match self {
            Actor::Staff { reason, .. } => {
                Some(serde_json::json!({ "impersonation_reason": reason }))
            }
            _ => None,
        }
    }

    pub fn id(&self) -> Option<String> {
        match self {
            Actor::User(u) => Some(u.to_string()),
            Actor::Token(t) | Actor::Scim(t) => Some(t.clone()),
            Actor::Staff { staff, .. } => Some(staff.to_string()),
            _ => None,
        }
    }
}

/// Where a request came from; attached to every entry it causes.
#[derive(Clone, Debug, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

impl RequestMeta {
    pub fn cli() -> Self {
        Self {
            ip: None,
            user_agent: Some(format!("aura-cli/{}", env!("CARGO_PKG_VERSION"))),
            request_id: None,
        }
    }
}

/// An entry about to be appended.
#[derive(Clone, Debug)]
pub struct NewEntry<'a> {
    pub actor: Actor,
    pub action: &'a str,
    pub target_type: Option<&'a str>,
    pub target_id: Option<String>,
    pub meta: &'a RequestMeta,
    /// State before and after, already redacted of secrets. Sealed on write.
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

impl<'a> NewEntry<'a> {
    pub fn new(actor: Actor, action: &'a str, meta: &'a RequestMeta) -> Self {
        Self {
            actor,
            action,
            target_type: None,
            target_id: None,
            meta,
            before: None,
            after: None,
        }
    }

    pub fn target(mut self, kind: &'a str, id: impl ToString) -> Self {
        self.target_type = Some(kind);
        self.target_id = Some(id.to_string());
        self
    }

    pub fn after(mut self, v: serde_json::Value) -> Self {
        self.after = Some(bounded::bound(v));
        self
    }

    pub fn before(mut self, v: serde_json::Value) -> Self {
        self.before = Some(bounded::bound(v));
        self
    }
}

/// A stored entry, as read back for verification.
#[derive(Clone, Debug, Serialize)]
pub struct StoredEntry {
    pub seq: i64,
    pub time: i64,
    pub actor_type: String,
    pub actor_id: Option<String>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub ip: Option<String>,
    pub request_id: Option<String>,
    #[serde(skip)]
    pub detail_ct: Option<Vec<u8>>,
    /// Set only on an entry whose details an anonymisation replaced: the
    /// SHA-256 of the original sealed details, which the chain commits to.
    #[serde(skip)]
    pub detail_digest: Option<Vec<u8>>,
    /// The `data_subject.anonymised` entry that replaced the details.
    #[serde(skip)]
    pub redacted_by: Option<i64>,
    /// The details were re-sealed under a rotated data key (same plaintext);
    /// `detail_digest` keeps what the chain committed to.
    #[serde(skip)]
    pub resealed: bool,
    #[serde(skip)]
    pub prev_hash: Vec<u8>,
    #[serde(skip)]
    pub hash: Vec<u8>,
}

impl StoredEntry {
    /// The canonical encoding: a JSON array in a fixed order, which serde_json
    /// renders deterministically.
    pub fn canonical(&self) -> Vec<u8> {
        self.canonical_with(self.committed_detail_digest())
    }

    /// The digest of the details the chain commits to: the stored one when an
    /// anonymisation replaced them, else the SHA-256 of the sealed details.
    pub fn committed_detail_digest(&self) -> Option<String> {
        match &self.detail_digest {
            Some(d) => Some(hex::encode(d)),
            None => self
                .detail_ct
                .as_ref()
                .map(|d| hex::encode(Sha256::digest(d))),
        }
    }

    /// The canonical encoding given the details' digest (what an export carries).
    pub fn canonical_with(&self, detail: Option<String>) -> Vec<u8> {
        serde_json::to_vec(&(
            self.seq,
            self.time,
            &self.actor_type,
            &self.actor_id,
            &self.action,
            &self.target_type,
            &self.target_id,
            &self.ip,
            &self.request_id,
            detail,
        ))
        .unwrap_or_default()
    }

    pub fn compute_hash(&self, prev_hash: &[u8]) -> Vec<u8> {
        let mut h = Sha256::new();
        h.update(prev_hash);
        h.update(self.canonical());
        h.finalize().to_vec()
    }
}
