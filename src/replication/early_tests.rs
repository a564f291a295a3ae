//! Early passes (`Shipper::early_due`): a database under write load gets a
//! pass between two regular ones once its WAL outgrows
//! `store::WAL_SIZE_LIMIT`, which starts the WAL over; one is never due
//! again before another limit's worth of commits, whether the WAL was
//! started over or its writer was too busy to start it.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::restart::Writer;
use super::shipper::{Due, Shipper};
use super::target::Replica;
use super::wal;
use crate::store::WAL_SIZE_LIMIT;
use crate::store::replica_copy::fixture::Db;

/// The store's writer lock, as `Db::with_writer` lends it.
fn writer(w: &Arc<Mutex<Db>>) -> Writer {
    let w = Arc::clone(w);
    Arc::new(move |wait, f| {
        let end = Instant::now() + wait.0;
        let held = loop {
            match w.try_lock() {
                Ok(g) => break g,
                Err(_) if Instant::now() < end => std::thread::sleep(Duration::from_micros(100)),
                Err(_) => return None,
            }
        };
        Some(f(held.conn()))
    })
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A database's place, its shipper's scratch dir and a `file://` replica.
struct Setup {
    dir: tempfile::TempDir,
    db: std::path::PathBuf,
    tmp: std::path::PathBuf,
    replica: Replica,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let (db, tmp, rdir) = (
            dir.path().join("data.db"),
            dir.path().join("tmp"),
            dir.path().join("replica"),
        );
        std::fs::create_dir(&tmp).unwrap();
        std::fs::create_dir(&rdir).unwrap();
        let replica = Replica::in_dir(&rdir);
        Setup {
            dir,
            db,
            tmp,
            replica,
        }
    }
}

/// Runs an early pass when one is due, as the replicator's check every
/// 25 ms does; true when it ran.
async fn check(
    sh: &mut Shipper,
    replica: &Replica,
    to: &[age::x25519::Recipient],
    tmp: &Path,
) -> bool {
    if !sh.early_due() {
        return false;
    }
    sh.sync(replica, to, tmp, now_ms(), Due::Early)
        .await
        .unwrap();
    true
}

