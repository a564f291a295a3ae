//! The writer lock lent out: the replicator restarts a database's WAL
//! while no commit of this process can run (`replication::restart`).

use std::time::{Duration, Instant};

use super::Db;
use crate::error::{Error, Result};

/// How long `Db::with_writer` waits for the writer lock at most (`NOT`:
/// one try). Never unbounded: a writer may be held by a long import.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Wait(pub Duration);

impl Wait {
    pub const NOT: Wait = Wait(Duration::ZERO);
}

impl Db {
    /// Runs `f` on the writer connection, its lock held: no commit of this
    /// process meanwhile, so every write waits for it. While it waits, a
    /// drainer of group commits hands the lock over between two batches
    /// (`yielding`); `None` when the lock stayed taken for all of `wait`.
    pub fn with_writer<T>(
        &self,
        wait: Wait,
        f: impl FnOnce(&dyn super::Sql) -> Result<T>,
    ) -> Result<Option<T>> {
        use std::sync::atomic::Ordering;
        // Opened (if need be) before any count moves: a failed open must
        // not leave a drainer yielding to a waiter that never comes.
        let writer = self.writer()?;
        let deadline = Instant::now() + wait.0;
        let announced = !wait.0.is_zero();
        if announced {
            self.waiting.fetch_add(1, Ordering::Relaxed);
            self.yielding.fetch_add(1, Ordering::AcqRel);
        }
        let got = loop {
            match writer.try_lock() {
                Ok(c) => break Ok(Some(c)),
                Err(std::sync::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_micros(100));
                }
                Err(std::sync::TryLockError::WouldBlock) => break Ok(None),
                Err(_) => break Err(Error::internal("writer lock poisoned")),
            }
        };
        if announced {
            self.yielding.fetch_sub(1, Ordering::AcqRel);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
        let Some(conn) = got? else {
            return Ok(None);
        };
        let conn: &rusqlite::Connection = &conn;
        f(conn).map(Some)
    }
}
