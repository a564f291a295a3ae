//! SCIM 2.0 provisioning against the real server over HTTP (issue 22): the
//! workspace's SCIM token (issued once, rotated, revoked; accepted by its own
//! workspace's SCIM routes only), users created, found by `userName eq`,
//! paged, deactivated (the person's session and API token stop working in
//! the workspace on their very next request), reactivated and deleted,
//! groups as teams, SCIM errors, and owners kept (owners are managed in Aura).

mod common;
#[path = "scim/frozen.rs"]
mod frozen;
#[path = "scim/groups.rs"]
mod groups;
#[path = "scim/page.rs"]
mod page;

use common::mfa::signed_in;
use common::{Env, Server, bearer, send};
use reqwest::Method;
use serde_json::{Value, json};

pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// A SCIM call with `token`: status, JSON body, content type.
pub async fn scim(
    server: &Server,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, String) {
    let mut req = bearer(method, server, token, path);
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_string());
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::Null),
        ct,
    )
}

/// Issues the workspace's SCIM token as `owner`: the secret.
pub async fn issue(server: &Server, owner: &reqwest::Client, ws: &str) -> String {
    let (s, v) = send(owner.post(server.url(&format!("/api/v1/workspaces/{ws}/scim/token")))).await;
    assert_eq!(s, 201, "{v}");
    v["secret"].as_str().unwrap().to_owned()
}

/// The actions of the workspace's audit entries starting with `prefix`,
/// newest first, with their actor types.
pub async fn audited(
    server: &Server,
    owner: &reqwest::Client,
    ws: &str,
    prefix: &str,
) -> Vec<(String, String, Value)> {
    let (s, v) = send(owner.get(server.url(&format!(
        "/api/v1/workspaces/{ws}/audit?action={prefix}&limit=200"
    ))))
    .await;
    assert_eq!(s, 200, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["actor_type"].as_str().unwrap().to_owned(),
                json!({ "before": e["before"], "after": e["after"] }),
            )
        })
        .collect()
}

pub fn assert_scim_error(status: u16, v: &Value, ct: &str, want: u16, scim_type: Option<&str>) {
    assert_eq!(status, want, "{v}");
    assert!(ct.starts_with("application/scim+json"), "{ct}");
    assert_eq!(v["schemas"], json!([ERROR]), "{v}");
    assert_eq!(v["status"], json!(want.to_string()), "{v}");
    assert!(v["detail"].as_str().is_some_and(|d| !d.is_empty()), "{v}");
    if let Some(t) = scim_type {
        assert_eq!(v["scimType"], json!(t), "{v}");
    }
}

pub fn users(ws: &str) -> String {
    format!("/scim/v2/workspaces/{ws}/Users")
}

