//! Outside anchors: copies of the newest signed checkpoint of each chain that
//! leave the data dir (every backup manifest, every audit export, /trust.json).
//! Someone who can write control.db can delete the newest checkpoints of a
//! chain and rewrite what they covered; a copy kept elsewhere still names
//! them, so `aura audit verify --anchor FILE` (and the restore drill, with
//! the newest backup's manifest) notices that they are gone.

use serde::{Deserialize, Serialize};

use super::signing::{ChainLink, CheckpointBody};
use super::verify::SignedCheckpoint;
use crate::error::{Error, Result};
use crate::store::Sql;
use crate::store::audit as sql;
use crate::store::control::Control;
use crate::store::tenant::TenantPool;

/// One signed checkpoint in a portable form (hex for bytes).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnchorCheckpoint {
    pub scope: String,
    pub seq: i64,
    pub hash: String,
    pub time: i64,
    pub reason: String,
    /// Its place in the scope's checkpoint chain (absent on checkpoints
    /// signed before checkpoints were chained).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    pub signature: String,
}

impl AnchorCheckpoint {
    pub fn from_signed(c: &SignedCheckpoint) -> Self {
        Self {
            scope: c.body.scope.clone(),
            seq: c.body.seq,
            hash: hex::encode(&c.body.hash),
            time: c.body.time,
            reason: c.body.reason.clone(),
            index: c.body.link.as_ref().map(|l| l.index),
            prev: c.body.link.as_ref().map(|l| hex::encode(&l.prev)),
            signature: hex::encode(&c.signature),
        }
    }

    pub fn to_signed(&self) -> Result<SignedCheckpoint> {
        let bad = |what: &str| Error::Usage(format!("anchor: a checkpoint's {what} is not hex"));
        let link = match (self.index, &self.prev) {
            (Some(index), Some(prev)) => Some(ChainLink {
                index,
                prev: hex::decode(prev).map_err(|_| bad("prev"))?,
            }),
            (None, None) => None,
            _ => {
                return Err(Error::Usage(
                    "anchor: a checkpoint has `index` without `prev` (or the reverse)".into(),
                ));
            }
        };
        Ok(SignedCheckpoint {
            body: CheckpointBody {
                scope: self.scope.clone(),
                seq: self.seq,
                hash: hex::decode(&self.hash).map_err(|_| bad("hash"))?,
                time: self.time,
                reason: self.reason.clone(),
                link,
            },
            signature: hex::decode(&self.signature).map_err(|_| bad("signature"))?,
        })
    }
}

/// The newest checkpoint of every chain, with the key that signed them.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Anchor {
    /// The appliance's Ed25519 audit public key (hex).
    pub public_key: String,
    pub checkpoints: Vec<AnchorCheckpoint>,
}

impl Anchor {
    /// Reads the newest checkpoint of every scope from a control.db.
    pub fn current(conn: &dyn Sql, public_key: &[u8; 32]) -> Result<Self> {
        Ok(Self {
            public_key: hex::encode(public_key),
            checkpoints: sql::latest_checkpoints(conn)?
                .iter()
                .map(AnchorCheckpoint::from_signed)
                .collect(),
        })
    }

    pub fn key(&self) -> Result<[u8; 32]> {
        hex::decode(self.public_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| Error::Usage("anchor: the public key is not 64 hex characters".into()))
    }

    pub fn signed(&self) -> Result<Vec<SignedCheckpoint>> {
        self.checkpoints
            .iter()
            .map(AnchorCheckpoint::to_signed)
            .collect()
    }

