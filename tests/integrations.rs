//! Integrations end to end: webhook deliveries to a real local receiver that
//! fails at first (retried with backoff, signed per Standard Webhooks, then a
//! manual redeliver), the SSRF guard on URLs and on resolved names, and
//! inbound webhooks refusing bad signatures, stale timestamps, replays and
//! another workspace's signatures.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aura::integrations::signing;
use common::{Env, PASSWORD, Server, client, login};
use poem::web::Data;
use poem::{EndpointExt, Request, Route, handler, post};
use serde_json::{Value, json};

/// What the receiver saw: (path, webhook-id, webhook-timestamp, signature, body, when).
type Seen = Arc<Mutex<Vec<(String, String, i64, String, Vec<u8>, Instant)>>>;

#[derive(Clone)]
struct Receiver {
    seen: Seen,
    /// `/flaky` answers 500 this many times, then 204.
    fail_first: usize,
}

#[handler]
async fn receive(req: &Request, body: Vec<u8>, r: Data<&Receiver>) -> poem::http::StatusCode {
    let h = |n: &str| {
        req.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let path = req.uri().path().to_owned();
    let n = {
        let mut seen = r.seen.lock().unwrap();
        seen.push((
            path.clone(),
            h("webhook-id"),
            h("webhook-timestamp").parse().unwrap_or(0),
            h("webhook-signature"),
            body,
            Instant::now(),
        ));
        seen.iter().filter(|s| s.0 == path).count()
    };
    match path.as_str() {
        "/flaky" if n <= r.fail_first => poem::http::StatusCode::INTERNAL_SERVER_ERROR,
        "/flaky" => poem::http::StatusCode::NO_CONTENT,
        _ => poem::http::StatusCode::SERVICE_UNAVAILABLE,
    }
}

/// A plain-HTTP receiver on 127.0.0.1:0; its base URL.
async fn start_receiver(fail_first: usize) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Route::new()
        .at("/flaky", post(receive))
        .at("/down", post(receive))
        .at("/down2", post(receive))
        .at("/down3", post(receive))
        .data(Receiver {
            seen: Arc::clone(&seen),
            fail_first,
        });
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(async move {
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    (format!("http://{addr}"), seen)
}

struct Ws {
    env: Env,
    server: Server,
    c: reqwest::Client,
    id: String,
}

async fn workspace(vars: &[(&str, &str)]) -> Ws {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let id = env.create_workspace("Hooks Inc", "owner@example.com");
    let server = env.start_with(vars);
    let c = client(&server);
    let r = login(&c, &server, "owner@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    Ws { env, server, c, id }
}

impl Ws {
    fn api(&self, p: &str) -> String {
        self.server
            .url(&format!("/api/v1/workspaces/{}{p}", self.id))
    }
    async fn post(&self, p: &str, body: Value) -> (u16, Value) {
        let r = self.c.post(self.api(p)).json(&body).send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, p: &str) -> Value {
        common::get_json(&self.c, self.api(p)).await
    }
    /// A collection with one text field, and a record in it.
    async fn record(&self) -> (String, String) {
        let (s, coll) = self
            .post(
                "/collections",
                json!({"name": "Orders", "fields": [{"name": "Title", "type": "text"}]}),
            )
            .await;
        assert_eq!(s, 201, "{coll}");
        let cid = coll["id"].as_str().unwrap().to_owned();
        let (s, rec) = self
            .post(
                &format!("/collections/{cid}/records"),
                json!({"values": {"Title": "first"}}),
            )
            .await;
        assert_eq!(s, 201, "{rec}");
        (cid, rec["id"].as_str().unwrap().to_owned())
    }
    /// Polls a webhook's deliveries until `done` holds (at most 30 s).
    async fn wait_deliveries(&self, hook: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let d = self.get(&format!("/webhooks/{hook}/deliveries")).await;
            let items = d["items"].as_array().cloned().unwrap_or_default();
            if done(&items) {
                return items;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "deliveries: {d}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

const LOOPBACK_ALLOWED: &[(&str, &str)] = &[
    ("AURA_INTEGRATIONS__ALLOWED_CIDRS", "[\"127.0.0.0/8\"]"),
    ("AURA_INTEGRATIONS__RETRY_BASE_MS", "300"),
    ("AURA_INTEGRATIONS__MAX_ATTEMPTS", "4"),
    ("AURA_INTEGRATIONS__POLL_INTERVAL_MS", "50"),
];

#[tokio::test]
async fn failed_deliveries_retry_with_backoff_and_can_be_redelivered() {
    let (base, seen) = start_receiver(2).await;
    let w = workspace(LOOPBACK_ALLOWED).await;
    let (s, hook) = w
        .post(
            "/webhooks",
            json!({"url": format!("{base}/flaky"), "events": ["record.created", "record.deleted"]}),
        )
        .await;
    assert_eq!(s, 201, "{hook}");
    let secret = hook["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let hid = hook["id"].as_str().unwrap().to_owned();
    let (s, down) = w
        .post(
            "/webhooks",
            json!({"url": format!("{base}/down"), "events": ["record.created"]}),
        )
        .await;
    assert_eq!(s, 201);
    let down_id = down["id"].as_str().unwrap().to_owned();
    // The list never shows a signing secret.
    assert!(!w.get("/webhooks").await.to_string().contains(&secret));

    let (_, record) = w.record().await;
    let items = w
        .wait_deliveries(&hid, |d| {
            d.first().is_some_and(|x| x["status"] == "succeeded")
        })
        .await;
    assert_eq!(
        items[0]["attempts"], 3,
        "two failures, then success: {items:?}"
    );
    assert_eq!(items[0]["last_status_code"], 204);
    assert_eq!(items[0]["event_type"], "record.created");
    let flaky: Vec<_> = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.0 == "/flaky")
        .cloned()
        .collect();
    assert_eq!(flaky.len(), 3);
    for (_, id, ts, sig, body, _) in &flaky {
        assert_eq!(id, &flaky[0].1, "one webhook-id for every attempt");
        assert!(
            signing::verify(std::slice::from_ref(&secret), sig, id, *ts, body),
            "signed"
        );
        let payload: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(payload["type"], "record.created");
        assert_eq!(payload["data"]["id"], record.as_str());
        assert_eq!(payload["data"]["workspace_id"], w.id.as_str());
    }
    // Backoff: ~300 ms (150..300 with jitter) before the 2nd, twice that before the 3rd.
    let gap1 = flaky[1].5 - flaky[0].5;
    let gap2 = flaky[2].5 - flaky[1].5;
    println!("retry gaps: {gap1:?}, {gap2:?}");
    assert!(gap1 >= Duration::from_millis(140), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(290), "{gap2:?}");

    // An endpoint that never recovers is given up after max_attempts.
    let d = w
        .wait_deliveries(&down_id, |d| {
            d.first().is_some_and(|x| x["status"] == "failed")
        })
        .await;
    assert_eq!(d[0]["attempts"], 4);
    assert_eq!(d[0]["last_status_code"], 503);

    // A manual redeliver sends the same message again, once.
    let first = items[0]["id"].as_str().unwrap();
    let r =
        w.c.post(w.api(&format!("/webhooks/{hid}/deliveries/{first}/redeliver")))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 202);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["msg_id"], items[0]["msg_id"]);
    assert_eq!(again["redelivery_of"], first);
    let items = w
        .wait_deliveries(&hid, |d| {
            d.len() == 2 && d[0]["status"] == "succeeded" && d[0]["attempts"] == 1
        })
        .await;
    assert_eq!(items[0]["redelivery_of"], first);
    let count = seen
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.0 == "/flaky")
        .count();
    assert_eq!(count, 4);
    // Another workspace's delivery id, or an unknown one: 404.
    let r =
        w.c.post(w.api(&format!("/webhooks/{down_id}/deliveries/{first}/redeliver")))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 404, "a delivery of another endpoint");

    // The delivery log in the UI, with its status codes and Redeliver buttons.
    let page = common::get_text(&w.c, w.server.url(&format!("/w/{}/integrations", w.id))).await;
    assert!(page.contains("succeeded") && page.contains("204") && page.contains("Redeliver"));
    // The receiver's host is shown inside the workspace, never on the
    // public trust page (finding 11).
    let trust = common::get_json(&w.c, w.server.url("/trust.json")).await;
    assert!(
        !trust["document"]["subprocessors"]
            .to_string()
            .contains("127.0.0.1"),
        "{trust}"
    );
    let home = common::get_text(&w.c, w.server.url(&format!("/w/{}", w.id))).await;
    assert!(home.contains("127.0.0.1"), "{home}");
    w.server.stop();
}

/// Row ak: the waits between attempts double (exponential) and are drawn
/// at random below that doubling (jitter), so they vary across deliveries.
/// The receiver times each attempt; a wait is never shorter than scheduled,
/// so the lower bounds hold however loaded the machine is. Three endpoints
/// that never recover give nine waits: retry `k` waits between
/// `base * 2^(k-1) / 2` and `base * 2^(k-1)`.
#[tokio::test]
async fn retries_back_off_exponentially_with_jitter_across_deliveries() {
    const BASE: u128 = 600;
    let (base, seen) = start_receiver(0).await;
    let w = workspace(&[
        ("AURA_INTEGRATIONS__ALLOWED_CIDRS", "[\"127.0.0.0/8\"]"),
        ("AURA_INTEGRATIONS__RETRY_BASE_MS", "600"),
        ("AURA_INTEGRATIONS__MAX_ATTEMPTS", "4"),
        ("AURA_INTEGRATIONS__POLL_INTERVAL_MS", "10"),
    ])
    .await;
    let mut hooks = Vec::new();
    for path in ["/down", "/down2", "/down3"] {
        let (s, hook) = w
            .post(
                "/webhooks",
                json!({"url": format!("{base}{path}"), "events": ["record.created"]}),
            )
            .await;
        assert_eq!(s, 201, "{hook}");
        hooks.push((path, hook["id"].as_str().unwrap().to_owned()));
    }
    w.record().await;
    for (_, hid) in &hooks {
        let d = w
            .wait_deliveries(hid, |d| d.first().is_some_and(|x| x["status"] == "failed"))
            .await;
        assert_eq!(d[0]["attempts"], 4, "{d:?}");
    }
    // Each wait, divided by its doubling: 1x, 2x, 4x the base.
    let mut normalised = Vec::new();
    for (path, _) in &hooks {
        let times: Vec<Instant> = seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.0 == *path)
            .map(|s| s.5)
            .collect();
        assert_eq!(times.len(), 4, "{path}: four attempts");
        for k in 1..4 {
            let gap = (times[k] - times[k - 1]).as_millis();
            let doubling = 1u128 << (k - 1);
            println!("{path} retry {k}: waited {gap} ms");
            assert!(
                gap >= BASE * doubling / 2,
                "{path} retry {k}: {gap} ms is under half of {} ms",
                BASE * doubling
            );
            normalised.push(gap / doubling);
        }
    }
    // Exponential: the third wait is at least the base doubled, which a
    // constant (or linear-at-base) delay never reaches.
    // Jitter: without it every wait is at least its full doubling (the
    // attempt cannot come early); with it, waits land anywhere in the lower
    // half, so of nine at least one is well under (chance of none: 0.2^9).
    let min = *normalised.iter().min().unwrap();
    assert!(
        min < BASE * 9 / 10,
        "no wait fell below its un-jittered value: {normalised:?}"
    );
    let distinct: std::collections::HashSet<u128> = normalised.iter().map(|n| n / 20).collect();
    assert!(distinct.len() >= 3, "the waits vary: {normalised:?}");
    w.server.stop();
}

/// A delivery starts as soon as the change that queued it has committed,
/// however slow the commit: the worker is woken after the commit, never
/// before. (Woken before it, the worker read a snapshot without the delivery
/// and slept until its next full scan, 30 s later: CI saw a first attempt
/// 30 s late.) `AURA_TEST_COMMIT_DELAY_MS` holds every commit as a slow disk
/// would.
#[tokio::test]
async fn a_delivery_starts_at_once_however_slow_the_commit() {
    let (base, seen) = start_receiver(0).await;
    let w = workspace(&[
        ("AURA_INTEGRATIONS__ALLOWED_CIDRS", "[\"127.0.0.0/8\"]"),
        ("AURA_TEST_COMMIT_DELAY_MS", "300"),
    ])
    .await;
    let (s, hook) = w
        .post(
            "/webhooks",
            json!({"url": format!("{base}/down"), "events": ["record.created"]}),
        )
        .await;
    assert_eq!(s, 201, "{hook}");
    // Past the worker's start-up scan: only the wake-up can start it now.
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.record().await;
    let committed = Instant::now();
    loop {
        if seen.lock().unwrap().iter().any(|s| s.0 == "/down") {
            break;
        }
        assert!(
            committed.elapsed() < Duration::from_secs(10),
            "no delivery attempt within 10 s of the commit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("first attempt {:?} after the commit", committed.elapsed());
    w.server.stop();
}

/// A TCP listener on `ip`:0 that counts connections and answers none.
async fn connection_counter(ip: &str) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = Arc::clone(&hits);
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            h.fetch_add(1, Ordering::SeqCst);
            drop(conn);
        }
    });
    (addr, hits)
}

