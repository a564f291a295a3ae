//! A workspace scheduled for deletion is read-only for its identity provider
//! too: SCIM changes are refused with a SCIM error and write nothing, reads
//! go on.

use reqwest::Method;
use serde_json::json;

use super::common::mfa::signed_in;
use super::common::{Env, open_db, send};
use super::{assert_scim_error, issue, scim, users};

fn accounts(env: &Env) -> i64 {
    open_db(&env.data_dir().join("control.db"))
        .query_row("SELECT count(*) FROM users", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn a_read_only_workspace_refuses_scim_changes_and_writes_nothing() {
    let env = Env::new();
    let owner_id = env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Leaving", "owner@example.com");
    let server = env.start();
    let owner = signed_in(&server, "owner@example.com").await;
    let token = issue(&server, &owner, &ws).await;
    let (s, v) = send(
        owner
            .post(server.url(&format!("/api/v1/workspaces/{ws}/deletion")))
            .json(&json!({"confirm_name": "Leaving"})),
    )
    .await;
    assert!((200..300).contains(&s), "deletion scheduled: {s} {v}");
    let before = accounts(&env);
    let (s, v, ct) = scim(
        &server,
        &token,
        Method::POST,
        &users(&ws),
        Some(json!({"userName": "late@example.com"})),
    )
    .await;
    assert_scim_error(s, &v, &ct, 409, None);
    assert_eq!(accounts(&env), before, "no account was made");
    let me = format!("{}/{owner_id}", users(&ws));
    let off = json!({"Operations": [{"op": "replace", "path": "externalId", "value": "x"}]});
    let (s, v, ct) = scim(&server, &token, Method::PATCH, &me, Some(off)).await;
    assert_scim_error(s, &v, &ct, 409, None);
    let (s, v, _) = scim(&server, &token, Method::GET, &me, None).await;
    assert_eq!(s, 200, "reads go on: {v}");
    assert!(v.get("externalId").is_none(), "nothing written: {v}");
    server.stop();
}
