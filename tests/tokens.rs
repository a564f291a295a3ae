//! Tokens for programs end to end: the access JWT and refresh token from
//! `/auth/token` (shape, header, use as a bearer), forged, expired and
//! misused tokens refused, refresh rotation with reuse detection, and every
//! way a sign-in dies: logout, a password change, a disabled account.

mod common;

use std::collections::BTreeSet;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{
    Env, PASSWORD, Server, bearer, bearer_status, client, login, open_db, refresh_request,
    token_request,
};
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const NEW_PASSWORD: &str = "a brand new passphrase";

struct Pair {
    access: String,
    refresh: String,
}

fn pair_of(body: &Value) -> Pair {
    Pair {
        access: body["access_token"].as_str().unwrap().to_owned(),
        refresh: body["refresh_token"].as_str().unwrap().to_owned(),
    }
}

async fn sign_in(server: &Server, email: &str, password: &str) -> Pair {
    let r = token_request(server, email, password).await;
    assert_eq!(r.status(), 200, "/auth/token for {email}");
    pair_of(&r.json().await.unwrap())
}

/// `/auth/refresh`: the status and the body (a pair or a problem).
async fn refresh(server: &Server, token: &str) -> (u16, Value) {
    let r = refresh_request(server, token).await;
    let s = r.status().as_u16();
    (s, r.json().await.unwrap())
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn encode(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

fn assert_pair_shape(body: &Value) {
    let keys: BTreeSet<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from(["access_token", "expires_in", "refresh_token", "token_type"]),
        "{body}"
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(
        body["expires_in"], 600,
        "access_token_minutes defaults to 10"
    );
}

#[tokio::test]
async fn token_has_the_documented_shape_and_works_as_a_bearer() {
    let env = Env::new();
    let ada = env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Engines", "ada@example.com");
    let server = env.start();

    let r = token_request(&server, "Ada@Example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "a program gets no cookie"
    );
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert_pair_shape(&body);
    let p = pair_of(&body);
    assert!(!p.refresh.contains('.'), "the refresh token is opaque");

    let parts: Vec<&str> = p.access.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = decode(parts[0]);
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], "at+jwt");
    assert!(header["kid"].is_string(), "{header}");
    let claims = decode(parts[1]);
    assert_eq!(claims["sub"], ada.as_str());
    assert_eq!(claims["iss"], "aura");
    assert_eq!(claims["aud"], "aura-api");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        600
    );

    let me: Value = bearer(Method::GET, &server, &p.access, "/api/v1/me")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["id"], ada.as_str());
    assert_eq!(me["workspaces"][0]["id"], ws.as_str());
    let ws_route = format!("/api/v1/workspaces/{ws}/members");
    assert_eq!(bearer_status(&server, &p.access, &ws_route).await, 200);
    // A bearer header is all a program needs, even for a state change.
    let r = bearer(
        Method::POST,
        &server,
        &p.access,
        &format!("/api/v1/workspaces/{ws}/teams"),
    )
    .json(&json!({ "name": "Night shift" }))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 201);

    // Wrong password, unknown email: the same 401, no tokens.
    for (email, password) in [
        ("ada@example.com", "not the password"),
        ("nobody@example.com", PASSWORD),
    ] {
        let r = token_request(&server, email, password).await;
        assert_eq!(r.status(), 401, "{email}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let text = r.text().await.unwrap();
        assert!(!text.contains("access_token"), "{text}");
    }

    server.stop();
    // Only the refresh token's hash is stored, and the sign-in is audited.
    let db = open_db(&env.data_dir().join("control.db"));
    let stored: Vec<u8> = db
        .query_row("SELECT hash FROM refresh_tokens", [], |r| r.get(0))
        .unwrap();
    assert_eq!(stored, Sha256::digest(p.refresh.as_bytes()).to_vec());
    let family: String = db
        .query_row("SELECT id FROM token_families", [], |r| r.get(0))
        .unwrap();
    assert_eq!(claims["sid"], family.as_str());
    let issued: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.token_issued'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(issued, 1);
}

