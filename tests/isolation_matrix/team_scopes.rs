//! The second matrix (finding 1 of the outside review): token scopes x team
//! places x every team-sensitive API route. A request acts with its holder's
//! workspace role, raised to manager where they lead the team, and never
//! above the scope of the API token it came with: a viewer token of a team's
//! lead reads the team's records and changes nothing.
//!
//! Callers: admins who lead the team, are on it, or are not (each with a
//! browser session and personal tokens scoped admin, manager, member and
//! viewer); members in the same three places (sessions); and service
//! accounts with the member role in the three places (tokens scoped member
//! and viewer). Routes: every API route whose path names a collection or a
//! team, plus the collection list; a route of that kind missing from the
//! table fails the test.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use super::common::{self, Env, PASSWORD, Server, client, login};

/// This test's own order of roles, least privileged first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum R {
    Viewer,
    Member,
    Manager,
    Admin,
}

impl R {
    fn as_str(self) -> &'static str {
        match self {
            R::Viewer => "viewer",
            R::Member => "member",
            R::Manager => "manager",
            R::Admin => "admin",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    Lead,
    OnTeam,
    Outside,
}

/// What a route needs.
#[derive(Clone, Copy, Debug)]
enum Need {
    /// Under the team's collection: `ws` of the workspace role (within the
    /// scope) at the route, then `coll` of the role inside the collection.
    Coll { ws: R, coll: R },
    /// A team's members: workspace admins, or the team's lead acting as a
    /// manager.
    TeamMembers,
    /// Deleting the team: workspace admins, who get 409 (it owns a
    /// collection).
    TeamDelete,
    /// The collection list: everyone; the team's collection is listed only
    /// to those on the team.
    List,
}

struct Route {
    method: &'static str,
    path: &'static str,
    need: Need,
    body: Option<Value>,
    csv: Option<&'static str>,
}

fn route(method: &'static str, path: &'static str, need: Need) -> Route {
    Route {
        method,
        path,
        need,
        body: None,
        csv: None,
    }
}

fn coll(ws: R, coll: R) -> Need {
    Need::Coll { ws, coll }
}

fn table() -> Vec<Route> {
    let c = "/workspaces/{workspace}/collections/{collection}";
    let r = "/workspaces/{workspace}/collections/{collection}/records/{record}";
    let leak = |p: &str| -> &'static str { Box::leak(p.to_owned().into_boxed_str()) };
    vec![
        route("GET", "/workspaces/{workspace}/collections", Need::List),
        route("GET", c, coll(R::Viewer, R::Viewer)),
        Route {
            body: Some(json!({"name": "Renamed by the team matrix"})),
            ..route("PATCH", c, coll(R::Viewer, R::Manager))
        },
        route("DELETE", c, coll(R::Admin, R::Admin)),
        route(
            "GET",
            leak(&format!("{c}/export")),
            coll(R::Viewer, R::Viewer),
        ),
        Route {
            csv: Some("Title\nimported by the team matrix\n"),
            ..route(
                "POST",
                leak(&format!("{c}/import")),
                coll(R::Member, R::Member),
            )
        },
        route(
            "GET",
            leak(&format!("{c}/records")),
            coll(R::Viewer, R::Viewer),
        ),
        Route {
            body: Some(json!({"values": {"Title": "made by the team matrix"}})),
            ..route(
                "POST",
                leak(&format!("{c}/records")),
                coll(R::Viewer, R::Member),
            )
        },
        route("GET", r, coll(R::Viewer, R::Viewer)),
        Route {
            body: Some(json!({"values": {"Title": "patched by the team matrix"}})),
            ..route("PATCH", r, coll(R::Viewer, R::Member))
        },
        route("DELETE", r, coll(R::Viewer, R::Manager)),
        route(
            "GET",
            leak(&format!("{r}/history")),
            coll(R::Viewer, R::Viewer),
        ),
        route(
            "POST",
            leak(&format!("{r}/history/{{version}}/restore")),
            coll(R::Viewer, R::Member),
        ),
        route(
            "POST",
            leak(&format!("{r}/undelete")),
            coll(R::Viewer, R::Manager),
        ),
        // Files: the raw body (sent as text), the name in the query.
        Route {
            csv: Some("a file from the team matrix"),
            ..route(
                "POST",
                leak(&format!("{r}/files/{{field}}")),
                coll(R::Viewer, R::Member),
            )
        },
        route(
            "GET",
            leak(&format!("{r}/files/{{field}}/{{file}}")),
            coll(R::Viewer, R::Viewer),
        ),
        route(
            "DELETE",
            leak(&format!("{r}/files/{{field}}/{{file}}")),
            coll(R::Viewer, R::Member),
        ),
        route(
            "DELETE",
            "/workspaces/{workspace}/teams/{team}",
            Need::TeamDelete,
        ),
        Route {
            body: Some(json!({"role": "member"})),
            ..route(
                "PUT",
                "/workspaces/{workspace}/teams/{team}/members/{user}",
                Need::TeamMembers,
            )
        },
        route(
            "DELETE",
            "/workspaces/{workspace}/teams/{team}/members/{user}",
            Need::TeamMembers,
        ),
    ]
}

/// One caller: a holder in a team place, with a session (`scope: None`) or
/// a token of `scope`.
struct Caller {
    label: String,
    ws_role: R,
    place: Place,
    scope: Option<R>,
    client: reqwest::Client,
}

/// The status this caller must get, or `None` for any 2xx.
fn expected(need: Need, c: &Caller) -> Option<u16> {
    let cap = |r: R| c.scope.map_or(r, |s| r.min(s));
    let ws = cap(c.ws_role);
    let in_team = match c.place {
        Place::Outside => None,
        Place::OnTeam => Some(cap(c.ws_role)),
        Place::Lead => Some(cap(c.ws_role.max(R::Manager))),
    };
    match need {
        Need::List => None,
        Need::Coll { ws: at, coll } => {
            if ws < at {
                return Some(403);
            }
            match in_team {
                None => Some(404),
                Some(r) if r >= coll => None,
                Some(_) => Some(403),
            }
        }
        Need::TeamMembers => {
            let lead_manages = c.place == Place::Lead && in_team.is_some_and(|r| r >= R::Manager);
            if ws >= R::Admin || lead_manages {
                None
            } else {
                Some(403)
            }
        }
        Need::TeamDelete => Some(if ws >= R::Admin { 409 } else { 403 }),
    }
}

struct World {
    server: Server,
    owner: reqwest::Client,
    ws: String,
    team: String,
    /// A workspace member put into the team before each try of the team's
    /// member routes.
    target: String,
    callers: Vec<Caller>,
    _env: Env,
}

impl World {
    fn api(&self, p: &str) -> String {
        self.server
            .url(&format!("/api/v1/workspaces/{}{p}", self.ws))
    }

