//! The UI's shell in a real browser (issue 20, points 1, 4, 6 and 10): a deep
//! link comes back after the sign-in (and only to this site), every
//! workspace page names its workspace and marks its section, the platform
//! area has an index, a read-only workspace says so on every page and hides
//! its forms, every change says it was done, a destructive one asks first,
//! and no page scrolls sideways at 390 px or 1400 px.

mod common;

use common::browser::Browser;
use common::{Env, PASSWORD};

async fn sign_in(b: &Browser, email: &str) {
    b.type_into("#email", email).await;
    b.type_into("#password", PASSWORD).await;
    b.click("form[method=post] button[type=submit]").await;
}

/// The page fits the window: nothing wider than the viewport.
async fn fits(b: &Browser) -> (i64, i64) {
    let v = b
        .script("return [document.documentElement.scrollWidth, window.innerWidth];")
        .await;
    (v[0].as_i64().unwrap(), v[1].as_i64().unwrap())
}

#[tokio::test]
async fn deep_links_return_after_sign_in_and_the_shell_names_the_workspace_in_chromium() {
    let env = Env::new();
    env.create_user("shell@example.com", "Shell User");
    let ws = env.create_workspace("Guest Ledger", "shell@example.com");
    let other = env.create_workspace("Second Ledger", "shell@example.com");
    env.create_user("viewer@example.com", "Viewer");
    env.add_member(&ws, "viewer@example.com", "viewer");
    let server = env.start();
    let b = Browser::start().await;

    // Signed out, a deep link goes to the sign-in and comes back after it.
    b.goto(&server.url(&format!("/w/{ws}/audit?q=ledger")))
        .await;
    b.wait_for_text("Sign in").await;
    assert!(b.current_url().await.contains("/login?next="));
    sign_in(&b, "shell@example.com").await;
    b.wait_for_url(&format!("/w/{ws}/audit?q=ledger")).await;

    // The shell: the workspace's name, its sections, the current one marked.
    assert_eq!(b.text("#workspace-name").await, "Guest Ledger");
    assert_eq!(b.attr("#nav-audit", "aria-current").await, "page");
    assert_eq!(b.count("[aria-current=page]").await, 1);
    for id in [
        "#nav-records",
        "#nav-members",
        "#nav-privacy",
        "#nav-integrations",
        "#nav-settings",
    ] {
        assert_eq!(b.count(id).await, 1, "{id} in the sidebar");
    }
    assert_eq!(b.count("a.skip-link[href='#main']").await, 1);
    assert_eq!(b.count("main#main").await, 1);
    // The switcher leads to the person's other workspace.
    b.click("#workspace-switcher summary").await;
    b.click(&format!("#workspace-switcher a[href='/w/{other}']"))
        .await;
    b.wait_for_url(&format!("/w/{other}")).await;
    assert_eq!(b.text("#workspace-name").await, "Second Ledger");
    assert_eq!(b.attr("#nav-records", "aria-current").await, "page");
    b.click("#nav-members").await;
    b.wait_for_url(&format!("/w/{other}/members")).await;
    assert_eq!(b.attr("#nav-members", "aria-current").await, "page");
    b.screenshot("shell-members").await;

    // `next` never leads off the site.
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("Sign in").await;
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/%5Cevil.example",
        "%2F%2Fevil.example",
    ] {
        b.goto(&server.url(&format!("/login?next={evil}"))).await;
        sign_in(&b, "shell@example.com").await;
        b.wait_for_text("Your workspaces").await;
        let url = b.current_url().await;
        assert!(url.starts_with(&server.url("/")), "{evil} led to {url}");
        assert!(url.ends_with("/workspaces"), "{evil} led to {url}");
        b.click("form[action='/logout'] button").await;
        b.wait_for_text("Sign in").await;
    }

    // A viewer sees the sections a viewer can open, not the admin ones.
    b.goto(&server.url(&format!("/w/{ws}"))).await;
    sign_in(&b, "viewer@example.com").await;
    b.wait_for_url(&format!("/w/{ws}")).await;
    assert_eq!(b.count("#nav-records").await, 1);
    assert_eq!(b.count("#nav-audit").await, 0);
    assert_eq!(b.count("#nav-integrations").await, 0);
    assert_eq!(
        b.count("#workspace-switcher").await,
        0,
        "one workspace only"
    );

    b.quit().await;
    server.stop();
}

