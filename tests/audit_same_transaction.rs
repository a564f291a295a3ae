//! SECURITY.md row f, "in the same SQLite transaction", checked on real
//! databases: a trigger added by hand makes one side of a change fail (the
//! audit insert, or the change itself) while the server runs. Either way the
//! request fails and neither the change nor its entry is left behind; with the
//! trigger gone the same request writes both. Workspace data.db and control.db.

mod common;

use std::path::Path;

use common::mfa::signed_in;
use common::{Env, PASSWORD, client, login, open_db, send};
use serde_json::json;

/// Adds (or, with `None`, drops) a trigger named `injected_failure` that
/// aborts `BEFORE INSERT OR UPDATE` on `table` when `when` holds.
fn inject(db: &Path, table: &str, event: &str, when: Option<&str>) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    c.execute_batch("DROP TRIGGER IF EXISTS injected_failure")
        .unwrap();
    if let Some(when) = when {
        c.execute_batch(&format!(
            "CREATE TRIGGER injected_failure BEFORE {event} ON {table} WHEN {when} \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
        ))
        .unwrap();
    }
}

fn count(db: &Path, sql: &str) -> i64 {
    open_db(db).query_row(sql, [], |r| r.get(0)).unwrap()
}

#[tokio::test]
async fn row_f_a_change_and_its_audit_entry_commit_together_or_not_at_all() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Ledgers", "ada@example.com");
    let server = env.start();
    let c = signed_in(&server, "ada@example.com").await;
    let data = env.tenant_db(&ws);
    let control = env.data_dir().join("control.db");
    let url = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let create = || {
        c.post(url("/collections"))
            .json(&json!({"name": "Ledger", "fields": [{"name": "Title", "type": "text"}]}))
    };
    let collections = || count(&data, "SELECT count(*) FROM collections");
    let entries = || count(&data, "SELECT count(*) FROM audit_log");

    // 1. The audit insert fails: the collection must not be created.
    inject(
        &data,
        "audit_log",
        "INSERT",
        Some("NEW.action = 'collection.created'"),
    );
    let (before_c, before_e) = (collections(), entries());
    let (s, body) = send(create()).await;
    assert!(s >= 500, "a change whose entry failed answered {s}: {body}");
    assert_eq!(
        collections(),
        before_c,
        "the collection outlived its failed entry"
    );
    assert_eq!(entries(), before_e);
    let (s, list) = send(c.get(url("/collections"))).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"].as_array().map_or(0, Vec::len), 0, "{list}");

    // 2. The change fails: no entry for it.
    inject(&data, "collections", "INSERT", Some("1"));
    let (s, body) = send(create()).await;
    assert!(s >= 500, "{s}: {body}");
    assert_eq!(collections(), before_c);
    assert_eq!(entries(), before_e, "a failed change left an entry");

    // 3. Without the trigger the same request writes both, once.
    inject(&data, "collections", "INSERT", None);
    let (s, coll) = send(create()).await;
    assert_eq!(s, 201, "{coll}");
    assert_eq!(collections(), before_c + 1);
    assert_eq!(entries(), before_e + 1);
    let coll = coll["id"].as_str().unwrap().to_owned();
    let (s, rec) = send(
        c.post(url(&format!("/collections/{coll}/records")))
            .json(&json!({"values": {"Title": "first"}})),
    )
    .await;
    assert_eq!(s, 201, "{rec}");
    let rec_url = url(&format!(
        "/collections/{coll}/records/{}",
        rec["id"].as_str().unwrap()
    ));

    // 4. An update-shaped change (before and after read in the transaction):
    // its entry fails, the record keeps its value and version.
    inject(
        &data,
        "audit_log",
        "INSERT",
        Some("NEW.action = 'record.updated'"),
    );
    let before_e = entries();
    let (s, body) = send(
        c.patch(&rec_url)
            .json(&json!({"values": {"Title": "second"}})),
    )
    .await;
    assert!(s >= 500, "{s}: {body}");
    let (s, now) = send(c.get(&rec_url)).await;
    assert_eq!(s, 200);
    assert_eq!(now["values"]["Title"], "first", "{now}");
    assert_eq!(now["version"], rec["version"], "{now}");
    assert_eq!(entries(), before_e);
    inject(&data, "audit_log", "INSERT", None);
    let (s, body) = send(
        c.patch(&rec_url)
            .json(&json!({"values": {"Title": "second"}})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(entries(), before_e + 1);

    // 5. control.db: a sign-in whose entry fails makes no session, and a
    // session insert that fails leaves no `auth.login` entry.
    let sessions = || count(&control, "SELECT count(*) FROM sessions");
    let logins = || {
        count(
            &control,
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login'",
        )
    };
    inject(
        &control,
        "audit_log",
        "INSERT",
        Some("NEW.action = 'auth.login'"),
    );
    let (before_s, before_l) = (sessions(), logins());
    let r = login(&client(&server), &server, "ada@example.com", PASSWORD).await;
    assert!(r.status().as_u16() >= 500, "{}", r.status());
    assert!(r.headers().get("set-cookie").is_none());
    assert_eq!(sessions(), before_s, "a session outlived its failed entry");
    inject(&control, "audit_log", "INSERT", None);
    inject(&control, "sessions", "INSERT", Some("1"));
    let r = login(&client(&server), &server, "ada@example.com", PASSWORD).await;
    assert!(r.status().as_u16() >= 500, "{}", r.status());
    assert_eq!(
        logins(),
        before_l,
        "a failed sign-in left an auth.login entry"
    );
    inject(&control, "sessions", "INSERT", None);
    assert_eq!(
        login(&client(&server), &server, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!((sessions(), logins()), (before_s + 1, before_l + 1));

    let logs = String::from_utf8_lossy(&server.stop()).to_string();
    assert!(!logs.contains("panicked"), "{logs}");
    // The chains still verify: nothing half-written.
    let out = env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
