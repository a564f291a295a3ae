//! The web UI in a real browser (Debian's chromium, headless, via
//! chromedriver): sign in, see the workspace, sign out.

mod common;

use common::browser::Browser;
use common::{Env, PASSWORD};

#[tokio::test]
async fn sign_in_see_workspaces_sign_out_in_chromium() {
    let env = Env::new();
    env.create_user("browser@example.com", "Browser User");
    env.create_workspace("Guest Ledger", "browser@example.com");
    let server = env.start();
    let b = Browser::start().await;

    b.goto(&server.url("/")).await;
    b.wait_for_text("Sign in").await;
    assert!(b.current_url().await.ends_with("/login"));

    // A wrong password shows an error, not a crash.
    b.type_into("#email", "browser@example.com").await;
    b.type_into("#password", "not the password").await;
    b.click("button[type=submit]").await;
    b.wait_for_text("do not match").await;

    b.goto(&server.url("/login")).await;
    b.type_into("#email", "browser@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    let page = b.wait_for_text("Guest Ledger").await;
    assert!(page.contains("owner"));
    assert!(b.current_url().await.ends_with("/workspaces"));

    b.click("form[action='/logout'] button").await;
    b.wait_for_text("Sign in").await;
    b.goto(&server.url("/workspaces")).await;
    b.wait_for_text("Sign in").await;
    assert!(
        b.current_url().await.ends_with("/login"),
        "signed out for real"
    );

    b.quit().await;
    server.stop();
}

#[tokio::test]
async fn audit_page_finds_an_action_by_free_text_in_chromium() {
    let env = Env::new();
    env.create_user("auditor@example.com", "Auditor");
    let ws = env.create_workspace("Zanzibar Bookings", "auditor@example.com");
    env.create_user("guest@example.com", "Guest");
    env.add_member(&ws, "guest@example.com", "viewer");
    let server = env.start();
    let b = Browser::start().await;

    b.goto(&server.url("/login")).await;
    b.type_into("#email", "auditor@example.com").await;
    b.type_into("#password", PASSWORD).await;
    b.click("button[type=submit]").await;
    b.wait_for_text("Zanzibar Bookings").await;
    b.click(&format!("a[href='/w/{ws}/audit']")).await;
    b.wait_for_text("Integrity").await;

    // Free text reaches the sealed details: the workspace's name lives only there.
    b.type_into("input[name=q]", "zanzibar").await;
    b.click("form.filters button[type=submit]").await;
    b.wait_for_url("q=zanzibar").await;
    let page = b.wait_for_text("workspace.created").await;
    b.screenshot("audit-search").await;
    assert!(
        !page.contains("member.added"),
        "only the matching entry is listed"
    );

    // The entry's detail page shows the change.
    b.click("table.audit tbody tr td a").await;
    let detail = b.wait_for_text("Change").await;
    b.screenshot("audit-entry").await;
    assert!(detail.contains("Zanzibar Bookings"));

    // Verify now records an intact verification.
    b.goto(&server.url(&format!("/w/{ws}/audit"))).await;
    b.click("section.status button[type=submit]").await;
    b.wait_for_text("Verified intact").await;
    b.screenshot("audit-verified").await;

    b.quit().await;
    server.stop();
}
