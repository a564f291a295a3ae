//! One database's replication: notice a commit (the file or its WAL
//! changed), open a read transaction on it, and ship the pages that changed
//! since the last read as the next segment of the current generation, or a
//! whole snapshot that starts a new generation (the first time, after a
//! restart, every hour, or when told to). Writers never wait for the read.
//! Which pages to read and compare comes from the WAL frames written since
//! the last pass (`wal.rs`), so a pass costs what changed, not the size of
//! the database; without that hint every page is read and compared.
//!
//! Between two passes the shipper keeps the last pass's read transaction
//! open (its *pin*): while a reader holds a WAL snapshot SQLite cannot
//! restart the WAL, so under steady writes the frames after the last mark
//! are never overwritten and the hint holds (a checkpoint still copies
//! frames into the file, which changes no page's content). A WAL that
//! outgrew `PIN_WAL_LIMIT` is restarted by the pass itself under the
//! database's writer lock (`restart`), without losing track. A database
//! found unchanged at a pass is unpinned, so checkpoints can restart and
//! truncate its WAL again; its next pass then compares every page if the
//! WAL was restarted meanwhile.

use std::path::{Path, PathBuf};

use rand::RngCore;
use sha2::Digest;

use super::catalog::{segment_name, snapshot_name};
pub use super::early::Due;
use super::early::early_due;
use super::restart::{self, Writer};
use super::segment::{self, Segment};
use super::target::Replica;
use super::wal::{WalMark, WalPages};
use crate::error::{Error, Result};
use crate::store::replica_copy::{self, PageSource};

/// A new generation (a full snapshot) at least this often.
const SNAPSHOT_EVERY_MS: i64 = 3_600_000;
const MAX_SEGMENTS: u64 = 3_600;
/// Early passes (`Shipper::early_due`) are counted apart: each follows
/// `WAL_SIZE_LIMIT` bytes of commits, so this many mean some 28 GiB written
/// since the snapshot, past which a new one is cheaper to restore from.
const MAX_EARLY: u64 = 3_600;

/// A pinned WAL longer than this (in frames, as the pass's read found it)
/// is restarted by the pass itself, under the database's writer lock
/// (`restart`); without a writer of this process to hold, the pin is let
/// go, so checkpoints can restart it (the pin stops restarts, not appends).
/// The same length as the WAL file is cut back to, so that a WAL file past
/// it means the pinned WAL needs its restart (`Shipper::early_due`).
pub(super) const PIN_WAL_LIMIT: u64 = crate::store::WAL_SIZE_LIMIT;

/// An idle database's pin (at read lock 0, `restart::repin_idle`) is let go
/// after this long without a change: idle databases hold nothing.
const IDLE_PIN: std::time::Duration = std::time::Duration::from_secs(30);

/// Sizes and modification times of the file and its WAL.
type Fingerprint = [(u64, i128); 2];

#[derive(Clone)]
pub(crate) struct Gen {
    pub(super) id: String,
    started_ms: i64,
    pub(super) seq: u64,
    pub(super) page_size: u32,
    pub(super) hashes: Vec<[u8; 16]>,
    /// Where the WAL ended at the last read: the next pass reads the frames
    /// after it to know what changed.
    pub(super) mark: Option<WalMark>,
    /// How many of the `seq` segments early passes shipped.
    pub(super) early: u64,
}

