//! SCIM: the workspace's SCIM token (its secret), and what an identity
//! provider sends (a person's email, name and `externalId`, a group's name)
//! are on no byte of the data dir, while running and after shutdown, nor in
//! the server's log.

use super::common::{Env, PASSWORD, client, login};
use super::{DEBUG_LOG, canary, scan_bytes, scan_dir, scan_tree};
use serde_json::{Value, json};

#[tokio::test]
async fn the_scim_token_and_what_a_provider_sends_leave_no_plaintext() {
    let env = Env::new();
    env.create_user("scim@example.com", "SCIM Owner");
    let ws = env.create_workspace("Provisioned Ltd", "scim@example.com");
    let server = env.start_with(DEBUG_LOG);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "scim@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/scim/token")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let made: Value = r.json().await.unwrap();
    let secret = made["secret"].as_str().unwrap().to_owned();
    let (local, name, external, group) = (
        canary("scimemail"),
        canary("scimname"),
        canary("scimext"),
        canary("scimgroup"),
    );
    let email = format!("{local}@example.com");
    let scim = |method: reqwest::Method, path: &str, body: Value| {
        reqwest::Client::new()
            .request(
                method,
                server.url(&format!("/scim/v2/workspaces/{ws}{path}")),
            )
            .bearer_auth(&secret)
            .header("content-type", "application/scim+json")
            .body(body.to_string())
            .send()
    };
    let r = scim(
        reqwest::Method::POST,
        "/Users",
        json!({"userName": email, "displayName": name, "externalId": external}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    let user: Value = r.json().await.unwrap();
    let id = user["id"].as_str().unwrap().to_owned();
    let r = scim(
        reqwest::Method::POST,
        "/Groups",
        json!({"displayName": group, "members": [{"value": id}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 201);
    // The provider finds the person by userName and deactivates them.
    let filter = format!("userName eq \"{email}\"");
    let r = reqwest::Client::new()
        .get(server.url(&format!("/scim/v2/workspaces/{ws}/Users")))
        .query(&[("filter", filter.as_str())])
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    let found: Value = r.json().await.unwrap();
    assert_eq!(found["totalResults"], 1, "{found}");
    assert_eq!(found["Resources"][0]["externalId"], json!(external));
    let r = scim(
        reqwest::Method::PATCH,
        &format!("/Users/{id}"),
        json!({"Operations": [{"op": "replace", "path": "active", "value": false}]}),
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);

    let all = vec![secret, local, email, name, external, group];
    let hits = scan_dir(&env.data_dir(), &all);
    assert!(
        hits.is_empty(),
        "canaries on disk while running:\n{}",
        hits.join("\n")
    );
    let logs = server.stop();
    let hits = scan_bytes(&logs, &all);
    assert!(
        hits.is_empty(),
        "canaries in the server log:\n{}",
        hits.join("\n")
    );
    let (hits, files) = scan_tree(&env.data_dir(), &all);
    assert!(
        files >= 2,
        "the control and tenant databases ({files} files)"
    );
    assert!(
        hits.is_empty(),
        "canaries on disk after shutdown:\n{}",
        hits.join("\n")
    );
}