#[tokio::test]
async fn a_read_only_workspace_says_so_on_every_page_and_hides_its_forms_in_chromium() {
    let env = Env::new();
    env.create_user("doomed@example.com", "Owner");
    let ws = env.create_workspace("Doomed Ltd", "doomed@example.com");
    let server = env.start();
    let b = Browser::start().await;
    b.goto(&server.url(&format!("/w/{ws}/settings"))).await;
    sign_in(&b, "doomed@example.com").await;
    b.wait_for_url(&format!("/w/{ws}/settings")).await;
    assert_eq!(b.count("#read-only-banner").await, 0);
    assert_eq!(b.count("#new-collection").await, 0, "not on this page");
    b.goto(&server.url(&format!("/w/{ws}"))).await;
    assert_eq!(b.count("#new-collection").await, 1);

    b.goto(&server.url(&format!("/w/{ws}/settings"))).await;
    b.type_into("#confirm_name", "Doomed Ltd").await;
    b.click("#deletion-form button[type=submit]").await;
    b.wait_for_text("read-only").await;
    for path in ["", "/members", "/teams", "/audit", "/privacy", "/settings"] {
        b.goto(&server.url(&format!("/w/{ws}{path}"))).await;
        let banner = b.text("#read-only-banner").await;
        assert!(
            banner.contains("scheduled for deletion"),
            "{path}: {banner}"
        );
    }
    b.goto(&server.url(&format!("/w/{ws}"))).await;
    assert_eq!(
        b.count("#new-collection").await,
        0,
        "no form that cannot save"
    );
    b.goto(&server.url(&format!("/w/{ws}/teams"))).await;
    assert_eq!(b.count(&format!("form[action='/w/{ws}/teams']")).await, 0);
    b.screenshot("read-only-workspace").await;

    b.quit().await;
    server.stop();
}

