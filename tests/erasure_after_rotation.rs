//! An erasure is never partial: a deleted record's audit entries still hold
//! the person's values, and a data-subject anonymisation must find them by
//! the tombstone's personal-data digests. Those digests are keyed, so a data
//! key rotation (which destroys the old key) and a field marked personal
//! data later must both bring them up to date. Real server, real rotation.

mod common;

use std::time::{Duration, Instant};

use common::{Env, PASSWORD, call, client, login};
use serde_json::{Value, json};

#[tokio::test]
async fn a_deleted_records_entries_are_anonymised_after_a_key_rotation_and_a_new_pii_flag() {
    let env = Env::new();
    env.create_user("dpo@example.com", "Owner");
    let ws = env.create_workspace("Erasure Ltd", "dpo@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "dpo@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    use reqwest::Method as M;
    let (_, coll) = call(
        &c,
        M::POST,
        api("/collections"),
        json!({"name": "Guests", "fields": [
            {"name": "Email", "type": "email", "pii": true},
            {"name": "Phone", "type": "phone"}
        ]}),
    )
    .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let fields = coll["fields"].clone();
    let deleted = |values: Value| {
        let (c, url) = (c.clone(), api(&format!("/collections/{cid}/records")));
        async move {
            let (s, r) = call(&c, M::POST, url.clone(), json!({"values": values})).await;
            assert_eq!(s, 201, "{r}");
            let id = r["id"].as_str().unwrap().to_owned();
            let (s, _) = call(&c, M::DELETE, format!("{url}/{id}"), Value::Null).await;
            assert_eq!(s, 204);
            id
        }
    };
    deleted(json!({"Email": "ada@example.com"})).await;
    deleted(json!({"Email": "other@example.com", "Phone": "+44 20 7946 0123"})).await;

    // Rotate the data key to the end: the old key (and its digests) is gone.
    let (s, r) = call(&c, M::POST, api("/keys/rotate"), Value::Null).await;
    assert_eq!(s, 200, "{r}");
    let started = Instant::now();
    loop {
        let (_, st) = call(&c, M::GET, api("/keys/rotation"), Value::Null).await;
        if st["state"] == "finished" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "{st}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (s, done) = call(
        &c,
        M::POST,
        api("/data-subjects/anonymise"),
        json!({"identifier": "ada@example.com"}),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(
        done["deleted_records"], 1,
        "found after the rotation: {done}"
    );
    assert!(done["audit_entries"].as_u64().unwrap() >= 2, "{done}");

    // Phone becomes personal data after the deletion: its value is found too.
    let phone = fields[1]["id"].as_str().unwrap();
    let email = fields[0]["id"].as_str().unwrap();
    let (s, r) = call(
        &c,
        M::PATCH,
        api(&format!("/collections/{cid}")),
        json!({"fields": [
            {"id": email, "name": "Email", "type": "email", "pii": true},
            {"id": phone, "name": "Phone", "type": "phone", "pii": true}
        ]}),
    )
    .await;
    assert_eq!(s, 200, "{r}");
    let (s, done) = call(
        &c,
        M::POST,
        api("/data-subjects/anonymise"),
        json!({"identifier": "+44 20 7946 0123"}),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(
        done["deleted_records"], 1,
        "found by a new pii field: {done}"
    );

    // Neither value is left in any audit entry's details.
    let (_, log) = call(&c, M::GET, api("/audit?limit=200"), Value::Null).await;
    let text = log.to_string();
    assert!(!text.contains("ada@example.com"), "{text}");
    assert!(!text.contains("7946"), "{text}");
    server.stop();
}