fn hs256(key: &[u8], input: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(input.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn forged_and_misused_tokens_get_401() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let bob = env.create_user("bob@example.com", "Bob");
    let ws = env.create_workspace("Engines", "ada@example.com");
    env.add_member(&ws, "bob@example.com", "member");
    let server = env.start();
    let p = sign_in(&server, "ada@example.com", PASSWORD).await;
    let ws_route = format!("/api/v1/workspaces/{ws}/members");
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 200);
    assert_eq!(bearer_status(&server, &p.access, &ws_route).await, 200);

    let parts: Vec<&str> = p.access.split('.').collect();
    let header = decode(parts[0]);
    let claims = decode(parts[1]);
    let kid = header["kid"].clone();
    let public: Vec<u8> = open_db(&env.data_dir().join("control.db"))
        .query_row(
            "SELECT value FROM meta WHERE key = 'jwt_public_key'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(public.len(), 32, "a raw Ed25519 public key");

    let mut forged: Vec<(String, String)> = Vec::new();
    for h in [
        json!({"alg": "none", "typ": "at+jwt"}),
        json!({"alg": "none", "typ": "at+jwt", "kid": kid}),
        json!({"alg": "None", "typ": "at+jwt", "kid": kid}),
    ] {
        forged.push((format!("{h}"), format!("{}.{}.", encode(&h), parts[1])));
    }
    forged.push((
        "signature stripped".into(),
        format!("{}.{}.", parts[0], parts[1]),
    ));
    // HS256 keyed with the public key, in each form a verifier might use.
    for (form, key) in [
        ("raw", public.clone()),
        ("base64url", URL_SAFE_NO_PAD.encode(&public).into_bytes()),
        ("base64", STANDARD.encode(&public).into_bytes()),
    ] {
        for h in [
            json!({"alg": "HS256", "typ": "at+jwt"}),
            json!({"alg": "HS256", "typ": "at+jwt", "kid": kid}),
        ] {
            let input = format!("{}.{}", encode(&h), parts[1]);
            let sig = hs256(&key, &input);
            forged.push((
                format!("HS256 with the {form} public key, {h}"),
                format!("{input}.{sig}"),
            ));
        }
    }
    // EdDSA, our kid, the real claims, signed by someone else's key.
    {
        use ed25519_dalek::Signer;
        let stranger = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let input = format!("{}.{}", parts[0], parts[1]);
        let sig = stranger.sign(input.as_bytes()).to_bytes();
        forged.push((
            "EdDSA by another key".into(),
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig)),
        ));
    }
    // Edited payloads under the original signature.
    let mut as_bob = claims.clone();
    as_bob["sub"] = json!(bob);
    let mut longer = claims.clone();
    longer["exp"] = json!(claims["exp"].as_i64().unwrap() + 365 * 86_400);
    for (what, c) in [("sub changed to bob", as_bob), ("exp extended", longer)] {
        forged.push((
            what.into(),
            format!("{}.{}.{}", parts[0], encode(&c), parts[2]),
        ));
    }
    forged.push(("the refresh token as a bearer".into(), p.refresh.clone()));
    forged.push(("garbage".into(), "not-a-token".into()));
    forged.push((
        "an unknown aura_ token".into(),
        "aura_AAAAAAAAAAAAAAAA".into(),
    ));

    for (what, token) in &forged {
        for path in ["/api/v1/me", ws_route.as_str()] {
            assert_eq!(
                bearer_status(&server, token, path).await,
                401,
                "{what} on {path}"
            );
        }
    }

    // A malformed Authorization header does not fall back to the cookie.
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    for value in ["Basic YWRhOnB3", "Bearer", "Bearer   "] {
        let r = c
            .get(server.url("/api/v1/me"))
            .header("authorization", value)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{value:?}");
    }
    // Nothing above harmed the real token.
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 200);
    server.stop();
}

#[tokio::test]
async fn an_expired_access_token_is_refused_while_its_refresh_token_lives() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    // Two hours ago: the access token (10 minutes) is long expired by now.
    let past = env.start_with(&[("AURA_TEST_CLOCK_OFFSET", "-7200")]);
    let p = sign_in(&past, "ada@example.com", PASSWORD).await;
    assert_eq!(bearer_status(&past, &p.access, "/api/v1/me").await, 200);
    past.stop();

    let server = env.start();
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 401);
    // The family lives 30 days: the refresh token still trades for a pair.
    let (s, body) = refresh(&server, &p.refresh).await;
    assert_eq!(s, 200, "{body}");
    let fresh = pair_of(&body);
    assert_eq!(
        bearer_status(&server, &fresh.access, "/api/v1/me").await,
        200
    );
    server.stop();
}

