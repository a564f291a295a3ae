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
//!
//! It streams: a `Verifier` is fed the chain entry by entry, oldest first
//! (read from the database in keyset pages inside one read snapshot), and
//! holds only the previous hash, the signed checkpoints and a few redaction
//! lists, so memory stays flat however long the chain is (issue 27,
//! finding 4). The checks that look at checkpoints alone live in
//! `verify_checkpoints`.

use std::collections::{HashMap, HashSet};

use super::StoredEntry;
use super::signing::{CheckpointBody, verify_signature};
use super::verify_checkpoints::{anchor_problems, checkpoint_chain_problem, effective};
use crate::audit::GENESIS;
use crate::crypto::Sealer;
use crate::error::Result;
pub use crate::model::checkpoint::{ChainReport, SignedCheckpoint};
use crate::store::Sql;
use crate::store::audit as sql;

/// The action of the entry that may replace earlier entries' sealed details.
pub const ANONYMISED: &str = "data_subject.anonymised";
/// Deleting a collection removes its records' values from their entries.
pub const COLLECTION_DELETED: &str = "collection.deleted";
/// A retention purge removes its records' values from their entries.
pub const RETENTION_PURGED: &str = "retention.purged";

/// Entries read per page while verifying: memory stays at one page however
/// long the chain is.
const VERIFY_PAGE: i64 = 128;

/// Replacing entries whose sealed lists are kept at once (a cache: the
/// entries they replaced usually come close together).
const LISTS_KEPT: usize = 64;

/// Where a chain's entries come from.
#[derive(Clone, Copy)]
pub enum Entries<'a> {
    /// The `audit_log` table of this connection (a live database, a restored
    /// copy, a moved-in bundle), streamed page by page in one read snapshot.
    /// The connection must not be inside a transaction already.
    Db(&'a dyn Sql),
    /// A chain held in memory (unit tests, quick checks of small chains).
    Slice(&'a [StoredEntry]),
}

/// Everything one verification looks at. Only `scope`, `entries`,
/// `checkpoints` and `public_key` are always known; each optional part adds
/// its check wherever the caller has it.
pub struct Inputs<'a> {
    pub scope: &'a str,
    pub entries: Entries<'a>,
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
        entries: Entries<'a>,
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

/// Verifies one chain with every check its inputs allow. Errors only when
/// the database cannot be read; a broken chain is a report, not an error.
pub fn check(i: &Inputs<'_>) -> Result<ChainReport> {
    let mut v = Verifier::new(i);
    match i.entries {
        Entries::Slice(entries) => {
            for e in entries {
                v.feed(e, &mut |seq| {
                    Ok(entries.iter().find(|r| r.seq == seq).cloned())
                })?;
            }
        }
        Entries::Db(c) => sql::in_snapshot(c, || {
            let mut after = 0;
            loop {
                let page = sql::entries_after(c, after, VERIFY_PAGE)?;
                for e in &page {
                    v.feed(e, &mut |seq| sql::entry(c, seq))?;
                }
                match page.last() {
                    Some(last) if page.len() as i64 == VERIFY_PAGE => after = last.seq,
                    _ => break,
                }
            }
            Ok(())
        })?,
    }
    Ok(v.finish())
}

/// Finds an entry of the chain by seq (the one that replaced another's
/// details), in the same snapshot the chain is read from.
type Lookup<'l> = dyn FnMut(i64) -> Result<Option<StoredEntry>> + 'l;

/// Checks a chain entry by entry, oldest first. Holds the effective signed
/// checkpoints, the previous hash and at most `LISTS_KEPT` redaction lists.
struct Verifier<'a> {
    scope: String,
    sealer: Option<&'a Sealer>,
    freshness: Option<(i64, i64)>,
    /// Problems of the chain and its checkpoints, in the order found.
    problems: Vec<(i64, String)>,
    /// Problems only the optional inputs find: on the same seq, the chain's
    /// own problem is named first.
    anchor_problems: Vec<(i64, String)>,
    /// Valid signed checkpoints still in force (see `effective`).
    valid: Vec<CheckpointBody>,
    /// Indexes into `valid` by seq, and whether each matched its entry.
    at_seq: HashMap<i64, Vec<usize>>,
    matched: Vec<Option<bool>>,
    /// The sealed lists of the replacing entries met lately, by their seq.
    lists: HashMap<i64, HashSet<i64>>,
    /// The first entry replaced without being listed (with the key).
    unlisted: Option<(i64, String)>,
    /// The first entry older than the allowed unsigned age and uncovered.
    stale: Option<(i64, String)>,
    /// Set by the first entry: the chain starts after this seq.
    base_seq: Option<i64>,
    /// The newest checkpointed seq (or the base): entries above it are
    /// unsigned.
    covered: i64,
    prev: Vec<u8>,
    next_expected: i64,
    /// The link check stopped at its first problem.
    broken: bool,
    count: u64,
    head_seq: Option<i64>,
}

