//! Which pages changed since the last pass, from the WAL instead of a diff
//! of every page (docs/replication.md, "What a pass reads"; file formats:
//! sqlite.org/fileformat2.html "The Write-Ahead Log" and walformat.html
//! "The WAL-Index Format").
//!
//! Each pass's read transaction carries a [`WalMark`]: the WAL's salts (its
//! epoch; every restart of the WAL changes them) and the committed frame
//! count its snapshot ends at, from SQLite itself (`sqlite3_snapshot_get`).
//! If two passes' marks share an epoch, every commit between their
//! snapshots wrote its pages as the frames between their frame counts: those
//! frames' page numbers are exactly the pages that changed. A checkpoint
//! without a restart copies frames into the file and changes no page's
//! content. Anything unexpected gives no hint, and the shipper compares
//! every page.
//!
//! Only the WAL file is read here, never the `-shm` index: SQLite keeps its
//! POSIX locks on the index, and closing any descriptor of a file drops
//! every lock this process holds on it (sqlite.org/howtocorrupt.html, 2.2).
//! SQLite takes no lock on the WAL file itself.

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub use crate::store::replica_copy::WalMark;

const WAL_HEADER: usize = 32;
const FRAME_HEADER: u64 = 24;
/// How many bytes of frames one read takes (a whole number of frames).
const BLOCK: usize = 1 << 20;

/// Pages by number, each with its content as of a read's snapshot.
pub type WalPages = BTreeMap<u32, Vec<u8>>;

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// The WAL header's salts and page size, if it is a WAL header.
fn wal_header(wal: &File) -> Option<([u8; 8], u32)> {
    let mut h = [0u8; WAL_HEADER];
    wal.read_exact_at(&mut h, 0).ok()?;
    let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    if magic & !1 != 0x377f_0682 {
        return None;
    }
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&h[16..24]);
    Some((salt, u32::from_be_bytes([h[8], h[9], h[10], h[11]])))
}

/// True when `to` is of the WAL epoch right after `from`'s: each restart
/// adds one to the first salt (big-endian) and draws the second anew
/// (`walRestartHdr`).
fn next_epoch(from: &WalMark, to: &WalMark) -> bool {
    let first = |m: &WalMark| u32::from_be_bytes([m.salt[0], m.salt[1], m.salt[2], m.salt[3]]);
    first(to) == first(from).wrapping_add(1)
}

/// The pages written by the frames after `from` up to `to`, each with its
/// content as of `to` (its last frame up to `to`: what SQLite reads for it
/// in `to`'s snapshot), read while the transaction `to` belongs to is still
/// open (so no frame up to it can be overwritten unless the WAL restarts,
/// which the salts show); `None` when the WAL was restarted in between or
/// looks wrong, so no hint can be trusted.
///
/// The frames are read in large blocks from the last back, so a page
/// rewritten by many commits is copied once, and neither a read per frame
/// header nor SQLite's page reader (`sqlite_dbpage`) is needed for a page
/// the WAL holds (docs/benchmarks.md, "Replication's CPU").
///
/// `pinned`: `from`'s read transaction stayed open until `to`'s began. Then
/// at most one restart can have happened in between, and only if every
/// frame up to `from` was already in the file when `from` was read (its
/// reader then holds SQLite's read lock 0, which lets the next writer
/// restart the WAL but stops any checkpoint, so no later frame of `from`'s
/// epoch can reach the file and no second restart can follow). Every
/// commit since `from` is then a frame of the next epoch, from its first:
/// the replicator's controlled restart (`shipper`) relies on this. A pin on
/// a WAL of no frames (read lock 0 too, nothing to copy) allows no restart
/// at all: every frame of the WAL that follows is a commit since.
pub fn changed_between(
    db: &Path,
    from: &WalMark,
    to: &WalMark,
    page_size: u32,
    pinned: bool,
) -> Option<WalPages> {
    // A WAL without frames has no known salts (`replica_copy::empty_wal`).
    let unknown = |m: &WalMark| m.salt == [0; 8];
    let start = if unknown(to) {
        return (pinned && from.frames == 0).then(WalPages::new);
    } else if from.salt == to.salt {
        if to.frames < from.frames {
            return None;
        }
        from.frames
    } else if pinned && (from.frames == 0 || next_epoch(from, to)) {
        0
    } else {
        return None;
    };
    if to.frames == start {
        return Some(WalPages::new());
    }
    let wal = File::open(sibling(db, "-wal")).ok()?;
    let (salt, ps) = wal_header(&wal)?;
    if salt != to.salt || ps != page_size {
        return None;
    }
    let stride = FRAME_HEADER as usize + ps as usize;
    let per_block = (BLOCK / stride).max(1) as u32;
    let mut pages = WalPages::new();
    let mut block = Vec::new();
    let mut end = to.frames;
    while end > start {
        let first = end.saturating_sub(per_block).max(start);
        block.resize((end - first) as usize * stride, 0);
        wal.read_exact_at(
            &mut block,
            WAL_HEADER as u64 + u64::from(first) * stride as u64,
        )
        .ok()?;
        for frame in block.chunks_exact(stride).rev() {
            // A frame of another epoch: the WAL was restarted under the read.
            if frame[8..16] != to.salt {
                return None;
            }
            let pgno = u32::from_be_bytes([frame[0], frame[1], frame[2], frame[3]]);
            pages
                .entry(pgno)
                .or_insert_with(|| frame[FRAME_HEADER as usize..].to_vec());
        }
        end = first;
    }
    // A restart rewrites the header before its first frame: still the same
    // header means no frame read above was from a new epoch.
    (wal_header(&wal)?.0 == to.salt).then_some(pages)
}

/// The salts of the WAL's header (its epoch: every restart changes them),
/// if it has a WAL.
pub fn salt(db: &Path) -> Option<[u8; 8]> {
    let wal = File::open(sibling(db, "-wal")).ok()?;
    wal_header(&wal).map(|(salt, _)| salt)
}

/// The WAL's length in bytes (0 without one).
pub fn size(db: &Path) -> u64 {
    std::fs::metadata(sibling(db, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}
