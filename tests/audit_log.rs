//! The audit log: one entry per change in the same transaction, signed
//! checkpoints, tamper detection with the right sequence number, search,
//! isolation, export verified offline, and retention that keeps chains valid.

mod common;

use common::{Env, PASSWORD, Server, client, copy_dir, login, open_db};
use serde_json::{Value, json};

struct Setup {
    env: Env,
    server: Server,
    ws: String,
    owner_id: String,
    c: reqwest::Client,
}

/// A workspace whose owner is signed in, with a few entries in its chain.
async fn setup() -> Setup {
    setup_with(&[]).await
}

async fn setup_with(vars: &[(&str, &str)]) -> Setup {
    let env = Env::new();
    let owner_id = env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Audit Ltd", "owner@example.com");
    let server = env.start_with(vars);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    Setup {
        env,
        server,
        ws,
        owner_id,
        c,
    }
}

async fn set_retention(s: &Setup, days: u32) -> reqwest::Response {
    s.c.put(
        s.server
            .url(&format!("/api/v1/workspaces/{}/audit/settings", s.ws)),
    )
    .json(&serde_json::json!({ "retention_days": days }))
    .send()
    .await
    .unwrap()
}

async fn search(s: &Setup, query: &str) -> (u16, Value) {
    let r =
        s.c.get(
            s.server
                .url(&format!("/api/v1/workspaces/{}/audit?{query}", s.ws)),
        )
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn count(db: &std::path::Path, action: &str) -> i64 {
    open_db(db)
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn each_change_writes_exactly_one_entry_and_failures_write_none() {
    let s = setup().await;
    let tenant = s.env.tenant_db(&s.ws);
    let control = s.env.data_dir().join("control.db");

    assert_eq!(set_retention(&s, 90).await.status(), 200);
    assert_eq!(count(&tenant, "audit.retention_changed"), 1);

    // Invalid: 422 naming the field, and no entry.
    let r = set_retention(&s, 3).await;
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "retention_days");
    assert_eq!(count(&tenant, "audit.retention_changed"), 1);

    let before = count(&control, "audit.verified");
    let r =
        s.c.post(
            s.server
                .url(&format!("/api/v1/workspaces/{}/audit/verify", s.ws)),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["ok"], true);
    assert_eq!(count(&control, "audit.verified"), before + 1);

    let r =
        s.c.get(s.server.url(&format!(
            "/api/v1/workspaces/{}/audit/export?format=csv",
            s.ws
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-aura-checkpoint"));
    let csv = r.text().await.unwrap();
    assert!(csv.starts_with("seq,time,actor,"), "{csv}");
    assert!(csv.contains("audit.retention_changed"));
    assert_eq!(count(&tenant, "audit.exported"), 1);

    let logins = count(&control, "auth.login");
    let logouts = count(&control, "auth.logout");
    assert_eq!(
        login(&s.c, &s.server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(count(&control, "auth.login"), logins + 1);
    assert_eq!(
        s.c.post(s.server.url("/api/v1/auth/logout"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(count(&control, "auth.logout"), logouts + 1);
    s.server.stop();
}

#[tokio::test]
async fn search_filters_cursor_and_isolation() {
    let s = setup().await;
    for d in [30, 60, 90] {
        assert_eq!(set_retention(&s, d).await.status(), 200);
    }

    let (st, page) = search(&s, "action=audit").await;
    assert_eq!(st, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 3, "{page}");
    assert!(
        items
            .iter()
            .all(|i| i["action"] == "audit.retention_changed")
    );
    assert!(
        items[0]["seq"].as_i64() > items[1]["seq"].as_i64(),
        "newest first"
    );
    assert_eq!(items[0]["after"]["retention_days"], 90);
    assert_eq!(items[0]["before"]["retention_days"], 60);
    assert_eq!(items[0]["actor"], s.owner_id.as_str());
    assert_eq!(items[0]["ip"], "127.0.0.1");

    let (_, page) = search(&s, "action=audit.retention_changed&limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let (_, next) = search(
        &s,
        &format!("action=audit.retention_changed&limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(next["items"].as_array().unwrap().len(), 1);
    assert!(next["next_cursor"].is_null());

    let (_, page) = search(&s, &format!("actor={}", s.owner_id)).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 3);
    let (_, page) = search(&s, "actor=operator").await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["actor"] == "operator")
    );
    let (_, page) = search(&s, "ip=10.9.9.9").await;
    assert!(page["items"].as_array().unwrap().is_empty());
    let (_, page) = search(&s, "action=rec*").await;
    assert!(page["items"].as_array().unwrap().is_empty());
    let (_, page) = search(&s, "from=2999-01-01").await;
    assert!(page["items"].as_array().unwrap().is_empty());
    let (_, page) = search(&s, &format!("target=workspace:{}", s.ws)).await;
    assert_eq!(page["items"][0]["action"], "workspace.created");

    // Free text reaches the sealed details (the workspace's name is only there).
    let (_, page) = search(&s, "q=Audit%20Ltd").await;
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{page}");
    assert_eq!(items[0]["action"], "workspace.created");
    let (_, page) = search(&s, "q=retention&action=audit&limit=1").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["next_cursor"].is_string());

    let (st, p) = search(&s, "from=yesterday&limit=0").await;
    assert_eq!(st, 422);
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["from", "limit"]);

    // Another workspace's audit log is a 404 to this owner, like a missing one.
    s.env.create_user("other@example.com", "Other");
    let other = s.env.create_workspace("Other Co", "other@example.com");
    for path in [
        format!("/api/v1/workspaces/{other}/audit"),
        format!("/api/v1/workspaces/{other}/audit/entries/1"),
        format!("/api/v1/workspaces/{other}/audit/export"),
        format!("/api/v1/workspaces/{other}/audit/status"),
        "/api/v1/workspaces/00000000-0000-7000-8000-000000000000/audit".to_owned(),
        "/api/v1/workspaces/not-an-id/audit".to_owned(),
    ] {
        let r = s.c.get(s.server.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
    }
    let r =
        s.c.get(
            s.server
                .url(&format!("/api/v1/workspaces/{other}/audit?q=Other")),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let (_, page) = search(&s, "q=Other").await;
    assert!(
        page["items"].as_array().unwrap().is_empty(),
        "never another workspace's entries: {page}"
    );

    // A member below admin is refused, and the refusal is audited.
    s.env.create_user("viewer@example.com", "Viewer");
    s.env.add_member(&s.ws, "viewer@example.com", "viewer");
    let v = client(&s.server);
    assert_eq!(
        login(&v, &s.server, "viewer@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = v
        .get(s.server.url(&format!("/api/v1/workspaces/{}/audit", s.ws)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let (_, page) = search(&s, "action=access.denied").await;
    assert_eq!(page["items"][0]["after"]["attempted"], "audit.read");

    // Anonymous: 401. Platform chain: platform admins only.
    let r = reqwest::Client::new()
        .get(s.server.url(&format!("/api/v1/workspaces/{}/audit", s.ws)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        s.c.get(s.server.url("/api/v1/platform/audit"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    s.server.stop();
}

#[tokio::test]
async fn ndjson_export_verifies_offline_and_tampering_is_caught() {
    let s = setup().await;
    assert_eq!(set_retention(&s, 45).await.status(), 200);
    let r =
        s.c.get(s.server.url(&format!(
            "/api/v1/workspaces/{}/audit/export?format=ndjson",
            s.ws
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let body = r.text().await.unwrap();
    let first: Value = serde_json::from_str(body.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "checkpoint");
    assert_eq!(first["reason"], "export");
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert_eq!(
        last["action"], "audit.exported",
        "the export is itself in the export"
    );
    assert_eq!(last["seq"], first["seq"]);

    let file = s.env.root().join("export.ndjson");
    std::fs::write(&file, &body).unwrap();
    let out = s
        .env
        .cli(&["audit", "verify-export", file.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let key = first["public_key"].as_str().unwrap();
    let out = s.env.cli(
        &[
            "audit",
            "verify-export",
            file.to_str().unwrap(),
            "--public-key",
            key,
        ],
        None,
    );
    assert!(out.status.success());
    let wrong = "ab".repeat(32);
    let out = s.env.cli(
        &[
            "audit",
            "verify-export",
            file.to_str().unwrap(),
            "--public-key",
            &wrong,
        ],
        None,
    );
    assert!(!out.status.success());

    let tampered = body.replacen("\"retention_days\":45", "\"retention_days\":46", 1);
    let tampered = tampered.replacen("audit.retention_changed", "audit.retention_changes", 1);
    std::fs::write(&file, tampered).unwrap();
    let out = s
        .env
        .cli(&["audit", "verify-export", file.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("does not match its hash"));

    // The platform admin's platform export works the same way.
    s.env.cli(
        &[
            "user",
            "create",
            "--email",
            "pa@example.com",
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    let pa = client(&s.server);
    assert_eq!(
        login(&pa, &s.server, "pa@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let body = common::get_text(&pa, s.server.url("/api/v1/platform/audit/export")).await;
    std::fs::write(&file, &body).unwrap();
    let out = s
        .env
        .cli(&["audit", "verify-export", file.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let page: Value =
        common::get_json(&pa, s.server.url("/api/v1/platform/audit?action=auth")).await;
    assert!(
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["action"] == "auth.login")
    );
    s.server.stop();
}

/// Direct SQLite edits of five kinds, each detected at the right seq.
#[tokio::test]
async fn tampering_is_detected_with_the_first_bad_seq() {
    let s = setup().await;
    for d in [10, 20, 30, 40, 50, 60] {
        assert_eq!(set_retention(&s, d).await.status(), 200);
    }
    s.server.stop(); // signs every head at shutdown
    let out = s.env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let head: i64 = open_db(&s.env.tenant_db(&s.ws))
        .query_row("SELECT max(seq) FROM audit_log", [], |r| r.get(0))
        .unwrap();
    assert_eq!(head, 8);

    let cases: [(&str, &str, i64); 6] = [
        ("cut the oldest", "DELETE FROM audit_log WHERE seq <= 2;", 1),
        ("edit", "UPDATE audit_log SET action = 'audit.nothing_happened' WHERE seq = 3;", 3),
        ("delete", "DELETE FROM audit_log WHERE seq = 3;", 3),
        (
            "reorder",
            "UPDATE audit_log SET seq = -1 WHERE seq = 3; UPDATE audit_log SET seq = 3 WHERE seq = 4;
             UPDATE audit_log SET seq = 4 WHERE seq = -1;",
            3,
        ),
        (
            "insert",
            "UPDATE audit_log SET seq = -(seq + 1) WHERE seq >= 3; UPDATE audit_log SET seq = -seq WHERE seq < 0;
             INSERT INTO audit_log (seq, time, actor_type, action, prev_hash, hash)
             SELECT 3, time, 'system', 'member.added', hash, randomblob(32) FROM audit_log WHERE seq = 2;",
            3,
        ),
        ("truncate", "DELETE FROM audit_log WHERE seq >= 5;", 5),
    ];
    for (kind, sql, expected) in cases {
        let copy = s.env.root().join(format!("copy-{kind}"));
        copy_dir(&s.env.data_dir(), &copy);
        let db =
            rusqlite::Connection::open(copy.join("tenants").join(&s.ws).join("data.db")).unwrap();
        db.execute_batch("DROP TRIGGER audit_log_append_only;")
            .unwrap();
        db.execute_batch(sql).unwrap();
        drop(db);
        let out = s.env.cli_at(&copy, &["audit", "verify"]);
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(!out.status.success(), "{kind} not detected:\n{text}");
        assert!(
            text.contains(&format!(
                "FAIL  workspace {}: first bad seq {expected}:",
                s.ws
            )),
            "{kind}: expected seq {expected}:\n{text}"
        );
        assert!(
            text.contains("ok    platform"),
            "other chains unaffected:\n{text}"
        );
        let one = s
            .env
            .cli_at(&copy, &["audit", "verify", "--workspace", &s.ws]);
        assert!(!one.status.success());
    }

    // A consistent rewrite of the whole chain is caught by the signature.
    let copy = s.env.root().join("copy-rewrite");
    copy_dir(&s.env.data_dir(), &copy);
    let control = rusqlite::Connection::open(copy.join("control.db")).unwrap();
    control
        .execute(
            "UPDATE audit_checkpoints SET seq = 7 WHERE scope = ?1",
            [&s.ws],
        )
        .unwrap();
    drop(control);
    let out = s.env.cli_at(&copy, &["audit", "verify"]);
    assert!(!out.status.success(), "a forged checkpoint is caught");
}

#[tokio::test]
async fn retention_removes_old_entries_and_the_chain_still_verifies() {
    let s = setup().await;
    for d in [10, 20, 30] {
        assert_eq!(set_retention(&s, d).await.status(), 200);
    }
    assert_eq!(set_retention(&s, 365).await.status(), 200);
    s.server.stop();
    let before: i64 = open_db(&s.env.tenant_db(&s.ws))
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap();

    // 400 days later.
    let out = s
        .env
        .command(&["audit", "prune"])
        .env("AURA_TEST_CLOCK_OFFSET", (400 * 86_400).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&s.ws), "{text}");

    let db = open_db(&s.env.tenant_db(&s.ws));
    let (after, first): (i64, i64) = db
        .query_row("SELECT count(*), min(seq) FROM audit_log", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(
        after, 2,
        "the newest old entry is kept as the head, plus the retention record"
    );
    assert!(after < before && first > 1);
    let last: String = db
        .query_row(
            "SELECT action FROM audit_log ORDER BY seq DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(last, "audit.retention_applied");

    let out = s.env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // Deleting the retention anchor's successor is still caught.
    let copy = s.env.root().join("copy-after-retention");
    copy_dir(&s.env.data_dir(), &copy);
    let db = rusqlite::Connection::open(copy.join("tenants").join(&s.ws).join("data.db")).unwrap();
    db.execute("DELETE FROM audit_log WHERE seq = ?1", [first])
        .unwrap();
    drop(db);
    let out = s.env.cli_at(&copy, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(&format!("first bad seq {first}")));
}

fn total(db: &std::path::Path) -> i64 {
    open_db(db)
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap()
}

/// Whether a table row changes existing state (rather than creating,
/// deleting or recording an event): every PUT and PATCH, and the POSTs that
/// restore, rotate, suspend or resume. Such an entry must hold `before` and
/// `after`. A password change is left out: its before and after are secrets,
/// which entries never hold.
fn update_shaped(method: &str, action: &str) -> bool {
    !action.is_empty()
        && !action.starts_with('!')
        && (method == "PUT"
            || method == "PATCH"
            || action.ends_with(".restored")
            || action.ends_with("rotated")
            || action.ends_with(".suspended")
            || action.ends_with(".resumed"))
}

/// Every state-changing API route, enumerated from the OpenAPI document, must
/// have an entry here; each call must add exactly one entry of its action to
/// the right chain.
#[tokio::test]
async fn every_mutating_api_route_writes_exactly_its_entry() {
    // Invitations go out by mail: a real SMTP sink.
    let sink = common::smtp::Sink::start();
    let vars = sink.env();
    let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.push(("AURA_AUTH__MAGIC_LINKS", "true"));
    // Passkeys need a domain as the relying party.
    vars.push(("AURA_PUBLIC_URL", "http://localhost"));
    let s = setup_with(&vars).await;
    let out = s.env.cli(
        &[
            "user",
            "create",
            "--email",
            "staff@example.com",
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success());
    let staff = client(&s.server);
    assert_eq!(
        login(&staff, &s.server, "staff@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    let st: Value = common::get_json(&staff, s.server.url("/api/v1/platform/status")).await;
    assert_eq!(st["tls_mode"], "off");
    assert_eq!(
        s.c.get(s.server.url("/api/v1/platform/status"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // (method, OpenAPI path, chain, action, body, id to capture from the
    // response), in the order they run: later rows use captured ids.
    let wschain = "workspace";
    type Row = (
        &'static str,
        &'static str,
        &'static str,
        &'static str,
        Value,
        Option<&'static str>,
    );
    let table: &[Row] = &[
        (
            "POST",
            "/auth/login",
            "platform",
            "auth.login",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/auth/logout",
            "platform",
            "auth.logout",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/audit/verify",
            "platform",
            "audit.verified",
            Value::Null,
            None,
        ),
        (
            "PUT",
            "/workspaces/{workspace}/audit/settings",
            wschain,
            "audit.retention_changed",
            json!({"retention_days": 120}),
            None,
        ),
        (
            "POST",
            "/platform/audit/verify",
            "platform",
            "audit.verified",
            Value::Null,
            None,
        ),
        // Integrations: a webhook first, so the record rows below queue
        // deliveries (to a name that never resolves: no entry is written by
        // the worker's failed attempts).
        (
            "POST",
            "/workspaces/{workspace}/webhooks",
            wschain,
            "webhook.created",
            json!({"url": "https://hooks.example.invalid/aura", "events": ["record.created"]}),
            Some("{webhook}"),
        ),
        (
            "PATCH",
            "/workspaces/{workspace}/webhooks/{webhook}",
            wschain,
            "webhook.updated",
            json!({"events": ["record.created", "record.updated"]}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/webhooks/{webhook}/rotate-secret",
            wschain,
            "webhook.secret_rotated",
            json!({"overlap_hours": 1}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/integrations/secrets",
            wschain,
            "integration_secret.created",
            json!({"name": "Shop API key", "value": "sk_test_0123456789"}),
            Some("{secret_id}"),
        ),
        (
            "POST",
            "/workspaces/{workspace}/integrations/secrets/{secret_id}/rotate",
            wschain,
            "integration_secret.rotated",
            json!({"value": "sk_test_9876543210"}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/integrations/inbound",
            wschain,
            "inbound_integration.created",
            json!({"name": "Shop", "mode": "signature", "secret_id": "{secret_id}"}),
            Some("{integration}"),
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/integrations/inbound/{integration}",
            wschain,
            "inbound_integration.deleted",
            Value::Null,
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/integrations/secrets/{secret_id}",
            wschain,
            "integration_secret.deleted",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/collections",
            wschain,
            "collection.created",
            json!({"name": "Fixture", "fields": [{"name": "N", "type": "text"}, {"name": "F", "type": "file"}]}),
            Some("{collection}"),
        ),
        (
            "PATCH",
            "/workspaces/{workspace}/collections/{collection}",
            wschain,
            "collection.updated",
            json!({"name": "Fixture 2"}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/collections/{collection}/records",
            wschain,
            "record.created",
            json!({"values": {"N": "a"}}),
            Some("{record}"),
        ),
        (
            "POST",
            "/workspaces/{workspace}/webhooks/{webhook}/deliveries/{delivery}/redeliver",
            wschain,
            "webhook.redelivered",
            Value::Null,
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/webhooks/{webhook}",
            wschain,
            "webhook.deleted",
            Value::Null,
            None,
        ),
        (
            "PATCH",
            "/workspaces/{workspace}/collections/{collection}/records/{record}",
            wschain,
            "record.updated",
            json!({"values": {"N": "b"}}),
            None,
        ),
        // A file: the raw body (sent as text here), its name in the query.
        (
            "POST",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/files/{field}",
            wschain,
            "record.file_added",
            json!("a file for the audit"),
            Some("{file}"),
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/files/{field}/{file}",
            wschain,
            "record.file_removed",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/history/{version}/restore",
            wschain,
            "record.restored",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/collections/{collection}/import",
            wschain,
            "records.imported",
            json!("N\nc\nd\n"),
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/collections/{collection}/records/{record}",
            wschain,
            "record.deleted",
            Value::Null,
            None,
        ),
        // Undone: the record deleted just above comes back.
        (
            "POST",
            "/workspaces/{workspace}/collections/{collection}/records/{record}/undelete",
            wschain,
            "record.undeleted",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/teams",
            wschain,
            "team.created",
            json!({"name": "Desk"}),
            Some("{team}"),
        ),
        (
            "PUT",
            "/workspaces/{workspace}/teams/{team}/members/{user}",
            wschain,
            "team.member_set",
            json!({"role": "lead"}),
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/teams/{team}/members/{user}",
            wschain,
            "team.member_removed",
            Value::Null,
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/teams/{team}",
            wschain,
            "team.deleted",
            Value::Null,
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/collections/{collection}",
            wschain,
            "collection.deleted",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/auth/token",
            "platform",
            "auth.token_issued",
            json!({"email": "owner@example.com", "password": PASSWORD}),
            Some("{refresh}"),
        ),
        (
            "POST",
            "/auth/refresh",
            "platform",
            "auth.token_refreshed",
            json!({"refresh_token": "{refresh}"}),
            None,
        ),
        (
            "DELETE",
            "/me/sessions/{id}",
            "platform",
            "auth.session_ended",
            Value::Null,
            None,
        ),
        (
            "PUT",
            "/workspaces/{workspace}/members/{user}",
            "platform",
            "member.role_changed",
            json!({"role": "owner"}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/service-accounts",
            "platform",
            "service_account.created",
            json!({"name": "CI robot", "role": "member"}),
            Some("{svc}"),
        ),
        (
            "POST",
            "/workspaces/{workspace}/tokens",
            "platform",
            "api_token.created",
            json!({"name": "deploy", "scope": "member", "service_account": "{svc}"}),
            Some("{token}"),
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/tokens/{token}",
            "platform",
            "api_token.revoked",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/scim/token",
            "platform",
            "scim.token_issued",
            Value::Null,
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/scim/token",
            "platform",
            "scim.token_revoked",
            Value::Null,
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/members/{user}",
            "platform",
            "member.removed",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/me/password",
            "platform",
            "user.password_changed",
            json!({"current_password": PASSWORD, "new_password": PASSWORD}),
            None,
        ),
        (
            "PUT",
            "/workspaces/{workspace}/mfa-policy",
            "platform",
            "workspace.mfa_policy_changed",
            json!({"required": false}),
            None,
        ),
        (
            "PUT",
            "/workspaces/{workspace}/sso",
            "platform",
            "sso.config_changed",
            json!({"issuer": "https://login.example.com/realms/acme", "client_id": "aura", "client_secret": "s3cret"}),
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/sso",
            "platform",
            "sso.config_removed",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/me/mfa/totp",
            "platform",
            "mfa.enrolment_started",
            json!({"password": PASSWORD}),
            Some("{secret}"),
        ),
        (
            "POST",
            "/me/mfa/totp/confirm",
            "platform",
            "mfa.enabled",
            json!({"code": "{code}"}),
            Some("{recovery}"),
        ),
        (
            "POST",
            "/me/mfa/recovery-codes",
            "platform",
            "mfa.recovery_codes_regenerated",
            json!({"password": PASSWORD}),
            Some("{recovery}"),
        ),
        (
            "POST",
            "/me/mfa/totp/remove",
            "platform",
            "mfa.disabled",
            json!({"password": PASSWORD, "code": "{recovery}"}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/data-subjects/search",
            wschain,
            "data_subject.searched",
            json!({"identifier": "nobody@example.com"}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/data-subjects/export",
            wschain,
            "data_subject.exported",
            json!({"identifier": "nobody@example.com"}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/data-subjects/anonymise",
            wschain,
            "data_subject.anonymised",
            json!({"identifier": "nobody@example.com"}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/exports",
            wschain,
            "workspace.exported",
            json!({}),
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/invitations",
            "platform",
            "invitation.created",
            json!({"email": "revoked@example.com", "role": "viewer"}),
            Some("{invitation}"),
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/invitations/{invitation}",
            "platform",
            "invitation.revoked",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/workspaces/{workspace}/invitations",
            "platform",
            "invitation.created",
            json!({"email": "staff@example.com", "role": "viewer"}),
            None,
        ),
        // Accepted by the (existing, signed-in) staff account.
        (
            "POST",
            "/invitations/{token}/accept",
            "platform",
            "invitation.accepted",
            json!({}),
            None,
        ),
        (
            "POST",
            "/auth/magic-link",
            "platform",
            "auth.magic_link_sent",
            json!({"email": "owner@example.com"}),
            None,
        ),
        // The platform area, as the staff member.
        (
            "POST",
            "/platform/workspaces",
            "platform",
            "workspace.created",
            json!({"name": "Second", "owner_email": "owner@example.com"}),
            None,
        ),
        (
            "POST",
            "/platform/workspaces/{workspace}/suspend",
            "platform",
            "workspace.suspended",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/platform/workspaces/{workspace}/resume",
            "platform",
            "workspace.resumed",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/platform/workspaces/{workspace}/impersonate",
            "platform",
            "impersonation.started",
            json!({"reason": "Ticket 4711: the import fails"}),
            None,
        ),
        (
            "POST",
            "/platform/impersonation/end",
            "platform",
            "impersonation.ended",
            Value::Null,
            None,
        ),
        // Passkey ceremonies start in memory; finishing one needs a browser
        // (tests/ui_browser.rs checks `mfa.passkey_added` and
        // `auth.passkey_used`): here the unfinished ones change nothing.
        (
            "POST",
            "/me/passkeys/register/start",
            "platform",
            "",
            json!({"password": PASSWORD, "name": "Laptop"}),
            None,
        ),
        (
            "POST",
            "/auth/passkey/start",
            "platform",
            "",
            json!({}),
            None,
        ),
        (
            "POST",
            "/me/passkeys/register/finish",
            "platform",
            "!ui_browser::passkeys_register_stand_in_for_the_code_and_sign_in_alone_in_chromium",
            json!({"ceremony": "nope", "credential": {}}),
            None,
        ),
        (
            "POST",
            "/auth/passkey/finish",
            "platform",
            "!ui_browser::passkeys_register_stand_in_for_the_code_and_sign_in_alone_in_chromium",
            json!({"ceremony": "nope", "credential": {}}),
            None,
        ),
        (
            "POST",
            "/me/passkeys/{id}/remove",
            "platform",
            "!ui_browser::passkeys_register_stand_in_for_the_code_and_sign_in_alone_in_chromium",
            json!({"password": PASSWORD}),
            None,
        ),
        // Deletion, scheduled and cancelled (the workspace stays). The
        // account is the staff member's: the owner is the workspace's last.
        (
            "POST",
            "/workspaces/{workspace}/deletion",
            "platform",
            "workspace.deletion_scheduled",
            json!({"confirm_name": "Audit Ltd"}),
            None,
        ),
        (
            "DELETE",
            "/workspaces/{workspace}/deletion",
            "platform",
            "workspace.deletion_cancelled",
            Value::Null,
            None,
        ),
        // Key rotation: the request's entry, then its job's (waited for).
        (
            "POST",
            "/workspaces/{workspace}/keys/rotate",
            "platform",
            "keys.rotation_requested",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/me/deletion",
            "platform",
            "user.deletion_scheduled",
            json!({"password": PASSWORD}),
            None,
        ),
        (
            "DELETE",
            "/me/deletion",
            "platform",
            "user.deletion_cancelled",
            Value::Null,
            None,
        ),
        // Accounts, as the staff member: one invited by mail, then disabled,
        // enabled and made platform admin (`{user}` is that account).
        (
            "POST",
            "/platform/accounts",
            "platform",
            "user.invited",
            json!({"email": "newcomer@example.com", "name": "Newcomer"}),
            Some("{account}"),
        ),
        (
            "POST",
            "/platform/accounts/{user}/disable",
            "platform",
            "user.disabled",
            Value::Null,
            None,
        ),
        (
            "POST",
            "/platform/accounts/{user}/enable",
            "platform",
            "user.enabled",
            Value::Null,
            None,
        ),
        (
            "PUT",
            "/platform/accounts/{user}/platform-admin",
            "platform",
            "user.platform_admin_changed",
            json!({"platform_admin": true}),
            None,
        ),
        // Last: a reset ends the owner's sessions.
        (
            "POST",
            "/auth/password-reset",
            "platform",
            "auth.password_reset_sent",
            json!({"email": "owner@example.com"}),
            None,
        ),
        (
            "POST",
            "/auth/password-reset/confirm",
            "platform",
            "user.password_reset",
            json!({"token": "{reset}", "new_password": PASSWORD}),
            None,
        ),
    ];
    let spec: Value = common::get_json(&s.c, s.server.url("/api/openapi.json")).await;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            let m = method.to_uppercase();
            if m == "GET" {
                continue;
            }
            assert!(
                table.iter().any(|(tm, tp, ..)| *tm == m && *tp == path),
                "{m} {path} changes state but has no audit expectation in this test"
            );
        }
    }

    let control = s.env.data_dir().join("control.db");
    let tenant = s.env.tenant_db(&s.ws);
    let mut ids: Vec<(&str, String)> = vec![
        ("{workspace}", s.ws.clone()),
        ("{user}", s.owner_id.clone()),
        ("{version}", "1".into()),
        ("{field}", "F".into()),
    ];
    for (method, path, chain, action, body, capture) in table {
        let db = if *chain == "platform" {
            &control
        } else {
            &tenant
        };
        if path.contains("/me/sessions/{id}") {
            let list: Value = common::get_json(&s.c, s.server.url("/api/v1/me/sessions")).await;
            let other = list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["current"] == false)
                .expect("another sign-in to end");
            ids.push(("{id}", other["id"].as_str().unwrap().to_owned()));
        }
        if path.contains("{delivery}") {
            // The delivery the record.created row queued.
            let hook = &ids.iter().find(|(k, _)| *k == "{webhook}").unwrap().1;
            let url = s.server.url(&format!(
                "/api/v1/workspaces/{}/webhooks/{hook}/deliveries",
                s.ws
            ));
            let list: Value = common::get_json(&s.c, url).await;
            let id = list["items"][0]["id"].as_str().expect("a queued delivery");
            ids.push(("{delivery}", id.to_owned()));
        }
        if *path == "/invitations/{token}/accept" {
            ids.insert(0, ("{token}", sink.token_for("staff@example.com")));
        }
        if *path == "/auth/password-reset/confirm" {
            ids.push(("{reset}", sink.link_token("owner@example.com", "/reset/")));
        }
        if *path == "/me/mfa/totp/confirm" {
            let secret = &ids.iter().find(|(k, _)| *k == "{secret}").unwrap().1;
            ids.push(("{code}", common::otp::code_now(secret)));
        }
        if *method == "DELETE" && *path == "/workspaces/{workspace}/members/{user}" {
            // Remove the service account, not the owner.
            let svc = ids.iter().find(|(k, _)| *k == "{svc}").unwrap().1.clone();
            ids.insert(0, ("{user}", svc));
        }
        let (before_total, before_action) = (total(db), count(db, action));
        let mut p = path.to_string();
        if path.starts_with("/platform/accounts/") {
            let account = &ids.iter().find(|(k, _)| *k == "{account}").unwrap().1;
            p = p.replace("{user}", account);
        }
        for (k, v) in &ids {
            p = p.replace(k, v);
        }
        let mut url = s.server.url(&format!("/api/v1{p}"));
        if path.ends_with("/files/{field}") {
            url.push_str("?name=audit.txt");
        }
        let client = if path.starts_with("/platform/")
            || path.starts_with("/invitations/")
            || path.starts_with("/me/deletion")
        {
            &staff
        } else {
            &s.c
        };
        let req = client.request(method.parse().unwrap(), &url);
        let mut body = body.clone();
        if let Value::Object(_) = body {
            let mut text = body.to_string();
            for (k, v) in &ids {
                text = text.replace(k, v);
            }
            body = serde_json::from_str(&text).unwrap();
        }
        let req = match &body {
            Value::Null => req,
            Value::String(csv) => req.header("content-type", "text/csv").body(csv.clone()),
            json => req.json(json),
        };
        let r = if *path == "/auth/login" {
            login(&s.c, &s.server, "owner@example.com", PASSWORD).await
        } else {
            req.send().await.unwrap()
        };
        // `!where`: the route's success needs what this test cannot give (a
        // browser's passkey); `where` is the test that covers it, and here a
        // refused call must write nothing.
        let refused = action.starts_with('!');
        if refused {
            assert!(
                r.status().is_client_error(),
                "{method} {path}: {}",
                r.status()
            );
        } else {
            assert!(r.status().is_success(), "{method} {path}: {}", r.status());
        }
        if let Some(key) = capture {
            let v: Value = r.json().await.unwrap();
            let found = match *key {
                "{refresh}" => &v["refresh_token"],
                "{secret}" => &v["secret"],
                "{recovery}" => &v["recovery_codes"][0],
                _ => &v["id"],
            };
            // A later capture of the same name replaces it (new recovery
            // codes replace the old ones).
            ids.retain(|(k, _)| k != key);
            ids.push((key, found.as_str().unwrap().to_owned()));
        }
        // Link requests answer before the work that depends on the address
        // (issue 18, finding 10): the link and its entry are committed just
        // after the answer, and the mail goes out once they are.
        if let Some(prefix) = match *path {
            "/auth/magic-link" => Some("/magic/"),
            "/auth/password-reset" => Some("/reset/"),
            _ => None,
        } {
            sink.link_token("owner@example.com", prefix);
        }
        // A data key rotation finishes in the server's job, which writes
        // its own platform entry (`keys.data_key_rotated`) when it destroys
        // the old key: wait for it, then count it.
        let job_entries = if *path == "/workspaces/{workspace}/keys/rotate" {
            let url = s
                .server
                .url(&format!("/api/v1/workspaces/{}/keys/rotation", s.ws));
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            while common::get_json(&s.c, &url).await["state"] != "finished" {
                assert!(
                    std::time::Instant::now() < until,
                    "the key rotation finishes"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            1
        } else {
            0
        };
        // An empty action: the route changes nothing stored (a ceremony that
        // lives in memory until it finishes) and writes no entry.
        let want = if action.is_empty() || refused { 0 } else { 1 };
        // Link requests answer before the address-dependent work (issue 18,
        // finding 10), so their entry lands just after the answer.
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while count(db, action) < before_action + want && std::time::Instant::now() < until {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(
            count(db, action),
            before_action + want,
            "{method} {path} writes one {action}"
        );
        assert_eq!(
            total(db),
            before_total + want + job_entries,
            "{method} {path} writes nothing else"
        );
        // An update-shaped action records the state before next to the
        // state after (read in the same transaction as the write).
        if update_shaped(method, action) {
            let (c, url) = if *chain == "platform" {
                (
                    &staff,
                    s.server
                        .url(&format!("/api/v1/platform/audit?action={action}&limit=1")),
                )
            } else {
                (
                    &s.c,
                    s.server.url(&format!(
                        "/api/v1/workspaces/{}/audit?action={action}&limit=1",
                        s.ws
                    )),
                )
            };
            let page: Value = common::get_json(c, url).await;
            let e = &page["items"][0];
            assert_eq!(e["action"], *action, "{page}");
            assert!(
                e["before"].is_object() && e["after"].is_object(),
                "{method} {path}: {action} is update-shaped and must record before and after: {e}"
            );
        }
        if *path == "/auth/logout" {
            assert_eq!(
                login(&s.c, &s.server, "owner@example.com", PASSWORD)
                    .await
                    .status(),
                200
            );
        }
    }
    s.server.stop();
}

/// Fails naming where `canary` shows in `seen`.
fn assert_unseen(seen: &str, canary: &str, who: &str) {
    if let Some(i) = seen.find(canary) {
        let from = seen[..i]
            .char_indices()
            .rev()
            .nth(300)
            .map_or(0, |(j, _)| j);
        let to = (i + 100).min(seen.len());
        panic!("{who} sees {canary}: ...{}...", &seen[from..to]);
    }
}

/// The archive's files, concatenated (a workspace export is zstd(tar)).
fn unpacked_text(tar_zst: &[u8]) -> String {
    use std::io::Read;
    let mut tar = Vec::new();
    zstd::Decoder::new(tar_zst)
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    let mut out = String::new();
    let mut archive = tar::Archive::new(tar.as_slice());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let mut data = String::new();
        e.read_to_string(&mut data).unwrap();
        out.push_str(&data);
        out.push('\n');
    }
    out
}

/// Everything one reader can get about the workspace's records through the
/// paths that are not the records API: audit list, entries, free text, audit
/// export (NDJSON, CSV), the audit UI, a workspace export, data-subject search
/// and export, webhook deliveries (API and UI). Returns the text of all of it
/// and how many hits free text gave for each canary.
async fn everything_seen(
    server: &Server,
    c: &reqwest::Client,
    ws: &str,
    hook: &str,
) -> (String, Vec<usize>) {
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let text = |r: reqwest::Response| async move {
        assert!(r.status().is_success(), "{}", r.status());
        r.text().await.unwrap()
    };
    let mut seen = String::new();
    let list: Value = common::get_json(c, api("/audit?action=record&limit=200")).await;
    seen.push_str(&list.to_string());
    for item in list["items"].as_array().unwrap() {
        let seq = item["seq"].as_i64().unwrap();
        seen.push_str(
            &text(
                c.get(api(&format!("/audit/entries/{seq}")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
        seen.push_str(&common::get_text(c, server.url(&format!("/w/{ws}/audit/{seq}"))).await);
    }
    let coll: Value = common::get_json(c, api("/audit?action=collection&limit=200")).await;
    seen.push_str(&coll.to_string());
    let mut hits = Vec::new();
    for q in ["HRcanary", "PAYcanary"] {
        let page: Value = common::get_json(c, api(&format!("/audit?q={q}"))).await;
        hits.push(page["items"].as_array().unwrap().len());
        seen.push_str(&page.to_string());
        // The page repeats the query itself (search box, links): not a leak.
        let html = common::get_text(c, server.url(&format!("/w/{ws}/audit?q={q}"))).await;
        seen.push_str(
            &html
                .replace(&format!("value=\"{q}\""), "")
                .replace(&format!("q={q}"), ""),
        );
    }
    seen.push_str(&common::get_text(c, server.url(&format!("/w/{ws}/audit"))).await);
    for format in ["ndjson", "csv"] {
        seen.push_str(
            &text(
                c.get(api(&format!("/audit/export?format={format}")))
                    .send()
                    .await
                    .unwrap(),
            )
            .await,
        );
    }
    // A workspace export.
    let r = c
        .post(api("/exports"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let url = api(&format!("/exports/{}", job["id"].as_str().unwrap()));
    let job = loop {
        let job: Value = common::get_json(c, url.as_str()).await;
        match job["state"].as_str().unwrap() {
            "ready" => break job,
            "running" => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            other => panic!("export {other}: {job}"),
        }
    };
    let archive = c
        .get(server.url(job["download"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    seen.push_str(&unpacked_text(&archive));
    // Data-subject search and export.
    for path in ["/data-subjects/search", "/data-subjects/export"] {
        let r = c
            .post(api(path))
            .json(&json!({"identifier": "zelda.subject@example.com"}))
            .send()
            .await
            .unwrap();
        seen.push_str(&text(r).await);
    }
    // Webhook deliveries.
    seen.push_str(
        &common::get_json(c, api(&format!("/webhooks/{hook}/deliveries")))
            .await
            .to_string(),
    );
    seen.push_str(&common::get_text(c, server.url(&format!("/w/{ws}/integrations"))).await);
    (seen, hits)
}

/// Finding 2 of the security review: people read team-only and
/// permission-restricted records through the audit log (and the other paths
/// that carry record values). A person sees a record's values only where they
/// may read that record: an admin not on team HR sees none of HR's values, an
/// admin whom a collection's permissions do not let read sees none of its
/// values, and a team member does see HR's.
#[tokio::test]
async fn finding_2_record_values_only_for_those_who_may_read_the_record() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    env.create_user("outsider@example.com", "Outsider");
    let insider_id = env.create_user("insider@example.com", "Insider");
    let ws = env.create_workspace("Vis Ltd", "owner@example.com");
    env.add_member(&ws, "outsider@example.com", "admin");
    env.add_member(&ws, "insider@example.com", "admin");
    let server = env.start();
    let signed_in = |email: &'static str| {
        let c = client(&server);
        let server = &server;
        async move {
            assert_eq!(login(&c, server, email, PASSWORD).await.status(), 200);
            c
        }
    };
    let owner = signed_in("owner@example.com").await;
    let outsider = signed_in("outsider@example.com").await;
    let insider = signed_in("insider@example.com").await;
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let post = |c: &reqwest::Client, p: &str, body: Value| {
        let req = c.post(api(p)).json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert!(r.status().is_success(), "{}", r.status());
            r.json::<Value>().await.unwrap()
        }
    };

    // Deliveries queue for every record created.
    let hook = post(
        &owner,
        "/webhooks",
        json!({"url": "https://hooks.example.invalid/aura", "events": ["record.created", "record.updated"]}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let hr = post(&owner, "/teams", json!({"name": "HR"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = owner
        .put(api(&format!("/teams/{hr}/members/{insider_id}")))
        .json(&json!({"role": "member"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let fields = json!([
        {"name": "Note", "type": "text", "searchable": true},
        {"name": "Email", "type": "email", "pii": true}
    ]);
    let hr_files = post(
        &insider,
        "/collections",
        json!({"name": "HR files", "team_id": hr, "fields": fields}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let owners_only = json!(["owner"]);
    let payroll = post(
        &owner,
        "/collections",
        json!({"name": "Payroll", "fields": fields, "permissions": {
            "read": owners_only, "create": owners_only, "update": owners_only, "delete": owners_only}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = post(
        &insider,
        &format!("/collections/{hr_files}/records"),
        json!({"values": {"Note": "HRcanary salary review", "Email": "zelda.subject@example.com"}}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = insider
        .patch(api(&format!("/collections/{hr_files}/records/{rec}")))
        .json(&json!({"values": {"Note": "HRcanary second review"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    post(
        &owner,
        &format!("/collections/{payroll}/records"),
        json!({"values": {"Note": "PAYcanary bonus", "Email": "zelda.subject@example.com"}}),
    )
    .await;

    // The records API itself: 404 for HR's collection, 403 for Payroll's records.
    let r = outsider
        .get(api(&format!("/collections/{hr_files}/records/{rec}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The admin on no team, allowed by no collection: nothing of either.
    let (seen, hits) = everything_seen(&server, &outsider, &ws, &hook).await;
    assert_unseen(&seen, "HRcanary", "outsider");
    assert_unseen(&seen, "PAYcanary", "outsider");
    assert_eq!(
        hits,
        vec![0, 0],
        "free text finds what outsider may not read"
    );
    // The withheld entries are still listed, marked so.
    let list: Value = common::get_json(&outsider, api("/audit?action=record.created")).await;
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    assert!(
        items
            .iter()
            .all(|i| i["withheld"] == true && i["after"].is_null())
    );

    // The admin on team HR: HR's values, not Payroll's.
    let (seen, hits) = everything_seen(&server, &insider, &ws, &hook).await;
    assert!(seen.contains("HRcanary"), "a team member sees HR's values");
    assert_unseen(&seen, "PAYcanary", "insider");
    assert_eq!(hits, vec![2, 0]);

    // The owner, whom Payroll lets read, but not on HR.
    let (seen, hits) = everything_seen(&server, &owner, &ws, &hook).await;
    assert_unseen(&seen, "HRcanary", "owner off the team");
    assert!(seen.contains("PAYcanary"));
    assert_eq!(hits, vec![0, 1]);
    server.stop();
}

/// Finding 17 of the security review: `member.role_changed` recorded
/// `before: null`, so a manager -> viewer change read "after: viewer". Both
/// chains now hold the role before and after.
#[tokio::test]
async fn finding_17_a_role_change_records_the_role_before_and_after() {
    let s = setup().await;
    let member = s.env.create_user("m@example.com", "M");
    s.env.add_member(&s.ws, "m@example.com", "manager");
    let r =
        s.c.put(
            s.server
                .url(&format!("/api/v1/workspaces/{}/members/{member}", s.ws)),
        )
        .json(&json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let (_, page) = search(&s, "action=member.role_changed").await;
    let e = &page["items"][0];
    assert_eq!(e["target"], member.as_str());
    assert_eq!(e["before"]["role"], "manager", "{e}");
    assert_eq!(e["after"]["role"], "viewer", "{e}");
    s.server.stop();
    let platform = common::mfa::platform_entries(&s.env, "member.role_changed");
    let e = platform.last().expect("a platform entry");
    assert_eq!(e["before"]["role"], "manager", "{e}");
    assert_eq!(e["after"]["role"], "viewer", "{e}");
    // The operator's update-shaped commands too.
    let out = s
        .env
        .cli(&["user", "disable", "--email", "m@example.com"], None);
    assert!(out.status.success());
    let e = common::mfa::platform_entries(&s.env, "user.disabled");
    assert_eq!(e[0]["before"]["disabled"], false, "{}", e[0]);
    assert_eq!(e[0]["after"]["disabled"], true, "{}", e[0]);
}

/// Recomputes every hash of a chain from `from` on, as someone with write
/// access to the data dir (but not the master key) can.
fn rehash_from(db: &rusqlite::Connection, from: i64) {
    use sha2::Digest;
    /// seq, the canonical fields but the details' digest, detail_ct, detail_digest.
    type Row = (i64, Value, Option<Vec<u8>>, Option<Vec<u8>>);
    let rows: Vec<Row> = {
        let mut stmt = db
            .prepare(
                "SELECT seq, time, actor_type, actor_id, action, target_type, target_id, ip, request_id,
                        detail_ct, detail_digest FROM audit_log WHERE seq >= ?1 ORDER BY seq",
            )
            .unwrap();
        stmt.query_map([from], |r| {
            Ok((
                r.get::<_, i64>(0)?,
                json!([
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, Option<String>>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                    r.get::<_, Option<String>>(6)?,
                    r.get::<_, Option<String>>(7)?,
                    r.get::<_, Option<String>>(8)?,
                ]),
                r.get(9)?,
                r.get(10)?,
            ))
        })
        .unwrap()
        .collect::<rusqlite::Result<Vec<_>>>()
        .unwrap()
    };
    let mut prev: Vec<u8> = db
        .query_row(
            "SELECT prev_hash FROM audit_log WHERE seq = ?1",
            [from],
            |r| r.get(0),
        )
        .unwrap();
    for (seq, mut canon, ct, digest) in rows {
        let detail = match (digest, ct) {
            (Some(d), _) => Some(hex::encode(d)),
            (None, Some(ct)) => Some(hex::encode(sha2::Sha256::digest(&ct))),
            (None, None) => None,
        };
        canon.as_array_mut().unwrap().push(json!(detail));
        let mut h = sha2::Sha256::new();
        h.update(&prev);
        h.update(serde_json::to_vec(&canon).unwrap());
        let hash = h.finalize().to_vec();
        db.execute(
            "UPDATE audit_log SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            rusqlite::params![prev, hash, seq],
        )
        .unwrap();
        prev = hash;
    }
}

/// The manifest inside a backup archive, decrypted as an operator would
/// (`age -d | zstd -d | tar x manifest.json`).
fn backup_manifest(archive: &std::path::Path, identity: &age::x25519::Identity) -> Vec<u8> {
    use std::io::Read;
    let f = std::fs::File::open(archive).unwrap();
    let dec = age::Decryptor::new_buffered(std::io::BufReader::new(f)).unwrap();
    let r = dec
        .decrypt(std::iter::once(identity as &dyn age::Identity))
        .unwrap();
    let mut tar = tar::Archive::new(zstd::Decoder::new(r).unwrap());
    for e in tar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_string_lossy() == "manifest.json" {
            let mut out = Vec::new();
            e.read_to_end(&mut out).unwrap();
            return out;
        }
    }
    panic!("no manifest.json in {}", archive.display());
}

/// Finding 14: someone who can write the data dir edits an old entry,
/// recomputes every later hash and deletes that chain's checkpoints. Inside
/// the data dir, verify fails once the entries are older than two checkpoint
/// intervals; against an outside anchor (a backup's manifest, a saved
/// /trust.json) it fails at once. Deleting one checkpoint in the middle of a
/// chain of checkpoints is caught too.
#[tokio::test]
async fn finding_14_deleted_checkpoints_do_not_hide_a_rewritten_chain() {
    let s = setup().await;
    for d in [10, 20, 30] {
        assert_eq!(set_retention(&s, d).await.status(), 200);
    }
    s.server.stop(); // signs every head
    let server = s.env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = c
        .put(server.url(&format!("/api/v1/workspaces/{}/audit/settings", s.ws)))
        .json(&json!({ "retention_days": 40 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Saved by anyone on the internet: the platform chain's newest checkpoint.
    let trust: Value = common::get_json(&c, server.url("/trust.json")).await;
    assert!(
        trust["document"]["audit"]["public_key"]
            .as_str()
            .is_some_and(|k| k.len() == 64),
        "{trust}"
    );
    assert_eq!(
        trust["document"]["audit"]["platform_checkpoint"]["scope"], "platform",
        "{trust}"
    );
    server.stop(); // a second checkpoint of the workspace chain

    let id = age::x25519::Identity::generate();
    let out = s
        .env
        .command(&["backup", "run"])
        .env(
            "AURA_BACKUP__RECIPIENTS",
            format!("[\"{}\"]", id.to_public()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let manifest = s.env.root().join("manifest.json");
    std::fs::write(
        &manifest,
        backup_manifest(
            &s.env
                .data_dir()
                .join("backups")
                .join(format!("{backup}.tar.zst.age")),
            &id,
        ),
    )
    .unwrap();
    // A kept audit export is an anchor too.
    let export = s.env.root().join("kept-export.ndjson");
    let out = s.env.cli(
        &[
            "audit",
            "export",
            "--workspace",
            &s.ws,
            "--out",
            export.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved_trust = s.env.root().join("trust.json");
    std::fs::write(&saved_trust, serde_json::to_vec(&trust).unwrap()).unwrap();

    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let anchor = manifest.to_str().unwrap();
    // Untouched, the data dir verifies against both anchors.
    let out = s.env.cli(&["audit", "verify", "--anchor", anchor], None);
    assert!(out.status.success(), "{}", text(&out));
    let out = s.env.cli(
        &["audit", "verify", "--anchor", saved_trust.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));

    // Deleting one checkpoint in the middle of the workspace's checkpoints.
    let copy = s.env.root().join("copy-middle");
    copy_dir(&s.env.data_dir(), &copy);
    let control = rusqlite::Connection::open(copy.join("control.db")).unwrap();
    let n: i64 = control
        .query_row(
            "SELECT count(*) FROM audit_checkpoints WHERE scope = ?1",
            [&s.ws],
            |r| r.get(0),
        )
        .unwrap();
    assert!(n >= 3, "{n} checkpoints");
    control
        .execute(
            "DELETE FROM audit_checkpoints WHERE id = (SELECT id FROM audit_checkpoints WHERE scope = ?1 ORDER BY id LIMIT 1 OFFSET 1)",
            [&s.ws],
        )
        .unwrap();
    drop(control);
    let out = s.env.cli_at(&copy, &["audit", "verify"]);
    assert!(
        !out.status.success(),
        "a deleted checkpoint is caught:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("unbroken chain"), "{}", text(&out));

    // Edit an old entry, recompute every later hash, delete the checkpoints.
    let copy = s.env.root().join("copy-rewritten");
    copy_dir(&s.env.data_dir(), &copy);
    let db = rusqlite::Connection::open(copy.join("tenants").join(&s.ws).join("data.db")).unwrap();
    db.execute_batch("DROP TRIGGER audit_log_append_only;")
        .unwrap();
    db.execute(
        "UPDATE audit_log SET action = 'audit.nothing_happened' WHERE seq = 2",
        [],
    )
    .unwrap();
    rehash_from(&db, 2);
    drop(db);
    let control = rusqlite::Connection::open(copy.join("control.db")).unwrap();
    control
        .execute("DELETE FROM audit_checkpoints WHERE scope = ?1", [&s.ws])
        .unwrap();
    drop(control);

    // Two checkpoint intervals (10 minutes) later, from inside the data dir.
    let out = s
        .env
        .command(&["audit", "verify", "--data-dir", copy.to_str().unwrap()])
        .env("AURA_TEST_CLOCK_OFFSET", "3600")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "uncovered old entries:\n{}",
        text(&out)
    );
    assert!(
        text(&out).contains(&format!("FAIL  workspace {}: first bad seq 1", s.ws)),
        "{}",
        text(&out)
    );
    // At once, against the backup's manifest.
    let out = s
        .env
        .cli_at(&copy, &["audit", "verify", "--anchor", anchor]);
    assert!(!out.status.success(), "anchor:\n{}", text(&out));
    assert!(
        text(&out).contains("outside anchor")
            && text(&out).contains(&format!("FAIL  workspace {}", s.ws)),
        "{}",
        text(&out)
    );
    let out = s.env.cli_at(
        &copy,
        &["audit", "verify", "--anchor", export.to_str().unwrap()],
    );
    assert!(!out.status.success(), "export anchor:\n{}", text(&out));
    assert!(text(&out).contains("outside anchor"), "{}", text(&out));
    let out = s.env.cli(
        &["audit", "verify", "--anchor", export.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    // The platform chain against a saved /trust.json: delete its newest
    // checkpoints and the anchor notices.
    let control = rusqlite::Connection::open(copy.join("control.db")).unwrap();
    control
        .execute("DELETE FROM audit_checkpoints WHERE scope = 'platform'", [])
        .unwrap();
    drop(control);
    let out = s.env.cli_at(
        &copy,
        &["audit", "verify", "--anchor", saved_trust.to_str().unwrap()],
    );
    assert!(!out.status.success(), "trust anchor:\n{}", text(&out));
    assert!(text(&out).contains("FAIL  platform"), "{}", text(&out));
}

/// Finding 14, while the server runs: it remembers (in memory) the newest
/// checkpoint of each chain, so when someone deletes a chain's checkpoints
/// it refuses to sign a new head over them and records a failed verification,
/// instead of covering the rewrite at the next tick.
#[tokio::test]
async fn finding_14_the_server_does_not_sign_over_deleted_checkpoints() {
    let s = setup_with(&[("AURA_AUDIT__CHECKPOINT_INTERVAL_SECS", "1")]).await;
    let control = s.env.data_dir().join("control.db");
    let checkpoints = || -> i64 {
        open_db(&control)
            .query_row(
                "SELECT count(*) FROM audit_checkpoints WHERE scope = ?1",
                [&s.ws],
                |r| r.get(0),
            )
            .unwrap()
    };
    let wait_for = |what: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !what() {
            assert!(start.elapsed().as_secs() < 30, "timed out");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    assert_eq!(set_retention(&s, 10).await.status(), 200);
    wait_for(&|| checkpoints() >= 1);
    assert_eq!(set_retention(&s, 20).await.status(), 200);
    wait_for(&|| checkpoints() >= 2);

    let db = rusqlite::Connection::open(&control).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(5)).unwrap();
    db.execute("DELETE FROM audit_checkpoints WHERE scope = ?1", [&s.ws])
        .unwrap();
    drop(db);
    assert_eq!(set_retention(&s, 30).await.status(), 200);
    // Several ticks later nothing was signed over the deletion...
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert_eq!(
        checkpoints(),
        0,
        "the server signed over deleted checkpoints"
    );
    // ...and the chain shows as failed.
    let (status, body) = {
        let r =
            s.c.get(
                s.server
                    .url(&format!("/api/v1/workspaces/{}/audit/status", s.ws)),
            )
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    assert_eq!(status, 200);
    assert_eq!(body["last_verification_ok"], false, "{body}");
    assert!(
        body["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("checkpoints were deleted"),
        "{body}"
    );
    let logs = String::from_utf8_lossy(&s.server.logs()).to_string();
    assert!(logs.contains("audit chain not signed"), "{logs}");
    s.server.stop();
}
