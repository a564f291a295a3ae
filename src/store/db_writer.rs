//! The writer lock lent out: the replicator restarts a database's WAL
//! while no commit of this process can run (`replication::restart`).

use super::Db;
use crate::error::{Error, Result};

impl Db {
    /// Runs `f` on the writer connection, its lock held: no commit of this
    /// process meanwhile, so every write waits for it. With `wait`, a
    /// drainer of group commits hands the lock over between two batches
    /// (`yielding`); without, `None` at once when the lock is taken.
    pub fn with_writer<T>(
        &self,
        wait: bool,
        f: impl FnOnce(&dyn super::Sql) -> Result<T>,
    ) -> Result<Option<T>> {
        use std::sync::atomic::Ordering;
        // Opened (if need be) before any count moves: a failed open must
        // not leave a drainer yielding to a waiter that never comes.
        let writer = self.writer()?;
        let conn = if wait {
            self.waiting.fetch_add(1, Ordering::Relaxed);
            self.yielding.fetch_add(1, Ordering::AcqRel);
            let lock = writer.lock();
            self.yielding.fetch_sub(1, Ordering::AcqRel);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            lock.map_err(|_| Error::internal("writer lock poisoned"))?
        } else {
            match writer.try_lock() {
                Ok(c) => c,
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
                Err(_) => return Err(Error::internal("writer lock poisoned")),
            }
        };
        let conn: &rusqlite::Connection = &conn;
        f(conn).map(Some)
    }
}
