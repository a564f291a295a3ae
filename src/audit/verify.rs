//! Verification of one chain against its signed checkpoints: the one
//! function (`check`) behind `aura audit verify`, the scheduled verification,
//! restore drills, restores and move-in. Detects, with the first bad sequence
//! number: an edited entry, a deleted one, reordered ones, an inserted one, a
//! truncated tail (entries missing after a signed head), a deleted or
//! reordered checkpoint (checkpoints are chained), entries older than the
//! allowed unsigned age that no checkpoint covers, a redaction the
//! anonymising entry does not list (with the workspace key), and an outside
//! anchor's checkpoint missing from the chain. A chain rewritten consistently
//! from some point on is caught at the first checkpoint it no longer matches.

use serde::Serialize;

use super::StoredEntry;
use super::signing::{CheckpointBody, verify_signature};
use crate::audit::GENESIS;
use crate::crypto::Sealer;

/// Everything one verification looks at. Only `scope`, `entries`,
/// `checkpoints` and `public_key` are always known; each optional part adds
/// its check wherever the caller has it.
pub struct Inputs<'a> {
    pub scope: &'a str,
    pub entries: &'a [StoredEntry],
    pub checkpoints: &'a [SignedCheckpoint],
    pub public_key: Option<&'a [u8; 32]>,
    /// The workspace's key: a replaced entry must be listed by the entry that
    /// replaced it.
    pub sealer: Option<&'a Sealer>,
    /// `(now, max_unsigned_age)`: an entry older than that must be covered
    /// by a signed checkpoint.
    pub freshness: Option<(i64, i64)>,
    /// Checkpoints of this scope kept outside the data dir (a backup
    /// manifest, an export, /trust.json): each must be in the chain.
    pub anchors: &'a [SignedCheckpoint],
}

impl<'a> Inputs<'a> {
    pub fn new(
        scope: &'a str,
        entries: &'a [StoredEntry],
        checkpoints: &'a [SignedCheckpoint],
        public_key: Option<&'a [u8; 32]>,
    ) -> Self {
        Self {
            scope,
            entries,
            checkpoints,
            public_key,
            sealer: None,
            freshness: None,
            anchors: &[],
        }
    }
}

/// Verifies one chain with every check its inputs allow.
pub fn check(i: &Inputs<'_>) -> ChainReport {
    let mut report = verify(i.scope, i.entries, i.checkpoints, i.public_key, i.freshness);
    let mut extra: Vec<(i64, String)> = Vec::new();
    if let Some(sealer) = i.sealer {
        extra.extend(redactions_unlisted(i.entries, sealer));
    }
    for a in i.anchors {
        let signed = i
            .public_key
            .is_some_and(|pk| verify_signature(pk, &a.body, &a.signature));
        if !signed || a.body.scope != i.scope {
            extra.push((
                a.body.seq.max(1),
                "the outside anchor's checkpoint is not signed by this chain's key".into(),
            ));
            continue;
        }
        let digest = a.body.digest();
        if !i.checkpoints.iter().any(|c| c.body.digest() == digest) {
            extra.push((
                a.body.seq.max(1),
                format!(
                    "the outside anchor's checkpoint at seq {} is missing here: signed checkpoints were deleted",
                    a.body.seq
                ),
            ));
        }
    }
    if let Some((seq, reason)) = extra.into_iter().min_by_key(|(s, _)| *s) {
        if report.first_bad_seq.is_none_or(|b| seq < b) {
            report.first_bad_seq = Some(seq);
            report.reason = Some(reason);
        }
    }
    report
}

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

#[derive(Clone, Debug)]
pub struct SignedCheckpoint {
    pub body: CheckpointBody,
    pub signature: Vec<u8>,
}

