//! Data-subject requests through the real API: among 10,000 other records the
//! search finds exactly the person's records (through the pii blind indexes),
//! the export carries them with history and audit entries, and anonymisation
//! replaces every pii value (records, versions, audit details) with the keyed
//! pseudonym while sums stay the same, the old ciphertexts leave the files,
//! and `aura audit verify` still passes.

mod common;

use common::{Env, PASSWORD, Server, client, login};
use serde_json::{Value, json};

const EMAIL: &str = "zelda.canary@example.com";
const NAME: &str = "Zelda Canarynameqx";
const PHONE: &str = "+44 20 7946 0958";

struct World {
    env: Env,
    server: Server,
    ws: String,
    owner: reqwest::Client,
}

impl World {
    fn url(&self, path: &str) -> String {
        self.server
            .url(&format!("/api/v1/workspaces/{}{path}", self.ws))
    }

    async fn post(&self, c: &reqwest::Client, path: &str, body: Value) -> (u16, Value) {
        let r = c.post(self.url(path)).json(&body).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.owner.get(self.url(path)).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }

    async fn collection(&self, body: Value) -> String {
        let (s, c) = self.post(&self.owner, "/collections", body).await;
        assert_eq!(s, 201, "{c}");
        c["id"].as_str().unwrap().to_owned()
    }

    async fn record(&self, coll: &str, values: Value) -> String {
        let (s, r) = self
            .post(
                &self.owner,
                &format!("/collections/{coll}/records"),
                json!({ "values": values }),
            )
            .await;
        assert_eq!(s, 201, "{r}");
        r["id"].as_str().unwrap().to_owned()
    }

