//! Names, not ids (issue 20, point 2): the audit pages name people by name
//! and email and fields by name, and the audit search finds a person by
//! email or name. Real server, real session, the pages' HTML.

mod common;

use common::{Env, PASSWORD, client, get_text, login};
use serde_json::{Value, json};

async fn sign_in(c: &reqwest::Client, server: &common::Server, email: &str) {
    assert_eq!(login(c, server, email, PASSWORD).await.status(), 200);
}

async fn post_json(c: &reqwest::Client, url: impl reqwest::IntoUrl, body: &Value) -> Value {
    c.post(url)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn audit_pages_name_people_and_fields_and_search_finds_a_person_by_email() {
    let env = Env::new();
    let olive = env.create_user("olive@example.com", "Olive Owner");
    let ws = env.create_workspace("Names Ltd", "olive@example.com");
    let gary = env.create_user("gary@example.com", "Gary Guest");
    env.add_member(&ws, "gary@example.com", "member");
    let server = env.start();
    let c = client(&server);
    sign_in(&c, &server, "olive@example.com").await;
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let coll: Value = post_json(
        &c,
        api("/collections"),
        &json!({"name": "Bookings", "fields": [{"name": "Guests", "type": "text"}]}),
    )
    .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let field = coll["fields"][0]["id"].as_str().unwrap().to_owned();
    let rec: Value = post_json(
        &c,
        api(&format!("/collections/{cid}/records")),
        &json!({"values": {"Guests": "Ada"}}),
    )
    .await;
    assert!(rec["id"].is_string(), "{rec}");
    // A record's page is titled by its first text field.
    let rid = rec["id"].as_str().unwrap();
    let record = get_text(&c, server.url(&format!("/w/{ws}/c/{cid}/r/{rid}"))).await;
    assert!(record.contains("<h1>Ada <small"), "{record}");

    // A record deleted since is named as its last entry showed it.
    let gone: Value = post_json(
        &c,
        api(&format!("/collections/{cid}/records")),
        &json!({"values": {"Guests": "Babbage"}}),
    )
    .await;
    let gone = gone["id"].as_str().unwrap().to_owned();
    let del = c
        .delete(api(&format!("/collections/{cid}/records/{gone}")))
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);

    let page = get_text(&c, server.url(&format!("/w/{ws}/audit"))).await;
    // Records by their first text field, the workspace by its name.
    assert!(
        page.contains(&format!("record <span title=\"{rid}\">Ada</span>")),
        "{page}"
    );
    assert!(
        page.contains(&format!("record <span title=\"{gone}\">Babbage</span>")),
        "{page}"
    );
    assert!(
        page.contains(&format!("workspace <span title=\"{ws}\">Names Ltd</span>")),
        "{page}"
    );
    assert!(page.contains("Olive Owner"), "the actor by name");
    assert!(page.contains("(olive@example.com)"), "and email");
    assert!(page.contains("Gary Guest"), "the member added, by name");
    assert!(!page.contains(&format!(">{olive}<")), "no bare id shown");
    assert!(!page.contains(&format!(">{gary}<")), "no bare id shown");
    assert!(
        page.contains(&format!("title=\"{olive}\"")),
        "the id on hover"
    );
    assert!(page.contains("collection <span title"), "{page}");

    // "Actor" takes an email or a name; Olive's entries, not the operator's.
    for who in ["olive@example.com", "Olive", "owner"] {
        let found = get_text(
            &c,
            server.url(&format!("/w/{ws}/audit?actor={}", who.replace('@', "%40"))),
        )
        .await;
        assert!(
            found.contains("records.created") || found.contains("record.created"),
            "{who}"
        );
        assert!(
            !found.contains("workspace.created"),
            "{who}: the operator's entry is not Olive's"
        );
    }

    // The entry of the record shows the field by name, its id on hover.
    let seq = page
        .split("/audit/")
        .filter_map(|s| s.split('"').next()?.parse::<i64>().ok())
        .max()
        .unwrap();
    let entry = get_text(&c, server.url(&format!("/w/{ws}/audit/{seq}"))).await;
    assert!(
        entry.contains(&format!("<td title=\"{field}\">Guests</td>")),
        "{entry}"
    );
    server.stop();
}

