//! SCIM groups are the workspace's teams: created, members added and
//! removed in the forms Entra ID and Okta send, renamed, deleted, each
//! change visible through the teams API and audited; a member who is not
//! in the workspace is refused and nothing is written.

use reqwest::Method;
use serde_json::{Value, json};

use super::common::mfa::signed_in;
use super::common::{Env, Server, send};
use super::{assert_scim_error, audited, issue, scim, urlencode};

/// The team `id` as the teams API shows it: its name and member ids.
async fn team(
    server: &Server,
    owner: &reqwest::Client,
    ws: &str,
    id: &str,
) -> Option<(String, Vec<String>)> {
    let (s, v) = send(owner.get(server.url(&format!("/api/v1/workspaces/{ws}/teams")))).await;
    assert_eq!(s, 200, "{v}");
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == json!(id))
        .map(|t| {
            let mut m: Vec<String> = t["members"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["user_id"].as_str().unwrap().to_owned())
                .collect();
            m.sort();
            (t["name"].as_str().unwrap().to_owned(), m)
        })
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[tokio::test]
async fn groups_are_teams_and_their_members_follow_the_provider() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let ana = env.create_user("ana@example.com", "Ana");
    let bo = env.create_user("bo@example.com", "Bo");
    let outsider = env.create_user("out@example.com", "Outsider");
    let ws = env.create_workspace("Teams", "owner@example.com");
    env.add_member(&ws, "ana@example.com", "member");
    env.add_member(&ws, "bo@example.com", "member");
    let server = env.start();
    let owner = signed_in(&server, "owner@example.com").await;
    let token = issue(&server, &owner, &ws).await;
    let groups = format!("/scim/v2/workspaces/{ws}/Groups");

    let (s, g, ct) = scim(
        &server,
        &token,
        Method::POST,
        &groups,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": "Engineering",
            "members": [{"value": ana}],
        })),
    )
    .await;
    assert_eq!(s, 201, "{g}");
    assert!(ct.starts_with("application/scim+json"));
    let id = g["id"].as_str().unwrap().to_owned();
    assert_eq!(
        team(&server, &owner, &ws, &id).await,
        Some(("Engineering".into(), vec![ana.clone()]))
    );
    let one = format!("{groups}/{id}");

    // Found by displayName, members left out on request (Entra ID).
    let q = format!(
        "{groups}?filter={}&excludedAttributes=members",
        urlencode(r#"displayName eq "Engineering""#)
    );
    let (s, v, _) = scim(&server, &token, Method::GET, &q, None).await;
    assert_eq!((s, &v["totalResults"]), (200, &json!(1)), "{v}");
    assert!(v["Resources"][0].get("members").is_none(), "{v}");

    // Entra ID adds with a path and a list.
    let (s, v, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &one,
        Some(json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Add", "path": "members", "value": [{"value": bo}]}],
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        team(&server, &owner, &ws, &id).await.unwrap().1,
        sorted(vec![ana.clone(), bo.clone()])
    );
    // Okta removes with a filter in the path.
    let (s, v, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &one,
        Some(json!({
            "Operations": [{"op": "remove", "path": format!("members[value eq \"{bo}\"]")}],
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        team(&server, &owner, &ws, &id).await.unwrap().1,
        vec![ana.clone()]
    );
    // Entra ID removes with a list.
    let (s, v, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &one,
        Some(json!({
            "Operations": [{"op": "Remove", "path": "members", "value": [{"value": ana}]}],
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        team(&server, &owner, &ws, &id).await.unwrap().1,
        Vec::<String>::new()
    );

    // Someone outside the workspace: refused, nothing written.
    for body in [
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": outsider}]}]}),
        json!({"Operations": [{"op": "add", "path": "members", "value": [{"value": ana}, {"value": "not-a-user"}]}]}),
        json!({"Operations": [{"op": "add", "path": "members", "value": "nobody"}]}),
    ] {
        let (s, v, ct) = scim(&server, &token, Method::PATCH, &one, Some(body)).await;
        assert_scim_error(s, &v, &ct, 400, Some("invalidValue"));
    }
    assert_eq!(
        team(&server, &owner, &ws, &id).await.unwrap().1,
        Vec::<String>::new()
    );

    // Okta renames without a path; PUT replaces name and members.
    let (s, v, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &one,
        Some(json!({
            "Operations": [{"op": "replace", "value": {"id": id, "displayName": "Platform"}}],
        })),
    )
    .await;
    assert_eq!((s, &v["displayName"]), (200, &json!("Platform")), "{v}");
    let (s, v, _) = scim(
        &server,
        &token,
        Method::PUT,
        &one,
        Some(json!({
            "displayName": "Platform team", "members": [{"value": bo}, {"value": ana}],
        })),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        team(&server, &owner, &ws, &id).await,
        Some((
            "Platform team".into(),
            sorted(vec![ana.clone(), bo.clone()])
        ))
    );

    // Deactivating a person takes them out of the team.
    let (s, _, _) = scim(
        &server,
        &token,
        Method::PATCH,
        &format!("/scim/v2/workspaces/{ws}/Users/{bo}"),
        Some(json!({
            "Operations": [{"op": "replace", "path": "active", "value": false}],
        })),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        team(&server, &owner, &ws, &id).await.unwrap().1,
        vec![ana.clone()]
    );

    assert_eq!(
        scim(&server, &token, Method::DELETE, &one, None).await.0,
        204
    );
    assert_eq!(team(&server, &owner, &ws, &id).await, None);
    let (s, v, ct) = scim(&server, &token, Method::GET, &one, None).await;
    assert_scim_error(s, &v, &ct, 404, None);

    let entries = audited(&server, &owner, &ws, "scim.group*").await;
    let mut actions: Vec<&str> = entries.iter().map(|(a, ..)| a.as_str()).collect();
    actions.reverse();
    assert_eq!(
        actions,
        [
            "scim.group_created",
            "scim.group_members_changed",
            "scim.group_members_changed",
            "scim.group_members_changed",
            "scim.group_updated",
            "scim.group_updated",
            "scim.group_members_changed",
            "scim.group_deleted",
        ],
        "{entries:?}"
    );
    assert!(entries.iter().all(|(_, actor, _)| actor == "scim"));
    // The first change (Bo added) records the members before and after.
    let added: &Value = &entries[entries.len() - 2].2;
    assert_eq!(added["before"]["members"], json!([ana]), "{added}");
    assert_eq!(
        added["after"]["members"],
        json!(sorted(vec![ana.clone(), bo.clone()])),
        "{added}"
    );
    server.stop();
}
