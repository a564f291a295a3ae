//! Who may act in a workspace, end to end: `aura_` API tokens for service
//! accounts and people (stored as hashes, capped by scope, bound to one
//! workspace, revocable), member role changes and removal taking effect on
//! the very next request, the owner rules, and the list of one's own
//! sign-ins with ending one of them.

mod common;

use common::{
    Env, PASSWORD, Server, bearer, bearer_status, client, login, open_db, refresh_request,
    session_token_of, token_request,
};
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn signed_in(server: &Server, email: &str) -> reqwest::Client {
    let c = client(server);
    assert_eq!(login(&c, server, email, PASSWORD).await.status(), 200);
    c
}

/// Creates a token as `c`; returns (id, secret).
async fn new_token(c: &reqwest::Client, url: &str, body: Value) -> (String, String) {
    let (s, t) = send(c.post(url).json(&body)).await;
    assert_eq!(s, 201, "{t}");
    (
        t["id"].as_str().unwrap().to_owned(),
        t["secret"].as_str().unwrap().to_owned(),
    )
}

/// Every file under `dir` that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &[u8]) -> Vec<String> {
    let mut hits = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p)
            .unwrap()
            .windows(needle.len())
            .any(|w| w == needle)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[tokio::test]
async fn api_tokens_act_for_a_service_account_within_their_scope() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    env.create_user("bea@example.com", "Bea");
    let ws_a = env.create_workspace("Alpha", "ada@example.com");
    let ws_b = env.create_workspace("Beta", "ada@example.com");
    env.add_member(&ws_a, "bea@example.com", "admin");
    let server = env.start();
    let ada = signed_in(&server, "ada@example.com").await;
    let bea = signed_in(&server, "bea@example.com").await;
    let a = |p: &str| format!("/api/v1/workspaces/{ws_a}{p}");
    let b = |p: &str| format!("/api/v1/workspaces/{ws_b}{p}");
    let url = |p: String| server.url(&p);

    let (s, coll) = send(ada.post(url(a("/collections"))).json(&json!({
        "name": "Orders",
        "fields": [{"name": "Title", "type": "text", "required": true}]
    })))
    .await;
    assert_eq!(s, 201, "{coll}");
    let records = a(&format!(
        "/collections/{}/records",
        coll["id"].as_str().unwrap()
    ));

    let (s, sa) = send(
        ada.post(url(a("/service-accounts")))
            .json(&json!({ "name": "Importer", "role": "member" })),
    )
    .await;
    assert_eq!(s, 201, "{sa}");
    assert_eq!(sa["role"], "member");
    let sa_id = sa["id"].as_str().unwrap().to_owned();
    let (s, list) = send(ada.get(url(a("/service-accounts")))).await;
    assert_eq!(s, 200);
    assert_eq!(list["items"][0]["id"], sa_id.as_str());
    assert_eq!(list["items"][0]["name"], "Importer");

    let (s, made) = send(ada.post(url(a("/tokens"))).json(&json!({
        "name": "nightly import", "scope": "member", "service_account": sa_id
    })))
    .await;
    assert_eq!(s, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_owned();
    let tok_id = made["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("aura_"), "{secret}");
    assert_eq!(made["holder_id"], sa_id.as_str());
    assert_eq!(made["scope"], "member");
    assert!(made["last_used_at"].is_null());

    // control.db keeps the SHA-256 and nothing on disk holds the secret.
    let hash: Vec<u8> = open_db(&env.data_dir().join("control.db"))
        .query_row(
            "SELECT hash FROM api_tokens WHERE id = ?1",
            [&tok_id],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(hash, Sha256::digest(secret.as_bytes()).to_vec());
    let random_part = &secret["aura_".len()..];
    assert_eq!(
        files_containing(&env.data_dir(), random_part.as_bytes()),
        Vec::<String>::new()
    );

    // The token reads and writes records as a member would.
    assert_eq!(
        bearer_status(&server, &secret, &a("/collections")).await,
        200
    );
    let (s, rec) = send(
        bearer(Method::POST, &server, &secret, &records)
            .json(&json!({ "values": { "Title": "from the importer" } })),
    )
    .await;
    assert_eq!(s, 201, "{rec}");
    let (s, page) = send(bearer(Method::GET, &server, &secret, &records)).await;
    assert_eq!(s, 200);
    assert_eq!(page["items"][0]["id"], rec["id"]);
    // ...but no admin route, and no other workspace.
    assert_eq!(bearer_status(&server, &secret, &a("/tokens")).await, 403);
    let (s, _) = send(
        bearer(Method::POST, &server, &secret, &a("/service-accounts"))
            .json(&json!({ "name": "Sneaky", "role": "viewer" })),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        bearer_status(&server, &secret, &b("/collections")).await,
        404
    );
    let (s, me) = send(bearer(Method::GET, &server, &secret, "/api/v1/me")).await;
    assert_eq!(s, 200);
    assert_eq!(me["id"], sa_id.as_str());
    assert_eq!(me["workspaces"].as_array().unwrap().len(), 1);

    // A person's own token: capped at its scope, bound to its workspace even
    // though its holder owns the other one too.
    let (_, viewer) = new_token(
        &ada,
        &url(a("/tokens")),
        json!({ "name": "read only", "scope": "viewer" }),
    )
    .await;
    assert_eq!(bearer_status(&server, &viewer, &records).await, 200);
    let (s, _) = send(
        bearer(Method::POST, &server, &viewer, &records)
            .json(&json!({ "values": { "Title": "nope" } })),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(
        bearer_status(&server, &viewer, &b("/collections")).await,
        404
    );
    // An API token is not a sign-in: it cannot log out or change a password.
    let (s, _) = send(bearer(
        Method::POST,
        &server,
        &viewer,
        "/api/v1/auth/logout",
    ))
    .await;
    assert_eq!(s, 400);
    let (s, _) = send(
        bearer(Method::POST, &server, &viewer, "/api/v1/me/password")
            .json(&json!({ "current_password": PASSWORD, "new_password": "whatever else" })),
    )
    .await;
    assert_eq!(s, 403);

    // No more than the creator's role.
    let (s, p) = send(
        bea.post(url(a("/tokens")))
            .json(&json!({ "name": "too much", "scope": "owner" })),
    )
    .await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "scope");
    let (s, p) = send(
        bea.post(url(a("/service-accounts")))
            .json(&json!({ "name": "Boss", "role": "owner" })),
    )
    .await;
    assert_eq!(s, 422, "{p}");
    assert_eq!(p["errors"][0]["field"], "role");
    let (bea_tok, bea_secret) = new_token(
        &bea,
        &url(a("/tokens")),
        json!({ "name": "bea admin", "scope": "admin" }),
    )
    .await;

    // The list: last use recorded, secrets never shown.
    let r = ada.get(url(a("/tokens"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    for s in [&secret, &viewer, &bea_secret] {
        assert!(!text.contains(s.as_str()), "the list shows a secret");
    }
    let list: Value = serde_json::from_str(&text).unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|t| t.get("secret").is_none()));
    let find = |id: &str| items.iter().find(|t| t["id"] == id).unwrap().clone();
    let t = find(&tok_id);
    assert!(t["last_used_at"].is_string(), "{t}");
    assert_eq!(t["holder_name"], "Importer");
    assert_eq!(t["name"], "nightly import");
    assert!(find(&bea_tok)["last_used_at"].is_null());

    // Revocation bites on the next request.
    let (s, _) = send(ada.delete(url(a(&format!("/tokens/{tok_id}"))))).await;
    assert_eq!(s, 204);
    assert_eq!(bearer_status(&server, &secret, &records).await, 401);
    let (s, list) = send(ada.get(url(a("/tokens")))).await;
    assert_eq!(s, 200);
    let t = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == tok_id.as_str())
        .unwrap()
        .clone();
    assert!(t["revoked_at"].is_string(), "{t}");
    let (s, _) = send(ada.delete(url(b(&format!("/tokens/{tok_id}"))))).await;
    assert_eq!(s, 404, "a token is revoked only in its own workspace");
    let (s, _) = send(ada.delete(url(a("/tokens/no-such-token")))).await;
    assert_eq!(s, 404);
    assert_eq!(bearer_status(&server, &viewer, &records).await, 200);
    server.stop();

    let db = open_db(&env.data_dir().join("control.db"));
    let used: Option<i64> = db
        .query_row(
            "SELECT last_used_at FROM api_tokens WHERE id = ?1",
            [&tok_id],
            |r| r.get(0),
        )
        .unwrap();
    assert!(used.is_some());
}

async fn put_role(c: &reqwest::Client, server: &Server, ws: &str, user: &str, role: &str) -> u16 {
    let url = server.url(&format!("/api/v1/workspaces/{ws}/members/{user}"));
    send(c.put(url).json(&json!({ "role": role }))).await.0
}

async fn remove(c: &reqwest::Client, server: &Server, ws: &str, user: &str) -> u16 {
    let url = server.url(&format!("/api/v1/workspaces/{ws}/members/{user}"));
    send(c.delete(url)).await.0
}

async fn status(c: &reqwest::Client, server: &Server, path: &str) -> u16 {
    c.get(server.url(path))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn role_changes_and_removal_bite_on_the_next_request() {
    let env = Env::new();
    let ada_id = env.create_user("ada@example.com", "Ada");
    let bea_id = env.create_user("bea@example.com", "Bea");
    let cy_id = env.create_user("cy@example.com", "Cy");
    let dan_id = env.create_user("dan@example.com", "Dan");
    let ws = env.create_workspace("Engines", "ada@example.com");
    env.add_member(&ws, "bea@example.com", "admin");
    env.add_member(&ws, "cy@example.com", "admin");
    env.add_member(&ws, "dan@example.com", "member");
    let server = env.start();
    let ada = signed_in(&server, "ada@example.com").await;
    let bea = signed_in(&server, "bea@example.com").await;
    let cy = signed_in(&server, "cy@example.com").await;
    let dan = signed_in(&server, "dan@example.com").await;
    let tokens = format!("/api/v1/workspaces/{ws}/tokens");
    let colls = format!("/api/v1/workspaces/{ws}/collections");

    // Demote an admin: the next admin request is refused, through the
    // session and through the token the admin made earlier.
    let (_, bea_secret) = new_token(
        &bea,
        &server.url(&tokens),
        json!({ "name": "bea", "scope": "admin" }),
    )
    .await;
    assert_eq!(status(&bea, &server, &tokens).await, 200);
    assert_eq!(bearer_status(&server, &bea_secret, &tokens).await, 200);
    assert_eq!(put_role(&ada, &server, &ws, &bea_id, "viewer").await, 204);
    assert_eq!(status(&bea, &server, &tokens).await, 403);
    assert_eq!(bearer_status(&server, &bea_secret, &tokens).await, 403);
    assert_eq!(bearer_status(&server, &bea_secret, &colls).await, 200);

    // Only an owner touches the owner role.
    assert_eq!(put_role(&cy, &server, &ws, &dan_id, "owner").await, 403);
    assert_eq!(put_role(&cy, &server, &ws, &ada_id, "member").await, 403);
    assert_eq!(remove(&cy, &server, &ws, &ada_id).await, 403);
    // The last owner stays.
    assert_eq!(put_role(&ada, &server, &ws, &ada_id, "admin").await, 409);
    assert_eq!(remove(&ada, &server, &ws, &ada_id).await, 409);
    // Members do not manage members.
    assert_eq!(put_role(&dan, &server, &ws, &cy_id, "viewer").await, 403);

    // Removal: the very next request is 404, as for a stranger.
    assert_eq!(status(&dan, &server, &colls).await, 200);
    assert_eq!(remove(&cy, &server, &ws, &dan_id).await, 204);
    assert_eq!(status(&dan, &server, &colls).await, 404);
    let (_, me) = send(dan.get(server.url("/api/v1/me"))).await;
    assert_eq!(me["workspaces"], json!([]));
    assert_eq!(remove(&cy, &server, &ws, &dan_id).await, 404);

    // Removal also revokes the member's own tokens for the workspace.
    let (_, cy_secret) = new_token(
        &cy,
        &server.url(&tokens),
        json!({ "name": "cy", "scope": "admin" }),
    )
    .await;
    assert_eq!(bearer_status(&server, &cy_secret, &colls).await, 200);
    assert_eq!(remove(&ada, &server, &ws, &cy_id).await, 204);
    assert_eq!(status(&cy, &server, &colls).await, 404);
    assert_eq!(bearer_status(&server, &cy_secret, &colls).await, 401);

    // With a second owner, the first may step down.
    assert_eq!(put_role(&ada, &server, &ws, &bea_id, "owner").await, 204);
    assert_eq!(put_role(&ada, &server, &ws, &ada_id, "admin").await, 204);
    assert_eq!(put_role(&ada, &server, &ws, &bea_id, "admin").await, 403);
    let (s, members) = send(ada.get(server.url(&format!("/api/v1/workspaces/{ws}/members")))).await;
    assert_eq!(s, 200);
    let roles: Vec<(String, String)> = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["email"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut roles = roles;
    roles.sort();
    assert_eq!(
        roles,
        [
            ("ada@example.com".to_owned(), "admin".to_owned()),
            ("bea@example.com".to_owned(), "owner".to_owned()),
        ]
    );
    server.stop();
}

fn public_id(session_token: &str) -> String {
    hex::encode(&Sha256::digest(session_token.as_bytes())[..16])
}

#[tokio::test]
async fn sign_ins_are_listed_and_ended_one_by_one() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    env.create_user("bob@example.com", "Bob");
    let server = env.start();
    let (c1, c2) = (client(&server), client(&server));
    let r1 = login(&c1, &server, "ada@example.com", PASSWORD).await;
    let r2 = login(&c2, &server, "ada@example.com", PASSWORD).await;
    let (s1, s2) = (
        public_id(&session_token_of(&r1)),
        public_id(&session_token_of(&r2)),
    );
    let r = token_request(&server, "ada@example.com", PASSWORD).await;
    let pair: Value = r.json().await.unwrap();
    let access = pair["access_token"].as_str().unwrap().to_owned();
    let refresh = pair["refresh_token"].as_str().unwrap().to_owned();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            access.split('.').nth(1).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let family = claims["sid"].as_str().unwrap().to_owned();

    let summary = |list: &Value| {
        let mut v: Vec<(String, String, bool)> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["id"].as_str().unwrap().to_owned(),
                    s["kind"].as_str().unwrap().to_owned(),
                    s["current"].as_bool().unwrap(),
                )
            })
            .collect();
        v.sort();
        v
    };
    let expect = |current: &str| {
        let mut v = vec![
            (s1.clone(), "browser".to_owned(), current == s1),
            (s2.clone(), "browser".to_owned(), current == s2),
            (family.clone(), "api".to_owned(), current == family),
        ];
        v.sort();
        v
    };
    let (s, list) = send(c1.get(server.url("/api/v1/me/sessions"))).await;
    assert_eq!(s, 200);
    assert_eq!(summary(&list), expect(&s1), "{list}");
    let browser = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == s1.as_str())
        .unwrap();
    assert_eq!(browser["ip"], "127.0.0.1");
    let (s, list) = send(bearer(Method::GET, &server, &access, "/api/v1/me/sessions")).await;
    assert_eq!(s, 200);
    assert_eq!(summary(&list), expect(&family), "{list}");

    // Another account cannot end them.
    let bob = signed_in(&server, "bob@example.com").await;
    let url = |id: &str| server.url(&format!("/api/v1/me/sessions/{id}"));
    assert_eq!(send(bob.delete(url(&s2))).await.0, 404);
    assert_eq!(send(bob.delete(url(&family))).await.0, 404);
    assert_eq!(status(&c2, &server, "/api/v1/me").await, 200);

    // Ending another browser session: its cookie fails at once.
    assert_eq!(send(c1.delete(url(&s2))).await.0, 204);
    assert_eq!(status(&c2, &server, "/api/v1/me").await, 401);
    assert_eq!(status(&c1, &server, "/api/v1/me").await, 200);
    // Ending the API sign-in ends its access and refresh tokens.
    assert_eq!(send(c1.delete(url(&family))).await.0, 204);
    assert_eq!(bearer_status(&server, &access, "/api/v1/me").await, 401);
    assert_eq!(refresh_request(&server, &refresh).await.status(), 401);
    assert_eq!(send(c1.delete(url(&family))).await.0, 404);
    assert_eq!(send(c1.delete(url("no-such-session"))).await.0, 404);

    let (_, list) = send(c1.get(server.url("/api/v1/me/sessions"))).await;
    assert_eq!(
        summary(&list),
        vec![(s1.clone(), "browser".to_owned(), true)]
    );
    server.stop();
}

