//! When a pass comes early (docs/replication.md, "Early passes"), and how
//! long a pass waits for the writer lock.

use crate::store::Wait;

/// A regular pass (every `replication.interval_ms`) or an early one, between
/// two regular passes, for a database whose WAL outgrew its limit
/// (`Shipper::early_due`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Due {
    Regular,
    Early,
}

/// How long a pass waits for the writer lock for its restart: an early
/// pass a little, for a writer busy with group commits (they hand it over
/// between two batches); a regular one longer, but not for a writer held by
/// a long import or a scrub (whose `TRUNCATE` checkpoint waits for the very
/// read transaction the pass holds), and the replicator's other databases
/// wait behind it.
const EARLY_WRITER_WAIT: std::time::Duration = std::time::Duration::from_millis(20);
const REGULAR_WRITER_WAIT: std::time::Duration = std::time::Duration::from_millis(250);

/// How long a pass of this kind waits for the writer lock.
pub(crate) fn writer_wait(due: Due) -> Wait {
    Wait(match due {
        Due::Early => EARLY_WRITER_WAIT,
        Due::Regular => REGULAR_WRITER_WAIT,
    })
}

/// Whether a WAL file now `len` bytes long is due an early pass, `restarted`
/// when its header is of a later epoch than the last pass's mark and
/// `due_past` the length the last pass set (`Shipper::due_past`). Past
/// `WAL_SIZE_LIMIT` SQLite cuts the file back when it starts the WAL over,
/// so a longer file in a new epoch means as much WAL in use; in the same
/// epoch only growth past `due_past` counts.
pub(super) fn early_due(len: u64, restarted: bool, due_past: u64) -> bool {
    len > crate::store::WAL_SIZE_LIMIT && (restarted || len > due_past)
}