#[handler]
fn redirect_to(req: &Request) -> poem::Response {
    let to = req.uri().query().unwrap_or_default().to_owned();
    poem::Response::builder()
        .status(poem::http::StatusCode::TEMPORARY_REDIRECT)
        .header("location", to)
        .finish()
}

/// Row al: "no redirects, no proxies". The first hop is allow-listed
/// (127.0.0.1) and answers 307 to 127.0.0.2, which is not: nothing connects
/// there. `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` in the server's environment
/// point at a listener on 127.0.0.2: no delivery goes through it, neither to
/// the allow-listed address nor to a name (a proxy would resolve the name
/// itself, past the guarded resolver).
#[tokio::test]
async fn the_ssrf_guard_follows_no_redirect_and_uses_no_proxy() {
    let (target, target_hits) = connection_counter("127.0.0.2").await;
    let (proxy, proxy_hits) = connection_counter("127.0.0.2").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hop = listener.local_addr().unwrap();
    let acceptor = poem::listener::TcpAcceptor::from_tokio(listener).unwrap();
    tokio::spawn(async move {
        let app = Route::new().at("/hop", poem::post(redirect_to).get(redirect_to));
        let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
    });
    let (base, seen) = start_receiver(0).await;
    let proxy_url = format!("http://{proxy}");
    let w = workspace(&[
        ("AURA_INTEGRATIONS__ALLOWED_CIDRS", "[\"127.0.0.1/32\"]"),
        ("AURA_INTEGRATIONS__POLL_INTERVAL_MS", "50"),
        ("AURA_INTEGRATIONS__RETRY_BASE_MS", "60000"),
        ("HTTP_PROXY", &proxy_url),
        ("http_proxy", &proxy_url),
        ("HTTPS_PROXY", &proxy_url),
        ("https_proxy", &proxy_url),
        ("ALL_PROXY", &proxy_url),
        ("all_proxy", &proxy_url),
        ("NO_PROXY", ""),
        ("no_proxy", ""),
    ])
    .await;
    let mut hooks = Vec::new();
    for url in [
        format!("http://{hop}/hop?http://{target}/flaky"),
        format!("{base}/flaky"),
        "https://hooks.aura-ssrf.invalid/in".to_owned(),
    ] {
        let (s, hook) = w
            .post(
                "/webhooks",
                json!({"url": url, "events": ["record.created"]}),
            )
            .await;
        assert_eq!(s, 201, "{url}: {hook}");
        hooks.push(hook["id"].as_str().unwrap().to_owned());
    }
    w.record().await;
    let done = |d: &[Value]| d.first().is_some_and(|x| x["attempts"] == 1);
    let redirected = w.wait_deliveries(&hooks[0], done).await;
    assert_eq!(redirected[0]["last_status_code"], 307, "{redirected:?}");
    assert_eq!(redirected[0]["last_error"], "redirect (not followed)");
    assert_eq!(redirected[0]["status"], "pending", "{redirected:?}");
    let direct = w.wait_deliveries(&hooks[1], done).await;
    assert_eq!(direct[0]["status"], "succeeded", "{direct:?}");
    assert_eq!(direct[0]["last_status_code"], 204);
    assert_eq!(seen.lock().unwrap().len(), 1, "delivered directly");
    let named = w.wait_deliveries(&hooks[2], done).await;
    assert!(named[0]["last_status_code"].is_null(), "{named:?}");
    // Give a follow-up connection time to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        target_hits.load(Ordering::SeqCst),
        0,
        "the redirect to a refused address was followed"
    );
    assert_eq!(
        proxy_hits.load(Ordering::SeqCst),
        0,
        "a delivery went through the proxy"
    );
    w.server.stop();
}

