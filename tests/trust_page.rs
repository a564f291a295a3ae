//! Row bm: the trust page a procurement reviewer reads. /trust.json carries
//! typed facts signed with the appliance's Ed25519 key; `aura trust verify`
//! checks a saved copy offline (and refuses a changed byte or a key other
//! than the pinned one); /trust shows the operator's organisation, contact
//! and links, and each item's status in words.

mod common;

use std::process::Output;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::Value;

use common::{Env, Server};

const ORG: [(&str, &str); 5] = [
    ("AURA_TRUST__ORGANISATION", "Example Ltd"),
    ("AURA_TRUST__CONTACT", "security@example.com"),
    ("AURA_TRUST__PRIVACY_POLICY", "https://example.com/privacy"),
    ("AURA_TRUST__STATUS_PAGE", "https://status.example.com"),
    (
        "AURA_TRUST__LINKS",
        "[{label=\"Data processing agreement\", url=\"/dpa\"}]",
    ),
];

async fn trust_json(server: &Server) -> (String, Value) {
    let r = reqwest::get(server.url("/trust.json")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap();
    (text, v)
}

/// The canonical form, written here independently of the server's code:
/// keys sorted at every depth, no whitespace.
fn canonical(v: &Value) -> String {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let parts: Vec<String> = keys
                .iter()
                .map(|k| format!("{}:{}", Value::String((*k).clone()), canonical(&m[*k])))
                .collect();
            format!("{{{}}}", parts.join(","))
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(canonical).collect::<Vec<_>>().join(",")
        ),
        other => other.to_string(),
    }
}

fn rfc3339(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
    })
}