    async fn post(&self, p: &str, body: Value) -> Value {
        let r = self
            .owner
            .post(self.api(p))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert!((200..300).contains(&status), "fixture {p}: {status} {v}");
        v
    }

    /// A new file in the record's `Scan` field (uploaded by the owner).
    async fn file_in(&self, cid: &str, rid: &str) -> String {
        let r = self
            .owner
            .post(self.api(&format!(
                "/collections/{cid}/records/{rid}/files/Scan?name=team.txt"
            )))
            .header("content-type", "text/plain")
            .body("a team fixture file")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "fixture file");
        let v: Value = r.json().await.unwrap();
        v["id"].as_str().unwrap().to_owned()
    }

    async fn place(&self, user: &str, role: &str) {
        let r = self
            .owner
            .put(self.api(&format!("/teams/{}/members/{user}", self.team)))
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "fixture team place for {user}");
    }

    /// A collection owned by the team, with one record (edited once, so it
    /// has a version to restore).
    async fn team_collection(&self) -> (String, String) {
        let c = self
            .post(
                "/collections",
                json!({"name": format!("Team matrix {}", uuid()), "team_id": self.team,
                       "fields": [{"name": "Title", "type": "text"},
                                  {"name": "Scan", "type": "file", "multiple": true}]}),
            )
            .await;
        let cid = c["id"].as_str().unwrap().to_owned();
        let rid = self.edited_record(&cid).await;
        (cid, rid)
    }

    /// A record of `cid`, edited once: version 1 is there to restore.
    async fn edited_record(&self, cid: &str) -> String {
        let rec = self
            .post(
                &format!("/collections/{cid}/records"),
                json!({"values": {"Title": "team fixture"}}),
            )
            .await;
        let rid = rec["id"].as_str().unwrap().to_owned();
        let r = self
            .owner
            .patch(self.api(&format!("/collections/{cid}/records/{rid}")))
            .json(&json!({"values": {"Title": "team fixture, edited"}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "fixture record edit");
        rid
    }

    /// A record of `cid`, deleted (so its deletion can be undone).
    async fn deleted_record(&self, cid: &str) -> String {
        let rec = self
            .post(
                &format!("/collections/{cid}/records"),
                json!({"values": {"Title": "team fixture, deleted"}}),
            )
            .await;
        let rid = rec["id"].as_str().unwrap().to_owned();
        let r = self
            .owner
            .delete(self.api(&format!("/collections/{cid}/records/{rid}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 204, "fixture record deletion");
        rid
    }
}

fn uuid() -> String {
    format!("{:x}", rand::random::<u64>())
}

async fn signed_in(server: &Server, email: &str) -> reqwest::Client {
    let c = client(server);
    assert_eq!(
        login(&c, server, email, PASSWORD).await.status(),
        200,
        "{email}"
    );
    c
}

fn bearer_client(secret: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {secret}").parse().unwrap());
    reqwest::Client::builder()
        .default_headers(headers)
        .build()
        .unwrap()
}

async fn token(server: &Server, c: &reqwest::Client, ws: &str, body: Value) -> String {
    let r = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/tokens")))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 201, "fixture token {body}: {v}");
    v["secret"].as_str().unwrap().to_owned()
}

async fn world() -> World {
    let env = Env::new();
    env.create_user("owner@team.example", "Owner");
    let ws = env.create_workspace("Team matrix", "owner@team.example");
    let places = [
        (Place::Lead, "lead"),
        (Place::OnTeam, "on"),
        (Place::Outside, "out"),
    ];
    let mut people = Vec::new();
    for (ws_role, role) in [(R::Admin, "admin"), (R::Member, "member")] {
        for (place, p) in places {
            let email = format!("{role}-{p}@team.example");
            let id = env.create_user(&email, "Holder");
            env.add_member(&ws, &email, role);
            people.push((ws_role, place, email, id));
        }
    }
    let target = env.create_user("target@team.example", "Target");
    env.add_member(&ws, "target@team.example", "viewer");
    let server = env.start();
    let owner = signed_in(&server, "owner@team.example").await;
    let team: Value = {
        let r = owner
            .post(server.url(&format!("/api/v1/workspaces/{ws}/teams")))
            .json(&json!({"name": "HR"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    };
    let mut w = World {
        server,
        owner,
        ws: ws.clone(),
        team: team["id"].as_str().unwrap().to_owned(),
        target,
        callers: Vec::new(),
        _env: env,
    };
    // The owner makes the fixtures, so is on the team (an owner not on it
    // sees none of its collections).
    let owner_id = common::get_json(&w.owner, w.server.url("/api/v1/me")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    w.place(&owner_id, "member").await;
    let place_role = |p: Place| match p {
        Place::Lead => Some("lead"),
        Place::OnTeam => Some("member"),
        Place::Outside => None,
    };
    // People: a session each; admins also personal tokens of every scope.
    for (ws_role, place, email, id) in &people {
        if let Some(r) = place_role(*place) {
            w.place(id, r).await;
        }
        let session = signed_in(&w.server, email).await;
        if *ws_role == R::Admin {
            for scope in [R::Admin, R::Manager, R::Member, R::Viewer] {
                let secret = token(
                    &w.server,
                    &session,
                    &ws,
                    json!({"name": "team matrix", "scope": scope.as_str()}),
                )
                .await;
                w.callers.push(Caller {
                    label: format!("{email} tok-{}", scope.as_str()),
                    ws_role: *ws_role,
                    place: *place,
                    scope: Some(scope),
                    client: bearer_client(&secret),
                });
            }
        }
        w.callers.push(Caller {
            label: format!("{email} session"),
            ws_role: *ws_role,
            place: *place,
            scope: None,
            client: session,
        });
    }
    // Service accounts with the member role, tokens made by the owner.
    for (place, p) in places {
        let sa = w
            .post(
                "/service-accounts",
                json!({"name": format!("svc {p}"), "role": "member"}),
            )
            .await;
        let sa = sa["id"].as_str().unwrap().to_owned();
        if let Some(r) = place_role(place) {
            w.place(&sa, r).await;
        }
        for scope in [R::Member, R::Viewer] {
            let secret = token(
                &w.server,
                &w.owner,
                &ws,
                json!({"name": "team matrix", "scope": scope.as_str(), "service_account": sa}),
            )
            .await;
            w.callers.push(Caller {
                label: format!("svc-member-{p} tok-{}", scope.as_str()),
                ws_role: R::Member,
                place,
                scope: Some(scope),
                client: bearer_client(&secret),
            });
        }
    }
    w
}

#[tokio::test]
async fn finding1_token_scopes_times_team_roles() {
    let w = world().await;
    let routes = table();

    // Every team-sensitive route of the OpenAPI document is in the table.
    let spec: Value = common::get_json(&w.owner, w.server.url("/api/openapi.json")).await;
    let mut sensitive = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        if path.contains("{collection}") || path.contains("{team}") {
            for m in ops.as_object().unwrap().keys() {
                sensitive.insert(format!("{} {path}", m.to_uppercase()));
            }
        }
    }
    let known: BTreeSet<String> = routes
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    let missing: Vec<_> = sensitive.difference(&known).collect();
    assert!(
        missing.is_empty(),
        "team-sensitive routes missing from the team matrix: {missing:?}"
    );

    let (shared_coll, shared_rec) = w.team_collection().await;
    let shared_file = w.file_in(&shared_coll, &shared_rec).await;
    let mut failures = Vec::new();
    let mut tried = 0;
    for c in &w.callers {
        for r in &routes {
            // Routes that delete get objects of their own, and so do
            // restoring (a record keeps a bounded history) and undeleting.
            let (coll, rec) = match (r.method, r.path.ends_with("{record}")) {
                ("DELETE", _) if r.path.ends_with("{collection}") => w.team_collection().await,
                _ if r.path.ends_with("/restore") => {
                    (shared_coll.clone(), w.edited_record(&shared_coll).await)
                }
                ("DELETE", true) => (
                    shared_coll.clone(),
                    w.post(
                        &format!("/collections/{shared_coll}/records"),
                        json!({"values": {"Title": "to delete"}}),
                    )
                    .await["id"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                ),
                // Undoing a deletion needs a record just deleted.
                _ if r.path.ends_with("/undelete") => {
                    (shared_coll.clone(), w.deleted_record(&shared_coll).await)
                }
                _ => (shared_coll.clone(), shared_rec.clone()),
            };
            if r.path.contains("{user}") {
                w.place(&w.target, "member").await;
            }
            // A deletion removes its file: each attempt gets one.
            let file = match r.method {
                "DELETE" if r.path.ends_with("{file}") => w.file_in(&coll, &rec).await,
                _ => shared_file.clone(),
            };
            let path = r
                .path
                .replace("{workspace}", &w.ws)
                .replace("{collection}", &coll)
                .replace("{record}", &rec)
                .replace("{version}", "1")
                .replace("{team}", &w.team)
                .replace("{user}", &w.target)
                .replace("{field}", "Scan")
                .replace("{file}", &file);
            let mut url = w.server.url(&format!("/api/v1{path}"));
            if r.path.ends_with("/files/{field}") {
                url.push_str("?name=team.txt");
            }
            let mut req = c.client.request(r.method.parse().unwrap(), url);
            if let Some(b) = &r.body {
                req = req.json(b);
            }
            if let Some(csv) = r.csv {
                req = req.header("content-type", "text/csv").body(csv);
            }
            let resp = req.send().await.unwrap();
            let status = resp.status().as_u16();
            let text = resp.text().await.unwrap_or_default();
            tried += 1;
            let want = expected(r.need, c);
            let ok = match want {
                Some(s) => status == s,
                None => (200..300).contains(&status),
            };
            // The list shows the team's collection to those on the team only.
            let listed_right = match r.need {
                Need::List => text.contains(&shared_coll) == (c.place != Place::Outside),
                _ => true,
            };
            if !ok || !listed_right {
                failures.push(format!(
                    "{} ({:?}, scope {:?}) {} {}: got {status}, want {}{}",
                    c.label,
                    c.place,
                    c.scope,
                    r.method,
                    r.path,
                    want.map_or("2xx".to_owned(), |s| s.to_string()),
                    if listed_right {
                        ""
                    } else {
                        " (team collection listing wrong)"
                    }
                ));
            }
        }
    }
    println!(
        "team matrix: {} callers x {} routes = {tried} requests, {} failures",
        w.callers.len(),
        routes.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