#[tokio::test]
async fn the_ssrf_guard_refuses_private_addresses_unless_allow_listed() {
    let (base, seen) = start_receiver(0).await;
    let port = base.rsplit(':').next().unwrap().to_owned();
    let w = workspace(&[("AURA_INTEGRATIONS__POLL_INTERVAL_MS", "50")]).await;
    for url in [
        "https://127.0.0.1/hook",
        "https://10.0.0.1/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::ffff:127.0.0.1]/hook",
        "https://2130706433/hook",
        "http://hooks.example.com/hook",
        &format!("{base}/flaky"),
    ] {
        let (s, p) = w
            .post(
                "/webhooks",
                json!({"url": url, "events": ["record.created"]}),
            )
            .await;
        assert_eq!(s, 422, "{url}: {p}");
        assert_eq!(p["errors"][0]["field"], "url", "{p}");
    }
    // A name is checked where it is resolved: localhost is 127.0.0.1 here.
    let (s, hook) = w
        .post(
            "/webhooks",
            json!({"url": format!("https://localhost:{port}/flaky"), "events": ["record.created"]}),
        )
        .await;
    assert_eq!(s, 201, "{hook}");
    let hid = hook["id"].as_str().unwrap().to_owned();
    w.record().await;
    let d = w
        .wait_deliveries(&hid, |d| d.first().is_some_and(|x| x["attempts"] == 1))
        .await;
    assert_eq!(d[0]["status"], "pending", "retried later");
    assert!(d[0]["last_status_code"].is_null());
    assert!(
        d[0]["last_error"].as_str().unwrap().contains("SSRF"),
        "{d:?}"
    );
    assert!(
        seen.lock().unwrap().is_empty(),
        "nothing reached the receiver"
    );
    w.server.stop();
}