#[tokio::test]
async fn refresh_rotates_and_reuse_revokes_the_family() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let server = env.start();
    let p1 = sign_in(&server, "ada@example.com", PASSWORD).await;
    let other = sign_in(&server, "ada@example.com", PASSWORD).await;

    let (s, body) = refresh(&server, &p1.refresh).await;
    assert_eq!(s, 200, "{body}");
    assert_pair_shape(&body);
    let p2 = pair_of(&body);
    assert_ne!(p2.refresh, p1.refresh);
    assert_ne!(p2.access, p1.access);
    assert_eq!(
        decode(p2.access.split('.').nth(1).unwrap())["sid"],
        decode(p1.access.split('.').nth(1).unwrap())["sid"],
        "a rotation stays in the family"
    );
    assert_eq!(bearer_status(&server, &p2.access, "/api/v1/me").await, 200);

    let (s, body) = refresh(&server, &p2.refresh).await;
    assert_eq!(s, 200, "the new refresh token works once more: {body}");
    let p3 = pair_of(&body);
    assert_eq!(bearer_status(&server, &p3.access, "/api/v1/me").await, 200);

    // Someone replays the first, already rotated, refresh token.
    let (s, body) = refresh(&server, &p1.refresh).await;
    assert_eq!(s, 401, "{body}");
    assert!(body.get("access_token").is_none());
    // The whole family is dead: the newest refresh token and every access
    // token issued in it.
    assert_eq!(refresh(&server, &p3.refresh).await.0, 401);
    for (what, t) in [("p1", &p1.access), ("p2", &p2.access), ("p3", &p3.access)] {
        assert_eq!(bearer_status(&server, t, "/api/v1/me").await, 401, "{what}");
    }
    // Another sign-in of the same account is another family, untouched.
    assert_eq!(
        bearer_status(&server, &other.access, "/api/v1/me").await,
        200
    );
    assert_eq!(refresh(&server, &other.refresh).await.0, 200);
    assert_eq!(refresh(&server, "no-such-refresh-token").await.0, 401);

    // Two programs racing with one refresh token: one wins, the other counts
    // as a reuse, so the winner's pair dies too.
    let q = sign_in(&server, "ada@example.com", PASSWORD).await;
    let (a, b) = tokio::join!(refresh(&server, &q.refresh), refresh(&server, &q.refresh));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [200, 401], "{a:?} {b:?}");
    let winner = pair_of(if a.0 == 200 { &a.1 } else { &b.1 });
    assert_eq!(
        bearer_status(&server, &winner.access, "/api/v1/me").await,
        401
    );
    assert_eq!(refresh(&server, &winner.refresh).await.0, 401);

    server.stop();
    let db = open_db(&env.data_dir().join("control.db"));
    let reused: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'auth.refresh_reused'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reused, 2);
    let revoked: i64 = db
        .query_row(
            "SELECT count(*) FROM token_families WHERE revoked_reason = 'refresh token reused'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(revoked, 2);
}

#[tokio::test]
async fn logout_with_a_bearer_ends_its_family_only() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let server = env.start();
    let p = sign_in(&server, "ada@example.com", PASSWORD).await;
    let other = sign_in(&server, "ada@example.com", PASSWORD).await;

    let r = bearer(Method::POST, &server, &p.access, "/api/v1/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 401);
    assert_eq!(refresh(&server, &p.refresh).await.0, 401);
    let again = bearer(Method::POST, &server, &p.access, "/api/v1/auth/logout")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 401);

    assert_eq!(
        bearer_status(&server, &other.access, "/api/v1/me").await,
        200
    );
    assert_eq!(refresh(&server, &other.refresh).await.0, 200);
    server.stop();
}

