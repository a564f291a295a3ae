//! Continuous replication (issue 21, docs/replication.md): point-in-time
//! recovery to an instant, in place for one workspace and for the whole
//! appliance; a replica outside the residency region refused at start; a
//! shredded workspace leaves the replica; an S3-compatible target (moto).

mod common;

use std::path::Path;
use std::time::Duration;

use common::replica::{Replicated, files_under, now_ms, ok, rfc3339, start_moto};
use common::{PASSWORD, client, login, open_db};
use serde_json::json;

fn retention_in(db: &Path) -> Option<String> {
    open_db(db)
        .query_row(
            "SELECT value FROM meta WHERE key = 'audit_retention_days'",
            [],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .ok()
        .map(|v| String::from_utf8(v).unwrap())
}

/// PITR exactness: write A, note the instant, write B; restoring to the
/// instant gives A and not B, for one workspace in place (beside the running
/// server, the other workspace untouched) and for the whole appliance.
#[tokio::test]
async fn point_in_time_recovery_restores_the_instant_not_after() {
    let r = Replicated::new();
    r.env.create_user("a@example.com", "A");
    let wa = r.env.create_workspace("Timed Co", "a@example.com");
    let wb = r.env.create_workspace("Other Co", "a@example.com");
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "a@example.com", PASSWORD).await.status(),
        200
    );
    let set = |ws: &str, days: i64| {
        c.put(server.url(&format!("/api/v1/workspaces/{ws}/audit/settings")))
            .json(&json!({ "retention_days": days }))
            .send()
    };
    assert_eq!(set(&wb, 60).await.unwrap().status(), 200);
    assert_eq!(set(&wa, 50).await.unwrap().status(), 200, "A");
    // Every database holds its writes so far in a replicated read before the
    // instant is taken (B's neighbour too: its 60 must be in the instant).
    r.wait_replicated(&format!("ws-{wa}"), now_ms());
    r.wait_replicated(&format!("ws-{wb}"), now_ms());
    r.wait_replicated("control", now_ms());
    let instant = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(set(&wa, 77).await.unwrap().status(), 200, "B");
    assert_eq!(set(&wb, 61).await.unwrap().status(), 200);
    r.wait_replicated(&format!("ws-{wa}"), now_ms());
    r.wait_replicated(&format!("ws-{wb}"), now_ms());
    let at = rfc3339(instant);

    // Out of the window, and before the workspace existed: a clear error.
    let out = r.cli(&[
        "restore",
        "--at",
        "2001-01-01T00:00:00Z",
        "--workspace",
        &wa,
        "--identity",
        r.identity.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("outside the point-in-time recovery window"),
        "{err}"
    );

    // The whole appliance, into a new dir.
    let to = r.env.root().join("restored");
    let out = ok(&r.cli(&[
        "restore",
        "--to",
        to.to_str().unwrap(),
        "--at",
        &at,
        "--identity",
        r.identity.to_str().unwrap(),
    ]));
    assert!(out.contains("restored the appliance"), "{out}");
    let db = |root: &Path, ws: &str| root.join("tenants").join(ws).join("data.db");
    assert_eq!(
        retention_in(&db(&to, &wa)).as_deref(),
        Some("50"),
        "A is there, B is not"
    );
    assert_eq!(retention_in(&db(&to, &wb)).as_deref(), Some("60"));
    ok(&r.env.cli_at(&to, &["audit", "verify"]));

    // One workspace in place, beside the running server.
    let out = ok(&r.cli(&[
        "restore",
        "--workspace",
        &wa,
        "--at",
        &at,
        "--identity",
        r.identity.to_str().unwrap(),
    ]));
    assert!(out.contains("other workspaces were not touched"), "{out}");
    let page = common::get_json(
        &c,
        server.url(&format!(
            "/api/v1/workspaces/{wa}/audit?action=audit.retention_changed"
        )),
    )
    .await;
    assert_eq!(page["items"][0]["after"]["retention_days"], 50, "{page}");
    let page = common::get_json(
        &c,
        server.url(&format!(
            "/api/v1/workspaces/{wb}/audit?action=audit.retention_changed&limit=1"
        )),
    )
    .await;
    assert_eq!(page["items"][0]["after"]["retention_days"], 61, "untouched");
    let page = common::get_json(
        &c,
        server.url(&format!("/api/v1/workspaces/{wa}/audit?q=restored")),
    )
    .await;
    assert_eq!(page["items"][0]["action"], "backup.restored", "{page}");
    assert!(
        page.to_string().contains(&at[..19]),
        "the entry names the instant: {page}"
    );

    // The replica is caught up and says so.
    let out = ok(&r.cli(&["replica", "status"]));
    assert!(
        out.contains(&format!("ws-{wa}")) && out.contains("control"),
        "{out}"
    );
    server.stop();
    ok(&r.env.cli(&["audit", "verify"], None));
}

/// A replica target outside the residency region: `aura serve` refuses to
/// start and says why.
#[tokio::test]
async fn a_replica_in_another_region_is_refused_at_start() {
    let r = Replicated::new();
    let mut child = r
        .env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("AURA_RESIDENCY", "EU")
        .env("AURA_REGION", "EU")
        .env("AURA_REPLICATION__URL", &r.url)
        .env("AURA_REPLICATION__REGION", "US")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("aura serve started with a replica outside the residency");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("replication.region") && err.contains("outside this appliance's residency"),
        "{err}"
    );
    assert!(!r.dir.exists(), "nothing was replicated");
}

