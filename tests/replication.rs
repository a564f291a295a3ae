//! Continuous replication (issue 21, docs/replication.md): point-in-time
//! recovery to an instant, in place for one workspace and for the whole
//! appliance; a replica outside the residency region refused at start; a
//! shredded workspace leaves the replica; an S3-compatible target (moto).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;
use common::{Env, PASSWORD, Server, client, login, open_db};
use serde_json::json;

pub struct Replicated {
    pub env: Env,
    pub identity: PathBuf,
    pub recipient: String,
    pub url: String,
    pub dir: PathBuf,
}

impl Replicated {
    /// A fresh appliance replicating every 200 ms to `file://<root>/replica`.
    pub fn new() -> Self {
        let env = Env::new();
        let id = age::x25519::Identity::generate();
        let identity = env.root().join("id.txt");
        std::fs::write(&identity, format!("{}\n", id.to_string().expose_secret())).unwrap();
        let dir = env.root().join("replica");
        Replicated {
            url: format!("file://{}", dir.display()),
            recipient: id.to_public().to_string(),
            identity,
            dir,
            env,
        }
    }

    pub fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AURA_REPLICATION__URL", self.url.clone()),
            ("AURA_REPLICATION__INTERVAL_MS", "200".into()),
            (
                "AURA_BACKUP__RECIPIENTS",
                format!("[\"{}\"]", self.recipient),
            ),
        ]
    }

    pub fn start(&self) -> Server {
        let envs = self.envs();
        let pairs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.env.start_with(&pairs)
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        let mut c = self.env.command(args);
        for (k, v) in self.envs() {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// Waits until the replicator reports `db` matched at or after `after_ms`.
    pub fn wait_replicated(&self, db: &str, after_ms: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let beat: serde_json::Value = std::fs::read(self.dir.join("status.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
            if beat["databases"][db]["synced_ms"].as_i64().unwrap_or(0) >= after_ms {
                return;
            }
            assert!(Instant::now() < deadline, "{db} not replicated: {beat}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn retention_in(db: &Path) -> Option<String> {
    open_db(db)
        .query_row(
            "SELECT value FROM meta WHERE key = 'audit_retention_days'",
            [],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .ok()
        .map(|v| String::from_utf8(v).unwrap())
}

/// Every file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// PITR exactness: write A, note the instant, write B; restoring to the
/// instant gives A and not B, for one workspace in place (beside the running
/// server, the other workspace untouched) and for the whole appliance.
#[tokio::test]
async fn point_in_time_recovery_restores_the_instant_not_after() {
    let r = Replicated::new();
    r.env.create_user("a@example.com", "A");
    let wa = r.env.create_workspace("Timed Co", "a@example.com");
    let wb = r.env.create_workspace("Other Co", "a@example.com");
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "a@example.com", PASSWORD).await.status(),
        200
    );
    let set = |ws: &str, days: i64| {
        c.put(server.url(&format!("/api/v1/workspaces/{ws}/audit/settings")))
            .json(&json!({ "retention_days": days }))
            .send()
    };
    assert_eq!(set(&wb, 60).await.unwrap().status(), 200);
    assert_eq!(set(&wa, 50).await.unwrap().status(), 200, "A");
    r.wait_replicated(&format!("ws-{wa}"), now_ms());
    r.wait_replicated("control", now_ms());
    let instant = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(set(&wa, 77).await.unwrap().status(), 200, "B");
    assert_eq!(set(&wb, 61).await.unwrap().status(), 200);
    r.wait_replicated(&format!("ws-{wa}"), now_ms());
    r.wait_replicated(&format!("ws-{wb}"), now_ms());
    let at = rfc3339(instant);

    // Out of the window, and before the workspace existed: a clear error.
    let out = r.cli(&[
        "restore",
        "--at",
        "2001-01-01T00:00:00Z",
        "--workspace",
        &wa,
        "--identity",
        r.identity.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("outside the point-in-time recovery window"),
        "{err}"
    );

    // The whole appliance, into a new dir.
    let to = r.env.root().join("restored");
    let out = ok(&r.cli(&[
        "restore",
        "--to",
        to.to_str().unwrap(),
        "--at",
        &at,
        "--identity",
        r.identity.to_str().unwrap(),
    ]));
    assert!(out.contains("restored the appliance"), "{out}");
    let db = |root: &Path, ws: &str| root.join("tenants").join(ws).join("data.db");
    assert_eq!(
        retention_in(&db(&to, &wa)).as_deref(),
        Some("50"),
        "A is there, B is not"
    );
    assert_eq!(retention_in(&db(&to, &wb)).as_deref(), Some("60"));
    ok(&r.env.cli_at(&to, &["audit", "verify"]));

    // One workspace in place, beside the running server.
    let out = ok(&r.cli(&[
        "restore",
        "--workspace",
        &wa,
        "--at",
        &at,
        "--identity",
        r.identity.to_str().unwrap(),
    ]));
    assert!(out.contains("other workspaces were not touched"), "{out}");
    let page = common::get_json(
        &c,
        server.url(&format!(
            "/api/v1/workspaces/{wa}/audit?action=audit.retention_changed"
        )),
    )
    .await;
    assert_eq!(page["items"][0]["after"]["retention_days"], 50, "{page}");
    let page = common::get_json(
        &c,
        server.url(&format!(
            "/api/v1/workspaces/{wb}/audit?action=audit.retention_changed&limit=1"
        )),
    )
    .await;
    assert_eq!(page["items"][0]["after"]["retention_days"], 61, "untouched");
    let page = common::get_json(
        &c,
        server.url(&format!("/api/v1/workspaces/{wa}/audit?q=restored")),
    )
    .await;
    assert_eq!(page["items"][0]["action"], "backup.restored", "{page}");
    assert!(
        page.to_string().contains(&at[..19]),
        "the entry names the instant: {page}"
    );

    // The replica is caught up and says so.
    let out = ok(&r.cli(&["replica", "status"]));
    assert!(
        out.contains(&format!("ws-{wa}")) && out.contains("control"),
        "{out}"
    );
    server.stop();
    ok(&r.env.cli(&["audit", "verify"], None));
}

/// A replica target outside the residency region: `aura serve` refuses to
/// start and says why.
#[tokio::test]
async fn a_replica_in_another_region_is_refused_at_start() {
    let r = Replicated::new();
    let out = r
        .env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("AURA_RESIDENCY", "EU")
        .env("AURA_REGION", "EU")
        .env("AURA_REPLICATION__URL", &r.url)
        .env("AURA_REPLICATION__REGION", "US")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("replication.region") && err.contains("outside this appliance's residency"),
        "{err}"
    );
    assert!(!r.dir.exists(), "nothing was replicated");
}
