//! The canary test: unique strings go into every person-typed input that
//! exists, then every byte under the data dir (DB, -wal, -shm, everything) and
//! the server's log output are scanned for them, raw, hex and base64. The
//! promise is zero hits. Every capability that adds an input extends this test.

mod common;
// SCIM: the token and what an identity provider sends.
#[path = "canary/scim.rs"]
mod scim;

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use common::{Env, PASSWORD, client, login};
use rand::RngCore;

/// The servers log at `debug`, the most an operator is likely to turn on, so
/// a person-typed value logged below the default level is caught too.
const DEBUG_LOG: &[(&str, &str)] = &[("AURA_LOG__LEVEL", "debug")];

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

/// Every needle of every canary found in `haystack`. One pass over the
/// haystack with the needles bucketed by their first two bytes (searching for
/// each needle in turn took seconds per megabyte of WAL in a debug build).
fn scan_bytes(haystack: &[u8], canaries: &[String]) -> Vec<String> {
    let all: Vec<(usize, Vec<u8>)> = canaries
        .iter()
        .enumerate()
        .flat_map(|(i, c)| needles(c).into_iter().map(move |n| (i, n)))
        .collect();
    let key = |a: u8, b: u8| (usize::from(a) << 8) | usize::from(b);
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); 1 << 16];
    for (j, (_, n)) in all.iter().enumerate() {
        assert!(n.len() >= 2, "needles are longer than two bytes");
        buckets[key(n[0], n[1])].push(j);
    }
    let mut found = vec![false; all.len()];
    for pos in 0..haystack.len().saturating_sub(1) {
        for &j in &buckets[key(haystack[pos], haystack[pos + 1])] {
            if !found[j] && haystack[pos..].starts_with(&all[j].1) {
                found[j] = true;
            }
        }
    }
    all.iter()
        .zip(found)
        .filter(|(_, f)| *f)
        .map(|((i, n), _)| format!("{} as {}", canaries[*i], String::from_utf8_lossy(n)))
        .collect()
}

