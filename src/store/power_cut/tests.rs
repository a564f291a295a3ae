//! The layer inside SQLite, in process: a connection closed without a
//! checkpoint, then every unsynced write dropped (what the server's death does
//! to them), then the database opened again. The layer is registered by name
//! only, so other unit tests keep the unix VFS.

use rusqlite::{Connection, OpenFlags};

use super::{NAME, files, register};

fn open(path: &std::path::Path, synchronous: &str) -> Connection {
    register(false).unwrap();
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE;
    let conn = Connection::open_with_flags_and_vfs(path, flags, NAME).unwrap();
    // A clean close would checkpoint, and so sync, everything.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
        true,
    )
    .unwrap();
    conn.execute_batch(&format!(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous={synchronous};
         CREATE TABLE IF NOT EXISTS t(n INTEGER)"
    ))
    .unwrap();
    conn
}

/// Writes `n` committed rows, cuts the power, and counts what is left.
fn rows_after_cut(synchronous: &str, n: i64) -> i64 {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    drop(open(&path, "FULL"));
    let conn = open(&path, synchronous);
    for i in 0..n {
        conn.execute("INSERT INTO t(n) VALUES (?1)", [i]).unwrap();
    }
    let seen: i64 = conn
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap();
    assert_eq!(seen, n, "reads see the unsynced writes");
    drop(conn);
    let prefix = dir.path().to_string_lossy().into_owned();
    files().retain(|path, _| !path.starts_with(&prefix));
    open(&path, "FULL")
        .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
        .unwrap()
}

#[test]
fn full_keeps_every_commit_through_a_power_cut() {
    assert_eq!(rows_after_cut("FULL", 50), 50);
}

#[test]
fn normal_loses_unsynced_commits_at_a_power_cut() {
    assert_eq!(rows_after_cut("NORMAL", 50), 0);
}
