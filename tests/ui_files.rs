//! Files on the record page in a real browser: app.js sends the upload
//! form with a progress bar and puts the answering page in place (the new
//! file listed, an image previewed through the download route with its safe
//! headers), a refused type comes back at the field, and the page has no
//! accessibility violation.

mod common;

use common::browser::Browser;
use common::{Env, PASSWORD, client, login};
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_is_uploaded_with_progress_previewed_and_refused_at_its_field_in_chromium() {
    let env = Env::new();
    env.create_user("files@example.com", "Files Owner");
    let ws = env.create_workspace("Files Ltd", "files@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "files@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let coll: Value = c
        .post(api("/collections"))
        .json(&json!({"name": "Guests", "fields": [
            {"name": "Name", "type": "text"},
            {"name": "Photo", "type": "file", "types": ["image/*"]}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cid = coll["id"].as_str().unwrap();
    let photo = coll["fields"][1]["id"].as_str().unwrap();
    let rec: Value = c
        .post(api(&format!("/collections/{cid}/records")))
        .json(&json!({"values": {"Name": "Ada"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rid = rec["id"].as_str().unwrap();
    // A real PNG (1x1), and a text file named like an image.
    let png_path = env.root().join("ada.png");
    std::fs::write(
        &png_path,
        [
            0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48,
            0x44, 0x52, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00,
            0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78,
            0x9c, 0x63, 0xf8, 0xcf, 0xc0, 0xf0, 0x1f, 0x00, 0x05, 0x00, 0x01, 0xff, 0x89, 0x99,
            0x3d, 0x1d, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
        ],
    )
    .unwrap();
    let fake_path = env.root().join("fake.png");
    std::fs::write(&fake_path, "<html>not an image</html>").unwrap();

    let b = Browser::start().await;
    let page = server.url(&format!("/w/{ws}/c/{cid}/r/{rid}"));
    b.goto(&page).await;
    b.type_into("#email", "files@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("form[method=post] button[type=submit]").await;
    b.wait_for_url(&format!("/r/{rid}")).await;
    let input = format!("#file-{photo}");
    let form = format!("form[data-upload][action*='/files/{photo}']");
    // Watch the progress bar: app.js shows it once the upload starts.
    b.script(&format!(
        "window.__sawProgress = false; const f = document.querySelector({form:?}); \
         f.addEventListener('submit', () => setTimeout(() => {{ \
           const p = document.querySelector({form:?} + ' progress'); \
           if (p && !p.hidden) window.__sawProgress = true; }}, 0));"
    ))
    .await;
    b.type_into(&input, png_path.to_str().unwrap()).await;
    b.click(&format!("{form} button[type=submit]")).await;
    b.wait_for_text("ada.png").await;
    // The page was put in place by app.js (no navigation by the form).
    let saw = b.script("return window.__sawProgress === true;").await;
    assert_eq!(saw, Value::Bool(true), "the progress bar showed");
    let src = b.attr("img.file-preview", "src").await;
    assert!(src.contains(&format!("/files/{photo}/fl_")), "{src}");
    let loaded = b
        .script_async(
            "const i = document.querySelector('img.file-preview'); \
             if (i.complete) done(i.naturalWidth); else i.onload = () => done(i.naturalWidth);",
        )
        .await;
    assert_eq!(
        loaded,
        json!(1),
        "the preview loads through the download route"
    );
    let violations = b.accessibility_violations().await;
    assert!(violations.is_empty(), "{violations:?}");

    // A text file named .png: refused by its content, the error at the field.
    b.type_into(&input, fake_path.to_str().unwrap()).await;
    b.click(&format!("{form} button[type=submit]")).await;
    let text = b.wait_for_text("takes files of type image/*").await;
    assert!(text.contains("this file is text/html"), "{text}");
    assert_eq!(
        b.attr(&input, "aria-invalid").await,
        "true",
        "the input is marked"
    );
    b.quit().await;
    // One file stored: the refused one left nothing.
    let dir = env.data_dir().join("tenants").join(&ws).join("files");
    let stored = std::fs::read_dir(&dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().is_file())
        .count();
    assert_eq!(stored, 1);
}
