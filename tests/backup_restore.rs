//! Backups: encrypted to age recipients, checked by a restore drill, restored
//! into a new data dir that then serves; tampering rejected with the live
//! data untouched; readable with the real `age` CLI; no canary inside.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use age::secrecy::ExposeSecret;
use common::{Env, PASSWORD, client, login, open_db};

struct Keys {
    identity_file: PathBuf,
    recipient: String,
}

fn age_keys(dir: &Path, name: &str) -> Keys {
    let id = age::x25519::Identity::generate();
    let identity_file = dir.join(format!("{name}.txt"));
    std::fs::write(
        &identity_file,
        format!("{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    Keys {
        identity_file,
        recipient: id.to_public().to_string(),
    }
}

fn with_recipient(env: &Env, keys: &Keys, args: &[&str]) -> std::process::Output {
    env.command(args)
        .env(
            "AURA_BACKUP__RECIPIENTS",
            format!("[\"{}\"]", keys.recipient),
        )
        .output()
        .unwrap()
}

fn backup_run(env: &Env, keys: &Keys) -> String {
    let out = with_recipient(env, keys, &["backup", "run"]);
    assert!(
        out.status.success(),
        "backup run: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned()
}

fn tenant_files(env: &Env) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(env.data_dir().join("tenants")).unwrap() {
        let p = e.unwrap().path().join("data.db");
        out.push((p.clone(), std::fs::read(&p).unwrap()));
    }
    out.sort();
    out
}

#[tokio::test]
async fn round_trip_restores_three_workspaces_that_serve_and_verify() {
    let env = Env::new();
    let keys = age_keys(env.root(), "backup-identity");
    let mut wss = Vec::new();
    for i in 0..3 {
        let email = format!("owner{i}@example.com");
        env.create_user(&email, &format!("Owner {i}"));
        wss.push(env.create_workspace(&format!("Company {i}"), &email));
    }
    let server = env.start();
    for (i, ws) in wss.iter().enumerate() {
        let c = client(&server);
        assert_eq!(
            login(&c, &server, &format!("owner{i}@example.com"), PASSWORD)
                .await
                .status(),
            200
        );
        let r = c
            .put(server.url(&format!("/api/v1/workspaces/{ws}/audit/settings")))
            .json(&serde_json::json!({ "retention_days": 100 + i }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    // Taken while the server runs.
    let id = backup_run(&env, &keys);
    assert!(id.starts_with("b-"), "{id}");
    let list = String::from_utf8_lossy(&env.cli(&["backup", "list"], None).stdout).to_string();
    assert!(list.contains(&id), "{list}");
    server.stop();

    let out = env.cli(
        &[
            "backup",
            "verify",
            &id,
            "--identity",
            keys.identity_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "drill: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("ok    drill"));

    // Restore the whole appliance into a fresh dir and run it.
    let restored = env.root().join("restored");
    let out = env.cli(
        &[
            "restore",
            "--from",
            &id,
            "--to",
            restored.to_str().unwrap(),
            "--identity",
            keys.identity_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Per-table row counts of every workspace are equal (the restore adds only
    // its own platform audit entry).
    for ws in &wss {
        let a = aura::backup::archive::table_counts(&env.tenant_db(ws)).unwrap();
        let b =
            aura::backup::archive::table_counts(&restored.join("tenants").join(ws).join("data.db"))
                .unwrap();
        assert_eq!(a, b, "{ws}");
    }
    let out = env.cli_at(&restored, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let mut cmd = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.arg("--data-dir").arg(&restored);
    let server = common::Server::start(cmd);
    for (i, ws) in wss.iter().enumerate() {
        let c = client(&server);
        assert_eq!(
            login(&c, &server, &format!("owner{i}@example.com"), PASSWORD)
                .await
                .status(),
            200,
            "sign in after restore"
        );
        let me: serde_json::Value = common::get_json(&c, server.url("/api/v1/me")).await;
        assert_eq!(me["workspaces"][0]["name"], format!("Company {i}"));
        let page: serde_json::Value = common::get_json(
            &c,
            server.url(&format!(
                "/api/v1/workspaces/{ws}/audit?action=audit.retention_changed"
            )),
        )
        .await;
        assert_eq!(
            page["items"][0]["after"]["retention_days"],
            100 + i as i64,
            "decrypted data equal"
        );
    }
    server.stop();

    // The standard age CLI opens the archive with the identity: no Aura needed.
    let archive = env
        .data_dir()
        .join("backups")
        .join(format!("{id}.tar.zst.age"));
    let listing = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "age -d -i {} {} | zstd -dc | tar -t",
            keys.identity_file.display(),
            archive.display()
        ))
        .output()
        .expect("age, zstd and tar are installed by scripts/test");
    let names = String::from_utf8_lossy(&listing.stdout);
    assert!(
        listing.status.success(),
        "{}",
        String::from_utf8_lossy(&listing.stderr)
    );
    assert!(
        names.contains("manifest.json") && names.contains("control.db"),
        "{names}"
    );
    assert_eq!(names.matches("/data.db").count(), 3, "{names}");

    // Archives hold no wrapped workspace key: those live only in the escrow.
    let scratch = env.root().join("peek");
    aura::backup::archive::unpack(
        &archive,
        &aura::backup::read_identity(&keys.identity_file).unwrap(),
        &scratch,
        Some(&id),
    )
    .unwrap();
    let n: i64 = open_db(&scratch.join("control.db"))
        .query_row("SELECT count(*) FROM workspace_keys", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn tampered_or_misused_backups_are_rejected_and_live_data_is_untouched() {
    let env = Env::new();
    let keys = age_keys(env.root(), "id");
    let other = age_keys(env.root(), "other");
    env.create_user("a@example.com", "A");
    env.create_workspace("Alpha", "a@example.com");
    env.create_workspace("Beta", "a@example.com");
    let first = backup_run(&env, &keys);
    let id = backup_run(&env, &keys);
    let dir = env.data_dir().join("backups");
    let archive = dir.join(format!("{id}.tar.zst.age"));
    let pristine = std::fs::read(&archive).unwrap();
    let live = tenant_files(&env);
    let ident = keys.identity_file.to_str().unwrap().to_owned();

    let verify = |identity: &str| {
        let out = env.cli(&["backup", "verify", &id, "--identity", identity], None);
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string()
                + &String::from_utf8_lossy(&out.stderr),
        )
    };
    assert!(verify(&ident).0, "the pristine backup passes");

    let len = pristine.len();
    let flip = |at: usize| {
        let mut b = pristine.clone();
        b[at] ^= 1;
        b
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("flipped header byte", flip(30)),
        ("flipped body byte", flip(len / 2)),
        ("truncated", pristine[..len - 100].to_vec()),
        (
            "swapped file",
            std::fs::read(dir.join(format!("{first}.tar.zst.age"))).unwrap(),
        ),
    ];
    for (case, bytes) in cases {
        std::fs::write(&archive, bytes).unwrap();
        let (ok, text) = verify(&ident);
        assert!(!ok, "{case} must be rejected:\n{text}");
        assert!(
            text.contains("FAIL") && text.contains("step failed"),
            "{case}: clear error:\n{text}"
        );
        if case == "swapped file" {
            assert!(text.contains("swapped"), "{text}");
        }
        failed_restore_leaves_nothing(&env, &id, &ident, case);
    }
    std::fs::write(&archive, &pristine).unwrap();

    // The wrong age identity.
    let (ok, text) = verify(other.identity_file.to_str().unwrap());
    assert!(
        !ok && text.contains("does not decrypt with this identity"),
        "{text}"
    );

    // A forged archive re-encrypted to the (public) recipient with a changed
    // manifest: caught by the manifest's SHA-256s.
    let work = env.root().join("forge");
    let id_key = aura::backup::read_identity(&keys.identity_file).unwrap();
    let mut manifest = aura::backup::archive::unpack(&archive, &id_key, &work, Some(&id)).unwrap();
    manifest.files[0].sha256 = "00".repeat(32);
    std::fs::write(
        work.join("manifest.json"),
        serde_json::to_vec(&manifest).unwrap(),
    )
    .unwrap();
    let forged = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "cd {} && tar -c manifest.json control.db tenants | zstd -q -c | age -r {} > {}",
            work.display(),
            keys.recipient,
            archive.display()
        ))
        .status()
        .unwrap();
    assert!(forged.success());
    let (ok, text) = verify(&ident);
    assert!(!ok && text.contains("SHA-256"), "{text}");
    std::fs::write(&archive, &pristine).unwrap();

    // The wrong workspace key: an escrow whose keys were swapped between workspaces.
    let escrow_path = dir.join("keys-latest.age");
    let escrow_orig = std::fs::read(&escrow_path).unwrap();
    let mut escrow = aura::backup::archive::read_escrow(&escrow_path, &id_key).unwrap();
    let (a, b) = (
        escrow.keys[0].wrapped_hex.clone(),
        escrow.keys[1].wrapped_hex.clone(),
    );
    escrow.keys[0].wrapped_hex = b;
    escrow.keys[1].wrapped_hex = a;
    let plain = env.root().join("escrow.json");
    std::fs::write(&plain, serde_json::to_vec(&escrow).unwrap()).unwrap();
    let st = Command::new("age")
        .args([
            "-r",
            &keys.recipient,
            "-o",
            escrow_path.to_str().unwrap(),
            plain.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    let (ok, text) = verify(&ident);
    assert!(!ok && text.contains("sealed rows"), "{text}");
    std::fs::write(&escrow_path, escrow_orig).unwrap();
    assert!(verify(&ident).0, "restored files pass again");

    assert_eq!(
        tenant_files(&env),
        live,
        "the live workspace data was never touched"
    );
    let drills: i64 = open_db(&env.data_dir().join("control.db"))
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'backup.drill'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(drills >= 8, "every drill is in the platform audit log");
}

/// Issue 24: a rejected archive leaves the restore's target as it was (absent,
/// or an empty dir made for it), with no staging dir beside it: no
/// control.db, manifest.json or tenants/ half-written.
fn failed_restore_leaves_nothing(env: &Env, id: &str, identity: &str, case: &str) {
    let parent = env.root().join("restore-targets");
    std::fs::create_dir_all(&parent).unwrap();
    let absent = parent.join("absent");
    let empty = parent.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    for to in [&absent, &empty] {
        let out = env.cli(
            &[
                "restore",
                "--from",
                id,
                "--to",
                to.to_str().unwrap(),
                "--identity",
                identity,
            ],
            None,
        );
        assert!(!out.status.success(), "{case}: restore must refuse");
    }
    assert!(!absent.exists(), "{case}: the absent target stays absent");
    let left: Vec<String> = std::fs::read_dir(&empty)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(left.is_empty(), "{case}: left in the target: {left:?}");
    let beside: Vec<String> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "empty")
        .collect();
    assert!(
        beside.is_empty(),
        "{case}: left beside the target: {beside:?}"
    );
}

#[tokio::test]
async fn backups_hold_no_canary_and_residency_refuses_foreign_targets() {
    let env = Env::new();
    let keys = age_keys(env.root(), "id");
    let canary = format!("cnrybackup{}", uuid::Uuid::now_v7().simple());
    env.create_user(&format!("{canary}@example.com"), &canary);
    env.create_workspace(&canary, &format!("{canary}@example.com"));
    backup_run(&env, &keys);
    for e in std::fs::read_dir(env.data_dir().join("backups")).unwrap() {
        let p = e.unwrap().path();
        if p.is_file() {
            let bytes = std::fs::read(&p).unwrap();
            assert!(
                !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                "{} holds the canary",
                p.display()
            );
            assert!(
                !bytes.windows(10).any(|w| w == &canary.as_bytes()[..10]),
                "{}",
                p.display()
            );
        }
    }
    let out = env
        .command(&["backup", "list"])
        .env("AURA_RESIDENCY", "EU")
        .env(
            "AURA_BACKUP__TARGETS",
            "[{kind=\"local\", path=\"/tmp/x\", region=\"US\"}]",
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("outside this appliance's residency `EU`"),
        "{err}"
    );
}

/// Row s: with `residency` set, `aura serve` itself refuses to start when a
/// backup target (local or S3, its own region or the appliance's) lies
/// outside the region: it exits with the clear error and never listens.
/// A target inside the region starts normally.
#[tokio::test]
async fn residency_refuses_a_foreign_backup_target_at_serve_start() {
    let env = Env::new();
    let foreign = [
        (
            "[{kind=\"local\", path=\"/tmp/x\", region=\"US\"}]",
            "",
            "(Local /tmp/x) is in region `US`",
        ),
        (
            "[{kind=\"s3\", bucket=\"b\", endpoint=\"https://s3.us.example\", region=\"us\"}]",
            "",
            "(S3 b) is in region `us`",
        ),
        // No region on the target: the appliance's own region counts.
        (
            "[{kind=\"local\", path=\"/tmp/x\"}]",
            "IN",
            "(Local /tmp/x) is in region `IN`",
        ),
    ];
    for (targets, region, names) in foreign {
        let mut cmd = env.command(&["serve", "--listen", "127.0.0.1:0"]);
        if !region.is_empty() {
            cmd.env("AURA_REGION", region);
        }
        let mut child = cmd
            .env("AURA_RESIDENCY", "EU")
            .env("AURA_BACKUP__TARGETS", targets)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while child.try_wait().unwrap().is_none() {
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("`aura serve` started with a target outside the residency: {targets}");
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{targets}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(names) && err.contains("outside this appliance's residency `EU`"),
            "{targets}: {err}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(!stdout.contains("\"listening\""), "{stdout}");
    }
    // Inside the region (any case), it serves.
    let server = env.start_with(&[
        ("AURA_RESIDENCY", "EU"),
        (
            "AURA_BACKUP__TARGETS",
            "[{kind=\"local\", path=\"/tmp/x\", region=\"eu\"}]",
        ),
    ]);
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    server.stop();
}

/// One workspace restored in place while the server runs and another
/// workspace keeps writing: the other's writes all land, the restored one is
/// back at the backup's state, and every chain still verifies.
#[tokio::test]
async fn one_workspace_restores_in_place_while_others_keep_writing() {
    let env = Env::new();
    let keys = age_keys(env.root(), "id");
    env.create_user("a@example.com", "A");
    env.create_user("b@example.com", "B");
    let wa = env.create_workspace("Restored Co", "a@example.com");
    let wb = env.create_workspace("Busy Co", "b@example.com");
    let server = env.start();
    let ca = client(&server);
    let cb = client(&server);
    assert_eq!(
        login(&ca, &server, "a@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(
        login(&cb, &server, "b@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let set = |c: &reqwest::Client, ws: &str, days: i64| {
        c.put(server.url(&format!("/api/v1/workspaces/{ws}/audit/settings")))
            .json(&serde_json::json!({ "retention_days": days }))
            .send()
    };
    assert_eq!(set(&ca, &wa, 50).await.unwrap().status(), 200);
    let id = backup_run(&env, &keys);
    assert_eq!(
        set(&ca, &wa, 77).await.unwrap().status(),
        200,
        "a change after the backup"
    );

    // B writes throughout the restore of A.
    let writer = {
        let cb = cb.clone();
        let url = server.url(&format!("/api/v1/workspaces/{wb}/audit/settings"));
        tokio::spawn(async move {
            let mut ok = 0;
            for d in 100..140 {
                let r = cb
                    .put(&url)
                    .json(&serde_json::json!({ "retention_days": d }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                ok += 1;
            }
            ok
        })
    };
    let out = with_recipient(
        &env,
        &keys,
        &[
            "restore",
            "--from",
            &id,
            "--workspace",
            &wa,
            "--identity",
            keys.identity_file.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        writer.await.unwrap(),
        40,
        "every write to the other workspace landed"
    );

    let page: serde_json::Value = common::get_json(
        &ca,
        server.url(&format!(
            "/api/v1/workspaces/{wa}/audit?action=audit.retention_changed"
        )),
    )
    .await;
    assert_eq!(
        page["items"][0]["after"]["retention_days"], 50,
        "back at the backup: {page}"
    );
    let page: serde_json::Value = common::get_json(
        &ca,
        server.url(&format!("/api/v1/workspaces/{wa}/audit?q=restored")),
    )
    .await;
    assert_eq!(
        page["items"][0]["action"], "backup.restored",
        "the restore is in the workspace's own chain"
    );
    let page: serde_json::Value = common::get_json(
        &cb,
        server.url(&format!(
            "/api/v1/workspaces/{wb}/audit?action=audit.retention_changed&limit=1"
        )),
    )
    .await;
    assert_eq!(page["items"][0]["after"]["retention_days"], 139);
    server.stop();
    let out = env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The platform's backups page: run now and drill now from the UI, with the
/// results shown and recorded.
#[tokio::test]
async fn backups_page_runs_a_backup_and_a_drill() {
    let env = Env::new();
    let keys = age_keys(env.root(), "id");
    let out = env.cli(
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success());
    env.create_workspace("Paged", "ops@example.com");
    let server = env.start_with(&[
        (
            "AURA_BACKUP__RECIPIENTS",
            &format!("[\"{}\"]", keys.recipient),
        ),
        (
            "AURA_BACKUP__DRILL_IDENTITY_FILE",
            keys.identity_file.to_str().unwrap(),
        ),
        ("AURA_METRICS__BEARER_TOKEN", "scrape-secret-123"),
    ]);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "ops@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let page = common::get_text(&c, server.url("/platform/backups")).await;
    assert!(page.contains("No backups yet"), "{page}");
    let token = common::csrf_from(&page);
    let r = c
        .post(server.url("/platform/backups/run"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let r = c
        .post(server.url("/platform/backups/drill"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = common::get_text(&c, server.url("/platform/backups")).await;
    assert!(page.contains("Last restore drill passed"), "{page}");
    assert_eq!(
        page.matches("<code>b-").count(),
        1,
        "one backup listed: {page}"
    );

    // Results also reach metrics, which only the configured bearer token reads.
    let anon = reqwest::Client::new();
    assert_eq!(
        anon.get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    // A wrong token, or the right one as a prefix, is no better (row t).
    for wrong in [
        "scrape-secret-12",
        "scrape-secret-1234",
        "SCRAPE-SECRET-123",
    ] {
        let r = anon
            .get(server.url("/metrics"))
            .bearer_auth(wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{wrong}");
    }
    let m = anon
        .get(server.url("/metrics"))
        .bearer_auth("scrape-secret-123")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("aura_backup_last_success_timestamp_seconds"),
        "{m}"
    );
    assert!(m.contains("aura_backup_drill_last_ok 1"), "{m}");
    assert!(
        m.contains(
            "aura_http_requests_total{method=\"GET\",route=\"/platform/backups\",status=\"2xx\"}"
        ),
        "{m}"
    );
    assert!(m.contains("aura_http_request_duration_seconds_bucket{method=\"POST\",route=\"/api/v1/auth/login\",le=\"+Inf\"} 1"), "{m}");
    assert!(m.contains("aura_db_write_waiters{db=\"control\"}"), "{m}");
    assert_eq!(
        m.matches("aura_audit_chain_head_seq{scope=").count(),
        2,
        "platform and the workspace: {m}"
    );
    server.stop();
}

/// A backup taken under concurrent writes restores to a consistent state.
#[tokio::test]
async fn backup_under_write_load_restores_consistently() {
    let env = Env::new();
    let keys = age_keys(env.root(), "id");
    env.create_user("w@example.com", "W");
    let ws = env.create_workspace("Loaded", "w@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "w@example.com", PASSWORD).await.status(),
        200
    );
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (c, stop) = (c.clone(), stop.clone());
        let url = server.url(&format!("/api/v1/workspaces/{ws}/audit/settings"));
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) && n < 2000 {
                let r = c
                    .put(&url)
                    .json(&serde_json::json!({ "retention_days": 30 + (n % 300) }))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                n += 1;
            }
            n
        })
    };
    let id = tokio::task::spawn_blocking({
        let env_cmd = env.command(&["backup", "run"]);
        let recipient = keys.recipient.clone();
        move || {
            let mut cmd = env_cmd;
            let out = cmd
                .env("AURA_BACKUP__RECIPIENTS", format!("[\"{recipient}\"]"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .last()
                .unwrap()
                .trim()
                .to_owned()
        }
    })
    .await
    .unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let writes = writer.await.unwrap();
    assert!(writes > 0);
    server.stop();
    let restored = env.root().join("restored");
    let out = env.cli(
        &[
            "restore",
            "--from",
            &id,
            "--to",
            restored.to_str().unwrap(),
            "--identity",
            keys.identity_file.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.cli_at(&restored, &["audit", "verify"]);
    assert!(
        out.status.success(),
        "consistent chains: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// An S3-compatible target on loopback (moto's server from PyPI): the backup
/// is uploaded, and a drill with the local copy gone fetches it back.
#[tokio::test]
async fn s3_target_uploads_and_a_drill_fetches_back() {
    let env = Env::new();
    let keys = age_keys(env.root(), "id");
    env.create_user("s3@example.com", "S3");
    env.create_workspace("Bucketed", "s3@example.com");
    // moto binds port 0 itself and prints the port it got (on stderr).
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]);
    let (mut moto, port) = common::spawn_reporting_port(cmd, false, "Running on http://127.0.0.1:");
    let endpoint = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while http.get(&endpoint).send().await.is_err() {
        assert!(std::time::Instant::now() < deadline, "moto did not start");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        http.put(format!("{endpoint}/aura-backups"))
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    let targets = format!(
        "[{{kind=\"s3\", bucket=\"aura-backups\", endpoint=\"{endpoint}\", region=\"EU\"}}]"
    );
    let run = |args: &[&str]| {
        env.command(args)
            .env("AURA_RESIDENCY", "EU")
            .env("AURA_REGION", "EU")
            .env("AURA_BACKUP__TARGETS", &targets)
            .env(
                "AURA_BACKUP__RECIPIENTS",
                format!("[\"{}\"]", keys.recipient),
            )
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .output()
            .unwrap()
    };
    let out = run(&["backup", "run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let listing = common::get_text(&http, format!("{endpoint}/aura-backups?list-type=2")).await;
    assert!(
        listing.contains(&format!("{id}.tar.zst.age")) && listing.contains("keys-latest.age"),
        "{listing}"
    );

    std::fs::remove_file(
        env.data_dir()
            .join("backups")
            .join(format!("{id}.tar.zst.age")),
    )
    .unwrap();
    let out = run(&[
        "backup",
        "verify",
        &id,
        "--identity",
        keys.identity_file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // The same bucket tagged as another region is refused under EU residency.
    let out = env
        .command(&["backup", "run"])
        .env("AURA_RESIDENCY", "EU")
        .env(
            "AURA_BACKUP__TARGETS",
            format!(
                "[{{kind=\"s3\", bucket=\"aura-backups\", endpoint=\"{endpoint}\", region=\"US\"}}]"
            ),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("outside this appliance's residency"));
    let _ = moto.kill();
    let _ = moto.wait();
}

#[tokio::test]
async fn prune_keeps_the_newest_and_identity_can_come_from_stdin() {
    let env = Env::new();
    let keys = age_keys(env.root(), "id");
    env.create_user("p@example.com", "P");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(backup_run(&env, &keys));
    }
    // Same day: keep_daily keeps one per day, so only the newest stays.
    let out = env
        .command(&["backup", "prune"])
        .env("AURA_BACKUP__KEEP_WEEKLY", "0")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let list = String::from_utf8_lossy(&env.cli(&["backup", "list"], None).stdout).to_string();
    assert!(
        list.contains(&ids[2]) && !list.contains(&ids[0]) && !list.contains(&ids[1]),
        "{list}"
    );
    let identity = std::fs::read_to_string(&keys.identity_file).unwrap();
    let out = env.cli(&["backup", "verify", "--identity", "-"], Some(&identity));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// Finding 14: the restore drill checks the live chains against the newest
/// backup's anchor, so checkpoints deleted from control.db after that backup
/// (to hide a rewrite) fail the drill at once, with step `audit anchor`.
#[tokio::test]
async fn finding_14_the_drill_checks_live_chains_against_the_newest_backup() {
    let env = Env::new();
    let keys = age_keys(env.root(), "backup-identity");
    env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Anchored Ltd", "owner@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = c
        .put(server.url(&format!("/api/v1/workspaces/{ws}/audit/settings")))
        .json(&serde_json::json!({ "retention_days": 99 }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop();
    let id = backup_run(&env, &keys);
    let identity = keys.identity_file.to_str().unwrap();
    let drill = |env: &Env| {
        with_recipient(
            env,
            &keys,
            &["backup", "verify", &id, "--identity", identity],
        )
    };
    let out = drill(&env);
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(out.status.success(), "{}", text(&out));

    let control = rusqlite::Connection::open(env.data_dir().join("control.db")).unwrap();
    control
        .execute("DELETE FROM audit_checkpoints WHERE scope = ?1", [&ws])
        .unwrap();
    drop(control);
    let out = drill(&env);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("audit anchor step failed") && text(&out).contains(&ws),
        "{}",
        text(&out)
    );
}
