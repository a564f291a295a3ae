//! Accounts in the platform area (issue 20, point 9), end to end with a real
//! SMTP sink: a platform admin creates an account that is invited by mail,
//! the person chooses a password through the mailed link and signs in;
//! disabling ends every sign-in at once and refuses every method until the
//! account is enabled; no one disables themselves and the last enabled
//! platform admin keeps their rights; everyone else gets 403; every change
//! is in the platform audit log with before and after. Also the accounts
//! and backups pages over HTTP (the browser test is in tests/ui_shell.rs).

mod common;

use age::secrecy::ExposeSecret;
use common::smtp::Sink;
use common::{
    Env, PASSWORD, Server, bearer_status, client, csrf_from, login, refresh_request, token_request,
};
use serde_json::{Value, json};

const NEW_PASSWORD: &str = "the invitee's own passphrase";

struct World {
    env: Env,
    sink: Sink,
    server: Server,
    staff: reqwest::Client,
    staff_id: String,
    ws: String,
}

async fn world() -> World {
    let env = Env::new();
    let staff_id = env.create_platform_admin("staff@example.com");
    env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Accounts Ltd", "owner@example.com");
    // Backups to an age key of the test's, which scheduled drills use too.
    let id = age::x25519::Identity::generate();
    let identity_file = env.root().join("backup-identity.txt");
    std::fs::write(
        &identity_file,
        format!("{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    let recipients = format!("[\"{}\"]", id.to_public());
    let sink = Sink::start();
    let vars = sink.env();
    let mut vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    vars.push(("AURA_AUTH__MAGIC_LINKS", "true"));
    vars.push(("AURA_BACKUP__RECIPIENTS", &recipients));
    vars.push((
        "AURA_BACKUP__DRILL_IDENTITY_FILE",
        identity_file.to_str().unwrap(),
    ));
    let server = env.start_with(&vars);
    let staff = client(&server);
    assert_eq!(
        login(&staff, &server, "staff@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    World {
        env,
        sink,
        server,
        staff,
        staff_id,
        ws,
    }
}

impl World {
    fn url(&self, path: &str) -> String {
        self.server.url(&format!("/api/v1{path}"))
    }

    async fn accounts(&self) -> Vec<Value> {
        let v = common::get_json(&self.staff, self.url("/platform/accounts")).await;
        v["items"].as_array().unwrap().clone()
    }

    async fn account(&self, email: &str) -> Value {
        self.accounts()
            .await
            .into_iter()
            .find(|a| a["email"] == email)
            .unwrap_or_else(|| panic!("{email} is listed"))
    }

    async fn invite(&self, email: &str, name: &str) -> String {
        let r = self
            .staff
            .post(self.url("/platform/accounts"))
            .json(&json!({"email": email, "name": name}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["mailed"], true, "{v}");
        v["id"].as_str().unwrap().to_owned()
    }

    async fn post(&self, c: &reqwest::Client, path: &str) -> u16 {
        c.post(self.url(path))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn set_admin(&self, c: &reqwest::Client, user: &str, on: bool) -> reqwest::Response {
        c.put(self.url(&format!("/platform/accounts/{user}/platform-admin")))
            .json(&json!({"platform_admin": on}))
            .send()
            .await
            .unwrap()
    }

    /// The newest platform entry of `action`, through the API.
    async fn entry(&self, action: &str) -> Value {
        self.entry_as(&self.staff, action).await
    }

    /// `entry`, read by the platform admin `c`.
    async fn entry_as(&self, c: &reqwest::Client, action: &str) -> Value {
        let page = common::get_json(
            c,
            self.url(&format!("/platform/audit?action={action}&limit=1")),
        )
        .await;
        page["items"][0].clone()
    }

    /// The invitation's link sets the password (the reset API).
    async fn choose_password(&self, email: &str) {
        let token = self.sink.link_token(email, "/reset/");
        let r = client(&self.server)
            .post(self.url("/auth/password-reset/confirm"))
            .json(&json!({"token": token, "new_password": NEW_PASSWORD}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.status());
    }
}

async fn me_status(c: &reqwest::Client, server: &Server) -> u16 {
    c.get(server.url("/api/v1/me"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn an_invited_account_chooses_its_password_and_disabling_ends_every_sign_in() {
    let w = world().await;
    let id = w.invite("ada@example.com", "Ada Lovelace").await;

    // Listed as invited: no password yet, so no sign-in works.
    let a = w.account("ada@example.com").await;
    assert_eq!(a["id"], id.as_str());
    assert_eq!(a["name"], "Ada Lovelace");
    assert_eq!(a["invited"], true);
    assert_eq!(a["disabled"], false);
    assert_eq!(a["platform_admin"], false);
    assert_eq!(a["workspaces"], 0);
    let staff = w.account("staff@example.com").await;
    assert_eq!(staff["platform_admin"], true);
    assert_eq!(staff["invited"], false);
    let ada = client(&w.server);
    assert_eq!(
        login(&ada, &w.server, "ada@example.com", PASSWORD)
            .await
            .status(),
        401
    );
    let e = w.entry("user.invited").await;
    assert_eq!(e["target"], id.as_str(), "{e}");
    assert_eq!(e["actor"], w.staff_id.as_str(), "{e}");
    assert_eq!(e["after"]["invited"], true, "{e}");
    assert_eq!(e["after"]["platform_admin"], false, "{e}");

    // The mail carries a single-use link that sets the password; no notice
    // of a "reset" follows for a first password.
    let mail = w.sink.messages_to("ada@example.com");
    assert_eq!(mail.len(), 1);
    assert!(mail[0].contains("Choose your password"), "{}", mail[0]);
    assert!(!mail[0].contains(PASSWORD));
    // Asking for a reset (an invitation that ran out) sends a fresh link.
    let r = client(&w.server)
        .post(w.url("/auth/password-reset"))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    w.sink.wait_for("ada@example.com", "Choose a new password");
    w.choose_password("ada@example.com").await;
    assert_eq!(
        login(&ada, &w.server, "ada@example.com", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(me_status(&ada, &w.server).await, 200);
    assert_eq!(w.account("ada@example.com").await["invited"], false);
    assert_eq!(w.sink.messages_to("ada@example.com").len(), 2, "no notice");
    // The link worked once.
    let token = w.sink.link_token("ada@example.com", "/reset/");
    let again = client(&w.server)
        .post(w.url("/auth/password-reset/confirm"))
        .json(&json!({"token": token, "new_password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);

    // Every credential: a browser session, an access/refresh pair, a
    // personal API token (in a workspace), a magic link asked for before.
    w.env.add_member(&w.ws, "ada@example.com", "admin");
    assert_eq!(w.account("ada@example.com").await["workspaces"], 1);
    let pair: Value = token_request(&w.server, "ada@example.com", NEW_PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let r = ada
        .post(w.url(&format!("/workspaces/{}/tokens", w.ws)))
        .json(&json!({"name": "laptop", "scope": "member"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let ws_route = format!("/api/v1/workspaces/{}/collections", w.ws);
    assert_eq!(bearer_status(&w.server, &secret, &ws_route).await, 200);
    assert_eq!(bearer_status(&w.server, &access, "/api/v1/me").await, 200);
    let r = client(&w.server)
        .post(w.url("/auth/magic-link"))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let magic = w.sink.link_token("ada@example.com", "/magic/");

    assert_eq!(
        w.post(&w.staff, &format!("/platform/accounts/{id}/disable"))
            .await,
        204
    );
    assert_eq!(
        me_status(&ada, &w.server).await,
        401,
        "the session ends on its next request"
    );
    assert_eq!(bearer_status(&w.server, &access, "/api/v1/me").await, 401);
    assert_eq!(bearer_status(&w.server, &secret, &ws_route).await, 401);
    assert_eq!(
        refresh_request(&w.server, &refresh).await.status(),
        401,
        "refresh token"
    );
    assert_eq!(
        login(&ada, &w.server, "ada@example.com", NEW_PASSWORD)
            .await
            .status(),
        401,
        "password"
    );
    assert_eq!(
        token_request(&w.server, "ada@example.com", NEW_PASSWORD)
            .await
            .status(),
        401
    );
    let m = client(&w.server);
    let page = common::get_text(&m, w.server.url(&format!("/magic/{magic}"))).await;
    let r = m
        .post(w.server.url(&format!("/magic/{magic}")))
        .form(&[("csrf", csrf_from(&page))])
        .send()
        .await
        .unwrap();
    assert_ne!(r.status(), 303, "a magic link of a disabled account");
    assert_eq!(me_status(&m, &w.server).await, 401, "magic link");
    let a = w.account("ada@example.com").await;
    assert_eq!(a["disabled"], true);
    let e = w.entry("user.disabled").await;
    assert_eq!(e["target"], id.as_str(), "{e}");
    assert_eq!(e["actor"], w.staff_id.as_str(), "{e}");
    assert_eq!(e["before"]["disabled"], false, "{e}");
    assert_eq!(e["after"]["disabled"], true, "{e}");
    assert_eq!(e["after"]["revoked_tokens"].as_array().unwrap().len(), 1);

    // Enabled, the account signs in afresh; what ended stays ended.
    assert_eq!(
        w.post(&w.staff, &format!("/platform/accounts/{id}/enable"))
            .await,
        204
    );
    let e = w.entry("user.enabled").await;
    assert_eq!(e["before"]["disabled"], true, "{e}");
    assert_eq!(e["after"]["disabled"], false, "{e}");
    assert_eq!(me_status(&ada, &w.server).await, 401);
    assert_eq!(bearer_status(&w.server, &secret, &ws_route).await, 401);
    assert_eq!(
        login(&ada, &w.server, "ada@example.com", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(me_status(&ada, &w.server).await, 200);
    // The first password was chosen, not reset: no notice of a reset came.
    let mails = w.sink.messages_to("ada@example.com");
    assert!(
        mails.iter().all(|m| !m.contains("was just reset")),
        "{mails:?}"
    );
    w.server.stop();
}

#[tokio::test]
async fn platform_rights_keep_one_enabled_admin_and_no_one_disables_themselves() {
    let w = world().await;
    // Alone: the staff member can neither give up the rights nor be disabled.
    let r = w.set_admin(&w.staff, &w.staff_id, false).await;
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body.to_string().contains("last enabled platform admin"),
        "{body}"
    );
    let own = format!("/platform/accounts/{}/disable", w.staff_id);
    assert_eq!(w.post(&w.staff, &own).await, 422);
    assert_eq!(me_status(&w.staff, &w.server).await, 200);
    assert_eq!(w.account("staff@example.com").await["platform_admin"], true);

    // A second admin, invited as one.
    let r = w
        .staff
        .post(w.url("/platform/accounts"))
        .json(&json!({"email": "grace@example.com", "name": "Grace", "platform_admin": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let grace_id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.choose_password("grace@example.com").await;
    let grace = client(&w.server);
    assert_eq!(
        login(&grace, &w.server, "grace@example.com", NEW_PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        grace
            .get(w.url("/platform/accounts"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // Still no one disables themselves; another admin may.
    assert_eq!(w.post(&w.staff, &own).await, 422);
    // Now the staff member may give up the rights; Grace is then the last.
    let r = w.set_admin(&w.staff, &w.staff_id, false).await;
    assert_eq!(r.status(), 204);
    let e = w.entry_as(&grace, "user.platform_admin_changed").await;
    assert_eq!(e["target"], w.staff_id.as_str(), "{e}");
    assert_eq!(e["before"]["platform_admin"], true, "{e}");
    assert_eq!(e["after"]["platform_admin"], false, "{e}");
    assert_eq!(
        w.staff
            .get(w.url("/platform/accounts"))
            .send()
            .await
            .unwrap()
            .status(),
        403,
        "the rights went at once"
    );
    assert_eq!(w.set_admin(&grace, &grace_id, false).await.status(), 422);
    let disable_grace = format!("/platform/accounts/{grace_id}/disable");
    assert_eq!(w.post(&grace, &disable_grace).await, 422);
    // Grace gives them back, and the staff member disables nothing of theirs.
    assert_eq!(w.set_admin(&grace, &w.staff_id, true).await.status(), 204);
    assert_eq!(w.post(&w.staff, &disable_grace).await, 204);
    assert_eq!(me_status(&grace, &w.server).await, 401);
    // A disabled admin does not count: the staff member is the last again.
    assert_eq!(
        w.set_admin(&w.staff, &w.staff_id, false).await.status(),
        422
    );
    // Unknown accounts and workspaces' service accounts are not found.
    let nowhere = "00000000-0000-0000-0000-000000000000";
    assert_eq!(
        w.post(&w.staff, &format!("/platform/accounts/{nowhere}/disable"))
            .await,
        404
    );
    assert_eq!(
        w.post(&w.staff, "/platform/accounts/not-an-id/enable")
            .await,
        404
    );
    // An address that has an account already: a conflict, naming why.
    let r = w
        .staff
        .post(w.url("/platform/accounts"))
        .json(&json!({"email": "grace@example.com", "name": "Again"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let v: Value = r.json().await.unwrap();
    assert!(v.to_string().contains("already exists"), "{v}");
    // Mail that is not an address; a blank name.
    for (body, field) in [
        (json!({"email": "nope", "name": "N"}), "email"),
        (json!({"email": "n@example.com", "name": " "}), "name"),
    ] {
        let r = w
            .staff
            .post(w.url("/platform/accounts"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{body}");
        let v: Value = r.json().await.unwrap();
        assert!(v.to_string().contains(field), "{v}");
    }
    w.server.stop();
}

#[tokio::test]
async fn only_platform_admins_reach_accounts() {
    let w = world().await;
    let ada = w.invite("ada@example.com", "Ada").await;
    let owner = client(&w.server);
    assert_eq!(
        login(&owner, &w.server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let anon = client(&w.server);
    for (c, want) in [(&owner, 403), (&anon, 401)] {
        assert_eq!(
            c.get(w.url("/platform/accounts"))
                .send()
                .await
                .unwrap()
                .status(),
            want
        );
        let r = c
            .post(w.url("/platform/accounts"))
            .json(&json!({"email": "x@example.com", "name": "X"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), want);
        for path in [
            format!("/platform/accounts/{ada}/disable"),
            format!("/platform/accounts/{ada}/enable"),
        ] {
            assert_eq!(w.post(c, &path).await, want, "{path}");
        }
        assert_eq!(w.set_admin(c, &ada, true).await.status(), want);
    }
    // The UI page: 403 for a signed-in non-admin, the sign-in for anyone.
    let r = owner
        .get(w.server.url("/platform/accounts"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(w.accounts().await.len(), 3, "nothing was created");
    let a = w.account("ada@example.com").await;
    assert_eq!(
        (a["disabled"].as_bool(), a["platform_admin"].as_bool()),
        (Some(false), Some(false))
    );
    w.server.stop();
}

#[tokio::test]
async fn the_accounts_page_creates_and_disables_and_the_backups_page_reads_for_people() {
    let w = world().await;
    let page = common::get_text(&w.staff, w.server.url("/platform")).await;
    assert!(page.contains("href=\"/platform/accounts\""), "{page}");
    let page = common::get_text(&w.staff, w.server.url("/platform/accounts")).await;
    assert!(page.contains("id=\"platform-accounts\""), "{page}");
    assert!(page.contains("staff@example.com"));
    // No Disable button on one's own row.
    let own = page
        .split("<tr ")
        .find(|r| r.contains(&w.staff_id))
        .unwrap();
    assert!(!own.contains("/platform/accounts/disable"), "{own}");
    let csrf = csrf_from(&page);
    let r = w
        .staff
        .post(w.server.url("/platform/accounts"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("email", "form@example.com"),
            ("name", "Form Person"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = common::get_text(&w.staff, w.server.url("/platform/accounts")).await;
    assert!(page.contains("the invitation is on its way"), "{page}");
    assert!(page.contains("form@example.com"));
    w.sink.link_token("form@example.com", "/reset/");
    let id = w.account("form@example.com").await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // A refusal is a field error on the page.
    let r = w
        .staff
        .post(w.server.url("/platform/accounts/disable"))
        .form(&[("csrf", csrf.as_str()), ("user_id", w.staff_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body = r.text().await.unwrap();
    assert!(body.contains("cannot disable your own account"), "{body}");
    let r = w
        .staff
        .post(w.server.url("/platform/accounts/disable"))
        .form(&[("csrf", csrf.as_str()), ("user_id", id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = common::get_text(&w.staff, w.server.url("/platform/accounts")).await;
    assert!(page.contains("Account disabled."), "{page}");
    assert_eq!(w.account("form@example.com").await["disabled"], true);
    let r = w
        .staff
        .post(w.server.url("/platform/accounts/admin"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("user_id", id.as_str()),
            ("platform_admin", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(w.account("form@example.com").await["platform_admin"], true);

    // Backups: the schedules' next runs, restore commands, sizes for people
    // and each drill linked to its audit entry.
    let page = common::get_text(&w.staff, w.server.url("/platform/backups")).await;
    assert!(page.contains("id=\"next-backup\""), "{page}");
    assert!(page.contains("aura restore --from"), "{page}");
    assert!(page.contains("--workspace WORKSPACE_ID"), "{page}");
    let token = csrf_from(&page);
    for path in ["/platform/backups/run", "/platform/backups/drill"] {
        let r = w
            .staff
            .post(w.server.url(path))
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 303, "{path}");
    }
    let page = common::get_text(&w.staff, w.server.url("/platform/backups")).await;
    let drill = w.entry("backup.drill").await;
    let seq = drill["seq"].as_i64().unwrap();
    assert!(
        page.contains(&format!("href=\"/platform/audit/{seq}\"")),
        "the drill links to its entry: {page}"
    );
    assert!(
        page.contains(" KiB<") || page.contains(" MiB<"),
        "a size in binary units: {page}"
    );
    assert!(!page.contains(" bytes<"), "{page}");
    // The next run is a real time, not the schedule's words.
    let next = page
        .split("id=\"next-backup\">")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap();
    assert!(next.ends_with('Z') && next.contains('T'), "{next}");
    w.server.stop();
}

/// Disabling refuses passkeys too: a passkey that signed in a moment ago
/// fails after a disable from the platform API, and works after the enable.
#[tokio::test]
async fn a_disabled_account_cannot_sign_in_with_a_passkey_in_chromium() {
    let env = Env::new();
    env.create_platform_admin("staff@example.com");
    let keeper = env.create_user("keeper@example.com", "Keeper");
    // A WebAuthn origin names the port before the server starts.
    let (server, base) = common::with_port_retries(|| {
        let [port] = common::free_ports::<1>();
        let base = format!("http://localhost:{port}");
        let mut cmd = env.command(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
        cmd.env("AURA_PUBLIC_URL", &base);
        Server::try_start(cmd).map(|s| (s, base))
    });
    let url = |p: &str| format!("{base}{p}");
    let staff = client(&server);
    assert_eq!(
        login(&staff, &server, "staff@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let b = common::browser::Browser::start().await;
    b.add_virtual_authenticator().await;
    b.goto(&url("/login")).await;
    b.type_into("#email", "keeper@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_url("/workspaces").await;
    b.goto(&url("/account")).await;
    b.wait_for_text("id=\"passkey-add\"").await;
    b.type_into("#passkey-name", "Laptop").await;
    b.type_into("#passkey-password", PASSWORD).await;
    b.click("#passkey-add").await;
    b.wait_for_text("id=\"passkey-list\"").await;
    // Signed out, the passkey alone signs in.
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("id=\"passkey-login\"").await;
    b.click("#passkey-login").await;
    b.wait_for_url("/workspaces").await;

    let disable = format!("/api/v1/platform/accounts/{keeper}/disable");
    let r = staff.post(server.url(&disable)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    b.goto(&url("/workspaces")).await;
    b.wait_for_text("id=\"passkey-login\"").await;
    b.click("#passkey-login").await;
    b.wait_for_text("Passkey: ").await;
    assert!(b.current_url().await.contains("/login"), "still signed out");
    assert_eq!(
        b.count("form[action='/logout']").await,
        0,
        "no session for a disabled account"
    );

    let enable = format!("/api/v1/platform/accounts/{keeper}/enable");
    let r = staff.post(server.url(&enable)).send().await.unwrap();
    assert_eq!(r.status(), 204);
    b.goto(&url("/login")).await;
    b.wait_for_text("id=\"passkey-login\"").await;
    b.click("#passkey-login").await;
    b.wait_for_url("/workspaces").await;
    b.quit().await;
    server.stop();
}
