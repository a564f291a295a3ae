//! The replicator's SQLite calls (docs/replication.md): a consistent copy of
//! a live database through the online backup API, which reads inside one
//! read transaction (WAL lets writers commit meanwhile, so replication never
//! holds a commit back), the shredded workspaces it must forget, and the
//! integrity check a rebuilt file passes before anything uses it.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// Copies `src` as of one transaction boundary into `dest` (created 0600),
/// page for page. Never creates `src` (a purged workspace stays gone).
pub fn consistent_copy(src: &Path, dest: &Path) -> Result<()> {
    let from = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    from.busy_timeout(Duration::from_secs(5))?;
    super::create_private_file(dest)?;
    let mut to = Connection::open(dest)?;
    {
        let backup = Backup::new(&from, &mut to)?;
        // -1: every page in one step, so the copy is one snapshot.
        let mut tries = 0;
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                _ => {
                    tries += 1;
                    if tries > 500 {
                        return Err(Error::internal("replica copy: database stayed busy"));
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        }
    }
    Ok(())
}

/// The workspaces control.db records as shredded.
pub fn shredded(control_db: &Path) -> Result<Vec<String>> {
    let conn = Connection::open_with_flags(control_db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(5))?;
    super::lifecycle::shredded_ids(&conn)
}

/// `PRAGMA integrity_check` on a rebuilt file: `Ok(())` or what it found.
pub fn integrity(path: &Path) -> Result<()> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let verdict: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    if verdict == "ok" {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "the rebuilt database failed its integrity check: {verdict}"
        )))
    }
}
