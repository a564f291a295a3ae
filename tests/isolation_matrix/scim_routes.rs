//! The SCIM matrix: every route of `src/web/scim/mod.rs` (a route missing
//! from the table below fails the test) tried by every caller of the main
//! matrix (sessions of each role, a platform admin, API tokens of A and B, a
//! revoked token, an expired JWT, anonymous), by workspace B's SCIM token,
//! by A's rotated-away SCIM token and by a made-up one: each gets 401 with
//! exactly the made-up token's SCIM error and nothing of A in it. Only A's
//! SCIM token gets through. B's SCIM token on B's own routes naming A's
//! people or teams gets the same 404 as ids that exist nowhere.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::{Reply, Role, Run, Who, rand_hex, send, world};

/// The method, the path under `/scim/v2/workspaces/{ws}`, the body, and
/// what A's own SCIM token gets.
struct ScimRoute {
    method: &'static str,
    path: &'static str,
    body: Option<Value>,
    ok: u16,
}

fn route(method: &'static str, path: &'static str, body: Option<Value>, ok: u16) -> ScimRoute {
    ScimRoute {
        method,
        path,
        body,
        ok,
    }
}

/// `{user}`: A's owner; `{fresh_user}` and `{fresh_team}`: made by A's SCIM
/// token for the deletions; `{team}`: A's shared team.
fn table() -> Vec<ScimRoute> {
    vec![
        route("GET", "/Users", None, 200),
        route(
            "POST",
            "/Users",
            Some(json!({"userName": "scim-matrix-{unique}@example.com"})),
            201,
        ),
        route("GET", "/Users/{user}", None, 200),
        route(
            "PUT",
            "/Users/{user}",
            Some(json!({"externalId": "matrix"})),
            200,
        ),
        route(
            "PATCH",
            "/Users/{user}",
            Some(json!({"Operations": [{"op": "replace", "path": "externalId", "value": "m"}]})),
            200,
        ),
        route("DELETE", "/Users/{fresh_user}", None, 204),
        route("GET", "/Groups", None, 200),
        route(
            "POST",
            "/Groups",
            Some(json!({"displayName": "SCIM matrix"})),
            201,
        ),
        route("GET", "/Groups/{team}", None, 200),
        route(
            "PUT",
            "/Groups/{team}",
            Some(json!({"displayName": "Matrix team"})),
            200,
        ),
        route(
            "PATCH",
            "/Groups/{team}",
            Some(
                json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": "{user}"}]}]}),
            ),
            200,
        ),
        route("DELETE", "/Groups/{fresh_team}", None, 204),
        route("GET", "/ServiceProviderConfig", None, 200),
        route("GET", "/ResourceTypes", None, 200),
        route("GET", "/ResourceTypes/User", None, 200),
        route("GET", "/Schemas", None, 200),
        route(
            "GET",
            "/Schemas/urn:ietf:params:scim:schemas:core:2.0:User",
            None,
            200,
        ),
    ]
}

/// The route patterns of `src/web/scim/mod.rs` (`format!("{ws}/Users/:id")`).
fn declared() -> BTreeSet<String> {
    include_str!("../../src/web/scim/mod.rs")
        .split("format!(\"{ws}")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(str::to_owned)
        .collect()
}

fn pattern(path: &str) -> String {
    path.split('/')
        .map(|seg| match seg {
            "{user}" | "{fresh_user}" | "{team}" | "{fresh_team}" | "User" => ":id",
            s if s.starts_with("urn:") => ":id",
            s => s,
        })
        .collect::<Vec<_>>()
        .join("/")
}

async fn call(
    c: &reqwest::Client,
    url: &str,
    method: &str,
    body: Option<&str>,
    bearer: Option<&str>,
) -> Reply {
    let mut req = c.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), url);
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/scim+json")
            .body(b.to_owned());
    }
    send(req).await
}

