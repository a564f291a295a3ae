//! The OpenID provider fixture (tests/oidc/provider.mjs, tests/common/oidc.rs)
//! is a working, real provider: discovery and JWKS, the authorization code
//! flow with PKCE driven with reqwest alone (the sign-in completes itself),
//! the ID token's claims, a replayed code and a wrong code_verifier refused,
//! and each test knob (another user by login_hint, a changed group, another
//! signing key, unpublished keys, expired ID tokens, amr, denial). No Aura.

mod common;

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use common::oidc::{Client, Config, Provider, User};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Never connected to: the flow stops at the redirect to it.
const REDIRECT: &str = "http://127.0.0.1:9/auth/oidc/callback";

fn random() -> String {
    B64.encode(rand::random::<[u8; 32]>())
}

/// What a relying party keeps between the authorization request and the callback.
struct Started {
    state: String,
    nonce: String,
    verifier: String,
}

/// A browser-like client: cookies, redirects followed up to the redirect_uri.
fn agent() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().as_str().starts_with(REDIRECT) {
                attempt.stop()
            } else if attempt.previous().len() > 10 {
                attempt.error("too many redirects")
            } else {
                attempt.follow()
            }
        }))
        .build()
        .unwrap()
}

/// Sends the authorization request (`extra` adds or, when its value is
/// empty, drops parameters) and returns the query of the redirect to
/// REDIRECT, with what was sent.
async fn authorize(
    op: &Provider,
    client_id: &str,
    extra: &[(&str, &str)],
) -> (HashMap<String, String>, Started) {
    authorize_with(&agent(), op, client_id, extra).await
}

/// `authorize` with a given agent (its cookies: the provider's session).
async fn authorize_with(
    agent: &reqwest::Client,
    op: &Provider,
    client_id: &str,
    extra: &[(&str, &str)],
) -> (HashMap<String, String>, Started) {
    let (url, started) = auth_url(op, client_id, extra);
    let res = agent.get(url).send().await.unwrap();
    let status = res.status();
    let location = res
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    let Some(location) = location.filter(|l| l.starts_with(REDIRECT)) else {
        let body = res.text().await.unwrap_or_default();
        panic!("no redirect to the client: {status} {body}; {}", op.logs());
    };
    let query = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    (query, started)
}

/// The authorization request's URL, with what it holds.
fn auth_url(op: &Provider, client_id: &str, extra: &[(&str, &str)]) -> (reqwest::Url, Started) {
    let started = Started {
        state: random(),
        nonce: random(),
        verifier: random(),
    };
    let challenge = B64.encode(Sha256::digest(started.verifier.as_bytes()));
    let mut params: Vec<(&str, &str)> = vec![
        ("client_id", client_id),
        ("response_type", "code"),
        ("scope", "openid email profile groups"),
        ("redirect_uri", REDIRECT),
        ("state", &started.state),
        ("nonce", &started.nonce),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        params.retain(|(name, _)| name != k);
        if !v.is_empty() {
            params.push((k, v));
        }
    }
    let url = reqwest::Url::parse_with_params(&format!("{}/auth", op.issuer), &params).unwrap();
    (url, started)
}

/// Exchanges `code` at the token endpoint: (status, JSON body).
async fn exchange(
    op: &Provider,
    client: &Client,
    code: &str,
    verifier: &str,
) -> (reqwest::StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ];
    let req = reqwest::Client::new().post(format!("{}/token", op.issuer));
    let req = if client.token_endpoint_auth_method == "client_secret_post" {
        form.push(("client_id", &client.client_id));
        form.push(("client_secret", &client.client_secret));
        req
    } else {
        req.basic_auth(&client.client_id, Some(&client.client_secret))
    };
    let res = req.form(&form).send().await.unwrap();
    (res.status(), res.json().await.unwrap())
}

