//! Brute force against sign-in, end to end: the per-IP failure window (shared
//! by `/auth/login` and `/auth/token`), the per-account backoff, bursts of
//! parallel guesses, and the timing of a wrong password against an unknown
//! email. The server sees every request from 127.0.0.1 (no trusted proxies),
//! so each scenario runs on a fresh server: its counters live in memory.

mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{Env, PASSWORD, Server};
use serde_json::{Value, json};

const WRONG: &str = "not the password at all";

/// `POST /api/v1/auth/{route}` (`login` or `token`) as a program would send it.
async fn attempt(server: &Server, route: &str, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url(&format!("/api/v1/auth/{route}")))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// Asserts a 429 problem with a `Retry-After` of whole seconds; returns them.
async fn assert_limited(r: reqwest::Response, what: &str) -> u64 {
    assert_eq!(r.status(), 429, "{what}");
    let secs: u64 = r
        .headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After"))
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(secs >= 1, "{what}: Retry-After {secs}");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:aura:problem:rate-limited", "{what}");
    secs
}

fn audit_count(env: &Env, action: &str) -> i64 {
    common::open_db(&env.data_dir().join("control.db"))
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
}

#[tokio::test]
async fn five_failures_from_one_ip_refuse_the_sixth_attempt_on_both_routes() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");

    // Failures through /auth/login (different emails: the IP limit alone).
    let server = env.start();
    for i in 0..5 {
        let r = attempt(&server, "login", &format!("guess{i}@example.com"), WRONG).await;
        assert_eq!(r.status(), 401, "failure {i}");
    }
    for route in ["login", "token"] {
        let r = attempt(&server, route, "ada@example.com", PASSWORD).await;
        let secs = assert_limited(r, &format!("/auth/{route}, right password")).await;
        assert!(secs <= 15 * 60, "inside the 15 minute window: {secs}");
    }
    let r = attempt(&server, "login", "guess9@example.com", WRONG).await;
    assert_limited(r, "a further guess").await;
    server.stop();
    assert_eq!(
        audit_count(&env, "auth.login_failed"),
        5,
        "refused attempts never reached the password check"
    );

    // A restart forgets; failures through /auth/token count for /auth/login.
    let server = env.start();
    assert_eq!(
        attempt(&server, "login", "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    for i in 0..5 {
        let r = attempt(&server, "token", &format!("guess{i}@example.com"), WRONG).await;
        assert_eq!(r.status(), 401, "failure {i}");
    }
    for route in ["login", "token"] {
        let r = attempt(&server, route, "ada@example.com", PASSWORD).await;
        assert_limited(r, &format!("/auth/{route} after /auth/token failures")).await;
    }
    server.stop();
}

/// Sleeps until just past the start of the next wall-clock second, so that a
/// short run of requests falls inside one second of the server's clock.
async fn align_to_second() {
    let into = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_millis();
    tokio::time::sleep(Duration::from_millis(u64::from(1000 - into) + 20)).await;
}

#[tokio::test]
async fn an_account_backs_off_after_five_failures_while_others_sign_in() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    env.create_user("bob@example.com", "Bob");
    let server = env.start_with(&[("AURA_AUTH__LOGIN_FAILURES_PER_IP", "1000")]);

    for i in 0..4 {
        let r = attempt(&server, "login", "ada@example.com", WRONG).await;
        assert_eq!(r.status(), 401, "failure {i}");
    }
    // The fifth failure starts a one-second wait; the next attempt, even with
    // the right password and in any letter case, comes inside it.
    align_to_second().await;
    let r = attempt(&server, "token", "ada@example.com", WRONG).await;
    assert_eq!(r.status(), 401, "failure 4");
    let r = attempt(&server, "login", "ADA@example.com", PASSWORD).await;
    assert_eq!(assert_limited(r, "the sixth attempt").await, 1);
    // Another account on the same IP is not affected.
    assert_eq!(
        attempt(&server, "login", "bob@example.com", PASSWORD)
            .await
            .status(),
        200
    );

    // After the wait, one more failure doubles it.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let r = attempt(&server, "login", "ada@example.com", WRONG).await;
    assert_eq!(r.status(), 401, "failure 6, after the wait");
    let r = attempt(&server, "token", "ada@example.com", PASSWORD).await;
    let secs = assert_limited(r, "after the sixth failure").await;
    assert!((1..=2).contains(&secs), "{secs}");

    // Once the wait is over the right password signs in and resets it.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(
        attempt(&server, "login", "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        attempt(&server, "login", "ada@example.com", WRONG)
            .await
            .status(),
        401
    );
    server.stop();
}

