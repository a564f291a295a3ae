//! The SCIM token on the workspace's Members page (issued with the secret
//! shown once, rotated behind a confirmation, revoked; members see none of
//! it), and the request budget's 429 as a SCIM error.

use reqwest::Method;
use serde_json::Value;

use super::common::mfa::signed_in;
use super::common::{self, Env, bearer};
use super::{assert_scim_error, issue, scim, users};

/// The secret shown in `#new-scim-token` on an answering page.
fn shown_secret(html: &str) -> Option<String> {
    let marker = "id=\"new-scim-token\">";
    let start = html.find(marker)? + marker.len();
    Some(html[start..].split('<').next()?.to_owned())
}

#[tokio::test]
async fn the_members_page_issues_rotates_and_revokes_the_scim_token() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    env.create_user("member@example.com", "Member");
    let ws = env.create_workspace("Paged", "owner@example.com");
    env.add_member(&ws, "member@example.com", "member");
    let server = env.start();
    let owner = signed_in(&server, "owner@example.com").await;
    let page = server.url(&format!("/w/{ws}/members"));
    let html = common::get_text(&owner, &page).await;
    assert!(html.contains("id=\"scim\""), "the section is there");
    assert!(
        html.contains(&format!("/scim/v2/workspaces/{ws}")),
        "the base URL"
    );
    assert!(html.contains("None: the identity provider cannot reach this workspace."));
    let member = signed_in(&server, "member@example.com").await;
    let theirs = common::get_text(&member, &page).await;
    assert!(!theirs.contains("id=\"scim\""), "members do not see it");

    // Issue: the secret on the answering page, once.
    let csrf = common::csrf_from(&html);
    let post = |path: &str| {
        owner
            .post(server.url(&format!("/w/{ws}{path}")))
            .form(&[("csrf", csrf.as_str())])
    };
    let r = post("/scim/token").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let first = shown_secret(&r.text().await.unwrap()).expect("the new token is shown");
    assert!(first.starts_with("aura_scim_"), "{first}");
    let html = common::get_text(&owner, &page).await;
    assert!(!html.contains(&first), "shown once only");
    assert!(
        html.contains("Rotate token") && html.contains("Revoke token"),
        "{html}"
    );
    assert!(
        html.contains("data-confirm=\"Rotate the SCIM token"),
        "rotation is confirmed"
    );
    assert!(html.contains("last used never"), "not used yet");
    assert_eq!(
        scim(&server, &first, Method::GET, &users(&ws), None)
            .await
            .0,
        200
    );
    let html = common::get_text(&owner, &page).await;
    assert!(!html.contains("last used never"), "the use is shown");

    // Rotate: the old one stops.
    let r = post("/scim/token").send().await.unwrap();
    let second = shown_secret(&r.text().await.unwrap()).unwrap();
    assert_ne!(first, second);
    assert_eq!(
        scim(&server, &first, Method::GET, &users(&ws), None)
            .await
            .0,
        401
    );
    assert_eq!(
        scim(&server, &second, Method::GET, &users(&ws), None)
            .await
            .0,
        200
    );

    // Revoke, and a member cannot.
    let r = member
        .post(server.url(&format!("/w/{ws}/scim/token/revoke")))
        .form(&[("csrf", common::csrf_from(&theirs).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(
        scim(&server, &second, Method::GET, &users(&ws), None)
            .await
            .0,
        200
    );
    let r = post("/scim/token/revoke").send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(
        scim(&server, &second, Method::GET, &users(&ws), None)
            .await
            .0,
        401
    );
    let html = common::get_text(&owner, &page).await;
    assert!(html.contains("None: the identity provider cannot reach this workspace."));
    assert!(html.contains("SCIM token revoked."), "the flash says so");
    server.stop();
}

/// A provider over its request budget gets a SCIM error too, with
/// `Retry-After`.
#[tokio::test]
async fn an_exhausted_budget_answers_a_scim_error() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Busy", "owner@example.com");
    let server = env.start_with(&[("AURA_LIMITS__RATE__READ__PER_TOKEN", "3")]);
    let owner = signed_in(&server, "owner@example.com").await;
    let token = issue(&server, &owner, &ws).await;
    let mut last = (0, Value::Null, String::new());
    for _ in 0..6 {
        last = scim(&server, &token, Method::GET, &users(&ws), None).await;
        if last.0 == 429 {
            break;
        }
    }
    assert_scim_error(last.0, &last.1, &last.2, 429, None);
    let r = bearer(Method::GET, &server, &token, &users(&ws))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    server.stop();
}
