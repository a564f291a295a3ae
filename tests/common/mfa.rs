//! Helpers for second-factor tests: JSON calls, signing in with a code,
//! enrolling TOTP over the API, and reading what the audit chains recorded.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::otp::code_now;
use super::{Env, PASSWORD, Server, client, login, open_db};

pub const MFA_REQUIRED: &str = "urn:aura:problem:mfa-required";
pub const MFA_INVALID: &str = "urn:aura:problem:mfa-invalid";
pub const ENROLMENT_REQUIRED: &str = "urn:aura:problem:mfa-enrolment-required";

/// Status and JSON body of a response.
pub async fn answer(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub async fn post(c: &reqwest::Client, server: &Server, path: &str, body: Value) -> (u16, Value) {
    answer(c.post(server.url(path)).json(&body).send().await.unwrap()).await
}

pub async fn get(c: &reqwest::Client, server: &Server, path: &str) -> (u16, Value) {
    answer(c.get(server.url(path)).send().await.unwrap()).await
}

/// Signs in with `totp` on `/auth/login` from a fresh client.
pub async fn login_with(
    server: &Server,
    email: &str,
    totp: Option<&str>,
) -> (reqwest::Client, u16, Value) {
    let c = client(server);
    let mut body = json!({ "email": email, "password": PASSWORD });
    if let Some(t) = totp {
        body["totp"] = json!(t);
    }
    let (status, v) = post(&c, server, "/api/v1/auth/login", body).await;
    (c, status, v)
}

/// A signed-in client of an account without a second factor.
pub async fn signed_in(server: &Server, email: &str) -> reqwest::Client {
    let c = client(server);
    assert_eq!(login(&c, server, email, PASSWORD).await.status(), 200);
    c
}

/// Enrols TOTP for the signed-in client: the base32 secret, the ten recovery
/// codes and the code that confirmed it (the current step's, now spent).
pub async fn enrol(c: &reqwest::Client, server: &Server) -> (String, Vec<String>, String) {
    let (status, e) = post(
        c,
        server,
        "/api/v1/me/mfa/totp",
        json!({ "password": PASSWORD }),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    let secret = e["secret"].as_str().unwrap().to_owned();
    let code = code_now(&secret);
    let (status, r) = post(
        c,
        server,
        "/api/v1/me/mfa/totp/confirm",
        json!({ "code": code }),
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let codes = r["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    (secret, codes, code)
}

pub fn field(problem: &Value) -> &str {
    problem["errors"][0]["field"].as_str().unwrap_or_default()
}

pub fn sha256(s: &str) -> Vec<u8> {
    Sha256::digest(s.as_bytes()).to_vec()
}

/// The platform chain's entries with `action`, details opened (an NDJSON
/// export through the CLI; run it with the server stopped).
pub fn platform_entries(env: &Env, action: &str) -> Vec<Value> {
    let out = env.cli(&["audit", "export"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|v| v["type"] == "entry" && v["action"] == action)
        .collect()
}

/// Rows of `control.db` whose action is `action`.
pub fn audit_count(env: &Env, action: &str) -> i64 {
    open_db(&env.data_dir().join("control.db"))
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = ?1",
            [action],
            |r| r.get(0),
        )
        .unwrap()
}
