//! Operating under systemd: sd_notify readiness, watchdog pings and stopping,
//! and a SIGTERM that drains in-flight requests without losing an
//! acknowledged write.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use common::{Env, PASSWORD, client, login, open_db};

#[tokio::test]
async fn sd_notify_ready_watchdog_and_stopping() {
    let env = Env::new();
    let sock_path = env.root().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let server = env.start_with(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
    ]);
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 4096];
    while seen.matches("WATCHDOG=1").count() < 3 {
        assert!(
            Instant::now() < deadline,
            "not enough notifications: {seen}"
        );
        let n = sock.recv(&mut buf).expect("a notification");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        seen.push('\n');
    }
    assert!(seen.contains("READY=1"), "{seen}");
    assert!(seen.contains("STATUS=serving http://"), "{seen}");
    let ready_at = seen.find("READY=1").unwrap();
    assert_eq!(
        seen[..ready_at].matches("WATCHDOG=1").count(),
        0,
        "READY comes before any watchdog ping: {seen}"
    );
    // The server answers once READY was sent.
    assert_eq!(
        reqwest::get(server.url("/readyz")).await.unwrap().status(),
        200
    );
    server.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(20);
    while !seen.contains("STOPPING=1") {
        assert!(Instant::now() < deadline, "no STOPPING=1: {seen}");
        let n = sock.recv(&mut buf).expect("a notification");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    server.stop();
}

/// SIGTERM at once after the `listening` line (systemd stopping a service
/// that has just started) drains and exits 0: the handler is installed
/// before the server binds, not when the server first polls for it.
#[test]
fn a_sigterm_right_after_start_exits_cleanly() {
    let env = Env::new();
    for _ in 0..8 {
        // `stop` sends SIGTERM and asserts a successful exit.
        env.start().stop();
    }
}

/// Row v: a wedged process stops the watchdog pings, so systemd (the unit's
/// `WatchdogSec=` with `Restart=on-failure`, which covers a watchdog
/// timeout) kills and restarts it. The debug-only hook
/// `AURA_TEST_WEDGE_AFTER_MS` blocks every runtime worker, as a deadlock
/// would; the pings must stop while the process is still alive. systemd's
/// own kill-and-restart is not run here (no systemd in the test); the unit
/// is checked to ask for it.
#[tokio::test]
async fn a_wedged_process_stops_the_watchdog_pings() {
    let env = Env::new();
    let sock_path = env.root().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let server = env.start_with(&[
        ("NOTIFY_SOCKET", sock_path.to_str().unwrap()),
        ("WATCHDOG_USEC", "200000"),
        ("AURA_TEST_WEDGE_AFTER_MS", "3000"),
    ]);
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let mut pings = 0;
    // Pings every 100 ms until the wedge; then 3 s (15 watchdog intervals)
    // with none ends the loop.
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the pings never stopped ({pings} seen)"
        );
        match sock.recv(&mut buf) {
            Ok(n) => {
                if String::from_utf8_lossy(&buf[..n]).contains("WATCHDOG=1") {
                    pings += 1;
                }
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "{e}"
                );
                break;
            }
        }
    }
    assert!(pings >= 5, "pings came while healthy: {pings}");
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", server.pid())).unwrap();
    let state = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap();
    assert!(state != "Z" && state != "X", "wedged, not exited: {stat}");
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(
        c.get(server.url("/healthz")).send().await.is_err(),
        "a wedged server does not answer"
    );
    let logs = String::from_utf8_lossy(&server.logs()).to_string();
    assert!(logs.contains("wedging every runtime worker"), "{logs}");
    // systemd restarts on a missed ping only if the unit asks for it.
    let unit = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/aura.service"),
    )
    .unwrap();
    assert!(
        unit.lines().any(|l| l.starts_with("WatchdogSec=")),
        "{unit}"
    );
    assert!(
        unit.lines().any(|l| l == "Restart=on-failure"
            || l == "Restart=always"
            || l == "Restart=on-watchdog"),
        "{unit}"
    );
    server.kill9();
}

