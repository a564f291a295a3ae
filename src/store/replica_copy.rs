//! The replicator's SQLite calls (docs/replication.md): the pages of a live
//! database as of one read transaction, read in place through the
//! `sqlite_dbpage` virtual table (WAL lets writers commit meanwhile, so
//! replication never holds a commit back; only the pages asked for are
//! read), a consistent copy through the online backup API when SQLite lacks
//! that table, the shredded workspaces it must forget, and the integrity
//! check a rebuilt file passes before anything uses it.

use std::path::Path;
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use crate::error::{Error, Result};

/// One database's pages as of one read transaction.
pub trait PageSource {
    fn page_size(&self) -> u32;
    fn page_count(&self) -> u32;
    /// Page `pgno` (from 1, at most `page_count`).
    fn page(&mut self, pgno: u32) -> Result<Vec<u8>>;
    /// Every page, in order.
    fn each_page(&mut self, f: &mut dyn FnMut(u32, &[u8])) -> Result<()>;
    /// Where in the WAL this read's snapshot ends, if SQLite says.
    fn wal_mark(&self) -> Option<WalMark> {
        None
    }
}

/// Where a read transaction's snapshot ends in the WAL: the WAL's salts (its
/// epoch) and the committed frame count. The WAL-index header SQLite copies
/// into a snapshot (`sqlite3_snapshot_get`, built with
/// SQLITE_ENABLE_SNAPSHOT) holds both: the layout is the documented one of
/// the `-shm` file (walformat.html, "The WAL-Index Header": `mxFrame` at byte
/// 16 and the salts at 32, in the WAL header's byte order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WalMark {
    pub salt: [u8; 8],
    pub frames: u32,
}

/// The mark of the read transaction open on `conn`, or `None` (not in WAL
/// mode, no read transaction, a SQLite built without snapshots).
fn wal_mark(conn: &Connection) -> Option<WalMark> {
    use rusqlite::ffi;
    let mut snap: *mut ffi::sqlite3_snapshot = std::ptr::null_mut();
    // SAFETY: the handle is valid while `conn` lives and is used only on
    // this thread; the schema name is NUL-terminated; on success `snap`
    // points at a snapshot SQLite allocated, read once and then freed.
    let hidden = unsafe {
        if ffi::sqlite3_snapshot_get(conn.handle(), c"main".as_ptr(), &mut snap) != ffi::SQLITE_OK
            || snap.is_null()
        {
            return empty_wal(conn);
        }
        let hidden = (*snap).hidden;
        ffi::sqlite3_snapshot_free(snap);
        hidden
    };
    let mut salt = [0u8; 8];
    salt.copy_from_slice(&hidden[32..40]);
    let frames = u32::from_ne_bytes([hidden[16], hidden[17], hidden[18], hidden[19]]);
    Some(WalMark { salt, frames })
}

/// SQLite gives no snapshot of a WAL that no frame was written to since it
/// was opened (its checksums are still zero): in WAL mode, a mark of 0
/// frames whose salts are not known yet (all zero).
fn empty_wal(conn: &Connection) -> Option<WalMark> {
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .ok()?;
    mode.eq_ignore_ascii_case("wal").then_some(WalMark {
        salt: [0; 8],
        frames: 0,
    })
}

/// A read transaction left open after `read_snapshot`: while it lives,
/// SQLite cannot restart the WAL past its snapshot (the shipper's pin,
/// `replication::shipper`). Dropping it ends the transaction.
pub struct Pin(Connection);

impl Drop for Pin {
    fn drop(&mut self) {
        let _ = self.0.execute_batch("COMMIT");
    }
}

/// A `PASSIVE` checkpoint on `writer` (the store's writer connection, its
/// lock held by the caller: `Db::with_writer`): copies what it can of the
/// WAL into the file without waiting for anyone. True when every frame
/// reached the file, so the next commit restarts the WAL from its start
/// (unless a reader still holds a snapshot inside it).
pub fn checkpoint_passive(writer: &dyn super::Sql) -> Result<bool> {
    let writer = writer.conn(super::handle::TOKEN);
    let (busy, log, done): (i64, i64, i64) =
        writer.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
    Ok(busy == 0 && log >= 0 && log == done)
}