pub struct Shipper {
    /// `control` or `ws-<id>`.
    pub name: String,
    path: PathBuf,
    fp: Option<Fingerprint>,
    current: Option<Gen>,
    /// The last pass's read transaction, kept open until the next pass has
    /// read the WAL frames after its mark.
    pin: Option<replica_copy::Pin>,
    /// Start a new generation at the next pass (after a shred, so no older
    /// control.db state, with the destroyed key in it, is kept).
    pub force_new: bool,
    /// Once the forced generation is shipped, drop every older one (a
    /// shred's; `sweep`).
    pub drop_older: bool,
    /// This process's writer of the database, held for a controlled WAL
    /// restart (`restart`).
    writer: Option<Writer>,
    /// Passes that compared every page for want of a WAL hint (the
    /// fallback; snapshots not counted), and WAL restarts passes saw (a
    /// mark of a later epoch than the last pass's).
    pub full_compares: u64,
    pub wal_restarts: u64,
    /// Since when the database has been found unchanged at every pass.
    idle_since: Option<std::time::Instant>,
    /// In the last pass's WAL epoch, the WAL file's length past which an
    /// early pass is due: its length when the pass ended, plus
    /// `WAL_SIZE_LIMIT` after an early pass or a restart tried (which did
    /// not start the WAL over if the epoch stays: a reader between the
    /// checkpoint and the next commit, a busy writer, or frames of a long
    /// transaction not yet committed).
    due_past: u64,
}

pub enum Outcome {
    Unchanged,
    Shipped {
        seq: u64,
        generation: String,
        new_generation: bool,
        /// The instant the shipped state is stamped with.
        at_ms: i64,
    },
    Gone,
}

struct Shipped {
    name: String,
    sealed: Vec<u8>,
    new_generation: bool,
}

/// What one pass found: the object to ship (its name and segment), if any
/// page changed, and the state to compare the next pass against.
pub(crate) struct Pass {
    pub(crate) segment: Option<(String, Segment)>,
    pub(crate) current: Gen,
    pub(crate) fresh: bool,
    /// The instant the state is stamped with: when its read was done.
    pub(crate) at_ms: i64,
    /// The read transaction, still open.
    pub(crate) pin: Option<replica_copy::Pin>,
    /// A segment found by comparing every page (no usable WAL hint).
    pub(crate) compared_all: bool,
}

fn fingerprint(path: &Path) -> Option<Fingerprint> {
    let stat = |p: &Path| {
        std::fs::metadata(p).ok().map(|m| {
            let t = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos() as i128)
                .unwrap_or(0);
            (m.len(), t)
        })
    };
    let db = stat(path)?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    Some([db, stat(Path::new(&wal)).unwrap_or((0, 0))])
}

/// A file modified this close to when it was looked at may be modified
/// again within the same timestamp tick (the kernel's coarse clock) with the
/// same size, which its fingerprint would not show ("racily clean", as git
/// calls it): such a fingerprint is not kept, so the next pass reads again.
const RACY_NS: i128 = 100_000_000;

fn racy(fp: &Fingerprint) -> bool {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    fp.iter().any(|(_, mtime)| now - mtime < RACY_NS)
}

/// The hash of a page shipped on the WAL's word, not hashed (`changes`):
/// no page's (16 bytes of SHA-256 all zero), so a comparison of every page
/// finds it changed and ships it.
const UNKNOWN: [u8; 16] = [0; 16];

fn page_hash(p: &[u8]) -> [u8; 16] {
    let d = sha2::Sha256::digest(p);
    let mut h = [0u8; 16];
    h.copy_from_slice(&d[..16]);
    h
}

impl Shipper {
    pub fn new(name: String, path: PathBuf, writer: Option<Writer>) -> Self {
        Self {
            name,
            path,
            fp: None,
            current: None,
            pin: None,
            force_new: false,
            drop_older: false,
            writer,
            full_compares: 0,
            wal_restarts: 0,
            idle_since: None,
            due_past: 0,
        }
    }

    /// True when the database is under write load (its last pass found a
    /// change and holds a pin) and its WAL is due its restart now rather
    /// than at the next regular pass: the pin lets the WAL grow for a whole
    /// interval, and every commit then appends to cold memory
    /// (docs/benchmarks.md, "after the start and cold-open changes").
    pub fn early_due(&self) -> bool {
        if self.pin.is_none() || self.idle_since.is_some() {
            return false;
        }
        let len = super::wal::size(&self.path);
        if len <= crate::store::WAL_SIZE_LIMIT {
            return false;
        }
        let mark = self.current.as_ref().and_then(|g| g.mark);
        let restarted = match (mark, super::wal::salt(&self.path)) {
            (Some(m), Some(salt)) => m.salt != salt,
            _ => false,
        };
        early_due(len, restarted, self.due_past)
    }

