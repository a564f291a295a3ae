//! SECURITY.md rows a, h, i and j, each checked as worded: the stored password
//! hash and its argon2id parameters, one answer for every failed sign-in (with
//! the argon2 run for unknown and disabled accounts), the Origin/Referer rule
//! for cookie-carrying writes, and the 64 KiB body limit at its exact edge.

mod common;

use std::time::{Duration, Instant};

use common::mfa::signed_in;
use common::{Env, PASSWORD, client, login, open_db, session_token_of};
use serde_json::json;

/// The argon2 parameters of a PHC string `$argon2id$v=19$m=..,t=..,p=..$salt$hash`.
fn argon2id_params(phc: &str) -> (u32, u32, u32) {
    let parts: Vec<&str> = phc.split('$').collect();
    assert_eq!(parts.len(), 6, "not a PHC string: {phc}");
    assert_eq!(parts[1], "argon2id", "{phc}");
    assert_eq!(parts[2], "v=19", "{phc}");
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in parts[3].split(',') {
        let (k, v) = kv.split_once('=').unwrap();
        let v: u32 = v.parse().unwrap();
        match k {
            "m" => m = Some(v),
            "t" => t = Some(v),
            "p" => p = Some(v),
            other => panic!("unknown parameter {other} in {phc}"),
        }
    }
    (m.unwrap(), t.unwrap(), p.unwrap())
}