#[tokio::test]
async fn sigterm_drains_without_losing_acknowledged_writes() {
    let env = Env::new();
    env.create_user("d@example.com", "D");
    let ws = env.create_workspace("Drained", "d@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "d@example.com", PASSWORD).await.status(),
        200
    );
    let url = server.url(&format!("/api/v1/workspaces/{ws}/audit/settings"));
    let mut tasks = Vec::new();
    for w in 0..4 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = 0u32;
            for i in 0..200 {
                match c
                    .put(&url)
                    .json(&serde_json::json!({ "retention_days": 30 + w * 200 + i }))
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 200 => acked += 1,
                    _ => break,
                }
            }
            acked
        }));
    }
    // SIGTERM once writes are flowing.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n: i64 = open_db(&env.tenant_db(&ws))
            .query_row(
                "SELECT count(*) FROM audit_log WHERE action = 'audit.retention_changed'",
                [],
                |r| r.get(0),
            )
            .unwrap_or(0);
        if n >= 20 {
            break;
        }
        assert!(Instant::now() < deadline, "writes did not start");
        tokio::task::yield_now().await;
    }
    server.signal("TERM");
    let mut acked = 0;
    for t in tasks {
        acked += t.await.unwrap();
    }
    server.stop();
    assert!(acked > 0, "some writes were acknowledged before the drain");
    let stored: i64 = open_db(&env.tenant_db(&ws))
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'audit.retention_changed'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    // Each acknowledged change is stored, and nothing unacknowledged is: the
    // drain answers every request it let in (no write without its answer).
    assert_eq!(
        stored,
        i64::from(acked),
        "{acked} acknowledged, {stored} stored"
    );
    let out = env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[tokio::test]
