//! Single sign-on against a real OpenID provider (oidc-provider 8 on
//! loopback, tests/common/oidc.rs), over real HTTP: provisioning with the
//! default role, group -> role and team mapping changing at the next
//! sign-in, every forged or stale answer refused with a clear page and an
//! audit entry, linking an existing account only after its password, and
//! the SSO-only policy with its break-glass owner.

#[path = "sso/browser.rs"]
mod browser_flow;
mod common;
#[path = "sso/platform.rs"]
mod platform;
#[path = "sso/scim_link.rs"]
mod scim_link;
#[path = "sso/second_factors.rs"]
mod second_factors;

use common::oidc::{Client, Config, Provider, User};
use common::{Env, PASSWORD, Server, client, login, send};
use serde_json::{Value, json};

const SECRET: &str = "a-client-secret-of-the-test-provider";

/// Follows redirects by hand through the provider until one points at
/// Aura's callback; returns that URL (the provider signs in by login_hint).
async fn to_callback(c: &reqwest::Client, server: &Server, start: &str) -> String {
    let r = c.get(server.url(start)).send().await.unwrap();
    let first = if r.status().as_u16() == 200 {
        // Found by the email's domain: a page names the provider's host and
        // the person goes on by its link.
        let page = r.text().await.unwrap();
        assert!(page.contains("id=\"sso-host\""), "{page}");
        let href = page
            .split("id=\"sso-continue\" href=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        href.replace("&amp;", "&")
    } else {
        assert_eq!(
            r.status().as_u16(),
            303,
            "start: {}",
            r.text().await.unwrap()
        );
        r.headers()["location"].to_str().unwrap().to_owned()
    };
    follow(c, server, &first).await
}

async fn follow(c: &reqwest::Client, server: &Server, from: &str) -> String {
    let mut url = reqwest::Url::parse(from).unwrap();
    for _ in 0..20 {
        if url.as_str().starts_with(&server.url("/auth/oidc/callback")) {
            return url.to_string();
        }
        let r = c.get(url.clone()).send().await.unwrap();
        assert!(
            r.status().is_redirection(),
            "{url}: {} {}",
            r.status(),
            r.text().await.unwrap()
        );
        url = url.join(r.headers()["location"].to_str().unwrap()).unwrap();
    }
    panic!("no callback after 20 redirects");
}

/// The value of the hidden input `name` in a page.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    body.split(&marker)
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned()
}

