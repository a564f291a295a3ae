//! The replicator's controlled WAL restart (docs/replication.md, "The
//! pin"). A pinned WAL stops restarting, so under steady writes it grows;
//! once a pass finds it past `shipper::PIN_WAL_LIMIT`, the pass restarts it itself,
//! as Litestream does, instead of letting go of the pin (after which a
//! checkpoint restarts the WAL and the next pass, no longer knowing which
//! pages changed, compares every page). With the database's writer lock
//! held (`Db::with_writer`: no commit of this process meanwhile):
//!
//! 1. a last read, hinted by the frames written since the pass's own read
//!    (its pin still held), so the pass's segment reaches the WAL's end;
//! 2. both read transactions end, and a `PASSIVE` checkpoint copies every
//!    frame into the file;
//! 3. a new pin is taken. Every frame being in the file, it holds SQLite's
//!    read lock 0: the next commit may restart the WAL (once: the lock
//!    stops any checkpoint, so no second restart can follow), and the next
//!    pass takes frames from the start of that new epoch as its hint
//!    (`wal::changed_between`, `pinned`).
//!
//! The new pin is kept only if its mark is the last read's (nothing
//! committed in between, e.g. from another process); a checkpoint that did
//! not reach the end leaves the WAL unrestarted and the hint as before.

use std::collections::BTreeMap;
use std::path::Path;

use crate::store::{Sql, Wait};

use super::catalog::segment_name;
use super::early::writer_wait;
use super::segment::Segment;
use super::shipper::{Due, Gen, Pass, changes};
use super::wal::{self, WalMark};
use crate::error::Result;
use crate::store::replica_copy::{self, Pin};

/// Runs `f` while this process's writer of one database is held
/// (`Db::with_writer`, `TenantPool::with_writer`), waiting for it as long
/// as told to; `None` when this process has no writer open on it, or it
/// stayed busy that long.
pub type Writer = std::sync::Arc<
    dyn Fn(Wait, &mut dyn FnMut(&dyn Sql) -> Result<()>) -> Option<Result<()>> + Send + Sync,
>;

#[derive(Debug)]
pub(crate) enum Restarted {
    /// Restarted; `reached_end`: the checkpoint copied every frame, so the
    /// next commit starts the WAL over.
    Yes { reached_end: bool },
    /// This process holds no writer of the database, or (an early pass)
    /// its writer stayed busy.
    NoWriter,
    /// The last read had no exact hint (never expected): nothing done.
    NoHint,
}

/// The WAL's length in bytes as the read of `g` found it.
pub(crate) fn wal_bytes(g: &Gen) -> u64 {
    g.mark.map_or(0, |m| {
        u64::from(m.frames) * (u64::from(g.page_size) + 24) + 32
    })
}

/// One pass as the shipper runs it: `shipper::pass`, hinted across one
/// WAL restart while the last pass's pin (`old_pin`) is held, then, when
/// the WAL has outgrown `limit` bytes, the controlled restart, the writer
/// waited for as long as `due` says (`shipper::writer_wait`). Without a
/// writer to hold, a regular pass lets the pin go so checkpoints can
/// restart the WAL; an early one keeps it and leaves that to the next pass.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run_pass(
    db: &str,
    src: &Path,
    tmp: &Path,
    prev: Option<Gen>,
    force: bool,
    now_ms: i64,
    began: std::time::Instant,
    old_pin: Option<Pin>,
    writer: Option<&Writer>,
    limit: u64,
    due: Due,
) -> Result<(Pass, Option<Restarted>)> {
    // The last pass's read transaction is held until this one has begun:
    // at most one WAL restart can lie between the two.
    let pinned = old_pin.is_some();
    let p = super::shipper::pass(
        db,
        src,
        tmp,
        prev,
        force,
        now_ms,
        began,
        |d, from, to, ps| wal::changed_between(d, from, to, ps, pinned),
    );
    // The new read transaction holds the WAL from here on.
    drop(old_pin);
    let mut p = p?;
    // A new generation's snapshot keeps its pin: the next pass restarts.
    if p.fresh || wal_bytes(&p.current) <= limit {
        return Ok((p, None));
    }
    let stamp =
        || now_ms.saturating_add(i64::try_from(began.elapsed().as_millis()).unwrap_or(i64::MAX));
    let done = match writer {
        Some(w) => controlled(&mut p, db, src, tmp, w, writer_wait(due), &stamp)?,
        None => Restarted::NoWriter,
    };
    if !matches!(done, Restarted::Yes { .. }) && due == Due::Regular {
        // Let checkpoints restart it; the next pass may then compare every
        // page.
        p.pin = None;
    }
    Ok((p, Some(done)))
}