/// Runs `f` inside one read transaction on `src` (opened read-only, so
/// never created): `f` sees one transaction boundary however long it runs,
/// and reads only the pages it asks for. The transaction is handed back
/// still open, as a [`Pin`]. Without `sqlite_dbpage` (a SQLite built
/// without SQLITE_ENABLE_DBPAGE_VTAB), it falls back to a consistent copy
/// at `tmp`, read into memory, and pins nothing.
pub fn read_snapshot<T>(
    src: &Path,
    tmp: &Path,
    f: impl FnOnce(&mut dyn PageSource) -> Result<T>,
) -> Result<(T, Option<Pin>)> {
    let conn = Connection::open_with_flags(
        src,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(Duration::from_secs(5))?;
    if conn
        .prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")
        .is_err()
    {
        drop(conn);
        let copied = consistent_copy(src, tmp).and_then(|()| Ok(std::fs::read(tmp)?));
        let _ = std::fs::remove_file(tmp);
        let mut image = Image::new(copied?)?;
        return Ok((f(&mut image)?, None));
    }
    conn.execute_batch("BEGIN")?;
    let out = {
        let one = conn.prepare("SELECT data FROM sqlite_dbpage WHERE pgno = ?1")?;
        // The first read starts the read transaction every later one shares.
        let page_count: u32 = conn.query_row("PRAGMA page_count", [], |r| r.get(0))?;
        let page_size: u32 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        let mut live = Live {
            conn: &conn,
            one,
            page_size,
            page_count,
            mark: wal_mark(&conn),
        };
        f(&mut live)
    };
    let pin = Pin(conn);
    Ok((out?, Some(pin)))
}

struct Live<'c> {
    conn: &'c Connection,
    one: rusqlite::Statement<'c>,
    page_size: u32,
    page_count: u32,
    mark: Option<WalMark>,
}

impl Live<'_> {
    fn checked(&self, pgno: u32, data: Vec<u8>) -> Result<Vec<u8>> {
        if data.len() == self.page_size as usize {
            Ok(data)
        } else {
            Err(Error::internal(format!(
                "replica read: page {pgno} has {} bytes, not {}",
                data.len(),
                self.page_size
            )))
        }
    }
}

impl PageSource for Live<'_> {
    fn page_size(&self) -> u32 {
        self.page_size
    }
    fn wal_mark(&self) -> Option<WalMark> {
        self.mark
    }
    fn page_count(&self) -> u32 {
        self.page_count
    }
    fn page(&mut self, pgno: u32) -> Result<Vec<u8>> {
        let data: Vec<u8> = self.one.query_row([pgno], |r| r.get(0))?;
        self.checked(pgno, data)
    }
    fn each_page(&mut self, f: &mut dyn FnMut(u32, &[u8])) -> Result<()> {
        let mut all = self
            .conn
            .prepare("SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")?;
        let mut rows = all.query([])?;
        let mut expect = 1u32;
        while let Some(r) = rows.next()? {
            let pgno: u32 = r.get(0)?;
            let data = r.get_ref(1)?.as_blob().map_err(rusqlite::Error::from)?;
            if pgno != expect || data.len() != self.page_size as usize {
                return Err(Error::internal(format!("replica read: bad page {pgno}")));
            }
            f(pgno, data);
            expect += 1;
        }
        if expect != self.page_count + 1 {
            return Err(Error::internal("replica read: page count changed"));
        }
        Ok(())
    }
}

/// A whole database image in memory (the fallback copy).
pub struct Image {
    bytes: Vec<u8>,
    page_size: u32,
}

impl Image {
    pub fn new(bytes: Vec<u8>) -> Result<Image> {
        let bad = || Error::internal("the copy is not a database image");
        let raw = u16::from_be_bytes(
            bytes
                .get(16..18)
                .ok_or_else(bad)?
                .try_into()
                .map_err(|_| bad())?,
        );
        let ps = if raw == 1 { 65536 } else { u32::from(raw) };
        if ps < 512 || !ps.is_power_of_two() || bytes.len() % ps as usize != 0 {
            return Err(bad());
        }
        u32::try_from(bytes.len() / ps as usize).map_err(|_| bad())?;
        Ok(Image {
            bytes,
            page_size: ps,
        })
    }
}

impl PageSource for Image {
    fn page_size(&self) -> u32 {
        self.page_size
    }
    fn page_count(&self) -> u32 {
        (self.bytes.len() / self.page_size as usize) as u32
    }
    fn page(&mut self, pgno: u32) -> Result<Vec<u8>> {
        let ps = self.page_size as usize;
        let i = (pgno as usize)
            .checked_sub(1)
            .ok_or_else(|| Error::internal("page 0"))?;
        self.bytes
            .get(i * ps..(i + 1) * ps)
            .map(<[u8]>::to_vec)
            .ok_or_else(|| Error::internal(format!("page {pgno} is past the end")))
    }
    fn each_page(&mut self, f: &mut dyn FnMut(u32, &[u8])) -> Result<()> {
        for (i, p) in self.bytes.chunks(self.page_size as usize).enumerate() {
            f(i as u32 + 1, p);
        }
        Ok(())
    }
}

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

/// A WAL-mode database that the replication tests write to from their own
/// connection, as the store does while the replicator reads.
#[cfg(test)]
pub mod fixture {
    use rusqlite::Connection;
    use std::path::Path;

    pub struct Db(Connection);