    /// Ends the last pass's read transaction (the next pass may then
    /// compare every page, if the WAL starts over meanwhile).
    pub fn let_go(&mut self) {
        self.pin = None;
    }

    /// Whether the last pass's read transaction is still held.
    pub fn pinned(&self) -> bool {
        self.pin.is_some()
    }

    /// Lets go of the pin if a checkpoint of this process waits to empty
    /// the WAL (a scrub's, `store::wal_wanted`); true when it did.
    pub fn let_go_if_wanted(&mut self) -> bool {
        let go = self.pin.is_some() && crate::store::wal_wanted::wanted(&self.path);
        if go {
            self.pin = None;
        }
        go
    }

    pub fn generation(&self) -> Option<&str> {
        self.current.as_ref().map(|g| g.id.as_str())
    }

    /// One pass: ships what changed, if anything.
    pub async fn sync(
        &mut self,
        replica: &Replica,
        recipients: &[age::x25519::Recipient],
        tmp_dir: &Path,
        now_ms: i64,
        due: Due,
    ) -> Result<Outcome> {
        let Some(fp) = fingerprint(&self.path) else {
            self.pin = None;
            return Ok(Outcome::Gone);
        };
        if !self.force_new && self.current.is_some() && self.fp == Some(fp) {
            // Idle: the pin moves to read lock 0 once (checkpoints can then
            // restart and truncate the WAL once without the next pass losing
            // track), and goes after `IDLE_PIN`.
            let first = self.idle_since.is_none();
            let since = *self.idle_since.get_or_insert_with(std::time::Instant::now);
            let mark = self.current.as_ref().and_then(|g| g.mark);
            self.pin = match (self.pin.take(), self.writer.clone(), mark) {
                (Some(pin), Some(w), Some(mark)) if first => {
                    let (src, tmp) = (
                        self.path.clone(),
                        tmp_dir.join(format!("{}.copy", self.name)),
                    );
                    tokio::task::spawn_blocking(move || {
                        restart::repin_idle(pin, &src, &tmp, &w, mark)
                    })
                    .await
                    .map_err(|e| Error::internal(format!("replication task: {e}")))??
                }
                (Some(pin), _, _) if !first && since.elapsed() < IDLE_PIN => Some(pin),
                _ => None,
            };
            return Ok(Outcome::Unchanged);
        }
        self.idle_since = None;
        let keep = (!racy(&fp)).then_some(fp);
        let (src, tmp) = (
            self.path.clone(),
            tmp_dir.join(format!("{}.copy", self.name)),
        );
        let (prev, name, force) = (self.current.clone(), self.name.clone(), self.force_new);
        let epoch_before = prev.as_ref().and_then(|g| g.mark).map(|m| m.salt);
        let old_pin = self.pin.take();
        let recipients = recipients.to_vec();
        let writer = self.writer.clone();
        let began = std::time::Instant::now();
        let (shipped, p, restarted) = tokio::task::spawn_blocking(move || {
            let (mut p, restarted) = restart::run_pass(
                &name,
                &src,
                &tmp,
                prev,
                force,
                now_ms,
                began,
                old_pin,
                writer.as_ref(),
                PIN_WAL_LIMIT,
                due,
            )?;
            let shipped = match p.segment.take() {
                Some((object, seg)) => Some(Shipped {
                    name: object,
                    sealed: segment::seal(&seg, &recipients)?,
                    new_generation: p.fresh,
                }),
                None => None,
            };
            Ok::<_, Error>((shipped, p, restarted))
        })
        .await
        .map_err(|e| Error::internal(format!("replication task: {e}")))??;
        let Pass {
            mut current,
            pin,
            at_ms,
            compared_all,
            fresh,
            ..
        } = p;
        if due == Due::Early && shipped.is_some() && !fresh {
            current.early += 1;
        }
        self.pin = pin;
        self.let_go_if_wanted();
        let tried = restarted.is_some();
        let due_past = super::wal::size(&self.path)
            + if tried || due == Due::Early {
                PIN_WAL_LIMIT
            } else {
                0
            };
        let epoch_after = current.mark.map(|m| m.salt);
        let same_epoch = epoch_before.is_some() && epoch_before == epoch_after;
        // In the same epoch a regular pass does not bring the next early
        // one forward (frames of a long transaction grew the file).
        self.due_past = if same_epoch {
            due_past.max(self.due_past)
        } else {
            due_past
        };
        self.wal_restarts +=
            u64::from(epoch_before.is_some() && epoch_after.is_some() && !same_epoch);
        self.full_compares += u64::from(compared_all);
        if compared_all {
            tracing::debug!(database = %self.name, "replication pass compared every page (no WAL hint)");
        }
        match &restarted {
            Some(restart::Restarted::Yes { reached_end }) => {
                tracing::debug!(database = %self.name, reached_end, "replication checkpointed the WAL for its restart");
            }
            Some(other) => {
                tracing::debug!(database = %self.name, why = ?other, ?due, "WAL past the pin's limit, not restarted")
            }
            None => {}
        }
        let Some(s) = shipped else {
            self.current = Some(current);
            self.fp = keep;
            return Ok(Outcome::Unchanged);
        };
        if let Err(e) = replica.put(&s.name, s.sealed).await {
            // Not shipped: the next pass compares against the last shipped
            // state, from scratch.
            self.pin = None;
            return Err(e);
        }
        let out = Outcome::Shipped {
            seq: current.seq,
            generation: current.id.clone(),
            new_generation: s.new_generation,
            at_ms,
        };
        self.current = Some(current);
        self.fp = keep;
        self.force_new = false;
        Ok(out)
    }
}