/// Finding 5 of the outside review: a viewer `aura_` token bound to one
/// workspace listed the account's sessions with their IPs and ended them,
/// and read `/me/passkeys` and `/me/mfa`. Every account-level route (each
/// `/me/...` path of the OpenAPI document, and the account page) answers a
/// workspace token 403; a browser session still manages the account.
#[tokio::test]
async fn finding5_workspace_tokens_get_403_on_account_routes() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Alpha", "ada@example.com");
    let server = env.start();
    let ada = client(&server);
    let r = login(&ada, &server, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let session = session_token_of(&r);
    let url = server.url(&format!("/api/v1/workspaces/{ws}/tokens"));
    let (_, viewer) = new_token(&ada, &url, json!({"name": "ci", "scope": "viewer"})).await;
    let (_, owner) = new_token(&ada, &url, json!({"name": "ops", "scope": "owner"})).await;

    let spec: Value = common::get_json(&ada, server.url("/api/openapi.json")).await;
    let mut tried = 0;
    for (path, ops) in spec["paths"].as_object().unwrap() {
        if !path.starts_with("/me/") {
            continue;
        }
        for method in ops.as_object().unwrap().keys() {
            let filled = path.replace("{id}", &public_id(&session));
            for secret in [&viewer, &owner] {
                let m: Method = method.to_uppercase().parse().unwrap();
                let req = bearer(m.clone(), &server, secret, &format!("/api/v1{filled}"));
                let req = if m == Method::GET || m == Method::DELETE {
                    req
                } else {
                    req.json(&json!({}))
                };
                let (s, body) = send(req).await;
                assert_eq!(s, 403, "{method} {path} with a workspace token: {body}");
                assert_eq!(
                    body["type"], "urn:aura:problem:account-needs-sign-in",
                    "{method} {path}: {body}"
                );
                tried += 1;
            }
        }
    }
    assert!(
        tried >= 2 * 14,
        "the account-level routes were found: {tried}"
    );
    // The account page too (the UI takes bearer credentials as well).
    let r = bearer(Method::GET, &server, &viewer, "/account")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // `/me` itself stays: the token's own view of its account and workspace.
    assert_eq!(bearer_status(&server, &viewer, "/api/v1/me").await, 200);
    // The session the token tried to end is alive, and the person manages
    // the account as before.
    let (s, list) = send(ada.get(server.url("/api/v1/me/sessions"))).await;
    assert_eq!(s, 200, "{list}");
    assert!(list.to_string().contains(&public_id(&session)), "{list}");
    let (s, _) = send(ada.get(server.url("/api/v1/me/mfa"))).await;
    assert_eq!(s, 200);
    // So does an access JWT from /auth/token.
    let (s, t) = {
        let r = token_request(&server, "ada@example.com", PASSWORD).await;
        let s = r.status().as_u16();
        (s, r.json::<Value>().await.unwrap())
    };
    assert_eq!(s, 200, "{t}");
    let jwt = t["access_token"].as_str().unwrap();
    assert_eq!(
        bearer_status(&server, jwt, "/api/v1/me/sessions").await,
        200
    );
}

