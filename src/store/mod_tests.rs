use super::*;

#[test]
fn pragmas_are_durable_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), test_options(), migrations::TENANT).unwrap();
    let (mode, sync, fk): (String, i64, i64) = db
        .read(|c| {
            let c = c.conn(TOKEN);
            Ok((
                c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?,
                c.query_row("PRAGMA synchronous", [], |r| r.get(0))?,
                c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?,
            ))
        })
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "FULL");
    assert_eq!(fk, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_isolates_a_failing_write() {
    let dir = tempfile::tempdir().unwrap();
    let db =
        Arc::new(Db::open(&dir.path().join("t.db"), test_options(), migrations::TENANT).unwrap());
    let mut tasks = Vec::new();
    for i in 0..64 {
        let db = Arc::clone(&db);
        tasks.push(tokio::spawn(async move {
            db.write_async(move |tx| {
                let tx = tx.tx(TOKEN);
                tx.execute(
                    "INSERT INTO meta(key, value) VALUES (?1, x'00')",
                    [format!("k{i}")],
                )?;
                if i % 7 == 0 {
                    return Err(Error::Forbidden);
                }
                Ok(i)
            })
            .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap().is_ok() {
            ok += 1;
        }
    }
    let n: i64 = db
        .read(|c| {
            let c = c.conn(TOKEN);
            Ok(
                c.query_row("SELECT count(*) FROM meta WHERE key LIKE 'k%'", [], |r| {
                    r.get(0)
                })?,
            )
        })
        .unwrap();
    assert_eq!(ok, 64 - 10);
    assert_eq!(n, ok, "only the successful writes are committed");
}

#[test]
fn failed_write_rolls_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("t.db"), test_options(), migrations::TENANT).unwrap();
    let r: Result<()> = db.write(|tx| {
        let tx = tx.tx(TOKEN);
        tx.execute("INSERT INTO meta(key, value) VALUES ('k', x'00')", [])?;
        Err(Error::Forbidden)
    });
    assert!(r.is_err());
    let n: i64 = db
        .read(|c| {
            let c = c.conn(TOKEN);
            Ok(c.query_row("SELECT count(*) FROM meta WHERE key='k'", [], |r| r.get(0))?)
        })
        .unwrap();
    assert_eq!(n, 0);
}

/// A database opened again with its schema current is checked on one
/// connection, which serves its reads: the writer opens on the first write,
/// so a workspace that is only read parses its schema once, not twice.
#[test]
fn an_existing_database_opens_its_writer_on_the_first_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(Db::open(&path, test_options(), migrations::TENANT).unwrap());
    let db = Db::open(&path, test_options(), migrations::TENANT).unwrap();
    assert!(db.writer.get().is_none(), "no writer before a write");
    let tables: i64 = db
        .read(|c| {
            Ok(c.conn(TOKEN).query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(tables > 5);
    assert!(db.writer.get().is_none(), "a read opens no writer");
    assert_eq!(
        db.readers.lock().unwrap().len(),
        1,
        "the checking connection reads"
    );
    db.write(|tx| {
        tx.tx(TOKEN)
            .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")?;
        Ok(())
    })
    .unwrap();
    assert!(db.writer.get().is_some());
    // An out-of-date schema is migrated on the writer at open.
    let fresh = dir.path().join("new.db");
    let db = Db::open(&fresh, test_options(), migrations::TENANT).unwrap();
    assert!(
        db.writer.get().is_some(),
        "a new file is created by the writer"
    );
}

/// A WAL held long (a reader's snapshot stops SQLite starting it over, as
/// the replicator's pin does) is cut back to `WAL_SIZE_LIMIT` once it
/// starts over: a WAL file past the limit then means a WAL in use past it
/// (`replication::shipper::early_due`).
#[test]
fn a_wal_held_long_is_cut_back_when_it_starts_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let db = Db::open(&path, test_options(), migrations::TENANT).unwrap();
    let write = |n: i64| {
        db.write(|tx| {
            tx.tx(TOKEN).execute(
                "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ?1)
                 INSERT INTO t(v) SELECT randomblob(4000) FROM s",
                [n],
            )?;
            Ok(())
        })
        .unwrap()
    };
    db.write(|tx| Ok(tx.tx(TOKEN).execute_batch("CREATE TABLE t (v BLOB)")?))
        .unwrap();
    let wal = || {
        std::fs::metadata(dir.path().join("t.db-wal"))
            .unwrap()
            .len()
    };
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM t;")
        .unwrap();
    for _ in 0..50 {
        write(100);
    }
    let held = wal();
    assert!(
        held > 2 * WAL_SIZE_LIMIT,
        "the held WAL reached {held} bytes"
    );
    reader.execute_batch("COMMIT").unwrap();
    // The automatic checkpoint copies every frame; the next commit starts
    // the WAL over and cuts the file.
    write(1);
    write(1);
    let cut = wal();
    assert!(
        cut <= WAL_SIZE_LIMIT,
        "the WAL stayed {cut} bytes (it was {held})"
    );
}

/// `with_writer` waits as long as told: a writer held past the wait answers
/// `None`, and a wait that outlasts it gets the lock.
#[test]
fn with_writer_waits_as_long_as_told() {
    let dir = tempfile::tempdir().unwrap();
    let db =
        Arc::new(Db::open(&dir.path().join("t.db"), test_options(), migrations::TENANT).unwrap());
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let holder = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            db.with_writer(Wait(std::time::Duration::from_secs(60)), |_| {
                held_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(1000));
                Ok(())
            })
            .unwrap()
        })
    };
    held_rx.recv().unwrap();
    assert_eq!(db.with_writer(Wait::NOT, |_| Ok(())).unwrap(), None);
    let short = Wait(std::time::Duration::from_millis(20));
    assert_eq!(db.with_writer(short, |_| Ok(())).unwrap(), None);
    // A wait that gave up leaves no drainer yielding to it.
    use std::sync::atomic::Ordering;
    assert_eq!(db.yielding.load(Ordering::Acquire), 0);
    assert_eq!(db.write_waiters(), 0);
    let long = Wait(std::time::Duration::from_secs(30));
    assert_eq!(db.with_writer(long, |_| Ok(1)).unwrap(), Some(1));
    assert_eq!(holder.join().unwrap(), Some(()));
    assert_eq!(db.with_writer(Wait::NOT, |_| Ok(2)).unwrap(), Some(2));
}