/// Reads `src` in one read transaction and diffs it against the last
/// shipped state: only the pages `hint` names (the WAL frames written since
/// the last pass's mark) and any new pages when it gives a hint, all
/// shipped, else every page, compared. A hint may name too many pages,
/// never too few.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pass(
    db: &str,
    src: &Path,
    tmp: &Path,
    prev: Option<Gen>,
    force: bool,
    now_ms: i64,
    began: std::time::Instant,
    hint: impl FnOnce(&Path, &WalMark, &WalMark, u32) -> Option<WalPages>,
) -> Result<Pass> {
    // The read holds every commit made before it began, which can be after
    // `now_ms`: the state is stamped once the read is done, so a restore to
    // an instant never gets a commit made after it.
    let stamp =
        || now_ms.saturating_add(i64::try_from(began.elapsed().as_millis()).unwrap_or(i64::MAX));
    let (p, pin) = replica_copy::read_snapshot(src, tmp, |pages| {
        let prev = prev.filter(|g| {
            !(force
                || g.page_size != pages.page_size()
                || g.seq.saturating_sub(g.early) >= MAX_SEGMENTS
                || g.early >= MAX_EARLY
                || now_ms - g.started_ms >= SNAPSHOT_EVERY_MS)
        });
        match prev {
            None => {
                let mark = pages.wal_mark();
                snapshot(db, pages, &stamp, mark)
            }
            Some(g) => {
                let mark = pages.wal_mark();
                let hinted = match (&g.mark, &mark) {
                    (Some(from), Some(to)) => hint(src, from, to, pages.page_size()),
                    _ => None,
                };
                diff(db, pages, g, hinted, &stamp, mark)
            }
        }
    })?;
    Ok(Pass { pin, ..p })
}

