//! Emptying a database's WAL: after an anonymisation's scrub, and at a
//! clean shutdown.

use std::sync::Arc;
use std::time::Duration;

use super::{Db, TOKEN, Wait};
use crate::error::{Error, Result};

/// How a scrub ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Scrubbed {
    /// The file rebuilt and the WAL emptied.
    Done,
    /// The file rebuilt, but a reader (an export's or a backup's read
    /// transaction) still held the WAL: it is emptied later (`scrub`).
    WalHeld,
}

/// A held WAL is tried again this often, this many times, each try holding
/// the writer for at most `RETRY_BUSY` (writes wait meanwhile).
const RETRY_EVERY: Duration = Duration::from_secs(2);
const RETRIES: u32 = 900;
const RETRY_BUSY: Duration = Duration::from_millis(100);

impl Db {
    /// Rebuilds the file and empties the WAL, so nothing a change replaced
    /// lingers in free pages or old WAL frames (after an anonymisation).
    /// The replicator lets go of its read transaction meanwhile
    /// (`wal_wanted`); another reader holds the `TRUNCATE` up for one
    /// busy_timeout, after which the WAL is left to `scrub`'s retries.
    pub fn scrub(&self) -> Result<Scrubbed> {
        let conn = self
            .writer()?
            .lock()
            .map_err(|_| Error::internal("writer lock poisoned"))?;
        conn.execute_batch("PRAGMA secure_delete = ON; VACUUM;")?;
        let _wanting = super::wal_wanted::Wanting::new(&self.path);
        let busy: i64 = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
        Ok(if busy == 0 {
            Scrubbed::Done
        } else {
            Scrubbed::WalHeld
        })
    }

    /// One more try at emptying the WAL: the writer waited for a second at
    /// most, readers for `RETRY_BUSY`. `Ok(true)` once it is empty.
    fn empty_wal(&self) -> Result<bool> {
        let _wanting = super::wal_wanted::Wanting::new(&self.path);
        let done = self.with_writer(Wait::Upto(Duration::from_secs(1)), |c| {
            let conn = c.conn(TOKEN);
            conn.busy_timeout(RETRY_BUSY)?;
            let busy = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                r.get::<_, i64>(0)
            });
            conn.busy_timeout(self.opts.busy_timeout)?;
            Ok(busy? == 0)
        })?;
        Ok(done == Some(true))
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

/// `Db::scrub` on the blocking pool. The change it follows has committed,
/// so a WAL still held by a reader does not fail it: the WAL is emptied in
/// the background, tried every 2 s for half an hour, and a warning logged
/// until it is.
pub async fn scrub(db: Arc<Db>) -> Result<()> {
    let task = Arc::clone(&db);
    let done = tokio::task::spawn_blocking(move || task.scrub())
        .await
        .map_err(|_| Error::internal("scrub task failed"))??;
    if done == Scrubbed::Done {
        return Ok(());
    }
    tracing::warn!(database = %db.path.display(), "a reader holds the WAL after a scrub; emptying it in the background");
    tokio::spawn(async move {
        for _ in 0..RETRIES {
            tokio::time::sleep(RETRY_EVERY).await;
            let db = Arc::clone(&db);
            let path = db.path.display().to_string();
            match tokio::task::spawn_blocking(move || db.empty_wal()).await {
                Ok(Ok(true)) => {
                    tracing::info!(database = %path, "WAL emptied after a scrub");
                    return;
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(database = %path, error = %e, "emptying the WAL after a scrub failed; retrying")
                }
                Err(_) => return,
            }
        }
        tracing::error!(database = %db.path.display(), "the WAL still holds frames from before a scrub after half an hour of tries; they go at the next clean stop");
    });
    Ok(())
}
