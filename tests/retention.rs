//! Retention windows through the real server (issue 25): a file field's
//! window removes its due files (row, sealed bytes, download 404) and keeps
//! the record; a collection's window deletes its due records with their
//! files, beyond undo, and keeps the rest; each run writes one
//! `retention.purged` entry; a bad window answers 422 naming the field and
//! writes nothing; /trust counts the collections with a window; the
//! collection page says what is deleted when; and the start-up sweep
//! removes sealed files no row names (and uploads cut short) while every
//! referenced file survives.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::{Env, PASSWORD, Server, client, login, open_db, send};
use serde_json::{Value, json};

/// The purge runs every second in these tests.
const FAST: &[(&str, &str)] = &[("AURA_FILES__RETENTION_INTERVAL_SECS", "1")];

struct World {
    env: Env,
    server: Server,
    ws: String,
    c: reqwest::Client,
}

impl World {
    async fn start(envs: &[(&str, &str)]) -> World {
        let env = Env::new();
        env.create_user("owner@example.com", "Owner");
        let ws = env.create_workspace("Hotel Ltd", "owner@example.com");
        let server = env.start_with(envs);
        let c = client(&server);
        let r = login(&c, &server, "owner@example.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        World { env, server, ws, c }
    }

    fn url(&self, path: &str) -> String {
        self.server
            .url(&format!("/api/v1/workspaces/{}{path}", self.ws))
    }

    async fn collection(&self, body: Value) -> Value {
        let (s, coll) = send(self.c.post(self.url("/collections")).json(&body)).await;
        assert_eq!(s, 201, "{coll}");
        coll
    }

    async fn record(&self, coll: &str, values: Value) -> String {
        let (s, rec) = send(
            self.c
                .post(self.url(&format!("/collections/{coll}/records")))
                .json(&json!({ "values": values })),
        )
        .await;
        assert_eq!(s, 201, "{rec}");
        rec["id"].as_str().unwrap().to_owned()
    }

    async fn upload(&self, coll: &str, rec: &str, field: &str, body: &[u8]) -> String {
        let (s, f) = send(
            self.c
                .post(self.url(&format!("/collections/{coll}/records/{rec}/files/{field}")))
                .query(&[("name", "photo.png")])
                .header("content-type", "application/octet-stream")
                .body(body.to_vec()),
        )
        .await;
        assert_eq!(s, 201, "{f}");
        f["id"].as_str().unwrap().to_owned()
    }

    fn sealed(&self, file: &str) -> PathBuf {
        self.env
            .data_dir()
            .join("tenants")
            .join(&self.ws)
            .join("files")
            .join(file)
    }

    fn file_rows(&self, file: &str) -> i64 {
        let db = open_db(&self.env.tenant_db(&self.ws));
        db.query_row("SELECT count(*) FROM files WHERE id = ?1", [file], |r| {
            r.get(0)
        })
        .unwrap()
    }

    async fn download_status(&self, coll: &str, rec: &str, field: &str, file: &str) -> u16 {
        self.c
            .get(self.url(&format!(
                "/collections/{coll}/records/{rec}/files/{field}/{file}"
            )))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    async fn purges(&self) -> Vec<Value> {
        let (s, page) = send(
            self.c
                .get(self.url("/audit"))
                .query(&[("action", "retention.purged")]),
        )
        .await;
        assert_eq!(s, 200, "{page}");
        page["items"].as_array().unwrap().clone()
    }

    /// Waits (up to 20 s) for the first purge run's entry.
    async fn first_purge(&self) -> Value {
        for _ in 0..200 {
            if let Some(e) = self.purges().await.into_iter().next() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no retention.purged entry within 20 s");
    }
}

/// A PNG's first bytes, enough for the sniffer.
fn png() -> Vec<u8> {
    let mut b = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    b.extend_from_slice(&[7u8; 300]);
    b
}

fn field_id(coll: &Value, name: &str) -> String {
    coll["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_file_fields_window_removes_due_files_and_keeps_the_record() {
    let w = World::start(FAST).await;
    let coll = w
        .collection(json!({
            "name": "Guests",
            "fields": [
                {"name": "Name", "type": "text"},
                {"name": "Check-out", "type": "date"},
                {"name": "ID photo", "type": "file", "pii": true,
                 "retention": {"field": "Check-out", "days": 30}}
            ]
        }))
        .await;
    let cid = coll["id"].as_str().unwrap();
    let photo = field_id(&coll, "ID photo");
    let check_out = field_id(&coll, "Check-out");
    // Stored by id, answered in the same shape.
    let stored = coll["fields"].as_array().unwrap()[2]["retention"].clone();
    assert_eq!(stored, json!({"field": check_out, "days": 30}));

    let due = w
        .record(cid, json!({"Name": "Ada", "Check-out": "2020-01-01"}))
        .await;
    let later = w
        .record(cid, json!({"Name": "Bo", "Check-out": "2999-01-01"}))
        .await;
    let undated = w.record(cid, json!({"Name": "Cy"})).await;
    let f_due = w.upload(cid, &due, &photo, &png()).await;
    let f_later = w.upload(cid, &later, &photo, &png()).await;
    let f_undated = w.upload(cid, &undated, &photo, &png()).await;

    let entry = w.first_purge().await;
    // The due file is gone: its row, its sealed bytes, its download.
    assert_eq!(w.file_rows(&f_due), 0);
    assert!(!w.sealed(&f_due).exists(), "sealed bytes left on disk");
    assert_eq!(w.download_status(cid, &due, &photo, &f_due).await, 404);
    // The record stays, without the file.
    let (s, rec) = send(w.c.get(w.url(&format!("/collections/{cid}/records/{due}")))).await;
    assert_eq!(s, 200, "{rec}");
    assert!(
        rec["values"].get("ID photo").is_none_or(Value::is_null),
        "{rec}"
    );
    assert_eq!(rec["values"]["Name"], "Ada");
    // A date ahead and an empty date keep their files.
    for (r, f) in [(&later, &f_later), (&undated, &f_undated)] {
        assert_eq!(w.download_status(cid, r, &photo, f).await, 200);
        assert!(w.sealed(f).exists());
    }
    // One entry for the run, naming what went (before) and the counts (after).
    assert_eq!(entry["actor_type"], "system", "{entry}");
    assert_eq!(entry["after"]["files_removed"], 1, "{entry}");
    assert_eq!(entry["after"]["records_deleted"], 0, "{entry}");
    let c0 = &entry["before"]["collections"][0];
    assert_eq!(c0["collection"], cid, "{entry}");
    assert_eq!(c0["files"][0]["record"], due.as_str(), "{entry}");
    assert_eq!(c0["files"][0]["files"], json!([f_due]), "{entry}");
    // Later runs find nothing due and write nothing.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(w.purges().await.len(), 1);
}

#[tokio::test]
async fn a_collection_window_deletes_due_records_with_their_files_beyond_undo() {
    let w = World::start(FAST).await;
    let coll = w
        .collection(json!({
            "name": "Stays",
            "fields": [
                {"name": "Name", "type": "text"},
                {"name": "Left", "type": "datetime"},
                {"name": "Scan", "type": "file"}
            ],
            "retention": {"field": "Left", "days": 30}
        }))
        .await;
    let cid = coll["id"].as_str().unwrap();
    let scan = field_id(&coll, "Scan");
    assert_eq!(coll["retention"]["days"], 30, "{coll}");
    let due = w
        .record(
            cid,
            json!({"Name": "Old guest", "Left": "2020-01-01T10:00:00Z"}),
        )
        .await;
    let kept = w
        .record(
            cid,
            json!({"Name": "New guest", "Left": "2999-01-01T10:00:00Z"}),
        )
        .await;
    let f_due = w.upload(cid, &due, &scan, &png()).await;
    let f_kept = w.upload(cid, &kept, &scan, &png()).await;

    let entry = w.first_purge().await;
    let (s, _) = send(w.c.get(w.url(&format!("/collections/{cid}/records/{due}")))).await;
    assert_eq!(s, 404, "the due record is still there");
    assert_eq!(w.file_rows(&f_due), 0);
    assert!(!w.sealed(&f_due).exists());
    let (s, _) = send(w.c.get(w.url(&format!("/collections/{cid}/records/{kept}")))).await;
    assert_eq!(s, 200);
    assert_eq!(w.download_status(cid, &kept, &scan, &f_kept).await, 200);
    assert_eq!(entry["after"]["records_deleted"], 1, "{entry}");
    let c0 = &entry["before"]["collections"][0];
    assert_eq!(c0["records"][0]["id"], due.as_str(), "{entry}");
    assert_eq!(c0["records"][0]["files"], json!([f_due]), "{entry}");
    // No undo: the values are nowhere to bring back.
    let (s, body) = send(
        w.c.post(w.url(&format!("/collections/{cid}/records/{due}/undelete")))
            .json(&json!({})),
    )
    .await;
    assert!(s == 404 || s == 409, "undo answered {s}: {body}");
    // The record's earlier entries lost its values too.
    let (s, page) = send(
        w.c.get(w.url("/audit"))
            .query(&[("target", format!("record:{due}"))]),
    )
    .await;
    assert_eq!(s, 200);
    let items = page["items"].as_array().unwrap();
    assert!(!items.is_empty());
    for e in items {
        let text = e.to_string();
        assert!(!text.contains("Old guest"), "a purged value is in {text}");
    }
    // The chain still verifies: the run's entry lists the entries it redacted.
    let (s, v) = send(w.c.post(w.url("/audit/verify")).json(&json!({}))).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert!(
        entry["before"]["audit_seqs"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{entry}"
    );
}

#[tokio::test]
async fn a_bad_window_answers_422_naming_the_field_and_writes_nothing() {
    let w = World::start(&[]).await;
    let coll = w
        .collection(json!({
            "name": "Guests",
            "fields": [
                {"name": "Name", "type": "text"},
                {"name": "Check-out", "type": "date"},
                {"name": "Photo", "type": "file",
                 "retention": {"field": "Check-out", "days": 30}}
            ]
        }))
        .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let audit_len = || async {
        let (_, page) = send(w.c.get(w.url("/audit")).query(&[("limit", "100")])).await;
        page["items"].as_array().unwrap().len()
    };
    let before = audit_len().await;
    let fields = |retention: Value| {
        json!([
            {"name": "Name", "type": "text"},
            {"name": "Check-out", "type": "date"},
            {"name": "Photo", "type": "file", "retention": retention}
        ])
    };
    let cases = [
        (
            json!({"name": "A", "fields": fields(json!({"field": "Name", "days": 30}))}),
            "fields[2].retention.field",
        ),
        (
            json!({"name": "B", "fields": fields(json!({"field": "Nope", "days": 30}))}),
            "fields[2].retention.field",
        ),
        (
            json!({"name": "C", "fields": fields(json!({"field": "Check-out", "days": 0}))}),
            "fields[2].retention.days",
        ),
        (
            json!({"name": "D", "fields": fields(json!({"field": "Check-out", "days": 36501}))}),
            "fields[2].retention.days",
        ),
        (
            json!({"name": "E", "fields": [{"name": "Name", "type": "text",
                   "retention": {"field": "Name", "days": 3}}]}),
            "fields[0].retention",
        ),
        (
            json!({"name": "F", "fields": [{"name": "Name", "type": "text"}],
                   "retention": {"field": "Name", "days": 3}}),
            "retention.field",
        ),
    ];
    for (body, field) in cases {
        let (s, p) = send(w.c.post(w.url("/collections")).json(&body)).await;
        assert_eq!(s, 422, "{body}: {p}");
        let named = p["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["field"] == field);
        assert!(named, "{field} not named in {p}");
    }
    // Retiring the date a window counts from, or a window on no date field.
    let cases = [
        (
            json!({"fields": [{"id": field_id(&coll, "Check-out"), "name": "Check-out",
                               "type": "date", "retired": true}]}),
            "fields[0].retired",
        ),
        (
            json!({"retention": {"field": "Photo", "days": 3}}),
            "retention.field",
        ),
    ];
    for (body, field) in cases {
        let (s, p) = send(w.c.patch(w.url(&format!("/collections/{cid}"))).json(&body)).await;
        assert_eq!(s, 422, "{body}: {p}");
        assert!(p.to_string().contains(field), "{field} not named in {p}");
    }
    // Nothing was written: no collection, no audit entry, the window stands.
    let (_, list) = send(w.c.get(w.url("/collections"))).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(audit_len().await, before);
    let (_, now) = send(w.c.get(w.url(&format!("/collections/{cid}")))).await;
    assert_eq!(now["fields"][2]["retention"]["days"], 30, "{now}");
    assert!(now.get("retention").is_none_or(Value::is_null), "{now}");
}

#[tokio::test]
async fn trust_and_the_collection_page_show_the_windows() {
    let w = World::start(&[]).await;
    let trust = |w: &World| {
        let url = w.server.url("/trust.json");
        let c = w.c.clone();
        async move {
            let body: Value = c.get(url).send().await.unwrap().json().await.unwrap();
            body["document"]["data_rights"]["collections_with_retention"]
                .as_i64()
                .or_else(|| body["data_rights"]["collections_with_retention"].as_i64())
                .unwrap_or_else(|| panic!("no count in {body}"))
        }
    };
    assert_eq!(trust(&w).await, 0);
    let coll = w
        .collection(json!({
            "name": "Guests",
            "fields": [
                {"name": "Check-out", "type": "date"},
                {"name": "ID photo", "type": "file",
                 "retention": {"field": "Check-out", "days": 30}}
            ]
        }))
        .await;
    w.collection(json!({
        "name": "Bookings",
        "fields": [{"name": "Departure", "type": "datetime"}],
        "retention": {"field": "Departure", "days": 365}
    }))
    .await;
    w.collection(json!({"name": "Notes", "fields": [{"name": "Text", "type": "text"}]}))
        .await;
    assert_eq!(trust(&w).await, 2);
    let page =
        w.c.get(w.server.url("/trust"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(
        page.contains("2 collections have retention windows"),
        "the trust page does not say so"
    );
    let cid = coll["id"].as_str().unwrap();
    let html =
        w.c.get(w.server.url(&format!("/w/{}/c/{cid}", w.ws)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(
        html.contains("Files in ID photo are deleted 30 days after Check-out."),
        "the collection page does not say so"
    );
    // Removing the window takes it off the count.
    let (s, p) = send(
        w.c.patch(w.url(&format!("/collections/{cid}")))
            .json(&json!({"fields": [{"id": field_id(&coll, "ID photo"),
                                      "name": "ID photo", "type": "file"}]})),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(trust(&w).await, 1);
}

#[tokio::test]
async fn the_start_up_sweep_removes_orphans_and_keeps_referenced_files() {
    let w = World::start(&[]).await;
    let coll = w
        .collection(json!({
            "name": "Docs",
            "fields": [{"name": "Name", "type": "text"}, {"name": "File", "type": "file"}]
        }))
        .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let field = field_id(&coll, "File");
    let rec = w.record(&cid, json!({"Name": "Kept"})).await;
    let kept = w.upload(&cid, &rec, &field, &png()).await;
    let World {
        env, server, ws, ..
    } = w;
    server.stop();
    let files = env.data_dir().join("tenants").join(&ws).join("files");
    let orphan = files.join(format!("fl_{}", "ab".repeat(12)));
    std::fs::write(&orphan, b"sealed bytes no row names").unwrap();
    let part = files
        .join("tmp")
        .join(format!("fl_{}.part", "cd".repeat(12)));
    std::fs::create_dir_all(part.parent().unwrap()).unwrap();
    std::fs::write(&part, b"an upload a stop cut short").unwrap();

    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert!(!orphan.exists(), "the orphan survived the start");
    assert!(!part.exists(), "the cut upload survived the start");
    assert!(files.join(&kept).exists());
    let url = server.url(&format!(
        "/api/v1/workspaces/{ws}/collections/{cid}/records/{rec}/files/{field}/{kept}"
    ));
    let r = c.get(url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), png());
}

#[tokio::test]
async fn the_schema_editor_sets_a_window_and_names_a_bad_one_at_its_input() {
    let w = World::start(&[]).await;
    let coll = w
        .collection(json!({
            "name": "Stays",
            "fields": [{"name": "Name", "type": "text"}, {"name": "Check-out", "type": "date"}]
        }))
        .await;
    let cid = coll["id"].as_str().unwrap();
    let page = w.server.url(&format!("/w/{}/c/{cid}/schema", w.ws));
    let csrf = common::page_csrf(&w.c, &page).await;
    let form = |field: &str, days: &str| {
        vec![
            ("csrf".to_owned(), csrf.clone()),
            ("name".to_owned(), "Stays".to_owned()),
            ("f0.id".to_owned(), field_id(&coll, "Name")),
            ("f0.name".to_owned(), "Name".to_owned()),
            ("f0.type".to_owned(), "text".to_owned()),
            ("f1.id".to_owned(), field_id(&coll, "Check-out")),
            ("f1.name".to_owned(), "Check-out".to_owned()),
            ("f1.type".to_owned(), "date".to_owned()),
            ("retention.present".to_owned(), "1".to_owned()),
            ("retention.field".to_owned(), field.to_owned()),
            ("retention.days".to_owned(), days.to_owned()),
        ]
    };
    // A text field: 422, the error at the date-field input, what was typed kept.
    let r =
        w.c.post(&page)
            .form(&form("Name", "30"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"err-retention-field\""),
        "no error at the input"
    );
    assert!(html.contains("must name a date or datetime field"));
    assert!(html.contains("value=\"Name\""));
    let (_, now) = send(w.c.get(w.url(&format!("/collections/{cid}")))).await;
    assert!(now.get("retention").is_none_or(Value::is_null), "{now}");
    // A date field: saved, and the collection's page says so.
    let r =
        w.c.post(&page)
            .form(&form("Check-out", "30"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 303);
    let (_, now) = send(w.c.get(w.url(&format!("/collections/{cid}")))).await;
    assert_eq!(
        now["retention"],
        json!({"field": field_id(&coll, "Check-out"), "days": 30})
    );
    let html =
        w.c.get(w.server.url(&format!("/w/{}/c/{cid}", w.ws)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(html.contains("Records are deleted, with their files, 30 days after Check-out."));
    // Both inputs emptied: the window goes.
    let r = w.c.post(&page).form(&form("", "")).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let (_, now) = send(w.c.get(w.url(&format!("/collections/{cid}")))).await;
    assert!(now.get("retention").is_none_or(Value::is_null), "{now}");
}

/// A window added to, or tightened on, a collection purges its records
/// beyond undo, as deleting the collection would: a manager (who may
/// change the collection but not delete it) is refused with 403 and an
/// `access.denied` entry, nothing changes, and loosening or keeping a
/// window stays theirs; an admin may set one.
#[tokio::test]
async fn only_those_who_may_delete_the_collection_add_or_tighten_a_window() {
    let w = World::start(&[]).await;
    w.env.create_user("manager@example.com", "Manager");
    w.env.add_member(&w.ws, "manager@example.com", "manager");
    let m = client(&w.server);
    assert_eq!(
        login(&m, &w.server, "manager@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let coll = w
        .collection(json!({
            "name": "Guests",
            "fields": [
                {"name": "Name", "type": "text"},
                {"name": "Check-out", "type": "date"},
                {"name": "Photo", "type": "file",
                 "retention": {"field": "Check-out", "days": 30}}
            ]
        }))
        .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    w.record(&cid, json!({"Name": "Ada", "Check-out": "2020-01-01"}))
        .await;
    let url = w.url(&format!("/collections/{cid}"));
    let photo = field_id(&coll, "Photo");
    let fields = |days: i64| {
        json!([
            {"id": field_id(&coll, "Name"), "name": "Name", "type": "text"},
            {"id": field_id(&coll, "Check-out"), "name": "Check-out", "type": "date"},
            {"id": photo, "name": "Photo", "type": "file",
             "retention": {"field": "Check-out", "days": days}}
        ])
    };
    // The manager: a collection window, and a file field's window
    // shortened, are refused; nothing changed.
    for body in [
        json!({"retention": {"field": "Check-out", "days": 1}}),
        json!({"fields": fields(1)}),
    ] {
        let (s, p) = send(m.patch(&url).json(&body)).await;
        assert_eq!(s, 403, "{body}: {p}");
    }
    let (_, now) = send(w.c.get(&url)).await;
    assert!(now["retention"].is_null(), "{now}");
    assert_eq!(now["fields"][2]["retention"]["days"], 30, "{now}");
    let (_, denied) = send(
        w.c.get(w.url("/audit"))
            .query(&[("action", "access.denied")]),
    )
    .await;
    assert!(
        denied.to_string().contains("collection.retention"),
        "{denied}"
    );
    // Keeping or loosening a window is the manager's to do.
    let (s, p) = send(m.patch(&url).json(&json!({"fields": fields(90)}))).await;
    assert_eq!(s, 200, "{p}");
    // An admin (here the owner) may tighten it.
    let (s, p) = send(
        w.c.patch(&url)
            .json(&json!({"retention": {"field": "Check-out", "days": 1}})),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    assert_eq!(p["retention"]["days"], 1, "{p}");
}