/// Every page: the snapshot that starts a new generation.
fn snapshot(
    db: &str,
    src: &mut dyn PageSource,
    stamp: &dyn Fn() -> i64,
    mark: Option<WalMark>,
) -> Result<Pass> {
    let page_size = src.page_size();
    let mut hashes = Vec::with_capacity(src.page_count() as usize);
    let mut pages = Vec::with_capacity(src.page_count() as usize);
    src.each_page(&mut |no, p| {
        hashes.push(page_hash(p));
        pages.push((no, p.to_vec()));
    })?;
    let now_ms = stamp();
    let mut r = [0u8; 4];
    rand::rngs::OsRng.fill_bytes(&mut r);
    let id = format!("{now_ms:013}-{}", hex::encode(r));
    let name = snapshot_name(db, &id, now_ms);
    let seg = Segment {
        page_size,
        page_count: src.page_count(),
        at_ms: now_ms,
        pages,
    };
    let current = Gen {
        id,
        started_ms: now_ms,
        seq: 0,
        page_size,
        hashes,
        mark,
        early: 0,
    };
    Ok(Pass {
        segment: Some((name, seg)),
        current,
        fresh: true,
        at_ms: now_ms,
        pin: None,
        compared_all: false,
    })
}

/// The pages that differ from `g`'s: among the hinted and new ones, or
/// among all when there is no hint.
fn diff(
    db: &str,
    src: &mut dyn PageSource,
    mut g: Gen,
    hinted: Option<WalPages>,
    stamp: &dyn Fn() -> i64,
    mark: Option<WalMark>,
) -> Result<Pass> {
    let (old_count, count) = (g.hashes.len(), src.page_count() as usize);
    let compared_all = hinted.is_none();
    let changed = changes(src, &mut g, hinted)?;
    g.mark = mark;
    let now_ms = stamp();
    if changed.is_empty() && old_count == count {
        return Ok(Pass {
            segment: None,
            current: g,
            fresh: false,
            at_ms: now_ms,
            pin: None,
            compared_all,
        });
    }
    g.seq += 1;
    let name = segment_name(db, &g.id, g.seq, now_ms);
    let seg = Segment {
        page_size: g.page_size,
        page_count: src.page_count(),
        at_ms: now_ms,
        pages: changed,
    };
    Ok(Pass {
        segment: Some((name, seg)),
        current: g,
        fresh: false,
        at_ms: now_ms,
        pin: None,
        compared_all,
    })
}

/// The pages, ascending, to ship: every hinted one (with its content from
/// the WAL) and those past `g`'s page count, or, without a hint, those among all whose content differs
/// from what `g` last shipped (an unknown hash always does). `g`'s hashes
/// become the read's.
pub(super) fn changes(
    src: &mut dyn PageSource,
    g: &mut Gen,
    hinted: Option<WalPages>,
) -> Result<Vec<(u32, Vec<u8>)>> {
    let (old_count, count) = (g.hashes.len(), src.page_count() as usize);
    let mut changed: Vec<(u32, Vec<u8>)> = Vec::new();
    match hinted {
        Some(mut named) => {
            named.retain(|&p, _| p >= 1 && p as usize <= count);
            // Every named page is shipped as it is, unhashed: a commit
            // wrote it, so it almost always changed, and hashing it only
            // to find out cost more than the rare page shipped again
            // unchanged. Its hash becomes unknown, so a later comparison
            // of every page ships it once more (never too few pages).
            g.hashes.resize(count, UNKNOWN);
            // New pages the WAL does not hold (a checkpoint copied them
            // into the file) are read through SQLite.
            for no in (old_count + 1..=count).map(|p| p as u32) {
                if let std::collections::btree_map::Entry::Vacant(e) = named.entry(no) {
                    e.insert(src.page(no)?);
                }
            }
            for (no, page) in named {
                if page.len() != g.page_size as usize {
                    return Err(crate::error::Error::internal(format!(
                        "replica read: page {no} has {} bytes, not {}",
                        page.len(),
                        g.page_size
                    )));
                }
                g.hashes[no as usize - 1] = UNKNOWN;
                changed.push((no, page));
            }
        }
        None => {
            let mut hashes = Vec::with_capacity(count);
            src.each_page(&mut |no, p| {
                let h = page_hash(p);
                if g.hashes.get(no as usize - 1) != Some(&h) {
                    changed.push((no, p.to_vec()));
                }
                hashes.push(h);
            })?;
            g.hashes = hashes;
        }
    }
    Ok(changed)
}