    impl Db {
        pub fn create(path: &Path) -> Db {
            let c = Connection::open(path).unwrap();
            c.execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA secure_delete=ON;
                 CREATE TABLE t(id INTEGER PRIMARY KEY, v BLOB NOT NULL);",
            )
            .unwrap();
            Db(c)
        }
        pub fn create_again(path: &Path) -> Db {
            Db(Connection::open(path).unwrap())
        }
        /// Commits without waiting for the disk (tests that need many).
        pub fn unsynced(&self) {
            self.0.execute_batch("PRAGMA synchronous=OFF").unwrap();
        }
        /// The connection, as the store's writer lends it (`Db::with_writer`).
        pub fn conn(&self) -> &Connection {
            &self.0
        }
        /// Rows `from..from + n`, each a blob of `size` bytes.
        pub fn insert(&self, from: i64, n: i64, size: usize) {
            self.0
                .execute(
                    "WITH RECURSIVE s(i) AS (SELECT ?1 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?1 + ?2)
                     INSERT INTO t(id, v) SELECT i, randomblob(?3) FROM s",
                    (from, n, size as i64),
                )
                .unwrap();
        }
        pub fn update(&self, id: i64, size: usize) {
            self.0
                .execute(
                    "UPDATE t SET v = randomblob(?2) WHERE id = ?1",
                    (id, size as i64),
                )
                .unwrap();
        }
        pub fn delete_from(&self, id: i64) {
            self.0
                .execute("DELETE FROM t WHERE id >= ?1", [id])
                .unwrap();
        }
        /// `PASSIVE`, `FULL`, `RESTART` or `TRUNCATE`.
        pub fn checkpoint(&self, mode: &str) {
            self.0
                .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |_| Ok(()))
                .unwrap();
        }
        pub fn vacuum(&self) {
            self.0.execute_batch("VACUUM").unwrap();
        }
        /// The WAL cut back at each restart, as the store's connections do
        /// (`store::WAL_SIZE_LIMIT`).
        pub fn limit_wal(&self) {
            self.0
                .execute_batch(&format!(
                    "PRAGMA journal_size_limit={}",
                    crate::store::WAL_SIZE_LIMIT
                ))
                .unwrap();
        }
        /// Opens a read transaction, ended by `end`.
        pub fn begin_read(&self) {
            self.0.execute_batch("BEGIN").unwrap();
            self.0
                .query_row("SELECT count(*) FROM t", [], |_| Ok(()))
                .unwrap();
        }
        /// Opens a write transaction, ended by `end`.
        pub fn begin_write(&self) {
            self.0.execute_batch("BEGIN IMMEDIATE").unwrap();
        }
        pub fn end(&self) {
            self.0.execute_batch("COMMIT").unwrap();
        }
        /// A hash of every row of the database at `path`, read on its own.
        pub fn digest(path: &Path) -> Vec<u8> {
            use sha2::Digest;
            let c = Connection::open(path).unwrap();
            let mut h = sha2::Sha256::new();
            let mut q = c.prepare("SELECT id, v FROM t ORDER BY id").unwrap();
            let mut rows = q.query([]).unwrap();
            while let Some(r) = rows.next().unwrap() {
                h.update(r.get::<_, i64>(0).unwrap().to_be_bytes());
                h.update(r.get::<_, Vec<u8>>(1).unwrap());
            }
            h.finalize().to_vec()
        }
        pub fn autocheckpoint(&self, pages: u32) {
            self.0
                .execute_batch(&format!("PRAGMA wal_autocheckpoint={pages}"))
                .unwrap();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_dbpage_is_compiled_in_and_reads_what_a_backup_copies() {
        let dir = tempfile::tempdir().unwrap();
        let (db, copy) = (dir.path().join("a.db"), dir.path().join("copy.db"));
        let w = fixture::Db::create(&db);
        w.insert(1, 200, 700);
        w.update(5, 3000);
        let c = Connection::open_with_flags(&db, OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap();
        let n: i64 = c
            .query_row("SELECT count(*) FROM sqlite_dbpage", [], |r| r.get(0))
            .unwrap();
        assert!(n > 1);
        let mut live = Vec::new();
        read_snapshot(&db, &copy, |p| {
            assert_eq!(p.page_count() as i64, n);
            p.each_page(&mut |_, d| live.extend_from_slice(d))
        })
        .unwrap();
        consistent_copy(&db, &copy).unwrap();
        let copied = std::fs::read(&copy).unwrap();
        assert_eq!(live.len(), copied.len());
        // The same bytes but for the file change counter (24-27) and the
        // version-valid-for number (92-95), which the backup's destination
        // bumps when it commits; the page read in place keeps the two equal.
        let differ: Vec<usize> = (0..live.len())
            .filter(|&i| live[i] != copied[i] && !(24..28).contains(&i) && !(92..96).contains(&i))
            .collect();
        assert!(differ.is_empty(), "bytes differ at {differ:?}");
        assert_eq!(live[24..28], live[92..96]);
    }
}
