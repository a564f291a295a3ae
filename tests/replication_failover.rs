//! Failover without loss (issue 21, docs/replication.md): a primary under
//! write load from 8 clients replicates; it is killed with SIGKILL; another
//! data dir restores the latest replicated state and is promoted (it takes
//! the replica lease); every write acknowledged more than `interval_ms + 1 s`
//! before the kill is there, the audit chains verify, and the old primary,
//! back up, finds its lease taken and refuses writes (503, `/readyz`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::replica::{Replicated, now_ms, ok};
use common::{PASSWORD, Server, client, login};
use serde_json::json;

#[tokio::test]
async fn failover_keeps_every_write_older_than_the_interval() {
    let r = Replicated::new();
    r.env.create_user("f@example.com", "F");
    let ws = r.env.create_workspace("Failover Ltd", "f@example.com");
    let primary = r.start();
    let c = client(&primary);
    assert_eq!(
        login(&c, &primary, "f@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    r.wait_replicated("control", now_ms());

    let acked: Arc<Mutex<Vec<(String, i64)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let url = primary.url(&format!("/api/v1/workspaces/{ws}/teams"));
    let writers: Vec<_> = (0..8)
        .map(|i| {
            let (c, url, acked, stop) = (c.clone(), url.clone(), acked.clone(), stop.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    n += 1;
                    let Ok(r) = c
                        .post(&url)
                        .json(&json!({"name": format!("w{i}-{n}")}))
                        .send()
                        .await
                    else {
                        break;
                    };
                    if r.status() != 201 {
                        break;
                    }
                    let body: serde_json::Value = r.json().await.unwrap_or_default();
                    if let Some(id) = body["id"].as_str() {
                        acked.lock().unwrap().push((id.to_owned(), now_ms()));
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let killed_at = now_ms();
    primary.kill9();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        let _ = w.await;
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() > 20, "the writers wrote: {}", acked.len());

    // The standby machine: latest state from the replica, then promote.
    let (b, _) = r.restore_latest("standby");
    let out = ok(&r.cli_at(&b, &["replica", "promote"]));
    assert!(out.contains("promoted"), "{out}");
    let standby = Server::start(r.command_at(&b, &["serve", "--listen", "127.0.0.1:0"]));
    let cb = client(&standby);
    assert_eq!(
        login(&cb, &standby, "f@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let listed = cb
        .get(standby.url(&format!("/api/v1/workspaces/{ws}/teams?limit=1000")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let bound = killed_at - (200 + 1000);
    let old: Vec<_> = acked.iter().filter(|(_, t)| *t < bound).collect();
    let lost: Vec<_> = old
        .iter()
        .filter(|(id, _)| !listed.contains(id.as_str()))
        .collect();
    assert!(!old.is_empty());
    assert!(
        lost.is_empty(),
        "{} of {} old acknowledged writes lost: {lost:?}",
        lost.len(),
        old.len()
    );
    let s = cb
        .post(standby.url(&format!("/api/v1/workspaces/{ws}/teams")))
        .json(&json!({"name": "after failover"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 201, "the promoted appliance writes");

    // The old primary comes back: its lease is taken, it refuses writes.
    let old_primary = r.start();
    let co = client(&old_primary);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let ready = co.get(old_primary.url("/readyz")).send().await.unwrap();
        if ready.status() == 503 {
            let body = ready.text().await.unwrap();
            assert!(body.contains("lease"), "{body}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the old primary stayed ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = co
        .post(old_primary.url("/api/v1/auth/login"))
        .json(&json!({"email": "f@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("retry-after").is_some());
    let logs = String::from_utf8_lossy(&old_primary.stop()).to_string();
    assert!(
        logs.contains("the replica lease is held by appliance"),
        "{logs}"
    );
    standby.stop();
    ok(&r.env.cli_at(&b, &["audit", "verify"]));
}

/// A warm standby (`aura serve --standby`) follows the replica, serves
/// reads, answers writes 503 + Retry-After; `aura replica promote` makes it
/// the primary without a restart and fences the old one.
#[tokio::test]
async fn a_warm_standby_follows_serves_reads_and_takes_over() {
    let r = Replicated::new();
    r.env.create_user("w@example.com", "W");
    let ws = r.env.create_workspace("Warm Ltd", "w@example.com");
    let primary = r.start();
    let c = client(&primary);
    assert_eq!(
        login(&c, &primary, "w@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    // One cookie jar for both servers (the standby's control.db follows
    // the primary's sessions); each write names its own server as origin.
    let team = |server: &Server, name: &str| {
        c.post(server.url(&format!("/api/v1/workspaces/{ws}/teams")))
            .header("origin", server.base.as_str())
            .json(&json!({"name": name}))
            .send()
    };
    let first: serde_json::Value = team(&primary, "before")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    r.wait_replicated("control", now_ms());

    let (b, _) = r.restore_latest("warm");
    let mut cmd = r.command_at(&b, &["serve", "--listen", "127.0.0.1:0", "--standby"]);
    cmd.env("AURA_BACKUP__DRILL_IDENTITY_FILE", &r.identity);
    let standby = Server::start(cmd);
    let teams = |server: &Server| {
        c.get(server.url(&format!("/api/v1/workspaces/{ws}/teams?limit=1000")))
            .send()
    };
    // The primary's session reads on the standby (its control.db follows).
    let listed = teams(&standby).await.unwrap().text().await.unwrap();
    assert!(listed.contains(first["id"].as_str().unwrap()), "{listed}");
    let refused = team(&standby, "on the standby").await.unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().get("retry-after").is_some());

    // A later write on the primary reaches the standby.
    let later: serde_json::Value = team(&primary, "later").await.unwrap().json().await.unwrap();
    let later_id = later["id"].as_str().unwrap().to_owned();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !teams(&standby)
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .contains(&later_id)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the standby did not follow"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Promote: the standby writes, the old primary refuses.
    ok(&r.cli_at(&b, &["replica", "promote"]));
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let resp = team(&standby, "after promote").await.unwrap();
        let s = resp.status();
        if s == 201 {
            break;
        }
        assert_eq!(s, 503, "{}", resp.text().await.unwrap());
        assert!(
            std::time::Instant::now() < deadline,
            "the standby never took over"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while team(&primary, "old primary").await.unwrap().status() != 503 {
        assert!(
            std::time::Instant::now() < deadline,
            "the old primary kept writing"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    primary.stop();
    standby.stop();
    ok(&r.env.cli_at(&b, &["audit", "verify"]));
}