#[tokio::test]
async fn the_scim_token_is_shown_once_works_only_on_its_own_scim_routes_and_rotates() {
    let env = Env::new();
    env.create_user("owner@a.example.com", "Owner A");
    env.create_user("member@a.example.com", "Member A");
    env.create_user("owner@b.example.com", "Owner B");
    let a = env.create_workspace("Alpha", "owner@a.example.com");
    let b = env.create_workspace("Beta", "owner@b.example.com");
    env.add_member(&a, "member@a.example.com", "member");
    let server = env.start();
    let owner = signed_in(&server, "owner@a.example.com").await;
    let member = signed_in(&server, "member@a.example.com").await;
    let token_url = server.url(&format!("/api/v1/workspaces/{a}/scim/token"));

    // Nothing yet; a member may neither see nor issue one.
    let (s, v) = send(owner.get(&token_url)).await;
    assert_eq!((s, &v["exists"]), (200, &json!(false)), "{v}");
    assert!(
        v["base_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/scim/v2/workspaces/{a}"))
    );
    assert_eq!(send(member.post(&token_url)).await.0, 403);
    assert_eq!(send(member.get(&token_url)).await.0, 403);

    let secret = issue(&server, &owner, &a).await;
    assert!(secret.starts_with("aura_scim_"), "{secret}");
    let (s, v) = send(owner.get(&token_url)).await;
    assert_eq!((s, &v["exists"]), (200, &json!(true)), "{v}");
    assert!(
        !v.to_string().contains(&secret),
        "the secret is shown once only"
    );

    let (s, v, ct) = scim(&server, &secret, Method::GET, &users(&a), None).await;
    assert_eq!(s, 200, "{v}");
    assert!(ct.starts_with("application/scim+json"), "{ct}");
    assert_eq!(v["totalResults"], 2, "both people of A: {v}");
    let (s, v) = send(owner.get(&token_url)).await;
    assert!(v["last_used_at"].is_string(), "{s} {v}");

    // The SCIM token is no credential for the API or the UI.
    for path in [
        format!("/api/v1/workspaces/{a}/members"),
        format!("/api/v1/workspaces/{a}/scim/token"),
        "/api/v1/me".to_owned(),
    ] {
        let s = common::bearer_status(&server, &secret, &path).await;
        assert_eq!(s, 401, "{path}");
    }
    let r = bearer(Method::GET, &server, &secret, &format!("/w/{a}/members"))
        .send()
        .await
        .unwrap();
    assert!(
        r.url().path() == "/login" || r.status().as_u16() == 401 || r.status().as_u16() == 303,
        "the UI refuses it: {} {}",
        r.status(),
        r.url()
    );

    // Sessions, API tokens, access JWTs and B's SCIM token are refused on
    // A's SCIM routes exactly like a made-up token.
    let made_up = scim(&server, "aura_scim_made-up", Method::GET, &users(&a), None).await;
    assert_scim_error(made_up.0, &made_up.1, &made_up.2, 401, None);
    let (s, v) = send(owner.get(server.url(&users(&a)))).await;
    assert_eq!(s, 401, "a session cookie: {v}");
    assert_eq!(v["schemas"], json!([ERROR]), "{v}");
    let (s, api) = send(
        owner
            .post(server.url(&format!("/api/v1/workspaces/{a}/tokens")))
            .json(&json!({"name": "An API token", "scope": "owner"})),
    )
    .await;
    assert_eq!(s, 201, "{api}");
    let api_secret = api["secret"].as_str().unwrap();
    let owner_b = signed_in(&server, "owner@b.example.com").await;
    let b_secret = issue(&server, &owner_b, &b).await;
    let jwt: Value = common::token_request(&server, "owner@a.example.com", common::PASSWORD)
        .await
        .json()
        .await
        .unwrap();
    for (label, cred) in [
        ("API token", api_secret),
        ("access JWT", jwt["access_token"].as_str().unwrap()),
        ("B's SCIM token", b_secret.as_str()),
    ] {
        let (s, v, ct) = scim(&server, cred, Method::GET, &users(&a), None).await;
        assert_scim_error(s, &v, &ct, 401, None);
        assert_eq!(v, made_up.1, "{label} answers like a made-up token");
    }
    // B's token still works on B.
    assert_eq!(
        scim(&server, &b_secret, Method::GET, &users(&b), None)
            .await
            .0,
        200
    );

    // Rotation: the old token stops at once, the new one works.
    let rotated = issue(&server, &owner, &a).await;
    assert_ne!(rotated, secret);
    assert_eq!(
        scim(&server, &secret, Method::GET, &users(&a), None)
            .await
            .0,
        401
    );
    assert_eq!(
        scim(&server, &rotated, Method::GET, &users(&a), None)
            .await
            .0,
        200
    );
    // Revocation.
    assert_eq!(send(owner.delete(&token_url)).await.0, 204);
    assert_eq!(
        scim(&server, &rotated, Method::GET, &users(&a), None)
            .await
            .0,
        401
    );
    assert_eq!(
        send(owner.delete(&token_url)).await.0,
        404,
        "nothing left to revoke"
    );

    let entries = audited(&server, &owner, &a, "scim.token*").await;
    let actions: Vec<&str> = entries.iter().map(|(a, ..)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "scim.token_revoked",
            "scim.token_issued",
            "scim.token_issued"
        ],
        "{entries:?}"
    );
    // The rotation names the token it replaced.
    assert!(entries[1].2["before"]["token"].is_string(), "{entries:?}");
    server.stop();
}

