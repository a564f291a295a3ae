//! Invitations end to end, with a real SMTP sink (aiosmtpd on loopback): the
//! mail carries a single-use, expiring link; accepting it creates the account
//! (or adds an existing one, signed in); revocation, expiry, role limits and
//! the acceptance rate limit; and what happens without a mail server.

mod common;

use common::smtp::Sink;
use common::{Env, PASSWORD, client, login};
use serde_json::{Value, json};

fn start(env: &Env, sink: &Sink, extra: &[(&str, &str)]) -> common::Server {
    let vars = sink.env();
    let mut all: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.extend_from_slice(extra);
    env.start_with(&all)
}

async fn invite(
    c: &reqwest::Client,
    s: &common::Server,
    ws: &str,
    email: &str,
    role: &str,
) -> reqwest::Response {
    c.post(s.url(&format!("/api/v1/workspaces/{ws}/invitations")))
        .json(&json!({"email": email, "role": role}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn invite_by_mail_accept_once_and_sign_in() {
    let sink = Sink::start();
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    env.create_user("admin@example.com", "Admin");
    let ws = env.create_workspace("Invites Ltd", "owner@example.com");
    env.add_member(&ws, "admin@example.com", "admin");
    let s = start(&env, &sink, &[]);
    let admin = client(&s);
    assert_eq!(
        login(&admin, &s, "admin@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    // Role limits: an admin neither invites an owner nor above themselves.
    let r = invite(&admin, &s, &ws, "boss@example.com", "owner").await;
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("role"));
    let r = invite(&admin, &s, &ws, "not-an-email", "member").await;
    assert_eq!(r.status(), 422);
    // A member is not invited twice.
    let r = invite(&admin, &s, &ws, "owner@example.com", "member").await;
    assert_eq!(r.status(), 422);

    let r = invite(&admin, &s, &ws, "New.Person@Example.com", "member").await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["status"], "pending");
    let token = sink.token_for("New.Person@Example.com");
    assert!(token.len() >= 40, "{token}");
    // Only the token's SHA-256 is stored, and the address only sealed: the
    // row holds neither the token nor the address, in any case.
    let db = common::open_db(&env.data_dir().join("control.db"));
    let hash = common::sha256(&token);
    let (id, sealed): (String, Vec<u8>) = db
        .query_row(
            "SELECT id, email_ct FROM invitations WHERE token_hash = ?1",
            [&hash],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the invitation's token_hash is the token's SHA-256");
    assert_eq!(created["id"].as_str(), Some(id.as_str()));
    let row = common::row_bytes(&db, "invitations", "id", &id);
    for plain in [
        token.as_str(),
        "New.Person@Example.com",
        "new.person@example.com",
        "new.person",
    ] {
        assert!(
            !common::contains_bytes(&row, plain.as_bytes()),
            "{plain:?} is in the invitations row"
        );
    }
    assert!(
        sealed.len() > "new.person@example.com".len(),
        "sealed, not empty"
    );

    // The invited person reads it and accepts, creating the account.
    let anon = client(&s);
    let preview: Value =
        common::get_json(&anon, s.url(&format!("/api/v1/invitations/{token}"))).await;
    assert_eq!(preview["workspace_name"], "Invites Ltd");
    assert_eq!(preview["role"], "member");
    assert_eq!(preview["account_exists"], false);
    let accept = s.url(&format!("/api/v1/invitations/{token}/accept"));
    let r = anon
        .post(&accept)
        .json(&json!({"name": "New Person", "password": "short"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422, "the password policy applies");
    let r = anon
        .post(&accept)
        .json(&json!({"name": "New Person", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let done: Value = r.json().await.unwrap();
    assert_eq!(done["workspace_id"], ws.as_str());
    assert_eq!(done["account_created"], true);

    // Single use.
    let r = anon
        .post(&accept)
        .json(&json!({"name": "X", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The new member signs in and sees the workspace with the role.
    let newbie = client(&s);
    assert_eq!(
        login(&newbie, &s, "new.person@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let me: Value = common::get_json(&newbie, s.url("/api/v1/me")).await;
    assert_eq!(me["workspaces"][0]["role"], "member");

    // The workspace's own audit log shows the invitation and the new member.
    let owner = client(&s);
    assert_eq!(
        login(&owner, &s, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    for action in ["invitation.created", "member.added"] {
        let v: Value = common::get_json(
            &owner,
            s.url(&format!("/api/v1/workspaces/{ws}/audit?action={action}")),
        )
        .await;
        assert!(!v["items"].as_array().unwrap().is_empty(), "{action}");
    }
    let list: Value = common::get_json(
        &admin,
        s.url(&format!("/api/v1/workspaces/{ws}/invitations")),
    )
    .await;
    assert_eq!(list["items"][0]["status"], "accepted");
}

#[tokio::test]
async fn existing_accounts_revocation_expiry_and_limits() {
    let sink = Sink::start();
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    env.create_user("known@example.com", "Known");
    let ws = env.create_workspace("Invites Ltd", "owner@example.com");
    let s = start(&env, &sink, &[]);
    let owner = client(&s);
    assert_eq!(
        login(&owner, &s, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    // An existing account accepts only when signed in as it.
    assert_eq!(
        invite(&owner, &s, &ws, "known@example.com", "viewer")
            .await
            .status(),
        201
    );
    let token = sink.token_for("known@example.com");
    let accept = s.url(&format!("/api/v1/invitations/{token}/accept"));
    let anon = client(&s);
    let r = anon
        .post(&accept)
        .json(&json!({"name": "Mallory", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409, "no taking over an existing address");
    let known = client(&s);
    assert_eq!(
        login(&known, &s, "known@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = known.post(&accept).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let me: Value = common::get_json(&known, s.url("/api/v1/me")).await;
    assert_eq!(me["workspaces"][0]["role"], "viewer");

    // Revoked: the link is dead.
    let r = invite(&owner, &s, &ws, "gone@example.com", "member").await;
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let gone = sink.token_for("gone@example.com");
    let r = owner
        .delete(s.url(&format!("/api/v1/workspaces/{ws}/invitations/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = anon
        .get(s.url(&format!("/api/v1/invitations/{gone}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Expired: eight days later the link is dead too.
    assert_eq!(
        invite(&owner, &s, &ws, "late@example.com", "member")
            .await
            .status(),
        201
    );
    let late = sink.token_for("late@example.com");
    s.stop();
    let vars = sink.env();
    let mut later_env: Vec<(&str, &str)> =
        vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let offset = (8 * 86_400).to_string();
    later_env.push(("AURA_TEST_CLOCK_OFFSET", &offset));
    let s = env.start_with(&later_env);
    let r = client(&s)
        .get(s.url(&format!("/api/v1/invitations/{late}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // Acceptance is limited per IP: 3 attempts per 30 minutes, then 429.
    let c = client(&s);
    for _ in 0..3 {
        let r = c
            .post(s.url("/api/v1/invitations/nope/accept"))
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
    }
    let r = c
        .post(s.url("/api/v1/invitations/nope/accept"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn without_a_mail_server_invitations_say_what_to_configure() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("No Mail Ltd", "owner@example.com");
    let s = env.start();
    let owner = client(&s);
    assert_eq!(
        login(&owner, &s, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = invite(&owner, &s, &ws, "someone@example.com", "member").await;
    assert_eq!(r.status(), 503);
    let db = common::open_db(&env.data_dir().join("control.db"));
    let n: i64 = db
        .query_row("SELECT count(*) FROM invitations", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0, "nothing is stored when no mail can go out");
}
