//! Residency on every outbound path (issue 21), against real servers: a
//! webhook receiver outside the region is refused when saved (422 naming
//! `url`, nothing written) and stops receiving when the config changes (a
//! delivery-log entry says why); an SMTP relay outside the region stops the
//! server at start; a move to another region needs `--allow-cross-region`,
//! recorded in both chains; /trust lists every outbound path.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use common::{Env, PASSWORD, Server, client, login, open_db};
use poem::web::Data;
use poem::{EndpointExt, Route, handler, post};
use serde_json::{Value, json};

const OWNER: &str = "owner@example.com";

/// Sets `residency`, `region`, `[[outbound.hosts]]` and `mail.smtp_host` in
/// the env's config (from the file `aura init` wrote, kept aside).
fn configure(env: &Env, residency: &str, hosts: &[(&str, &str)], smtp_host: &str) {
    let orig = env.root().join("aura.toml.orig");
    if !orig.exists() {
        std::fs::copy(env.config_path(), &orig).unwrap();
    }
    let text = std::fs::read_to_string(&orig).unwrap();
    let tables: String = hosts
        .iter()
        .map(|(p, r)| format!("[[outbound.hosts]]\npattern = \"{p}\"\nregion = \"{r}\"\n"))
        .collect();
    let text = text
        .replacen(
            "\nresidency = \"\"",
            &format!("\nresidency = \"{residency}\""),
            1,
        )
        .replacen("\nregion = \"\"", &format!("\nregion = \"{residency}\""), 1)
        .replacen(
            "\nsmtp_host = \"\"",
            &format!("\nsmtp_host = \"{smtp_host}\""),
            1,
        )
        .replacen("\nhosts = []\n", &format!("\n{tables}"), 1);
    std::fs::write(env.config_path(), text).unwrap();
}

const LOOPBACK: &[(&str, &str)] = &[
    ("AURA_INTEGRATIONS__ALLOWED_CIDRS", "[\"127.0.0.0/8\"]"),
    ("AURA_INTEGRATIONS__POLL_INTERVAL_MS", "50"),
    ("AURA_INTEGRATIONS__RETRY_BASE_MS", "200"),
];

#[handler]
async fn receive(hits: Data<&Arc<AtomicUsize>>) -> poem::http::StatusCode {
    hits.fetch_add(1, Ordering::SeqCst);
    poem::http::StatusCode::NO_CONTENT
}

/// A plain-HTTP receiver on 127.0.0.1:0: its base URL and its hit count.
async fn receiver() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Route::new()
        .at("/ok", post(receive))
        .data(Arc::clone(&hits));
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    (format!("http://{addr}"), hits)
}

fn count(db: &Path, sql: &str) -> i64 {
    open_db(db).query_row(sql, [], |r| r.get(0)).unwrap()
}

async fn signed_in(server: &Server) -> reqwest::Client {
    let c = client(server);
    assert_eq!(login(&c, server, OWNER, PASSWORD).await.status(), 200);
    c
}