    /// Reads an anchor from any file that carries one: a backup's
    /// `manifest.json` (`audit_anchor`), a saved `/trust.json`
    /// (`audit.public_key` and `audit.platform_checkpoint` in its `document`),
    /// an NDJSON audit export (its first line) or a CSV export's `.checkpoint.json`.
    pub fn parse(text: &str) -> Result<Self> {
        let unknown = || {
            Error::Usage(
                "anchor: not a backup manifest, a saved /trust.json, an audit export or its .checkpoint.json".into(),
            )
        };
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let v: serde_json::Value = serde_json::from_str(text)
            .or_else(|_| serde_json::from_str(first))
            .map_err(|_| unknown())?;
        if let Some(a) = v.get("audit_anchor").filter(|a| !a.is_null()) {
            return serde_json::from_value(a.clone())
                .map_err(|e| Error::Usage(format!("anchor: the manifest's audit_anchor: {e}")));
        }
        // A signed /trust.json carries its facts under `document`.
        let facts = v.get("document").filter(|d| d.is_object()).unwrap_or(&v);
        if let Some(audit) = facts.get("audit").filter(|a| a.get("public_key").is_some()) {
            let public_key = audit["public_key"].as_str().unwrap_or_default().to_owned();
            let checkpoints = match audit.get("platform_checkpoint") {
                Some(c) if !c.is_null() => vec![
                    serde_json::from_value(c.clone())
                        .map_err(|e| Error::Usage(format!("anchor: platform_checkpoint: {e}")))?,
                ],
                _ => Vec::new(),
            };
            return Ok(Self {
                public_key,
                checkpoints,
            });
        }
        if v.get("type").and_then(|t| t.as_str()) == Some("checkpoint") {
            let public_key = v["public_key"].as_str().unwrap_or_default().to_owned();
            let cp: AnchorCheckpoint = serde_json::from_value(v)
                .map_err(|e| Error::Usage(format!("anchor: the export's checkpoint: {e}")))?;
            return Ok(Self {
                public_key,
                checkpoints: vec![cp],
            });
        }
        Err(unknown())
    }
}

/// The scopes an outside anchor names that this appliance has no chain for,
/// split into (deleted here since, i.e. shredded; missing for no reason).
pub fn scopes_missing(
    control: &Control,
    anchors: &[SignedCheckpoint],
) -> Result<(Vec<String>, Vec<String>)> {
    let here: Vec<String> = super::chains::all_chains(control)?
        .iter()
        .map(super::chains::Chain::scope)
        .collect();
    let shredded = control.db.read(crate::store::lifecycle::shredded_ids)?;
    let (mut gone, mut missing) = (Vec::new(), Vec::new());
    for a in anchors {
        let scope = &a.body.scope;
        if here.contains(scope) || gone.contains(scope) || missing.contains(scope) {
            continue;
        }
        if shredded.contains(scope) {
            gone.push(scope.clone());
        } else {
            missing.push(scope.clone());
        }
    }
    Ok((gone, missing))
}

/// Checks every live chain against an outside anchor (the restore drill does
/// this with the newest backup's manifest). Returns the first problem.
pub fn check_live_against(
    control: &Control,
    pool: &TenantPool,
    anchor: &Anchor,
    now: i64,
    max_unsigned_age: i64,
) -> Result<Option<String>> {
    if anchor.key()? != control.signer.public_key() {
        return Ok(Some(
            "the anchor is signed by another audit key than this appliance's".into(),
        ));
    }
    let anchors = anchor.signed()?;
    if let Some(scope) = scopes_missing(control, &anchors)?.1.first() {
        return Ok(Some(format!(
            "chain {scope} is in the anchor but missing here"
        )));
    }
    for chain in super::chains::all_chains(control)? {
        let r = super::chains::verify_chain(control, pool, chain, now, max_unsigned_age, &anchors)?;
        if let Some(seq) = r.first_bad_seq {
            return Ok(Some(format!(
                "{}: first bad seq {seq}: {}",
                r.scope,
                r.reason.unwrap_or_default()
            )));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_file() {
        let cp = AnchorCheckpoint {
            scope: "platform".into(),
            seq: 3,
            hash: "00".repeat(32),
            time: 5,
            reason: "backup".into(),
            index: Some(2),
            prev: Some("11".repeat(32)),
            signature: "22".repeat(64),
        };
        let pk = "33".repeat(32);
        let manifest = serde_json::json!({ "format": 1, "audit_anchor": { "public_key": pk, "checkpoints": [cp] } });
        let trust = serde_json::json!({ "audit": { "public_key": pk, "platform_checkpoint": cp } });
        let mut line = serde_json::to_value(&cp).unwrap();
        line["type"] = "checkpoint".into();
        line["public_key"] = pk.clone().into();
        line["filtered"] = false.into();
        let export = format!("{line}\n{{\"type\":\"entry\"}}\n");
        for text in [
            serde_json::to_string_pretty(&manifest).unwrap(),
            trust.to_string(),
            export,
        ] {
            let a = Anchor::parse(&text).unwrap();
            assert_eq!(a.public_key, pk);
            assert_eq!(a.checkpoints, vec![cp.clone()]);
            assert!(a.signed().is_ok());
        }
        assert!(Anchor::parse("{\"format\": 1}").is_err());
        assert!(Anchor::parse("not json").is_err());
    }
}
