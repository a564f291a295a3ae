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
