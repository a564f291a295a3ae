//! The parts of chain verification that look at checkpoints alone (no
//! entry): the checkpoint chain itself, which checkpoints a workspace restore
//! superseded, and outside anchors. `verify::check` runs them before it
//! streams the entries.

use super::GENESIS;
use super::signing::{CheckpointBody, verify_signature};
use super::verify::SignedCheckpoint;

/// The chained checkpoints must run 1, 2, 3... each naming the digest of the
/// one before (the first names nothing or a checkpoint from before chaining).
pub(super) fn checkpoint_chain_problem(valid: &[&CheckpointBody]) -> Option<(i64, String)> {
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
pub(super) fn effective(valid: Vec<&CheckpointBody>) -> Vec<&CheckpointBody> {
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

/// Each outside anchor of this scope must be signed by the chain's key and
/// be one of the chain's checkpoints: otherwise checkpoints were deleted here.
pub(super) fn anchor_problems(
    scope: &str,
    checkpoints: &[SignedCheckpoint],
    anchors: &[SignedCheckpoint],
    public_key: Option<&[u8; 32]>,
) -> Vec<(i64, String)> {
    let mut out = Vec::new();
    for a in anchors {
        let signed = public_key.is_some_and(|pk| verify_signature(pk, &a.body, &a.signature));
        if !signed || a.body.scope != scope {
            out.push((
                a.body.seq.max(1),
                "the outside anchor's checkpoint is not signed by this chain's key".into(),
            ));
            continue;
        }
        let digest = a.body.digest();
        if !checkpoints.iter().any(|c| c.body.digest() == digest) {
            out.push((
                a.body.seq.max(1),
                format!(
                    "the outside anchor's checkpoint at seq {} is missing here: signed checkpoints were deleted",
                    a.body.seq
                ),
            ));
        }
    }
    out
}