/// Row a: every stored password is an argon2id PHC string with m >= 19456 KiB,
/// t >= 2, p >= 1, salted per hash, and verifies against the password; the
/// password itself is nowhere in the row.
#[tokio::test]
async fn row_a_stored_password_hashes_are_argon2id_at_least_owasp_strength() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    env.create_user("grace@example.com", "Grace");
    // A password set through the API (a change) is hashed the same way.
    let server = env.start();
    let c = signed_in(&server, "ada@example.com").await;
    let new_password = "a different horse battery staple";
    let r = c
        .post(server.url("/api/v1/me/password"))
        .json(&json!({ "current_password": PASSWORD, "new_password": new_password }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "password change: {}", r.status());
    server.stop();

    let db = open_db(&env.data_dir().join("control.db"));
    let mut stmt = db
        .prepare("SELECT password_hash FROM users WHERE password_hash IS NOT NULL")
        .unwrap();
    let hashes: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(hashes.len(), 2, "both accounts have a stored hash");
    for h in &hashes {
        let (m, t, p) = argon2id_params(h);
        assert!(m >= 19_456, "argon2 memory {m} KiB below 19456: {h}");
        assert!(t >= 2, "argon2 iterations {t} below 2: {h}");
        assert!(p >= 1, "argon2 parallelism {p} below 1: {h}");
        assert!(!h.contains(PASSWORD) && !h.contains(new_password));
    }
    // Salted: two accounts never share a hash prefix after the parameters.
    assert_ne!(
        hashes[0].rsplit('$').nth(1),
        hashes[1].rsplit('$').nth(1),
        "each hash has its own salt"
    );
    // And each one really is the hash of its password (argon2's own verifier).
    use argon2::PasswordVerifier;
    let verifies = |h: &str, pw: &str| {
        argon2::Argon2::default()
            .verify_password(pw.as_bytes(), &argon2::PasswordHash::new(h).unwrap())
            .is_ok()
    };
    assert!(hashes.iter().any(|h| verifies(h, new_password)));
    assert!(hashes.iter().any(|h| verifies(h, PASSWORD)));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Row h: a wrong password, an unknown email and a disabled account (with its
/// right password) get the same 401 and the same body, and none of them is
/// answered without running argon2: an unknown or disabled account takes as
/// long as a wrong password (a skipped verification answers in a fraction).
#[tokio::test]
async fn row_h_wrong_password_unknown_email_and_disabled_account_look_the_same() {
    let env = Env::new();
    env.create_user("grace@example.com", "Grace");
    env.create_user("off@example.com", "Off");
    let out = env.cli(&["user", "disable", "--email", "off@example.com"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = env.start_with(&[
        ("AURA_AUTH__LOGIN_FAILURES_PER_IP", "100000"),
        ("AURA_AUTH__ACCOUNT_BACKOFF_AFTER", "0"),
    ]);
    let c = reqwest::Client::new();
    let attempt = |email: &'static str, password: &'static str| {
        let req = c
            .post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": email, "password": password }));
        async move {
            let t = Instant::now();
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let ctype = r.headers()["content-type"].to_str().unwrap().to_owned();
            let cookie = r.headers().get("set-cookie").is_some();
            let body = r.text().await.unwrap();
            (status, ctype, cookie, body, t.elapsed())
        }
    };
    let cases = [
        ("grace@example.com", "not the password"),
        ("nobody@example.com", "not the password"),
        ("off@example.com", PASSWORD),
    ];
    let first: Vec<_> = {
        let mut v = Vec::new();
        for (e, p) in cases {
            v.push(attempt(e, p).await);
        }
        v
    };
    for (i, (status, ctype, cookie, body, _)) in first.iter().enumerate() {
        assert_eq!(*status, 401, "case {i}: {body}");
        assert_eq!(ctype, "application/problem+json", "case {i}");
        assert!(!cookie, "case {i} set a cookie");
        assert_eq!(body, &first[0].3, "case {i} answers differently");
    }

    // Timing: the three kinds interleaved, 15 rounds each.
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    for round in 0..15 {
        for k in 0..3 {
            let k = (k + round) % 3;
            let (e, p) = cases[k];
            times[k].push(attempt(e, p).await.4);
        }
    }
    let [wrong, unknown, disabled] = times.map(median);
    println!("sign-in medians: wrong {wrong:?}, unknown {unknown:?}, disabled {disabled:?}");
    for (what, m) in [("unknown email", unknown), ("disabled account", disabled)] {
        assert!(
            m.as_secs_f64() >= 0.6 * wrong.as_secs_f64(),
            "{what} answered in {m:?} against {wrong:?} for a wrong password: argon2 was skipped"
        );
    }
    server.stop();
    let db = open_db(&env.data_dir().join("control.db"));
    let sessions: i64 = db
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(sessions, 0, "no failed sign-in made a session");
}

/// Row i: a cookie-carrying write with no `Origin` needs a same-origin
/// `Referer`; without either, or with a foreign one, it gets 403 and changes
/// nothing. A write without a cookie (a program) needs neither.
#[tokio::test]
async fn row_i_cookie_writes_need_a_same_origin_origin_or_referer() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let server = env.start();
    let r = login(&client(&server), &server, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let token = session_token_of(&r);
    let cookie = format!("aura_session={token}");
    let bare = reqwest::Client::new();
    let logout = |origin: Option<String>, referer: Option<String>| {
        let mut req = bare
            .post(server.url("/api/v1/auth/logout"))
            .header("cookie", &cookie);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        if let Some(r) = referer {
            req = req.header("referer", r);
        }
        async move {
            let r = req.send().await.unwrap();
            // Refusals made before any handler carry the same headers.
            if r.status() == 403 {
                assert_hardening_headers(r.headers(), "a 403 cross-origin refusal");
            }
            r.status().as_u16()
        }
    };
    let me = || async {
        bare.get(server.url("/api/v1/me"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    let page = server.url("/account");
    for (origin, referer, why) in [
        (None, None, "no Origin and no Referer"),
        (
            None,
            Some("https://evil.example/account".to_owned()),
            "a foreign Referer",
        ),
        (
            None,
            Some(format!("{}.evil.example/", server.base)),
            "a look-alike Referer",
        ),
        (
            Some("https://evil.example".to_owned()),
            Some(page.clone()),
            "a foreign Origin",
        ),
        (Some("null".to_owned()), None, "Origin: null"),
    ] {
        assert_eq!(logout(origin, referer).await, 403, "{why}");
        assert_eq!(me().await, 200, "{why} ended the session");
    }
    // A same-origin Referer alone is enough.
    assert_eq!(logout(None, Some(page)).await, 200);
    assert_eq!(me().await, 401, "the same-origin logout ended the session");

    // No cookie: a program's sign-in needs no Origin or Referer.
    let r = bare
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({ "email": "ada@example.com", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop();
}

/// Row i's headers, on answers the middleware makes before any handler.
fn assert_hardening_headers(h: &reqwest::header::HeaderMap, what: &str) {
    let csp = h
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no CSP"))
        .to_str()
        .unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(
        !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
        "{what}: {csp}"
    );
    assert_eq!(
        h.get("x-content-type-options").map(|v| v.to_str().unwrap()),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        h.get("cache-control").map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{what}"
    );
}

/// A JSON body of exactly `len` bytes: `prefix` padded with trailing spaces.
fn padded(prefix: &str, len: usize) -> Vec<u8> {
    let mut b = prefix.as_bytes().to_vec();
    b.resize(len, b' ');
    b
}

/// Row j: the 64 KiB limit at its edge on JSON routes. 65,536 bytes are read
/// and answered by the route (not 413); 65,537 get 413, declared or streamed
/// without a length, and write nothing.
#[tokio::test]
async fn row_j_json_bodies_are_limited_at_exactly_64_kib() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Edge", "ada@example.com");
    let server = env.start();
    let c = signed_in(&server, "ada@example.com").await;
    let audit = || -> (i64, i64) {
        let control: i64 = open_db(&env.data_dir().join("control.db"))
            .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
            .unwrap();
        let tenant: i64 = open_db(&env.tenant_db(&ws))
            .query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0))
            .unwrap();
        (control, tenant)
    };
    const LIMIT: usize = 64 * 1024;
    let collections = format!("/api/v1/workspaces/{ws}/collections");
    let routes: [(&str, &str, u16); 2] = [
        // A wrong password for a known account: 401 at the limit.
        (
            "/api/v1/auth/login",
            r#"{"email":"ada@example.com","password":"wrong password here"}"#,
            401,
        ),
        // A collection without a name: 422 naming the field at the limit.
        (&collections, "{}", 422),
    ];
    for (path, json, at_limit) in routes {
        let before = audit();
        let send = |body: Vec<u8>| {
            c.post(server.url(path))
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        let r = send(padded(json, LIMIT)).await.unwrap();
        assert_eq!(r.status().as_u16(), at_limit, "{path} at 65536 bytes");
        let r = send(padded(json, LIMIT - 1)).await.unwrap();
        assert_eq!(r.status().as_u16(), at_limit, "{path} at 65535 bytes");
        let r = send(padded(json, LIMIT + 1)).await.unwrap();
        assert_eq!(r.status(), 413, "{path} at 65537 bytes");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        assert_hardening_headers(r.headers(), "a 413 refusal");
        // The same body streamed (chunked, no Content-Length).
        let chunks: Vec<Result<Vec<u8>, std::io::Error>> = padded(json, LIMIT + 1)
            .chunks(8 * 1024)
            .map(|c| Ok(c.to_vec()))
            .collect();
        let r = c
            .post(server.url(path))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(tokio_stream::iter(chunks)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 413, "{path} streamed 65537 bytes");
        if at_limit == 422 {
            assert_eq!(audit(), before, "{path}: refused bodies wrote nothing");
        }
    }
    server.stop();
}

/// Row ac, "backs off exponentially": after the fifth failure the right
/// password waits 1 s; each further failure (made once the wait is over)
/// doubles the wait (2, 4, 8 s), told in `Retry-After`, and the right password
/// is refused until it ends.
#[tokio::test]
async fn row_ac_an_accounts_wait_doubles_with_each_failure() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let server = env.start_with(&[("AURA_AUTH__LOGIN_FAILURES_PER_IP", "1000")]);
    let c = reqwest::Client::new();
    let attempt = |password: &'static str| {
        c.post(server.url("/api/v1/auth/login"))
            .json(&json!({ "email": "ada@example.com", "password": password }))
            .send()
    };
    for i in 0..5 {
        let r = attempt("not the password").await.unwrap();
        assert_eq!(r.status(), 401, "failure {i}");
    }
    let mut waits = Vec::new();
    for k in 0..4u32 {
        let expected = 1u64 << k;
        if k > 0 {
            let r = attempt("not the password").await.unwrap();
            assert_eq!(r.status(), 401, "failure {} after the wait", 5 + k);
        }
        let r = attempt(PASSWORD).await.unwrap();
        assert_eq!(r.status(), 429, "the right password inside wait {k}");
        let secs: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!(
            (expected.saturating_sub(1).max(1)..=expected).contains(&secs),
            "wait {k}: Retry-After {secs}, expected about {expected}"
        );
        waits.push(secs);
        tokio::time::sleep(Duration::from_millis(expected * 1000 + 300)).await;
    }
    println!("account waits: {waits:?} s");
    let r = attempt(PASSWORD).await.unwrap();
    assert_eq!(r.status(), 200, "after the last wait");
    server.stop();
}
