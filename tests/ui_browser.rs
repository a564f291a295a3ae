//! The web UI in a real browser (Debian's chromium, headless, via
//! chromedriver): sign in, see the workspace, sign out.

mod common;

use common::browser::Browser;
use common::{Env, PASSWORD};

#[tokio::test]
async fn sign_in_see_workspaces_sign_out_in_chromium() {
    let env = Env::new();
    env.create_user("browser@example.com", "Browser User");
    env.create_workspace("Guest Ledger", "browser@example.com");
    let server = env.start();
    let b = Browser::start().await;

    b.goto(&server.url("/")).await;
    b.wait_for_text("Sign in").await;
    assert!(b.current_url().await.ends_with("/login"));

    // A wrong password shows an error, not a crash.
    b.type_into("#email", "browser@example.com").await;
    b.type_into("#password", "not the password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("do not match").await;

    b.goto(&server.url("/login")).await;
    b.type_into("#email", "browser@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    let page = b.wait_for_text("Guest Ledger").await;
    assert!(page.contains("owner"));
    assert!(b.current_url().await.ends_with("/workspaces"));

    b.click("form[action='/logout'] button").await;
    b.wait_for_text("Sign in").await;
    b.goto(&server.url("/workspaces")).await;
    b.wait_for_text("Sign in").await;
    assert!(
        b.current_url().await.ends_with("/login?next=%2Fworkspaces"),
        "signed out for real"
    );

    b.quit().await;
    server.stop();
}

#[tokio::test]
async fn audit_page_finds_an_action_by_free_text_in_chromium() {
    let env = Env::new();
    env.create_user("auditor@example.com", "Auditor");
    let ws = env.create_workspace("Zanzibar Bookings", "auditor@example.com");
    env.create_user("guest@example.com", "Guest");
    env.add_member(&ws, "guest@example.com", "viewer");
    let server = env.start();
    let b = Browser::start().await;

    b.goto(&server.url("/login")).await;
    b.type_into("#email", "auditor@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Zanzibar Bookings").await;
    b.click(&format!("a[href='/w/{ws}/audit']")).await;
    b.wait_for_text("Integrity").await;

    // Free text reaches the sealed details: the workspace's name lives only there.
    b.type_into("input[name=q]", "zanzibar").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_for_url("q=zanzibar").await;
    let page = b.wait_for_text("workspace.created").await;
    b.screenshot("audit-search").await;
    assert!(
        !page.contains("member.added"),
        "only the matching entry is listed"
    );

    // The entry's detail page shows the change.
    b.click("table.audit tbody tr td a").await;
    let detail = b.wait_for_text("Change").await;
    b.screenshot("audit-entry").await;
    assert!(detail.contains("Zanzibar Bookings"));

    // Verify now records an intact verification.
    b.goto(&server.url(&format!("/w/{ws}/audit"))).await;
    b.click("section.status button[type=submit]").await;
    b.wait_for_text("Verified intact").await;
    b.screenshot("audit-verified").await;

    b.quit().await;
    server.stop();
}

/// The records UI end to end: define a collection in the schema editor, add
/// a record through the generated form, and find it by search.
#[tokio::test]
async fn create_collection_add_record_find_it_in_chromium() {
    let env = Env::new();
    env.create_user("desk@example.com", "Front Desk");
    let ws = env.create_workspace("Harbour Hotel", "desk@example.com");
    let server = env.start();
    let b = Browser::start().await;

    b.goto(&server.url("/login")).await;
    b.type_into("#email", "desk@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Harbour Hotel").await;
    b.click(&format!("a[href='/w/{ws}']")).await;
    b.wait_for_text("No collections yet").await;

    // The schema editor.
    b.click("#new-collection").await;
    b.wait_for_text("New collection").await;
    b.type_into("#name", "Guest book").await;
    b.type_into("input[name='f0.name']", "Guest").await;
    b.click("select[name='f0.type'] option[value='text']").await;
    b.click("input[name='f0.required']").await;
    b.click("input[name='f0.searchable']").await;
    b.type_into("input[name='f1.name']", "Deposit").await;
    b.click("select[name='f1.type'] option[value='money']")
        .await;
    b.type_into("input[name='f1.currency']", "EUR").await;
    b.type_into("input[name='f2.name']", "Nights").await;
    b.click("select[name='f2.type'] option[value='integer']")
        .await;
    b.screenshot("schema-editor").await;
    b.click("form#schema button[type=submit]").await;
    b.wait_for_text("No records yet").await;
    let coll_url = b.current_url().await;
    assert!(coll_url.contains(&format!("/w/{ws}/c/")), "{coll_url}");

    // The generated record form; the server normalises the money amount.
    b.click("#new-record").await;
    b.wait_for_text("New record").await;
    b.type_into("form#record fieldset > input:not([type])", "Ada Lovelace")
        .await;
    b.type_into(".money input:first-child", "120.5").await;
    b.type_into("input[type=number]", "3").await;
    b.click("form#record button[type=submit]").await;
    let page = b.wait_for_text("History").await;
    assert!(page.contains("120.50"), "money shown with its minor units");
    assert!(b.current_url().await.contains("/r/"));

    // A second record, then search finds exactly the first.
    b.goto(&format!("{coll_url}/new")).await;
    b.wait_for_text("New record").await;
    b.type_into(
        "form#record fieldset > input:not([type])",
        "Charles Babbage",
    )
    .await;
    b.click("form#record button[type=submit]").await;
    b.wait_for_text("History").await;
    b.goto(&coll_url).await;
    b.wait_for_text("Charles Babbage").await;
    b.type_into("#q", "lovelace").await;
    b.click("form.search button[type=submit]").await;
    b.wait_for_url("q=lovelace").await;
    let page = b.wait_for_text("Ada Lovelace").await;
    b.screenshot("record-search").await;
    assert!(
        !page.contains("Charles Babbage"),
        "only the match is listed"
    );
    assert!(page.contains("120.50 EUR"));

    b.quit().await;
    server.stop();
}

/// Two-factor sign-in in a real browser: set it up on the account page with
/// a code computed from the shown key, see the recovery codes, sign in again
/// through the code step, and create an API token on the members page.
#[tokio::test]
async fn set_up_two_factor_and_sign_in_with_a_code_in_chromium() {
    let env = Env::new();
    env.create_user("keeper@example.com", "Keeper");
    let ws = env.create_workspace("Lighthouse Log", "keeper@example.com");
    let server = env.start();
    let b = Browser::start().await;

    b.goto(&server.url("/login")).await;
    b.type_into("#email", "keeper@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Lighthouse Log").await;

    b.goto(&server.url("/account")).await;
    b.wait_for_text("Two-factor sign-in").await;
    b.type_into("#mfa-password", PASSWORD).await;
    b.click("#mfa-start button[type=submit]").await;
    b.wait_for_text("id=\"totp-secret\"").await;
    b.screenshot("mfa-enrolling").await;
    let secret = b.text("#totp-secret").await;
    assert_eq!(secret.len(), 32, "{secret}");
    // A wrong code keeps the enrolment: the same key (and QR code), the
    // error at the code field, nothing to scan again.
    let wrong: String = common::otp::code_now(&secret)
        .chars()
        .map(|c| char::from(b'0' + (c as u8 - b'0' + 5) % 10))
        .collect();
    b.type_into("#confirm-code", &wrong).await;
    b.click("#mfa-confirm button[type=submit]").await;
    b.wait_for_text("id=\"confirm-code-error\"").await;
    b.screenshot("mfa-wrong-code").await;
    assert_eq!(b.text("#totp-secret").await, secret, "the key changed");
    assert_eq!(b.count("#confirm-code[aria-invalid=true]").await, 1);
    b.type_into("#confirm-code", &common::otp::code_now(&secret))
        .await;
    b.click("#mfa-confirm button[type=submit]").await;
    b.wait_for_text("id=\"recovery-codes\"").await;
    b.screenshot("mfa-recovery-codes").await;
    assert_eq!(b.count("#recovery-codes li").await, 10);
    let first = b.text("#recovery-codes li").await;
    let download = b.attr("#recovery-download", "href").await;
    assert!(
        download.starts_with("data:text/plain") && download.contains(&first),
        "{download}"
    );
    assert_eq!(
        b.attr("#recovery-download", "download").await,
        "aura-recovery-codes.txt"
    );

    b.click("form[action='/logout'] button").await;
    b.wait_for_text("Sign in").await;

    // The password leads to the code step; the enrolment spent the current
    // step, so the next step's code (one step of skew is accepted).
    b.type_into("#email", "keeper@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("id=\"mfa-form\"").await;
    b.type_into("#code", &common::otp::code_next(&secret)).await;
    b.click("#mfa-form button[type=submit]").await;
    b.wait_for_url("/workspaces").await;
    b.wait_for_text("Lighthouse Log").await;

    // The sign-ins list names the browser; new recovery codes replace the
    // old ones (the password asked again).
    b.goto(&server.url("/account")).await;
    b.wait_for_text("id=\"sessions\"").await;
    let device = b.text("#sessions td.device").await;
    assert!(device.contains("Chrome"), "{device}");
    b.type_into("#recovery-password", PASSWORD).await;
    b.click("#mfa-recovery button[type=submit]").await;
    b.wait_for_text("New recovery codes").await;
    assert_eq!(b.count("#recovery-codes li").await, 10);
    assert_ne!(b.text("#recovery-codes li").await, first);

    // An API token, shown once on the members page.
    b.goto(&server.url(&format!("/w/{ws}/members"))).await;
    b.wait_for_text("id=\"new-token-form\"").await;
    b.type_into("#token-name", "Nightly export").await;
    b.click("#new-token-form button[type=submit]").await;
    b.wait_for_text("id=\"new-token\"").await;
    b.screenshot("new-api-token").await;
    let token = b.text("#new-token").await;
    assert!(token.starts_with("aura_"), "{token}");
    assert!(b.source().await.contains("Nightly export"));

    b.quit().await;
    server.stop();
}

/// Passkeys in chromium with a virtual authenticator: register one on the
/// account page, use it as the second step after the password, then sign in
/// with it alone. WebAuthn needs a domain, so the server's public address is
/// `http://localhost:<port>`.
#[tokio::test]
async fn passkeys_register_stand_in_for_the_code_and_sign_in_alone_in_chromium() {
    let env = Env::new();
    env.create_user("keeper@example.com", "Keeper");
    env.create_workspace("Lighthouse Log", "keeper@example.com");
    // The public address (a WebAuthn origin) names the port before the
    // server starts: a port picked in advance, retried if it was taken.
    let (server, base) = common::with_port_retries(|| {
        let [port] = common::free_ports::<1>();
        let base = format!("http://localhost:{port}");
        let mut cmd = env.command(&["serve", "--listen", &format!("127.0.0.1:{port}")]);
        cmd.env("AURA_PUBLIC_URL", &base);
        common::Server::try_start(cmd).map(|s| (s, base))
    });
    let url = |p: &str| format!("{base}{p}");
    let b = Browser::start().await;
    b.add_virtual_authenticator().await;

    b.goto(&url("/login")).await;
    b.type_into("#email", "keeper@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Lighthouse Log").await;

    // Row ai: adding one takes the password (checked through the API with a
    // session of its own: a wrong or missing password starts no ceremony).
    let api = common::client(&server);
    assert_eq!(
        common::login(&api, &server, "keeper@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let me: serde_json::Value = common::get_json(&api, server.url("/api/v1/me")).await;
    let keeper = me["id"].as_str().unwrap().to_owned();
    for password in ["not the password", ""] {
        let r = api
            .post(server.url("/api/v1/me/passkeys/register/start"))
            .json(&serde_json::json!({ "password": password, "name": "x" }))
            .send()
            .await
            .unwrap();
        assert!(
            r.status().is_client_error(),
            "register/start with password {password:?}: {}",
            r.status()
        );
        assert!(!r.text().await.unwrap().contains("challenge"));
    }

    // Register, under a name that must not reach the disk in the clear.
    b.goto(&url("/account")).await;
    b.wait_for_text("id=\"passkey-add\"").await;
    b.type_into("#passkey-name", PASSKEY_NAME_CANARY).await;
    b.type_into("#passkey-password", PASSWORD).await;
    b.click("#passkey-add").await;
    b.wait_for_text("id=\"passkey-list\"").await;
    b.screenshot("passkey-registered").await;
    assert_eq!(b.count("#passkey-list tbody tr").await, 1);
    let (name, counter_at_add, used_at_add) = stored_passkey(&env, &keeper);
    assert!(name.ends_with(PASSKEY_NAME_CANARY), "{name}");
    assert_eq!(used_at_add, None);
    assert_eq!(platform_count(&env, "mfa.passkey_added"), 1);
    assert_passkey_sealed(&env);

    // Removing it without the password is refused (API and page alike).
    let list: serde_json::Value = common::get_json(&api, server.url("/api/v1/me/passkeys")).await;
    let pid = list["items"][0]["id"].as_str().unwrap().to_owned();
    let r = api
        .post(server.url(&format!("/api/v1/me/passkeys/{pid}/remove")))
        .json(&serde_json::json!({ "password": "not the password" }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    b.type_into(
        "form[action='/account/passkeys/remove'] input[name=password]",
        "not the password",
    )
    .await;
    b.click("form[action='/account/passkeys/remove'] button")
        .await;
    b.goto(&url("/account")).await;
    b.wait_for_text("id=\"passkey-list\"").await;
    assert_eq!(b.count("#passkey-list tbody tr").await, 1);
    assert_eq!(platform_count(&env, "mfa.passkey_removed"), 0);

    // The password now leads to a second step; the passkey completes it.
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("Sign in").await;
    b.type_into("#email", "keeper@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("id=\"passkey-second\"").await;
    b.click("#passkey-second").await;
    b.wait_for_url("/workspaces").await;
    b.wait_for_text("Lighthouse Log").await;
    // Each use moves the stored counter on and is audited.
    let (_, counter_after_second, used) = stored_passkey(&env, &keeper);
    assert!(
        counter_after_second > counter_at_add,
        "{counter_after_second}"
    );
    assert!(used.is_some());
    assert_eq!(platform_count(&env, "auth.passkey_used"), 1);

    // A passkey alone signs in.
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("id=\"passkey-login\"").await;
    b.click("#passkey-login").await;
    b.wait_for_url("/workspaces").await;
    b.wait_for_text("Lighthouse Log").await;
    let (_, counter_after_alone, _) = stored_passkey(&env, &keeper);
    assert!(
        counter_after_alone > counter_after_second,
        "{counter_after_alone}"
    );
    assert_eq!(platform_count(&env, "auth.passkey_used"), 2);

    // Removing it takes the password again.
    b.goto(&url("/account")).await;
    b.wait_for_text("id=\"passkey-list\"").await;
    b.type_into(
        "form[action='/account/passkeys/remove'] input[name=password]",
        PASSWORD,
    )
    .await;
    b.click("form[action='/account/passkeys/remove'] button")
        .await;
    // The "add" button shows on the page either way, so wait for the list
    // itself to go (the removal's redirect may land after the click returns).
    let gone_by = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while b.count("#passkey-list").await != 0 && std::time::Instant::now() < gone_by {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(b.count("#passkey-list").await, 0);
    b.quit().await;

    // Recorded, and sealed at rest.
    let db = common::open_db(&env.data_dir().join("control.db"));
    let used: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.passkey_used'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(used, 2);
    let removed: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'mfa.passkey_removed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(removed, 1);
    let left: i64 = db
        .query_row("SELECT count(*) FROM passkeys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
    server.stop();
}

const PASSKEY_NAME_CANARY: &str = "LighthouseKeyCanary7731";

fn platform_count(env: &Env, action: &str) -> i64 {
    common::open_db(&env.data_dir().join("control.db"))
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
}

/// The one stored passkey of `user`, opened with the master key as the
/// server does: (name, the WebAuthn counter in the sealed credential, last use).
fn stored_passkey(env: &Env, user: &str) -> (String, u64, Option<i64>) {
    let master =
        aura::crypto::keys::parse_master_key(&std::fs::read(env.key_path()).unwrap()).unwrap();
    let opts = aura::store::DbOptions::from_config(&aura::config::StorageConfig::default());
    let control =
        aura::store::control::Control::open(&env.data_dir().join("control.db"), opts, master)
            .unwrap();
    let user: aura::ids::UserId = user.parse().unwrap();
    let rows = control
        .db
        .read(|c| aura::store::passkeys::for_user(c, &control.keys, user))
        .unwrap();
    assert_eq!(rows.len(), 1);
    let json: serde_json::Value = serde_json::from_slice(&rows[0].passkey_json).unwrap();
    let counter = json["cred"]["counter"]
        .as_u64()
        .unwrap_or_else(|| panic!("no counter in {json}"));
    (rows[0].name.clone(), counter, rows[0].last_used_at)
}

/// The passkey's name and credential are ciphertext on disk: the name canary
/// is in no file of the data dir (WAL included) and the credential column is
/// not the credential's JSON.
fn assert_passkey_sealed(env: &Env) {
    for e in std::fs::read_dir(env.data_dir()).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes
                    .windows(PASSKEY_NAME_CANARY.len())
                    .any(|w| w == PASSKEY_NAME_CANARY.as_bytes()),
                "passkey name in the clear in {}",
                p.display()
            );
        }
    }
    let db = common::open_db(&env.data_dir().join("control.db"));
    let (name_ct, passkey_ct): (Vec<u8>, Vec<u8>) = db
        .query_row("SELECT name_ct, passkey_ct FROM passkeys", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert!(!name_ct.is_empty() && !passkey_ct.is_empty());
    for needle in [&b"\"counter\""[..], b"\"cred_id\"", b"\"cred\""] {
        assert!(
            !passkey_ct.windows(needle.len()).any(|w| w == needle),
            "passkey_ct holds plaintext JSON"
        );
    }
}

/// The privacy page in a real browser: export the workspace and watch the job
/// finish, then find a guest by email, see their record and anonymise them.
#[tokio::test]
async fn export_and_anonymise_from_the_privacy_page_in_chromium() {
    let env = Env::new();
    env.create_user("dpo@example.com", "Privacy Officer");
    let ws = env.create_workspace("Quay Hotel", "dpo@example.com");
    let server = env.start();
    let c = common::client(&server);
    common::login(&c, &server, "dpo@example.com", PASSWORD).await;
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let coll: serde_json::Value = c
        .post(api("/collections"))
        .json(&serde_json::json!({"name": "Guests", "fields": [
            {"name": "Name", "type": "text", "pii": true},
            {"name": "Email", "type": "email", "pii": true},
            {"name": "Spent", "type": "money", "currency": "EUR"}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let coll = coll["id"].as_str().unwrap().to_owned();
    for (name, email) in [
        ("Grace Hopper", "grace@example.com"),
        ("Alan Turing", "alan@example.com"),
    ] {
        let r = c
            .post(api(&format!("/collections/{coll}/records")))
            .json(&serde_json::json!({"values": {"Name": name, "Email": email,
                "Spent": {"amount_minor": 4200, "currency": "EUR"}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }

    let b = Browser::start().await;
    b.goto(&server.url("/login")).await;
    b.type_into("#email", "dpo@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Quay Hotel").await;
    b.goto(&server.url(&format!("/w/{ws}"))).await;
    b.click("#nav-privacy").await;
    b.wait_for_text("Export this workspace").await;

    // The export page refreshes itself until the archive is ready.
    b.click("#start-export").await;
    b.wait_for_url("/privacy/exports/").await;
    let page = b.wait_for_text("Ready:").await;
    assert!(page.contains("2 records"), "{page}");
    assert_eq!(b.count("#download-export").await, 1);
    b.screenshot("export-ready").await;

    // A data subject request.
    b.goto(&server.url(&format!("/w/{ws}/privacy"))).await;
    b.type_into("#subject-identifier", "GRACE@example.com")
        .await;
    b.click("#find-subject").await;
    let page = b.wait_for_text("record(s) refer to this person").await;
    assert!(page.contains("1 record(s)"), "{page}");
    assert!(
        page.contains("<td>Email</td>"),
        "the field that matched: {page}"
    );
    b.click("#confirm-anonymise").await;
    b.click("#anonymise-subject").await;
    let page = b.wait_for_text("The person is now").await;
    b.screenshot("anonymised").await;
    assert!(page.contains("1 record(s)"), "{page}");

    let list: serde_json::Value = c
        .get(api(&format!("/collections/{coll}/records")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = list.to_string();
    assert!(
        !text.contains("Grace Hopper") && !text.contains("grace@example.com"),
        "{text}"
    );
    assert!(text.contains("Alan Turing"), "others untouched");
    b.quit().await;
    server.stop();
}

/// Row bm in a browser: the trust page names the organisation, each status
/// is a word on screen (TLS off reads "Off"), the commands open under
/// "Verify it yourself", and the key to pin is the one /trust.json is
/// signed with.
#[tokio::test]
async fn the_trust_page_reads_at_a_glance_in_chromium() {
    let env = Env::new();
    let server = env.start_with(&[
        ("AURA_TRUST__ORGANISATION", "Example Ltd"),
        ("AURA_TRUST__CONTACT", "security@example.com"),
    ]);
    let signed = common::get_json(&reqwest::Client::new(), server.url("/trust.json")).await;
    let b = Browser::start().await;
    b.goto(&server.url("/trust")).await;
    b.wait_for_text("Example Ltd").await;
    assert!(b.text("h1").await.contains("Example Ltd"));
    assert_eq!(b.text("#encryption-in-transit .pill").await, "Off");
    assert_eq!(b.text("#encryption-at-rest .pill").await, "Met");
    assert_eq!(b.text("#residency .pill").await, "Not configured");
    // Folded until asked for: a hidden element has no rendered text.
    let command = "#encryption-in-transit details.verify dd";
    assert_eq!(b.text(command).await, "", "the command starts folded");
    b.click("#encryption-in-transit details.verify summary")
        .await;
    assert!(b.text(command).await.contains("openssl s_client"));
    assert_eq!(
        b.text("#trust-public-key").await,
        signed["signature"]["public_key"].as_str().unwrap()
    );
    b.screenshot("trust").await;
    b.quit().await;
    server.stop();
}
