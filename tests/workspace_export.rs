//! Workspace export round trip through the real API and the CLI: every record
//! is in the archive (JSON and CSV), every file matches the manifest's
//! SHA-256, the audit log in it verifies offline and records the export, the
//! age-encrypted variant opens with the real `age` CLI, and the spool on the
//! server's disk never holds plaintext.

mod common;

use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::process::Command;

use common::{Env, PASSWORD, client, login};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const CANARY: &str = "Exportcanaryvalue";

/// The archive's files by path.
fn unpack(tar_zst: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut tar = Vec::new();
    zstd::Decoder::new(tar_zst)
        .unwrap()
        .read_to_end(&mut tar)
        .unwrap();
    let mut out = BTreeMap::new();
    let mut archive = tar::Archive::new(tar.as_slice());
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(path, data);
    }
    out
}

/// Checks the manifest against every file and returns the record ids found.
fn check(files: &BTreeMap<String, Vec<u8>>, env: &Env) -> HashSet<String> {
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["format"], "aura-workspace-export/1");
    let listed = manifest["files"].as_array().unwrap();
    assert_eq!(
        listed.len() + 1,
        files.len(),
        "every file but the manifest is listed"
    );
    for f in listed {
        let data = &files[f["path"].as_str().unwrap()];
        assert_eq!(f["sha256"], hex::encode(Sha256::digest(data)), "{f}");
        assert_eq!(f["bytes"], data.len());
    }
    let members: Value = serde_json::from_slice(&files["members.json"]).unwrap();
    assert!(members.to_string().contains("owner@example.com"));
    assert!(members.to_string().contains("\"role\":\"admin\""));
    let teams: Value = serde_json::from_slice(&files["teams.json"]).unwrap();
    assert_eq!(teams[0]["name"], "Front desk");
    let mut ids = HashSet::new();
    let mut csv_rows = 0;
    for (path, data) in files {
        if path.ends_with(".json") && path.contains("/records-") {
            for r in serde_json::from_slice::<Vec<Value>>(data).unwrap() {
                ids.insert(r["id"].as_str().unwrap().to_owned());
            }
        }
        if path.ends_with(".csv") {
            csv_rows += data
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .count()
                - 1;
        }
    }
    assert_eq!(csv_rows, ids.len(), "the CSV parts hold the same records");
    // The audit log verifies offline and ends with this export.
    let log = &files["audit/log.ndjson"];
    assert!(String::from_utf8_lossy(log).contains("workspace.exported"));
    let path = env.root().join(format!("log-{}.ndjson", ids.len()));
    std::fs::write(&path, log).unwrap();
    let out = env.cli(&["audit", "verify-export", path.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    ids
}

async fn wait_ready(c: &reqwest::Client, url: &str) -> Value {
    for _ in 0..600 {
        let job: Value = c.get(url).send().await.unwrap().json().await.unwrap();
        match job["state"].as_str().unwrap() {
            "ready" => return job,
            "running" => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
            other => panic!("export {other}: {job}"),
        }
    }
    panic!("export never finished");
}

/// The team "Front desk" and the collection "Ledger" (customer, amount)
/// that `check` expects; the collection's id.
async fn seed(c: &reqwest::Client, api: &dyn Fn(&str) -> String) -> String {
    let r = c
        .post(api("/teams"))
        .json(&json!({"name": "Front desk"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let coll: Value = c
        .post(api("/collections"))
        .json(&json!({"name": "Ledger", "fields": [
            {"name": "Customer", "type": "text", "searchable": true},
            {"name": "Amount", "type": "money", "currency": "EUR"}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    coll["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn export_archive_round_trip_api_and_cli() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    env.create_user("admin@example.com", "Admin");
    env.create_user("member@example.com", "Member");
    let ws = env.create_workspace("Export Ltd", "owner@example.com");
    env.add_member(&ws, "admin@example.com", "admin");
    env.add_member(&ws, "member@example.com", "member");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "admin@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));

    let coll = seed(&c, &api).await;
    let mut csv = String::from("Customer,Amount\n");
    for i in 0..6_001 {
        // One customer a spreadsheet would run as a formula (issue 18, finding 18).
        let formula = if i == 0 { "=1+1 " } else { "" };
        csv.push_str(&format!("{formula}{CANARY} {i},{i}.00 EUR\n"));
    }
    let r = c
        .post(api(&format!("/collections/{coll}/import")))
        .header("content-type", "text/csv")
        .body(csv)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Members may not export; bad recipients name the field.
    let m = client(&server);
    login(&m, &server, "member@example.com", PASSWORD).await;
    assert_eq!(
        m.post(api("/exports"))
            .json(&json!({}))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    let bad = c
        .post(api("/exports"))
        .json(&json!({"recipient": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("recipient"));

    // Plain archive through the API.
    let r = c
        .post(api("/exports"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let job: Value = r.json().await.unwrap();
    let job = wait_ready(
        &c,
        &api(&format!("/exports/{}", job["id"].as_str().unwrap())),
    )
    .await;
    assert_eq!(job["records"], 6_001);
    assert_eq!(job["done"], job["total"]);
    // The spool on disk is ciphertext.
    let mut spooled = 0;
    for e in std::fs::read_dir(env.data_dir().join("exports")).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            bytes.starts_with(b"age-encryption.org/v1"),
            "{} is not age ciphertext",
            p.display()
        );
        spooled += 1;
    }
    assert_eq!(spooled, 1, "the finished export is in the spool");
    let resp = c
        .get(server.url(job["download"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    let files = unpack(&body);
    assert!(
        files.keys().any(|k| k.ends_with("records-0002.json")),
        "records come in parts"
    );
    let ids = check(&files, &env);
    assert_eq!(ids.len(), 6_001, "every record is in the archive");
    let part = String::from_utf8_lossy(&files[&format!("collections/{coll}/records-0001.csv")])
        .into_owned();
    assert!(part.contains(CANARY));
    // The CSV parts carry no live formula: the one that would be is quoted.
    let mut cells = Vec::new();
    for rec in csv::Reader::from_reader(part.as_bytes()).records() {
        cells.extend(rec.unwrap().iter().map(str::to_owned));
    }
    assert!(
        cells
            .iter()
            .any(|c| c.starts_with(&format!("'=1+1 {CANARY}"))),
        "the formula is neutralised"
    );
    assert!(
        !cells
            .iter()
            .any(|c| c.starts_with(['=', '+', '-', '@', '\t', '\r'])),
        "no live formula in the workspace export's CSV"
    );

    // Encrypted to a recipient: served as stored, opened by the age CLI.
    let key = env.root().join("export-key.txt");
    let keygen = Command::new("age-keygen")
        .arg("-o")
        .arg(&key)
        .output()
        .unwrap();
    assert!(keygen.status.success());
    let recipient = String::from_utf8_lossy(&keygen.stderr)
        .trim()
        .trim_start_matches("Public key: ")
        .to_owned();
    let r = c
        .post(api("/exports"))
        .json(&json!({"recipient": recipient}))
        .send()
        .await
        .unwrap();
    let job: Value = r.json().await.unwrap();
    let job = wait_ready(
        &c,
        &api(&format!("/exports/{}", job["id"].as_str().unwrap())),
    )
    .await;
    assert_eq!(job["encrypted"], true);
    let sealed = c
        .get(server.url(job["download"].as_str().unwrap()))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let sealed_path = env.root().join("export.tar.zst.age");
    std::fs::write(&sealed_path, &sealed).unwrap();
    let opened = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg(&sealed_path)
        .output()
        .unwrap();
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    assert_eq!(check(&unpack(&opened.stdout), &env).len(), 6_001);

    // Another workspace's admin cannot see the job.
    let listed: Value = c
        .get(api("/exports"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["items"].as_array().unwrap().len(), 2);

    // The CLI writes the same archive, and never overwrites.
    let out_path = env.root().join("cli-export.tar.zst");
    let out = env.cli(
        &[
            "workspace",
            "export",
            &ws,
            "--out",
            out_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("6001 records"), "{stdout}");
    let cli_ids = check(&unpack(&std::fs::read(&out_path).unwrap()), &env);
    assert_eq!(cli_ids, ids);
    let again = env.cli(
        &[
            "workspace",
            "export",
            &ws,
            "--out",
            out_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("never overwrites"));

    let audit: Value = c
        .get(api("/audit?action=workspace.exported"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        audit["items"].as_array().unwrap().len(),
        3,
        "each export is audited"
    );
}

/// Row ar: "Exports keep working while a workspace is read-only (a
/// deletion's grace period)". Once an owner schedules the deletion, changes
/// get 409 `workspace-deleting`, and an export (recorded in the chain as
/// `workspace.exported`) still runs, downloads and verifies.
#[tokio::test]
async fn exports_keep_working_while_the_workspace_is_read_only() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    env.create_user("admin@example.com", "Admin");
    let ws = env.create_workspace("Leaving Ltd", "owner@example.com");
    env.add_member(&ws, "admin@example.com", "admin");
    let server = env.start();
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let (owner, admin) = (client(&server), client(&server));
    for (c, who) in [(&owner, "owner@example.com"), (&admin, "admin@example.com")] {
        assert_eq!(login(c, &server, who, PASSWORD).await.status(), 200);
    }
    let coll = seed(&admin, &api).await;
    let r = admin
        .post(api(&format!("/collections/{coll}/import")))
        .header("content-type", "text/csv")
        .body(format!("Customer,Amount\n{CANARY},1.00 EUR\n"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

    let r = owner
        .post(api("/deletion"))
        .json(&json!({"confirm_name": "Leaving Ltd"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    // Read-only now: a change is refused.
    let r = admin
        .post(api("/teams"))
        .json(&json!({"name": "Late"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:aura:problem:workspace-deleting", "{p}");

    // The export still runs, is audited, downloads and verifies.
    let r = admin
        .post(api("/exports"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().await.unwrap());
    let job: Value = r.json().await.unwrap();
    let job = wait_ready(
        &admin,
        &api(&format!("/exports/{}", job["id"].as_str().unwrap())),
    )
    .await;
    let resp = admin
        .get(server.url(job["download"].as_str().unwrap()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let files = unpack(&resp.bytes().await.unwrap());
    assert_eq!(check(&files, &env).len(), 1, "the record is in the archive");
    server.stop();
}

/// Attached files travel in the archive as uploaded, listed in the
/// manifest; the API export leaves out a collection its requester may not
/// read, files included; a sealed file damaged on disk stops the export
/// with an integrity error instead of writing wrong bytes.
#[tokio::test]
async fn attached_files_travel_in_the_archive() {
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Files Export Ltd", "owner@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let coll: Value = c
        .post(api("/collections"))
        .json(&json!({"name": "Guests", "fields": [
            {"name": "Name", "type": "text"},
            {"name": "Passport", "type": "file", "multiple": true}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let coll_id = coll["id"].as_str().unwrap();
    let field = coll["fields"][1]["id"].as_str().unwrap();
    let rec: Value = c
        .post(api(&format!("/collections/{coll_id}/records")))
        .json(&json!({"values": {"Name": "Ada"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rec_id = rec["id"].as_str().unwrap();
    let mut uploaded = Vec::new();
    for (name, body) in [
        (
            "scan one.pdf",
            format!("%PDF-1.4 {CANARY} one").into_bytes(),
        ),
        ("notes.txt", vec![7u8; 300_000]),
    ] {
        let r = c
            .post(api(&format!(
                "/collections/{coll_id}/records/{rec_id}/files/{field}"
            )))
            .query(&[("name", name)])
            .header("content-type", "application/octet-stream")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        let f: Value = r.json().await.unwrap();
        uploaded.push((f["id"].as_str().unwrap().to_owned(), name, body));
    }

    let out_path = env.root().join("with-files.tar.zst");
    let out = env.cli(
        &[
            "workspace",
            "export",
            &ws,
            "--out",
            out_path.to_str().unwrap(),
        ],
        None,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("2 attached"), "{stdout}");
    let files = unpack(&std::fs::read(&out_path).unwrap());
    let manifest: Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    assert_eq!(manifest["counts"]["attached_files"], 2, "{manifest}");
    for (id, name, body) in &uploaded {
        let path = format!("collections/{coll_id}/files/{rec_id}/{id}/{name}");
        assert_eq!(
            files.get(&path),
            Some(body),
            "{path} is in the archive as uploaded"
        );
        let listed = manifest["files"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{path} is in the manifest"));
        assert_eq!(listed["sha256"], hex::encode(Sha256::digest(body)));
    }

    // One byte flipped in a sealed file: the export fails, and says why.
    let sealed = env
        .data_dir()
        .join("tenants")
        .join(&ws)
        .join("files")
        .join(&uploaded[1].0);
    let mut bytes = std::fs::read(&sealed).unwrap();
    bytes[1000] ^= 1;
    std::fs::write(&sealed, bytes).unwrap();
    let broken_path = env.root().join("broken.tar.zst");
    let out = env.cli(
        &[
            "workspace",
            "export",
            &ws,
            "--out",
            broken_path.to_str().unwrap(),
        ],
        None,
    );
    assert!(!out.status.success(), "a damaged file stops the export");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("integrity"), "{err}");
    server.stop();
}
