//! Which pages changed since the last pass, from the WAL instead of a diff
//! of every page (docs/replication.md, "What a pass reads"; file formats:
//! sqlite.org/fileformat2.html "The Write-Ahead Log" and walformat.html
//! "The WAL-Index Format").
//!
//! Before each read transaction the shipper takes a [`Mark`]: the WAL
//! header (its salts name the WAL's current epoch; every restart of the WAL
//! changes them) and `mxFrame`, the committed frame count the wal-index
//! (`-shm`) publishes. A reader that begins after that sees at least those
//! frames, so the snapshot's own frame count is >= the mark's. At the next
//! pass, if the WAL header is still the same, every commit between the two
//! snapshots wrote its pages as frames after the mark: the page numbers of
//! the frames from there to the end (stopping at the first frame of another
//! epoch) are a superset of the pages that changed. A checkpoint without a
//! restart copies frames into the file and changes no page's content.
//! Anything unexpected gives no hint, and the shipper compares every page.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use std::collections::BTreeSet;

const WAL_HEADER: usize = 32;
const FRAME_HEADER: u64 = 24;
const SHM_VERSION: u32 = 3_007_000;

/// The WAL's epoch and how many committed frames it held, taken before a
/// read transaction began.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mark {
    header: [u8; WAL_HEADER],
    frames: u32,
}

fn sibling(db: &Path, suffix: &str) -> PathBuf {
    let mut s = db.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

fn u32_ne(b: &[u8], at: usize) -> u32 {
    let mut w = [0u8; 4];
    w.copy_from_slice(&b[at..at + 4]);
    u32::from_ne_bytes(w)
}

/// The wal-index header (48 bytes, native byte order), if both copies agree
/// and its checksum holds: (mxFrame, the salts as the WAL header holds them).
fn shm_header(shm: &File) -> Option<(u32, [u8; 8])> {
    for _ in 0..8 {
        let (mut a, mut b) = ([0u8; 48], [0u8; 48]);
        // SQLite writes the second copy first and reads the first first.
        shm.read_exact_at(&mut a, 0).ok()?;
        shm.read_exact_at(&mut b, 48).ok()?;
        if a != b || a[12] != 1 || u32_ne(&a, 0) != SHM_VERSION {
            std::thread::yield_now();
            continue;
        }
        let (mut s1, mut s2) = (0u32, 0u32);
        for i in (0..40).step_by(8) {
            s1 = s1.wrapping_add(u32_ne(&a, i)).wrapping_add(s2);
            s2 = s2.wrapping_add(u32_ne(&a, i + 4)).wrapping_add(s1);
        }
        if s1 != u32_ne(&a, 40) || s2 != u32_ne(&a, 44) {
            std::thread::yield_now();
            continue;
        }
        let mut salt = [0u8; 8];
        salt.copy_from_slice(&a[32..40]);
        return Some((u32_ne(&a, 16), salt));
    }
    None
}

fn wal_header(wal: &File) -> Option<[u8; WAL_HEADER]> {
    let mut h = [0u8; WAL_HEADER];
    wal.read_exact_at(&mut h, 0).ok()?;
    let magic = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    (magic & !1 == 0x377f_0682).then_some(h)
}

/// Taken before the read transaction begins; `None` (no WAL, a WAL being
/// restarted, an unreadable index) means the next pass compares every page.
pub fn mark(db: &Path) -> Option<Mark> {
    let shm = File::open(sibling(db, "-shm")).ok()?;
    let (frames, salt) = shm_header(&shm)?;
    let wal = File::open(sibling(db, "-wal")).ok()?;
    let header = wal_header(&wal)?;
    (header[16..24] == salt).then_some(Mark { header, frames })
}

/// The pages written by frames after `since`, read while the next read
/// transaction is open; `None` when the WAL was restarted since (or looks
/// wrong), so no hint can be trusted.
pub fn changed_since(db: &Path, since: &Mark, page_size: u32) -> Option<BTreeSet<u32>> {
    let wal = File::open(sibling(db, "-wal")).ok()?;
    if wal_header(&wal)? != since.header {
        return None;
    }
    let ps = u32::from_be_bytes([
        since.header[8],
        since.header[9],
        since.header[10],
        since.header[11],
    ]);
    if ps != page_size {
        return None;
    }
    let stride = FRAME_HEADER + u64::from(ps);
    let mut pages = BTreeSet::new();
    let mut fh = [0u8; FRAME_HEADER as usize];
    let mut at = WAL_HEADER as u64 + u64::from(since.frames) * stride;
    loop {
        match wal.read_exact_at(&mut fh, at) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(_) => return None,
        }
        // A frame of an older epoch: the end of this one.
        if fh[8..16] != since.header[16..24] {
            break;
        }
        pages.insert(u32::from_be_bytes([fh[0], fh[1], fh[2], fh[3]]));
        at += stride;
    }
    // A restart while the frames were read may have overwritten some.
    (wal_header(&wal)? == since.header).then_some(pages)
}

/// The WAL's length in bytes (0 without one).
pub fn size(db: &Path) -> u64 {
    std::fs::metadata(sibling(db, "-wal"))
        .map(|m| m.len())
        .unwrap_or(0)
}
