//! What is on disk, for tests that a request wrote nothing or stored only
//! what it should: snapshots of every table of every database, one row's
//! bytes, and the SHA-256 Aura keeps of a token.

use super::{Env, open_db};

/// SHA-256 of a string's bytes, as Aura stores a token's hash.
pub fn sha256(s: &str) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::digest(s.as_bytes()).to_vec()
}

/// Every column of the rows of `table` where `key_col = key`, as raw bytes
/// (text as UTF-8, blobs as they are), to search a row for a plaintext.
/// Panics unless exactly one row matches: a scan of nothing proves nothing.
pub fn row_bytes(
    db: &rusqlite::Connection,
    table: &str,
    key_col: &str,
    key: impl rusqlite::ToSql,
) -> Vec<u8> {
    use rusqlite::types::ValueRef;
    let mut stmt = db
        .prepare(&format!(
            "SELECT * FROM \"{table}\" WHERE \"{key_col}\" = ?1"
        ))
        .unwrap();
    let cols = stmt.column_count();
    let rows: Vec<Vec<u8>> = stmt
        .query_map([key], |r| {
            let mut out = Vec::new();
            for i in 0..cols {
                match r.get_ref(i)? {
                    ValueRef::Text(b) | ValueRef::Blob(b) => out.extend_from_slice(b),
                    ValueRef::Integer(n) => out.extend_from_slice(n.to_string().as_bytes()),
                    ValueRef::Real(f) => out.extend_from_slice(f.to_string().as_bytes()),
                    ValueRef::Null => {}
                }
                out.push(0);
            }
            Ok(out)
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(rows.len(), 1, "{table}: one row where {key_col} matches");
    rows.into_iter().next().unwrap()
}

/// Whether `needle` occurs anywhere in `hay`.
pub fn contains_bytes(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Tables background jobs write on their own schedule (signed checkpoints,
/// webhook delivery attempts): not a form's doing.
const BACKGROUND_TABLES: [&str; 3] = [
    "audit_checkpoints",
    "audit_checkpoints_v2",
    "webhook_attempts",
];

/// Columns the webhook worker updates on its own schedule after a delivery
/// was queued (the queued row itself, and its count, are still compared).
const WORKER_COLUMNS: [&str; 6] = [
    "status",
    "attempts",
    "next_attempt_ms",
    "last_status",
    "last_error",
    "finished_at",
];

/// What every store holds, to show a refused request wrote nothing:
/// control.db and every workspace's data.db (one can be created by the
/// request under test), each table's row count and a SHA-256 of all its rows
/// (so an update in place shows too), audit chains included.
pub fn stores_snapshot(env: &Env) -> Vec<(String, i64, String)> {
    use sha2::{Digest, Sha256};
    let mut dbs = vec![("control".to_owned(), env.data_dir().join("control.db"))];
    let mut tenants: Vec<_> = std::fs::read_dir(env.data_dir().join("tenants"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("data.db").exists())
        .collect();
    tenants.sort();
    assert!(!tenants.is_empty(), "no workspace data.db to check");
    for t in tenants {
        let name = t.file_name().unwrap().to_string_lossy().to_string();
        dbs.push((name, t.join("data.db")));
    }
    let mut out = Vec::new();
    for (name, path) in dbs {
        let db = open_db(&path);
        let tables: Vec<String> = db
            .prepare(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
            )
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .filter(|t: &String| !BACKGROUND_TABLES.contains(&t.as_str()))
            .collect();
        assert!(
            tables.contains(&"audit_log".to_owned()),
            "{name}: no audit_log"
        );
        for t in tables {
            let mut stmt = db.prepare(&format!("SELECT * FROM \"{t}\"")).unwrap();
            let compared: Vec<usize> = (0..stmt.column_count())
                .filter(|i| {
                    t != "webhook_deliveries"
                        || !WORKER_COLUMNS.contains(&stmt.column_name(*i).unwrap())
                })
                .collect();
            let mut rows: Vec<String> = stmt
                .query_map([], |r| {
                    Ok(compared
                        .iter()
                        .map(|i| format!("{:?}", r.get_ref(*i).unwrap()))
                        .collect::<Vec<_>>()
                        .join("|"))
                })
                .unwrap()
                .map(Result::unwrap)
                .collect();
            rows.sort();
            let digest = hex::encode(Sha256::digest(rows.join("\n").as_bytes()));
            out.push((format!("{name}.{t}"), rows.len() as i64, digest));
        }
    }
    out
}

/// The tables whose rows differ between two `stores_snapshot`s (empty: none).
pub fn stores_changed(
    before: &[(String, i64, String)],
    after: &[(String, i64, String)],
) -> Vec<String> {
    let mut names: Vec<String> = after
        .iter()
        .filter(|a| !before.contains(a))
        .map(|a| format!("{} ({} rows)", a.0, a.1))
        .collect();
    names.extend(
        before
            .iter()
            .filter(|b| !after.iter().any(|a| a.0 == b.0))
            .map(|b| format!("{} (gone)", b.0)),
    );
    names
}
