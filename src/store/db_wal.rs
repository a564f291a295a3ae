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

/// A held WAL is tried again this often for half an hour, then every
/// `RETRY_SLOWLY`, each try waiting `RETRY_BUSY` for readers with the writer
/// held (writes wait meanwhile, and for the copy of the frames into the
/// file when the try succeeds).
const RETRY_EVERY: Duration = Duration::from_secs(2);
const RETRIES: u32 = 900;
const RETRY_SLOWLY: Duration = Duration::from_secs(60);
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
        let done = self.with_writer(Wait(Duration::from_secs(1)), |c| {
            let _wanting = super::wal_wanted::Wanting::new(&self.path);
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
/// the background by one task per database, tried every 2 s for half an
/// hour and then every minute, until it is empty or the database is no
/// longer in use (closing it empties the WAL too). A warning is logged when
/// it starts, an error after half an hour.
pub async fn scrub(db: Arc<Db>) -> Result<()> {
    use std::sync::atomic::Ordering;
    let task = Arc::clone(&db);
    let done = tokio::task::spawn_blocking(move || task.scrub())
        .await
        .map_err(|_| Error::internal("scrub task failed"))??;
    if done == Scrubbed::Done || db.wal_retrying.swap(true, Ordering::AcqRel) {
        return Ok(());
    }
    let path = db.path.display().to_string();
    tracing::warn!(database = %path, "a reader holds the WAL after a scrub; emptying it in the background");
    tokio::spawn(async move {
        for tried in 1u32.. {
            let pause = if tried <= RETRIES {
                RETRY_EVERY
            } else {
                RETRY_SLOWLY
            };
            tokio::time::sleep(pause).await;
            if tried == RETRIES {
                tracing::error!(database = %path, "the WAL still holds frames from before a scrub after half an hour; trying every minute");
            }
            // Only this task holds it: the pool let the database go, and
            // its close empties the WAL.
            if Arc::strong_count(&db) == 1 {
                return;
            }
            let again = Arc::clone(&db);
            match tokio::task::spawn_blocking(move || again.empty_wal()).await {
                Ok(Ok(true)) => {
                    tracing::info!(database = %path, "WAL emptied after a scrub");
                    break;
                }
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    tracing::warn!(database = %path, error = %e, "emptying the WAL after a scrub failed; retrying")
                }
                Err(e) => {
                    tracing::error!(database = %path, error = %e, "the task emptying the WAL after a scrub failed");
                    break;
                }
            }
        }
        db.wal_retrying.store(false, Ordering::Release);
    });
    Ok(())
}