async fn issue(run: &Run, who: Who, ws: &str) -> String {
    let c = &run.caller(who).client;
    let r = send(
        c.post(
            run.server
                .url(&format!("/api/v1/workspaces/{ws}/scim/token")),
        ),
    )
    .await;
    assert_eq!(r.status, 201, "SCIM token: {}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    v["secret"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn scim_routes_take_only_their_own_workspaces_scim_token() {
    let run = world().await;
    let mut failures = Vec::new();
    let table = table();
    let in_table: BTreeSet<String> = table.iter().map(|r| pattern(r.path)).collect();
    let declared = declared();
    for missing in declared.difference(&in_table) {
        failures.push(format!(
            "SCIM route {missing} has no entry in scim_routes::table()"
        ));
    }
    for stale in in_table.difference(&declared) {
        failures.push(format!(
            "scim_routes::table() has {stale}, which src/web/scim/mod.rs does not declare"
        ));
    }
    let (a, b) = (&run.a, &run.b);
    let rotated_away = issue(&run, Who::A(Role::Owner), &a.id).await;
    let a_token = issue(&run, Who::A(Role::Owner), &a.id).await;
    let b_token = issue(&run, Who::OtherAdmin, &b.id).await;
    let plain = reqwest::Client::new();
    let base = |ws: &str| run.server.url(&format!("/scim/v2/workspaces/{ws}"));

    for r in &table {
        // The objects a deletion removes are made anew for each route.
        let mut path = r
            .path
            .replace("{user}", &a.owner_id)
            .replace("{team}", &a.shared.team);
        if path.contains("{fresh_user}") {
            let body =
                json!({"userName": format!("scim-fresh-{}@example.com", rand_hex())}).to_string();
            let made = call(
                &plain,
                &format!("{}/Users", base(&a.id)),
                "POST",
                Some(&body),
                Some(&a_token),
            )
            .await;
            assert_eq!(made.status, 201, "{}", made.body);
            let v: Value = serde_json::from_str(&made.body).unwrap();
            path = path.replace("{fresh_user}", v["id"].as_str().unwrap());
        }
        if path.contains("{fresh_team}") {
            let body = json!({"displayName": "SCIM matrix fresh"}).to_string();
            let made = call(
                &plain,
                &format!("{}/Groups", base(&a.id)),
                "POST",
                Some(&body),
                Some(&a_token),
            )
            .await;
            assert_eq!(made.status, 201, "{}", made.body);
            let v: Value = serde_json::from_str(&made.body).unwrap();
            path = path.replace("{fresh_team}", v["id"].as_str().unwrap());
        }
        let body = r.body.as_ref().map(|b| {
            b.to_string()
                .replace("{unique}", &rand_hex())
                .replace("{user}", &a.owner_id)
        });
        let url = format!("{}{path}", base(&a.id));
        let label = format!("SCIM {} {}", r.method, r.path);
        let made_up = call(
            &plain,
            &url,
            r.method,
            body.as_deref(),
            Some("aura_scim_made-up"),
        )
        .await;
        if made_up.status != 401
            || !made_up
                .body
                .contains("urn:ietf:params:scim:api:messages:2.0:Error")
        {
            failures.push(format!(
                "{label}: a made-up token got {} {}",
                made_up.status, made_up.body
            ));
        }
        // Every caller of the main matrix, with its own credential (cookie
        // or bearer), and the other SCIM tokens.
        let mut others: Vec<(String, Reply)> = Vec::new();
        for c in &run.callers {
            let reply = call(&c.client, &url, r.method, body.as_deref(), None).await;
            others.push((format!("{:?}", c.who), reply));
        }
        for (who, token) in [
            ("B's SCIM token", &b_token),
            ("A's rotated-away SCIM token", &rotated_away),
        ] {
            let reply = call(&plain, &url, r.method, body.as_deref(), Some(token)).await;
            others.push((who.to_owned(), reply));
        }
        for (who, reply) in &others {
            if reply.status != 401 || reply.body != made_up.body {
                failures.push(format!(
                    "{label}: {who} got {} {} (a made-up token: {})",
                    reply.status, reply.body, made_up.body
                ));
            }
            for needle in a.data.iter().chain(&a.meta) {
                if reply.body.contains(needle.as_str()) {
                    failures.push(format!("{label}: {who}'s answer carries A's {needle}"));
                }
            }
        }
        let own = call(&plain, &url, r.method, body.as_deref(), Some(&a_token)).await;
        if own.status != r.ok {
            failures.push(format!(
                "{label}: A's SCIM token got {} {}",
                own.status, own.body
            ));
        }
        for needle in b.data.iter().chain(&b.meta) {
            if own.body.contains(needle.as_str()) {
                failures.push(format!("{label}: A's SCIM token saw B's {needle}"));
            }
        }
    }

    // B's SCIM token on B's routes, naming A's people and teams: the same 404
    // as ids that exist nowhere.
    let nowhere = "01900000-0000-7000-8000-000000000000";
    for (kind, a_id) in [("Users", &a.owner_id), ("Groups", &a.shared.team)] {
        for method in ["GET", "DELETE"] {
            let url = |id: &str| format!("{}/{kind}/{id}", base(&b.id));
            let theirs = call(&plain, &url(a_id), method, None, Some(&b_token)).await;
            let none = call(&plain, &url(nowhere), method, None, Some(&b_token)).await;
            if theirs.status != 404 || (theirs.status, &theirs.body) != (none.status, &none.body) {
                failures.push(format!(
                    "B's SCIM token, {method} {kind}/<A's id>: {} {} (an unknown id: {} {})",
                    theirs.status, theirs.body, none.status, none.body
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    run.server.stop();
}