/// An idle database's pin, moved where a WAL restart cannot make the next
/// pass lose track: with the writer lock (not waited for: a busy writer may
/// be a scrub's `TRUNCATE` waiting for this very pin), every frame is
/// copied into the file and a new pin taken, at read lock 0, which lets one
/// checkpoint or commit restart (or truncate) the WAL and keeps the next
/// pass hinted. `None`, the pin let go as before, when the writer is busy
/// or absent, the checkpoint stopped short, or the mark moved.
pub(crate) fn repin_idle(
    pin: Pin,
    src: &Path,
    tmp: &Path,
    writer: &Writer,
    mark: WalMark,
) -> Result<Option<Pin>> {
    let mut old = Some(pin);
    let mut new = None;
    let held = writer(Wait::NOT, &mut |conn| {
        old = None;
        if replica_copy::checkpoint_passive(conn)? {
            let (m, pin) = replica_copy::read_snapshot(src, tmp, |pages| Ok(pages.wal_mark()))?;
            new = pin.filter(|_| m == Some(mark));
        }
        Ok(())
    });
    drop(old);
    held.transpose()?;
    Ok(new)
}

/// What the last read under the writer lock found.
struct Tail {
    current: Gen,
    changed: Vec<(u32, Vec<u8>)>,
    page_count: u32,
    at_ms: i64,
    reached_end: bool,
    pin: Option<Pin>,
}

/// Restarts the WAL under the writer lock and folds what was committed
/// since `p`'s read into `p`'s segment (or a new one): see the module
/// comment. `p` must hold its pin and not start a generation.
pub(crate) fn controlled(
    p: &mut Pass,
    db: &str,
    src: &Path,
    tmp: &Path,
    writer: &Writer,
    wait: Wait,
    stamp: &dyn Fn() -> i64,
) -> Result<Restarted> {
    let Some(from) = p.current.mark else {
        return Ok(Restarted::NoHint);
    };
    if p.pin.is_none() {
        return Ok(Restarted::NoHint);
    }
    let mut tail: Option<Tail> = None;
    let held = writer(wait, &mut |conn| {
        tail = last_read(p, &from, src, tmp, conn, stamp)?;
        Ok(())
    });
    match held {
        None => return Ok(Restarted::NoWriter),
        Some(r) => r?,
    }
    let Some(t) = tail else {
        return Ok(Restarted::NoHint);
    };
    let mut g = t.current;
    let old_count = p.current.hashes.len();
    let seg = match p.segment.take() {
        Some((_, mut seg)) => {
            let mut pages: BTreeMap<u32, Vec<u8>> = seg.pages.drain(..).collect();
            pages.extend(t.changed);
            pages.retain(|&no, _| no <= t.page_count);
            seg.pages = pages.into_iter().collect();
            seg.page_count = t.page_count;
            seg.at_ms = t.at_ms;
            Some(seg)
        }
        None if !t.changed.is_empty() || t.page_count as usize != old_count => {
            g.seq += 1;
            Some(Segment {
                page_size: g.page_size,
                page_count: t.page_count,
                at_ms: t.at_ms,
                pages: t.changed,
            })
        }
        None => None,
    };
    p.segment = seg.map(|s| (segment_name(db, &g.id, g.seq, t.at_ms), s));
    p.current = g;
    p.at_ms = t.at_ms;
    p.pin = t.pin;
    Ok(Restarted::Yes {
        reached_end: t.reached_end,
    })
}

/// Under the writer lock: the read up to the WAL's end, the checkpoint and
/// the new pin. `None` when the read had no exact hint.
fn last_read(
    p: &mut Pass,
    from: &WalMark,
    src: &Path,
    tmp: &Path,
    conn: &dyn Sql,
    stamp: &dyn Fn() -> i64,
) -> Result<Option<Tail>> {
    let mut g = p.current.clone();
    let (read, read_pin) = replica_copy::read_snapshot(src, tmp, |pages| {
        let Some(to) = pages.wal_mark() else {
            return Ok(None);
        };
        if pages.page_size() != g.page_size {
            return Ok(None);
        }
        // `p`'s read transaction is still open: pinned.
        let Some(hint) = wal::changed_between(src, from, &to, g.page_size, true) else {
            return Ok(None);
        };
        let changed = changes(pages, &mut g, Some(hint))?;
        Ok(Some((changed, pages.page_count(), to, stamp())))
    })?;
    let Some((changed, page_count, to, at_ms)) = read else {
        return Ok(None);
    };
    // No reader of ours may hold a snapshot inside the WAL now, or the
    // checkpoint stops short of its end.
    drop(read_pin);
    p.pin = None;
    let reached_end = replica_copy::checkpoint_passive(conn)?;
    let (mark, pin) = replica_copy::read_snapshot(src, tmp, |pages| Ok(pages.wal_mark()))?;
    g.mark = Some(to);
    Ok(Some(Tail {
        current: g,
        changed,
        page_count,
        at_ms,
        reached_end,
        // Another commit came between (not this process's): this pin's
        // snapshot is not the mark's, so it proves nothing.
        pin: pin.filter(|_| mark == Some(to)),
    }))
}
