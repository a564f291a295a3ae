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

/// Verifies a whole chain held in memory (tests and small chains); the
/// server streams it through `Verifier` instead.
pub fn verify(
    scope: &str,
    entries: &[StoredEntry],
    checkpoints: &[SignedCheckpoint],
    public_key: Option<&[u8; 32]>,
) -> ChainReport {
    let mut v = Verifier::new(scope, checkpoints, public_key);
    for e in entries {
        v.feed(e, &mut |seq| {
            entries
                .iter()
                .find(|r| r.seq == seq)
                .map(|r| r.action.clone())
        });
    }
    v.finish()
}

/// Checks a chain entry by entry, oldest first, holding only the previous
/// hash and the signed checkpoints: memory stays flat however long the
/// chain is (issue 27, finding 4).
pub struct Verifier {
    scope: String,
    problems: Vec<(i64, String)>,
    /// Valid signed checkpoints.
    valid: Vec<CheckpointBody>,
    /// Checkpoint seqs met while feeding, with whether the hash matched.
    met: std::collections::HashMap<i64, bool>,
    base_seq: Option<i64>,
    prev: Vec<u8>,
    next_expected: i64,
    /// The link check stopped at its first problem.
    broken: bool,
    count: u64,
    head_seq: Option<i64>,
}

impl Verifier {
    pub fn new(
        scope: &str,
        checkpoints: &[SignedCheckpoint],
        public_key: Option<&[u8; 32]>,
    ) -> Self {
        let mut problems = Vec::new();
        let mut valid = Vec::new();
        for cp in checkpoints {
            let ok = public_key.is_some_and(|pk| verify_signature(pk, &cp.body, &cp.signature));
            if ok && cp.body.scope == scope {
                valid.push(cp.body.clone());
            } else {
                problems.push((
                    cp.body.seq.max(1),
                    "a checkpoint's signature does not verify".into(),
                ));
            }
        }
        Self {
            scope: scope.to_owned(),
            problems,
            valid,
            met: Default::default(),
            base_seq: None,
            prev: Vec::new(),
            next_expected: 0,
            broken: false,
            count: 0,
            head_seq: None,
        }
    }

    /// Where the chain may start: seq 1, or right after a signed *retention*
    /// checkpoint. Other checkpoints are no anchors: otherwise cutting off the
    /// oldest entries up to any checkpoint would go unnoticed.
    fn start(&mut self, first: &StoredEntry) {
        let (base_seq, base_hash) = if first.seq > 1 {
            match self.valid.iter().find(|c| {
                c.reason == "retention" && c.seq == first.seq - 1 && c.hash == first.prev_hash
            }) {
                Some(anchor) => (anchor.seq, anchor.hash.clone()),
                None => {
                    let expected = self
                        .valid
                        .iter()
                        .filter(|c| c.reason == "retention" && c.seq < first.seq)
                        .map(|c| c.seq)
                        .max()
                        .unwrap_or(0);
                    self.problems.push((
                        expected + 1,
                        "entries are missing before this one and no signed retention checkpoint covers them".into(),
                    ));
                    (first.seq - 1, first.prev_hash.clone())
                }
            }
        } else {
            (0, GENESIS.to_vec())
        };
        self.base_seq = Some(base_seq);
        self.prev = base_hash;
        self.next_expected = base_seq + 1;
    }

    /// Feeds the next entry. `action_of` finds a later entry's action by seq
    /// (the anonymisation that replaced this entry's details).
    pub fn feed(&mut self, e: &StoredEntry, action_of: &mut dyn FnMut(i64) -> Option<String>) {
        if self.base_seq.is_none() {
            self.start(e);
        }
        self.count += 1;
        self.head_seq = Some(e.seq);
        if let Some(cp) = self.valid.iter().find(|c| c.seq == e.seq) {
            let ok = cp.hash == e.hash;
            self.met.insert(e.seq, ok);
        }
        if self.broken {
            return;
        }
        let expected = self.next_expected;
        self.next_expected += 1;
        let problem = if e.seq != expected {
            Some((expected, "entry missing (sequence gap)"))
        } else if e.prev_hash != self.prev {
            Some((e.seq, "prev_hash does not link to the previous entry"))
        } else if e.compute_hash(&self.prev) != e.hash {
            Some((e.seq, "entry content does not match its hash"))
        } else {
            redaction_problem(e, action_of).map(|p| (e.seq, p))
        };
        match problem {
            Some((seq, why)) => {
                self.problems.push((seq, why.into()));
                self.broken = true;
            }
            None => self.prev = e.hash.clone(),
        }
    }

    pub fn finish(mut self) -> ChainReport {
        let base_seq = self.base_seq.unwrap_or(0);
        let head_seq = self.head_seq.unwrap_or(base_seq);
        for cp in &self.valid {
            if cp.seq <= base_seq {
                continue;
            }
            if cp.seq > head_seq {
                self.problems.push((
                    head_seq + 1,
                    format!("the chain ends at seq {head_seq} but a signed checkpoint covers seq {}: entries were cut off", cp.seq),
                ));
                continue;
            }
            match self.met.get(&cp.seq) {
                Some(true) => {}
                Some(false) => self
                    .problems
                    .push((cp.seq, "entry does not match the signed checkpoint".into())),
                None => self
                    .problems
                    .push((cp.seq, "entry under a signed checkpoint is missing".into())),
            }
        }
        let first = self.problems.into_iter().min_by_key(|(s, _)| *s);
        ChainReport {
            scope: self.scope,
            entries: self.count,
            head_seq,
            checkpoint_seq: self.valid.iter().map(|c| c.seq).max(),
            first_bad_seq: first.as_ref().map(|(s, _)| *s),
            reason: first.map(|(_, r)| r),
        }
    }
}

/// An entry with replaced details must name a later `data_subject.anonymised`
/// entry of the same chain, and only such an entry carries a stored digest.
fn redaction_problem(
    e: &StoredEntry,
    action_of: &mut dyn FnMut(i64) -> Option<String>,
) -> Option<&'static str> {
    match (e.redacted_by, &e.detail_digest) {
        (None, None) => None,
        (None, Some(_)) | (Some(_), None) => {
            Some("the entry's details were replaced outside an anonymisation")
        }
        (Some(by), Some(_)) => {
            let action = (by > e.seq).then(|| action_of(by)).flatten();
            match action {
                Some(a) if [ANONYMISED, COLLECTION_DELETED].contains(&a.as_str()) => None,
                _ => Some(
                    "the entry's details were replaced, but no later anonymisation entry covers it",
                ),
            }
        }
    }
}