    /// Sum of a money column over the whole collection (CSV export).
    async fn sum(&self, coll: &str, column: &str) -> (i64, usize) {
        let csv = self
            .owner
            .get(self.url(&format!("/collections/{coll}/export")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap().split(',').collect();
        let at = header.iter().position(|h| *h == column).unwrap();
        let mut total = 0i64;
        let mut rows = 0;
        for l in lines {
            let cell = l.split(',').nth(at).unwrap();
            let amount = cell.split(' ').next().unwrap().replace('.', "");
            total += amount.parse::<i64>().unwrap();
            rows += 1;
        }
        (total, rows)
    }
}

async fn world() -> World {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    env.create_user("member@example.com", "Member");
    let ws = env.create_workspace("Hotel", "owner@example.com");
    env.add_member(&ws, "member@example.com", "member");
    let server = env.start();
    let owner = client(&server);
    assert_eq!(
        login(&owner, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    World {
        env,
        server,
        ws,
        owner,
    }
}

fn guests_schema() -> Value {
    json!({"name": "Guests", "fields": [
        {"name": "Name", "type": "text", "pii": true, "searchable": true},
        {"name": "Email", "type": "email", "pii": true, "unique": true},
        {"name": "Phone", "type": "phone", "pii": true},
        {"name": "Birthday", "type": "date", "pii": true},
        {"name": "Spent", "type": "money", "currency": "EUR"},
        {"name": "Nights", "type": "integer"}
    ]})
}

#[tokio::test]
async fn find_export_and_anonymise_a_person_among_ten_thousand_records() {
    let w = world().await;
    let guests = w.collection(guests_schema()).await;
    let bookings = w
        .collection(json!({"name": "Bookings", "fields": [
            {"name": "Guest email", "type": "email", "pii": true},
            {"name": "Total", "type": "money", "currency": "EUR"}
        ]}))
        .await;

    // 10,000 other guests, in one all-or-nothing import.
    let mut csv = String::from("Name,Email,Phone,Birthday,Spent,Nights\n");
    for i in 0..10_000 {
        csv.push_str(&format!(
            "Guest {i},guest{i}@example.com,+1 555 {:07},1980-01-01,{}.{:02} EUR,{}\n",
            i,
            i % 500,
            i % 100,
            i % 9
        ));
    }
    let r = w
        .owner
        .post(w.url(&format!("/collections/{guests}/import")))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // The person: one guest record (changed once), two bookings (one deleted).
    let g1 = w
        .record(
            &guests,
            json!({"Name": NAME, "Email": EMAIL, "Phone": PHONE, "Birthday": "1990-05-17",
            "Spent": {"amount_minor": 12345, "currency": "EUR"}, "Nights": 2}),
        )
        .await;
    let (s, _) = async {
        let r = w
            .owner
            .patch(w.url(&format!("/collections/{guests}/records/{g1}")))
            .json(&json!({"values": {"Nights": 3, "Name": format!("{NAME} Jr")}}))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), ())
    }
    .await;
    assert_eq!(s, 200);
    let b1 = w
        .record(&bookings, json!({"Guest email": "Zelda.Canary@Example.com", "Total": {"amount_minor": 50000, "currency": "EUR"}}))
        .await;
    let b2 = w
        .record(
            &bookings,
            json!({"Guest email": EMAIL, "Total": {"amount_minor": 9999, "currency": "EUR"}}),
        )
        .await;
    let d = w
        .owner
        .delete(w.url(&format!("/collections/{bookings}/records/{b2}")))
        .send()
        .await
        .unwrap();
    assert_eq!(d.status(), 204);
    let other = w
        .record(&bookings, json!({"Guest email": "guest7@example.com", "Total": {"amount_minor": 700, "currency": "EUR"}}))
        .await;

    // Search: exactly the person's three records, by email in any case and by phone.
    let (s, found) = w
        .post(
            &w.owner,
            "/data-subjects/search",
            json!({"identifier": " ZELDA.canary@example.com "}),
        )
        .await;
    assert_eq!(s, 200, "{found}");
    let mut ids: Vec<&str> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["record_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    let mut want = vec![g1.as_str(), b1.as_str(), b2.as_str()];
    want.sort_unstable();
    assert_eq!(ids, want, "exactly the person's records: {found}");
    let deleted: Vec<bool> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["deleted"].as_bool().unwrap())
        .collect();
    assert_eq!(
        deleted.iter().filter(|d| **d).count(),
        1,
        "the deleted booking is found by its tombstone"
    );
    let (_, by_phone) = w
        .post(
            &w.owner,
            "/data-subjects/search",
            json!({"identifier": "+44 (20) 7946-0958"}),
        )
        .await;
    assert_eq!(by_phone["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_phone["items"][0]["record_id"], g1.as_str());
    assert_eq!(by_phone["items"][0]["matched_fields"], json!(["Phone"]));

    // Bad input names the field; members may not ask.
    let (s, p) = w
        .post(
            &w.owner,
            "/data-subjects/search",
            json!({"identifier": "  "}),
        )
        .await;
    assert_eq!(s, 422);
    assert!(p.to_string().contains("identifier"), "{p}");
    let member = client(&w.server);
    login(&member, &w.server, "member@example.com", PASSWORD).await;
    let (s, _) = w
        .post(
            &member,
            "/data-subjects/export",
            json!({"identifier": EMAIL}),
        )
        .await;
    assert_eq!(s, 403);

    // Export: records, kept versions and audit entries with values.
    let (s, export) = w
        .post(
            &w.owner,
            "/data-subjects/export",
            json!({"identifier": EMAIL}),
        )
        .await;
    assert_eq!(s, 200, "{export}");
    assert_eq!(export["records"].as_array().unwrap().len(), 3);
    let g1_export = export["records"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["record_id"] == g1.as_str())
        .unwrap();
    assert_eq!(g1_export["history"].as_array().unwrap().len(), 2);
    assert!(
        g1_export["audit"].to_string().contains(NAME),
        "audit details keep the values"
    );
    assert_eq!(
        g1_export["record"]["values"]["Spent"]["amount_minor"],
        12345
    );

    let sums_before = (
        w.sum(&guests, "Spent").await,
        w.sum(&bookings, "Total").await,
    );
    let tenant_db = w.env.tenant_db(&w.ws);
    let old_ct: Vec<u8> = common::open_db(&tenant_db)
        .query_row("SELECT values_ct FROM records WHERE id = ?1", [&g1], |r| {
            r.get(0)
        })
        .unwrap();

    // Anonymise.
    let (s, done) = w
        .post(
            &w.owner,
            "/data-subjects/anonymise",
            json!({"identifier": EMAIL}),
        )
        .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["records"], 2);
    assert_eq!(done["deleted_records"], 1);
    assert_eq!(done["versions"], 3);
    let pseudonym = done["pseudonym"].as_str().unwrap().to_owned();
    assert!(pseudonym.starts_with("anon-"));
    assert!(done["audit_entries"].as_u64().unwrap() >= 4, "{done}");

    let (_, rec) = w.get(&format!("/collections/{guests}/records/{g1}")).await;
    let v = &rec["values"];
    assert_eq!(v["Name"], pseudonym.as_str());
    assert_eq!(v["Email"], format!("{pseudonym}@anonymised.invalid"));
    assert!(v["Phone"].as_str().unwrap().starts_with("+99"));
    assert!(
        v.get("Birthday").is_none(),
        "a date has no pseudonym; it is removed"
    );
    assert_eq!(
        v["Spent"],
        json!({"amount_minor": 12345, "currency": "EUR"})
    );
    assert_eq!(v["Nights"], 3);
    let (_, b1_now) = w
        .get(&format!("/collections/{bookings}/records/{b1}"))
        .await;
    assert_eq!(
        b1_now["values"]["Guest email"],
        format!("{pseudonym}@anonymised.invalid")
    );
    let (_, other_now) = w
        .get(&format!("/collections/{bookings}/records/{other}"))
        .await;
    assert_eq!(
        other_now["values"]["Guest email"], "guest7@example.com",
        "others untouched"
    );

    // Aggregates hold, nothing of the person is readable anywhere.
    assert_eq!(
        (
            w.sum(&guests, "Spent").await,
            w.sum(&bookings, "Total").await
        ),
        sums_before
    );
    let (_, hist) = w
        .get(&format!("/collections/{guests}/records/{g1}/history"))
        .await;
    let (_, again) = w
        .post(
            &w.owner,
            "/data-subjects/search",
            json!({"identifier": EMAIL}),
        )
        .await;
    assert_eq!(
        again["items"],
        json!([]),
        "the person is not found any more"
    );
    let (_, audit) = w.get("/audit?limit=200").await;
    let (_, audit_q) = w.get("/audit?q=canarynameqx").await;
    let (_, search) = w
        .get(&format!("/collections/{guests}/records?q=canarynameqx"))
        .await;
    for (what, text) in [
        ("history", hist.to_string()),
        ("audit", audit.to_string()),
        ("audit search", audit_q.to_string()),
        ("search", search.to_string()),
    ] {
        for canary in ["canary", "Canary", "442079460958", "1990-05-17"] {
            assert!(!text.contains(canary), "{canary} still in {what}: {text}");
        }
    }
    assert!(audit.to_string().contains("\"redacted\":true"));
    assert_eq!(search["items"], json!([]));
    let (_, by_pseudonym) = w
        .get(&format!("/collections/{guests}/records?q={pseudonym}"))
        .await;
    assert_eq!(by_pseudonym["items"].as_array().unwrap().len(), 1);

    // The old ciphertext is gone from the files (VACUUM, WAL truncated),
    // read while the server runs: its WAL exists only until a clean stop.
    // One write after the anonymisation: a WAL that was only rewound, not
    // truncated, would still hold the old frames behind the new one.
    w.collection(json!({"name": "After", "fields": [{"name": "N", "type": "text"}]}))
        .await;
    let wal = std::path::PathBuf::from(format!("{}-wal", tenant_db.display()));
    assert!(wal.exists(), "the running server's WAL is there to scan");
    let files = vec![tenant_db.clone(), wal];
    // And no plaintext of the person anywhere under the data dir.
    let mut stack = vec![w.env.data_dir()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let bytes = std::fs::read(&p).unwrap();
            for canary in ["Canarynameqx", "zelda.canary", "442079460958"] {
                let c = canary.as_bytes();
                assert!(
                    !bytes.windows(c.len()).any(|x| x == c),
                    "{canary} in {}",
                    p.display()
                );
            }
        }
    }
    let needle = &old_ct[old_ct.len() - 32..];
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.is_empty(),
            "{} is empty: nothing scanned",
            f.display()
        );
        assert!(
            !bytes.windows(needle.len()).any(|x| x == needle),
            "old ciphertext still in {}",
            f.display()
        );
    }
    w.server.stop();