/// Crypto-shredding reaches the replica: once a workspace is purged, its
/// replica objects are gone and control.db starts a new generation, so no
/// replicated state still holds its destroyed key; the rest restores.
#[tokio::test]
async fn a_purged_workspace_leaves_nothing_in_the_replica_that_opens() {
    let r = Replicated::new();
    r.env.create_user("o@example.com", "O");
    let doomed = r.env.create_workspace("Doomed Ltd", "o@example.com");
    let kept = r.env.create_workspace("Kept Ltd", "o@example.com");
    let server = r.start();
    r.wait_replicated(&format!("ws-{doomed}"), now_ms());
    r.wait_replicated("control", now_ms());
    let ws_dir = r.dir.join(format!("ws-{doomed}"));
    assert!(
        !files_under(&ws_dir).is_empty(),
        "replicated before the purge"
    );
    let control_before: Vec<_> = files_under(&r.dir.join("control"));

    let c = client(&server);
    assert_eq!(
        login(&c, &server, "o@example.com", PASSWORD).await.status(),
        200
    );
    let s = c
        .post(server.url(&format!("/api/v1/workspaces/{doomed}/deletion")))
        .json(&json!({"confirm_name": "Doomed Ltd"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 200);
    let mut purge = r.env.command(&["workspace", "purge-due"]);
    purge.env("AURA_TEST_CLOCK_OFFSET", (15 * 86_400).to_string());
    for (k, v) in r.envs() {
        purge.env(k, v);
    }
    let out = ok(&purge.output().unwrap());
    assert!(out.contains("1 workspace(s) shredded"), "{out}");

    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let left = files_under(&ws_dir);
        let old_control = control_before.iter().filter(|p| p.exists()).count();
        if left.is_empty() && old_control == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still in the replica: {left:?}, {old_control} old control.db object(s)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    r.wait_replicated(&format!("ws-{kept}"), now_ms());
    let (to, out) = r.restore_latest("after-purge");
    assert!(out.contains("1 workspace(s)"), "{out}");
    assert!(!to.join("tenants").join(&doomed).exists());
    let keys: i64 = open_db(&to.join("control.db"))
        .query_row(
            "SELECT count(*) FROM workspace_keys WHERE workspace_id = ?1",
            [&doomed],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        keys, 0,
        "no replicated control.db state holds the destroyed key"
    );
    server.stop();
}

/// An S3-compatible target (moto on loopback): the replica fills, its
/// objects are ciphertext, and the whole appliance restores from it.
#[tokio::test]
async fn an_s3_replica_restores_the_appliance() {
    let (mut moto, endpoint) = start_moto("aura-replica");
    let r = Replicated::on_s3(&endpoint, "aura-replica", "site-1");
    r.env.create_user("s@example.com", "S");
    let ws = r.env.create_workspace("Bucketed", "s@example.com");
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "s@example.com", PASSWORD).await.status(),
        200
    );
    let s = c
        .put(server.url(&format!("/api/v1/workspaces/{ws}/audit/settings")))
        .json(&json!({ "retention_days": 55 }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 200);
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    r.wait_replicated("control", now_ms());
    let listing = common::get_text(
        &reqwest::Client::new(),
        format!("{endpoint}/aura-replica?list-type=2&prefix=site-1/ws-{ws}/"),
    )
    .await;
    assert!(listing.contains("snapshot-"), "{listing}");
    let out = ok(&r.cli(&["replica", "status"]));
    assert!(out.contains(&format!("ws-{ws}")), "{out}");
    let (to, _) = r.restore_latest("from-s3");
    assert_eq!(
        retention_in(&to.join("tenants").join(&ws).join("data.db")).as_deref(),
        Some("55")
    );
    // Promoting the restored dir takes the lease on S3 (If-Match): the
    // running primary refuses writes within a renewal.
    let out = ok(&r.cli_at(&to, &["replica", "promote"]));
    assert!(out.contains("epoch 2"), "{out}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while c.get(server.url("/readyz")).send().await.unwrap().status() != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "the old primary stayed ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let s = c
        .put(server.url(&format!("/api/v1/workspaces/{ws}/audit/settings")))
        .json(&json!({ "retention_days": 56 }))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 503);
    server.stop();
    let _ = moto.kill();
    let _ = moto.wait();
}

/// The scheduled drill also restores a random workspace from the replica at
/// a random instant and verifies it; lag is in /metrics and on /trust.
#[tokio::test]
async fn the_drill_restores_from_the_replica_and_lag_is_exposed() {
    let mut r = Replicated::new();
    let out = r.env.cli(
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success());
    let ws = r.env.create_workspace("Drilled", "ops@example.com");
    r.extra = vec![
        (
            "AURA_BACKUP__DRILL_IDENTITY_FILE",
            r.identity.display().to_string(),
        ),
        ("AURA_METRICS__BEARER_TOKEN", "scrape-secret-123".into()),
        ("AURA_REGION", "EU".into()),
    ];
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "ops@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    r.wait_replicated("control", now_ms());
    let page = common::get_text(&c, server.url("/platform/backups")).await;
    let token = common::csrf_from(&page);
    for path in ["/platform/backups/run", "/platform/backups/drill"] {
        let s = c
            .post(server.url(path))
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(s.status(), 303, "{path}");
    }
    let metrics = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth("scrape-secret-123")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "aura_replication_lag_seconds{{database=\"ws-{ws}\"}}"
        )),
        "{metrics}"
    );
    let trust = common::get_text(&reqwest::Client::new(), server.url("/trust")).await;
    assert!(
        trust.contains("replicated continuously to EU, lag"),
        "{trust}"
    );
    assert!(trust.contains("point-in-time recovery to"), "{trust}");
    server.stop();
    let drills = common::mfa::platform_entries(&r.env, "replication.drill");
    assert_eq!(drills.len(), 1, "{drills:?}");
    assert_eq!(drills[0]["after"]["ok"], true, "{drills:?}");
    assert_eq!(drills[0]["target"], ws.as_str(), "{drills:?}");
}
