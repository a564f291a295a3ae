//! An acknowledged write survives `kill -9`: synchronous=FULL plus WAL means a
//! committed transaction is on disk before the response is sent.

mod common;

use common::{Env, PASSWORD, client, login, open_db};

#[tokio::test]
async fn acknowledged_sessions_survive_sigkill() {
    let env = Env::new();
    env.create_user("dur@example.com", "Dur");
    env.create_workspace("Durable", "dur@example.com");
    let server = env.start();
    let mut cookies = Vec::new();
    for _ in 0..5 {
        let c = client(&server);
        let r = login(&c, &server, "dur@example.com", PASSWORD).await;
        assert_eq!(r.status(), 200);
        cookies.push(
            r.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned(),
        );
    }
    server.kill9();

    let server = env.start();
    for cookie in &cookies {
        let r = reqwest::Client::new()
            .get(server.url("/api/v1/me"))
            .header("cookie", cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status(),
            200,
            "session acknowledged before the crash is still valid"
        );
    }
    server.stop();
    let db = open_db(&env.data_dir().join("control.db"));
    let entries = aura::store::audit::all_entries(&db).unwrap();
    assert_eq!(
        entries.iter().filter(|e| e.action == "auth.login").count(),
        5
    );
    assert!(matches!(
        aura::audit::verify_chain(&entries),
        aura::audit::ChainCheck::Intact { .. }
    ));
}

/// Group commit acknowledges a create only after the batch holding it has
/// committed: records created by 32 concurrent clients, then SIGKILL while
/// more are in flight; every acknowledged record is there after a restart,
/// with its audit entry, and the chain is intact.
#[tokio::test]
async fn group_committed_records_survive_sigkill() {
    let env = Env::new();
    env.create_user("rec@example.com", "Rec");
    let ws = env.create_workspace("Durable records", "rec@example.com");
    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "rec@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let coll: serde_json::Value = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/collections")))
        .json(&serde_json::json!({"name": "Ledger", "fields": [{"name": "N", "type": "integer"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!(
        "/api/v1/workspaces/{ws}/collections/{}/records",
        coll["id"].as_str().unwrap()
    );
    let url = server.url(&path);
    let mut tasks = Vec::new();
    for n in 0..32 {
        let (c, url) = (c.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..20 {
                let r = c
                    .post(&url)
                    .json(&serde_json::json!({"values": {"N": n * 100 + i}}))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 201 => {
                        let v: serde_json::Value = r.json().await.unwrap();
                        acked.push(v["id"].as_str().unwrap().to_owned());
                    }
                    _ => break,
                }
            }
            acked
        }));
    }
    // Let some batches commit, then kill while others are in flight.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    server.kill9();
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.unwrap());
    }
    assert!(
        !acked.is_empty(),
        "some creates were acknowledged before the kill"
    );

    let server = env.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "rec@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let url = server.url(&path);
    for id in &acked {
        let r = c.get(format!("{url}/{id}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "acknowledged record {id} survived");
    }
    server.stop();
    let db = open_db(&env.tenant_db(&ws));
    let entries = aura::store::audit::all_entries(&db).unwrap();
    let created = entries
        .iter()
        .filter(|e| e.action == "record.created")
        .count();
    assert!(
        created >= acked.len(),
        "every acknowledged record has its audit entry"
    );
    assert!(matches!(
        aura::audit::verify_chain(&entries),
        aura::audit::ChainCheck::Intact { .. }
    ));
}
