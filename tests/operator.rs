//! Operating under systemd: sd_notify readiness, watchdog pings and stopping,
//! and a SIGTERM that drains in-flight requests without losing an
//! acknowledged write.

mod common;

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

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
    assert!(
        seen[..ready_at].matches("WATCHDOG=1").count() <= 1,
        "READY comes first"
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
    assert!(
        stored >= i64::from(acked),
        "{acked} acknowledged, {stored} stored"
    );
    let out = env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