/// Finding 9 of the outside review: an expiring token minted a
/// never-expiring one. A token made with a token expires no later than the
/// token that made it.
#[tokio::test]
async fn finding9_a_token_mints_no_token_outliving_it() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Alpha", "ada@example.com");
    let server = env.start();
    let ada = signed_in(&server, "ada@example.com").await;
    let url = server.url(&format!("/api/v1/workspaces/{ws}/tokens"));
    let (s, parent) = send(ada.post(&url).json(&json!({
        "name": "short-lived", "scope": "admin", "expires_in_days": 2
    })))
    .await;
    assert_eq!(s, 201, "{parent}");
    let parent_secret = parent["secret"].as_str().unwrap();
    let parent_expiry = parent["expires_at"].as_str().unwrap().to_owned();

    let (s, sa) = send(
        ada.post(server.url(&format!("/api/v1/workspaces/{ws}/service-accounts")))
            .json(&json!({"name": "Bot", "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{sa}");
    let sa_id = sa["id"].as_str().unwrap();
    for (body, what) in [
        (json!({"name": "forever", "scope": "viewer"}), "no expiry"),
        (
            json!({"name": "longer", "scope": "viewer", "expires_in_days": 3650}),
            "a later expiry",
        ),
        (
            json!({"name": "bot forever", "scope": "viewer", "service_account": sa_id}),
            "a service account's token",
        ),
    ] {
        let (s, child) = send(
            bearer(
                Method::POST,
                &server,
                parent_secret,
                &format!("/api/v1/workspaces/{ws}/tokens"),
            )
            .json(&body),
        )
        .await;
        assert_eq!(s, 201, "{what}: {child}");
        assert_eq!(
            child["expires_at"].as_str(),
            Some(parent_expiry.as_str()),
            "{what}: the child ends with its maker: {child}"
        );
        // And the child cannot reach further either.
        let (s, grandchild) = send(
            bearer(
                Method::POST,
                &server,
                child["secret"].as_str().unwrap(),
                &format!("/api/v1/workspaces/{ws}/tokens"),
            )
            .json(&json!({"name": "grandchild", "scope": "viewer"})),
        )
        .await;
        if s == 201 {
            assert_eq!(
                grandchild["expires_at"].as_str(),
                Some(parent_expiry.as_str())
            );
        } else {
            assert_eq!(s, 403, "a viewer token makes no tokens: {grandchild}");
        }
    }
    // An earlier expiry than the maker's is kept.
    let (s, child) = send(
        bearer(
            Method::POST,
            &server,
            parent_secret,
            &format!("/api/v1/workspaces/{ws}/tokens"),
        )
        .json(&json!({"name": "day", "scope": "viewer", "expires_in_days": 1})),
    )
    .await;
    assert_eq!(s, 201, "{child}");
    assert!(
        child["expires_at"].as_str().unwrap() < parent_expiry.as_str(),
        "{child}"
    );
    // A person signed in still makes a token that never expires.
    let (s, t) = send(
        ada.post(&url)
            .json(&json!({"name": "mine", "scope": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{t}");
    assert!(t["expires_at"].is_null(), "{t}");
}

/// Finding 8 of the outside review (the operator's half): `aura user
/// disable` then `enable` revokes the account's own personal API tokens, so
/// tokens an attacker made before stay dead; the workspace's service-account
/// tokens (which the account made) keep working.
#[tokio::test]
async fn finding8_disable_then_enable_revokes_personal_tokens() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    env.create_user("bea@example.com", "Bea");
    let ws = env.create_workspace("Alpha", "ada@example.com");
    env.add_member(&ws, "bea@example.com", "admin");
    let server = env.start();
    let bea = signed_in(&server, "bea@example.com").await;
    let url = server.url(&format!("/api/v1/workspaces/{ws}/tokens"));
    let (_, personal) =
        new_token(&bea, &url, json!({"name": "bea laptop", "scope": "viewer"})).await;
    let (s, sa) = send(
        bea.post(server.url(&format!("/api/v1/workspaces/{ws}/service-accounts")))
            .json(&json!({"name": "Bot", "role": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{sa}");
    let (_, bot) = new_token(
        &bea,
        &url,
        json!({"name": "bot", "scope": "viewer", "service_account": sa["id"]}),
    )
    .await;
    let colls = format!("/api/v1/workspaces/{ws}/collections");
    assert_eq!(bearer_status(&server, &personal, &colls).await, 200);

    let mut said = String::new();
    for cmd in ["disable", "enable"] {
        let out = env.cli(&["user", cmd, "--email", "bea@example.com"], None);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        said.push_str(&String::from_utf8_lossy(&out.stdout));
    }
    assert_eq!(
        bearer_status(&server, &personal, &colls).await,
        401,
        "a personal token made before the account was disabled stays revoked"
    );
    assert_eq!(bearer_status(&server, &bot, &colls).await, 200);
    // The owner sees it revoked in the workspace's token list.
    let ada = signed_in(&server, "ada@example.com").await;
    let (_, list) = send(ada.get(&url)).await;
    let row = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "bea laptop")
        .unwrap()
        .clone();
    assert!(row["revoked_at"].is_string(), "{row}");
    // The operator was told what the disable revoked.
    assert!(said.contains("bea laptop"), "the operator is told: {said}");
    assert!(!said.contains("bot"), "{said}");
}
