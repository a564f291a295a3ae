//! Emptying a database's WAL: after an anonymisation's scrub, and at a
//! clean shutdown.

use super::{Db, TOKEN};
use crate::error::{Error, Result};

impl Db {
    /// Rebuilds the file and empties the WAL, so nothing a change replaced
    /// lingers in free pages or old WAL frames (after an anonymisation).
    pub fn scrub(&self) -> Result<()> {
        let conn = self
            .writer()?
            .lock()
            .map_err(|_| Error::internal("writer lock poisoned"))?;
        conn.execute_batch("PRAGMA secure_delete = ON; VACUUM;")?;
        // A reader inside the WAL (the replicator's pass lets go of its own
        // within a second when it cannot have the writer) holds it up for
        // one busy_timeout each try.
        for _ in 0..3 {
            let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy == 0 {
                return Ok(());
            }
        }
        Err(Error::internal(format!(
            "{}: the WAL could not be emptied after a scrub (a reader held it)",
            self.path.display()
        )))
    }

    /// Flushes the WAL into the main file; used at clean shutdown. A
    /// database this process never wrote to is checkpointed on a reader
    /// (no writer opened only for this).
    pub fn checkpoint(&self) -> Result<()> {
        const SQL: &str = "PRAGMA wal_checkpoint(TRUNCATE);";
        match self.writer.get() {
            Some(w) => {
                let conn = w
                    .lock()
                    .map_err(|_| Error::internal("writer lock poisoned"))?;
                conn.execute_batch(SQL)?;
            }
            None => self.read(|c| Ok(c.conn(TOKEN).execute_batch(SQL)?))?,
        }
        Ok(())
    }
}
