//! Forms in a real browser (issue 20, points 3 and 8): the schema editor
//! shows each type's own setting and puts an error at the row's input with
//! every row kept; a collection is renamed and deleted (after a confirming
//! dialog) from the UI, both audited; the webhook form keeps what was typed
//! on a 4xx; a CSV import names every problem in one answer (API and page).

mod common;

use common::browser::Browser;
use common::{Env, PASSWORD, client, get_json, login};
use serde_json::{Value, json};

async fn sign_in(b: &Browser, email: &str) {
    b.type_into("#email", email).await;
    b.type_into("#password", PASSWORD).await;
    b.click("form[method=post] button[type=submit]").await;
}

async fn api_client(server: &common::Server, email: &str) -> reqwest::Client {
    let c = client(server);
    assert_eq!(login(&c, server, email, PASSWORD).await.status(), 200);
    c
}

async fn post_json(c: &reqwest::Client, url: String, body: &Value) -> (u16, Value) {
    let r = c.post(url).json(body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Whether the element matching `css` is shown (not inside a hidden box).
async fn visible(b: &Browser, css: &str) -> bool {
    let v = b
        .script(&format!(
            "const e = document.querySelector({css:?}); return !!e && e.offsetParent !== null;"
        ))
        .await;
    v.as_bool().unwrap()
}

#[tokio::test]
async fn the_schema_editor_shows_each_types_setting_and_puts_errors_at_the_row_in_chromium() {
    let env = Env::new();
    env.create_user("schema@example.com", "Schema Owner");
    let ws = env.create_workspace("Schema Ltd", "schema@example.com");
    let server = env.start();
    let c = api_client(&server, "schema@example.com").await;
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    // The API refuses a money field without its currency, naming the field.
    let (s, body) = post_json(
        &c,
        api("/collections"),
        &json!({"name": "Bad", "fields": [{"name": "Amount", "type": "money"}]}),
    )
    .await;
    assert_eq!(s, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "fields[0].currency", "{body}");
    let (s, coll) = post_json(
        &c,
        api("/collections"),
        &json!({"name": "Invoices", "fields": [
            {"name": "Customer", "type": "text"},
            {"name": "Amount", "type": "money", "currency": "EUR"},
            {"name": "Status", "type": "select", "options": ["open", "paid"]}
        ]}),
    )
    .await;
    assert_eq!(s, 201, "{coll}");
    let cid = coll["id"].as_str().unwrap();

    let b = Browser::start().await;
    b.goto(&server.url(&format!("/w/{ws}/c/{cid}/schema")))
        .await;
    sign_in(&b, "schema@example.com").await;
    b.wait_for_url("/schema").await;
    // Stored fields: only their type's setting is there at all.
    for (input, present) in [
        ("f0.options", false),
        ("f0.currency", false),
        ("f0.collection", false),
        ("f1.currency", true),
        ("f1.options", false),
        ("f1.collection", false),
        ("f2.options", true),
        ("f2.currency", false),
        ("f2.collection", false),
    ] {
        let n = b.count(&format!("[name='{input}']")).await;
        assert_eq!(n == 1, present, "{input}");
    }
    assert_eq!(b.attr("[name='f1.currency']", "value").await, "EUR");
    assert_eq!(b.attr("[name='f2.options']", "value").await, "open, paid");
    // A new row: the chosen type's setting shows, the others hide.
    b.type_into("[name='f3.name']", "Deposit").await;
    b.click("select[name='f3.type'] option[value='money']")
        .await;
    assert!(visible(&b, "[name='f3.currency']").await);
    assert!(!visible(&b, "[name='f3.options']").await);
    assert!(!visible(&b, "[name='f3.collection']").await);
    b.type_into("[name='f4.name']", "Stage").await;
    b.click("select[name='f4.type'] option[value='select']")
        .await;
    assert!(visible(&b, "[name='f4.options']").await);
    assert!(!visible(&b, "[name='f4.currency']").await);
    b.screenshot("schema-settings-by-type").await;
    // Saved without the currency nor the choices: both at their input.
    b.click("#schema button[type=submit]").await;
    let page = b.wait_for_text("Nothing was saved").await;
    assert_eq!(b.attr("#in-f3-currency", "aria-invalid").await, "true");
    assert_eq!(
        b.attr("#in-f3-currency", "aria-describedby").await,
        "err-f3-currency"
    );
    assert!(
        b.text("#err-f3-currency")
            .await
            .contains("required for money")
    );
    assert_eq!(b.attr("#in-f4-options", "aria-invalid").await, "true");
    assert!(
        b.text("#err-f4-options")
            .await
            .contains("at least one choice")
    );
    assert!(
        visible(&b, "#in-f3-currency").await,
        "the money row's currency shows"
    );
    assert!(!visible(&b, "[name='f3.options']").await);
    // The summary links to each input.
    assert_eq!(b.count("#error-summary a[href='#in-f3-currency']").await, 1);
    assert_eq!(b.count("#error-summary a[href='#in-f4-options']").await, 1);
    // Every row kept as it was.
    for (input, value) in [
        ("f0.name", "Customer"),
        ("f1.name", "Amount"),
        ("f1.currency", "EUR"),
        ("f2.name", "Status"),
        ("f2.options", "open, paid"),
        ("f3.name", "Deposit"),
        ("f4.name", "Stage"),
    ] {
        assert_eq!(
            b.attr(&format!("[name='{input}']"), "value").await,
            value,
            "{input}"
        );
    }
    assert!(
        page.contains("<option value=\"money\" selected"),
        "f3's type kept"
    );
    let stored = get_json(&c, api(&format!("/collections/{cid}"))).await;
    assert_eq!(
        stored["fields"].as_array().unwrap().len(),
        3,
        "nothing saved"
    );
    b.quit().await;
    server.stop();
}

#[tokio::test]
async fn a_collection_is_renamed_then_deleted_after_confirming_in_chromium() {
    let env = Env::new();
    env.create_user("coll@example.com", "Coll Owner");
    let ws = env.create_workspace("Rename Ltd", "coll@example.com");
    let server = env.start();
    let c = api_client(&server, "coll@example.com").await;
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    // Leads relate to Companies: the stored relation is sent back as it is
    // when the schema form is saved.
    let (_, companies) = post_json(
        &c,
        api("/collections"),
        &json!({"name": "Companies", "fields": [{"name": "Name", "type": "text"}]}),
    )
    .await;
    let (_, coll) = post_json(
        &c,
        api("/collections"),
        &json!({"name": "Leads", "fields": [
            {"name": "Name", "type": "text"},
            {"name": "Company", "type": "relation", "collection": companies["id"]}
        ]}),
    )
    .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let (s, _) = post_json(
        &c,
        api(&format!("/collections/{cid}/records")),
        &json!({"values": {"Name": "Ada"}}),
    )
    .await;
    assert_eq!(s, 201);

    let b = Browser::start().await;
    b.goto(&server.url(&format!("/w/{ws}/c/{cid}/schema")))
        .await;
    sign_in(&b, "coll@example.com").await;
    b.wait_for_url("/schema").await;
    assert!(b.source().await.contains("Related collection: Companies"));
    b.script("document.querySelector('#name').value = '';")
        .await;
    b.type_into("#name", "Prospects").await;
    b.click("#schema button[type=submit]").await;
    b.wait_for_text("Collection saved.").await;
    b.goto(&server.url(&format!("/w/{ws}"))).await;
    let list = b.source().await;
    assert!(
        list.contains("Prospects") && !list.contains("Leads"),
        "renamed"
    );

    // Delete asks first; Cancel keeps it.
    b.goto(&server.url(&format!("/w/{ws}/c/{cid}/schema")))
        .await;
    let delete = "#delete-collection form[data-confirm] button[type=submit]";
    b.click(delete).await;
    b.find("dialog.confirm[open]").await;
    assert!(b.text("#confirm-text").await.contains("Prospects"));
    b.click("#confirm-cancel").await;
    b.goto(&server.url(&format!("/w/{ws}"))).await;
    assert!(b.source().await.contains("Prospects"), "cancel kept it");
    b.goto(&server.url(&format!("/w/{ws}/c/{cid}/schema")))
        .await;
    b.click(delete).await;
    b.click("#confirm-ok").await;
    let list = b.wait_for_text("Collection deleted.").await;
    assert!(!list.contains("Prospects"), "gone from the list");
    b.screenshot("collection-deleted").await;

    let r = c
        .get(api(&format!("/collections/{cid}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // Both changes are in the workspace's audit log, on this collection.
    for action in ["collection.updated", "collection.deleted"] {
        let log = get_json(&c, api(&format!("/audit?action={action}"))).await;
        let items = log["items"].as_array().unwrap();
        assert!(
            items
                .iter()
                .any(|e| e["target"].as_str().unwrap_or_default().contains(&cid)),
            "{action}: {log}"
        );
        if action == "collection.updated" {
            let renamed = items.iter().any(|e| {
                e["withheld"] == true
                    || (e["before"]["name"] == "Leads" && e["after"]["name"] == "Prospects")
            });
            assert!(renamed, "{log}");
        }
    }
    b.quit().await;
    server.stop();
}

#[tokio::test]
async fn the_webhook_form_keeps_url_and_events_on_a_refused_url_in_chromium() {
    let env = Env::new();
    env.create_user("hooks@example.com", "Hook Owner");
    let ws = env.create_workspace("Hooks Ltd", "hooks@example.com");
    let server = env.start();
    let b = Browser::start().await;
    b.goto(&server.url(&format!("/w/{ws}/integrations"))).await;
    sign_in(&b, "hooks@example.com").await;
    b.wait_for_url("/integrations").await;
    // A URL the browser takes but the server refuses (credentials in it).
    let url = "https://user:secret@hooks.example.com/aura";
    b.type_into("#webhook-url", url).await;
    for event in ["record.created", "member.added"] {
        b.click(&format!("#new-webhook-form input[value='{event}']"))
            .await;
    }
    b.click("#new-webhook-form button[type=submit]").await;
    b.wait_for_text("Nothing was saved").await;
    let value = b
        .script("return document.querySelector('#webhook-url').value;")
        .await;
    assert_eq!(value, url, "the URL is kept");
    assert_eq!(b.attr("#webhook-url", "aria-invalid").await, "true");
    assert!(b.text("#err-webhook-url").await.contains("credentials"));
    assert_eq!(b.count("#error-summary a[href='#webhook-url']").await, 1);
    let checked = b
        .script(
            "return [...document.querySelectorAll('#new-webhook-form input[name=events]:checked')].map(e => e.value);",
        )
        .await;
    assert_eq!(checked, json!(["record.created", "member.added"]));
    b.quit().await;
    server.stop();
}

/// Seven problems of four kinds: an unknown column, unreadable cells, a
/// missing required value and values already taken (in the workspace and
/// earlier in the file): all seven in one answer, nothing imported.
const SEVEN: &str = "Name,Email,Nights,Colour
Ada,ada@example.com,2,red
,bob@example.com,3,red
Cy,not-an-email,4,red
Di,di@example.com,many,red
Ed,ed@example.com,-,red
Fa,taken@example.com,1,red
Gi,ada@example.com,1,red
";

#[tokio::test]
async fn a_csv_with_seven_problems_lists_all_seven_in_the_api_and_the_page_in_chromium() {
    let env = Env::new();
    env.create_user("csv@example.com", "Csv Owner");
    let ws = env.create_workspace("Csv Ltd", "csv@example.com");
    let server = env.start();
    let c = api_client(&server, "csv@example.com").await;
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let (_, coll) = post_json(
        &c,
        api("/collections"),
        &json!({"name": "Guests", "fields": [
            {"name": "Name", "type": "text", "required": true},
            {"name": "Email", "type": "email", "unique": true},
            {"name": "Nights", "type": "integer"}
        ]}),
    )
    .await;
    let cid = coll["id"].as_str().unwrap().to_owned();
    let (s, _) = post_json(
        &c,
        api(&format!("/collections/{cid}/records")),
        &json!({"values": {"Name": "Taken", "Email": "taken@example.com"}}),
    )
    .await;
    assert_eq!(s, 201);
    let r = c
        .post(api(&format!("/collections/{cid}/import")))
        .header("content-type", "text/csv")
        .body(SEVEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    let fields: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "line 1, column Colour",
            "line 3, column Name",
            "line 4, column Email",
            "line 5, column Nights",
            "line 6, column Nights",
            "line 7, column Email",
            "line 8, column Email",
        ],
        "{body}"
    );
    let listed = get_json(&c, api(&format!("/collections/{cid}/records"))).await;
    assert_eq!(
        listed["items"].as_array().unwrap().len(),
        1,
        "nothing imported"
    );

    // The page shows the same seven.
    let file = env.root().join("seven.csv");
    std::fs::write(&file, SEVEN).unwrap();
    let b = Browser::start().await;
    b.goto(&server.url(&format!("/w/{ws}/c/{cid}"))).await;
    sign_in(&b, "csv@example.com").await;
    b.wait_for_url(&format!("/c/{cid}")).await;
    b.type_into("#import-file", file.to_str().unwrap()).await;
    b.click("#import button[type=submit]").await;
    b.wait_for_text("Nothing was imported").await;
    assert_eq!(b.count("#import-result li").await, 7);
    let shown = b.text("#import-result").await;
    for f in fields {
        assert!(shown.contains(f), "{f} shown: {shown}");
    }
    b.quit().await;
    server.stop();
}

/// The other workspace forms keep what was typed on a 4xx: a team name
/// that is too long (the error at it), an invitation to a bad address, a
/// token with a bad expiry, the deletion's confirmation name.
#[tokio::test]
async fn other_forms_keep_what_was_typed_on_a_refusal() {
    let env = Env::new();
    env.create_user("other@example.com", "Other Owner");
    let ws = env.create_workspace("Other Ltd", "other@example.com");
    let server = env.start();
    let c = api_client(&server, "other@example.com").await;
    let csrf = common::page_csrf(&c, &server.url(&format!("/w/{ws}/teams"))).await;
    let long = "N".repeat(65);
    for (path, form, kept) in [
        (
            "teams",
            vec![("name", long.as_str())],
            vec![format!("value=\"{long}\""), "aria-invalid=\"true\"".into()],
        ),
        (
            "invitations",
            vec![("email", "not-an-address"), ("role", "manager")],
            vec![
                "value=\"not-an-address\"".into(),
                "<option value=\"manager\" selected>".into(),
                // The error beside the input, and the summary links to it.
                "aria-describedby=\"err-invite-email\"".into(),
                "href=\"#invite-email\"".into(),
            ],
        ),
        (
            "tokens",
            vec![
                ("name", "deploy bot"),
                ("scope", "member"),
                ("expires_in_days", "soon"),
            ],
            vec![
                "value=\"deploy bot\"".into(),
                "value=\"soon\"".into(),
                "aria-describedby=\"err-token-days\"".into(),
                "href=\"#token-days\"".into(),
            ],
        ),
        (
            "deletion",
            vec![("confirm_name", "Not the name")],
            vec![
                "value=\"Not the name\"".into(),
                "aria-describedby=\"err-confirm_name\"".into(),
                "href=\"#confirm_name\"".into(),
            ],
        ),
    ] {
        let mut body = vec![("csrf", csrf.as_str())];
        body.extend(form);
        let r = c
            .post(server.url(&format!("/w/{ws}/{path}")))
            .form(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422, "{path}");
        let page = r.text().await.unwrap();
        for k in kept {
            assert!(page.contains(&k), "{path}: {k} lost");
        }
    }
    server.stop();
}

/// The platform forms too: a refused account or workspace comes back with
/// what was typed, the error beside its input, the summary linking to it.
#[tokio::test]
async fn platform_forms_put_each_error_at_its_input() {
    let env = Env::new();
    env.create_platform_admin("staff@example.com");
    let server = env.start();
    let c = api_client(&server, "staff@example.com").await;
    let csrf = common::page_csrf(&c, &server.url("/platform/accounts")).await;
    for (path, form, want) in [
        (
            "/platform/accounts",
            vec![("email", "not-an-address"), ("name", "Newcomer")],
            vec![
                "value=\"not-an-address\"",
                "value=\"Newcomer\"",
                "aria-describedby=\"err-acct-email\"",
                "href=\"#acct-email\"",
            ],
        ),
        (
            "/platform/workspaces",
            vec![("name", "Acme"), ("owner_email", "not-an-address")],
            vec![
                "value=\"Acme\"",
                "aria-describedby=\"err-ws-owner\"",
                "href=\"#ws-owner\"",
            ],
        ),
    ] {
        let mut body = vec![("csrf", csrf.as_str())];
        body.extend(form);
        let r = c.post(server.url(path)).form(&body).send().await.unwrap();
        let status = r.status().as_u16();
        let page = r.text().await.unwrap();
        assert_eq!(status, 422, "{path}: {page}");
        for w in want {
            assert!(page.contains(w), "{path}: {w} missing");
        }
    }
    server.stop();
}
