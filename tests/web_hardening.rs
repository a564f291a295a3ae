//! Web hardening: CSRF on every state-changing UI route, the same-origin rule,
//! trusted proxies, operator certificate files with reload, and the HTTP port
//! with TLS on.

mod common;

use common::certs::{Ca, served_serial};
use common::{Env, PASSWORD, client, csrf_from, login, open_db};

/// Every form route refuses a missing token, another session's token and a
/// foreign Origin with 403 and changes nothing; the right token works.
#[tokio::test]
async fn csrf_is_enforced_on_every_state_changing_ui_route() {
    walk_ui_form_routes(false).await;
}

/// Finding 7 of issue 18: a body that is not a form (text/plain,
/// application/json, no content type) skipped the token check and was acted
/// on. Every UI form route now refuses it (415) even with the right token,
/// and nothing is written to control.db or the workspace's data.db.
#[tokio::test]
async fn non_form_bodies_are_refused_on_every_ui_form_route() {
    walk_ui_form_routes(true).await;
}

/// Walks `aura::web::UI_FORMS` in order: forged posts are refused
/// (and, with `non_form`, posts whose body is not a form), then the right
/// token works, which sets up the next routes (mails, sign-ins).
async fn walk_ui_form_routes(non_form: bool) {
    let env = Env::new();
    let out = env.cli(
        &[
            "user",
            "create",
            "--email",
            "admin@example.com",
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success());
    let my_id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    let ws = env.create_workspace("Forms Inc", "admin@example.com");
    // An incident for the acknowledge form (no relay for the CLI: mail owed).
    let summary = env.root().join("incident.md");
    std::fs::write(&summary, "A form test incident.").unwrap();
    let out = env.cli(
        &[
            "incident",
            "declare",
            "--workspaces",
            &ws,
            "--summary",
            summary.to_str().unwrap(),
        ],
        None,
    );
    assert!(out.status.success());
    let incident = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // Invitations go out by mail: a real SMTP sink.
    let sink = common::smtp::Sink::start();
    let vars = sink.env();
    let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.push(("AURA_AUTH__MAGIC_LINKS", "true"));
    let server = env.start_with(&vars);
    let me = client(&server);
    assert_eq!(
        login(&me, &server, "admin@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let other = client(&server);
    assert_eq!(
        login(&other, &server, "admin@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let page = |c: &reqwest::Client, path: &str| {
        let url = server.url(path);
        let c = c.clone();
        async move { common::get_text(&c, url).await }
    };
    let mut my_token = csrf_from(&page(&me, "/workspaces").await);
    // Fixtures for the routes that act on a collection, a record or a team.
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let created = |v: serde_json::Value| v["id"].as_str().unwrap().to_owned();
    let coll = created(
        me.post(api("/collections"))
            .json(&serde_json::json!({"name": "Forms", "fields": [{"name": "N", "type": "text"}, {"name": "Doc", "type": "file", "multiple": true}]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let rec = created(
        me.post(api(&format!("/collections/{coll}/records")))
            .json(&serde_json::json!({"values": {"N": "a"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let team = created(
        me.post(api("/teams"))
            .json(&serde_json::json!({"name": "Desk"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let svc = created(
        me.post(api("/service-accounts"))
            .json(&serde_json::json!({"name": "Robot", "role": "member"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let api_token = created(
        me.post(api("/tokens"))
            .json(&serde_json::json!({"name": "ci", "scope": "viewer"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let sessions: serde_json::Value =
        common::get_json(&me, server.url("/api/v1/me/sessions")).await;
    let other_session = sessions["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == false)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let invitation = created(
        me.post(api("/invitations"))
            .json(&serde_json::json!({"email": "revoke-me@example.com", "role": "viewer"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    // Integrations: a stored secret, a webhook with a queued delivery (the
    // record made after it), an inbound integration.
    let secret_id = created(
        me.post(api("/integrations/secrets"))
            .json(&serde_json::json!({"name": "Shop key", "value": "sk_test_0123456789"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let webhook = created(
        me.post(api("/webhooks"))
            .json(&serde_json::json!({"url": "https://hooks.example.invalid/x", "events": ["record.created"]}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    created(
        me.post(api(&format!("/collections/{coll}/records")))
            .json(&serde_json::json!({"values": {"N": "queues a delivery"}}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let deliveries: serde_json::Value =
        common::get_json(&me, api(&format!("/webhooks/{webhook}/deliveries"))).await;
    let delivery = deliveries["items"][0]["id"].as_str().unwrap().to_owned();
    let inbound = created(
        me.post(api("/integrations/inbound"))
            .json(&serde_json::json!({"name": "Shop", "mode": "token"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    let other_token = csrf_from(&page(&other, "/workspaces").await);
    assert_ne!(my_token, other_token, "tokens are bound to the session");

    for route in &aura::web::UI_FORMS
        .iter()
        .map(|f| f.path)
        .collect::<Vec<_>>()
    {
        let mut path = route
            .replace(":ws", &ws)
            .replace(":coll", &coll)
            .replace(":rec", &rec)
            .replace(":team", &team)
            .replace(":field", "Doc");
        if *route == "/invite/:token" {
            // The invitation the invitations form (earlier in the list) sent.
            path = path.replace(":token", &sink.token_for("csrf-invitee@example.com"));
        }
        if *route == "/reset/:token" {
            path = path.replace(":token", &sink.link_token("admin@example.com", "/reset/"));
        }
        if *route == "/magic/:token" {
            // The link the magic-link form (just before) sent.
            path = path.replace(":token", &sink.link_token("admin@example.com", "/magic/"));
        }
        // The account the accounts form (just before) invited.
        let account = if route.starts_with("/platform/accounts/") {
            let list: serde_json::Value = me
                .get(server.url("/api/v1/platform/accounts"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            list["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["email"] == "csrf-account@example.com")
                .expect("the invited account")["id"]
                .as_str()
                .unwrap()
                .to_owned()
        } else {
            String::new()
        };
        // The file the upload form (just before) added.
        let uploaded = if *route == "/w/:ws/c/:coll/r/:rec/files/remove" {
            let r: serde_json::Value =
                common::get_json(&me, api(&format!("/collections/{coll}/records/{rec}"))).await;
            r["values"]["Doc"][0]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        } else {
            String::new()
        };
        // What each form needs to succeed.
        let extra: Vec<(&str, String)> = match *route {
            "/w/:ws/c/:coll/r/:rec/files/remove" => {
                vec![("field", "Doc".into()), ("file", uploaded.clone())]
            }
            "/platform/accounts" => vec![
                ("email", "csrf-account@example.com".into()),
                ("name", "Form account".into()),
            ],
            "/platform/accounts/disable" | "/platform/accounts/enable" => {
                vec![("user_id", account.clone())]
            }
            "/platform/accounts/admin" => {
                vec![
                    ("user_id", account.clone()),
                    ("platform_admin", "true".into()),
                ]
            }
            "/w/:ws/collections" => vec![
                ("name", "More".into()),
                ("f0.name", "A".into()),
                ("f0.type", "text".into()),
            ],
            "/w/:ws/c/:coll/schema" => vec![("name", "Forms renamed".into())],
            "/w/:ws/c/:coll/r/:rec/restore" => vec![("version", "1".into())],
            "/w/:ws/teams" => vec![("name", "Another team".into())],
            "/w/:ws/teams/:team/members" => {
                vec![("user_id", my_id.clone()), ("role", "lead".into())]
            }
            "/w/:ws/teams/:team/members/remove" => vec![("user_id", my_id.clone())],
            "/w/:ws/members/role" => vec![("user_id", svc.clone()), ("role", "viewer".into())],
            "/w/:ws/members/remove" => vec![("user_id", svc.clone())],
            "/w/:ws/service-accounts" => {
                vec![("name", "Robot 2".into()), ("role", "viewer".into())]
            }
            "/w/:ws/tokens" => vec![("name", "deploy".into()), ("scope", "member".into())],
            "/w/:ws/tokens/revoke" => vec![("token_id", api_token.clone())],
            "/account/sessions/end" => vec![("id", other_session.clone())],
            "/w/:ws/mfa-policy" => vec![("required", "false".into())],
            "/w/:ws/sso" => vec![
                ("issuer", "https://login.example.com/realms/acme".into()),
                ("client_id", "aura".into()),
                ("client_secret", "s3cret".into()),
                ("default_role", "member".into()),
                ("groups_claim", "groups".into()),
            ],
            "/w/:ws/invitations" => vec![
                ("email", "csrf-invitee@example.com".into()),
                ("role", "viewer".into()),
            ],
            "/w/:ws/invitations/revoke" => vec![("invitation_id", invitation.clone())],
            "/login/magic" | "/reset" => vec![("email", "admin@example.com".into())],
            "/w/:ws/privacy/subjects" | "/w/:ws/privacy/subjects/export" => {
                vec![("identifier", "nobody@example.com".into())]
            }
            "/w/:ws/privacy/subjects/anonymise" => vec![
                ("identifier", "nobody@example.com".into()),
                ("confirm", "yes".into()),
            ],
            "/reset/:token" => vec![("new_password", PASSWORD.into())],
            // A new account: the last route, as it signs the client in as it.
            "/invite/:token" => vec![("name", "Invitee".into()), ("password", PASSWORD.into())],
            "/platform/workspaces" => vec![
                ("name", "Second".into()),
                ("owner_email", "admin@example.com".into()),
            ],
            "/platform/workspaces/:ws/impersonate" => {
                vec![("reason", "Ticket 99: checking a form".into())]
            }
            "/account/mfa/start" => vec![("password", PASSWORD.into())],
            "/account/mfa/confirm" => vec![("code", "000000".into())],
            "/account/mfa/remove" => vec![("password", PASSWORD.into()), ("code", "000000".into())],
            "/account/mfa/recovery-codes" => vec![("password", PASSWORD.into())],
            "/account/password" => vec![
                ("current_password", PASSWORD.into()),
                ("new_password", PASSWORD.into()),
            ],
            // Scheduled, then cancelled by the next route.
            "/w/:ws/deletion" => vec![("confirm_name", "Forms Inc".into())],
            "/account/deletion" => vec![("password", PASSWORD.into())],
            "/w/:ws/integrations/secrets" => vec![
                ("name", "Form key".into()),
                ("value", "sk_form_0123456789".into()),
            ],
            "/w/:ws/integrations/secrets/rotate" => vec![
                ("secret_id", secret_id.clone()),
                ("value", "sk_form_9876543210".into()),
            ],
            "/w/:ws/integrations/secrets/delete" => vec![("secret_id", secret_id.clone())],
            "/w/:ws/integrations/webhooks" => vec![
                ("url", "https://hooks.example.invalid/form".into()),
                ("events", "member.added".into()),
            ],
            "/w/:ws/integrations/webhooks/rotate" => vec![("webhook_id", webhook.clone())],
            "/w/:ws/integrations/webhooks/redeliver" => vec![
                ("webhook_id", webhook.clone()),
                ("delivery_id", delivery.clone()),
            ],
            "/w/:ws/integrations/webhooks/delete" => vec![("webhook_id", webhook.clone())],
            "/w/:ws/integrations/inbound" => vec![("name", "Form hook".into())],
            "/w/:ws/integrations/inbound/delete" => vec![("integration_id", inbound.clone())],
            "/w/:ws/incidents/ack" => vec![("incident_id", incident.clone())],
            _ => vec![],
        };
        let (c, good) = if *route == "/login" {
            let anon = client(&server);
            let t = csrf_from(&page(&anon, "/login").await);
            (anon, t)
        } else {
            (me.clone(), my_token.clone())
        };
        let form = |token: Option<&str>| {
            let mut f: Vec<(&str, String)> = if *route == "/login" {
                vec![
                    ("email", "admin@example.com".into()),
                    ("password", PASSWORD.into()),
                ]
            } else {
                Vec::new()
            };
            if let Some(t) = token {
                f.push(("csrf", t.to_owned()));
            }
            f.extend(extra.iter().cloned());
            f
        };
        let before = common::stores_snapshot(&env);
        for (case, token, origin) in [
            ("no token", None, server.base.clone()),
            (
                "another session's token",
                Some(other_token.as_str()),
                server.base.clone(),
            ),
            (
                "foreign origin",
                Some(good.as_str()),
                "https://evil.example".to_owned(),
            ),
        ] {
            let r = c
                .post(server.url(&path))
                .header("origin", origin)
                .form(&form(token))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 403, "{route}: {case}");
        }
        assert_eq!(
            common::stores_changed(&before, &common::stores_snapshot(&env)),
            Vec::<String>::new(),
            "{route}: refused posts change nothing in control.db or any data.db"
        );
        if non_form {
            // The right token, a same-origin request, a body a form would
            // send: only the content type is wrong.
            let body = serde_urlencoded::to_string(form(Some(&good))).unwrap();
            let written = common::stores_snapshot(&env);
            for content_type in [Some("text/plain"), Some("application/json"), None] {
                let mut req = c
                    .post(server.url(&path))
                    .header("origin", server.base.clone())
                    .body(body.clone());
                if let Some(ct) = content_type {
                    req = req.header("content-type", ct);
                }
                let r = req.send().await.unwrap();
                assert!(
                    [403, 415].contains(&r.status().as_u16()),
                    "{route}: {content_type:?} answered {}",
                    r.status()
                );
                assert_eq!(
                    common::stores_changed(&written, &common::stores_snapshot(&env)),
                    Vec::<String>::new(),
                    "{route}: a {content_type:?} body wrote nothing"
                );
            }
        }
        let r = if *route == "/w/:ws/c/:coll/r/:rec/files/:field" {
            // A file upload: multipart, its token in the query string.
            c.post(server.url(&format!("{path}?csrf={good}")))
                .header("content-type", "multipart/form-data; boundary=B0UND")
                .body("--B0UND\r\nContent-Disposition: form-data; name=\"file\"; filename=\"f.txt\"\r\n\r\na file\r\n--B0UND--\r\n")
                .send()
                .await
                .unwrap()
        } else {
            c.post(server.url(&path))
                .form(&form(Some(&good)))
                .send()
                .await
                .unwrap()
        };
        // A new token's secret and a new authenticator's QR code are shown on
        // the answering page, not after a redirect; a wrong code is a 422
        // (the token was accepted, the form was not).
        let want = match *route {
            "/w/:ws/tokens" | "/account/mfa/start" | "/login/magic" | "/reset"
            | "/reset/:token" => 200,
            // So is a new SCIM token.
            "/w/:ws/scim/token" => 200,
            // Results pages and a JSON download answer the post directly.
            "/w/:ws/privacy/subjects"
            | "/w/:ws/privacy/subjects/export"
            | "/w/:ws/privacy/subjects/anonymise" => 200,
            // A new signing or inbound secret is shown on the answering page.
            "/w/:ws/integrations/webhooks"
            | "/w/:ws/integrations/webhooks/rotate"
            | "/w/:ws/integrations/inbound" => 200,
            // A wrong code; a removal without a password (the form got through).
            // New recovery codes while two-factor sign-in is off.
            "/account/mfa/confirm"
            | "/account/mfa/remove"
            | "/account/mfa/recovery-codes"
            | "/account/passkeys/remove" => 422,
            // The last owner of a workspace: refused on the page (the form got through).
            "/account/deletion" => 422,
            // No sign-in waits for this link: the page says so (the form got through).
            "/auth/oidc/link" | "/auth/oidc/link/mail" | "/auth/oidc/link/:token" => 400,
            _ => 303,
        };
        assert_eq!(r.status(), want, "{route}: the right token works");
        if *route == "/w/:ws/keys/rotate" {
            // The rotation runs on in the server's job; the next routes
            // compare what is written, so let it finish first: its state
            // says finished, then its entry lands in the workspace's chain.
            let url = server.url(&format!("/api/v1/workspaces/{ws}/keys/rotation"));
            let entry = server.url(&format!(
                "/api/v1/workspaces/{ws}/audit?action=keys.data_key_rotated"
            ));
            let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                let v: serde_json::Value = me.get(&url).send().await.unwrap().json().await.unwrap();
                let logged: serde_json::Value =
                    me.get(&entry).send().await.unwrap().json().await.unwrap();
                let entries = logged["items"].as_array().map_or(0, Vec::len);
                if v["state"] == "finished" && entries > 0 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < until,
                    "the key rotation finishes: {v}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        if *route == "/logout" || *route == "/magic/:token" || *route == "/reset/:token" {
            assert_eq!(
                login(&me, &server, "admin@example.com", PASSWORD)
                    .await
                    .status(),
                200
            );
            my_token = csrf_from(&page(&me, "/workspaces").await);
        }
    }
    server.stop();
}

#[tokio::test]
async fn forwarded_for_is_believed_only_from_trusted_proxies() {
    let env = Env::new();
    env.create_user("p@example.com", "P");
    for (trusted, expected) in [(true, "203.0.113.9"), (false, "127.0.0.1")] {
        let server = if trusted {
            env.start_with(&[("AURA_TLS__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]")])
        } else {
            env.start()
        };
        let r = client(&server)
            .post(server.url("/api/v1/auth/login"))
            .header("x-forwarded-for", "198.51.100.1, 203.0.113.9")
            .header("x-forwarded-proto", "https")
            .json(&serde_json::json!({ "email": "p@example.com", "password": PASSWORD }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(
            r.headers().contains_key("strict-transport-security"),
            trusted,
            "X-Forwarded-Proto is believed only from a trusted proxy"
        );
        server.stop();
        let ip: String = open_db(&env.data_dir().join("control.db"))
            .query_row(
                "SELECT ip FROM audit_log WHERE action = 'auth.login' ORDER BY seq DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(ip, expected, "trusted proxy: {trusted}");
    }
}

#[tokio::test]
async fn operator_certificate_is_served_and_replaced_on_sighup() {
    let env = Env::new();
    env.create_user("tls@example.com", "TLS");
    let ca = Ca::new(&env.root().join("pki"), "test-ca");
    let (cert, key) = ca.leaf("leaf1", "aura.test");
    let live_cert = env.root().join("live.pem");
    let live_key = env.root().join("live.key");
    std::fs::copy(&cert, &live_cert).unwrap();
    std::fs::copy(&key, &live_key).unwrap();
    let server = env.start_with(&[
        ("AURA_TLS__MODE", "files"),
        ("AURA_TLS__CERT_FILE", live_cert.to_str().unwrap()),
        ("AURA_TLS__KEY_FILE", live_key.to_str().unwrap()),
        ("AURA_TLS__HTTPS_LISTEN", "127.0.0.1:0"),
        ("AURA_TLS__HTTP_LISTEN", "127.0.0.1:0"),
    ]);
    let addr: std::net::SocketAddr = server.addr().parse().unwrap();
    let https = format!("https://aura.test:{}", addr.port());
    let c = reqwest::Client::builder()
        .add_root_certificate(
            reqwest::Certificate::from_pem(&std::fs::read(&ca.cert).unwrap()).unwrap(),
        )
        .resolve("aura.test", addr)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = c.get(format!("{https}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["strict-transport-security"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    let r = c
        .post(format!("{https}/api/v1/auth/login"))
        .header("origin", &https)
        .json(&serde_json::json!({ "email": "tls@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with("__Host-aura_session=") && cookie.contains("Secure"),
        "{cookie}"
    );
    assert_eq!(
        c.get(format!("{https}/api/v1/me"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The trust page names the certificate being served.
    let t: serde_json::Value = common::get_json(&c, format!("{https}/trust.json")).await;
    let tls = &t["document"]["encryption"]["in_transit"];
    assert_eq!(tls["mode"], "files");
    assert_eq!(tls["status"], "met", "{t}");
    assert!(tls["issuer"].as_str().unwrap().contains("test-ca"), "{t}");
    assert!(tls["expires"].is_string());
    assert!(tls["days_left"].as_i64().is_some_and(|d| d > 0), "{t}");

    // Port 80's job with TLS on: a redirect to HTTPS.
    let http = server
        .logged_addr("http_listening")
        .expect("http listener logged");
    let r = c
        .get(format!("http://{http}/workspaces?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 308);
    assert!(
        r.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with("https://")
    );

    // doctor reads the served certificate: the test leaf has 7 days left.
    let out = env
        .command(&["doctor"])
        .env("AURA_TLS__MODE", "files")
        .env("AURA_TLS__CERT_FILE", live_cert.to_str().unwrap())
        .env("AURA_TLS__KEY_FILE", live_key.to_str().unwrap())
        .env("AURA_TLS__HTTPS_LISTEN", server.addr())
        .env("AURA_TLS__HTTP_LISTEN", "")
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains("FAIL  certificate") && report.contains("days left"),
        "{report}"
    );
    assert!(report.contains("ok    port"), "{report}");

    let first = served_serial(&server.addr(), "aura.test");
    assert!(first.starts_with("serial="), "{first}");
    let (cert2, key2) = ca.leaf("leaf2", "aura.test");
    std::fs::copy(&cert2, &live_cert).unwrap();
    std::fs::copy(&key2, &live_key).unwrap();
    server.signal("HUP");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let now = served_serial(&server.addr(), "aura.test");
        if now != first && now.starts_with("serial=") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "certificate was not replaced after SIGHUP"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    // A broken replacement is refused; the current certificate keeps serving.
    std::fs::write(&live_cert, "not a certificate").unwrap();
    server.signal("HUP");
    assert_eq!(
        c.get(format!("{https}/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.stop();
}

/// `served_serial` once answered "" when no certificate came back, so two
/// failed reads compared equal and "the same certificate" passed. It fails
/// now where nothing is served.
#[test]
#[should_panic(expected = "no certificate served")]
fn served_serial_fails_where_no_certificate_is_served() {
    let [port] = common::free_ports::<1>();
    served_serial(&format!("127.0.0.1:{port}"), "aura.test");
}
