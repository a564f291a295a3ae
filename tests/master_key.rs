//! SECURITY.md row c, checked as worded: where the master key lives in
//! production (outside the data dir, or a systemd credential), and which key
//! file modes make Aura refuse to start (anything group or others may use),
//! for the key file and for the credential alike, changing no file.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::Env;

/// Whether `aura doctor` opened the master key (it loads it as `serve` does).
fn doctor(env: &Env, credentials: Option<&Path>) -> (bool, String) {
    let mut c = env.command(&["doctor"]);
    if let Some(dir) = credentials {
        c.env("CREDENTIALS_DIRECTORY", dir);
    }
    let out = c.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let ok = text.lines().any(|l| l.starts_with("ok    key "));
    let failed = text.lines().any(|l| l.starts_with("FAIL  key "));
    assert!(ok != failed, "doctor printed no key line:\n{text}");
    (ok, text)
}

fn serve_refuses(env: &Env, credentials: Option<&Path>) -> String {
    let mut c = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    if let Some(dir) = credentials {
        c.env("CREDENTIALS_DIRECTORY", dir);
    }
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    // A refusal exits at once; a server that started is stopped and fails.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("serve started");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "serve exited cleanly");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The server answers (and so had the key), then stops cleanly.
async fn serves(server: common::Server) {
    let r = reqwest::get(server.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200);
    server.stop();
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Every file under a directory with its bytes, to see that nothing changed.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Modes that let only the owner in start; any bit for group or others
/// (read, write or execute) refuses, before a byte is read and with no file
/// created or changed.
#[tokio::test]
async fn row_c_key_file_modes_owner_only_start_anything_looser_refuses() {
    let env = Env::new();
    let key = env.key_path();
    for mode in [0o600, 0o400, 0o700, 0o200] {
        chmod(&key, mode);
        let (ok, text) = doctor(&env, None);
        assert!(ok, "mode {mode:04o} should be accepted:\n{text}");
    }
    chmod(&key, 0o400);
    serves(env.start()).await;

    let before = files(&env.data_dir());
    for mode in [
        0o640, 0o604, 0o644, 0o660, 0o606, 0o620, 0o602, 0o610, 0o601, 0o440, 0o404, 0o666,
    ] {
        chmod(&key, mode);
        let err = serve_refuses(&env, None);
        assert!(err.contains("chmod 600"), "mode {mode:04o}: {err}");
        assert!(
            err.contains(&format!("{mode:04o}")),
            "mode {mode:04o}: {err}"
        );
    }
    assert_eq!(files(&env.data_dir()), before, "a refusal changed a file");
    for mode in [0o640, 0o604, 0o440] {
        chmod(&key, mode);
        let (ok, text) = doctor(&env, None);
        assert!(!ok, "doctor passed mode {mode:04o}:\n{text}");
    }
}

/// The systemd credential: with `CREDENTIALS_DIRECTORY` pointing at a
/// directory holding `master.key` (as `LoadCredential=master.key:...` makes
/// it: directory 0500, file 0400), the key comes from there, before the
/// configured key file; the same mode rule applies to it, and a wrong key
/// there refuses to start even when the key file is right.
#[tokio::test]
async fn row_c_the_systemd_credential_is_used_and_held_to_the_same_rules() {
    let env = Env::new();
    env.create_user("ops@example.com", "Ops");
    let creds = env.root().join("credentials");
    std::fs::create_dir(&creds).unwrap();
    let cred_key = creds.join("master.key");
    std::fs::copy(env.key_path(), &cred_key).unwrap();
    chmod(&cred_key, 0o400);
    chmod(&creds, 0o500);

    // The configured key file is gone: only the credential can open the data.
    let moved = env.root().join("elsewhere.key");
    std::fs::rename(env.key_path(), &moved).unwrap();
    let (ok, text) = doctor(&env, Some(&creds));
    assert!(ok, "{text}");
    assert!(text.contains("systemd credential"), "{text}");
    assert!(text.contains(&cred_key.display().to_string()), "{text}");
    let mut cmd = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.env("CREDENTIALS_DIRECTORY", &creds);
    serves(common::Server::start(cmd)).await;
    let (ok, _) = doctor(&env, None);
    assert!(!ok, "without the credential and the key file nothing opens");

    // A credential readable by group or others is refused like a key file.
    chmod(&creds, 0o700);
    let before = files(&env.data_dir());
    for mode in [0o440, 0o640, 0o644] {
        chmod(&cred_key, mode);
        let err = serve_refuses(&env, Some(&creds));
        assert!(
            err.contains("chmod 600"),
            "credential mode {mode:04o}: {err}"
        );
    }

    // The credential wins over the key file: a wrong one refuses even with
    // the right key file back in place.
    std::fs::rename(&moved, env.key_path()).unwrap();
    chmod(&cred_key, 0o600);
    std::fs::write(&cred_key, [7u8; 32]).unwrap();
    let err = serve_refuses(&env, Some(&creds));
    assert!(err.contains("master key does not match"), "{err}");
    assert_eq!(files(&env.data_dir()), before, "a refusal changed a file");
    // And without the credential the key file opens the data again.
    let (ok, text) = doctor(&env, None);
    assert!(ok, "{text}");
}

/// In production the key file's default place is outside the default data dir.
#[test]
fn row_c_the_default_key_file_is_outside_the_default_data_dir() {
    let d = aura::config::FileConfig::default();
    assert_eq!(d.master_key_file, Path::new("/etc/aura/master.key"));
    assert!(!d.master_key_file.starts_with(&d.data_dir));
}
