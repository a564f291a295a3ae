//! Faults an appliance meets in the field (issue 24, SECURITY.md az):
//! the data dir's disk or a backup target fills up (a small tmpfs here, see
//! `common::disk`), and files that leave the data dir (backups, exports, move
//! bundles) must be private whatever the umask. The log destination's faults
//! are in `faults_logs.rs`.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use age::secrecy::ExposeSecret;
use common::disk::{Mounted, SmallDisk, env_on_small_disk};
use common::{Env, PASSWORD, client, login};
use serde_json::{Value, json};

fn age_recipient(dir: &Path) -> (PathBuf, String) {
    let id = age::x25519::Identity::generate();
    let file = dir.join("backup-identity.txt");
    std::fs::write(&file, format!("{}\n", id.to_string().expose_secret())).unwrap();
    (file, id.to_public().to_string())
}

fn cli_with_backup(env: &Env, recipient: &str, args: &[&str]) -> std::process::Output {
    env.command(args)
        .env("AURA_BACKUP__RECIPIENTS", format!("[\"{recipient}\"]"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The last line of a command's stdout (`backup run` prints the id there).
fn last_line(out: &std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout);
    stdout.lines().last().unwrap_or_default().trim().to_owned()
}

async fn post_note(c: &reqwest::Client, records: &str, note: &str) -> reqwest::Response {
    c.post(records)
        .json(&json!({"values": {"Note": note}}))
        .send()
        .await
        .unwrap()
}

async fn id_of(r: reqwest::Response) -> String {
    r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
}

/// Issue 24, "disk full": writes answer 507 naming the cause, reads keep
/// working, nothing acknowledged is lost (kill -9 included), writes work
/// again once space is freed, the chains verify, and a backup that runs out
/// of space leaves the last good backup in place.
#[tokio::test]
async fn faults_1_disk_full_answers_507_and_loses_nothing() {
    let test = "faults_1_disk_full_answers_507_and_loses_nothing";
    let Some((env, disk)) = env_on_small_disk(48, test) else {
        return;
    };
    let (identity, recipient) = age_recipient(env.root());
    env.create_user("full@example.com", "Full");
    let ws = env.create_workspace("Full disk", "full@example.com");
    let first_backup = cli_with_backup(&env, &recipient, &["backup", "run"]);
    assert!(first_backup.status.success(), "{}", text(&first_backup));
    // Signing the audit chains every second: that background job meets the
    // full disk too, and must not take the server down.
    let server = env.start_with(&[("AURA_AUDIT__CHECKPOINT_INTERVAL_SECS", "1")]);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "full@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let api = |p: &str| server.url(&format!("/api/v1/workspaces/{ws}{p}"));
    let coll: Value = c
        .post(api("/collections"))
        .json(&json!({"name": "Ledger", "fields": [{"name": "Note", "type": "text"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let records = api(&format!(
        "/collections/{}/records",
        coll["id"].as_str().unwrap()
    ));
    let note = "n".repeat(900);
    let mut acked: Vec<String> = Vec::new();
    for _ in 0..5 {
        let r = post_note(&c, &records, &note).await;
        assert_eq!(r.status(), 201);
        acked.push(id_of(r).await);
    }

    let filler = disk.fill();
    let mut refused = None;
    for _ in 0..3000 {
        let r = post_note(&c, &records, &note).await;
        match r.status().as_u16() {
            201 => acked.push(id_of(r).await),
            507 => {
                refused = Some(r);
                break;
            }
            s => panic!(
                "a write on a full disk answered {s}: {}",
                r.text().await.unwrap()
            ),
        }
    }
    let r = refused.expect("the disk filled up, so some write must be refused");
    eprintln!("{} records acknowledged before the first 507", acked.len());
    assert_eq!(
        r.headers()["content-type"],
        "application/problem+json",
        "problem+json"
    );
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["type"], "urn:aura:problem:disk-full", "{p}");
    assert_eq!(p["status"], 507);
    assert!(
        p["detail"].as_str().unwrap().contains("disk is full"),
        "{p}"
    );
    // Other writes, on the platform's database too: 507, never 500.
    let other = client(&server);
    let r = login(&other, &server, "full@example.com", PASSWORD).await;
    assert!(
        r.status() == 507 || r.status() == 200,
        "sign-in on a full disk: {}",
        r.status()
    );
    let r = c
        .post(api("/teams"))
        .json(&json!({"name": "Not now"}))
        .send()
        .await
        .unwrap();
    assert!(
        r.status() == 507 || r.status() == 201,
        "team on a full disk: {}",
        r.status()
    );

    let started = std::time::Instant::now();
    while !String::from_utf8_lossy(&server.logs())
        .lines()
        .any(|l| l.contains("audit checkpoint") && l.contains("job failed"))
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the checkpoint job met the full disk"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }

    // Reads keep working.
    let me = c.get(server.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "GET /me on a full disk");
    for id in &acked {
        let r = c.get(format!("{records}/{id}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged record {id} readable");
    }
    let page = c.get(&records).send().await.unwrap();
    assert_eq!(page.status(), 200);
    for path in [
        "/workspaces".to_owned(),
        format!("/w/{ws}"),
        format!("/w/{ws}/audit"),
    ] {
        let r = c.get(server.url(&path)).send().await.unwrap();
        assert_eq!(r.status(), 200, "UI page {path} on a full disk");
    }

    // A backup that runs out of space fails cleanly and keeps the last good one.
    let out = cli_with_backup(&env, &recipient, &["backup", "run"]);
    assert!(!out.status.success(), "a backup cannot fit: {}", text(&out));
    eprintln!("backup on a full disk: {}", text(&out).trim());
    let backups: Vec<String> = std::fs::read_dir(env.data_dir().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert!(
        backups.iter().all(|n| !n.starts_with('.')),
        "no half-written backup left behind: {backups:?}"
    );
    assert_eq!(
        backups
            .iter()
            .filter(|n| n.ends_with(".tar.zst.age"))
            .count(),
        1,
        "the last good backup is still there: {backups:?}"
    );

    // Space freed: writes work again without a restart.
    std::fs::remove_file(&filler).unwrap();
    let r = post_note(&c, &records, &note).await;
    assert_eq!(r.status(), 201, "writes work again once space is freed");
    acked.push(id_of(r).await);
    let n_acked = acked.len();

    // Nothing acknowledged was lost, even across kill -9.
    server.kill9();
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "full@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let records = server.url(&format!(
        "/api/v1/workspaces/{ws}/collections/{}/records",
        coll["id"].as_str().unwrap()
    ));
    for id in &acked {
        let r = c.get(format!("{records}/{id}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged record {id} survived");
    }
    server.stop();
    let created = aura::store::audit::all_entries(&common::open_db(&env.tenant_db(&ws)))
        .unwrap()
        .iter()
        .filter(|e| e.action == "record.created")
        .count();
    assert_eq!(
        created, n_acked,
        "one audit entry per acknowledged record, no more"
    );

    let out = env.cli(&["audit", "verify"], None);
    assert!(out.status.success(), "chains verify: {}", text(&out));
    let out = cli_with_backup(&env, &recipient, &["backup", "run"]);
    assert!(out.status.success(), "backups work again: {}", text(&out));
    let id = last_line(&out);
    let out = env.cli(
        &[
            "backup",
            "verify",
            &id,
            "--identity",
            identity.to_str().unwrap(),
        ],
        None,
    );
    assert!(
        out.status.success(),
        "the new backup drills: {}",
        text(&out)
    );
    drop(disk);
}

/// Issue 24: a backup target that fills up. The archive's temporary file is
/// removed, the last good backup and the key escrow stay as they were, and
/// the next backup after space is freed works.
#[tokio::test]
async fn faults_1_a_full_backup_target_keeps_the_last_good_backup() {
    let test = "faults_1_a_full_backup_target_keeps_the_last_good_backup";
    let env = Env::new();
    let dir = env.root().join("backup-target");
    let disk = match SmallDisk::mount_or_rerun(&dir, 8, test) {
        Mounted::Here(d) => d,
        Mounted::RanInNamespace => return,
    };
    let (identity, recipient) = age_recipient(env.root());
    env.create_user("target@example.com", "Target");
    env.create_workspace("Target", "target@example.com");
    let targets = format!("[{{kind=\"local\", path=\"{}\"}}]", dir.display());
    let run = |args: &[&str]| {
        env.command(args)
            .env("AURA_BACKUP__TARGETS", &targets)
            .env("AURA_BACKUP__RECIPIENTS", format!("[\"{recipient}\"]"))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["backup", "run"]);
    assert!(out.status.success(), "{}", text(&out));
    let good: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().to_string(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    let filler = disk.fill();
    let out = run(&["backup", "run"]);
    assert!(!out.status.success(), "the target is full: {}", text(&out));
    assert!(
        text(&out).contains("disk is full") || text(&out).contains("No space left"),
        "says why: {}",
        text(&out)
    );
    for (name, bytes) in &good {
        assert_eq!(
            &std::fs::read(dir.join(name)).unwrap(),
            bytes,
            "{name} is untouched"
        );
    }
    let now: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != "filler")
        .collect();
    assert_eq!(now.len(), good.len(), "nothing half-written left: {now:?}");
    std::fs::remove_file(&filler).unwrap();
    let out = run(&["backup", "run"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = last_line(&out);
    let out = run(&[
        "backup",
        "verify",
        &id,
        "--identity",
        identity.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    drop(disk);
}

fn mode_of(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// An `aura` command that runs with umask 000, so only the code's own modes
/// count.
fn umask0(env: &Env, args: &[&str]) -> Command {
    use std::os::unix::process::CommandExt;
    let mut c = env.command(args);
    // SAFETY: umask(2) is async-signal-safe and touches only the child.
    unsafe {
        c.pre_exec(|| {
            nix::sys::stat::umask(nix::sys::stat::Mode::empty());
            Ok(())
        });
    }
    c
}

fn cli_umask0(env: &Env, recipient: &str, args: &[&str]) -> std::process::Output {
    umask0(env, args)
        .env("AURA_BACKUP__RECIPIENTS", format!("[\"{recipient}\"]"))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// Issue 24: backups (archive, metadata, key escrow), a restored data dir,
/// workspace and audit exports, and move bundles are mode 0600 even with
/// umask 000. Their temporary files are the same inodes renamed into place,
/// so the final mode is the temporary file's mode.
#[tokio::test]
async fn faults_1_backups_exports_and_bundles_are_private_whatever_the_umask() {
    let env = Env::new();
    let (identity, recipient) = age_recipient(env.root());
    env.create_user("modes@example.com", "Modes");
    let ws = env.create_workspace("Modes", "modes@example.com");

    let out = cli_umask0(&env, &recipient, &["backup", "run"]);
    assert!(out.status.success(), "{}", text(&out));
    let id = last_line(&out);
    let backups = env.data_dir().join("backups");
    for name in [
        format!("{id}.tar.zst.age"),
        format!("{id}.json"),
        "keys-latest.age".to_owned(),
    ] {
        assert_eq!(mode_of(&backups.join(&name)), 0o600, "backup file {name}");
    }

    let restored = env.root().join("restored");
    let out = cli_umask0(
        &env,
        &recipient,
        &[
            "restore",
            "--from",
            &id,
            "--to",
            restored.to_str().unwrap(),
            "--identity",
            identity.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        mode_of(&restored.join("control.db")),
        0o600,
        "restored control.db"
    );
    assert_eq!(
        mode_of(&restored.join("tenants").join(&ws).join("data.db")),
        0o600,
        "restored workspace"
    );

    // Each writes the file named after `--out`, which must come out 0600.
    let export = env.root().join("ws-export.tar.zst");
    let audit_export = env.root().join("audit.ndjson");
    let bundle = env.root().join("move.age");
    let cases: [(&str, &Path, Vec<&str>); 3] = [
        (
            "workspace export",
            &export,
            vec!["workspace", "export", &ws],
        ),
        (
            "audit export",
            &audit_export,
            vec!["audit", "export", "--workspace", &ws],
        ),
        (
            "move bundle",
            &bundle,
            vec!["workspace", "move-out", &ws, "--to-recipient", &recipient],
        ),
    ];
    for (what, file, mut args) in cases {
        args.extend(["--out", file.to_str().unwrap()]);
        let out = cli_umask0(&env, &recipient, &args);
        assert!(out.status.success(), "{what}: {}", text(&out));
        assert_eq!(mode_of(file), 0o600, "{what}");
    }
    // An export through the API: its spool file, written by the server.
    let server = common::Server::start(umask0(&env, &["serve", "--listen", "127.0.0.1:0"]));
    let c = client(&server);
    // The workspace moved out above is read-only, not gone: a new one exports.
    let ws2 = env.create_workspace("Modes two", "modes@example.com");
    assert_eq!(
        login(&c, &server, "modes@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let api = server.url(&format!("/api/v1/workspaces/{ws2}/exports"));
    let r = c.post(&api).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let job = id_of(r).await;
    let started = std::time::Instant::now();
    loop {
        let state: Value = c
            .get(format!("{api}/{job}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if state["state"] == "ready" {
            break;
        }
        assert_eq!(state["state"], "running", "{state}");
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let spool: Vec<PathBuf> = std::fs::read_dir(env.data_dir().join("exports"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(!spool.is_empty(), "the export is spooled");
    for p in &spool {
        assert_eq!(mode_of(p), 0o600, "export spool {}", p.display());
    }
    server.stop();

    let leftovers: Vec<String> = std::fs::read_dir(env.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.ends_with(".partial"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