/// A JWT's header and payload, unverified.
fn decode(jwt: &str) -> (Value, Value) {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3, "a JWS in compact form: {jwt}");
    let part = |p: &str| serde_json::from_slice::<Value>(&B64.decode(p).unwrap()).unwrap();
    (part(parts[0]), part(parts[1]))
}

/// The whole flow for `client`: the ID token's header and claims.
async fn sign_in(op: &Provider, client: &Client, extra: &[(&str, &str)]) -> (Value, Value) {
    let (query, started) = authorize(op, &client.client_id, extra).await;
    assert_eq!(query.get("state"), Some(&started.state), "{query:?}");
    let code = query
        .get("code")
        .unwrap_or_else(|| panic!("a code: {query:?}"));
    let (status, body) = exchange(op, client, code, &started.verifier).await;
    assert_eq!(status, 200, "{body}");
    let (header, claims) = decode(body["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], started.nonce.as_str());
    (header, claims)
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

async fn get_json(url: &str) -> Value {
    let res = reqwest::get(url).await.unwrap();
    assert_eq!(res.status(), 200, "{url}");
    res.json().await.unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_fixture_is_a_real_openid_provider() {
    let basic = Client::new("aura", "s3cret-basic", REDIRECT);
    let post = Client::new("aura-post", "s3cret-post", REDIRECT).post();
    let ada = User::new("ada-sub", "ada@example.com", "Ada Lovelace")
        .groups(&["engineering", "aura-admins"])
        .amr(&["pwd", "mfa"]);
    let bob = User::new("bob-sub", "bob@example.org", "Bob").groups(&["sales"]);
    let mut op = Provider::start(Config::new(
        vec![basic.clone(), post.clone()],
        vec![ada, bob],
    ));
    assert!(
        op.version.starts_with("8."),
        "oidc-provider 8.x: {}",
        op.version
    );
    assert!(op.issuer.starts_with("http://127.0.0.1:"), "{}", op.issuer);

    // Discovery and JWKS.
    let discovery = get_json(&op.discovery_url()).await;
    assert_eq!(discovery["issuer"], op.issuer.as_str());
    assert_eq!(
        discovery["authorization_endpoint"],
        format!("{}/auth", op.issuer)
    );
    assert_eq!(discovery["token_endpoint"], format!("{}/token", op.issuer));
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    for claim in ["email", "email_verified", "name", "groups", "amr"] {
        assert!(
            discovery["claims_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c == claim),
            "{claim} in {}",
            discovery["claims_supported"]
        );
    }
    let jwks_uri = discovery["jwks_uri"].as_str().unwrap().to_owned();
    let jwks = get_json(&jwks_uri).await;
    assert_eq!(kids(&jwks), ["k1"]);
    assert_eq!(jwks["keys"][0]["alg"], "RS256");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "no private part published"
    );

    // The code flow with PKCE, client_secret_basic: the first user signs in.
    let (query, started) = authorize(&op, "aura", &[]).await;
    assert_eq!(query.get("state"), Some(&started.state));
    assert_eq!(
        query.get("iss"),
        Some(&op.issuer),
        "RFC 9207 iss in the response"
    );
    let code = query["code"].clone();
    let (status, body) = exchange(&op, &basic, &code, &started.verifier).await;
    assert_eq!(status, 200, "{body}");
    let (header, claims) = decode(body["id_token"].as_str().unwrap());
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], "k1");
    assert_eq!(claims["iss"], op.issuer.as_str());
    assert_eq!(claims["aud"], "aura");
    assert_eq!(claims["sub"], "ada-sub");
    assert_eq!(claims["nonce"], started.nonce.as_str());
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["email_verified"], true);
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(
        claims["groups"],
        serde_json::json!(["engineering", "aura-admins"])
    );
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "mfa"]));
    let exp = claims["exp"].as_i64().unwrap();
    assert!(
        (now() + 3500..=now() + 3700).contains(&exp),
        "an hour: {exp}"
    );
    // The userinfo endpoint answers with the access token.
    let access_token = body["access_token"].as_str().unwrap().to_owned();
    let userinfo = || {
        reqwest::Client::new()
            .get(format!("{}/me", op.issuer))
            .bearer_auth(&access_token)
            .send()
    };
    let userinfo_res = userinfo().await.unwrap();
    assert_eq!(userinfo_res.status(), 200);
    let userinfo_body: Value = userinfo_res.json().await.unwrap();
    assert_eq!(userinfo_body["sub"], "ada-sub");
    assert_eq!(
        userinfo_body["groups"],
        serde_json::json!(["engineering", "aura-admins"])
    );

    // A replayed code is refused, and the tokens it gave are revoked.
    let (status, body) = exchange(&op, &basic, &code, &started.verifier).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        op.logged("authorization code already consumed"),
        "{}",
        op.logs()
    );
    assert_eq!(userinfo().await.unwrap().status(), 401);

    // A wrong code_verifier is refused (client_secret_post, bob by login_hint);
    // the code stays good for the right one.
    let (query, started) = authorize(&op, "aura-post", &[("login_hint", "bob@example.org")]).await;
    let (status, body) = exchange(&op, &post, &query["code"], &random()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(op.logged("PKCE verification failed"), "{}", op.logs());
    let (status, body) = exchange(&op, &post, &query["code"], &started.verifier).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        decode(body["id_token"].as_str().unwrap()).1["sub"],
        "bob-sub"
    );
    // By sub too; bob has no amr.
    let (_, claims) = sign_in(&op, &post, &[("login_hint", "bob-sub")]).await;
    assert_eq!(claims["sub"], "bob-sub");
    assert_eq!(claims["aud"], "aura-post");
    assert_eq!(claims["groups"], serde_json::json!(["sales"]));
    assert!(claims.get("amr").is_none(), "{claims}");

    // One browser (the provider's session cookie kept): each sign-in still
    // picks its user afresh.
    let browser = agent();
    for (hint, sub) in [
        ("ada-sub", "ada-sub"),
        ("bob-sub", "bob-sub"),
        ("ada@example.com", "ada-sub"),
    ] {
        let (query, started) = authorize_with(&browser, &op, "aura", &[("login_hint", hint)]).await;
        let (status, body) = exchange(&op, &basic, &query["code"], &started.verifier).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(decode(body["id_token"].as_str().unwrap()).1["sub"], sub);
    }

    // keep_sessions: the provider keeps its session like a real one; the
    // same user signs in again through the interaction (amr, claims fresh),
    // another user meets the provider's auto-submitted logout form first.
    op.update(|c| c.keep_sessions = true);
    let browser = agent();
    for _ in 0..2 {
        let (query, _) = authorize_with(&browser, &op, "aura", &[("login_hint", "ada-sub")]).await;
        assert!(query.contains_key("code"), "{query:?}");
    }
    let (url, _) = auth_url(&op, "aura", &[("login_hint", "bob-sub")]);
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("/session/end/confirm"), "{page}");
    op.update(|c| c.keep_sessions = false);

    // PKCE is required, and only S256.
    let (query, _) = authorize(
        &op,
        "aura",
        &[("code_challenge", ""), ("code_challenge_method", "")],
    )
    .await;
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_request"),
        "{query:?}"
    );
    assert!(!query.contains_key("code"));
    let (query, _) = authorize(&op, "aura", &[("code_challenge_method", "plain")]).await;
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("invalid_request"),
        "{query:?}"
    );

    // An unknown login_hint, and `deny`: access_denied at the redirect_uri.
    let (query, _) = authorize(&op, "aura", &[("login_hint", "nobody@example.com")]).await;
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("access_denied"),
        "{query:?}"
    );
    op.update(|c| c.deny = true);
    let (query, _) = authorize(&op, "aura", &[]).await;
    assert_eq!(
        query.get("error").map(String::as_str),
        Some("access_denied"),
        "{query:?}"
    );

    // A changed group shows at the next sign-in; login_as picks the user.
    op.update(|c| {
        c.deny = false;
        c.users[0].groups = vec!["engineering".into()];
        c.login_as = Some("bob-sub".into());
    });
    let (_, claims) = sign_in(&op, &basic, &[("login_hint", "ada-sub")]).await;
    assert_eq!(claims["groups"], serde_json::json!(["engineering"]));
    let (_, claims) = sign_in(&op, &basic, &[]).await;
    assert_eq!(claims["sub"], "bob-sub");

    // Key rotation: a second key signs, the JWKS lists both, then only the new one.
    op.update(|c| {
        c.keys = vec!["k1".into(), "k2".into()];
        c.signing_key = Some("k2".into());
    });
    assert_eq!(kids(&get_json(&jwks_uri).await), ["k2", "k1"]);
    let (header, _) = sign_in(&op, &basic, &[]).await;
    assert_eq!(header["kid"], "k2");
    op.update(|c| c.published_keys = Some(vec!["k2".into()]));
    assert_eq!(kids(&get_json(&jwks_uri).await), ["k2"]);
    // The same key material across reconfigurations.
    let k1_before = jwks["keys"][0]["n"].clone();
    op.update(|c| c.published_keys = None);
    let both = get_json(&jwks_uri).await;
    assert_eq!(both["keys"][1]["n"], k1_before);
    // Signed by a key the JWKS does not list.
    op.update(|c| c.published_keys = Some(vec!["k1".into()]));
    let (header, _) = sign_in(&op, &basic, &[]).await;
    assert_eq!(header["kid"], "k2");
    assert_eq!(kids(&get_json(&jwks_uri).await), ["k1"]);

    // Expired ID tokens.
    op.update(|c| c.id_token_ttl = -120);
    let (_, claims) = sign_in(&op, &basic, &[]).await;
    let exp = claims["exp"].as_i64().unwrap();
    assert!(
        exp < now() - 100,
        "expired two minutes ago: exp {exp}, now {}",
        now()
    );

    // Strict OIDC Core: the claims only at userinfo.
    op.update(|c| {
        c.id_token_ttl = 3600;
        c.claims_in_id_token = false;
    });
    let (_, claims) = sign_in(&op, &basic, &[]).await;
    assert_eq!(claims["sub"], "bob-sub");
    assert!(claims.get("email").is_none(), "{claims}");

    // Another provider is another issuer with keys of its own.
    let other = Provider::start(op.config().clone());
    assert_ne!(other.issuer, op.issuer);
    let other_jwks = get_json(&format!("{}/jwks", other.issuer)).await;
    assert_ne!(other_jwks["keys"][0]["n"], both["keys"][0]["n"]);
}

