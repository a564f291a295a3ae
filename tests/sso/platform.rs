//! Operators signing in to the platform area through `[platform.sso]`.

use super::*;

#[tokio::test]
async fn operators_sign_in_to_the_platform_area_through_platform_sso() {
    let env = Env::new();
    env.create_platform_admin("root@acme.test");
    env.create_user("joe@acme.test", "Joe");
    let mut op = start_provider(vec![
        User::new("root-sub", "root@acme.test", "Root").groups(&["aura-operators"]),
        User::new("joe-sub", "joe@acme.test", "Joe").groups(&["aura-operators"]),
    ]);
    let secret_file = env.root().join("platform-sso.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let platform = [
        ("AURA_PLATFORM__SSO__ENABLED", "true".to_owned()),
        ("AURA_PLATFORM__SSO__ISSUER", op.issuer.clone()),
        ("AURA_PLATFORM__SSO__CLIENT_ID", "aura".to_owned()),
        (
            "AURA_PLATFORM__SSO__CLIENT_SECRET_FILE",
            secret_file.display().to_string(),
        ),
        (
            "AURA_PLATFORM__SSO__SCOPES",
            "[\"email\", \"groups\"]".to_owned(),
        ),
        (
            "AURA_PLATFORM__SSO__ALLOWED_DOMAINS",
            "[\"acme.test\"]".to_owned(),
        ),
        (
            "AURA_PLATFORM__SSO__ADMIN_GROUP",
            "aura-operators".to_owned(),
        ),
    ]
    .map(|(k, v)| (k.to_owned(), v));
    let server = serve_with(&env, &mut op, &platform);
    let page = common::get_text(&client(&server), server.url("/login")).await;
    assert!(
        page.contains("id=\"platform-sso\""),
        "the sign-in page offers it"
    );
    let start = |who: &str| format!("/auth/oidc/start?platform=1&email={who}");

    // The first time, the operator's account proves itself, then lands in
    // the platform area.
    let (root, s, _, body) = sso(&server, &start("root@acme.test")).await;
    assert_eq!(s, 200, "{body}");
    let r = link_by_password(&root, &server, &body).await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/platform");
    assert_eq!(
        root.get(server.url("/platform"))
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    // Then the identity alone.
    let (_, s, loc, body) = sso(&server, &start("root@acme.test")).await;
    assert_eq!((s, loc.as_str()), (303, "/platform"), "{body}");
    // Not a platform admin: refused, although in the group.
    let (_, s, _, body) = sso(&server, &start("joe@acme.test")).await;
    assert_eq!(s, 403, "{body}");
    // Out of the operators' group: refused.
    op.update(|c| c.users[0].groups = vec![]);
    let (_, s, _, body) = sso(&server, &start("root@acme.test")).await;
    assert_eq!(s, 403, "{body}");
}
