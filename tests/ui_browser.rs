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