// The writer lock is held across passes on purpose: a busy writer, a long
// transaction.
#[allow(clippy::await_holding_lock)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn early_passes_follow_the_wal_and_none_follows_a_restart() {
    let Setup {
        dir,
        db,
        tmp,
        replica,
    } = Setup::new();
    let d = Db::create(&db);
    d.limit_wal();
    d.unsynced();
    d.insert(1, 100, 1000);
    let w = Arc::new(Mutex::new(d));
    let id = age::x25519::Identity::generate();
    let to = vec![id.to_public()];
    let mut sh = Shipper::new("ws-t".into(), db.clone(), Some(writer(&w)));
    sh.sync(&replica, &to, &tmp, now_ms(), Due::Regular)
        .await
        .unwrap();
    // 400 KB a commit, each followed by the check.
    let mut next = 1_000;
    let mut commit = |d: &Db| {
        d.insert(next, 100, 4000);
        next += 100;
    };
    let salt = || wal::salt(&db).unwrap();

    // Alone: each early pass is followed by a restart (the next commit
    // starts the WAL over, its file cut back to the limit).
    let mut early = 0;
    for _ in 0..75 {
        let before = salt();
        commit(&w.lock().unwrap());
        if check(&mut sh, &replica, &to, &tmp).await {
            early += 1;
            commit(&w.lock().unwrap());
            assert!(salt() != before, "no restart after an early pass");
            assert!(!sh.early_due(), "due again after its restart");
        }
        let len = wal::size(&db);
        assert!(
            len <= WAL_SIZE_LIMIT + (1 << 20),
            "the WAL reached {len} bytes"
        );
    }
    // 30 MB of commits: one early pass per 8 MiB.
    assert!((3..=4).contains(&early), "{early} early passes");

    // A reader from before the pass's checkpoint, still open at the next
    // commit: the WAL is not started over, and no early pass is due before
    // another limit's worth of commits.
    while !sh.early_due() {
        commit(&w.lock().unwrap());
    }
    let reader = Db::create_again(&db);
    reader.begin_read();
    let (before, len) = (salt(), wal::size(&db));
    assert!(check(&mut sh, &replica, &to, &tmp).await);
    commit(&w.lock().unwrap());
    reader.end();
    assert!(salt() == before, "the WAL started over under a reader");
    while wal::size(&db) < len + WAL_SIZE_LIMIT * 3 / 4 {
        commit(&w.lock().unwrap());
        assert!(
            !check(&mut sh, &replica, &to, &tmp).await,
            "an early pass without a restart or a limit's worth"
        );
    }

    // A writer busy for longer than an early pass waits: the WAL is read
    // but not started over, and none is due before a limit's worth more.
    {
        let held = w.lock().unwrap();
        while !sh.early_due() {
            commit(&held);
        }
        let (before, len) = (salt(), wal::size(&db));
        assert!(check(&mut sh, &replica, &to, &tmp).await);
        while wal::size(&db) < len + WAL_SIZE_LIMIT * 3 / 4 {
            commit(&held);
            assert!(
                !check(&mut sh, &replica, &to, &tmp).await,
                "due again with its writer busy"
            );
        }
        assert!(salt() == before, "started over with its writer busy");

        // A long transaction's frames, not yet committed, grow the file:
        // at most one early pass per limit's worth of them.
        held.begin_write();
        let len = wal::size(&db);
        let mut spill = 0;
        while wal::size(&db) < len + 2 * WAL_SIZE_LIMIT {
            commit(&held);
            spill += u32::from(check(&mut sh, &replica, &to, &tmp).await);
        }
        held.end();
        assert!(spill <= 2, "{spill} early passes during one transaction");

        // A regular pass gives up on a writer held this long (a scrub's
        // checkpoint may be waiting for its very read transaction) and
        // lets its pin go.
        let began = Instant::now();
        sh.sync(&replica, &to, &tmp, now_ms(), Due::Regular)
            .await
            .unwrap();
        assert!(
            !sh.pinned(),
            "a regular pass kept its pin with the writer busy"
        );
        assert!(began.elapsed() < Duration::from_secs(5));
    }
    // The regular pass waits for the writer and starts the WAL over.
    sh.sync(&replica, &to, &tmp, now_ms(), Due::Regular)
        .await
        .unwrap();
    let before = salt();
    commit(&w.lock().unwrap());
    assert!(salt() != before, "the regular pass did not restart the WAL");
    sh.sync(&replica, &to, &tmp, now_ms(), Due::Regular)
        .await
        .unwrap();
    assert!(sh.wal_restarts > early, "{} restarts seen", sh.wal_restarts);

    let rebuilt = dir.path().join("rebuilt.db");
    super::restore::rebuild(&replica, "ws-t", None, 0, &id, &rebuilt, &|_, _, _| {})
        .await
        .unwrap()
        .unwrap();
    assert!(
        Db::digest(&rebuilt) == Db::digest(&db),
        "the replica differs from the live database"
    );
}

/// A scrub's `TRUNCATE` checkpoint does not wait for the replicator's next
/// pass (which may be minutes away): the pin is let go at the next check,
/// every 25 ms, and the WAL is emptied at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scrub_beside_a_pinned_database_empties_its_wal_at_once() {
    let Setup {
        dir: _dir,
        db,
        tmp,
        replica,
    } = Setup::new();
    let d = Db::create(&db);
    d.insert(1, 100, 1000);
    let to = vec![age::x25519::Identity::generate().to_public()];
    let mut sh = Shipper::new("ws-t".into(), db.clone(), None);
    for n in 0..2 {
        d.insert(1_000 + n * 100, 100, 1000);
        sh.sync(&replica, &to, &tmp, now_ms(), Due::Regular)
            .await
            .unwrap();
    }
    assert!(wal::size(&db) > 0);
    assert!(sh.pinned());
    let opts = crate::store::DbOptions {
        busy_timeout: Duration::from_secs(3),
        ..crate::store::test_options()
    };
    let store = crate::store::Db::open_existing(&db, opts).unwrap();
    let scrub = std::thread::spawn(move || {
        let began = Instant::now();
        (store.scrub().unwrap(), began.elapsed())
    });
    while !scrub.is_finished() {
        sh.let_go_if_wanted();
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (done, took) = scrub.join().unwrap();
    assert_eq!(done, crate::store::Scrubbed::Done, "after {took:?}");
    assert!(took < Duration::from_secs(2), "the scrub took {took:?}");
    assert!(!sh.pinned());
    assert_eq!(wal::size(&db), 0);
}