fn verify(env: &Env, file: &std::path::Path, key: Option<&str>) -> Output {
    let mut args = vec!["trust", "verify", file.to_str().unwrap()];
    if let Some(k) = key {
        args.extend(["--key", k]);
    }
    env.cli(&args, None)
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn trust_json_is_typed_signed_and_verified_offline() {
    let env = Env::new();
    let server = env.start_with(&ORG);
    let (body, v) = trust_json(&server).await;
    // security.txt names the same contact when `[security_txt]` names none.
    let txt = reqwest::get(server.url("/.well-known/security.txt"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    server.stop();
    assert!(
        txt.lines()
            .any(|l| l == "Contact: mailto:security@example.com"),
        "{txt}"
    );
    let d = &v["document"];

    // Typed facts: enums, booleans, counts, RFC 3339 times; no prose.
    assert_eq!(d["format"], "aura-trust/1");
    assert!(rfc3339(&d["generated_at"]), "{d}");
    assert_eq!(d["organisation"]["name"], "Example Ltd");
    assert_eq!(d["organisation"]["contact"], "mailto:security@example.com");
    assert_eq!(
        d["organisation"]["links"][0]["url"], "/dpa",
        "{}",
        d["organisation"]
    );
    let statuses = [
        &d["access_control"]["status"],
        &d["tenant_isolation"]["status"],
        &d["encryption"]["in_transit"]["status"],
        &d["encryption"]["at_rest"]["status"],
        &d["audit"]["status"],
        &d["backups"]["status"],
        &d["residency"]["status"],
        &d["subprocessors"]["status"],
        &d["data_rights"]["status"],
        &d["disclosure"]["status"],
    ];
    for s in statuses {
        assert!(
            ["met", "not_configured", "off", "failed"].contains(&s.as_str().unwrap()),
            "{s}"
        );
    }
    let summary = &d["summary"];
    let total: u64 = ["met", "not_configured", "off", "failed"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap())
        .sum();
    assert_eq!(total, statuses.len() as u64, "{summary}");
    assert_eq!(
        d["encryption"]["in_transit"]["status"], "off",
        "no TLS here"
    );
    assert_eq!(d["encryption"]["in_transit"]["mode"], "off");
    assert_eq!(d["residency"]["status"], "not_configured");
    assert_eq!(d["residency"]["enforced"], false);
    assert_eq!(d["disclosure"]["status"], "met", "the [trust] contact");
    assert_eq!(d["access_control"]["totp"], true);
    assert!(d["access_control"]["session_idle_minutes"].is_u64());
    assert!(d["tenant_isolation"]["workspaces"].is_i64());
    assert_eq!(d["encryption"]["at_rest"]["key_per_workspace"], true);
    assert!(d["audit"]["retention_days"].is_u64());
    assert!(d["backups"]["configured"].is_boolean());
    assert!(d["data_rights"]["workspace_grace_days"].is_u64());

    // The signature: over "aura-trust-document-v1\n" and the canonical
    // document, by the audit key the document names; served in that form.
    let sig = &v["signature"];
    assert_eq!(sig["alg"], "ed25519");
    let canon = canonical(d);
    assert!(
        body.starts_with(&format!("{{\"document\":{canon},\"signature\":")),
        "the document is served in its canonical form"
    );
    let pk: [u8; 32] = STANDARD
        .decode(sig["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    assert_eq!(hex::encode(pk), d["audit"]["public_key"].as_str().unwrap());
    assert!(sig["key_id"].as_str().unwrap().starts_with("SHA256:"));
    let signature =
        Signature::from_slice(&STANDARD.decode(sig["sig"].as_str().unwrap()).unwrap()).unwrap();
    let mut message = b"aura-trust-document-v1\n".to_vec();
    message.extend_from_slice(canon.as_bytes());
    VerifyingKey::from_bytes(&pk)
        .unwrap()
        .verify(&message, &signature)
        .expect("the signature verifies");

    // `aura trust verify`: without a key it proves integrity only, and says so.
    let file = env.root().join("trust.json");
    std::fs::write(&file, &body).unwrap();
    let out = verify(&env, &file, None);
    assert!(out.status.success(), "{}", text(&out));
    let said = text(&out);
    assert!(said.contains("integrity only"), "{said}");
    assert!(said.contains("NOT who signed it"), "{said}");
    assert!(said.contains(sig["key_id"].as_str().unwrap()), "{said}");
    assert!(said.contains(sig["public_key"].as_str().unwrap()), "{said}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().count(),
        1,
        "a one-line summary"
    );
    // With the pinned key: as base64, as the hex audit key, or in a file.
    let key_file = env.root().join("pinned.key");
    std::fs::write(
        &key_file,
        format!("{}\n", sig["public_key"].as_str().unwrap()),
    )
    .unwrap();
    for key in [
        sig["public_key"].as_str().unwrap(),
        d["audit"]["public_key"].as_str().unwrap(),
        key_file.to_str().unwrap(),
    ] {
        let out = verify(&env, &file, Some(key));
        assert!(out.status.success(), "{key}: {}", text(&out));
        assert!(
            text(&out).contains("signed by the pinned key"),
            "{}",
            text(&out)
        );
    }
    // Re-indented, it still verifies: the signature covers the content.
    let pretty = env.root().join("pretty.json");
    std::fs::write(&pretty, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    let out = verify(&env, &pretty, Some(sig["public_key"].as_str().unwrap()));
    assert!(out.status.success(), "{}", text(&out));

    // A wrong pinned key fails, naming both fingerprints.
    let other = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let other = STANDARD.encode(other.verifying_key().to_bytes());
    let out = verify(&env, &file, Some(&other));
    assert!(!out.status.success());
    assert!(text(&out).contains("WRONG KEY"), "{}", text(&out));

    // One changed byte anywhere in the document fails.
    let start = "{\"document\":".len();
    let end = start + canon.len();
    let targets = [
        body.find("Example Ltd").unwrap() + 8,
        body.find("\"retention_days\":").unwrap() + 17,
        body.find("\"totp\":").unwrap() + 7,
    ];
    let spread = (0..16).map(|i| start + 1 + i * (canon.len() - 2) / 16);
    let tampered = env.root().join("tampered.json");
    for at in targets.into_iter().chain(spread) {
        assert!(at > start && at < end);
        let mut bytes = body.clone().into_bytes();
        bytes[at] = if bytes[at] == b'x' { b'y' } else { b'x' };
        std::fs::write(&tampered, &bytes).unwrap();
        let out = verify(&env, &tampered, None);
        assert!(
            !out.status.success(),
            "byte {at} changed, still verified: {}",
            String::from_utf8_lossy(&bytes[at.saturating_sub(20)..(at + 20).min(bytes.len())])
        );
        assert!(text(&out).contains("FAILED"), "{}", text(&out));
    }
    // A changed value that keeps valid JSON names the signature.
    std::fs::write(&tampered, body.replace("Example Ltd", "Example Ltx")).unwrap();
    let out = verify(&env, &tampered, None);
    assert!(!out.status.success());
    assert!(text(&out).contains("SIGNATURE INVALID"), "{}", text(&out));
    // So does the audit anchor inside it: the file is an anchor too.
    let out = env.cli(
        &["audit", "verify", "--anchor", file.to_str().unwrap()],
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
}

#[tokio::test]
async fn the_page_names_the_organisation_and_says_each_status_in_words() {
    let env = Env::new();
    let server = env.start_with(&ORG);
    let r = reqwest::get(server.url("/trust")).await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = r.text().await.unwrap();
    let login = reqwest::get(server.url("/login")).await.unwrap();
    assert_eq!(
        csp,
        login.headers()["content-security-policy"].to_str().unwrap(),
        "the trust page's CSP is every page's"
    );
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!page.contains(" style=") && !page.contains("<script>"));
    let (_, v) = trust_json(&server).await;
    server.stop();

    assert!(page.contains("Example Ltd"), "{page}");
    assert!(
        page.contains("href=\"mailto:security@example.com\""),
        "{page}"
    );
    assert!(
        page.contains("href=\"https://example.com/privacy\"") && page.contains("Privacy policy")
    );
    assert!(page.contains("href=\"https://status.example.com\"") && page.contains("Status page"));
    assert!(page.contains("href=\"/dpa\"") && page.contains("Data processing agreement"));
    // TLS is off here: its pill says so in words, not only in colour.
    let in_transit = page
        .split("id=\"encryption-in-transit\"")
        .nth(1)
        .and_then(|s| s.split("</section>").next())
        .unwrap();
    assert!(
        in_transit.contains("<span class=\"pill off\">Off</span>"),
        "{in_transit}"
    );
    assert!(page.contains("<span class=\"pill not-configured\">Not configured</span>"));
    assert!(page.contains("<span class=\"pill met\">Met</span>"));
    for section in [
        "access-control",
        "tenant-isolation",
        "encryption-at-rest",
        "audit",
        "backups",
        "residency",
        "subprocessors",
        "your-data",
        "incidents-section",
        "disclosure",
        "signed",
    ] {
        assert!(page.contains(&format!("id=\"{section}\"")), "{section}");
    }
    // The key to pin, and the commands, under "Verify it yourself".
    let sig = &v["signature"];
    assert!(page.contains(sig["public_key"].as_str().unwrap()));
    assert!(page.contains(sig["key_id"].as_str().unwrap()));
    assert!(page.contains("aura trust verify trust.json --key"));
    assert!(page.contains("aura audit verify --anchor trust.json"));
    assert!(page.contains("aura backup verify"));
    // Words for people: config keys only inside "Verify it yourself".
    let outside: String = page
        .split("<details")
        .map(|part| part.split("</details>").last().unwrap_or(""))
        .collect();
    for key in [
        "tls.mode",
        "[trust]",
        "security_txt",
        "[auth]",
        "smtp_relay",
    ] {
        assert!(!outside.contains(key), "{key} outside the details");
    }
}

#[tokio::test]
async fn absent_values_are_not_shown_and_bad_links_are_refused() {
    let env = Env::new();
    let server = env.start();
    let page = common::get_text(&reqwest::Client::new(), server.url("/trust")).await;
    let (_, v) = trust_json(&server).await;
    server.stop();
    let org = v["document"]["organisation"].as_object().unwrap();
    assert_eq!(
        org.keys().collect::<Vec<_>>(),
        ["links"],
        "nothing configured, nothing listed: {org:?}"
    );
    assert!(!page.contains("Security contact"), "{page}");
    assert!(!page.contains("Privacy policy") && !page.contains("Status page"));
    assert!(page.contains("<h1>Security and trust</h1>"), "{page}");
    assert_eq!(v["document"]["disclosure"]["status"], "not_configured");

    for (key, value, named) in [
        (
            "AURA_TRUST__PRIVACY_POLICY",
            "http://example.com/privacy",
            "trust.privacy_policy",
        ),
        (
            "AURA_TRUST__STATUS_PAGE",
            "//evil.example",
            "trust.status_page",
        ),
        ("AURA_TRUST__CONTACT", "not an address", "trust.contact"),
        (
            "AURA_TRUST__LINKS",
            "[{label=\"x\", url=\"javascript:alert(1)\"}]",
            "trust.links[0].url",
        ),
    ] {
        let out = env
            .command(&["serve", "--listen", "127.0.0.1:0"])
            .env(key, value)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{key}={value} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{err}");
    }
}
