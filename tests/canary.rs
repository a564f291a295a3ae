//! The canary test: unique strings go into every person-typed input that
//! exists, then every byte under the data dir (DB, -wal, -shm, everything) and
//! the server's log output are scanned for them, raw, hex and base64. The
//! promise is zero hits. Every capability that adds an input extends this test.

mod common;

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use common::{Env, PASSWORD, client, login};
use rand::RngCore;

fn canary(tag: &str) -> String {
    let mut b = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("cnry{tag}{}", hex::encode(b))
}

/// Every encoding a careless write could leave behind.
fn needles(s: &str) -> Vec<Vec<u8>> {
    let mut out = vec![
        s.as_bytes().to_vec(),
        s.to_uppercase().into_bytes(),
        hex::encode(s).into_bytes(),
        hex::encode_upper(s).into_bytes(),
    ];
    // Base64 depends on alignment: take the stable middle at each of 3 offsets.
    for k in 0..3 {
        let padded = format!("{}{s}", "x".repeat(k));
        for engine in [&STANDARD, &URL_SAFE] {
            let enc = engine.encode(padded.as_bytes());
            let start = k.div_ceil(3) * 4;
            let end = (padded.len() / 3) * 4;
            if end > start + 8 {
                out.push(enc.as_bytes()[start..end].to_vec());
            }
        }
    }
    out
}

fn scan_bytes(haystack: &[u8], canaries: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    for c in canaries {
        for n in needles(c) {
            if haystack.windows(n.len()).any(|w| w == n.as_slice()) {
                hits.push(format!("{c} as {}", String::from_utf8_lossy(&n)));
            }
        }
    }
    hits
}

fn scan_dir(dir: &Path, canaries: &[String]) -> Vec<String> {
    let mut hits = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                files += 1;
                for h in scan_bytes(&std::fs::read(&p).unwrap(), canaries) {
                    hits.push(format!("{}: {h}", p.display()));
                }
            }
        }
    }
    assert!(
        files >= 3,
        "scanned too few files ({files}) to mean anything"
    );
    hits
}

#[test]
fn needles_find_what_they_should() {
    let c = canary("self");
    let blob = [
        b"xx".as_slice(),
        STANDARD.encode(format!("ab{c}zz")).as_bytes(),
    ]
    .concat();
    assert!(
        !scan_bytes(&blob, std::slice::from_ref(&c)).is_empty(),
        "base64 at an offset"
    );
    assert!(!scan_bytes(hex::encode(&c).as_bytes(), std::slice::from_ref(&c)).is_empty());
    assert!(scan_bytes(b"nothing here", &[c]).is_empty());
}

#[tokio::test]
async fn no_person_typed_string_reaches_disk_or_logs() {
    let env = Env::new();
    let server = env.start();

    let user_name = canary("username");
    let email_local = canary("email");
    let email = format!("{email_local}@example.com");
    let ws_name = canary("wsname");
    let ws_name_2 = canary("wsname2");
    let failed_email_local = canary("failedemail");
    let agent = canary("useragent");
    let path_seg = canary("path");
    let bad_input = canary("badinput");

    // Inputs through the CLI while the server runs.
    env.create_user(&email, &user_name);
    env.create_workspace(&ws_name, &email);
    let out = env.cli(
        &[
            "workspace",
            "create",
            "--name",
            &ws_name_2,
            "--owner",
            &email,
            "--region",
            "EU",
        ],
        None,
    );
    assert!(out.status.success());

    // Inputs through HTTP.
    let c = client(&server);
    assert_eq!(login(&c, &server, &email, PASSWORD).await.status(), 200);
    let me: serde_json::Value = c
        .get(server.url("/api/v1/me"))
        .header("user-agent", &agent)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["name"], user_name.as_str(), "the canary really went in");
    let failed = format!("{failed_email_local}@example.com");
    assert_eq!(
        login(&c, &server, &failed, "wrong password!")
            .await
            .status(),
        401
    );
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .header("user-agent", &agent)
        .json(&serde_json::json!({ "email": email, "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    c.get(server.url(&format!("/workspaces/{path_seg}?q={path_seg}")))
        .send()
        .await
        .unwrap();
    c.post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "email": bad_input, "password": 5 }))
        .send()
        .await
        .unwrap();
    // The audit search index and exports are built from the sealed details.
    let me_ws = me["workspaces"][0]["id"].as_str().unwrap().to_owned();
    let search = c
        .get(server.url(&format!("/api/v1/workspaces/{me_ws}/audit?q={ws_name}")))
        .send()
        .await
        .unwrap();
    assert_eq!(search.status(), 200);
    let found: serde_json::Value = search.json().await.unwrap();
    assert!(
        !found["items"].as_array().unwrap().is_empty(),
        "the index holds the canary: {found}"
    );
    let export = common::get_text(
        &c,
        server.url(&format!("/api/v1/workspaces/{me_ws}/audit/export")),
    )
    .await;
    assert!(
        export.contains(&ws_name),
        "the export is readable by its owner"
    );
    let r = c
        .put(server.url(&format!("/api/v1/workspaces/{me_ws}/audit/settings")))
        .header("user-agent", &agent)
        .json(&serde_json::json!({ "retention_days": 90 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let anon = client(&server);
    let token = common::page_csrf(&anon, &server.url("/login")).await;
    let form = anon
        .post(server.url("/login"))
        .form(&[
            ("email", failed.as_str()),
            ("password", "nope nope nope"),
            ("csrf", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 401);

    let all = vec![
        user_name,
        email_local,
        email.clone(),
        ws_name,
        ws_name_2,
        failed_email_local,
        agent,
        path_seg,
        bad_input,
    ];

    // A backup of it all, scanned with the rest of the data dir.
    let identity = age::x25519::Identity::generate();
    let out = env
        .command(&["backup", "run"])
        .env(
            "AURA_BACKUP__RECIPIENTS",
            format!("[\"{}\"]", identity.to_public()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // While running: the WAL and shm hold the freshest pages.
    let hits = scan_dir(&env.data_dir(), &all);
    assert!(
        hits.is_empty(),
        "canaries on disk while running:\n{}",
        hits.join("\n")
    );

    let logs = server.stop();
    assert!(logs.len() > 200, "the log was captured");
    let hits = scan_bytes(&logs, &all);
    assert!(
        hits.is_empty(),
        "canaries in the server log:\n{}",
        hits.join("\n")
    );
    let hits = scan_dir(&env.data_dir(), &all);
    assert!(
        hits.is_empty(),
        "canaries on disk after shutdown:\n{}",
        hits.join("\n")
    );
}
