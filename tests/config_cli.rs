//! The operator's side: init, config errors, key file rules, doctor, and the
//! CLI working beside a running server.

mod common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Env, PASSWORD, client, login};
use sha2::{Digest, Sha256};

#[test]
fn init_creates_private_key_and_is_idempotent() {
    let env = Env::new();
    let mode = std::fs::metadata(env.key_path())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(std::fs::read(env.key_path()).unwrap().len(), 32);
    assert!(env.data_dir().join("control.db").exists());
    assert!(
        !env.key_path().starts_with(env.data_dir()),
        "key lives outside the data dir"
    );
    let config = std::fs::read_to_string(env.config_path()).unwrap();
    assert!(
        config.contains("[storage]") && config.contains("# "),
        "commented config"
    );

    let key_before = std::fs::read(env.key_path()).unwrap();
    let out = env.cli(&["init"], None);
    assert!(out.status.success());
    assert_eq!(
        std::fs::read(env.key_path()).unwrap(),
        key_before,
        "init never replaces a key"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("kept"));
}

#[test]
fn unknown_config_key_is_named_with_its_source() {
    let env = Env::new();
    let config = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace("session_idle_minutes = 60", "session_idle_minutez = 5");
    std::fs::write(env.config_path(), config).unwrap();
    let out = env.cli(&["doctor"], None);
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("auth.session_idle_minutez"), "{text}");
    assert!(
        text.contains(&env.config_path().display().to_string()),
        "{text}"
    );
    assert!(text.contains("FAIL"), "{text}");

    // Environment variables are checked the same way.
    let fixed = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace("session_idle_minutez = 5", "session_idle_minutes = 60");
    std::fs::write(env.config_path(), fixed).unwrap();
    let out = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("AURA_STORAGE__SYNCHRONOUZ", "full")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("storage.synchronouz"), "{err}");
    assert!(
        err.contains("AURA_"),
        "names the environment as the source: {err}"
    );
}

#[test]
fn group_readable_key_file_refuses_to_start() {
    let env = Env::new();
    std::fs::set_permissions(env.key_path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    let before = snapshot(&env.data_dir());
    let out = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("chmod 600"), "{err}");
    assert_eq!(snapshot(&env.data_dir()), before);
    let out = env.cli(&["doctor"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("FAIL  key"));
}

#[test]
fn wrong_master_key_refuses_and_changes_no_file() {
    let env = Env::new();
    env.create_user("ops@example.com", "Ops");
    env.create_workspace("Ledger", "ops@example.com");
    let before = snapshot(&env.data_dir());
    std::fs::write(env.key_path(), [9u8; 32]).unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["workspace", "list"][..],
    ] {
        let out = env.command(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} must refuse");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("master key does not match"), "{err}");
    }
    assert_eq!(
        snapshot(&env.data_dir()),
        before,
        "no file was created or changed"
    );
}