async fn send(c: &reqwest::Client, url: String, body: Value) -> (u16, Value) {
    let r = c.post(url).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn hook(url: &str) -> Value {
    json!({"url": url, "events": ["record.created"]})
}

#[tokio::test]
async fn out_of_region_webhooks_are_refused_with_422_naming_url_and_nothing_written() {
    let (base, _) = receiver().await;
    let env = Env::new();
    configure(
        &env,
        "EU",
        &[
            ("*.hooks.example.eu", "EU"),
            ("us.hooks.example.eu", "US"),
            ("127.0.0.1", "US"),
        ],
        "",
    );
    env.create_user(OWNER, "Owner");
    let ws = env.create_workspace("Resident GmbH", OWNER);
    let server = env.start_with(LOOPBACK);
    let c = signed_in(&server).await;
    let api = server.url(&format!("/api/v1/workspaces/{ws}/webhooks"));
    let db = env.tenant_db(&ws);
    let audit_before = count(&db, "SELECT count(*) FROM audit_log");

    for url in [
        "https://hooks.example.com/x".to_owned(),
        format!("{base}/ok"),                   // declared, but in US
        "https://hooks.example.eu/x".into(),    // the bare suffix
        "https://us.hooks.example.eu/x".into(), // the more specific pattern: US
        "https://US.Hooks.Example.EU./x".into(),
        "https://a.hooks.example.eu.attacker.com/x".into(),
        "https://EVIL.EU.ATTACKER.COM/x".into(),
        "https://attacker.com/a.hooks.example.eu?h=a.hooks.example.eu".into(),
        "https://a.hooks.exаmple.eu/x".into(), // Cyrillic а: another name
        "https://1.1.1.1/x".into(),
        "https://[2606:4700:4700::1111]/x".into(),
        "https://eu@attacker.com/x".into(),
        "https://a.hooks.example.eu@attacker.com/x".into(),
    ] {
        let (s, p) = send(&c, api.clone(), hook(&url)).await;
        assert_eq!(s, 422, "{url}: {p}");
        assert_eq!(p["errors"][0]["field"], "url", "{url}: {p}");
        let why = p["detail"].as_str().unwrap_or_default();
        assert!(
            why.contains("residency") || why.contains("credentials"),
            "{url}: {p}"
        );
    }
    let (s, p) = send(&c, api.clone(), hook("https://attacker.com/")).await;
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("outbound.hosts") && d.contains("`EU`")),
        "the rule is named: {s} {p}"
    );
    // The form in the UI is refused the same way.
    let page = common::get_text(&c, server.url(&format!("/w/{ws}/integrations"))).await;
    let form = [
        ("csrf", common::csrf_from(&page)),
        ("url", "https://hooks.example.com/form".into()),
        ("events", "record.created".into()),
    ];
    let r = c
        .post(server.url(&format!("/w/{ws}/integrations/webhooks")))
        .form(&form)
        .send()
        .await
        .unwrap();
    let (s, body) = (r.status().as_u16(), r.text().await.unwrap());
    assert!(s >= 400 && body.contains("residency"), "{s}");
    assert_eq!(count(&db, "SELECT count(*) FROM webhook_endpoints"), 0);
    assert_eq!(
        count(&db, "SELECT count(*) FROM audit_log"),
        audit_before,
        "a refused webhook writes no audit entry"
    );
    // In region, in any spelling of the same host: accepted.
    let (s, p) = send(&c, api.clone(), hook("https://A.Hooks.Example.EU./in")).await;
    assert_eq!(s, 201, "{p}");
    // Moving it out of the region by an update is refused the same way.
    let one = format!("{api}/{}", p["id"].as_str().unwrap());
    let audit_before = count(&db, "SELECT count(*) FROM audit_log");
    for url in [
        "https://hooks.example.com/x",
        "https://a.hooks.example.eu.evil.com/",
    ] {
        let r = c
            .patch(&one)
            .json(&json!({"url": url}))
            .send()
            .await
            .unwrap();
        let (s, p) = (r.status().as_u16(), r.json::<Value>().await.unwrap());
        assert_eq!((s, &p["errors"][0]["field"]), (422, &json!("url")), "{p}");
    }
    assert_eq!(count(&db, "SELECT count(*) FROM audit_log"), audit_before);
    let listed = common::get_json(&c, &api).await.to_string();
    assert!(
        listed.contains("A.Hooks.Example.EU.") || listed.contains("a.hooks.example.eu."),
        "{listed}"
    );
    let r = c
        .patch(&one)
        .json(&json!({"url": "https://b.hooks.example.eu/x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "an in-region update is accepted");
}

#[tokio::test]
async fn an_existing_webhook_stops_delivering_when_its_host_leaves_the_region() {
    let (base, hits) = receiver().await;
    let env = Env::new();
    configure(&env, "EU", &[("127.0.0.1", "EU")], "");
    env.create_user(OWNER, "Owner");
    let ws = env.create_workspace("Hooked GmbH", OWNER);
    let server = env.start_with(LOOPBACK);
    let c = signed_in(&server).await;
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let (s, h) = send(&c, api("/webhooks"), hook(&format!("{base}/ok"))).await;
    assert_eq!(s, 201, "{h}");
    let hid = h["id"].as_str().unwrap().to_owned();
    let (s, coll) = send(
        &c,
        api("/collections"),
        json!({"name": "Orders", "fields": [{"name": "Title", "type": "text"}]}),
    )
    .await;
    assert_eq!(s, 201, "{coll}");
    let records = format!("/collections/{}/records", coll["id"].as_str().unwrap());
    let (s, _) = send(&c, api(&records), json!({"values": {"Title": "in region"}})).await;
    assert_eq!(s, 201);
    let deliveries = |c: reqwest::Client, url: String| async move {
        let started = Instant::now();
        loop {
            let d = common::get_json(&c, &url).await;
            let items = d["items"].as_array().cloned().unwrap_or_default();
            if items.first().is_some_and(|x| x["status"] != "pending") {
                return items;
            }
            assert!(started.elapsed() < Duration::from_secs(30), "{d}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    let log = api(&format!("/webhooks/{hid}/deliveries"));
    let items = deliveries(c.clone(), log.clone()).await;
    assert_eq!(items[0]["status"], "succeeded", "{items:?}");
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    server.stop();

    // The operator now declares the receiver's host in another region.
    configure(&env, "EU", &[("127.0.0.1", "US")], "");
    let server = env.start_with(LOOPBACK);
    let c = signed_in(&server).await;
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let (s, _) = send(&c, api(&records), json!({"values": {"Title": "after"}})).await;
    assert_eq!(s, 201);
    let items = loop {
        let items = deliveries(c.clone(), api(&format!("/webhooks/{hid}/deliveries"))).await;
        if items.len() == 2 {
            break items;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(items[0]["status"], "failed", "{items:?}");
    assert_eq!(items[0]["attempts"], 1, "given up at once: {items:?}");
    let why = items[0]["last_error"].as_str().unwrap_or_default();
    assert!(
        why.contains("residency") && why.contains("nothing was sent"),
        "{why}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the receiver got nothing more"
    );
    let page = common::get_text(&c, server.url(&format!("/w/{ws}/integrations"))).await;
    assert!(
        page.contains("Outside this appliance&#39;s residency")
            || page.contains("Outside this appliance's residency")
    );
}

#[test]
fn an_smtp_relay_outside_the_region_is_refused_at_start() {
    let env = Env::new();
    let serve = || env.command(&["serve", "--listen", "127.0.0.1:0"]);
    for relay in [
        "smtp.mailer.us",
        "smtp.example.eu.attacker.com",
        "127.0.0.1",
        "EXAMPLE.EU",
    ] {
        configure(&env, "EU", &[("*.example.eu", "EU")], relay);
        let err = match Server::try_start(serve()) {
            Ok(_) => panic!("{relay}: the server started"),
            Err(e) => e,
        };
        assert!(
            err.contains("mail.smtp_host") && err.contains("outbound.hosts"),
            "{relay}: {err}"
        );
    }
    // A pattern that would match everything, or is no host, is a config
    // error naming its key.
    for pattern in ["*", "*.", "hooks.example.eu/x", "eu@hooks.example.eu"] {
        configure(&env, "EU", &[(pattern, "EU")], "");
        let err = Server::try_start(serve()).err().unwrap_or_default();
        assert!(
            err.contains("outbound.hosts[0].pattern"),
            "{pattern}: {err}"
        );
    }
    // Declared in region, in any case and with a trailing dot: it starts.
    configure(&env, "EU", &[("*.example.eu", "EU")], "SMTP.Example.EU.");
    Server::start(serve()).stop();
}

fn age_keys(dir: &Path) -> (String, String) {
    let id = age::x25519::Identity::generate();
    let file = dir.join("target-identity.txt");
    std::fs::write(&file, format!("{}\n", id.to_string().expose_secret())).unwrap();
    (
        file.to_str().unwrap().to_owned(),
        id.to_public().to_string(),
    )
}

fn run(env: &Env, args: &[&str]) -> (bool, String) {
    let out = env.cli(args, None);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn moved_out(env: &Env) -> i64 {
    count(
        &env.data_dir().join("control.db"),
        "SELECT count(*) FROM audit_log WHERE action = 'workspace.moved_out'",
    )
}

#[test]
fn a_move_to_another_region_needs_allow_cross_region_and_is_audited_in_both_chains() {
    let (source, target, other_eu) = (Env::new(), Env::new(), Env::new());
    configure(&source, "EU", &[], "");
    configure(&target, "US", &[], "");
    configure(&other_eu, "EU", &[], "");
    source.create_user(OWNER, "Owner");
    let ws = source.create_workspace("Mover GmbH", OWNER);
    let (identity, recipient) = age_keys(target.root());
    let bundle = source.root().join("move.age");
    let b = bundle.to_str().unwrap();
    let base = [
        "workspace",
        "move-out",
        &ws,
        "--to-recipient",
        &recipient,
        "--out",
        b,
    ];
    let with = |extra: [&'static str; 2]| {
        let mut v = base.to_vec();
        v.extend(extra);
        v
    };

    let (ok, out) = run(&source, &base);
    assert!(!ok && out.contains("--target-region"), "{out}");
    let (ok, out) = run(&source, &with(["--target-region", "US"]));
    assert!(!ok && out.contains("--allow-cross-region"), "{out}");
    assert!(
        !bundle.exists() && moved_out(&source) == 0,
        "a refused move changes nothing"
    );

    let reason = "customer relocated to Ohio";
    let (ok, out) = run(
        &source,
        &[
            &with(["--target-region", "US"])[..],
            &["--allow-cross-region", reason],
        ]
        .concat(),
    );
    assert!(ok && out.contains("cross-region"), "{out}");
    assert_eq!(moved_out(&source), 1);
    let key = out
        .split("--source-key ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .trim_matches('`')
        .to_owned();
    for chain in [vec![], vec!["--workspace", ws.as_str()]] {
        let (ok, log) = run(&source, &[&["audit", "export"][..], &chain].concat());
        assert!(
            ok && log.contains("workspace.moved_out") && log.contains(reason),
            "{log}"
        );
    }

    // Another EU appliance refuses a bundle made for US.
    let move_in = [
        "workspace",
        "move-in",
        b,
        "--identity",
        &identity,
        "--source-key",
        &key,
    ];
    let (ok, out) = run(&other_eu, &move_in);
    assert!(!ok && out.contains("made for region `US`"), "{out}");
    // The US target imports it and names the source's reason in both chains.
    target.create_user(OWNER, "Owner");
    let (ok, out) = run(&target, &move_in);
    assert!(ok, "{out}");
    for chain in [vec![], vec!["--workspace", ws.as_str()]] {
        let (ok, log) = run(&target, &[&["audit", "export"][..], &chain].concat());
        assert!(
            ok && log.contains("workspace.moved_in") && log.contains(reason),
            "{log}"
        );
    }
    let (ok, out) = run(&target, &["audit", "verify"]);
    assert!(ok, "{out}");
}

#[tokio::test]
async fn trust_lists_every_outbound_path_with_its_region() {
    let env = Env::new();
    configure(
        &env,
        "EU",
        &[("*.hooks.example.eu", "EU"), ("smtp.example.eu", "EU")],
        "smtp.example.eu",
    );
    let server = env.start();
    let t = common::get_json(&reqwest::Client::new(), server.url("/trust.json")).await;
    let paths = t["document"]["residency"]["outbound"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let names: Vec<&str> = paths.iter().filter_map(|p| p["path"].as_str()).collect();
    assert_eq!(
        names,
        ["backups", "replication", "webhooks", "smtp_relay", "moves"],
        "{t}"
    );
    assert!(paths.iter().all(|p| p["enforced"] == true), "{t}");
    assert_eq!(t["document"]["residency"]["status"], "met", "{t}");
    assert_eq!(t["document"]["residency"]["enforced"], true, "{t}");
    for p in ["webhooks", "smtp_relay", "moves", "backups"] {
        let row = paths.iter().find(|x| x["path"] == p).unwrap();
        assert_eq!(row["region"], "EU", "{row}");
    }
    let page = common::get_text(&reqwest::Client::new(), server.url("/trust")).await;
    assert!(page.contains("Outbound paths") && page.contains("Email relay (SMTP)"));
    assert!(
        !page.contains("smtp.example.eu"),
        "the public page names no host"
    );
}
