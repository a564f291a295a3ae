//! Single sign-on in Chromium: set up on the settings page, used from the
//! sign-in page.

use super::*;

#[tokio::test]
async fn an_owner_sets_up_sso_in_the_ui_and_a_person_signs_in_with_it_in_chromium() {
    let env = Env::new();
    env.create_user("olga@acme.test", "Olga");
    let ws = env.create_workspace("Lighthouse", "olga@acme.test");
    let mut op = start_provider(vec![User::new("kai-sub", "kai@acme.test", "Kai")]);
    let server = serve(&env, &mut op);
    let b = common::browser::Browser::start().await;
    // The owner signs in with a password and fills the settings page.
    b.goto(&server.url(&format!("/w/{ws}/sso"))).await;
    b.type_into("#email", "olga@acme.test").await;
    b.type_into("#password", PASSWORD).await;
    b.click("form[method=post] button[type=submit]").await;
    b.wait_for_url("/sso").await;
    assert_eq!(b.text("#sso-status").await, "Not set up");
    assert!(
        b.text("#sso-redirect")
            .await
            .ends_with("/auth/oidc/callback")
    );
    b.type_into("#sso-issuer", &op.issuer).await;
    b.type_into("#sso-client-id", "aura").await;
    b.type_into("#sso-client-secret", SECRET).await;
    b.type_into("#sso-domains", "acme.test").await;
    b.click("#sso-provisioning").await;
    b.click("#sso-form button[type=submit]").await;
    b.wait_for_text("Offered beside passwords").await;
    let violations = b.accessibility_violations().await;
    assert!(violations.is_empty(), "axe on the SSO page: {violations:?}");
    // Signed out, a new person signs in with SSO from the sign-in page:
    // the provider knows her by the email typed (login_hint), and she lands
    // in the workspace, provisioned.
    b.click("form[action='/logout'] button").await;
    b.wait_for_url("/login").await;
    b.type_into("#sso-email", "kai@acme.test").await;
    b.click("#sso-form button[type=submit]").await;
    // Found by the email's domain: the page names the provider's host.
    b.wait_for_text("id=\"sso-host\"").await;
    assert!(op.issuer.contains(&b.text("#sso-host").await));
    b.click("#sso-continue").await;
    b.wait_for_url(&format!("/w/{ws}")).await;
    b.wait_for_text("Lighthouse").await;
    b.quit().await;
    let owner = client(&server);
    assert_eq!(
        login(&owner, &server, "olga@acme.test", PASSWORD)
            .await
            .status(),
        200
    );
    let provisioned = audit_actions(&owner, &server, &ws, "sso.provisioned").await;
    assert_eq!(provisioned.len(), 1, "{provisioned:?}");
    assert_eq!(
        provisioned[0]["after"]["role"], "member",
        "the default role"
    );
}