#[tokio::test]
async fn cli_works_beside_a_running_server() {
    let env = Env::new();
    let server = env.start();
    // While the server holds the databases open:
    env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Leads EU", "owner@example.com");
    let out = env.cli(&["workspace", "list"], None);
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(&ws) && listing.contains("Leads EU"),
        "{listing}"
    );

    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let me: serde_json::Value = common::get_json(&c, server.url("/api/v1/me")).await;
    assert_eq!(me["workspaces"][0]["id"], ws.as_str());

    // Bad CLI input is explained and changes nothing.
    let out = env.cli(
        &[
            "workspace",
            "create",
            "--name",
            "X",
            "--owner",
            "nobody@example.com",
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--owner"));
    let out = env.cli(
        &[
            "user",
            "create",
            "--email",
            "not-an-email",
            "--password-stdin",
        ],
        Some("short\n"),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--email") && err.contains("--password"),
        "{err}"
    );

    let out = env.cli(&["doctor"], None);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{report}");
    for check in [
        "config",
        "key",
        "data dir",
        "schema",
        "key check",
        "permissions",
        "disk",
        "unit",
        "tls",
    ] {
        assert!(report.contains(&format!("ok    {check}")), "{report}");
    }
    server.stop();
}

#[test]
fn version_prints() {
    let out = common::aura_command().arg("version").output().unwrap();
    assert!(out.status.success());
    let printed = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(printed.starts_with("aura "), "{printed}");
    assert!(
        printed.contains(&format!("(build {})", aura::BUILD_ID)),
        "{printed}"
    );
}

/// A binary built from other sources (another checkout sharing the target
/// dir, or a stale `TEST_AURA_BIN`) is refused with a message saying why.
#[test]
fn a_binary_from_other_sources_is_refused() {
    assert_eq!(common::check_build_id(common::BIN), Ok(()));
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("aura");
    std::fs::write(
        &other,
        "#!/bin/sh\necho 'aura 0.1.0 (build 0123456789abcdef)'\n",
    )
    .unwrap();
    std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o755)).unwrap();
    // Another test thread forking while the script was open for writing can
    // leave it briefly "busy" (ETXTBSY); that is not the answer looked for.
    let mut why = String::new();
    for _ in 0..50 {
        why = common::check_build_id(other.to_str().unwrap()).unwrap_err();
        if !why.contains("busy") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(why.contains("stale aura binary refused"), "{why}");
    assert!(why.contains(aura::BUILD_ID), "{why}");
}

#[tokio::test]
async fn dev_mode_needs_no_config_and_prints_sign_in() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("aura-dev");
    let mut cmd = common::aura_command();
    cmd.current_dir(dir.path())
        .args(["serve", "--dev", "--listen", "127.0.0.1:0"])
        .env_remove("AURA_CONFIG")
        .env_remove("AURA_DATA_DIR")
        .env_remove("AURA_MASTER_KEY");
    let server = common::Server::start(cmd);
    let logs = String::from_utf8_lossy(&server.logs()).to_string();
    assert!(logs.contains("DEV MODE"), "loud warning: {logs}");
    let email = field(&logs, "Email");
    let password = field(&logs, "Password");
    assert!(data.join("dev-master.key").exists());
    let c = client(&server);
    assert_eq!(login(&c, &server, &email, &password).await.status(), 200);
    let me: serde_json::Value = common::get_json(&c, server.url("/api/v1/me")).await;
    assert_eq!(me["workspaces"][0]["name"], "Demo workspace");

    // Mail goes to the dev outbox: an invitation's link is there to follow.
    let ws = me["workspaces"][0]["id"].as_str().unwrap().to_owned();
    let r = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/invitations")))
        .json(&serde_json::json!({"email": "guest@example.com", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let outbox = std::fs::read_to_string(data.join("dev-outbox.txt")).unwrap();
    assert!(outbox.contains("To: guest@example.com"), "{outbox}");
    assert!(outbox.contains("/invite/"), "{outbox}");

    // The CLI pointed at the dev data dir uses the dev key too.
    let out = common::aura_command()
        .args(["workspace", "list", "--data-dir"])
        .arg(&data)
        .env_remove("AURA_CONFIG")
        .env_remove("AURA_DATA_DIR")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Demo workspace"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEV MODE"));

    // Backups work with no config: a dev age identity is generated and used.
    let dev_cli = |args: &[&str]| {
        common::aura_command()
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .env_remove("AURA_CONFIG")
            .env_remove("AURA_DATA_DIR")
            .output()
            .unwrap()
    };
    let out = dev_cli(&["backup", "run"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(data.join("dev-backup-identity.txt").exists());
    let out = dev_cli(&["backup", "verify"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    server.stop();
}

fn field(logs: &str, name: &str) -> String {
    logs.lines()
        .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_owned()))
        .unwrap_or_else(|| panic!("no {name} line in {logs}"))
}

/// Every file under `dir` with its SHA-256.
fn snapshot(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let h = Sha256::digest(std::fs::read(&p).unwrap());
                out.insert(p.display().to_string(), hex::encode(h));
            }
        }
    }
    out
}

