//! A workspace that requires two-factor sign-in, over real HTTP: only an
//! owner with a second factor turns it on; people without one then reach
//! nothing in the workspace (API and UI) until they enrol; service-account
//! tokens are exempt; the change is in the workspace's audit log.

mod common;

use common::Env;
use common::mfa::*;
use serde_json::json;

#[tokio::test]
async fn workspace_policy_shuts_out_people_without_a_second_factor() {
    let env = Env::new();
    let owner = env.create_user("olga@example.com", "Olga");
    env.create_user("adam@example.com", "Adam");
    env.create_user("mia@example.com", "Mia");
    let ws = env.create_workspace("Night Ferry", "olga@example.com");
    env.add_member(&ws, "adam@example.com", "admin");
    env.add_member(&ws, "mia@example.com", "member");
    let server = env.start();
    let o = signed_in(&server, "olga@example.com").await;
    let a = signed_in(&server, "adam@example.com").await;
    let m = signed_in(&server, "mia@example.com").await;
    let policy = format!("/api/v1/workspaces/{ws}/mfa-policy");
    let collections = format!("/api/v1/workspaces/{ws}/collections");
    let put = |c: &reqwest::Client, required: bool| {
        c.put(server.url(&policy))
            .json(&json!({ "required": required }))
            .send()
    };

    // An owner without a second factor would shut themselves out.
    let (status, p) = answer(put(&o, true).await.unwrap()).await;
    assert_eq!(status, 422, "{p}");
    assert_eq!(field(&p), "required");
    // Only owners set it.
    let (status, p) = answer(put(&a, false).await.unwrap()).await;
    assert_eq!(status, 403, "{p}");
    assert_eq!(p["type"], "urn:aura:problem:forbidden");
    assert_eq!(
        get(&m, &server, &policy).await.1,
        json!({ "required": false })
    );
    // The admin's own API token, made before the policy.
    let (status, own) = post(
        &a,
        &server,
        &format!("/api/v1/workspaces/{ws}/tokens"),
        json!({ "name": "adam's script", "scope": "viewer" }),
    )
    .await;
    assert_eq!(status, 201, "{own}");
    let own = own["secret"].as_str().unwrap().to_owned();
    let with_token = |secret: &str| {
        reqwest::Client::new()
            .get(server.url(&collections))
            .bearer_auth(secret)
            .send()
    };
    assert_eq!(with_token(&own).await.unwrap().status(), 200);

    let (_, owner_codes, _) = enrol(&o, &server).await;
    let (status, p) = answer(put(&o, true).await.unwrap()).await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(p, json!({ "required": true }));
    assert_eq!(get(&o, &server, &collections).await.0, 200);

    // A member without a second factor reaches nothing in the workspace...
    let (status, p) = get(&m, &server, &collections).await;
    assert_eq!(status, 403, "{p}");
    assert_eq!(p["type"], ENROLMENT_REQUIRED);
    assert!(p["detail"].as_str().unwrap().contains("/account"), "{p}");
    let (status, p) = get(&a, &server, &policy).await;
    assert_eq!(status, 403, "the admin has no second factor either");
    assert_eq!(p["type"], ENROLMENT_REQUIRED);
    // A person's own API token is held to the policy like their session.
    let (status, p) = answer(with_token(&own).await.unwrap()).await;
    assert_eq!(status, 403);
    assert_eq!(p["type"], ENROLMENT_REQUIRED);
    let page = m.get(server.url(&format!("/w/{ws}"))).send().await.unwrap();
    assert_eq!(page.status(), 403);
    let page = page.text().await.unwrap();
    assert!(page.contains("href=\"/account#mfa\""), "{page}");
    // ...but still reaches their account, to enrol.
    assert_eq!(
        m.get(server.url("/account")).send().await.unwrap().status(),
        200
    );
    assert_eq!(get(&m, &server, "/api/v1/me").await.0, 200);

    // A service account never signs in; its token is exempt.
    let (status, sa) = post(
        &o,
        &server,
        &format!("/api/v1/workspaces/{ws}/service-accounts"),
        json!({ "name": "Ferry importer", "role": "member" }),
    )
    .await;
    assert_eq!(status, 201, "{sa}");
    let (status, t) = post(
        &o,
        &server,
        &format!("/api/v1/workspaces/{ws}/tokens"),
        json!({ "name": "importer", "scope": "member", "service_account": sa["id"] }),
    )
    .await;
    assert_eq!(status, 201, "{t}");
    let secret = t["secret"].as_str().unwrap();
    assert!(secret.starts_with("aura_"));
    assert_eq!(with_token(secret).await.unwrap().status(), 200);

    // Once the member enrols, the same session gets in.
    enrol(&m, &server).await;
    assert_eq!(get(&m, &server, &collections).await.0, 200);
    assert_eq!(
        m.get(server.url(&format!("/w/{ws}")))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // The workspace's own audit log has the change.
    let (status, log) = get(
        &o,
        &server,
        &format!("/api/v1/workspaces/{ws}/audit?action=workspace.mfa_policy_changed"),
    )
    .await;
    assert_eq!(status, 200, "{log}");
    let items = log["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{log}");
    let e = &items[0];
    assert_eq!(e["action"], "workspace.mfa_policy_changed");
    assert_eq!(e["actor"], owner.as_str());
    assert_eq!(e["actor_type"], "user");
    assert_eq!(e["target_type"], "workspace");
    assert_eq!(e["target"], ws.as_str());
    assert_eq!(e["after"]["require_mfa"], true);

    // While the policy holds, nobody removes their last second factor (they
    // would shut themselves out): 409, and the factor stays.
    let (status, problem) = post(
        &o,
        &server,
        "/api/v1/me/mfa/totp/remove",
        json!({ "password": common::PASSWORD, "code": owner_codes[0] }),
    )
    .await;
    assert_eq!(status, 409, "{problem}");
    let (_, st) = get(&o, &server, "/api/v1/me/mfa").await;
    assert_eq!(st["totp_enabled"], true);
    assert_eq!(
        st["recovery_codes_left"], 10,
        "the refused removal spent nothing"
    );
    server.stop();
    assert_eq!(audit_count(&env, "workspace.mfa_policy_changed"), 1);
}