impl<'a> Verifier<'a> {
    fn new(i: &Inputs<'a>) -> Self {
        let mut problems = Vec::new();
        let mut valid: Vec<&CheckpointBody> = Vec::new();
        for cp in i.checkpoints {
            let ok = i
                .public_key
                .is_some_and(|pk| verify_signature(pk, &cp.body, &cp.signature));
            if ok && cp.body.scope == i.scope {
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
        let valid: Vec<CheckpointBody> = effective(valid).into_iter().cloned().collect();
        let mut at_seq: HashMap<i64, Vec<usize>> = HashMap::new();
        for (n, c) in valid.iter().enumerate() {
            at_seq.entry(c.seq).or_default().push(n);
        }
        Self {
            scope: i.scope.to_owned(),
            sealer: i.sealer,
            freshness: i.freshness,
            problems,
            anchor_problems: anchor_problems(i.scope, i.checkpoints, i.anchors, i.public_key),
            matched: vec![None; valid.len()],
            valid,
            at_seq,
            lists: HashMap::new(),
            unlisted: None,
            stale: None,
            base_seq: None,
            covered: 0,
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
        self.covered = self
            .valid
            .iter()
            .map(|c| c.seq)
            .max()
            .unwrap_or(0)
            .max(base_seq);
        self.prev = base_hash;
        self.next_expected = base_seq + 1;
    }

    /// Feeds the next entry; `lookup` finds a later entry by seq.
    fn feed(&mut self, e: &StoredEntry, lookup: &mut Lookup<'_>) -> Result<()> {
        if self.base_seq.is_none() {
            self.start(e);
        }
        self.count += 1;
        self.head_seq = Some(e.seq);
        if let Some(ns) = self.at_seq.get(&e.seq) {
            for n in ns {
                if let (Some(m), Some(c)) = (self.matched.get_mut(*n), self.valid.get(*n)) {
                    *m = Some(c.hash == e.hash);
                }
            }
        }
        if !self.broken {
            self.link(e, lookup)?;
        }
        // Entries that should have been signed by now but are covered by no
        // checkpoint: the checkpoints that covered them were deleted.
        if let (None, Some((now, max_age))) = (&self.stale, self.freshness) {
            if e.seq > self.covered && e.time < now - max_age {
                self.stale = Some((
                    e.seq,
                    format!(
                        "the entry is older than {max_age} s but no signed checkpoint covers it: checkpoints were deleted, or nothing signed the chain for that long"
                    ),
                ));
            }
        }
        if let (None, Some(sealer), Some(by)) = (&self.unlisted, self.sealer, e.redacted_by) {
            if !self.listed(by, e.seq, sealer, lookup)? {
                self.unlisted = Some((
                    e.seq,
                    format!("the entry's details were replaced, but entry {by} does not list it"),
                ));
            }
        }
        Ok(())
    }

    /// The hash link from the previous entry, and the redaction rule.
    fn link(&mut self, e: &StoredEntry, lookup: &mut Lookup<'_>) -> Result<()> {
        let expected = self.next_expected;
        self.next_expected += 1;
        let problem = if e.seq != expected {
            Some((expected, "entry missing (sequence gap)"))
        } else if e.prev_hash != self.prev {
            Some((e.seq, "prev_hash does not link to the previous entry"))
        } else if e.compute_hash(&self.prev) != e.hash {
            Some((e.seq, "entry content does not match its hash"))
        } else {
            redaction_problem(e, lookup)?.map(|p| (e.seq, p))
        };
        match problem {
            Some((seq, why)) => {
                self.problems.push((seq, why.into()));
                self.broken = true;
            }
            None => self.prev = e.hash.clone(),
        }
        Ok(())
    }

    /// With the workspace key, a replaced entry must also be listed by the
    /// entry that replaced it (its sealed `audit_seqs`), so an anonymisation
    /// cannot be borrowed to cover a hand edit of any other entry.
    fn listed(
        &mut self,
        by: i64,
        seq: i64,
        sealer: &Sealer,
        lookup: &mut Lookup<'_>,
    ) -> Result<bool> {
        if !self.lists.contains_key(&by) {
            if self.lists.len() >= LISTS_KEPT {
                self.lists.clear();
            }
            let listed = lookup(by)?
                .map(|r| listed_seqs(&r, sealer))
                .unwrap_or_default();
            self.lists.insert(by, listed);
        }
        Ok(self.lists.get(&by).is_some_and(|l| l.contains(&seq)))
    }

    fn finish(mut self) -> ChainReport {
        let base_seq = self.base_seq.unwrap_or(0);
        let head_seq = self.head_seq.unwrap_or(base_seq);
        for (c, matched) in self.valid.iter().zip(&self.matched) {
            if c.seq <= base_seq {
                continue;
            }
            if c.seq > head_seq {
                self.problems.push((
                    head_seq + 1,
                    format!("the chain ends at seq {head_seq} but a signed checkpoint covers seq {}: entries were cut off", c.seq),
                ));
                continue;
            }
            match matched {
                Some(true) => {}
                Some(false) => self
                    .problems
                    .push((c.seq, "entry does not match the signed checkpoint".into())),
                None => self
                    .problems
                    .push((c.seq, "entry under a signed checkpoint is missing".into())),
            }
        }
        // The first problem by seq; on a tie, the one listed first.
        let first = self
            .problems
            .into_iter()
            .chain(self.stale)
            .chain(self.unlisted)
            .chain(self.anchor_problems)
            .min_by_key(|(s, _)| *s);
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
fn redaction_problem(e: &StoredEntry, lookup: &mut Lookup<'_>) -> Result<Option<&'static str>> {
    Ok(match (e.redacted_by, &e.detail_digest) {
        (None, None) => None,
        (None, Some(_)) if e.resealed => None,
        (None, Some(_)) | (Some(_), None) => {
            Some("the entry's details were replaced outside an anonymisation")
        }
        (Some(by), Some(_)) => {
            let redactor = if by > e.seq { lookup(by)? } else { None };
            match redactor {
                Some(r)
                    if [ANONYMISED, COLLECTION_DELETED, RETENTION_PURGED]
                        .contains(&r.action.as_str()) =>
                {
                    None
                }
                _ => Some(
                    "the entry's details were replaced, but no later anonymisation entry covers it",
                ),
            }
        }
    })
}

/// The seqs a replacing entry lists in its sealed `audit_seqs`.
fn listed_seqs(r: &StoredEntry, sealer: &Sealer) -> HashSet<i64> {
    let d = super::search::detail(r, sealer);
    ["after", "before"]
        .iter()
        .filter_map(|side| {
            d.get(side)
                .and_then(|s| s.get("audit_seqs"))
                .and_then(|a| a.as_array())
        })
        .flat_map(|a| a.iter().filter_map(|v| v.as_i64()))
        .collect()
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