    // The chain still verifies, with the rewritten details.
    let out = w.env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let db = rusqlite::Connection::open(&tenant_db).unwrap();
    let redacted: i64 = db
        .query_row(
            "SELECT count(*) FROM audit_log WHERE redacted_by IS NOT NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(redacted >= 4);
    // Nothing else may change an entry.
    let err = db.execute("UPDATE audit_log SET action = 'x' WHERE seq = 1", []);
    assert!(err.is_err());
    let err = db.execute(
        "UPDATE audit_log SET detail_ct = x'00', redacted_by = NULL WHERE seq = 1",
        [],
    );
    assert!(
        err.is_err(),
        "replacing details needs an anonymisation entry"
    );
    // Borrowing the anonymisation to cover a hand edit of another entry gets
    // past the trigger, but not past `aura audit verify`.
    let anon: i64 = db
        .query_row(
            "SELECT seq FROM audit_log WHERE action = 'data_subject.anonymised'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let ct: Vec<u8> = db
        .query_row("SELECT detail_ct FROM audit_log WHERE seq = 1", [], |r| {
            r.get(0)
        })
        .unwrap();
    let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        &ct,
    ))
    .to_vec();
    db.execute(
        "UPDATE audit_log SET detail_ct = x'00', detail_digest = ?1, redacted_by = ?2 WHERE seq = 1",
        rusqlite::params![digest, anon],
    )
    .unwrap();
    drop(db);
    let out = w.env.cli(&["audit", "verify"], None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("does not list it"), "{text}");
}

