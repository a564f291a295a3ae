//! A provider's second factor, trusted or not, and Aura's own code.

use super::*;

#[tokio::test]
async fn a_providers_second_factor_counts_only_when_the_operator_trusts_it() {
    let env = Env::new();
    env.create_user("olga@acme.test", "Olga");
    let ws = env.create_workspace("Quay", "olga@acme.test");
    let mut op = start_provider(vec![
        User::new("kai-sub", "kai@acme.test", "Kai").amr(&["pwd", "mfa"]),
        User::new("lee-sub", "lee@acme.test", "Lee").amr(&["pwd"]),
        User::new("olga-sub", "olga@acme.test", "Olga").amr(&["pwd"]),
    ]);
    let trusting = [("AURA_SSO__TRUST_PROVIDER_MFA".to_owned(), "true".to_owned())];
    let server = serve_with(&env, &mut op, &trusting);
    let owner = client(&server);
    assert_eq!(
        login(&owner, &server, "olga@acme.test", PASSWORD)
            .await
            .status(),
        200
    );
    let (secret, _, _) = common::mfa::enrol(&owner, &server).await;
    let (s, v) = send(
        owner
            .put(server.url(&format!("/api/v1/workspaces/{ws}/mfa-policy")))
            .json(&json!({"required": true})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    let config = json!({ "issuer": op.issuer, "client_id": "aura", "client_secret": SECRET, "allowed_domains": ["acme.test"], "provisioning": true });
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
    let collections = server.url(&format!("/api/v1/workspaces/{ws}/collections"));
    let start = |who: &str| format!("/auth/oidc/start?workspace={ws}&email={who}");

    // Trusted: the provider's `mfa` satisfies the workspace's policy for a
    // person with no Aura factor; a provider sign-in without one does not.
    let (kai, s, _, body) = sso(&server, &start("kai@acme.test")).await;
    assert_eq!(s, 303, "{body}");
    assert_eq!(send(kai.get(&collections)).await.0, 200);
    let (lee, s, _, body) = sso(&server, &start("lee@acme.test")).await;
    assert_eq!(s, 303, "{body}");
    let (s, p) = send(lee.get(&collections)).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:aura:problem:mfa-enrolment-required"))
    );

    // An account with an Aura second factor whose provider used none is
    // asked for Aura's code after the provider (and after linking).
    let (olga, s, _, body) = sso(&server, &start("olga@acme.test")).await;
    assert_eq!(s, 200, "{body}");
    let r = link_by_password(&olga, &server, &body).await;
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.unwrap();
    assert!(page.contains("Authentication code"), "{page}");
    let pending = hidden(&page, "mfa_token");
    let csrf = common::csrf_from(&page);
    let code = common::otp::code_next(&secret);
    let r = olga
        .post(server.url("/login"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("mfa_token", pending.as_str()),
            ("code", code.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    assert_eq!(send(olga.get(&collections)).await.0, 200);

    // Not trusted: the same `mfa` counts for nothing.
    server.stop();
    let server = serve(&env, &mut op);
    let (kai, s, _, body) = sso(&server, &start("kai@acme.test")).await;
    assert_eq!(s, 303, "{body}");
    let collections = server.url(&format!("/api/v1/workspaces/{ws}/collections"));
    let (s, p) = send(kai.get(&collections)).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:aura:problem:mfa-enrolment-required"))
    );
    // Kai has no password (the provider made his account): his fresh
    // provider sign-in proves him, so he sets up Aura's own factor and is in.
    let (s, e) = send(
        kai.post(server.url("/api/v1/me/mfa/totp"))
            .json(&json!({"password": "-"})),
    )
    .await;
    assert_eq!(s, 200, "{e}");
    let code = common::otp::code_now(e["secret"].as_str().unwrap());
    let (s, v) = send(
        kai.post(server.url("/api/v1/me/mfa/totp/confirm"))
            .json(&json!({"code": code})),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(send(kai.get(&collections)).await.0, 200);
    // The account page asks such an account for no password, and says why.
    let (lee, s, _, body) = sso(&server, &start("lee@acme.test")).await;
    assert_eq!(s, 303, "{body}");
    let page = common::get_text(&lee, server.url("/account")).await;
    assert!(page.contains("id=\"mfa-sso-proof\""), "{page}");
    assert!(!page.contains("id=\"mfa-password\""));
}
