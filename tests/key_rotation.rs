//! Key rotation (SECURITY.md row ba). The master key: `aura keys rotate-master`
//! aborted at every step (what a kill -9 there does) leaves an appliance that
//! starts and reads everything, and a rerun finishes; afterwards only the new
//! key opens it. A workspace data key: rotated online under writes, the server
//! killed -9 mid-way and restarted, reads right throughout, old key gone,
//! uniqueness still enforced, audit verify, no canary on disk, and a backup
//! made afterwards restores. The CLI job, aborted at each step, resumes.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{Env, PASSWORD, Server, client, login};
use serde_json::{Value, json};

fn new_key_file(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    let bytes: Vec<u8> = (0..32).map(|_| rand::random::<u8>()).collect();
    std::fs::write(&p, hex::encode(bytes)).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn ok(out: &std::process::Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `args` with the crash hook set at `step`; it must abort there.
fn abort_at(env: &Env, args: &[&str], step: &str) {
    let out = env
        .command(args)
        .env("TEST_AURA_CRASH_AT", step)
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!("aborting at {step}")),
        "{step}: the hook aborts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct World {
    server: Server,
    c: reqwest::Client,
    ws: String,
}

impl World {
    fn url(&self, p: &str) -> String {
        self.server
            .url(&format!("/api/v1/workspaces/{}{p}", self.ws))
    }
}

async fn signed_in(server: Server, ws: &str) -> World {
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    World {
        server,
        c,
        ws: ws.to_owned(),
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    let t = r.text().await.unwrap();
    (s, serde_json::from_str(&t).unwrap_or(Value::String(t)))
}

/// A collection with a unique code and a canary-bearing name, `n` records
/// imported by CSV. Returns the collection id.
async fn seed(w: &World, canary: &str, n: usize) -> String {
    let (s, coll) = send(w.c.post(w.url("/collections")).json(&json!({
        "name": "Parts",
        "fields": [
            {"name": "Code", "type": "text", "unique": true},
            {"name": "Name", "type": "text", "searchable": true},
        ]
    })))
    .await;
    assert_eq!(s, 201, "{coll}");
    let coll = coll["id"].as_str().unwrap().to_owned();
    let mut csv = String::from("Code,Name\n");
    for i in 0..n {
        csv.push_str(&format!("C{i},{canary}-{i}\n"));
    }
    let (s, body) = send(
        w.c.post(w.url(&format!("/collections/{coll}/import")))
            .header("content-type", "text/csv")
            .body(csv),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    coll
}

/// Every record, by the CSV export: Code -> Name.
async fn all_records(w: &World, coll: &str) -> std::collections::HashMap<String, String> {
    let r =
        w.c.get(w.url(&format!("/collections/{coll}/export")))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let mut rdr = csv::Reader::from_reader(text.as_bytes());
    let h = rdr.headers().unwrap().clone();
    let (ci, ni) = (
        h.iter().position(|x| x == "Code").unwrap(),
        h.iter().position(|x| x == "Name").unwrap(),
    );
    rdr.records()
        .map(|r| {
            let r = r.unwrap();
            (r[ci].to_owned(), r[ni].to_owned())
        })
        .collect()
}

fn assert_all(recs: &std::collections::HashMap<String, String>, canary: &str, n: usize) {
    for i in 0..n {
        assert_eq!(
            recs.get(&format!("C{i}")),
            Some(&format!("{canary}-{i}")),
            "record C{i}"
        );
    }
}

fn setup(env: &Env) -> String {
    env.create_user("owner@example.com", "Owner");
    env.create_workspace("Rotation Co", "owner@example.com")
}

/// Bytes of `canary` anywhere under `dir` (WAL included).
fn canary_hits(dir: &Path, canary: &str) -> Vec<PathBuf> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(b) = std::fs::read(&p) {
                if b.windows(canary.len()).any(|w| w == canary.as_bytes()) {
                    hits.push(p);
                }
            }
        }
    }
    hits
}

