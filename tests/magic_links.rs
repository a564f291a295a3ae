//! Magic-link sign-in with a real SMTP sink: off unless configured; every
//! address gets the same answer; the link works once; it never skips a second
//! factor; requests are rate limited.

mod common;

use common::smtp::Sink;
use common::{Env, PASSWORD, client, csrf_from, login};
use serde_json::{Value, json};

fn start(env: &Env, sink: &Sink, magic: bool) -> common::Server {
    let vars = sink.env();
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push((
        "AURA_AUTH__MAGIC_LINKS",
        if magic { "true" } else { "false" },
    ));
    env.start_with(&all)
}

async fn ask(c: &reqwest::Client, s: &common::Server, email: &str) -> reqwest::Response {
    c.post(s.url("/api/v1/auth/magic-link"))
        .json(&json!({ "email": email }))
        .send()
        .await
        .unwrap()
}

/// Opens the link's page and presses its button.
async fn redeem(c: &reqwest::Client, s: &common::Server, token: &str) -> reqwest::Response {
    let page = common::get_text(c, s.url(&format!("/magic/{token}"))).await;
    assert!(page.contains("magic-redeem"), "{page}");
    c.post(s.url(&format!("/magic/{token}")))
        .form(&[("csrf", csrf_from(&page))])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_link_signs_in_once_and_keeps_the_second_factor() {
    let sink = Sink::start();
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    env.create_user("grace@example.com", "Grace");

    // Off by default.
    let s = start(&env, &sink, false);
    assert_eq!(ask(&client(&s), &s, "ada@example.com").await.status(), 404);
    let page = common::get_text(&client(&s), s.url("/login")).await;
    assert!(!page.contains("magic-form"));
    s.stop();

    let s = start(&env, &sink, true);
    let page = common::get_text(&client(&s), s.url("/login")).await;
    assert!(page.contains("magic-form"), "the sign-in page offers it");

    // Known and unknown addresses get the same answer.
    let known = ask(&client(&s), &s, "ada@example.com").await;
    assert_eq!(known.status(), 202);
    let known: Value = known.json().await.unwrap();
    let unknown = ask(&client(&s), &s, "nobody@example.com").await;
    assert_eq!(unknown.status(), 202);
    assert_eq!(known, unknown.json::<Value>().await.unwrap());

    // The link signs in, once.
    let token = sink.link_token("ada@example.com", "/magic/");
    let db = common::open_db(&env.data_dir().join("control.db"));
    // Only the token's SHA-256 is stored: exactly one row has it as its key,
    // and no row holds the token (or the address) itself.
    let hash = common::sha256(&token);
    let row = common::row_bytes(&db, "magic_links", "hash", &hash);
    for plain in [token.as_str(), "ada@example.com"] {
        assert!(
            !common::contains_bytes(&row, plain.as_bytes()),
            "{plain:?} is in the magic_links row"
        );
    }
    let c = client(&s);
    let r = redeem(&c, &s, &token).await;
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/workspaces");
    let me: Value = common::get_json(&c, s.url("/api/v1/me")).await;
    assert_eq!(me["email"], "ada@example.com");
    let r = redeem(&client(&s), &s, &token).await;
    assert_eq!(r.status(), 401, "used");

    // With a second factor, the link stands in for the password only.
    let g = client(&s);
    assert_eq!(
        login(&g, &s, "grace@example.com", PASSWORD).await.status(),
        200
    );
    let e: Value = g
        .post(s.url("/api/v1/me/mfa/totp"))
        .json(&json!({ "password": PASSWORD }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = e["secret"].as_str().unwrap().to_owned();
    let r = g
        .post(s.url("/api/v1/me/mfa/totp/confirm"))
        .json(&json!({ "code": common::otp::code_now(&secret) }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        ask(&client(&s), &s, "grace@example.com").await.status(),
        202
    );
    let token = sink.link_token("grace@example.com", "/magic/");
    let c = client(&s);
    let r = redeem(&c, &s, &token).await;
    assert_eq!(r.status(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("mfa-form"), "asks for the code: {page}");
    assert_eq!(
        c.get(s.url("/api/v1/me")).send().await.unwrap().status(),
        401,
        "no session before the code"
    );
}

#[tokio::test]
async fn requests_are_limited_per_ip() {
    let sink = Sink::start();
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let s = start(&env, &sink, true);
    let c = client(&s);
    for _ in 0..5 {
        assert_eq!(ask(&c, &s, "ada@example.com").await.status(), 202);
    }
    let r = ask(&c, &s, "ada@example.com").await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    // Sign-in by password is a separate limit.
    assert_eq!(
        login(&c, &s, "ada@example.com", PASSWORD).await.status(),
        200
    );
}

#[tokio::test]
async fn a_reset_link_sets_a_new_password_once_and_ends_every_session() {
    let sink = Sink::start();
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");

    // Without mail there are no reset links.
    let s = env.start();
    let r = client(&s)
        .post(s.url("/api/v1/auth/password-reset"))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    s.stop();

    let s = start(&env, &sink, false);
    let old = client(&s);
    assert_eq!(
        login(&old, &s, "ada@example.com", PASSWORD).await.status(),
        200
    );
    let page = common::get_text(&client(&s), s.url("/login")).await;
    assert!(page.contains("forgot-link"));

    // Same answer for every address.
    for email in ["ada@example.com", "nobody@example.com"] {
        let r = client(&s)
            .post(s.url("/api/v1/auth/password-reset"))
            .json(&json!({ "email": email }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let token = sink.link_token("ada@example.com", "/reset/");
    let c = client(&s);
    let page = common::get_text(&c, s.url(&format!("/reset/{token}"))).await;
    assert!(page.contains("reset-form"), "{page}");
    let csrf = csrf_from(&page);
    let post = |pw: &'static str| {
        c.post(s.url(&format!("/reset/{token}")))
            .form(&[("csrf", csrf.as_str()), ("new_password", pw)])
            .send()
    };
    assert_eq!(
        post("short").await.unwrap().status(),
        422,
        "the policy applies"
    );
    let new_password = "a brand new passphrase";
    assert_eq!(post(new_password).await.unwrap().status(), 200);

    // Every old session is over; the new password works, the old one not.
    assert_eq!(
        old.get(s.url("/api/v1/me")).send().await.unwrap().status(),
        401
    );
    assert_eq!(
        login(&client(&s), &s, "ada@example.com", PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        login(&client(&s), &s, "ada@example.com", new_password)
            .await
            .status(),
        200
    );
    // Once.
    let r = client(&s)
        .post(s.url("/api/v1/auth/password-reset/confirm"))
        .json(&json!({"token": token, "new_password": "yet another passphrase"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

/// The median of `samples` (milliseconds).
fn median(mut samples: Vec<f64>) -> f64 {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    samples[samples.len() / 2]
}

/// Finding 10 of issue 18: a known address's request wrote and fsynced its
/// link before answering (7.5 ms median against 2.3 ms for an unknown one),
/// so the time told which addresses have accounts. Now the answer comes
/// before any work that depends on the address: over many requests the
/// medians of known and unknown addresses stay within a generous ratio, for
/// sign-in links and for password resets, and the mail still arrives.
#[tokio::test]
async fn link_requests_take_the_same_time_for_known_and_unknown_addresses() {
    let sink = Sink::start();
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let vars = sink.env();
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("AURA_AUTH__MAGIC_LINKS", "true"));
    // Each request comes "through the proxy" from its own address, so the
    // per-IP limit stays out of the way.
    all.push(("AURA_TLS__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]"));
    let s = env.start_with(&all);
    let c = client(&s);
    const ROUNDS: usize = 40;
    let mut n = 0u32;
    for (path, link) in [
        ("/api/v1/auth/magic-link", "/magic/"),
        ("/api/v1/auth/password-reset", "/reset/"),
    ] {
        let (mut known, mut unknown) = (Vec::new(), Vec::new());
        for round in 0..ROUNDS {
            // Alternate which goes first, so drift hits both alike.
            let order = if round % 2 == 0 {
                ["ada@example.com", "nobody@example.com"]
            } else {
                ["nobody@example.com", "ada@example.com"]
            };
            for email in order {
                n += 1;
                let ip = format!("10.{}.{}.{}", n >> 16, (n >> 8) & 0xff, n & 0xff);
                let started = std::time::Instant::now();
                let r = c
                    .post(s.url(path))
                    .header("x-forwarded-for", ip)
                    .json(&json!({ "email": email }))
                    .send()
                    .await
                    .unwrap();
                let ms = started.elapsed().as_secs_f64() * 1000.0;
                assert_eq!(r.status(), 202, "{path} {email}");
                if email == "ada@example.com" {
                    known.push(ms);
                } else {
                    unknown.push(ms);
                }
                // Let the work behind a request finish before the next one.
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
        }
        let (k, u) = (median(known), median(unknown));
        eprintln!("{path}: median known {k:.2} ms, unknown {u:.2} ms");
        // Generous: half again plus a millisecond of scheduling noise
        // (before the fix the known address took over ten times as long).
        assert!(
            k < u * 1.5 + 1.0 && u < k * 1.5 + 1.0,
            "{path}: median known {k:.2} ms against unknown {u:.2} ms"
        );
        // The mail still goes out (the newest message to the address).
        assert!(!sink.link_token("ada@example.com", link).is_empty());
    }
    s.stop();
    let db = common::open_db(&env.data_dir().join("control.db"));
    let links: i64 = db
        .query_row("SELECT count(*) FROM magic_links", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        links,
        2 * ROUNDS as i64,
        "one link per request for the known address, none for the unknown"
    );
}

/// Finding 8 of the outside review: after a password reset, API tokens an
/// attacker made earlier kept working. A reset revokes the account's own
/// personal API tokens (in every workspace); the workspace's service-account
/// tokens stay. The mail after the reset and the account page list what was
/// revoked.
#[tokio::test]
async fn finding8_password_reset_revokes_personal_tokens() {
    let sink = Sink::start();
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Alpha", "ada@example.com");
    let s = start(&env, &sink, false);
    let ada = client(&s);
    assert_eq!(
        login(&ada, &s, "ada@example.com", PASSWORD).await.status(),
        200
    );
    let tokens = s.url(&format!("/api/v1/workspaces/{ws}/tokens"));
    let made = |body: Value| {
        let ada = ada.clone();
        let tokens = tokens.clone();
        async move {
            let r = ada.post(tokens).json(&body).send().await.unwrap();
            assert_eq!(r.status(), 201);
            let v: Value = r.json().await.unwrap();
            v["secret"].as_str().unwrap().to_owned()
        }
    };
    let personal = made(json!({"name": "Attacker laptop", "scope": "admin"})).await;
    let sa: Value = ada
        .post(s.url(&format!("/api/v1/workspaces/{ws}/service-accounts")))
        .json(&json!({"name": "Build bot", "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bot =
        made(json!({"name": "Bot token", "scope": "viewer", "service_account": sa["id"]})).await;
    let colls = format!("/api/v1/workspaces/{ws}/collections");
    let status = |secret: String| {
        let url = s.url(&colls);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(secret)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(personal.clone()).await, 200);

    let r = client(&s)
        .post(s.url("/api/v1/auth/password-reset"))
        .json(&json!({"email": "ada@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let token = sink.link_token("ada@example.com", "/reset/");
    let new_password = "a brand new passphrase";
    let r = client(&s)
        .post(s.url("/api/v1/auth/password-reset/confirm"))
        .json(&json!({"token": token, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());

    assert_eq!(status(personal).await, 401, "the personal token is revoked");
    assert_eq!(status(bot).await, 200, "the service account's token stays");
    // The mail after the reset names what was revoked.
    sink.wait_for("ada@example.com", "Attacker laptop");
    // So does the account page.
    let c = client(&s);
    assert_eq!(
        login(&c, &s, "ada@example.com", new_password)
            .await
            .status(),
        200
    );
    let page = common::get_text(&c, s.url("/account")).await;
    assert!(page.contains("revoked-tokens"), "{page}");
    assert!(page.contains("Attacker laptop"), "{page}");
    assert!(!page.contains("Bot token"), "{page}");
}