/// Sends `n` sign-in attempts at once; returns how many got 200, 401 and 429.
async fn burst(
    server: &Server,
    n: usize,
    email: impl Fn(usize) -> String,
    password: &str,
) -> [usize; 3] {
    let mut set = tokio::task::JoinSet::new();
    for i in 0..n {
        let url = server.url("/api/v1/auth/login");
        let body = json!({ "email": email(i), "password": password });
        set.spawn(async move {
            reqwest::Client::new()
                .post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        });
    }
    let mut counts = [0; 3];
    while let Some(s) = set.join_next().await {
        match s.unwrap() {
            200 => counts[0] += 1,
            401 => counts[1] += 1,
            429 => counts[2] += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    counts
}

#[tokio::test]
async fn parallel_guesses_get_no_more_tries_than_the_limits_allow() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");

    let server = env.start();
    // Many right passwords at once from one IP (an office behind NAT) all
    // sign in: attempts beyond the limit wait for those in flight.
    let ok = burst(&server, 12, |_| "ada@example.com".into(), PASSWORD).await;
    assert_eq!(ok, [12, 0, 0], "parallel sign-ins with the right password");
    // Parallel guesses get as many password checks as sequential ones.
    let guesses = burst(&server, 30, |i| format!("guess{i}@example.com"), WRONG).await;
    assert_eq!(
        guesses,
        [0, 5, 25],
        "a burst from one IP gets 5 password checks"
    );
    server.stop();
    assert_eq!(audit_count(&env, "auth.login_failed"), 5);

    let server = env.start_with(&[("AURA_AUTH__LOGIN_FAILURES_PER_IP", "1000")]);
    // Exactly five: the one-second wait after the fifth failure is measured
    // in milliseconds, so a burst straddling a second boundary gets no sixth.
    let on_one_account = burst(&server, 30, |_| "ada@example.com".into(), WRONG).await;
    assert_eq!(
        on_one_account,
        [0, 5, 25],
        "a burst on one account gets 5 password checks"
    );
    server.stop();
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_take_the_same_time() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let server = env.start_with(&[
        ("AURA_AUTH__LOGIN_FAILURES_PER_IP", "100000"),
        ("AURA_AUTH__ACCOUNT_BACKOFF_AFTER", "0"),
    ]);
    let c = reqwest::Client::new();
    let url = server.url("/api/v1/auth/login");
    let timed = |email: String| {
        let req = c
            .post(&url)
            .json(&json!({ "email": email, "password": WRONG }));
        async move {
            let t = Instant::now();
            let r = req.send().await.unwrap();
            let status = r.status();
            r.bytes().await.unwrap();
            assert_eq!(status, 401);
            t.elapsed()
        }
    };
    // Warm up the connection and the server's caches.
    for i in 0..10 {
        timed("ada@example.com".into()).await;
        timed(format!("warmup{i}@example.com")).await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..200 {
        // Alternate which goes first, so drift falls on both alike.
        if i % 2 == 0 {
            known.push(timed("ada@example.com".into()).await);
            unknown.push(timed(format!("nobody{i}@example.com")).await);
        } else {
            unknown.push(timed(format!("nobody{i}@example.com")).await);
            known.push(timed("ada@example.com".into()).await);
        }
    }
    let (mk, mu) = (median(&mut known), median(&mut unknown));
    let diff = (mk.as_secs_f64() - mu.as_secs_f64()).abs() / mk.max(mu).as_secs_f64();
    println!(
        "sign-in timing over 200 each: known email median {:.2} ms (p10 {:.2}, p90 {:.2}); \
         unknown email median {:.2} ms (p10 {:.2}, p90 {:.2}); difference {:.1}%",
        mk.as_secs_f64() * 1e3,
        known[20].as_secs_f64() * 1e3,
        known[180].as_secs_f64() * 1e3,
        mu.as_secs_f64() * 1e3,
        unknown[20].as_secs_f64() * 1e3,
        unknown[180].as_secs_f64() * 1e3,
        diff * 100.0
    );
    assert!(
        diff <= 0.10,
        "medians differ by {:.1}% (known {mk:?}, unknown {mu:?})",
        diff * 100.0
    );
    server.stop();
}