fn scan_dir(dir: &Path, canaries: &[String]) -> Vec<String> {
    let (hits, files) = scan_tree(dir, canaries);
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
    // Replicated continuously: the replica target is scanned too.
    let replica_id = age::x25519::Identity::generate();
    let replica = env.root().join("replica");
    let (url, recipients) = (
        format!("file://{}", replica.display()),
        format!("[\"{}\"]", replica_id.to_public()),
    );
    let server = env.start_with(&[
        DEBUG_LOG[0],
        ("AURA_REPLICATION__URL", &url),
        ("AURA_REPLICATION__INTERVAL_MS", "200"),
        ("AURA_BACKUP__RECIPIENTS", &recipients),
    ]);

    let user_name = canary("username");
    let email_local = canary("email");
    let email = format!("{email_local}@example.com");
    let ws_name = canary("wsname");
    let ws_name_2 = canary("wsname2");
    let failed_email_local = canary("failedemail");
    let agent = canary("useragent");
    let path_seg = canary("path");
    let bad_input = canary("badinput");

    let incident_text = canary("incident");
    let incident_update = canary("incidentupdate");

    // Inputs through the CLI while the server runs.
    env.create_user(&email, &user_name);
    env.create_workspace(&ws_name, &email);
    // An incident's summary and update (operator-typed, mailed and published
    // on /trust, but sealed in control.db and the audit chains).
    let summary = env.root().join("incident.md");
    let mut incident = String::new();
    for (text, cmd) in [(&incident_text, "declare"), (&incident_update, "update")] {
        std::fs::write(&summary, format!("What happened: {text}")).unwrap();
        let file = summary.to_str().unwrap();
        let args: Vec<&str> = if cmd == "declare" {
            vec!["incident", cmd, "--workspaces", "all", "--summary", file]
        } else {
            vec!["incident", cmd, &incident, "--summary", file]
        };
        let out = env.cli(&args, None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{err}");
        if cmd == "declare" {
            incident = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        }
    }
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

    // A file whose content and name carry canaries: it is shipped to the
    // replica as its own object, which must hold neither.
    let file_text = canary("filecontent");
    let file_name = canary("filename");
    let coll: serde_json::Value = c
        .post(server.url(&format!("/api/v1/workspaces/{me_ws}/collections")))
        .json(&serde_json::json!({"name": "Docs", "fields": [
            {"name": "Title", "type": "text"},
            {"name": "Scan", "type": "file"}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let coll_id = coll["id"].as_str().unwrap().to_owned();
    let rec: serde_json::Value = c
        .post(server.url(&format!(
            "/api/v1/workspaces/{me_ws}/collections/{coll_id}/records"
        )))
        .json(&serde_json::json!({"values": {"Title": "t"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rec_id = rec["id"].as_str().unwrap().to_owned();
    let up = c
        .post(server.url(&format!(
            "/api/v1/workspaces/{me_ws}/collections/{coll_id}/records/{rec_id}/files/Scan"
        )))
        .query(&[("name", format!("{file_name}.txt"))])
        .header("content-type", "application/octet-stream")
        .body(format!("scan of {file_text} ").repeat(1000))
        .send()
        .await
        .unwrap();
    assert_eq!(up.status(), 201);
    let file_id = up.json::<serde_json::Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let all = vec![
        file_text,
        file_name,
        user_name,
        email_local,
        email.clone(),
        ws_name,
        ws_name_2,
        failed_email_local,
        agent,
        path_seg,
        bad_input,
        incident_text,
        incident_update,
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

    // While running: the WAL and shm hold the freshest pages, the search
    // indexes their sealed files (scanned with the rest), and the
    // replicator's copies come and go (hence the tolerant scan).
    let index_dir = env.tenant_db(&me_ws).with_file_name("search").join("audit");
    let index_files = std::fs::read_dir(index_dir).map(|d| d.count()).unwrap_or(0);
    assert!(index_files > 0, "the audit index is on disk to be scanned");
    let (hits, files) = scan_tree(&env.data_dir(), &all);
    assert!(
        hits.is_empty() && files >= 3,
        "canaries on disk while running ({files} files):\n{}",
        hits.join("\n")
    );
    // The replica, once it holds everything written above.
    let written = time::OffsetDateTime::now_utc().unix_timestamp() * 1000;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let beat: serde_json::Value = std::fs::read(replica.join("status.json"))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let dbs = beat["databases"].as_object().cloned().unwrap_or_default();
        if dbs.len() >= 2
            && dbs
                .values()
                .all(|d| d["synced_ms"].as_i64() >= Some(written))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not replicated: {beat}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let shipped = replica
        .join("files")
        .join(format!("ws-{me_ws}"))
        .join(format!("{file_id}.age"));
    assert!(
        shipped.exists(),
        "the file is in the replica, to be scanned"
    );
    let (hits, files) = scan_tree(&replica, &all);
    assert!(
        hits.is_empty() && files >= 3,
        "canaries in the replica ({files} files):\n{}",
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

/// Every file under `dir` (recursively) scanned for the canaries, tolerating
/// files that vanish or cannot be read (the system temp dir is shared with
/// other processes). Returns the hits and the number of files read.
fn scan_tree(dir: &Path, canaries: &[String]) -> (Vec<String>, usize) {
    let mut hits = Vec::new();
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.filter_map(|e| e.ok()).map(|e| e.path()));
            }
        } else if meta.is_file() && meta.len() <= 64 * 1024 * 1024 {
            if let Ok(bytes) = std::fs::read(&p) {
                files += 1;
                for h in scan_bytes(&bytes, canaries) {
                    hits.push(format!("{}: {h}", p.display()));
                }
                // A search index keeps its words in a compressed term
                // dictionary that a byte scan cannot see: any file that is
                // a plaintext tantivy file (its footer) is a hit by itself.
                if bytes.windows(22).any(|w| w == b"\"index_format_version\"") {
                    hits.push(format!("{}: a plaintext search index file", p.display()));
                }
            }
        }
    }
    (hits, files)
}

fn temp_entries() -> std::collections::BTreeSet<std::path::PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect()
}

/// Scans what appeared in the system temp dir since `before`.
fn scan_new_temp(
    before: &std::collections::BTreeSet<std::path::PathBuf>,
    canaries: &[String],
) -> (Vec<String>, usize) {
    let mut hits = Vec::new();
    let mut files = 0;
    for p in temp_entries().difference(before) {
        let (h, n) = scan_tree(p, canaries);
        hits.extend(h);
        files += n;
    }
    (hits, files)
}

/// Records of every field type, the in-memory search index, CSV export and
/// import, schema changes, history and teams: canaries go in through each, the
/// API answers with them, and then the data dir (DB, -wal, -shm), the server
/// log and whatever appeared in the system temp dir are scanned for them.
#[tokio::test]
async fn every_field_type_search_and_csv_leave_no_plaintext() {
    let temp_before = temp_entries();
    let env = Env::new();
    let owner_id = env.create_user("fields@example.com", "Fields Owner");
    let ws = env.create_workspace("Fields Ltd", "fields@example.com");
    let server = env.start_with(DEBUG_LOG);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "fields@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let url = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let mut all: Vec<String> = Vec::new();
    let mut mint = |tag: &str| {
        let c = canary(tag);
        all.push(c.clone());
        c
    };

    // The relation target: its name, field name and value are canaries too.
    let rel_coll = mint("relcoll");
    let rel_field = mint("relfield");
    let rel_value = mint("relvalue");
    // The collection: its name, every field name and every option.
    let coll_name = mint("collname");
    let types = [
        "text",
        "long_text",
        "integer",
        "decimal",
        "money",
        "boolean",
        "date",
        "datetime",
        "email",
        "phone",
        "url",
        "select",
        "multi_select",
        "relation",
        "member",
        "file",
    ];
    let names: Vec<String> = types
        .iter()
        .map(|t| mint(&format!("f{}", t.replace('_', ""))))
        .collect();
    let name = |t: &str| names[types.iter().position(|x| *x == t).unwrap()].clone();
    let opt_a = mint("optopen");
    let opt_b = mint("optclosed");
    let tag_a = mint("tagvip");
    let tag_b = mint("taglate");
    // String values (numbers, dates and phone digits are not canaries: digits
    // can turn up anywhere by chance).
    let v_text = mint("vtext");
    let v_long = mint("vlong");
    let v_long_2 = mint("vlongedit");
    let v_email = mint("vemail");
    let v_url = mint("vurl");
    let v_text_2 = mint("vtexttwo");
    let v_email_2 = mint("vemailtwo");
    // Imported through CSV.
    let i_text = mint("itext");
    let i_long = mint("ilong");
    let i_email = mint("iemail");
    let i_url = mint("iurl");
    // Schema changes and teams.
    let renamed = mint("collrenamed");
    let new_field = mint("fadded");
    let team_name = mint("teamname");
    // An attached file: its name and its contents.
    let file_name = mint("filename");
    let file_body = mint("filebody");

    let send = |req: reqwest::RequestBuilder| async move {
        let r = req.send().await.unwrap();
        let s = r.status().as_u16();
        (s, r.text().await.unwrap())
    };
    let json_of = |body: &str| serde_json::from_str::<serde_json::Value>(body).unwrap();

    let (s, body) = send(c.post(url("/collections")).json(&serde_json::json!({
        "name": rel_coll,
        "fields": [{"name": rel_field, "type": "text", "searchable": true}]
    })))
    .await;
    assert_eq!(s, 201, "{body}");
    assert!(
        body.contains(&rel_coll) && body.contains(&rel_field),
        "{body}"
    );
    let companies = json_of(&body)["id"].as_str().unwrap().to_owned();
    let (s, body) = send(
        c.post(url(&format!("/collections/{companies}/records")))
            .json(&serde_json::json!({"values": {&rel_field: rel_value}})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert!(body.contains(&rel_value));
    let acme = json_of(&body)["id"].as_str().unwrap().to_owned();

    let fields = serde_json::json!([
        {"name": name("text"), "type": "text", "required": true, "searchable": true},
        {"name": name("long_text"), "type": "long_text", "searchable": true},
        {"name": name("integer"), "type": "integer"},
        {"name": name("decimal"), "type": "decimal"},
        {"name": name("money"), "type": "money", "currency": "EUR"},
        {"name": name("boolean"), "type": "boolean"},
        {"name": name("date"), "type": "date"},
        {"name": name("datetime"), "type": "datetime"},
        {"name": name("email"), "type": "email", "unique": true, "pii": true, "searchable": true},
        {"name": name("phone"), "type": "phone", "pii": true},
        {"name": name("url"), "type": "url", "searchable": true},
        {"name": name("select"), "type": "select", "options": [opt_a, opt_b]},
        {"name": name("multi_select"), "type": "multi_select", "options": [tag_a, tag_b]},
        {"name": name("relation"), "type": "relation", "collection": companies},
        {"name": name("member"), "type": "member"},
        {"name": name("file"), "type": "file", "multiple": true, "pii": true, "searchable": true}
    ]);
    let (s, body) = send(
        c.post(url("/collections"))
            .json(&serde_json::json!({"name": coll_name, "fields": fields})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let coll_json = json_of(&body);
    let coll = coll_json["id"].as_str().unwrap().to_owned();
    assert_eq!(coll_json["fields"].as_array().unwrap().len(), 16);
    for n in names
        .iter()
        .chain([&coll_name, &opt_a, &opt_b, &tag_a, &tag_b])
    {
        assert!(body.contains(n.as_str()), "the schema answers with {n}");
    }

    let records = url(&format!("/collections/{coll}/records"));
    let mut rec_ids = Vec::new();
    for (text, email, opt, tags) in [
        (&v_text, &v_email, &opt_a, vec![&tag_a, &tag_b]),
        (&v_text_2, &v_email_2, &opt_b, vec![&tag_b]),
    ] {
        let values = serde_json::json!({
            name("text"): text,
            name("long_text"): format!("{v_long}\nsecond line"),
            name("integer"): 42,
            name("decimal"): "12.50",
            name("money"): {"amount_minor": 123456, "currency": "EUR"},
            name("boolean"): true,
            name("date"): "2026-02-28",
            name("datetime"): "2026-02-28T10:00:00Z",
            name("email"): format!("{email}@example.com"),
            name("phone"): "+44 20 7946 0958",
            name("url"): format!("https://{v_url}.example/"),
            name("select"): opt,
            name("multi_select"): tags,
            name("relation"): acme,
            name("member"): owner_id,
        });
        let (s, body) = send(
            c.post(&records)
                .json(&serde_json::json!({"values": values})),
        )
        .await;
        assert_eq!(s, 201, "{body}");
        for needle in [text, email, &v_long, &v_url, opt] {
            assert!(
                body.contains(needle.as_str()),
                "the record answers with {needle}"
            );
        }
        rec_ids.push(json_of(&body)["id"].as_str().unwrap().to_owned());
    }
    // An edit keeps the old value in the history.
    let rec_url = format!("{records}/{}", rec_ids[0]);
    let (s, body) = send(
        c.patch(&rec_url)
            .json(&serde_json::json!({"values": {name("long_text"): v_long_2}})),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let (s, body) = send(c.get(format!("{rec_url}/history"))).await;
    assert_eq!(s, 200);
    assert!(body.contains(&v_long) && body.contains(&v_long_2), "{body}");

    // A file: its name and contents are canaries; it comes back whole.
    let contents = format!("{file_body}\n{file_body} again\n").repeat(2000);
    let file_field = coll_json["fields"][15]["id"].as_str().unwrap().to_owned();
    let (s, body) = send(
        c.post(format!("{rec_url}/files/{file_field}"))
            .query(&[("name", format!("{file_name}.txt"))])
            .header("content-type", "text/plain")
            .body(contents.clone()),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    assert!(body.contains(&file_name), "{body}");
    let file_id = json_of(&body)["id"].as_str().unwrap().to_owned();
    let r = c
        .get(format!("{rec_url}/files/{file_field}/{file_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        contents,
        "the file comes back whole"
    );

    // The search index is built from the sealed rows on the first query.
    let search = |q: String| {
        let c = c.clone();
        let u = format!("{records}?q={q}");
        async move {
            let r = c.get(u).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let found = search(v_text.clone()).await;
    assert!(
        found.contains(&rec_ids[0]) && !found.contains(&rec_ids[1]),
        "search finds the canary: {found}"
    );
    let found = search(v_long_2.clone()).await;
    assert!(found.contains(&rec_ids[0]), "search sees the edit: {found}");

    // CSV export: header (field names) and values.
    let r = c
        .get(url(&format!("/collections/{coll}/export")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let csv = r.text().await.unwrap();
    for n in names.iter().chain([
        &v_text, &v_text_2, &v_long_2, &v_email, &v_url, &opt_a, &tag_a,
    ]) {
        assert!(csv.contains(n.as_str()), "the export carries {n}:\n{csv}");
    }

    // CSV import with further canaries.
    let import = format!(
        "{},{},{},{},{},{}\n{i_text},\"{i_long}\nline two\",{i_email}@example.com,https://{i_url}.example/,{opt_b},{tag_a}; {tag_b}\n",
        name("text"),
        name("long_text"),
        name("email"),
        name("url"),
        name("select"),
        name("multi_select"),
    );
    let (s, body) = send(
        c.post(url(&format!("/collections/{coll}/import")))
            .header("content-type", "text/csv")
            .body(import),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    assert_eq!(json_of(&body)["imported"], 1);
    let found = search(i_text.clone()).await;
    for n in [&i_text, &i_long, &i_email, &i_url] {
        assert!(
            found.contains(n.as_str()),
            "the imported record answers with {n}: {found}"
        );
    }

    // A schema change (rename, a new field) rebuilds the index.
    let (s, body) = send(c.patch(url(&format!("/collections/{coll}"))).json(
        &serde_json::json!({"name": renamed, "fields": [{"name": new_field, "type": "text", "searchable": true}]}),
    ))
    .await;
    assert_eq!(s, 200, "{body}");
    assert!(body.contains(&renamed) && body.contains(&new_field));
    let found = search(v_email_2.clone()).await;
    assert!(
        found.contains(&rec_ids[1]),
        "search after the rebuild: {found}"
    );

    let (s, body) = send(
        c.post(url("/teams"))
            .json(&serde_json::json!({"name": team_name})),
    )
    .await;
    assert_eq!(s, 201, "{body}");
    let (_, body) = send(c.get(url("/teams"))).await;
    assert!(body.contains(&team_name), "{body}");

    // While running: the WAL and shm hold the freshest pages, and the
    // search indexes their sealed files (scanned with the rest).
    let index_dir = env.tenant_db(&ws).with_file_name("search").join("records");
    let index_files = std::fs::read_dir(index_dir).map(|d| d.count()).unwrap_or(0);
    assert!(
        index_files > 0,
        "the records index is on disk to be scanned"
    );
    let hits = scan_dir(&env.data_dir(), &all);
    assert!(
        hits.is_empty(),
        "canaries on disk while running:\n{}",
        hits.join("\n")
    );
    let (hits, _) = scan_new_temp(&temp_before, &all);
    assert!(
        hits.is_empty(),
        "canaries in the temp dir while running:\n{}",
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
    // A clean shutdown checkpoints and removes the -wal and -shm files.
    let (hits, files) = scan_tree(&env.data_dir(), &all);
    assert!(
        files >= 2,
        "the control and tenant databases ({files} files)"
    );
    assert!(
        hits.is_empty(),
        "canaries on disk after shutdown:\n{}",
        hits.join("\n")
    );
    let (hits, files) = scan_new_temp(&temp_before, &all);
    assert!(
        files >= 3,
        "the temp dir scan read too few files ({files}); the test's own dir is in it"
    );
    assert!(
        hits.is_empty(),
        "canaries in the temp dir after shutdown:\n{}",
        hits.join("\n")
    );
}

/// Who may act in a workspace: a member's name and email (through the CLI),
/// a service account's name and API token names (through the API) are
/// canaries; the API answers with them, and neither the data dir (while
/// running and after shutdown) nor the server log holds them.
#[tokio::test]
async fn members_service_accounts_and_token_names_leave_no_plaintext() {
    let env = Env::new();
    env.create_user("access@example.com", "Access Owner");
    let ws = env.create_workspace("Access Ltd", "access@example.com");
    let server = env.start_with(DEBUG_LOG);
    let member_name = canary("membername");
    let member_local = canary("memberemail");
    let member_email = format!("{member_local}@example.com");
    let sa_name = canary("svcname");
    let sa_token_name = canary("svctoken");
    let own_token_name = canary("owntoken");

    // The member, while the server runs.
    env.create_user(&member_email, &member_name);
    env.add_member(&ws, &member_email, "member");

    let c = client(&server);
    assert_eq!(
        login(&c, &server, "access@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let url = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let post = |p: &str, body: serde_json::Value| {
        let req = c.post(url(p)).json(&body);
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 201);
            r.json::<serde_json::Value>().await.unwrap()
        }
    };
    let sa = post(
        "/service-accounts",
        serde_json::json!({ "name": sa_name, "role": "member" }),
    )
    .await;
    let made = post(
        "/tokens",
        serde_json::json!({ "name": sa_token_name, "scope": "member", "service_account": sa["id"] }),
    )
    .await;
    post(
        "/tokens",
        serde_json::json!({ "name": own_token_name, "scope": "viewer" }),
    )
    .await;
    // The token is used (last use recorded) and shows up in the lists.
    let secret = made["secret"].as_str().unwrap();
    let r = reqwest::Client::new()
        .get(url("/collections"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let members = common::get_text(&c, url("/members")).await;
    assert!(
        members.contains(&member_name) && members.contains(&member_email),
        "{members}"
    );
    let tokens = common::get_text(&c, url("/tokens")).await;
    for n in [&sa_name, &sa_token_name, &own_token_name] {
        assert!(
            tokens.contains(n.as_str()),
            "the token list answers with {n}"
        );
    }
    let accounts = common::get_text(&c, url("/service-accounts")).await;
    assert!(accounts.contains(&sa_name), "{accounts}");

    let all = vec![
        member_name,
        member_local,
        member_email,
        sa_name,
        sa_token_name,
        own_token_name,
    ];
    let hits = scan_dir(&env.data_dir(), &all);
    assert!(
        hits.is_empty(),
        "canaries on disk while running:\n{}",
        hits.join("\n")
    );
    let logs = server.stop();
    let hits = scan_bytes(&logs, &all);
    assert!(
        hits.is_empty(),
        "canaries in the server log:\n{}",
        hits.join("\n")
    );
    // A clean shutdown checkpoints and removes the -wal and -shm files.
    let (hits, files) = scan_tree(&env.data_dir(), &all);
    assert!(
        files >= 2,
        "the control and tenant databases ({files} files)"
    );
    assert!(
        hits.is_empty(),
        "canaries on disk after shutdown:\n{}",
        hits.join("\n")
    );
}

#[tokio::test]
async fn deletion_and_a_move_leave_no_plaintext() {
    use age::secrecy::ExposeSecret;
    let source = Env::new();
    let target = Env::new();
    let ws_name = canary("wsname");
    let owner_name = canary("ownername");
    let member_local = canary("movermail");
    let member_email = format!("{member_local}@example.com");
    let team_name = canary("moveteam");
    source.create_user("mover@example.com", &owner_name);
    source.create_user(&member_email, &canary("movername"));
    let ws = source.create_workspace(&ws_name, "mover@example.com");
    source.add_member(&ws, &member_email, "viewer");
    let server = source.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "mover@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let url = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let r = c
        .post(url("/teams"))
        .json(&serde_json::json!({ "name": team_name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    // The name typed to confirm a deletion, then the cancellation.
    let r = c
        .post(url("/deletion"))
        .json(&serde_json::json!({ "confirm_name": ws_name }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = c.delete(url("/deletion")).send().await.unwrap();
    assert_eq!(r.status(), 200);

    let id = age::x25519::Identity::generate();
    let id_file = target.root().join("target-identity.txt");
    std::fs::write(&id_file, format!("{}\n", id.to_string().expose_secret())).unwrap();
    let bundle = source.root().join("move.age");
    let out = source.cli(
        &[
            "workspace",
            "move-out",
            &ws,
            "--to-recipient",
            &id.to_public().to_string(),
            "--out",
            bundle.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `move-out` prints the source's audit key for `move-in --source-key`.
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    let source_key = printed
        .split("--source-key ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .map(|k| k.trim_matches(|c: char| !c.is_ascii_hexdigit()).to_owned())
        .unwrap_or_default();
    let out2 = target.cli(
        &[
            "workspace",
            "move-in",
            bundle.to_str().unwrap(),
            "--identity",
            id_file.to_str().unwrap(),
            "--source-key",
            &source_key,
        ],
        None,
    );
    assert!(
        out2.status.success(),
        "{}",
        String::from_utf8_lossy(&out2.stderr)
    );
    let all = vec![ws_name, owner_name, member_local, member_email, team_name];
    let mut hits = scan_dir(&source.data_dir(), &all);
    // The target ran only the CLI: its databases are closed (no -wal).
    let (target_hits, files) = scan_tree(&target.data_dir(), &all);
    assert!(files >= 2, "the target's control and tenant databases");
    hits.extend(target_hits);
    hits.extend(scan_bytes(&std::fs::read(&bundle).unwrap(), &all));
    for o in [&out, &out2] {
        hits.extend(scan_bytes(&o.stdout, &all));
        hits.extend(scan_bytes(&o.stderr, &all));
    }
    assert!(
        hits.is_empty(),
        "canaries after the move:\n{}",
        hits.join("\n")
    );
    let out = source.cli(&["workspace", "move-confirm", &ws], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let logs = server.stop();
    let mut hits = scan_bytes(&logs, &all);
    hits.extend(scan_tree(&source.data_dir(), &all).0);
    hits.extend(scan_tree(&target.data_dir(), &all).0);
    assert!(
        hits.is_empty(),
        "canaries after shredding:\n{}",
        hits.join("\n")
    );
}

/// Integrations: a stored secret (and its rotated value) is never in any
/// answer the API or the UI gives, nor in the log or on disk; secret names,
/// webhook URLs, inbound integration names and the events senders post are
/// sealed like every other input.
#[tokio::test]
async fn integration_secrets_and_payloads_leave_no_plaintext() {
    let env = Env::new();
    env.create_user("int@example.com", "Integrator");
    let ws = env.create_workspace("Integrations", "int@example.com");
    let server = env.start_with(DEBUG_LOG);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "int@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let (secret_name, secret_value, rotated) =
        (canary("secname"), canary("secvalue"), canary("rotated"));
    let (ui_value, url_path, inbound_name) =
        (canary("uivalue"), canary("urlpath"), canary("inbound"));
    let (body_text, msg_id) = (canary("body"), canary("msgid"));
    let mut answers: Vec<String> = Vec::new();

    let r = c
        .post(api("/integrations/secrets"))
        .json(&serde_json::json!({"name": secret_name, "value": secret_value}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let made: serde_json::Value = r.json().await.unwrap();
    let sid = made["id"].as_str().unwrap().to_owned();
    assert_eq!(made["last4"], &secret_value[secret_value.len() - 4..]);
    answers.push(made.to_string());
    let r = c
        .post(api(&format!("/integrations/secrets/{sid}/rotate")))
        .json(&serde_json::json!({"value": rotated, "overlap_hours": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    answers.push(r.text().await.unwrap());
    // Through the UI form as well.
    let csrf = common::page_csrf(&c, &server.url(&format!("/w/{ws}/integrations"))).await;
    let r = c
        .post(server.url(&format!("/w/{ws}/integrations/secrets")))
        .form(&[
            ("name", "from the form"),
            ("value", ui_value.as_str()),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = c
        .post(api("/webhooks"))
        .json(&serde_json::json!({"url": format!("https://hooks.example.com/{url_path}"), "events": ["record.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    answers.push(r.text().await.unwrap());
    let r = c
        .post(api("/integrations/inbound"))
        .json(&serde_json::json!({"name": inbound_name, "mode": "token", "secret_id": sid}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let inbound: serde_json::Value = r.json().await.unwrap();
    assert!(inbound["secret"].is_null(), "a stored secret is not echoed");
    answers.push(inbound.to_string());
    let hook = inbound["url"].as_str().unwrap().to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let r = reqwest::Client::new()
        .post(&hook)
        .bearer_auth(&rotated)
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", now.to_string())
        .body(format!("{{\"note\": \"{body_text}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202, "the rotated value verifies");
    answers.push(r.text().await.unwrap());

    // The workspace's single sign-on: its client secret (never read back),
    // issuer, client id, domain and group names (sealed at rest).
    let (sso_secret, sso_client, sso_group) =
        (canary("ssosecret"), canary("ssoclient"), canary("ssogroup"));
    let sso_host = format!("{}.example", canary("ssohost"));
    let r = c
        .put(api("/sso"))
        .json(&serde_json::json!({
            "issuer": format!("https://{sso_host}/realms/acme"), "client_id": sso_client,
            "client_secret": sso_secret, "allowed_domains": [sso_host.clone()],
            "role_mappings": [{"group": sso_group, "role": "admin"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    answers.push(r.text().await.unwrap());
    answers.push(common::get_text(&c, api("/sso")).await);
    answers.push(common::get_text(&c, server.url(&format!("/w/{ws}/sso"))).await);

    // Every answer an admin can fetch, the UI page and the audit log included.
    for path in [
        "/integrations/secrets",
        "/integrations/inbound",
        "/webhooks",
        "/audit?limit=200",
        "/audit/export",
    ] {
        answers.push(common::get_text(&c, api(path)).await);
    }
    let iid = inbound["id"].as_str().unwrap();
    answers.push(common::get_text(&c, api(&format!("/integrations/inbound/{iid}/events"))).await);
    answers.push(common::get_text(&c, server.url(&format!("/w/{ws}/integrations"))).await);
    answers.push(common::get_text(&c, server.url(&format!("/w/{ws}/audit"))).await);
    answers.push(common::get_text(&c, server.url("/trust.json")).await);
    let secrets = vec![
        secret_value.clone(),
        rotated.clone(),
        ui_value.clone(),
        sso_secret.clone(),
    ];
    let hits = scan_bytes(answers.join("\n").as_bytes(), &secrets);
    assert!(
        hits.is_empty(),
        "a secret value in an answer:\n{}",
        hits.join("\n")
    );
    let all_answers = answers.join("\n");
    assert!(all_answers.contains(&secret_name) && all_answers.contains(&body_text));

    let mut all = secrets;
    all.extend([secret_name, url_path, inbound_name, body_text, msg_id]);
    all.extend([sso_client, sso_group, sso_host]);
    let hits = scan_dir(&env.data_dir(), &all);
    assert!(
        hits.is_empty(),
        "canaries on disk while running:\n{}",
        hits.join("\n")
    );
    let logs = server.stop();
    let hits = scan_bytes(&logs, &all);
    assert!(
        hits.is_empty(),
        "canaries in the server log:\n{}",
        hits.join("\n")
    );
    let (hits, _) = scan_tree(&env.data_dir(), &all);
    assert!(
        hits.is_empty(),
        "canaries on disk after shutdown:\n{}",
        hits.join("\n")
    );
}
