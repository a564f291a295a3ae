//! SECURITY.md rows k and m, the parts that depend on time: chain heads are
//! signed on a schedule (every 5 minutes by default), and the default
//! retention is 12 months (an entry 11 months old stays, 13 months old goes),
//! moved through the test clock (`AURA_TEST_CLOCK_OFFSET`) rather than waited.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::mfa::signed_in;
use common::{Env, open_db};
use serde_json::json;

const DAY: i64 = 86_400;

fn scalar(db: &Path, sql: &str, p: &str) -> i64 {
    open_db(db).query_row(sql, [p], |r| r.get(0)).unwrap()
}

/// The defaults the promises name: a 300 s checkpoint interval, 365 days of
/// retention.
#[test]
fn row_k_m_the_documented_defaults() {
    let d = aura::config::FileConfig::default();
    assert_eq!(d.audit.checkpoint_interval_secs, 300, "5 minutes");
    assert_eq!(d.audit.retention_days, 365, "12 months");
}

/// With a 2 s interval the running server signs each new head of a workspace
/// chain within an interval, again and again, with reason `schedule`: the
/// mechanism that, at the default 300 s, signs at least every 5 minutes.
#[tokio::test]
async fn row_k_heads_are_signed_on_the_checkpoint_schedule() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Ticks", "ada@example.com");
    let server = env.start_with(&[("AURA_AUDIT__CHECKPOINT_INTERVAL_SECS", "2")]);
    let c = signed_in(&server, "ada@example.com").await;
    let control = env.data_dir().join("control.db");
    let data = env.tenant_db(&ws);
    let head = || {
        scalar(
            &data,
            "SELECT coalesce(max(seq), 0) FROM audit_log WHERE ?1 = ?1",
            "",
        )
    };
    let signed = || {
        scalar(
            &control,
            "SELECT coalesce(max(seq), 0) FROM audit_checkpoints WHERE scope = ?1 AND reason = 'schedule'",
            &ws,
        )
    };
    let mut times = Vec::new();
    for round in 0..3 {
        let r = c
            .post(server.url(&format!("/api/v1/workspaces/{ws}/collections")))
            .json(&json!({"name": format!("C{round}"), "fields": [{"name": "T", "type": "text"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let target = head();
        let start = Instant::now();
        while signed() < target {
            assert!(
                start.elapsed() < Duration::from_secs(8),
                "round {round}: head {target} unsigned after {:?} with a 2 s interval",
                start.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        times.push(start.elapsed());
    }
    println!("new heads signed after {times:?} (interval 2 s)");
    let n = scalar(
        &control,
        "SELECT count(*) FROM audit_checkpoints WHERE scope = ?1 AND reason = 'schedule'",
        &ws,
    );
    assert!(
        n >= 3,
        "one scheduled checkpoint per new head at least, got {n}"
    );
    server.stop();
    let out = env.cli(&["audit", "verify"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

fn prune_at(env: &Env, days: i64) {
    let out = env
        .command(&["audit", "prune"])
        .env("AURA_TEST_CLOCK_OFFSET", (days * DAY).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// With no retention configured anywhere: entries 11 months old are kept,
/// entries 13 months old are removed, in the workspace chain and the
/// platform chain, and both still verify.
#[tokio::test]
async fn row_m_default_retention_keeps_11_months_and_removes_13() {
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    let ws = env.create_workspace("Keeps", "ada@example.com");
    // Entries written today, and more written 60 days from now.
    for (offset_days, name) in [(0, "Old"), (60, "Newer")] {
        let server =
            env.start_with(&[("AURA_TEST_CLOCK_OFFSET", &(offset_days * DAY).to_string())]);
        let c = signed_in(&server, "ada@example.com").await;
        let r = c
            .post(server.url(&format!("/api/v1/workspaces/{ws}/collections")))
            .json(&json!({"name": name, "fields": [{"name": "T", "type": "text"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        server.stop();
    }
    let control = env.data_dir().join("control.db");
    let data = env.tenant_db(&ws);
    let t0 = scalar(&data, "SELECT min(time) FROM audit_log WHERE ?1 = ?1", "");
    let older = |db: &Path| {
        scalar(
            db,
            "SELECT count(*) FROM audit_log WHERE time < ?1",
            &(t0 + 30 * DAY).to_string(),
        )
    };
    let newer = |db: &Path| {
        scalar(
            db,
            "SELECT count(*) FROM audit_log WHERE time >= ?1 AND action != 'audit.retention_applied'",
            &(t0 + 59 * DAY).to_string(),
        )
    };
    let (old_ws, old_pf) = (older(&data), older(&control));
    let (new_ws, new_pf) = (newer(&data), newer(&control));
    assert!(old_ws > 0 && old_pf > 0 && new_ws > 0 && new_pf > 0);

    // 335 days on (11 months): the oldest entries are 11 months old and stay.
    prune_at(&env, 335);
    assert_eq!(
        (older(&data), older(&control)),
        (old_ws, old_pf),
        "11-month-old entries removed"
    );
    // 395 days on (13 months): the oldest are 13 months old and go; the
    // newer ones are 11 months old and stay.
    prune_at(&env, 395);
    assert_eq!(
        (older(&data), older(&control)),
        (0, 0),
        "13-month-old entries kept"
    );
    assert_eq!(
        (newer(&data), newer(&control)),
        (new_ws, new_pf),
        "11-month-old entries removed"
    );
    let out = env
        .command(&["audit", "verify"])
        .env("AURA_TEST_CLOCK_OFFSET", (395 * DAY).to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
