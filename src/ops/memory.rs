//! Gives memory back to the OS once workspace databases have closed
//! (issue 23: an idle appliance of 10,000 workspaces within 64 MB).
//!
//! Two allocators serve the process: mimalloc for Rust (`main.rs`) and
//! glibc's malloc for SQLite. Both keep pages a closed database freed:
//! mimalloc purges freed pages only after a delay and only when some thread
//! allocates again, and glibc returns only the top of each arena. After a
//! start's passes (every workspace opened once and closed) or an idle close,
//! an idle server kept ~50 MB of such pages at 10,000 workspaces
//! (docs/benchmarks.md). `release` hands them back; the idle-close job calls
//! it on its ticks after databases closed, until one comes 15 s after the
//! last close.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long after the last close releases go on: a blocking thread that
/// worked on a closed database exits after tokio's keep-alive (10 s) and
/// only then hands its pages back to mimalloc's arenas.
const SETTLE: Duration = Duration::from_secs(15);

/// What the releases have seen: `store::databases_closed` and when it last
/// changed, and whether a release has run `SETTLE` after that.
struct Seen {
    closed: u64,
    changed: Instant,
    settled: bool,
}

static SEEN: Mutex<Option<Seen>> = Mutex::new(None);

/// Releases the allocators' free pages when databases have closed since the
/// last call, and on each later call until one comes `SETTLE` after the
/// last close; true when it did. Blocking (a walk of glibc's arenas): call
/// it from a blocking thread, at most every few seconds.
pub fn release_after_closes() -> bool {
    let closed = crate::store::databases_closed();
    let due = match SEEN.lock() {
        Ok(mut seen) => is_due(&mut seen, closed, Instant::now()),
        Err(_) => false,
    };
    if due {
        release();
    }
    due
}

/// Whether a release is due with `closed` databases closed so far.
fn is_due(seen: &mut Option<Seen>, closed: u64, now: Instant) -> bool {
    match seen.as_mut() {
        Some(s) if s.closed != closed => {
            (s.closed, s.changed, s.settled) = (closed, now, false);
            true
        }
        Some(s) if !s.settled => {
            s.settled = now.duration_since(s.changed) >= SETTLE;
            true
        }
        Some(_) => false,
        None => {
            *seen = Some(Seen {
                closed,
                changed: now,
                settled: closed == 0,
            });
            closed > 0
        }
    }
}

/// Purges mimalloc's pending free pages (program-wide arenas, and this
/// thread's own) and trims glibc's arenas.
pub fn release() {
    // SAFETY: `mi_collect` takes no pointer and may be called from any
    // thread at any time; it only frees what mimalloc no longer uses.
    unsafe { libmimalloc_sys::mi_collect(true) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` takes no pointer; glibc locks each arena while it
    // trims it.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn releases_after_closes_until_one_comes_after_they_settle() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut seen = None;
        assert!(!is_due(&mut seen, 0, at(0)), "nothing closed yet");
        assert!(!is_due(&mut seen, 0, at(5)));
        assert!(is_due(&mut seen, 3, at(10)), "databases closed");
        assert!(is_due(&mut seen, 3, at(15)), "threads may still hold pages");
        assert!(is_due(&mut seen, 3, at(25)), "the one after they settled");
        assert!(
            !is_due(&mut seen, 3, at(30)),
            "quiet: nothing more to give back"
        );
        assert!(is_due(&mut seen, 4, at(300)), "another close");
        release(); // callable at any time, from any thread
    }
}
