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