/// Finding 15 of issue 18: the IPv4-translated form (`::ffff:0:a.b.c.d`) and
/// the NAT64 prefixes (`64:ff9b::/96`, the local-use `64:ff9b:1::/48`) carry
/// an IPv4 address a NAT64 gateway or SIIT translator connects to; they are
/// refused like the other embedded forms, and nothing is stored.
#[tokio::test]
async fn the_ssrf_guard_refuses_ipv4_translated_and_nat64_addresses() {
    let w = workspace(&[]).await;
    for url in [
        "https://[::ffff:0:127.0.0.1]/hook",
        "https://[::ffff:0:169.254.169.254]/latest/meta-data/",
        "https://[::ffff:0:a00:1]/hook",
        "https://[64:ff9b::127.0.0.1]/hook",
        "https://[64:ff9b::10.0.0.1]/hook",
        "https://[64:ff9b::169.254.169.254]/hook",
        "https://[64:ff9b:1::a9fe:a9fe]/hook",
        "https://[64:ff9b:1::8.8.8.8]/hook",
        "https://[64:ff9b:1:7f00:1::]/hook",
    ] {
        let (s, p) = w
            .post(
                "/webhooks",
                json!({"url": url, "events": ["record.created"]}),
            )
            .await;
        assert_eq!(s, 422, "{url}: {p}");
        assert_eq!(p["errors"][0]["field"], "url", "{p}");
    }
    let hooks = w.get("/webhooks").await;
    assert_eq!(hooks["items"].as_array().map(Vec::len), Some(0), "{hooks}");
    w.server.stop();
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

async fn post_hook(url: &str, id: &str, ts: i64, sig: Option<&str>, body: &str) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string());
    if let Some(s) = sig {
        r = r.header("webhook-signature", s);
    }
    let r = r.body(body.to_owned()).send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn inbound_webhooks_check_signature_timestamp_and_replay() {
    let w = workspace(&[("AURA_INTEGRATIONS__POLL_INTERVAL_MS", "50")]).await;
    let (cid, _) = w.record().await;
    let (s, made) = w
        .post(
            "/integrations/inbound",
            json!({"name": "Shop", "mode": "signature", "collection_id": cid}),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let secret = made["secret"].as_str().unwrap().to_owned();
    let url = made["url"].as_str().unwrap().to_owned();
    let iid = made["id"].as_str().unwrap().to_owned();
    let body = r#"{"type": "order.created", "data": {"Title": "from the shop"}}"#;
    let sign = |id: &str, ts: i64, secret: &str| signing::sign(secret, id, ts, body.as_bytes());

    let t = now();
    let (s, ok) = post_hook(&url, "evt_1", t, Some(&sign("evt_1", t, &secret)), body).await;
    assert_eq!(s, 202, "{ok}");
    // Bad signature: 403, nothing stored.
    let (s, p) = post_hook(
        &url,
        "evt_2",
        t,
        Some(&sign("evt_2", t, "whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")),
        body,
    )
    .await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:aura:problem:bad-signature"))
    );
    let (s, _) = post_hook(&url, "evt_2", t, None, body).await;
    assert_eq!(s, 403, "no signature");
    let (s, _) = post_hook(&url, "evt_2", t + 1, Some(&sign("evt_2", t, &secret)), body).await;
    assert_eq!(s, 403, "a signature over another timestamp");
    // Stale (correctly signed, 10 minutes old): 403.
    let old = t - 600;
    let (s, p) = post_hook(&url, "evt_3", old, Some(&sign("evt_3", old, &secret)), body).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (403, Some("urn:aura:problem:stale-timestamp"))
    );
    // Just over 5 minutes off, either way: 403 (row am).
    for off in [-310, 310] {
        let ts = now() + off;
        let (s, p) = post_hook(&url, "evt_4", ts, Some(&sign("evt_4", ts, &secret)), body).await;
        assert_eq!(
            (s, p["type"].as_str()),
            (403, Some("urn:aura:problem:stale-timestamp")),
            "{off} s off"
        );
    }
    // Replay of evt_1 (freshly signed): 409.
    let t2 = now();
    let (s, p) = post_hook(&url, "evt_1", t2, Some(&sign("evt_1", t2, &secret)), body).await;
    assert_eq!(
        (s, p["type"].as_str()),
        (409, Some("urn:aura:problem:replayed"))
    );
    // Deduplicated by a keyed digest (row am): the stored key of evt_1 is
    // neither the id nor an unkeyed SHA-256 of it, and the id itself is
    // sealed.
    {
        use sha2::Digest;
        let db = common::open_db(&w.env.tenant_db(&w.id));
        let rows: Vec<(Vec<u8>, Vec<u8>)> = db
            .prepare("SELECT msg_digest, msg_id_ct FROM inbound_events WHERE integration_id = ?1")
            .unwrap()
            .query_map([&iid], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(rows.len(), 1, "one stored event");
        let (digest, ct) = &rows[0];
        for plain in ["evt_1".to_owned(), format!("{iid}:evt_1")] {
            assert_ne!(digest.as_slice(), plain.as_bytes());
            assert_ne!(
                digest.as_slice(),
                sha2::Sha256::digest(plain.as_bytes()).as_slice()
            );
        }
        assert!(!ct.windows(5).any(|w| w == b"evt_1"), "the id is sealed");
    }
    // A missing webhook-id: 400.
    let r = reqwest::Client::new()
        .post(&url)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Processed asynchronously: the event became a record.
    let started = Instant::now();
    let events = loop {
        let e = w.get(&format!("/integrations/inbound/{iid}/events")).await;
        if e["items"][0]["status"] != "received" {
            break e;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "{e}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let items = events["items"].as_array().unwrap();
    assert_eq!(
        items.len(),
        1,
        "only the verified event was stored: {events}"
    );
    assert_eq!(items[0]["status"], "processed", "{events}");
    assert_eq!(items[0]["msg_id"], "evt_1");
    let rec = items[0]["record_id"].as_str().unwrap();
    let r = w.get(&format!("/collections/{cid}/records/{rec}")).await;
    assert_eq!(r["values"]["Title"], "from the shop");
    // The secret shows its last use, never its value.
    let secrets = w.get("/integrations/secrets").await;
    assert!(secrets["items"][0]["last_used_at"].is_string(), "{secrets}");
    assert!(!secrets.to_string().contains(&secret));

    // Rotation: the previous value verifies during the overlap only.
    let sid = made["secret_id"].as_str().unwrap();
    let fresh = signing::generate_secret();
    let (s, _) = w
        .post(
            &format!("/integrations/secrets/{sid}/rotate"),
            json!({"value": fresh, "overlap_hours": 1}),
        )
        .await;
    assert_eq!(s, 200);
    let t = now();
    let (s, _) = post_hook(&url, "evt_4", t, Some(&sign("evt_4", t, &secret)), body).await;
    assert_eq!(s, 202, "the previous secret, inside the overlap");
    let (s, _) = post_hook(&url, "evt_5", t, Some(&sign("evt_5", t, &fresh)), body).await;
    assert_eq!(s, 202, "the new secret");
    let newest = signing::generate_secret();
    let (s, _) = w
        .post(
            &format!("/integrations/secrets/{sid}/rotate"),
            json!({"value": newest, "overlap_hours": 0}),
        )
        .await;
    assert_eq!(s, 200);
    let (s, _) = post_hook(&url, "evt_6", t, Some(&sign("evt_6", t, &fresh)), body).await;
    assert_eq!(s, 403, "no overlap: the previous secret stops at once");

    // Another workspace: A's signature is refused at B's endpoint, and A's
    // integration does not exist under B's id.
    w.env.create_user("b@example.com", "B");
    let b_ws = w.env.create_workspace("B Corp", "b@example.com");
    let bc = client(&w.server);
    assert_eq!(
        login(&bc, &w.server, "b@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = bc
        .post(
            w.server
                .url(&format!("/api/v1/workspaces/{b_ws}/integrations/inbound")),
        )
        .json(&json!({"name": "B shop", "mode": "signature"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let b_made: Value = r.json().await.unwrap();
    let b_url = b_made["url"].as_str().unwrap();
    let t = now();
    let (s, _) = post_hook(b_url, "evt_x", t, Some(&sign("evt_x", t, &newest)), body).await;
    assert_eq!(s, 403, "A's secret at B's endpoint");
    let crossed = w.server.url(&format!("/hooks/{b_ws}/{iid}"));
    let (s, _) = post_hook(&crossed, "evt_y", t, Some(&sign("evt_y", t, &newest)), body).await;
    assert_eq!(s, 404, "A's integration under B's workspace id");
    let (s, _) = post_hook(
        &w.server.url(&format!("/hooks/{}/not-an-id", w.id)),
        "e",
        t,
        Some("v1,x"),
        body,
    )
    .await;
    assert_eq!(s, 404);
    // The secret cannot go while an integration verifies with it.
    let r =
        w.c.delete(w.api(&format!("/integrations/secrets/{sid}")))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 409);

    // Token mode.
    let (s, tok) = w
        .post(
            "/integrations/inbound",
            json!({"name": "Pinger", "mode": "token"}),
        )
        .await;
    assert_eq!(s, 201);
    let turl = tok["url"].as_str().unwrap();
    let token = tok["secret"].as_str().unwrap();
    let send = |bearer: String, id: &'static str| {
        let turl = turl.to_owned();
        async move {
            reqwest::Client::new()
                .post(turl)
                .bearer_auth(bearer)
                .header("webhook-id", id)
                .header("webhook-timestamp", now().to_string())
                .body("{}")
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(send(token.to_owned(), "t1").await, 202);
    assert_eq!(send(format!("{token}x"), "t2").await, 403);
    assert_eq!(send(token.to_owned(), "t1").await, 409);
    w.server.stop();
}

/// Finding 11: the public trust page lists only the subprocessors the
/// operator declared (config) and counts, never a workspace's own webhook
/// receivers; a workspace's members see its receivers inside the workspace.
#[tokio::test]
async fn finding_11_trust_page_lists_declared_subprocessors_not_workspace_receivers() {
    let (base, _seen) = start_receiver(0).await;
    let env = Env::new();
    let cfg = std::fs::read_to_string(env.config_path()).unwrap();
    let declared =
        "subprocessors = [{ role = \"transactional email\", host = \"smtp.mailer.example\" }]";
    let cfg = match cfg.contains("\nsubprocessors = []") {
        true => cfg.replace("\nsubprocessors = []", &format!("\n{declared}")),
        false => format!("{cfg}\n[trust]\n{declared}\n"),
    };
    std::fs::write(env.config_path(), cfg).unwrap();
    env.create_user("owner@example.com", "Owner");
    env.create_user("viewer@example.com", "Viewer");
    let id = env.create_workspace("Hooks Inc", "owner@example.com");
    env.add_member(&id, "viewer@example.com", "viewer");
    let server = env.start_with(LOOPBACK_ALLOWED);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = c
        .post(server.url(&format!("/api/v1/workspaces/{id}/webhooks")))
        .json(&json!({"url": format!("{base}/hook"), "events": ["record.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let anonymous = reqwest::Client::new();
    let trust: Value = anonymous
        .get(server.url("/trust.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let subs = trust["document"]["subprocessors"]["current"].to_string();
    assert!(subs.contains("smtp.mailer.example"), "{trust}");
    assert!(subs.contains("transactional email"), "{trust}");
    assert!(
        !subs.contains("127.0.0.1"),
        "a workspace's receiver is public: {trust}"
    );
    assert!(!trust.to_string().contains("webhook receiver"), "{trust}");
    let page = anonymous
        .get(server.url("/trust"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("smtp.mailer.example"), "{page}");
    assert!(!page.contains("127.0.0.1"), "{page}");

    // Inside the workspace, its members (a viewer too) see its receivers.
    let viewer = client(&server);
    assert_eq!(
        login(&viewer, &server, "viewer@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let home = common::get_text(&viewer, server.url(&format!("/w/{id}"))).await;
    assert!(
        home.contains("id=\"webhook-receivers\"") && home.contains("127.0.0.1"),
        "{home}"
    );
    server.stop();
}