/// A scrub whose WAL a reader holds does not fail the change it follows
/// (it has committed) nor leave the old frames behind: the WAL is emptied
/// in the background once the reader is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrub_held_up_by_a_reader_empties_the_wal_once_it_is_gone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let opts = DbOptions {
        busy_timeout: Duration::from_millis(50),
        ..test_options()
    };
    let db = Arc::new(Db::open(&path, opts, migrations::TENANT).unwrap());
    db.write(|tx| {
        Ok(tx
            .tx(TOKEN)
            .execute_batch("CREATE TABLE t (v); INSERT INTO t VALUES (1);")?)
    })
    .unwrap();
    let wal = || std::fs::metadata(dir.path().join("t.db-wal")).map_or(0, |m| m.len());
    let reader = rusqlite::Connection::open(&path).unwrap();
    reader.execute_batch("BEGIN").unwrap();
    let _: i64 = reader
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(db.scrub().unwrap(), db_wal::Scrubbed::WalHeld);
    db_wal::scrub(Arc::clone(&db)).await.unwrap();
    assert!(wal() > 0, "the reader holds the WAL");
    reader.execute_batch("COMMIT").unwrap();
    let until = std::time::Instant::now() + Duration::from_secs(30);
    while wal() > 0 && std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(wal(), 0, "the WAL was not emptied after the reader went");
}