async fn change_password(req: reqwest::RequestBuilder, current: &str, new: &str) -> (u16, Value) {
    let r = req
        .json(&json!({ "current_password": current, "new_password": new }))
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (s, serde_json::from_str(&text).unwrap_or(Value::Null))
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
async fn a_password_change_ends_every_other_sign_in() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let server = env.start();
    let (c1, c2) = (client(&server), client(&server));
    for c in [&c1, &c2] {
        assert_eq!(
            login(c, &server, "ada@example.com", PASSWORD)
                .await
                .status(),
            200
        );
    }
    let p = sign_in(&server, "ada@example.com", PASSWORD).await;
    let url = server.url("/api/v1/me/password");

    // Refusals end nothing.
    let (s, body) = change_password(c1.post(&url), "not my password", NEW_PASSWORD).await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "current_password");
    let (s, body) = change_password(c1.post(&url), PASSWORD, "short").await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "new_password");
    assert_eq!(me_status(&c2, &server).await, 200);
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 200);

    let (s, body) = change_password(c1.post(&url), PASSWORD, NEW_PASSWORD).await;
    assert_eq!(s, 204, "{body}");
    assert_eq!(
        me_status(&c1, &server).await,
        200,
        "the changing session stays"
    );
    assert_eq!(me_status(&c2, &server).await, 401);
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 401);
    assert_eq!(refresh(&server, &p.refresh).await.0, 401);
    assert_eq!(
        token_request(&server, "ada@example.com", PASSWORD)
            .await
            .status(),
        401
    );
    let q = sign_in(&server, "ada@example.com", NEW_PASSWORD).await;
    let q2 = sign_in(&server, "ada@example.com", NEW_PASSWORD).await;

    // Changed with an access JWT: its own family stays, all else ends.
    let req = bearer(Method::POST, &server, &q.access, "/api/v1/me/password");
    let (s, body) = change_password(req, NEW_PASSWORD, PASSWORD).await;
    assert_eq!(s, 204, "{body}");
    assert_eq!(bearer_status(&server, &q.access, "/api/v1/me").await, 200);
    assert_eq!(refresh(&server, &q.refresh).await.0, 200);
    assert_eq!(bearer_status(&server, &q2.access, "/api/v1/me").await, 401);
    assert_eq!(me_status(&c1, &server).await, 401);
    assert_eq!(
        login(&c2, &server, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    server.stop();
}

#[tokio::test]
async fn a_disabled_account_loses_every_credential_until_enabled() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Engines", "ada@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let p = sign_in(&server, "ada@example.com", PASSWORD).await;
    let r = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/tokens")))
        .json(&json!({ "name": "laptop", "scope": "member" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let secret = r.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let ws_route = format!("/api/v1/workspaces/{ws}/collections");
    assert_eq!(bearer_status(&server, &secret, &ws_route).await, 200);
    // Both bearers were just checked (and cached), and the change below comes
    // from another process: the control.db cache must still see it.
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 200);

    let out = env.cli(&["user", "disable", "--email", "ada@example.com"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(me_status(&c, &server).await, 401, "browser session");
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 401);
    assert_eq!(bearer_status(&server, &secret, &ws_route).await, 401);
    assert_eq!(refresh(&server, &p.refresh).await.0, 401);
    assert_eq!(
        login(&c, &server, "ada@example.com", PASSWORD)
            .await
            .status(),
        401
    );
    assert_eq!(
        token_request(&server, "ada@example.com", PASSWORD)
            .await
            .status(),
        401
    );

    let out = env.cli(&["user", "enable", "--email", "ada@example.com"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Ended sign-ins stay ended; the account signs in afresh.
    assert_eq!(me_status(&c, &server).await, 401);
    assert_eq!(bearer_status(&server, &p.access, "/api/v1/me").await, 401);
    assert_eq!(refresh(&server, &p.refresh).await.0, 401);
    assert_eq!(
        login(&c, &server, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(me_status(&c, &server).await, 200);
    let fresh = sign_in(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(
        bearer_status(&server, &fresh.access, "/api/v1/me").await,
        200
    );
    // Disabling revoked the account's own API token for good (finding 8 of
    // the outside review): enabling the account brings it not back.
    assert_eq!(bearer_status(&server, &secret, &ws_route).await, 401);
    server.stop();

    let db = open_db(&env.data_dir().join("control.db"));
    let sid = decode(p.access.split('.').nth(1).unwrap())["sid"]
        .as_str()
        .unwrap()
        .to_owned();
    let reason: String = db
        .query_row(
            "SELECT revoked_reason FROM token_families WHERE id = ?1",
            [sid],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(reason, "account disabled");
}