#[tokio::test]
async fn users_are_created_found_by_username_and_paged_and_bad_input_writes_nothing() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let existing = env.create_user("existing@example.com", "Existing");
    let ws = env.create_workspace("Provisioned", "owner@example.com");
    let server = env.start();
    let owner = signed_in(&server, "owner@example.com").await;
    let token = issue(&server, &owner, &ws).await;
    let members =
        |c: &reqwest::Client| c.get(server.url(&format!("/api/v1/workspaces/{ws}/members")));

    // A new person: an account is made, a member with the role `member`.
    let (s, new, ct) = scim(
        &server,
        &token,
        Method::POST,
        &users(&ws),
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "Nadia.New@Example.com",
            "externalId": "entra-0001",
            "name": {"givenName": "Nadia", "familyName": "New"},
            "active": true,
        })),
    )
    .await;
    assert_eq!(s, 201, "{new}");
    assert!(ct.starts_with("application/scim+json"));
    assert_eq!(new["active"], true);
    assert_eq!(new["externalId"], "entra-0001");
    assert_eq!(new["displayName"], "Nadia New");
    let nadia = new["id"].as_str().unwrap().to_owned();
    assert!(
        new["meta"]["location"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/Users/{nadia}"))
    );
    let (_, list) = send(members(&owner)).await;
    let roles: Vec<(String, String)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["user_id"].as_str().unwrap().to_owned(),
                m["role"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(roles.contains(&(nadia.clone(), "member".into())), "{list}");

    // An account that exists is added, with `application/json` too.
    let r = bearer(Method::POST, &server, &token, &users(&ws))
        .json(&json!({"userName": "existing@example.com"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let linked: Value = r.json().await.unwrap();
    assert_eq!(
        linked["id"],
        json!(existing),
        "the account's id is the SCIM id"
    );

    // The same person again: 409 uniqueness, nothing written.
    let (s, v, ct) = scim(
        &server,
        &token,
        Method::POST,
        &users(&ws),
        Some(json!({"userName": "nadia.new@example.com"})),
    )
    .await;
    assert_scim_error(s, &v, &ct, 409, Some("uniqueness"));

    // Filters: userName (any case), no match, a bad filter.
    let find = |f: &str| format!("{}?filter={}", users(&ws), urlencode(f));
    let (s, v, _) = scim(
        &server,
        &token,
        Method::GET,
        &find(r#"userName eq "NADIA.new@example.com""#),
        None,
    )
    .await;
    assert_eq!((s, &v["totalResults"]), (200, &json!(1)), "{v}");
    assert_eq!(v["Resources"][0]["id"], json!(nadia));
    assert_eq!(
        v["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:ListResponse"])
    );
    let (_, v, _) = scim(
        &server,
        &token,
        Method::GET,
        &find(r#"userName eq "nobody@example.com""#),
        None,
    )
    .await;
    assert_eq!(
        (&v["totalResults"], &v["Resources"]),
        (&json!(0), &json!([])),
        "{v}"
    );
    for bad in [
        r#"userName co "nadia""#,
        "userName eq nadia",
        r#"title eq "x""#,
        r#"userName eq "a" or userName eq "b""#,
    ] {
        let (s, v, ct) = scim(&server, &token, Method::GET, &find(bad), None).await;
        assert_scim_error(s, &v, &ct, 400, Some("invalidFilter"));
    }

    // Pages (RFC 7644 §3.4.2.4): three people, one per page.
    let page = |start: i64, count: i64| format!("{}?startIndex={start}&count={count}", users(&ws));
    let mut seen = Vec::new();
    for start in 1..=3 {
        let (s, v, _) = scim(&server, &token, Method::GET, &page(start, 1), None).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(
            (&v["totalResults"], &v["itemsPerPage"], &v["startIndex"]),
            (&json!(3), &json!(1), &json!(start)),
            "{v}"
        );
        seen.push(v["Resources"][0]["id"].as_str().unwrap().to_owned());
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "each page a different person");
    let (_, v, _) = scim(&server, &token, Method::GET, &page(4, 10), None).await;
    assert_eq!(
        (&v["totalResults"], &v["itemsPerPage"]),
        (&json!(3), &json!(0)),
        "{v}"
    );
    let (_, v, _) = scim(&server, &token, Method::GET, &page(0, 0), None).await;
    assert_eq!(
        (&v["startIndex"], &v["itemsPerPage"]),
        (&json!(1), &json!(0)),
        "{v}"
    );

    // Bad input: a SCIM error naming the problem, and nothing written.
    let before = send(members(&owner)).await.1;
    let (s, v, ct) = scim(
        &server,
        &token,
        Method::POST,
        &users(&ws),
        Some(json!({"userName": "not an address"})),
    )
    .await;
    assert_scim_error(s, &v, &ct, 400, Some("invalidValue"));
    assert!(v["detail"].as_str().unwrap().contains("userName"), "{v}");
    let (s, v, ct) = scim(
        &server,
        &token,
        Method::POST,
        &users(&ws),
        Some(json!({"externalId": "x"})),
    )
    .await;
    assert_scim_error(s, &v, &ct, 400, Some("invalidValue"));
    let r = bearer(Method::POST, &server, &token, &users(&ws))
        .header("content-type", "application/scim+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let st = r.status().as_u16();
    let ct = r.headers()["content-type"].to_str().unwrap().to_owned();
    let v: Value = r.json().await.unwrap();
    assert_scim_error(st, &v, &ct, 400, Some("invalidSyntax"));
    let r = bearer(Method::POST, &server, &token, &users(&ws))
        .header("content-type", "text/plain")
        .body(json!({"userName": "plain@example.com"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    let patch = format!("{}/{nadia}", users(&ws));
    let (s, v, ct) = scim(
        &server,
        &token,
        Method::PATCH,
        &patch,
        Some(json!({"Operations": [{"op": "replace", "path": "active", "value": "maybe"}]})),
    )
    .await;
    assert_scim_error(s, &v, &ct, 400, Some("invalidValue"));
    let (s, v, ct) = scim(&server, &token, Method::PATCH, &patch, Some(json!({"Operations": [{"op": "replace", "path": "userName", "value": "other@example.com"}]}))).await;
    assert_scim_error(s, &v, &ct, 400, Some("invalidValue"));
    let (s, v, ct) = scim(
        &server,
        &token,
        Method::GET,
        &format!("{}/not-an-id", users(&ws)),
        None,
    )
    .await;
    assert_scim_error(s, &v, &ct, 404, None);
    let (s, v, ct) = scim(
        &server,
        &token,
        Method::GET,
        &format!("/scim/v2/workspaces/{ws}/Nothing"),
        None,
    )
    .await;
    assert_scim_error(s, &v, &ct, 404, None);
    assert_eq!(
        send(members(&owner)).await.1,
        before,
        "refused requests wrote nothing"
    );

    // Discovery.
    for d in ["ServiceProviderConfig", "ResourceTypes", "Schemas"] {
        let (s, v, ct) = scim(
            &server,
            &token,
            Method::GET,
            &format!("/scim/v2/workspaces/{ws}/{d}"),
            None,
        )
        .await;
        assert_eq!(s, 200, "{d}: {v}");
        assert!(ct.starts_with("application/scim+json"));
    }
    let provisioned = audited(&server, &owner, &ws, "scim.user_provisioned").await;
    assert_eq!(provisioned.len(), 2, "{provisioned:?}");
    assert!(
        provisioned.iter().all(|(_, actor, _)| actor == "scim"),
        "{provisioned:?}"
    );
    assert_eq!(
        provisioned[1].2["after"]["account"], "created",
        "{provisioned:?}"
    );
    assert_eq!(
        provisioned[0].2["after"]["account"], "linked",
        "{provisioned:?}"
    );
    server.stop();
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn deactivation_ends_access_on_the_next_request_and_reactivation_restores_it() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let bob = env.create_user("bob@example.com", "Bob");
    let ws = env.create_workspace("Leavers", "owner@example.com");
    env.add_member(&ws, "bob@example.com", "admin");
    let server = env.start();
    let owner = signed_in(&server, "owner@example.com").await;
    let bob_session = signed_in(&server, "bob@example.com").await;
    let token = issue(&server, &owner, &ws).await;
    let (s, api) = send(
        bob_session
            .post(server.url(&format!("/api/v1/workspaces/{ws}/tokens")))
            .json(&json!({"name": "Bob's script", "scope": "viewer"})),
    )
    .await;
    assert_eq!(s, 201, "{api}");
    let bob_api = api["secret"].as_str().unwrap().to_owned();
    let (s, team) = send(
        owner
            .post(server.url(&format!("/api/v1/workspaces/{ws}/teams")))
            .json(&json!({"name": "Ops"})),
    )
    .await;
    assert_eq!(s, 201, "{team}");
    let team = team["id"].as_str().unwrap().to_owned();
    let put = owner
        .put(server.url(&format!(
            "/api/v1/workspaces/{ws}/teams/{team}/members/{bob}"
        )))
        .json(&json!({"role": "member"}));
    assert_eq!(send(put).await.0, 204);
    let collections = format!("/api/v1/workspaces/{ws}/collections");
    assert_eq!(send(bob_session.get(server.url(&collections))).await.0, 200);
    assert_eq!(
        common::bearer_status(&server, &bob_api, &collections).await,
        200
    );

    // Entra ID's form.
    let me = format!("{}/{bob}", users(&ws));
    let (s, v, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &me,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        })),
    )
    .await;
    assert_eq!((s, &v["active"]), (200, &json!(false)), "{v}");
    // The very next request of each is refused in the workspace.
    assert_eq!(send(bob_session.get(server.url(&collections))).await.0, 404);
    let r = bob_session
        .get(server.url(&format!("/w/{ws}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "the UI too");
    assert_eq!(
        common::bearer_status(&server, &bob_api, &collections).await,
        401
    );
    // Out of the team, still listed (inactive) to the provider.
    let (_, teams) = send(owner.get(server.url(&format!("/api/v1/workspaces/{ws}/teams")))).await;
    assert!(!teams.to_string().contains(&bob), "{teams}");
    let (_, v, _) = scim(&server, &token, Method::GET, &me, None).await;
    assert_eq!(v["active"], false, "{v}");
    let entries = audited(&server, &owner, &ws, "scim.user_deactivated").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0].1, "scim");
    assert_eq!(entries[0].2["before"]["active"], true);
    assert_eq!(entries[0].2["before"]["role"], "admin");
    assert_eq!(entries[0].2["after"]["active"], false);

    // Okta's form brings Bob back with the role he held.
    let (s, v, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &me,
        Some(json!({
            "Operations": [{"op": "replace", "value": {"active": true}}],
        })),
    )
    .await;
    assert_eq!((s, &v["active"]), (200, &json!(true)), "{v}");
    assert_eq!(send(bob_session.get(server.url(&collections))).await.0, 200);
    let (_, list) = send(owner.get(server.url(&format!("/api/v1/workspaces/{ws}/members")))).await;
    let role = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == json!(bob))
        .map(|m| m["role"].clone());
    assert_eq!(role, Some(json!("admin")), "{list}");
    assert_eq!(
        common::bearer_status(&server, &bob_api, &collections).await,
        401,
        "revoked tokens stay revoked"
    );
    assert_eq!(
        audited(&server, &owner, &ws, "scim.user_reactivated")
            .await
            .len(),
        1
    );

    // Okta deactivates with the string too; DELETE removes for good.
    let (s, v, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &me,
        Some(json!({
            "Operations": [{"op": "replace", "value": {"active": "False"}}],
        })),
    )
    .await;
    assert_eq!((s, &v["active"]), (200, &json!(false)), "{v}");
    assert_eq!(
        scim(&server, &token, Method::DELETE, &me, None).await.0,
        204
    );
    assert_eq!(scim(&server, &token, Method::GET, &me, None).await.0, 404);
    assert_eq!(send(bob_session.get(server.url(&collections))).await.0, 404);
    assert_eq!(
        audited(&server, &owner, &ws, "scim.user_deleted")
            .await
            .len(),
        1
    );
    server.stop();
}

#[tokio::test]
async fn owners_are_never_removed_through_scim() {
    let env = Env::new();
    let owner_id = env.create_user("owner@example.com", "Owner");
    env.create_user("second@example.com", "Second");
    let ws = env.create_workspace("Kept", "owner@example.com");
    let server = env.start();
    let owner = signed_in(&server, "owner@example.com").await;
    let token = issue(&server, &owner, &ws).await;
    let me = format!("{}/{owner_id}", users(&ws));
    let off = json!({"Operations": [{"op": "replace", "path": "active", "value": false}]});
    let (s, v, ct) = scim(&server, &token, Method::PATCH, &me, Some(off.clone())).await;
    assert_scim_error(s, &v, &ct, 409, None);
    assert!(
        v["detail"].as_str().unwrap().contains("managed in Aura"),
        "{v}"
    );
    let (s, v, ct) = scim(&server, &token, Method::DELETE, &me, None).await;
    assert_scim_error(s, &v, &ct, 409, None);
    let collections = format!("/api/v1/workspaces/{ws}/collections");
    assert_eq!(
        send(owner.get(server.url(&collections))).await.0,
        200,
        "still the owner"
    );
    assert!(
        audited(&server, &owner, &ws, "scim.user*").await.is_empty(),
        "nothing written"
    );
    // Not with a second owner either: an admin may issue a SCIM token, and
    // only owners touch owners.
    env.add_member(&ws, "second@example.com", "owner");
    let (s, v, ct) = scim(&server, &token, Method::PATCH, &me, Some(off)).await;
    assert_scim_error(s, &v, &ct, 409, None);
    assert_eq!(send(owner.get(server.url(&collections))).await.0, 200);
    server.stop();
}
