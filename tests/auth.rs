//! First sign-in end to end: login, logout, /me, cookies, problem documents,
//! and the platform audit chain those actions write.

mod common;

use common::{Env, PASSWORD, client, login, open_db};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn login_me_logout_round_trip() {
    let env = Env::new();
    let user_id = env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Analytical Engines", "ada@example.com");
    let server = env.start();
    let c = client(&server);

    // Without a session.
    let r = c.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    // Sign in.
    let r = login(&c, &server, "Ada@Example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("aura_session="), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
    assert!(
        !cookie.contains("Secure"),
        "plain http must not set Secure: {cookie}"
    );
    let token = cookie["aura_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();

    // Only the token's hash is stored.
    let db = open_db(&env.data_dir().join("control.db"));
    let stored: Vec<u8> = db
        .query_row("SELECT id_hash FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, Sha256::digest(token.as_bytes()).to_vec());

    // /me with the session.
    let me: serde_json::Value = common::get_json(&c, server.url("/api/v1/me")).await;
    assert_eq!(me["id"], user_id);
    assert_eq!(me["email"], "ada@example.com");
    assert_eq!(me["name"], "Ada");
    assert_eq!(me["workspaces"][0]["id"], ws.as_str());
    assert_eq!(me["workspaces"][0]["name"], "Analytical Engines");
    assert_eq!(me["workspaces"][0]["role"], "owner");

    // A second login issues a different session id.
    let c2 = client(&server);
    let r2 = login(&c2, &server, "ada@example.com", PASSWORD).await;
    assert_ne!(r2.headers()["set-cookie"].to_str().unwrap(), cookie);

    // Logout ends the session server-side: replaying the old cookie fails.
    let r = c
        .post(server.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
    let replay = reqwest::Client::new()
        .get(server.url("/api/v1/me"))
        .header("cookie", format!("aura_session={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
    // The other session is unaffected.
    assert_eq!(
        c2.get(server.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let logs = server.stop();
    let logs = String::from_utf8_lossy(&logs);
    assert!(logs.contains("\"status\":200"), "request log lines exist");

    // The platform chain recorded it all and verifies.
    let db = open_db(&env.data_dir().join("control.db"));
    let entries = aura::store::audit::all_entries(&db).unwrap();
    let actions: Vec<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert!(actions.contains(&"user.created"));
    assert!(actions.contains(&"workspace.created"));
    assert_eq!(actions.iter().filter(|a| **a == "auth.login").count(), 2);
    assert_eq!(actions.iter().filter(|a| **a == "auth.logout").count(), 1);
    assert_eq!(
        aura::audit::verify_chain(&entries),
        aura::audit::ChainCheck::Intact {
            entries: entries.len() as u64
        }
    );
}

#[tokio::test]
async fn wrong_password_and_unknown_email_look_the_same() {
    let env = Env::new();
    env.create_user("grace@example.com", "Grace");
    let server = env.start();
    let c = client(&server);

    let wrong = login(&c, &server, "grace@example.com", "not the password").await;
    let status_wrong = wrong.status();
    let body_wrong = wrong.text().await.unwrap();
    let unknown = login(&c, &server, "nobody@example.com", "not the password").await;
    let status_unknown = unknown.status();
    let body_unknown = unknown.text().await.unwrap();
    assert_eq!(status_wrong, 401);
    assert_eq!(status_unknown, 401);
    assert_eq!(body_wrong, body_unknown);
    assert!(
        c.get(server.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status()
            == 401
    );

    server.stop();
    let db = open_db(&env.data_dir().join("control.db"));
    let n: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.login_failed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(n, 2);
    let sessions: i64 = db
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sessions, 0, "a failed login writes no session");
}

#[tokio::test]
async fn bad_input_names_the_field_and_writes_nothing() {
    let env = Env::new();
    let server = env.start();
    let c = client(&server);
    let before = audit_count(&env);

    let r = c
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "email": "a@b.io" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "password");

    let r = c
        .post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "email": 7, "password": "x" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let p: serde_json::Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "email");

    let r = c
        .post(server.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    let r = c
        .post(server.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(vec![b' '; 300 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // A foreign Origin is refused before anything runs.
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .header("origin", "https://evil.example")
        .json(&serde_json::json!({ "email": "a@b.io", "password": "whatever-long" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    let r = c.get(server.url("/api/v1/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");

    server.stop();
    assert_eq!(audit_count(&env), before, "rejected requests write nothing");
}

#[tokio::test]
async fn health_readiness_openapi_and_headers() {
    let env = Env::new();
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        c.get(server.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(server.url("/readyz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        c.get(server.url("/metrics")).send().await.unwrap().status(),
        404,
        "metrics are not public by default"
    );

    let spec: serde_json::Value = common::get_json(&c, server.url("/api/openapi.json")).await;
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/auth/login", "/auth/logout", "/me"] {
        assert!(
            spec["paths"].get(path).is_some(),
            "{path} missing from OpenAPI"
        );
    }

    for path in ["/login", "/api/v1/me", "/assets/app.css", "/nope"] {
        let r = c.get(server.url(path)).send().await.unwrap();
        let h = r.headers();
        assert!(h.contains_key("x-request-id"), "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(
            csp.contains("base-uri 'none'") && csp.contains("form-action 'self'"),
            "{path}"
        );
        assert_eq!(
            h["referrer-policy"], "strict-origin-when-cross-origin",
            "{path}"
        );
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{path}");
        assert!(
            h["permissions-policy"]
                .to_str()
                .unwrap()
                .contains("camera=()"),
            "{path}"
        );
        assert!(
            !h.contains_key("strict-transport-security"),
            "no HSTS on plain HTTP: {path}"
        );
        let no_store = h.get("cache-control").is_some_and(|v| v == "no-store");
        assert_eq!(no_store, !path.starts_with("/assets/"), "{path}");
    }
    server.stop();
}

#[tokio::test]
async fn ui_sign_in_lists_workspaces_and_signs_out() {
    let env = Env::new();
    env.create_user("lin@example.com", "Lin");
    env.create_workspace("Reservations Lisbon", "lin@example.com");
    let server = env.start();
    let c = client(&server);

    let r = c.get(server.url("/workspaces")).send().await.unwrap();
    assert_eq!(r.status(), 303, "anonymous is sent to sign in");
    let page = common::get_text(&c, server.url("/login")).await;
    assert!(page.contains("<form method=\"post\" action=\"/login\""));
    assert!(!page.contains("<script>"), "no inline script");

    let token = common::csrf_from(&page);
    let r = c
        .post(server.url("/login"))
        .form(&[
            ("email", "lin@example.com"),
            ("password", "wrong password"),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .post(server.url("/login"))
        .form(&[
            ("email", "lin@example.com"),
            ("password", PASSWORD),
            ("csrf", &token),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = common::get_text(&c, server.url("/workspaces")).await;
    assert!(page.contains("Reservations Lisbon"), "{page}");

    let token = common::csrf_from(&page);
    let r = c
        .post(server.url("/logout"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        c.get(server.url("/workspaces"))
            .send()
            .await
            .unwrap()
            .status(),
        303
    );
    server.stop();
}

fn audit_count(env: &Env) -> i64 {
    open_db(&env.data_dir().join("control.db"))
        .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
        .unwrap()
}

/// Sessions end by time: an expired session is refused, and the background
/// job purges expired rows (one audit entry for the sweep).
#[tokio::test]
async fn expired_sessions_are_refused_and_purged() {
    let env = Env::new();
    env.create_user("old@example.com", "Old");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "old@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let other = client(&server);
    assert_eq!(
        login(&other, &server, "old@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        c.get(server.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop();

    // Two days later (past both timeouts), the same cookie is refused and the
    // row is swept.
    let server = env.start_with(&[("AURA_TEST_CLOCK_OFFSET", "172800")]);
    assert_eq!(
        c.get(server.url("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let db = env.data_dir().join("control.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let purged: i64 = open_db(&db)
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'session.expired_purged'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        let sessions: i64 = open_db(&db)
            .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
            .unwrap();
        if sessions == 0 && purged >= 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "expired sessions were not purged ({purged}, {sessions} left)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    server.stop();
}

/// The session, membership and collection caches (`store::cache`) never
/// outlive a change: each change below applies on the very next request,
/// right after requests that filled the caches, whether the change came
/// through the API or from the CLI (another process).
#[tokio::test]
async fn changes_apply_on_the_next_request_despite_the_caches() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let bob_id = env.create_user("bob@example.com", "Bob");
    env.create_user("cy@example.com", "Cy");
    let ws = env.create_workspace("Cached Ltd", "ada@example.com");
    env.add_member(&ws, "bob@example.com", "manager");
    let server = env.start();
    let (ada, bob, cy) = (client(&server), client(&server), client(&server));
    let mut tokens = Vec::new();
    for (c, email) in [
        (&ada, "ada@example.com"),
        (&bob, "bob@example.com"),
        (&cy, "cy@example.com"),
    ] {
        let r = login(c, &server, email, PASSWORD).await;
        assert_eq!(r.status(), 200);
        tokens.push(common::session_token_of(&r));
    }
    // Ada's cookie, sent by hand, so logging out cannot just drop it client-side.
    let ada_cookie = format!("aura_session={}", tokens[0]);
    let wsurl = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let status = |r: reqwest::Response| r.status().as_u16();
    let new_coll = |name: &str| serde_json::json!({"name": name, "fields": [{"name": "Title", "type": "text"}]});

    let r = ada
        .post(wsurl("/collections"))
        .json(&new_coll("Deals"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let coll: serde_json::Value = r.json().await.unwrap();
    let (cid, fid) = (
        coll["id"].as_str().unwrap(),
        coll["fields"][0]["id"].as_str().unwrap(),
    );
    let r = ada
        .post(wsurl(&format!("/collections/{cid}/records")))
        .json(&serde_json::json!({"values": {"Title": "First"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let rid = r.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec = wsurl(&format!("/collections/{cid}/records/{rid}"));

    // Warm every cache, then rename the field: the next read has the new name.
    for _ in 0..3 {
        assert_eq!(status(bob.get(&rec).send().await.unwrap()), 200);
    }
    let r = ada
        .patch(wsurl(&format!("/collections/{cid}")))
        .json(&serde_json::json!({"fields": [{"id": fid, "name": "Heading", "type": "text"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let back: serde_json::Value = bob.get(&rec).send().await.unwrap().json().await.unwrap();
    assert_eq!(back["values"], serde_json::json!({"Heading": "First"}));

    // Role change: a manager creates collections; as a viewer, the next try is refused.
    let create = || {
        bob.post(wsurl("/collections"))
            .json(&new_coll("Mine"))
            .send()
    };
    assert_eq!(status(create().await.unwrap()), 201);
    let r = ada
        .put(wsurl(&format!("/members/{bob_id}")))
        .json(&serde_json::json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(status(create().await.unwrap()), 403);
    assert_eq!(status(bob.get(&rec).send().await.unwrap()), 200);

    // Removal: the next read answers like a workspace that does not exist.
    let r = ada
        .delete(wsurl(&format!("/members/{bob_id}")))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(status(bob.get(&rec).send().await.unwrap()), 404);

    // A membership added by the CLI, beside the running server, counts at once
    // even though "not a member" was just cached.
    for _ in 0..2 {
        assert_eq!(status(cy.get(&rec).send().await.unwrap()), 404);
    }
    env.add_member(&ws, "cy@example.com", "viewer");
    assert_eq!(status(cy.get(&rec).send().await.unwrap()), 200);

    // Logout ends the session server-side for the very next request.
    let raw = reqwest::Client::new();
    let with_cookie = || raw.get(&rec).header("cookie", &ada_cookie).send();
    assert_eq!(status(with_cookie().await.unwrap()), 200);
    assert_eq!(status(with_cookie().await.unwrap()), 200);
    let r = ada
        .post(server.url("/api/v1/auth/logout"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(status(with_cookie().await.unwrap()), 401);
}

/// Row at: a cached credential that expires is refused on the very next
/// request. Sessions idle out after a minute and access tokens live a
/// minute here; both are used (so cached), then nothing happens for 65 s.
/// control.db's change signal (the WAL-index header at the start of its
/// `-shm` file) is the same before the next request as after the warm ones,
/// so that request is answered while the cache entries are still valid: the
/// expiry is compared with the clock, not left to the cache.
#[tokio::test]
async fn cached_credentials_are_refused_once_they_expire() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let server = env.start_with(&[
        ("AURA_AUTH__SESSION_IDLE_MINUTES", "1"),
        ("AURA_AUTH__ACCESS_TOKEN_MINUTES", "1"),
        // No scheduled checkpoint commits to control.db during the wait.
        ("AURA_AUDIT__CHECKPOINT_INTERVAL_SECS", "3600"),
    ]);
    let r = common::token_request(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let pair: serde_json::Value = r.json().await.unwrap();
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let r = login(&client(&server), &server, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let session = common::session_token_of(&r);
    let with_cookie = || async {
        reqwest::Client::new()
            .get(server.url("/api/v1/me"))
            .header("cookie", format!("aura_session={session}"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let shm = env.data_dir().join("control.db-shm");
    let signal = || std::fs::read(&shm).unwrap()[..48].to_vec();
    for _ in 0..3 {
        assert_eq!(with_cookie().await, 200);
        assert_eq!(
            common::bearer_status(&server, &access, "/api/v1/me").await,
            200
        );
    }
    let warm = signal();
    tokio::time::sleep(std::time::Duration::from_secs(65)).await;
    assert_eq!(signal(), warm, "control.db changed during the wait");
    assert_eq!(with_cookie().await, 401, "the idle session");
    assert_eq!(
        common::bearer_status(&server, &access, "/api/v1/me").await,
        401,
        "the expired access token"
    );
    server.stop();
}