/// Finding 16 of issue 18: `aura init --dev --data-dir DIR` ignored `--dev`
/// and wrote `/etc/aura/aura.toml` and `/etc/aura/master.key`, which every
/// later command then picked up. In dev mode nothing is written outside the
/// data dir: `init --dev` initialises the dev data dir (its dev key inside
/// it, control.db) and says that `serve --dev` needs no init. The test runs
/// the binary with its home and working dir in a temp dir and checks that
/// `/etc/aura` is exactly as before (whether or not it exists on this
/// machine; if this run created it, it is removed again).
#[tokio::test]
async fn init_dev_writes_nothing_outside_its_data_dir() {
    let etc = Path::new("/etc/aura");
    let before = etc.exists().then(|| snapshot(etc));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let data = dir.path().join("dev-data");
    let run = |args: &[&str]| {
        common::aura_command()
            .current_dir(dir.path())
            .args(args)
            .arg("--data-dir")
            .arg(&data)
            .env("HOME", &home)
            .env_remove("AURA_CONFIG")
            .env_remove("AURA_DATA_DIR")
            .env_remove("AURA_MASTER_KEY")
            .env_remove("AURA_MASTER_KEY_FILE")
            .env_remove("CREDENTIALS_DIRECTORY")
            .output()
            .unwrap()
    };
    let out = run(&["init", "--dev"]);
    let after = etc.exists().then(|| snapshot(etc));
    if before.is_none() && after.is_some() {
        std::fs::remove_dir_all(etc).unwrap();
    }
    assert_eq!(after, before, "init --dev left /etc/aura as it was");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("serve --dev"), "{text}");
    assert!(data.join("dev-master.key").exists(), "{text}");
    assert!(data.join("control.db").exists(), "{text}");
    // Nothing beside the data dir: no config in the working dir, nothing in HOME.
    let beside: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        {
            let mut b = beside;
            b.sort();
            b
        },
        vec!["dev-data".to_owned(), "home".to_owned()]
    );
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0);

    // The dev data dir works with the dev key, and a second init keeps it.
    let key = std::fs::read(data.join("dev-master.key")).unwrap();
    let out = run(&["init", "--dev"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(data.join("dev-master.key")).unwrap(), key);
    let out = run(&["--dev", "workspace", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // `serve --dev` on it, started and stopped: still nothing outside.
    let mut cmd = common::aura_command();
    cmd.current_dir(dir.path())
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env("HOME", &home)
        .env_remove("AURA_CONFIG")
        .env_remove("AURA_DATA_DIR")
        .env_remove("AURA_MASTER_KEY")
        .env_remove("AURA_MASTER_KEY_FILE")
        .env_remove("CREDENTIALS_DIRECTORY");
    let server = common::Server::start(cmd);
    let r = client(&server)
        .get(server.url("/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop();
    assert_eq!(etc.exists().then(|| snapshot(etc)), before);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    assert_eq!(std::fs::read_dir(&home).unwrap().count(), 0);
}

/// The harness passes on no `AURA_*` variable of whoever runs the tests (run
/// with e.g. `AURA_STORAGE__SYNCHRONOUS=off` exported to see it matter): each
/// one is removed from every command, so no server under test inherits it.
#[tokio::test]
async fn the_harness_passes_on_no_aura_variable_of_the_caller() {
    let cmd = common::aura_command();
    let removed: Vec<String> = cmd
        .get_envs()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.to_string_lossy().to_string())
        .collect();
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().to_string();
        if key.starts_with("AURA_") {
            assert!(removed.contains(&key), "{key} reaches the server");
        }
    }
    // And a server started with a bad value exported would not start at all:
    // the real check is that one does (every other test file starts servers).
    let env = Env::new();
    let server = env.start();
    let r = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    server.stop();
}
