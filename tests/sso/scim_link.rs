//! SCIM and single sign-on together: the default role, and linking an
//! account the workspace's SCIM made.

use super::*;

#[tokio::test]
async fn an_account_scim_provisioned_gets_the_sso_default_role_and_links_without_a_password() {
    let env = Env::new();
    env.create_user("olga@acme.test", "Olga");
    env.create_user("pat@acme.test", "Pat");
    let ws = env.create_workspace("Dock", "olga@acme.test");
    let mut op = start_provider(vec![
        User::new("nia-sub", "nia@acme.test", "Nia"),
        User::new("pat-sub", "pat@acme.test", "Pat"),
    ]);
    let server = serve(&env, &mut op);
    let owner = client(&server);
    assert_eq!(
        login(&owner, &server, "olga@acme.test", PASSWORD)
            .await
            .status(),
        200
    );
    let config = json!({ "issuer": op.issuer, "client_id": "aura", "client_secret": SECRET, "allowed_domains": ["acme.test"], "default_role": "viewer" });
    assert_eq!(
        send(
            owner
                .put(server.url(&format!("/api/v1/workspaces/{ws}/sso")))
                .json(&config)
        )
        .await
        .0,
        200
    );
    let (s, v) = send(owner.post(server.url(&format!("/api/v1/workspaces/{ws}/scim/token")))).await;
    assert_eq!(s, 201, "{v}");
    let scim = v["secret"].as_str().unwrap().to_owned();
    let users = server.url(&format!("/scim/v2/workspaces/{ws}/Users"));
    for who in ["nia@acme.test", "pat@acme.test"] {
        let (s, v) = send(reqwest::Client::new().post(&users).bearer_auth(&scim).json(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": who, "active": true,
        })))
        .await;
        assert_eq!(s, 201, "{v}");
    }
    let (_, members) =
        send(owner.get(server.url(&format!("/api/v1/workspaces/{ws}/members")))).await;
    let nia = members["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["email"] == "nia@acme.test")
        .cloned()
        .unwrap();
    assert_eq!(
        nia["role"], "viewer",
        "SCIM uses the SSO default role: {members}"
    );
    // Nia's account came from this workspace's own provider and has no
    // password: her first SSO sign-in links it directly.
    let (_, s, loc, body) = sso(
        &server,
        &format!("/auth/oidc/start?workspace={ws}&email=nia@acme.test"),
    )
    .await;
    assert_eq!(
        (s, loc.as_str()),
        (303, format!("/w/{ws}").as_str()),
        "{body}"
    );
    let linked = audit_actions(&owner, &server, &ws, "sso.linked").await;
    assert_eq!(linked.len(), 1, "{linked:?}");
    assert_eq!(linked[0]["after"]["proof"], "scim");
    // Pat had an account of his own (with a password) before SCIM added him:
    // he proves it as anyone would.
    let (_, s, _, body) = sso(
        &server,
        &format!("/auth/oidc/start?workspace={ws}&email=pat@acme.test"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("already exists"));
}