#[tokio::test]
async fn the_fixture_serves_https_with_a_test_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = common::certs::Ca::new(dir.path(), "oidc-ca");
    let (cert, key) = ca.leaf("oidc-leaf", "localhost");
    let basic = Client::new("aura", "s3cret-basic", REDIRECT);
    let mut config = Config::new(
        vec![basic.clone()],
        vec![User::new("ada-sub", "ada@example.com", "Ada")],
    );
    config.tls = Some(common::oidc::Tls { cert, key });
    let op = Provider::start(config);
    assert!(op.issuer.starts_with("https://127.0.0.1:"), "{}", op.issuer);

    // Without the test CA the provider is not trusted.
    assert!(reqwest::get(op.discovery_url()).await.is_err());
    let root = reqwest::Certificate::from_pem(&std::fs::read(&ca.cert).unwrap()).unwrap();
    let builder = || reqwest::Client::builder().add_root_certificate(root.clone());
    let discovery: Value = builder()
        .build()
        .unwrap()
        .get(op.discovery_url())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], op.issuer.as_str());
    assert_eq!(discovery["token_endpoint"], format!("{}/token", op.issuer));

    // The code flow over https.
    let verifier = random();
    let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
    let url = reqwest::Url::parse_with_params(
        &format!("{}/auth", op.issuer),
        [
            ("client_id", "aura"),
            ("response_type", "code"),
            ("scope", "openid email"),
            ("redirect_uri", REDIRECT),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let browser = builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            if attempt.url().as_str().starts_with(REDIRECT) {
                attempt.stop()
            } else {
                attempt.follow()
            }
        }))
        .build()
        .unwrap();
    let res = browser.get(url).send().await.unwrap();
    let location = res.headers()["location"].to_str().unwrap().to_owned();
    let code = reqwest::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("a code: {location}; {}", op.logs()));
    let token: Value = builder()
        .build()
        .unwrap()
        .post(format!("{}/token", op.issuer))
        .basic_auth("aura", Some("s3cret-basic"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (_, claims) = decode(token["id_token"].as_str().unwrap());
    assert_eq!(claims["iss"], op.issuer.as_str());
    assert_eq!(claims["email"], "ada@example.com");
}

/// A callback that answers 200 and reports each request's query.
fn callback_listener() -> (String, std::sync::mpsc::Receiver<HashMap<String, String>>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "http://{}/auth/oidc/callback",
        listener.local_addr().unwrap()
    );
    let base = url.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { break };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_err() {
                continue;
            }
            let target = line.split(' ').nth(1).unwrap_or("/");
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
            );
            if target.starts_with("/auth/oidc/callback") {
                let full = reqwest::Url::parse(&format!("http://x{target}")).unwrap();
                let query = full
                    .query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()));
                let _ = tx.send(query.collect());
            }
        }
    });
    (base, rx)
}