/// Issue 20, point 3: a record form with mistakes comes back with every
/// value kept, each problem at its field (`aria-invalid`, the message named
/// by `aria-describedby`), all of them at once, and a summary linking to
/// each field; nothing is written.
#[tokio::test]
async fn a_record_form_keeps_what_was_typed_and_puts_every_error_at_its_field() {
    let env = Env::new();
    env.create_user("form@example.com", "Form Owner");
    let ws = env.create_workspace("Forms Ltd", "form@example.com");
    let server = env.start();
    let c = client(&server);
    sign_in(&c, &server, "form@example.com").await;
    let coll: Value = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/collections")))
        .json(&json!({"name": "Stays", "fields": [
            {"name": "Guest", "type": "text", "required": true},
            {"name": "Nights", "type": "integer"},
            {"name": "Note", "type": "text"}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cid = coll["id"].as_str().unwrap().to_owned();
    let id = |name: &str| {
        coll["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let (guest, nights, note) = (id("Guest"), id("Nights"), id("Note"));
    let new = server.url(&format!("/w/{ws}/c/{cid}/new"));
    let csrf = common::page_csrf(&c, &new).await;
    let r = c
        .post(server.url(&format!("/w/{ws}/c/{cid}/records")))
        .form(&[
            ("csrf", csrf.as_str()),
            (&format!("v.{guest}"), ""),
            (&format!("v.{nights}"), "three"),
            (&format!("v.{note}"), "late arrival, keep this"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    // Both problems at once: the unparsable number and the empty required field.
    for (fid, label) in [(&guest, "Guest"), (&nights, "Nights")] {
        assert!(
            page.contains(&format!(
                "id=\"in-{fid}\" aria-invalid=\"true\" aria-describedby=\"err-{fid}\""
            )),
            "{label} marked invalid: {page}"
        );
        assert!(
            page.contains(&format!(
                "<p class=\"field-error\" id=\"err-{fid}\">{label} "
            )),
            "{label}'s message at the field"
        );
        assert!(
            page.contains(&format!("<a href=\"#in-{fid}\">{label}</a>")),
            "{label} in the summary, linked"
        );
    }
    assert!(
        !page.contains(&format!("id=\"in-{note}\" aria-invalid")),
        "a good field is not marked"
    );
    assert!(page.contains("value=\"three\""), "the bad value is kept");
    assert!(
        page.contains("value=\"late arrival, keep this\""),
        "the good value is kept"
    );
    assert!(
        !page.contains("values.Nights"),
        "errors name the field by its label"
    );
    let list: Value = c
        .get(server.url(&format!(
            "/api/v1/workspaces/{ws}/collections/{cid}/records"
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        0,
        "nothing written"
    );
    server.stop();
}

/// Issue 20, point 7 (part): the record table says how many it shows, marks
/// its sort, lets a person choose the page size, and puts the primary
/// action above the table.
#[tokio::test]
async fn the_record_table_counts_marks_its_sort_and_offers_page_sizes() {
    let env = Env::new();
    env.create_user("table@example.com", "Table Owner");
    let ws = env.create_workspace("Tables Ltd", "table@example.com");
    let server = env.start();
    let c = client(&server);
    sign_in(&c, &server, "table@example.com").await;
    let coll: Value = post_json(
        &c,
        server.url(&format!("/api/v1/workspaces/{ws}/collections")),
        &json!({"name": "Leads", "fields": [{"name": "Name", "type": "text"}]}),
    )
    .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    for i in 0..26 {
        let r = c
            .post(server.url(&format!(
                "/api/v1/workspaces/{ws}/collections/{cid}/records"
            )))
            .json(&json!({"values": {"Name": format!("Lead {i}")}}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
    }
    let page = get_text(&c, server.url(&format!("/w/{ws}/c/{cid}"))).await;
    assert!(
        page.contains("Showing 25 records; there are more."),
        "{page}"
    );
    assert!(page.contains("id=\"next-page\""));
    let (action, table) = (
        page.find("id=\"new-record\"").unwrap(),
        page.find("id=\"records\"").unwrap(),
    );
    assert!(action < table, "the primary action is above the table");
    assert_eq!(
        page.matches("aria-sort=").count(),
        1,
        "one column marked sorted"
    );
    assert!(page.contains("<option value=\"50\">50</option>"));
    let all = get_text(&c, server.url(&format!("/w/{ws}/c/{cid}?limit=50"))).await;
    assert!(all.contains(">26 records<"), "{all}");
    assert!(!all.contains("id=\"next-page\""));
    assert!(all.contains("<option value=\"50\" selected>50</option>"));
    // The other direction, and a size not on the list falls back to 25.
    let up = get_text(
        &c,
        server.url(&format!("/w/{ws}/c/{cid}?sort=created_at&limit=7")),
    )
    .await;
    assert!(up.contains("aria-sort=\"ascending\""), "{up}");
    assert!(up.contains("Showing 25 records"));
    server.stop();
}

/// Issue 20, point 8 (part): two collections never share a name; the
/// refusal names the field and writes nothing.
#[tokio::test]
async fn a_second_collection_with_the_same_name_is_refused_at_the_name() {
    let env = Env::new();
    env.create_user("dup@example.com", "Dup Owner");
    let ws = env.create_workspace("Dups Ltd", "dup@example.com");
    let server = env.start();
    let c = client(&server);
    sign_in(&c, &server, "dup@example.com").await;
    let url = server.url(&format!("/api/v1/workspaces/{ws}/collections"));
    let make = |name: &str| {
        c.post(&url)
            .json(&json!({"name": name, "fields": [{"name": "Name", "type": "text"}]}))
            .send()
    };
    assert_eq!(make("Leads").await.unwrap().status(), 201);
    let other: Value = make("Deals").await.unwrap().json().await.unwrap();
    for name in ["Leads", " leads "] {
        let r = make(name).await.unwrap();
        assert_eq!(r.status(), 422, "{name}");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["errors"][0]["field"], "name", "{p}");
    }
    // Renaming onto a taken name is refused the same way; its own name is fine.
    let deals = format!("{url}/{}", other["id"].as_str().unwrap());
    let r = c
        .patch(&deals)
        .json(&json!({"name": "LEADS"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = c
        .patch(&deals)
        .json(&json!({"name": "Deals"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let list: Value = c.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        list["items"].as_array().unwrap().len(),
        2,
        "nothing written"
    );
    server.stop();
}

/// Issue 20, point 3 (the schema editor): a schema sent back with an error
/// keeps every row as it was typed, the new ones too.
#[tokio::test]
async fn a_schema_with_one_bad_field_comes_back_with_every_row_as_typed() {
    let env = Env::new();
    env.create_user("schema@example.com", "Schema Owner");
    let ws = env.create_workspace("Schemas Ltd", "schema@example.com");
    let server = env.start();
    let c = client(&server);
    sign_in(&c, &server, "schema@example.com").await;
    let new = server.url(&format!("/w/{ws}/collections/new"));
    let csrf = common::page_csrf(&c, &new).await;
    // Two good rows and one with a money currency that is no ISO code.
    let r = c
        .post(server.url(&format!("/w/{ws}/collections")))
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "Invoices"),
            ("f0.name", "Customer"),
            ("f0.type", "text"),
            ("f0.required", "on"),
            ("f1.name", "Amount"),
            ("f1.type", "money"),
            ("f1.currency", "EURO"),
            ("f2.name", "Status"),
            ("f2.type", "select"),
            ("f2.options", "open, paid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let page = r.text().await.unwrap();
    for kept in [
        "value=\"Invoices\"",
        "value=\"Customer\"",
        "value=\"Amount\"",
        "value=\"EURO\"",
        "value=\"Status\"",
        "value=\"open, paid\"",
        "<option value=\"money\" selected>",
        "<option value=\"select\" selected>",
    ] {
        assert!(page.contains(kept), "{kept} lost: {page}");
    }
    assert!(
        page.contains("name=\"f0.required\" value=\"on\" checked"),
        "a flag is kept"
    );
    server.stop();
}