#[tokio::test]
async fn no_page_scrolls_sideways_at_390_or_1400_px_in_chromium() {
    let env = Env::new();
    env.create_user("narrow@example.com", "Narrow");
    let ws = env.create_workspace(
        "A workspace with a rather long name that should wrap",
        "narrow@example.com",
    );
    env.create_platform_admin("staff@example.com");
    env.add_member(&ws, "staff@example.com", "admin");
    let server = env.start();
    // A collection with a record, so its pages are in the list too.
    let c = common::client(&server);
    assert_eq!(
        common::login(&c, &server, "staff@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let coll: serde_json::Value = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/collections")))
        .json(&serde_json::json!({"name": "Reservations", "fields": [
            {"name": "Guest", "type": "text", "pii": true},
            {"name": "Nights", "type": "integer"},
            {"name": "Status", "type": "select", "options": ["booked", "cancelled"]}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cid = coll["id"].as_str().unwrap().to_owned();
    let rec: serde_json::Value = c
        .post(server.url(&format!(
            "/api/v1/workspaces/{ws}/collections/{cid}/records"
        )))
        .json(&serde_json::json!({"values": {"Guest": "Ada Lovelace", "Nights": 3, "Status": "booked"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rid = rec["id"].as_str().unwrap().to_owned();
    let b = Browser::start().await;
    b.goto(&server.url("/login")).await;
    sign_in(&b, "staff@example.com").await;
    b.wait_for_text("Your workspaces").await;

    let pages = [
        "/workspaces".to_owned(),
        "/account".to_owned(),
        "/trust".to_owned(),
        "/platform".to_owned(),
        "/platform/workspaces".to_owned(),
        "/platform/accounts".to_owned(),
        "/platform/audit".to_owned(),
        "/platform/backups".to_owned(),
        format!("/w/{ws}"),
        format!("/w/{ws}/collections/new"),
        format!("/w/{ws}/members"),
        format!("/w/{ws}/teams"),
        format!("/w/{ws}/audit"),
        format!("/w/{ws}/privacy"),
        format!("/w/{ws}/integrations"),
        format!("/w/{ws}/settings"),
        format!("/w/{ws}/c/{cid}"),
        format!("/w/{ws}/c/{cid}/new"),
        format!("/w/{ws}/c/{cid}/r/{rid}"),
        format!("/w/{ws}/c/{cid}/schema"),
        format!("/w/{ws}/audit/1"),
        "/platform/audit/1".to_owned(),
    ];
    // The platform index links its areas.
    b.goto(&server.url("/platform")).await;
    for area in [
        "/platform/workspaces",
        "/platform/accounts",
        "/platform/audit",
        "/platform/backups",
    ] {
        assert_eq!(
            b.count(&format!("#platform-areas a[href='{area}']")).await,
            1
        );
    }
    let mut wide = Vec::new();
    let mut inaccessible = Vec::new();
    for (w, h) in [(390, 844), (1400, 900)] {
        b.set_window(w, h).await;
        for p in &pages {
            b.goto(&server.url(p)).await;
            b.find("footer").await;
            // Words for people (point 11): no operator detail on the
            // pages members use (platform pages and /trust are for staff
            // and reviewers).
            if w == 390 && !p.starts_with("/platform") && p != "/trust" {
                let text = b.text("main").await;
                for word in [
                    "public_url",
                    "pii",
                    "age recipient",
                    "SHA-256",
                    "aura workspace",
                ] {
                    assert!(!text.contains(word), "{p} says {word:?}: {text}");
                }
            }
            if w == 1400 {
                for v in b.accessibility_violations().await {
                    inaccessible.push(format!("{p}: {v}"));
                }
            }
            let (scroll, inner) = fits(&b).await;
            if scroll > inner {
                wide.push(format!("{p} at {w} px: {scroll} > {inner}"));
            }
            let name = format!("{w}px{}", p.replace('/', "-"));
            b.screenshot(&name).await;
        }
    }
    // Signed out: the sign-in and reset pages.
    b.goto(&server.url("/workspaces")).await;
    b.click("form[action='/logout'] button").await;
    b.wait_for_text("Sign in").await;
    for (w, h) in [(390, 844), (1400, 900)] {
        b.set_window(w, h).await;
        for p in ["/login", "/reset"] {
            b.goto(&server.url(p)).await;
            b.find("footer").await;
            let (scroll, inner) = fits(&b).await;
            if scroll > inner {
                wide.push(format!("{p} at {w} px: {scroll} > {inner}"));
            }
            if w == 1400 {
                for v in b.accessibility_violations().await {
                    inaccessible.push(format!("{p}: {v}"));
                }
            }
        }
    }
    assert!(wide.is_empty(), "pages wider than the window: {wide:#?}");
    assert!(
        inaccessible.is_empty(),
        "axe-core: serious or critical violations: {inaccessible:#?}"
    );

    b.quit().await;
    server.stop();
}

#[tokio::test]
async fn changes_say_they_were_done_and_deleting_asks_first_in_chromium() {
    let env = Env::new();
    env.create_user("teams@example.com", "Owner");
    let ws = env.create_workspace("Flash Ltd", "teams@example.com");
    let server = env.start();
    let b = Browser::start().await;
    b.goto(&server.url(&format!("/w/{ws}/teams"))).await;
    sign_in(&b, "teams@example.com").await;
    b.wait_for_url(&format!("/w/{ws}/teams")).await;
    assert_eq!(b.count("#flash").await, 0);

    b.type_into("#team-name", "Night shift").await;
    b.click("#new-team button[type=submit]").await;
    assert_eq!(
        b.wait_for_text("Team created.")
            .await
            .matches("Team created.")
            .count(),
        1
    );
    assert_eq!(b.attr("#flash", "role").await, "status");
    // Shown once: the next page has no flash.
    b.goto(&server.url(&format!("/w/{ws}/teams"))).await;
    b.find("footer").await;
    assert_eq!(b.count("#flash").await, 0, "the flash is shown once");

    // Delete asks first; Cancel changes nothing.
    let delete = "form[data-confirm][action$='/delete'] button[type=submit]";
    b.click(delete).await;
    b.find("dialog.confirm[open]").await;
    assert!(b.text("#confirm-text").await.contains("Delete this team?"));
    b.click("#confirm-cancel").await;
    assert_eq!(b.count("dialog.confirm").await, 0);
    b.goto(&server.url(&format!("/w/{ws}/teams"))).await;
    assert!(
        b.source().await.contains("Night shift"),
        "cancel kept the team"
    );
    // Confirmed, it goes, and the page says so.
    b.click(delete).await;
    b.click("#confirm-ok").await;
    b.wait_for_text("Team deleted.").await;
    assert!(!b.source().await.contains("Night shift"));
    b.screenshot("flash-team-deleted").await;

    b.quit().await;
    server.stop();
}

/// Issue 20, point 9: platform staff create an account (invited by mail)
/// and disable it from `/platform/accounts`, the disable asking first.
#[tokio::test]
async fn platform_staff_create_and_disable_an_account_in_chromium() {
    let env = Env::new();
    env.create_platform_admin("staff@example.com");
    let sink = common::smtp::Sink::start();
    let vars = sink.env();
    let vars: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = env.start_with(&vars);
    let b = Browser::start().await;
    b.goto(&server.url("/platform")).await;
    sign_in(&b, "staff@example.com").await;
    b.wait_for_url("/platform").await;
    b.click("#platform-areas a[href='/platform/accounts']")
        .await;
    b.wait_for_url("/platform/accounts").await;

    b.type_into("#acct-email", "newcomer@example.com").await;
    b.type_into("#acct-name", "New Comer").await;
    b.click("#new-account button[type=submit]").await;
    b.wait_for_text("the invitation is on its way").await;
    assert!(sink.link_token("newcomer@example.com", "/reset/").len() > 20);
    let row = "tr[data-email='newcomer@example.com']";
    assert_eq!(b.count(row).await, 1);
    assert_eq!(b.text(&format!("{row} .badge")).await, "invited");
    // One's own row has no Disable button.
    assert_eq!(
        b.count("tr[data-email='staff@example.com'] form[action='/platform/accounts/disable']")
            .await,
        0
    );

    let disable = format!("{row} form[action='/platform/accounts/disable'] button[type=submit]");
    b.click(&disable).await;
    b.find("dialog.confirm[open]").await;
    assert!(
        b.text("#confirm-text")
            .await
            .contains("Disable this account?")
    );
    b.click("#confirm-ok").await;
    b.wait_for_text("Account disabled.").await;
    assert_eq!(b.text(&format!("{row} .badge")).await, "disabled");
    assert_eq!(
        b.count(&format!("{row} form[action='/platform/accounts/enable']"))
            .await,
        1
    );
    b.screenshot("platform-accounts").await;
    b.quit().await;
    server.stop();
}