/// Posts the account's password on the link page `body` (in browser `c`).
async fn link_by_password(c: &reqwest::Client, server: &Server, body: &str) -> reqwest::Response {
    let (link, csrf) = (hidden(body, "link"), common::csrf_from(body));
    c.post(server.url("/auth/oidc/link"))
        .form(&[
            ("csrf", csrf.as_str()),
            ("link", link.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap()
}

/// A browser-like client (cookies, no automatic redirects).
fn browser(server: &Server) -> reqwest::Client {
    client(server)
}

/// Signs in through SSO from `start`; the callback's answer.
async fn sso(server: &Server, start: &str) -> (reqwest::Client, u16, String, String) {
    let c = browser(server);
    let cb = to_callback(&c, server, start).await;
    let r = c.get(&cb).send().await.unwrap();
    let status = r.status().as_u16();
    let loc = r
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = r.text().await.unwrap();
    (c, status, loc, body)
}

fn start_provider(users: Vec<User>) -> Provider {
    let client = Client::new("aura", SECRET, "http://127.0.0.1:1/placeholder");
    Provider::start(Config::new(vec![client], users))
}

/// The server, with loopback providers allowed, and the provider told its
/// redirect URI.
fn serve(env: &Env, op: &mut Provider) -> Server {
    serve_with(env, op, &[])
}

fn serve_with(env: &Env, op: &mut Provider, extra: &[(String, String)]) -> Server {
    let mut envs: Vec<(&str, &str)> = vec![("AURA_SSO__ALLOWED_CIDRS", "[\"127.0.0.0/8\"]")];
    envs.extend(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let server = env.start_with(&envs);
    let cb = server.url("/auth/oidc/callback");
    op.update(|c| c.clients[0].redirect_uris = vec![cb]);
    server
}

async fn audit_actions(c: &reqwest::Client, server: &Server, ws: &str, action: &str) -> Vec<Value> {
    let (s, v) = send(c.get(server.url(&format!(
        "/api/v1/workspaces/{ws}/audit?action={action}&limit=100"
    ))))
    .await;
    assert_eq!(s, 200, "{v}");
    v["items"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn sso_provisions_maps_groups_and_refuses_forged_answers() {
    let env = Env::new();
    env.create_user("olga@example.com", "Olga");
    let ws = env.create_workspace("Harbour", "olga@example.com");
    let mut op = start_provider(vec![
        User::new("ada-sub", "ada@acme.test", "Ada").groups(&["aura-admins", "sales"]),
        User::new("eve-sub", "eve@elsewhere.test", "Eve"),
    ]);
    let server = serve(&env, &mut op);
    let owner = client(&server);
    assert_eq!(
        login(&owner, &server, "olga@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let (s, team) = send(
        owner
            .post(server.url(&format!("/api/v1/workspaces/{ws}/teams")))
            .json(&json!({ "name": "Sales" })),
    )
    .await;
    assert_eq!(s, 201, "{team}");
    let team = team["id"].as_str().unwrap().to_owned();
    let sso_url = server.url(&format!("/api/v1/workspaces/{ws}/sso"));
    // Bad input names the field and writes nothing.
    let (s, v) = send(
        owner
            .put(&sso_url)
            .json(&json!({ "issuer": "http://10.1.2.3/", "client_id": "aura" })),
    )
    .await;
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("issuer"), "{v}");
    assert_eq!(send(owner.get(&sso_url)).await.0, 404);
    let config = json!({
        "issuer": op.issuer, "client_id": "aura", "client_secret": SECRET,
        "scopes": ["email", "profile", "groups"],
        "allowed_domains": ["acme.test"], "provisioning": true, "default_role": "viewer",
        "role_mappings": [{ "group": "aura-admins", "role": "admin" }],
        "team_mappings": [{ "group": "sales", "team": team }],
    });
    let (s, v) = send(owner.put(&sso_url).json(&config)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["client_secret_set"], true);
    assert!(
        !v.to_string().contains(SECRET),
        "the secret is never read back"
    );
    assert_eq!(v["redirect_uri"], server.url("/auth/oidc/callback"));

    // First sign-in, found from the email's domain: a new account, admin by
    // its group, in the Sales team, landing in the workspace.
    let (ada, s, loc, body) = sso(&server, "/auth/oidc/start?email=ada@acme.test").await;
    assert_eq!(s, 303, "{body}");
    assert_eq!(loc, format!("/w/{ws}"));
    let (s, me) = send(ada.get(server.url("/api/v1/me"))).await;
    assert_eq!(
        (s, me["email"].as_str()),
        (200, Some("ada@acme.test")),
        "{me}"
    );
    let ada_id = me["id"].as_str().unwrap().to_owned();
    let (s, members) =
        send(owner.get(server.url(&format!("/api/v1/workspaces/{ws}/members")))).await;
    assert_eq!(s, 200);
    let role_of = |m: &Value, id: &str| {
        m["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["user_id"] == id || x["id"] == id)
            .map(|x| x["role"].clone())
    };
    assert_eq!(
        role_of(&members, &ada_id),
        Some(json!("admin")),
        "{members}"
    );
    let in_team = |t: &Value| {
        t["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["members"].to_string().contains(&ada_id))
    };
    let (_, teams) = send(owner.get(server.url(&format!("/api/v1/workspaces/{ws}/teams")))).await;
    assert!(in_team(&teams), "{teams}");
    assert_eq!(
        audit_actions(&owner, &server, &ws, "sso.provisioned")
            .await
            .len(),
        1
    );
    assert_eq!(
        audit_actions(&owner, &server, &ws, "sso.signed_in")
            .await
            .len(),
        1
    );

    // Her groups change at the provider: the next sign-in maps her down to
    // the default role and out of the team, audited with before and after.
    op.update(|c| c.users[0].groups = vec![]);
    let (_, s, _, body) = sso(
        &server,
        &format!("/auth/oidc/start?workspace={ws}&email=ada@acme.test"),
    )
    .await;
    assert_eq!(s, 303, "{body}");
    let (_, members) =
        send(owner.get(server.url(&format!("/api/v1/workspaces/{ws}/members")))).await;
    assert_eq!(
        role_of(&members, &ada_id),
        Some(json!("viewer")),
        "{members}"
    );
    let (_, teams) = send(owner.get(server.url(&format!("/api/v1/workspaces/{ws}/teams")))).await;
    assert!(!in_team(&teams), "{teams}");
    let mapped = audit_actions(&owner, &server, &ws, "sso.role_mapped").await;
    assert_eq!(mapped.len(), 1, "{mapped:?}");
    assert!(mapped[0].to_string().contains("admin") && mapped[0].to_string().contains("viewer"));

    let refused = |reason: &'static str| {
        let (owner, server, ws) = (&owner, &server, &ws);
        async move {
            let all = audit_actions(owner, server, ws, "sso.refused").await;
            all.iter().any(|e| e.to_string().contains(reason))
        }
    };
    let start = format!("/auth/oidc/start?workspace={ws}&email=ada@acme.test");

    // A callback replayed, with an unknown state, or from another browser.
    let c = browser(&server);
    let cb = to_callback(&c, &server, &start).await;
    assert_eq!(c.get(&cb).send().await.unwrap().status().as_u16(), 303);
    let again = c.get(&cb).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 400);
    assert!(again.text().await.unwrap().contains("not valid any more"));
    let c = browser(&server);
    let cb = to_callback(&c, &server, &start).await;
    let other = browser(&server);
    assert_eq!(
        other.get(&cb).send().await.unwrap().status().as_u16(),
        400,
        "another browser"
    );
    // A code used once already, under a fresh state of the same browser.
    let used_code = reqwest::Url::parse(&cb)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .to_string();
    assert_eq!(c.get(&cb).send().await.unwrap().status().as_u16(), 303);
    let fresh = to_callback(&c, &server, &start).await;
    let mut replay = reqwest::Url::parse(&fresh).unwrap();
    let pairs: Vec<(String, String)> = replay
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                used_code.clone()
            } else {
                v.into()
            };
            (k.into(), v)
        })
        .collect();
    replay.query_pairs_mut().clear().extend_pairs(pairs);
    let r = c.get(replay).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.text().await.unwrap().contains("refused to complete"));
    assert!(refused("code_refused").await);

    // A nonce this browser never sent (the request tampered on its way).
    let c = browser(&server);
    let r = c.get(server.url(&start)).send().await.unwrap();
    let mut to_op = reqwest::Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    let pairs: Vec<(String, String)> = to_op
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "nonce" {
                "forged".into()
            } else {
                v.into()
            };
            (k.into(), v)
        })
        .collect();
    to_op.query_pairs_mut().clear().extend_pairs(pairs);
    let cb = follow(&c, &server, to_op.as_str()).await;
    let r = c.get(&cb).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert!(r.text().await.unwrap().contains("does not belong"));
    assert!(refused("wrong_nonce").await);

    // Another issuer named in the answer (RFC 9207 mix-up).
    let c = browser(&server);
    let cb = to_callback(&c, &server, &start).await;
    let mut mixed = reqwest::Url::parse(&cb).unwrap();
    let pairs: Vec<(String, String)> = mixed
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    mixed
        .query_pairs_mut()
        .clear()
        .extend_pairs(pairs)
        .append_pair("iss", "http://127.0.0.1:9/other");
    assert_eq!(c.get(mixed).send().await.unwrap().status().as_u16(), 403);
    assert!(refused("wrong_issuer").await);

    // An ID token signed by a key the provider does not publish; then the
    // key published (a rotation), picked up without a restart.
    op.update(|c| {
        c.keys = vec!["k1".into(), "k2".into()];
        c.signing_key = Some("k2".into());
        c.published_keys = Some(vec!["k1".into()]);
    });
    let (_, s, _, body) = sso(&server, &start).await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("not signed by one of its keys"));
    assert!(refused("bad_signature").await);
    op.update(|c| c.published_keys = None);
    let (_, s, _, body) = sso(&server, &start).await;
    assert_eq!(s, 303, "the rotated key is fetched: {body}");

    // An expired ID token.
    op.update(|c| c.id_token_ttl = 0);
    let (_, s, _, body) = sso(&server, &start).await;
    assert_eq!(s, 403, "{body}");
    assert!(refused("expired_id_token").await);
    op.update(|c| c.id_token_ttl = 3600);

    // An email outside the allowed domains.
    let (_, s, _, body) = sso(
        &server,
        &format!("/auth/oidc/start?workspace={ws}&email=eve@elsewhere.test"),
    )
    .await;
    assert_eq!(s, 403, "{body}");
    assert!(body.contains("not in a domain"));
    assert!(refused("email_domain_not_allowed").await);

    // A bad state is recorded in the platform's chain (no workspace known).
    let r = browser(&server)
        .get(server.url("/auth/oidc/callback?state=nope&code=x"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}

#[tokio::test]
async fn an_existing_account_links_by_password_and_sso_only_keeps_a_break_glass_owner() {
    let env = Env::new();
    env.create_user("olga@acme.test", "Olga");
    env.create_user("mia@acme.test", "Mia");
    env.create_user("sam@acme.test", "Sam");
    let ws = env.create_workspace("Harbour", "olga@acme.test");
    env.add_member(&ws, "mia@acme.test", "admin");
    env.add_member(&ws, "sam@acme.test", "member");
    let mut op = start_provider(vec![
        User::new("mia-sub", "mia@acme.test", "Mia"),
        User::new("sam-sub", "sam@acme.test", "Sam"),
    ]);
    let sink = common::smtp::Sink::start();
    let server = serve_with(&env, &mut op, &sink.env());
    let owner = client(&server);
    assert_eq!(
        login(&owner, &server, "olga@acme.test", PASSWORD)
            .await
            .status(),
        200
    );
    let owner_id = send(owner.get(server.url("/api/v1/me"))).await.1["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let sso_url = server.url(&format!("/api/v1/workspaces/{ws}/sso"));
    let mut config = json!({ "issuer": op.issuer, "client_id": "aura", "client_secret": SECRET, "allowed_domains": ["acme.test"] });
    assert_eq!(send(owner.put(&sso_url).json(&config)).await.0, 200);

    // Mia's account exists: her provider's identity is linked only after
    // her password, in the browser that signed in there.
    let start = format!("/auth/oidc/start?workspace={ws}&email=mia@acme.test");
    let (mia, s, _, body) = sso(&server, &start).await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains("already exists"), "{body}");
    let link = hidden(&body, "link");
    let csrf = common::csrf_from(&body);
    let post = |c: &reqwest::Client, pw: &str| {
        c.post(server.url("/auth/oidc/link")).form(&[
            ("csrf", csrf.as_str()),
            ("link", link.as_str()),
            ("password", pw),
        ])
    };
    let stranger = browser(&server);
    let stranger_csrf = common::page_csrf(&stranger, &server.url("/login")).await;
    let r = stranger
        .post(server.url("/auth/oidc/link"))
        .form(&[
            ("csrf", stranger_csrf.as_str()),
            ("link", link.as_str()),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status().as_u16(),
        400,
        "another browser cannot finish the link"
    );
    let r = post(&mia, "not her password").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = post(&mia, PASSWORD).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    assert_eq!(
        audit_actions(&owner, &server, &ws, "sso.linked")
            .await
            .len(),
        1
    );
    // Next time the identity alone signs her in.
    let (mia_sso, s, _, body) = sso(&server, &start).await;
    assert_eq!(s, 303, "{body}");

    // Sam proves his account by a mailed link instead, which works only in
    // the browser that signed in at the provider.
    let (sam, s, _, body) = sso(
        &server,
        &format!("/auth/oidc/start?workspace={ws}&email=sam@acme.test"),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let link = hidden(&body, "link");
    let csrf = common::csrf_from(&body);
    let ask = |c: &reqwest::Client, csrf: String| {
        c.post(server.url("/auth/oidc/link/mail"))
            .form(&[("csrf", csrf), ("link", link.clone())])
    };
    let stranger_csrf = common::page_csrf(&stranger, &server.url("/login")).await;
    assert_eq!(
        ask(&stranger, stranger_csrf)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        400,
        "another browser"
    );
    let r = ask(&sam, csrf.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert!(r.text().await.unwrap().contains("Check your mail"));
    let mailed = sink.link_token("sam@acme.test", "/auth/oidc/link/");
    // Asking again mails nothing more: one mail per waiting link.
    assert_eq!(
        ask(&sam, csrf.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        200
    );
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        sink.messages_to("sam@acme.test").len(),
        1,
        "one mail per link"
    );
    let finish = server.url(&format!("/auth/oidc/link/{mailed}"));
    let page = stranger.get(&finish).send().await.unwrap();
    assert_eq!(
        page.status().as_u16(),
        200,
        "the mailed page shows, and changes nothing"
    );
    let form = |c: &reqwest::Client, csrf: String| c.post(&finish).form(&[("csrf", csrf)]);
    let stranger_csrf = common::csrf_from(&page.text().await.unwrap());
    assert_eq!(
        form(&stranger, stranger_csrf)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16(),
        400,
        "another browser"
    );
    let sam_csrf = common::page_csrf(&sam, &finish).await;
    let r = form(&sam, sam_csrf).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 303, "{}", r.text().await.unwrap());
    let linked = audit_actions(&owner, &server, &ws, "sso.linked").await;
    assert!(
        linked.iter().any(|e| e.to_string().contains("\"email\"")),
        "{linked:?}"
    );

    // SSO-only needs a break-glass owner, and a caller who would not be
    // shut out.
    config["require_sso"] = json!(true);
    let (s, v) = send(owner.put(&sso_url).json(&config)).await;
    assert_eq!(s, 422, "{v}");
    assert!(v.to_string().contains("break_glass"));
    config["break_glass"] = json!(owner_id);
    let (s, v) = send(owner.put(&sso_url).json(&config)).await;
    assert_eq!(s, 200, "{v}");

    let collections = server.url(&format!("/api/v1/workspaces/{ws}/collections"));
    // Mia's password session stops working here at once; her SSO session works.
    let mia_pw = client(&server);
    assert_eq!(
        login(&mia_pw, &server, "mia@acme.test", PASSWORD)
            .await
            .status(),
        200
    );
    let (s, v) = send(mia_pw.get(&collections)).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["type"], "urn:aura:problem:sso-required");
    assert_eq!(send(mia_sso.get(&collections)).await.0, 200);
    // Her personal API token too (made through her SSO session).
    let (s, tok) = send(
        mia_sso
            .post(server.url(&format!("/api/v1/workspaces/{ws}/tokens")))
            .json(&json!({ "name": "cli", "scope": "member" })),
    )
    .await;
    assert_eq!(s, 201, "{tok}");
    let token = tok["secret"].as_str().unwrap();
    let (s, _) = send(reqwest::Client::new().get(&collections).bearer_auth(token)).await;
    assert_eq!(
        s, 403,
        "a person's API token is refused in an SSO-only workspace"
    );
    // The break-glass owner signs in with a password, audited.
    assert_eq!(send(owner.get(&collections)).await.0, 200);
    assert_eq!(send(owner.get(&collections)).await.0, 200);
    let used = audit_actions(&owner, &server, &ws, "sso.break_glass_used").await;
    assert_eq!(used.len(), 1, "once per credential: {used:?}");
    // /trust counts it.
    let (_, trust) = send(reqwest::Client::new().get(server.url("/trust.json"))).await;
    let ac = &trust["document"]["access_control"];
    assert_eq!(ac["workspaces_requiring_sso"], 1, "{ac}");
    assert_eq!(ac["workspaces_with_sso"], 1, "{ac}");
    let _ = mia;
}