#[tokio::test]
async fn master_key_rotation_survives_a_crash_at_every_step() {
    let env = Env::new();
    let ws = setup(&env);
    let canary = format!("mkcanary{}", hex::encode(rand::random::<[u8; 6]>()));
    let w = signed_in(env.start(), &ws).await;
    let coll = seed(&w, &canary, 50).await;
    // A running server holds the key in memory: the rotation refuses.
    let f = new_key_file(env.root(), "refused.key");
    let rotate = |f: &Path| {
        env.cli(
            &[
                "keys",
                "rotate-master",
                "--new-key-file",
                f.to_str().unwrap(),
            ],
            None,
        )
    };
    let out = rotate(&f);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server is running"));
    w.server.stop();

    let steps = [
        "rewrap-platform",
        "rewrap-workspaces",
        "before-commit",
        "after-commit",
        "after-checkpoint",
        "after-install",
    ];
    for (i, step) in steps.iter().enumerate() {
        let old = std::fs::read(env.key_path()).unwrap();
        let f = new_key_file(env.root(), &format!("new-{i}.key"));
        let new = std::fs::read(&f).unwrap();
        abort_at(
            &env,
            &[
                "keys",
                "rotate-master",
                "--new-key-file",
                f.to_str().unwrap(),
            ],
            step,
        );
        // Whatever the step, the appliance starts and reads everything.
        let w = signed_in(env.start(), &ws).await;
        assert_all(&all_records(&w, &coll).await, &canary, 50);
        w.server.stop();
        // A rerun with the same file finishes the rotation.
        if f.exists() {
            ok(&rotate(&f), &format!("rerun after {step}"));
        }
        assert_eq!(
            std::fs::read(env.key_path()).unwrap(),
            new,
            "{step}: the configured file holds the new key"
        );
        let w = signed_in(env.start(), &ws).await;
        assert_all(&all_records(&w, &coll).await, &canary, 50);
        let trust: Value =
            w.c.get(w.server.url("/trust.json"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        assert!(
            trust["document"]["encryption"]["at_rest"]["master_key_last_rotation"].is_string(),
            "{trust}"
        );
        assert_eq!(
            trust["document"]["encryption"]["at_rest"]["master_key_age_days"],
            0
        );
        w.server.stop();
        // The old key opens nothing any more.
        let old_file = env.root().join(format!("old-{i}.key"));
        std::fs::write(&old_file, &old).unwrap();
        std::fs::set_permissions(&old_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let out = env
            .command(&["keys", "status"])
            .env("AURA_MASTER_KEY_FILE", &old_file)
            .output()
            .unwrap();
        assert!(
            !out.status.success(),
            "{step}: the old key still opened the data dir"
        );
    }
    let doctor = env.cli(&["doctor"], None);
    let text = String::from_utf8_lossy(&doctor.stdout).into_owned();
    assert!(
        text.contains("master key") && text.contains("last rotated"),
        "{text}"
    );
    ok(&env.cli(&["audit", "verify"], None), "audit verify");
}

/// Values in the workspace database sealed under a key id other than `id`.
fn values_under_other_keys(env: &Env, ws: &str, id: u32) -> i64 {
    let db = common::open_db(&env.tenant_db(ws));
    let mut n = 0;
    for (t, c) in [
        ("records", "values_ct"),
        ("record_versions", "values_ct"),
        ("audit_log", "detail_ct"),
        ("collections", "def_ct"),
    ] {
        n += db
            .query_row(
                &format!(
                    "SELECT count(*) FROM {t} WHERE {c} IS NOT NULL AND substr({c}, 2, 4) != ?1"
                ),
                [&id.to_be_bytes()[..]],
                |r| r.get::<_, i64>(0),
            )
            .unwrap();
    }
    n
}

fn key_ids(env: &Env, ws: &str) -> Vec<u32> {
    let db = common::open_db(&env.data_dir().join("control.db"));
    let mut st = db
        .prepare("SELECT key_id FROM workspace_keys WHERE workspace_id = ?1 ORDER BY key_id")
        .unwrap();
    st.query_map([ws], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

#[tokio::test]
async fn data_key_rotation_under_writes_resumes_after_kill9() {
    const N: usize = 10_000;
    let env = Env::new();
    let ws = setup(&env);
    let canary = format!("dkcanary{}", hex::encode(rand::random::<[u8; 6]>()));
    let w = signed_in(env.start(), &ws).await;
    let t = Instant::now();
    let coll = seed(&w, &canary, N).await;
    println!("seeded {N} records in {:.1} s", t.elapsed().as_secs_f64());
    assert_eq!(key_ids(&env, &ws), vec![1]);

    // Start the rotation; write and read while it runs; kill -9 mid-way.
    let started = Instant::now();
    let (s, r) = send(w.c.post(w.url("/keys/rotate"))).await;
    assert_eq!(s, 200, "{r}");
    let mut extra = 0usize;
    let mut killed_at = None;
    let mut w = w;
    loop {
        let (s, rec) = send(w.c.post(w.url(&format!("/collections/{coll}/records"))).json(
            &json!({"values": {"Code": format!("X{extra}"), "Name": format!("{canary}-x{extra}")}}),
        ))
        .await;
        assert_eq!(s, 201, "write during rotation: {rec}");
        extra += 1;
        let (s, list) =
            send(w.c.get(w.url(&format!("/collections/{coll}/records?limit=20")))).await;
        assert_eq!(s, 200, "read during rotation: {list}");
        for it in list["items"].as_array().unwrap() {
            let (code, name) = (
                it["values"]["Code"].as_str().unwrap(),
                it["values"]["Name"].as_str().unwrap(),
            );
            let want = match code.strip_prefix('C') {
                Some(i) => format!("{canary}-{i}"),
                None => format!("{canary}-x{}", &code[1..]),
            };
            assert_eq!(name, want, "read during rotation");
        }
        let (_, st) = send(w.c.get(w.url("/keys/rotation"))).await;
        if st["state"] == "finished" {
            break;
        }
        if killed_at.is_none() && st["resealed"].as_i64().unwrap_or(0) > 0 {
            killed_at = Some(st["resealed"].as_i64().unwrap());
            w.server.kill9();
            w = signed_in(env.start(), &ws).await;
            // Every record reads right with the rotation half done.
            let (_, st) = send(w.c.get(w.url("/keys/rotation"))).await;
            let recs = all_records(&w, &coll).await;
            assert_all(&recs, &canary, N);
            println!("all {N} records read right after the restart, rotation {st}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "rotation did not finish: {st}"
        );
    }
    let took = started.elapsed();
    let (_, st) = send(w.c.get(w.url("/keys/rotation"))).await;
    println!(
        "rotated the data key over {N} records (+{extra} written during it, killed -9 after {killed_at:?} re-sealed): {} values re-sealed in {:.1} s",
        st["resealed"],
        took.as_secs_f64()
    );
    assert!(killed_at.is_some(), "the kill happened mid-rotation");

    // Every record reads right, old and new; the old key is gone.
    let recs = all_records(&w, &coll).await;
    assert_all(&recs, &canary, N);
    for i in 0..extra {
        assert_eq!(recs.get(&format!("X{i}")), Some(&format!("{canary}-x{i}")));
    }
    assert_eq!(key_ids(&env, &ws), vec![2], "only the new key remains");
    assert_eq!(values_under_other_keys(&env, &ws, 2), 0);
    // Uniqueness holds under the new key's digests.
    let (s, body) = send(
        w.c.post(w.url(&format!("/collections/{coll}/records")))
            .json(&json!({"values": {"Code": "C17", "Name": "dup"}})),
    )
    .await;
    assert_eq!(s, 422, "a duplicate of a re-indexed value: {body}");
    // The page shows it; the audit chains verify; no canary on disk.
    let page =
        w.c.get(w.server.url(&format!("/w/{ws}/settings")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
    assert!(page.contains("Last rotated"), "{page}");
    w.server.stop();
    ok(&env.cli(&["audit", "verify"], None), "audit verify");
    assert_eq!(canary_hits(&env.data_dir(), &canary), Vec::<PathBuf>::new());

    // A backup made after the rotation restores, and its drill opens sealed rows.
    let id = age::x25519::Identity::generate();
    let ident = env.root().join("backup-identity.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&ident, format!("{}\n", id.to_string().expose_secret())).unwrap();
    }
    let with_recipient = |args: &[&str]| {
        env.command(args)
            .env(
                "AURA_BACKUP__RECIPIENTS",
                format!("[\"{}\"]", id.to_public()),
            )
            .output()
            .unwrap()
    };
    let out = ok(&with_recipient(&["backup", "run"]), "backup run");
    let backup = out.lines().last().unwrap().trim().to_owned();
    let restored = env.root().join("restored");
    ok(
        &env.cli(
            &[
                "restore",
                "--from",
                &backup,
                "--to",
                restored.to_str().unwrap(),
                "--identity",
                ident.to_str().unwrap(),
            ],
            None,
        ),
        "restore",
    );
    ok(
        &env.cli_at(&restored, &["audit", "verify"]),
        "audit verify of the restore",
    );
    ok(
        &env.cli(
            &[
                "backup",
                "verify",
                &backup,
                "--identity",
                ident.to_str().unwrap(),
            ],
            None,
        ),
        "restore drill (opens sealed rows)",
    );

    // The same rotation by the CLI with the server stopped, for its timing.
    // (The escrow at the backup target is rewritten: it needs the recipients.)
    let out = ok(
        &with_recipient(&["keys", "rotate", "--workspace", &ws]),
        "keys rotate",
    );
    println!("offline: {}", out.trim());
    assert_eq!(key_ids(&env, &ws), vec![3]);
}

#[tokio::test]
async fn cli_data_key_rotation_resumes_after_a_crash_at_each_step() {
    let env = Env::new();
    let ws = setup(&env);
    let canary = format!("clicanary{}", hex::encode(rand::random::<[u8; 6]>()));
    let w = signed_in(env.start(), &ws).await;
    let coll = seed(&w, &canary, 1200).await;
    w.server.stop();
    let mut want = 2u32;
    for step in ["key-added", "reseal-batch", "before-destroy"] {
        abort_at(&env, &["keys", "rotate", "--workspace", &ws], step);
        let w = signed_in(env.start(), &ws).await;
        assert_all(&all_records(&w, &coll).await, &canary, 1200);
        // The server resumes the rotation on its own.
        let t = Instant::now();
        loop {
            let (_, st) = send(w.c.get(w.url("/keys/rotation"))).await;
            if st["state"] == "finished" {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(300), "{step}: {st}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert_all(&all_records(&w, &coll).await, &canary, 1200);
        w.server.stop();
        assert_eq!(key_ids(&env, &ws), vec![want], "{step}");
        assert_eq!(values_under_other_keys(&env, &ws, want), 0, "{step}");
        want += 1;
    }
    // And run to its end by the CLI with the server stopped.
    let out = ok(
        &env.cli(&["keys", "rotate", "--workspace", &ws], None),
        "keys rotate",
    );
    assert!(out.contains("old key is destroyed"), "{out}");
    assert_eq!(key_ids(&env, &ws), vec![want]);
    ok(&env.cli(&["audit", "verify"], None), "audit verify");
    let status = ok(&env.cli(&["keys", "status"], None), "keys status");
    assert!(
        status.contains(&ws) && status.contains("old keys destroyed"),
        "{status}"
    );
}

/// The master key as a sealed systemd credential: `systemd-creds encrypt
/// --with-key=host` seals it (TPM2 works the same with `--with-key=tpm2`),
/// systemd decrypts it into `$CREDENTIALS_DIRECTORY` for the service only, and
/// Aura reads it there; no plaintext key file remains. Without a service
/// manager here, the test decrypts as systemd would (`systemd-creds decrypt`,
/// mode 0400) and starts the server with that directory.
#[tokio::test]
async fn sealed_master_key_credential_is_read_from_the_credentials_directory() {
    if std::process::Command::new("systemd-creds")
        .arg("--version")
        .output()
        .is_err()
    {
        println!("SKIPPED: systemd-creds is not installed (Debian: apt-get install systemd)");
        return;
    }
    if !Path::new("/var/lib/systemd/credential.secret").exists() {
        let out = std::process::Command::new("systemd-creds")
            .arg("setup")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "systemd-creds setup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let env = Env::new();
    let ws = setup(&env);
    let canary = format!("credcanary{}", hex::encode(rand::random::<[u8; 6]>()));
    let w = signed_in(env.start(), &ws).await;
    let coll = seed(&w, &canary, 20).await;
    w.server.stop();
    let cred = env.root().join("master.key.cred");
    let out = std::process::Command::new("systemd-creds")
        .args(["encrypt", "--with-key=host", "--name=master.key"])
        .arg(env.key_path())
        .arg(&cred)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "encrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sealed = std::fs::read(&cred).unwrap();
    let plain = std::fs::read(env.key_path()).unwrap();
    assert!(
        !sealed.windows(plain.len()).any(|w| w == plain.as_slice()),
        "the credential is sealed"
    );
    std::fs::remove_file(env.key_path()).unwrap();
    // What systemd does at start: decrypt into a private directory, 0400.
    let dir = env.root().join("credentials");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = std::process::Command::new("systemd-creds")
        .args(["decrypt", "--name=master.key"])
        .arg(&cred)
        .arg(dir.join("master.key"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decrypt: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::set_permissions(
        dir.join("master.key"),
        std::fs::Permissions::from_mode(0o400),
    )
    .unwrap();
    let server = env.start_with(&[("CREDENTIALS_DIRECTORY", dir.to_str().unwrap())]);
    let w = signed_in(server, &ws).await;
    assert_all(&all_records(&w, &coll).await, &canary, 20);
    w.server.stop();
    // A credential renamed to another name does not decrypt as master.key.
    let out = std::process::Command::new("systemd-creds")
        .args(["decrypt", "--name=other.key"])
        .arg(&cred)
        .arg(env.root().join("other"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "the credential is bound to its name");
}

/// Half way through a rotation some unique values have digests under the old
/// key and new ones under the new key: a duplicate must still be refused.
#[tokio::test]
async fn uniqueness_holds_while_a_rotation_is_half_done() {
    let env = Env::new();
    let ws = setup(&env);
    let canary = format!("uqcanary{}", hex::encode(rand::random::<[u8; 6]>()));
    let w = signed_in(env.start(), &ws).await;
    let coll = seed(&w, &canary, 50).await;
    w.server.stop();
    // The new key exists, nothing is re-sealed yet, and the job is held back.
    abort_at(&env, &["keys", "rotate", "--workspace", &ws], "key-added");
    assert_eq!(key_ids(&env, &ws), vec![1, 2]);
    let w = signed_in(
        env.start_with(&[("TEST_AURA_KEY_JOB_DELAY_SECS", "30")]),
        &ws,
    )
    .await;
    let create = |code: &str| {
        w.c.post(w.url(&format!("/collections/{coll}/records")))
            .json(&json!({"values": {"Code": code, "Name": "n"}}))
    };
    let (s, body) = send(create("C5")).await;
    assert_eq!(s, 422, "a value held under the old key's digest: {body}");
    assert_eq!(send(create("Z1")).await.0, 201);
    assert_eq!(send(create("Z1")).await.0, 422, "under the new key");
    let (_, st) = send(w.c.get(w.url("/keys/rotation"))).await;
    assert_eq!(st["state"], "running", "{st}");
    assert_all(&all_records(&w, &coll).await, &canary, 50);
}