#[tokio::test]
async fn deleting_a_collection_erases_its_values_from_the_audit_and_the_chain_verifies() {
    let w = world().await;
    let coll = w.collection(guests_schema()).await;
    let rec = w
        .record(&coll, json!({"Name": NAME, "Email": EMAIL, "Nights": 1}))
        .await;
    let (_, before) = w.get("/audit?action=record.created").await;
    assert!(
        before.to_string().contains(NAME),
        "the entry keeps the values"
    );
    let (_, found) = w.get("/audit?q=canarynameqx").await;
    assert_eq!(
        found["items"].as_array().unwrap().len(),
        1,
        "free text finds it"
    );
    let r = w
        .owner
        .delete(w.url(&format!("/collections/{coll}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (_, after) = w.get("/audit?action=record.created").await;
    let entry = &after["items"][0];
    assert_eq!(entry["target"], rec.as_str());
    assert_eq!(entry["redacted"], true);
    assert!(!after.to_string().contains(NAME), "{after}");
    assert!(entry["after"].get("values").is_none());
    let (_, found) = w.get("/audit?q=canarynameqx").await;
    assert_eq!(
        found["items"],
        json!([]),
        "nor does the search index keep it"
    );
    w.server.stop();
    let out = w.env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Finding 13: the restore drill (and a restore) check a chain as strictly
/// as `aura audit verify`: an entry whose details were replaced under the
/// cover of a redacting entry that does not list it fails the drill too.
#[tokio::test]
async fn finding_13_drill_checks_chains_as_strictly_as_verify() {
    let w = world().await;
    let coll = w.collection(guests_schema()).await;
    w.record(&coll, json!({"Name": NAME, "Email": EMAIL, "Nights": 1}))
        .await;
    let r = w
        .owner
        .delete(w.url(&format!("/collections/{coll}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    w.server.stop();
    let db = rusqlite::Connection::open(w.env.tenant_db(&w.ws)).unwrap();
    let by: i64 = db
        .query_row(
            "SELECT seq FROM audit_log WHERE action = 'collection.deleted'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let ct: Vec<u8> = db
        .query_row("SELECT detail_ct FROM audit_log WHERE seq = 2", [], |r| {
            r.get(0)
        })
        .unwrap();
    let digest = sha2::Digest::finalize(sha2::Digest::chain_update(
        <sha2::Sha256 as sha2::Digest>::new(),
        &ct,
    ))
    .to_vec();
    db.execute(
        "UPDATE audit_log SET detail_ct = x'00', detail_digest = ?1, redacted_by = ?2 WHERE seq = 2",
        rusqlite::params![digest, by],
    )
    .unwrap();
    drop(db);
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    let out = w.env.cli(&["audit", "verify"], None);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("does not list it"), "{}", text(&out));

    let id = age::x25519::Identity::generate();
    let identity = w.env.root().join("identity.txt");
    std::fs::write(
        &identity,
        format!(
            "{}\n",
            age::secrecy::ExposeSecret::expose_secret(&id.to_string())
        ),
    )
    .unwrap();
    let recipients = format!("[\"{}\"]", id.to_public());
    let out = w
        .env
        .command(&["backup", "run"])
        .env("AURA_BACKUP__RECIPIENTS", &recipients)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    let out = w
        .env
        .command(&["backup", "verify", "--identity", identity.to_str().unwrap()])
        .env("AURA_BACKUP__RECIPIENTS", &recipients)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "the drill passed a forged redaction:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("does not list it"), "{}", text(&out));
}
