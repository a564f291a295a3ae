//! Undo (issue 20, point 4): a deleted record comes back from its deletion's
//! audit entry, in the browser from the flash's "Undo" button and over the
//! API; not for a live record, not for a viewer, not over a value another
//! record took since, and not once a data subject's anonymisation redacted
//! the entry. Real server, real Chromium.

mod common;

use common::browser::Browser;
use common::{Env, PASSWORD, call, client, login};
use serde_json::{Value, json};

#[tokio::test]
async fn a_deleted_record_comes_back_from_the_flash_undo_in_chromium() {
    let env = Env::new();
    env.create_user("undo@example.com", "Una Owner");
    let ws = env.create_workspace("Undo Ltd", "undo@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "undo@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let (_, coll) = call(
        &c,
        reqwest::Method::POST,
        api("/collections"),
        json!({"name": "Guests", "fields": [{"name": "Name", "type": "text"}]}),
    )
    .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let (s, rec) = call(
        &c,
        reqwest::Method::POST,
        api(&format!("/collections/{cid}/records")),
        json!({"values": {"Name": "Emmy Noether"}}),
    )
    .await;
    assert_eq!(s, 201, "{rec}");
    let rid = rec["id"].as_str().unwrap().to_owned();

    let b = Browser::start().await;
    b.goto(&server.url(&format!("/w/{ws}/c/{cid}/r/{rid}")))
        .await;
    b.type_into("#email", "undo@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("form[method=post] button[type=submit]").await;
    b.wait_for_url(&format!("/r/{rid}")).await;
    b.click("form[data-confirm][action$='/delete'] button[type=submit]")
        .await;
    b.click("#confirm-ok").await;
    b.wait_for_text("Record deleted.").await;
    assert!(b.current_url().await.ends_with(&format!("/c/{cid}")));
    assert!(
        !b.source().await.contains("Emmy Noether"),
        "gone from the table"
    );
    b.screenshot("undo-offered").await;

    b.click("#undo button[type=submit]").await;
    b.wait_for_text("Record restored.").await;
    assert!(b.current_url().await.ends_with(&format!("/r/{rid}")));
    assert!(b.source().await.contains("Emmy Noether"), "back, same id");
    b.goto(&server.url(&format!("/w/{ws}/c/{cid}"))).await;
    b.find("#records").await;
    assert!(
        b.source().await.contains("Emmy Noether"),
        "back in the table"
    );
    assert_eq!(b.count("#undo").await, 0, "the undo is offered once");
    b.quit().await;

    let audit = common::get_text(
        &c,
        server.url(&format!(
            "/api/v1/workspaces/{ws}/audit?action=record.undeleted"
        )),
    )
    .await;
    let audit: Value = serde_json::from_str(&audit).unwrap();
    let e = &audit["items"][0];
    assert_eq!(e["target"], rid.as_str(), "{audit}");
    assert_eq!(e["before"]["deleted"], true);
    assert!(e["after"]["values"].to_string().contains("Emmy Noether"));
    server.stop();
}

#[tokio::test]
async fn undelete_over_the_api_takes_only_a_deleted_record_the_caller_may_delete() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    env.create_user("viewer@example.com", "Viewer");
    let ws = env.create_workspace("Undo API Ltd", "owner@example.com");
    env.add_member(&ws, "viewer@example.com", "viewer");
    let server = env.start();
    let (owner, viewer) = (client(&server), client(&server));
    for (c, e) in [
        (&owner, "owner@example.com"),
        (&viewer, "viewer@example.com"),
    ] {
        assert_eq!(login(c, &server, e, PASSWORD).await.status(), 200);
    }
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    use reqwest::Method as M;
    let (_, coll) = call(
        &owner,
        M::POST,
        api("/collections"),
        json!({"name": "People", "fields": [
            {"name": "Email", "type": "email", "unique": true, "pii": true},
            {"name": "Note", "type": "text"}
        ]}),
    )
    .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let new = |email: &str| {
        call(
            &owner,
            M::POST,
            api(&format!("/collections/{cid}/records")),
            json!({"values": {"Email": email, "Note": "kept"}}),
        )
    };
    let (_, a) = new("ada@example.com").await;
    let a = a["id"].as_str().unwrap().to_owned();
    let rec = |id: &str| api(&format!("/collections/{cid}/records/{id}"));
    let undelete = |id: &str| format!("{}/undelete", rec(id));

    // A live record has no deletion to undo.
    let (s, p) = call(&owner, M::POST, undelete(&a), Value::Null).await;
    assert_eq!(s, 404, "{p}");
    assert_eq!(call(&owner, M::DELETE, rec(&a), Value::Null).await.0, 204);
    // A viewer may not delete, so may not undo.
    let (s, _) = call(&viewer, M::POST, undelete(&a), Value::Null).await;
    assert_eq!(s, 403);
    // Another record took the unique value meanwhile: refused at the field.
    let (s, b) = new("ada@example.com").await;
    assert_eq!(s, 201, "the value was free after the deletion");
    let (s, p) = call(&owner, M::POST, undelete(&a), Value::Null).await;
    assert_eq!(s, 422, "{p}");
    assert!(p.to_string().contains("values.Email"), "{p}");
    assert_eq!(
        call(&owner, M::GET, rec(&a), Value::Null).await.0,
        404,
        "nothing written"
    );
    // Freed again, the undo works: same id, same values, a new version.
    let b = b["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&owner, M::DELETE, rec(&b), Value::Null).await.0, 204);
    let (s, back) = call(&owner, M::POST, undelete(&a), Value::Null).await;
    assert_eq!(s, 200, "{back}");
    assert_eq!(back["id"], a.as_str());
    assert_eq!(back["values"]["Email"], "ada@example.com");
    assert_eq!(back["values"]["Note"], "kept");
    assert_eq!(back["version"], 2);
    let (s, got) = call(&owner, M::GET, rec(&a), Value::Null).await;
    assert_eq!(
        (s, &got["values"]["Email"]),
        (200, &json!("ada@example.com"))
    );
    // Twice is once: it is live now.
    assert_eq!(
        call(&owner, M::POST, undelete(&a), Value::Null).await.0,
        404
    );

    // Another collection's record id through this collection: 404.
    let (_, other) = call(
        &owner,
        M::POST,
        api("/collections"),
        json!({"name": "Other", "fields": [{"name": "T", "type": "text"}]}),
    )
    .await;
    let other = other["id"].as_str().unwrap().to_owned();
    let (_, x) = call(
        &owner,
        M::POST,
        api(&format!("/collections/{other}/records")),
        json!({"values": {"T": "elsewhere"}}),
    )
    .await;
    let x = x["id"].as_str().unwrap().to_owned();
    let x_url = api(&format!("/collections/{other}/records/{x}"));
    assert_eq!(
        call(&owner, M::DELETE, x_url.clone(), Value::Null).await.0,
        204
    );
    let (s, _) = call(&owner, M::POST, undelete(&x), Value::Null).await;
    assert_eq!(s, 404, "a record of another collection is not found here");

    // A role that may delete but not read gets nothing back: refused.
    let (s, _) = call(
        &owner,
        M::PATCH,
        api(&format!("/collections/{other}")),
        json!({"permissions": {"read": ["owner"], "create": ["owner"], "update": ["owner"],
                               "delete": ["owner", "viewer"]}}),
    )
    .await;
    assert_eq!(s, 200);
    let (s, p) = call(&viewer, M::POST, format!("{x_url}/undelete"), Value::Null).await;
    assert_eq!(s, 403, "{p}");

    // After the person's anonymisation the deletion's entry is redacted:
    // the values never come back.
    let (_, c2) = new("grace@example.com").await;
    let c2 = c2["id"].as_str().unwrap().to_owned();
    assert_eq!(call(&owner, M::DELETE, rec(&c2), Value::Null).await.0, 204);
    let (s, done) = call(
        &owner,
        M::POST,
        api("/data-subjects/anonymise"),
        json!({"identifier": "grace@example.com"}),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    let (s, p) = call(&owner, M::POST, undelete(&c2), Value::Null).await;
    assert_eq!(s, 409, "{p}");
    assert!(!p.to_string().contains("grace@"), "{p}");
    assert_eq!(call(&owner, M::GET, rec(&c2), Value::Null).await.0, 404);
    // Any anonymisation after a deletion closes its undo, whoever it was
    // for: whether it reached a deleted record depends on digests a key
    // rotation may have left behind, so the undo never guesses.
    let (s, _) = call(&owner, M::POST, format!("{x_url}/undelete"), Value::Null).await;
    assert_eq!(
        s, 409,
        "the record deleted before grace's anonymisation stays deleted"
    );
    server.stop();
}

/// The deletion's audit entry offers the restore too, after the flash is
/// gone: to those who may delete, while the record is still deleted. An
/// admin reads the entry but may not delete this collection's records, so
/// is not offered it.
#[tokio::test]
async fn a_deletions_audit_entry_offers_to_restore_the_record() {
    let env = Env::new();
    env.create_user("own@example.com", "Owner");
    env.create_user("admin@example.com", "Admin");
    let ws = env.create_workspace("Entry Ltd", "own@example.com");
    env.add_member(&ws, "admin@example.com", "admin");
    let server = env.start();
    let (owner, admin) = (client(&server), client(&server));
    for (c, e) in [(&owner, "own@example.com"), (&admin, "admin@example.com")] {
        assert_eq!(login(c, &server, e, PASSWORD).await.status(), 200);
    }
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    use reqwest::Method as M;
    let (_, coll) = call(
        &owner,
        M::POST,
        api("/collections"),
        json!({"name": "Rooms", "fields": [{"name": "Room", "type": "text"}],
               "permissions": {"read": ["owner", "admin"], "create": ["owner", "admin"],
                               "update": ["owner", "admin"], "delete": ["owner"]}}),
    )
    .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let (_, rec) = call(
        &owner,
        M::POST,
        api(&format!("/collections/{cid}/records")),
        json!({"values": {"Room": "Blue suite"}}),
    )
    .await;
    let rid = rec["id"].as_str().unwrap().to_owned();
    let rec_url = api(&format!("/collections/{cid}/records/{rid}"));
    assert_eq!(
        call(&owner, M::DELETE, rec_url.clone(), Value::Null)
            .await
            .0,
        204
    );
    let (_, found) = call(
        &owner,
        M::GET,
        api("/audit?action=record.deleted"),
        Value::Null,
    )
    .await;
    let seq = found["items"][0]["seq"].as_i64().unwrap();
    let entry = server.url(&format!("/w/{ws}/audit/{seq}"));

    let page = common::get_text(&owner, entry.clone()).await;
    let action = format!("action=\"/w/{ws}/c/{cid}/r/{rid}/undelete\"");
    assert!(
        page.contains("id=\"restore-deleted\"") && page.contains(&action),
        "{page}"
    );
    assert!(
        page.contains(&format!("record <span title=\"{rid}\">Blue suite</span>")),
        "the deleted record named by its title"
    );
    let seen = common::get_text(&admin, entry.clone()).await;
    assert!(
        seen.contains("Blue suite"),
        "the admin reads the entry: {seen}"
    );
    assert!(!seen.contains("restore-deleted"), "but may not restore");
    let r = admin
        .post(format!("{rec_url}/undelete"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "nor over the API");

    let csrf = common::page_csrf(&owner, &entry).await;
    let r = owner
        .post(server.url(&format!("/w/{ws}/c/{cid}/r/{rid}/undelete")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        r.status().is_success() || r.status().is_redirection(),
        "{}",
        r.status()
    );
    let (s, back) = call(&owner, M::GET, rec_url.clone(), Value::Null).await;
    assert_eq!((s, &back["values"]["Room"]), (200, &json!("Blue suite")));
    let page = common::get_text(&owner, entry.clone()).await;
    assert!(
        !page.contains("restore-deleted"),
        "live again: nothing to restore"
    );

    // Edited and deleted again: the first deletion's page still offers a
    // restore, but only the latest deletion's values may come back.
    let (s, _) = call(
        &owner,
        M::PATCH,
        rec_url.clone(),
        json!({"values": {"Room": "Green suite"}}),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        call(&owner, M::DELETE, rec_url.clone(), Value::Null)
            .await
            .0,
        204
    );
    let r = owner
        .post(server.url(&format!("/w/{ws}/c/{cid}/r/{rid}/undelete")))
        .form(&[("csrf", csrf.as_str()), ("entry", &seq.to_string())])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        409,
        "an older deletion's values are not restored"
    );
    assert_eq!(
        call(&owner, M::GET, rec_url.clone(), Value::Null).await.0,
        404
    );
    let (s, back) = call(&owner, M::POST, format!("{rec_url}/undelete"), Value::Null).await;
    assert_eq!((s, &back["values"]["Room"]), (200, &json!("Green suite")));
    server.stop();
}
