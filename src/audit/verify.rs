//! Verification of one chain against its signed checkpoints. Detects, with the
//! first bad sequence number: an edited entry, a deleted one, reordered ones, an
//! inserted one, and a truncated tail (entries missing after a signed head).
//! A chain rewritten consistently from some point on is caught at the first
//! checkpoint it no longer matches.

use serde::Serialize;

use super::StoredEntry;
use super::signing::{CheckpointBody, verify_signature};
use crate::audit::GENESIS;

/// The action of the entry that may replace earlier entries' sealed details.
pub const ANONYMISED: &str = "data_subject.anonymised";
/// Deleting a collection removes its records' values from their entries.
pub const COLLECTION_DELETED: &str = "collection.deleted";

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

pub struct SignedCheckpoint {
    pub body: CheckpointBody,
    pub signature: Vec<u8>,
}

pub fn verify(
    scope: &str,
    entries: &[StoredEntry],
    checkpoints: &[SignedCheckpoint],
    public_key: Option<&[u8; 32]>,
) -> ChainReport {
    let mut problems: Vec<(i64, String)> = Vec::new();

    let mut valid: Vec<&CheckpointBody> = Vec::new();
    for cp in checkpoints {
        let ok = public_key.is_some_and(|pk| verify_signature(pk, &cp.body, &cp.signature));
        if ok && cp.body.scope == scope {
            valid.push(&cp.body);
        } else {
            problems.push((
                cp.body.seq.max(1),
                "a checkpoint's signature does not verify".into(),
            ));
        }
    }

    // Where the chain may start: seq 1, or right after a signed *retention*
    // checkpoint. Other checkpoints are no anchors: otherwise cutting off the
    // oldest entries up to any checkpoint would go unnoticed.
    let (base_seq, base_hash) = match entries.first() {
        Some(first) if first.seq > 1 => {
            match valid.iter().find(|c| {
                c.reason == "retention" && c.seq == first.seq - 1 && c.hash == first.prev_hash
            }) {
                Some(anchor) => (anchor.seq, anchor.hash.clone()),
                None => {
                    let expected = valid
                        .iter()
                        .filter(|c| c.reason == "retention" && c.seq < first.seq)
                        .map(|c| c.seq)
                        .max()
                        .unwrap_or(0);
                    problems.push((
                        expected + 1,
                        "entries are missing before this one and no signed retention checkpoint covers them".into(),
                    ));
                    (first.seq - 1, first.prev_hash.clone())
                }
            }
        }
        _ => (0, GENESIS.to_vec()),
    };

    let mut prev = base_hash;
    for (expected, e) in (base_seq + 1..).zip(entries.iter()) {
        if e.seq != expected {
            problems.push((expected, "entry missing (sequence gap)".into()));
            break;
        }
        if e.prev_hash != prev {
            problems.push((
                e.seq,
                "prev_hash does not link to the previous entry".into(),
            ));
            break;
        }
        if e.compute_hash(&prev) != e.hash {
            problems.push((e.seq, "entry content does not match its hash".into()));
            break;
        }
        if let Some(problem) = redaction_problem(e, entries, base_seq) {
            problems.push((e.seq, problem.into()));
            break;
        }
        prev = e.hash.clone();
    }

    let head_seq = entries.last().map(|e| e.seq).unwrap_or(base_seq);
    for cp in &valid {
        if cp.seq <= base_seq {
            continue;
        }
        if cp.seq > head_seq {
            problems.push((
                head_seq + 1,
                format!("the chain ends at seq {head_seq} but a signed checkpoint covers seq {}: entries were cut off", cp.seq),
            ));
            continue;
        }
        let at = entries.iter().find(|e| e.seq == cp.seq);
        match at {
            Some(e) if e.hash == cp.hash => {}
            Some(_) => problems.push((cp.seq, "entry does not match the signed checkpoint".into())),
            None => problems.push((cp.seq, "entry under a signed checkpoint is missing".into())),
        }
    }

    let first = problems.into_iter().min_by_key(|(s, _)| *s);
    ChainReport {
        scope: scope.to_owned(),
        entries: entries.len() as u64,
        head_seq,
        checkpoint_seq: valid.iter().map(|c| c.seq).max(),
        first_bad_seq: first.as_ref().map(|(s, _)| *s),
        reason: first.map(|(_, r)| r),
    }
}

/// An entry with replaced details must name a later `data_subject.anonymised`
/// entry of the same chain, and only such an entry carries a stored digest.
fn redaction_problem(
    e: &StoredEntry,
    entries: &[StoredEntry],
    base_seq: i64,
) -> Option<&'static str> {
    match (e.redacted_by, &e.detail_digest) {
        (None, None) => None,
        (None, Some(_)) | (Some(_), None) => {
            Some("the entry's details were replaced outside an anonymisation")
        }
        (Some(by), Some(_)) => {
            let at = usize::try_from(by - base_seq - 1).ok();
            let redactor = at.and_then(|i| entries.get(i)).filter(|r| r.seq == by);
            match redactor {
                Some(r)
                    if by > e.seq
                        && [ANONYMISED, COLLECTION_DELETED].contains(&r.action.as_str()) =>
                {
                    None
                }
                _ => Some(
                    "the entry's details were replaced, but no later anonymisation entry covers it",
                ),
            }
        }
    }
}