#[tokio::test]
async fn chromium_runs_the_code_flow_without_typing() {
    let (callback, calls) = callback_listener();
    let client = Client::new("aura-browser", "s3cret-browser", &callback);
    let mut op = Provider::start(Config::new(
        vec![client.clone()],
        vec![
            User::new("ada-sub", "ada@example.com", "Ada"),
            User::new("bob-sub", "bob@example.org", "Bob"),
        ],
    ));
    let browser = common::browser::Browser::start().await;
    // One browser, two users in turn (login_hint), each to the callback;
    // then with the provider's session kept (its logout form, submitted by
    // its own script, comes between two users).
    for (sub, keep) in [
        ("ada-sub", false),
        ("bob-sub", false),
        ("ada-sub", true),
        ("bob-sub", true),
    ] {
        if keep != op.config().keep_sessions {
            op.update(|c| c.keep_sessions = keep);
        }
        let verifier = random();
        let challenge = B64.encode(Sha256::digest(verifier.as_bytes()));
        let state = random();
        let url = reqwest::Url::parse_with_params(
            &format!("{}/auth", op.issuer),
            [
                ("client_id", "aura-browser"),
                ("response_type", "code"),
                ("scope", "openid email"),
                ("redirect_uri", &callback),
                ("state", &state),
                ("nonce", "n"),
                ("code_challenge", &challenge),
                ("code_challenge_method", "S256"),
                ("login_hint", sub),
            ],
        )
        .unwrap();
        browser.goto(url.as_str()).await;
        let query = calls
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("no callback; provider: {}", op.logs()));
        assert_eq!(query.get("state"), Some(&state), "{query:?}");
        let token: Value = reqwest::Client::new()
            .post(format!("{}/token", op.issuer))
            .basic_auth("aura-browser", Some("s3cret-browser"))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &query["code"]),
                ("redirect_uri", &callback),
                ("code_verifier", &verifier),
            ])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let (_, claims) = decode(token["id_token"].as_str().unwrap());
        assert_eq!(claims["sub"], sub, "{token}");
    }
    browser.quit().await;
}