fn verify(
    scope: &str,
    entries: &[StoredEntry],
    checkpoints: &[SignedCheckpoint],
    public_key: Option<&[u8; 32]>,
    freshness: Option<(i64, i64)>,
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

    if let Some(p) = checkpoint_chain_problem(&valid) {
        problems.push(p);
    }
    // Checkpoints of an old timeline that a workspace restore replaced.
    let valid = effective(valid);

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

    // Entries that should have been signed by now but are covered by no
    // checkpoint: the checkpoints that covered them were deleted.
    let covered = valid.iter().map(|c| c.seq).max().unwrap_or(0).max(base_seq);
    if let Some((now, max_age)) = freshness {
        if let Some(e) = entries
            .iter()
            .find(|e| e.seq > covered && e.time < now - max_age)
        {
            problems.push((
                e.seq,
                format!(
                    "the entry is older than {max_age} s but no signed checkpoint covers it: checkpoints were deleted, or nothing signed the chain for that long"
                ),
            ));
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

/// The chained checkpoints must run 1, 2, 3... each naming the digest of the
/// one before (the first names nothing or a checkpoint from before chaining).
fn checkpoint_chain_problem(valid: &[&CheckpointBody]) -> Option<(i64, String)> {
    let legacy: Vec<Vec<u8>> = valid
        .iter()
        .filter(|c| c.link.is_none())
        .map(|c| c.digest())
        .collect();
    let mut chained: Vec<&CheckpointBody> =
        valid.iter().copied().filter(|c| c.link.is_some()).collect();
    chained.sort_by_key(|c| c.link.as_ref().map(|l| l.index));
    let mut prev: Option<&CheckpointBody> = None;
    for c in chained {
        let Some(l) = &c.link else { continue };
        let linked = match prev.and_then(|p| p.link.as_ref().map(|pl| (p, pl))) {
            None => l.index == 1 && (l.prev == GENESIS || legacy.contains(&l.prev)),
            Some((p, pl)) => l.index == pl.index + 1 && l.prev == p.digest(),
        };
        if !linked {
            let at = prev.map(|p| (p.seq + 1).min(c.seq)).unwrap_or(1).max(1);
            return Some((
                at,
                format!(
                    "the signed checkpoints do not form an unbroken chain before checkpoint #{} (seq {}): a checkpoint was deleted or reordered",
                    l.index, c.seq
                ),
            ));
        }
        prev = Some(c);
    }
    None
}

/// Drops checkpoints that a later `restore` checkpoint superseded: those
/// signed before it (in chain order) at or above its seq, which named entries
/// of the timeline the restore replaced.
fn effective(valid: Vec<&CheckpointBody>) -> Vec<&CheckpointBody> {
    let order = |c: &CheckpointBody| c.link.as_ref().map(|l| l.index).unwrap_or(0);
    let restores: Vec<(i64, i64)> = valid
        .iter()
        .filter(|c| c.reason == "restore")
        .map(|c| (order(c), c.seq))
        .collect();
    valid
        .into_iter()
        .filter(|c| {
            !restores
                .iter()
                .any(|(at, seq)| order(c) < *at && c.seq >= *seq)
        })
        .collect()
}

/// With the workspace key, a replaced entry must also be listed by the entry
/// that replaced it (its sealed `audit_seqs`), so an anonymisation cannot be
/// borrowed to cover a hand edit of any other entry.
fn redactions_unlisted(entries: &[StoredEntry], sealer: &Sealer) -> Option<(i64, String)> {
    let first = entries.first()?.seq;
    for e in entries {
        let Some(by) = e.redacted_by else { continue };
        let listed = usize::try_from(by - first)
            .ok()
            .and_then(|i| entries.get(i))
            .map(|r| super::search::detail(r, sealer))
            .and_then(|d| {
                ["after", "before"].iter().find_map(|side| {
                    d.get(side)
                        .and_then(|s| s.get("audit_seqs"))
                        .and_then(|a| a.as_array())
                        .map(|a| a.iter().any(|v| v.as_i64() == Some(e.seq)))
                })
            })
            .unwrap_or(false);
        if !listed {
            return Some((
                e.seq,
                format!("the entry's details were replaced, but entry {by} does not list it"),
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::signing::ChainLink;
    use ed25519_dalek::{Signer, SigningKey};

    fn chain(actions: &[&str], time: i64) -> Vec<StoredEntry> {
        let mut prev = GENESIS.to_vec();
        let mut out = Vec::new();
        for (i, a) in actions.iter().enumerate() {
            let mut e = StoredEntry {
                seq: i as i64 + 1,
                time,
                actor_type: "system".into(),
                actor_id: None,
                action: (*a).into(),
                target_type: None,
                target_id: None,
                ip: None,
                request_id: None,
                detail_ct: None,
                detail_digest: None,
                redacted_by: None,
                prev_hash: prev.clone(),
                hash: Vec::new(),
            };
            e.hash = e.compute_hash(&prev);
            prev = e.hash.clone();
            out.push(e);
        }
        out
    }

    struct Signer2 {
        key: SigningKey,
        last: Option<CheckpointBody>,
    }

    impl Signer2 {
        fn sign(&mut self, e: &StoredEntry, reason: &str, chained: bool) -> SignedCheckpoint {
            let body = CheckpointBody {
                scope: "ws".into(),
                seq: e.seq,
                hash: e.hash.clone(),
                time: e.time,
                reason: reason.into(),
                link: chained.then(|| CheckpointBody::link_after(self.last.as_ref())),
            };
            self.last = Some(body.clone());
            SignedCheckpoint {
                signature: self.key.sign(&body.message()).to_bytes().to_vec(),
                body,
            }
        }
    }

    fn run(entries: &[StoredEntry], cps: &[SignedCheckpoint], pk: &[u8; 32]) -> ChainReport {
        check(&Inputs {
            freshness: Some((1_000, 600)),
            ..Inputs::new("ws", entries, cps, Some(pk))
        })
    }

    #[test]
    fn checkpoints_from_before_the_chain_still_verify_and_anchor_it() {
        let mut s = Signer2 {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
            last: None,
        };
        let pk = s.key.verifying_key().to_bytes();
        let e = chain(&["a", "b", "c", "d", "e"], 900);
        let cps = vec![
            s.sign(&e[1], "schedule", false),
            s.sign(&e[3], "schedule", true),
            s.sign(&e[4], "schedule", true),
        ];
        assert_eq!(cps[1].body.link.as_ref().map(|l| l.index), Some(1));
        assert!(run(&e, &cps, &pk).ok());
        for gone in 0..2 {
            let mut fewer = cps.clone();
            fewer.remove(gone);
            let r = run(&e, &fewer, &pk);
            assert!(
                r.reason.unwrap_or_default().contains("unbroken chain"),
                "deleting checkpoint {gone}"
            );
        }
        // Reordered: swapping two chained checkpoints' places breaks their
        // signatures, since the index is signed.
        let mut swapped = cps.clone();
        let (a, b) = (swapped[1].body.link.clone(), swapped[2].body.link.clone());
        swapped[1].body.link = b;
        swapped[2].body.link = a;
        assert!(!run(&e, &swapped, &pk).ok());
        // The first chained checkpoint may not invent a predecessor.
        let mut forged = cps.clone();
        forged[1].body.link = Some(ChainLink {
            index: 1,
            prev: vec![9; 32],
        });
        assert!(!run(&e, &forged, &pk).ok());
    }

    #[test]
    fn entries_older_than_the_allowed_age_must_be_signed() {
        let mut s = Signer2 {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
            last: None,
        };
        let pk = s.key.verifying_key().to_bytes();
        let old = chain(&["a", "b", "c"], 100);
        let r = run(&old, &[], &pk);
        assert_eq!(r.first_bad_seq, Some(1), "{r:?}");
        let cps = vec![s.sign(&old[1], "schedule", true)];
        assert_eq!(run(&old, &cps, &pk).first_bad_seq, Some(3));
        let young = chain(&["a", "b", "c"], 950);
        assert!(run(&young, &[], &pk).ok());
    }

    #[test]
    fn a_restore_checkpoint_supersedes_the_replaced_timeline() {
        let mut s = Signer2 {
            key: SigningKey::generate(&mut rand::rngs::OsRng),
            last: None,
        };
        let pk = s.key.verifying_key().to_bytes();
        let before = chain(&["a", "b", "c", "d", "e"], 900);
        let mut cps = vec![
            s.sign(&before[1], "schedule", true),
            s.sign(&before[4], "schedule", true),
        ];
        // Put back to seq 3 from a backup, then the restore entry at 4.
        let after = chain(&["a", "b", "c", "backup.restored"], 900);
        let mut manual = cps.clone();
        let mut s2 = Signer2 {
            key: SigningKey::from_bytes(&s.key.to_bytes()),
            last: s.last.clone(),
        };
        manual.push(s2.sign(&after[3], "manual", true));
        assert!(
            !run(&after, &manual, &pk).ok(),
            "old checkpoints still apply"
        );
        cps.push(s.sign(&after[3], "restore", true));
        let r = run(&after, &cps, &pk);
        assert!(r.ok(), "{r:?}");
        assert_eq!(r.checkpoint_seq, Some(4));
    }
}