async fn trust_page_reflects_config_and_backups_and_security_txt_is_rfc9116() {
    let env = Env::new();
    let identity = age::x25519::Identity::generate();
    let recipients = format!("[\"{}\"]", identity.to_public());
    let server = env.start_with(&[
        ("AURA_REGION", "IN"),
        ("AURA_BACKUP__RECIPIENTS", &recipients),
        ("AURA_AUTH__ACCESS_TOKEN_MINUTES", "7"),
        ("AURA_LIFECYCLE__WORKSPACE_GRACE_DAYS", "21"),
    ]);
    let t: serde_json::Value = reqwest::get(server.url("/trust.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = &t["document"];
    assert_eq!(t["residency"]["region"], "IN");
    assert_eq!(t["encryption"]["in_transit"]["mode"], "off");
    assert_eq!(t["encryption"]["in_transit"]["status"], "off", "{t}");
    assert_eq!(
        t["access_control"]["access_token_minutes"], 7,
        "read from the config"
    );
    assert_eq!(t["access_control"]["login_failures_per_ip"], 5);
    assert_eq!(t["access_control"]["workspaces_requiring_mfa"], 0, "{t}");
    assert_eq!(t["access_control"]["totp"], true, "{t}");
    assert!(t["backups"]["last_success"].is_null());
    assert_eq!(
        t["backups"]["status"], "not_configured",
        "no backup yet: {t}"
    );
    assert!(t["subprocessors"]["current"].as_array().unwrap().is_empty());
    assert_eq!(
        t["data_rights"]["workspace_grace_days"], 21,
        "read from the config: {t}"
    );
    assert_eq!(t["data_rights"]["crypto_shredding"], true);
    assert_eq!(t["data_rights"]["workspaces_shredded"], 0);
    assert_eq!(
        t["encryption"]["at_rest"]["algorithm"], "XChaCha20-Poly1305",
        "{t}"
    );

    let out = env
        .command(&["backup", "run"])
        .env("AURA_BACKUP__RECIPIENTS", &recipients)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: serde_json::Value = reqwest::get(server.url("/trust.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = &t["document"];
    assert!(
        t["backups"]["last_success"].is_string(),
        "a backup run shows at once: {t}"
    );
    assert_eq!(t["backups"]["status"], "met", "{t}");
    let page = reqwest::get(server.url("/trust"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Last successful backup: 20"), "{page}");
    assert!(t["backups"]["last_drill"].is_null(), "no drill yet: {t}");
    assert!(page.contains("Last restore drill: none yet"), "{page}");

    // A drill shows at once, passed; a drill that fails (a wrong identity)
    // turns both pages to failed.
    let ident_file = env.root().join("backup-identity.txt");
    std::fs::write(
        &ident_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    let wrong_file = env.root().join("wrong-identity.txt");
    std::fs::write(
        &wrong_file,
        format!(
            "{}\n",
            age::x25519::Identity::generate()
                .to_string()
                .expose_secret()
        ),
    )
    .unwrap();
    for (file, passed, shown) in [
        (&ident_file, true, "(passed)"),
        (&wrong_file, false, "(FAILED)"),
    ] {
        let out = env
            .command(&["backup", "verify", "--identity", file.to_str().unwrap()])
            .env("AURA_BACKUP__RECIPIENTS", &recipients)
            .output()
            .unwrap();
        assert_eq!(
            out.status.success(),
            passed,
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let t: serde_json::Value =
            common::get_json(&reqwest::Client::new(), server.url("/trust.json")).await;
        let t = &t["document"];
        assert!(t["backups"]["last_drill"].is_string(), "{t}");
        assert_eq!(t["backups"]["last_drill_passed"], passed, "{t}");
        assert_eq!(
            t["backups"]["status"],
            if passed { "met" } else { "failed" },
            "{t}"
        );
        let page = common::get_text(&reqwest::Client::new(), server.url("/trust")).await;
        assert!(page.contains("Last restore drill: 20"), "{page}");
        assert!(page.contains(shown), "{page}");
    }
    assert_eq!(
        reqwest::get(server.url("/.well-known/security.txt"))
            .await
            .unwrap()
            .status(),
        404
    );
    server.stop();

    // A config change shows after a restart; security.txt comes from config.
    let server = env.start_with(&[
        ("AURA_REGION", "EU"),
        ("AURA_RESIDENCY", "EU"),
        ("AURA_SECURITY_TXT__CONTACT", "mailto:security@example.com"),
        (
            "AURA_BACKUP__TARGETS",
            "[{kind=\"s3\", bucket=\"b\", endpoint=\"https://s3.eu.example\", region=\"EU\"}]",
        ),
    ]);
    let t: serde_json::Value = reqwest::get(server.url("/trust.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t = &t["document"];
    assert_eq!(t["residency"]["region"], "EU");
    assert_eq!(t["residency"]["residency"], "EU");
    assert_eq!(t["subprocessors"]["current"][0]["host"], "s3.eu.example");
    assert_eq!(
        t["disclosure"]["contact"], "mailto:security@example.com",
        "{t}"
    );
    assert_eq!(t["disclosure"]["status"], "met", "{t}");
    let r = reqwest::get(server.url("/.well-known/security.txt"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let txt = r.text().await.unwrap();
    let field = |name: &str| {
        txt.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} in {txt}"))
            .to_owned()
    };
    assert_eq!(field("Contact"), "mailto:security@example.com");
    let expires = time::OffsetDateTime::parse(
        &field("Expires"),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    assert!(expires > time::OffsetDateTime::now_utc() + time::Duration::days(300));
    assert!(field("Policy").ends_with("/trust"));
    assert_eq!(field("Preferred-Languages"), "en");
    server.stop();
}

/// SIGHUP re-reads the reloadable config without a restart.
#[tokio::test]
async fn sighup_reloads_the_config() {
    let env = Env::new();
    let server = env.start();
    assert_eq!(
        reqwest::get(server.url("/.well-known/security.txt"))
            .await
            .unwrap()
            .status(),
        404
    );
    let cfg = std::fs::read_to_string(env.config_path()).unwrap();
    let (head, tail) = cfg.split_once("[security_txt]").unwrap();
    let tail = tail.replacen(
        "contact = \"\"",
        "contact = \"mailto:psirt@example.com\"",
        1,
    );
    let cfg = format!("{head}[security_txt]{tail}");
    std::fs::write(env.config_path(), cfg).unwrap();
    server.signal("HUP");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = reqwest::get(server.url("/.well-known/security.txt"))
            .await
            .unwrap();
        if r.status() == 200 {
            assert!(
                r.text()
                    .await
                    .unwrap()
                    .contains("Contact: mailto:psirt@example.com")
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "SIGHUP did not reload the config"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new config serves before its log line is written and read back
    // from the server's stdout: wait for the line (bounded), not a moment.
    loop {
        let logs = String::from_utf8_lossy(&server.logs()).to_string();
        if logs.contains("configuration reloaded") {
            break;
        }
        assert!(Instant::now() < deadline, "{logs}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop();
}
