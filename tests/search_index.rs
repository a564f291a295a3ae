//! Persistent sealed search indexes, through the real server: a restart
//! reuses the index files (no rebuild, counted by
//! `aura_search_index_rebuilds_total`) and adds only newer rows; a tampered,
//! swapped or foreign index file is detected and the index rebuilt with
//! correct results; the files hold no plaintext; a purged workspace leaves no
//! index file; an anonymised value is not found any more, even after a
//! restart.

mod common;

use std::path::{Path, PathBuf};

use common::mfa::signed_in;
use common::{Env, Server, send};
use serde_json::json;
use tantivy::Directory;

const METRICS_TOKEN: &str = "index-scrape-token";
const DAY: i64 = 86_400;

struct Ws {
    server: Server,
    c: reqwest::Client,
    ws: String,
    coll: String,
}

fn start(env: &Env) -> Server {
    env.start_with(&[("AURA_METRICS__BEARER_TOKEN", METRICS_TOKEN)])
}

/// `aura ARGS` with the clock `days` ahead; its output, which must be a success.
fn cli_later(env: &Env, days: i64, args: &[&str]) -> String {
    let out = env
        .command(args)
        .env("AURA_TEST_CLOCK_OFFSET", (days * DAY).to_string())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    text
}

impl Ws {
    fn url(&self, p: &str) -> String {
        self.server
            .url(&format!("/api/v1/workspaces/{}{p}", self.ws))
    }

    async fn record(&self, name: &str) {
        let (s, r) = send(
            self.c
                .post(self.url(&format!("/collections/{}/records", self.coll)))
                .json(&json!({"values": {"Name": name, "Email": format!("{name}@example.com")}})),
        )
        .await;
        assert_eq!(s, 201, "{r}");
    }

    /// Audit entries whose free text matches `q`.
    async fn audit_hits(&self, q: &str) -> usize {
        let (s, page) = send(self.c.get(self.url(&format!("/audit?q={q}")))).await;
        assert_eq!(s, 200, "{page}");
        page["items"].as_array().unwrap().len()
    }

    /// Records of the collection whose searchable text matches `q`.
    async fn record_hits(&self, q: &str) -> usize {
        let u = self.url(&format!("/collections/{}/records?q={q}", self.coll));
        let (s, page) = send(self.c.get(u)).await;
        assert_eq!(s, 200, "{page}");
        page["items"].as_array().unwrap().len()
    }

    async fn rebuilds(&self) -> u64 {
        let auth = format!("Bearer {METRICS_TOKEN}").parse().unwrap();
        let scraper = reqwest::Client::builder()
            .default_headers(
                [(reqwest::header::AUTHORIZATION, auth)]
                    .into_iter()
                    .collect(),
            )
            .build()
            .unwrap();
        let text = common::get_text(&scraper, self.server.url("/metrics")).await;
        text.lines()
            .find_map(|l| l.strip_prefix("aura_search_index_rebuilds_total "))
            .unwrap_or_else(|| panic!("no rebuild counter in /metrics:\n{text}"))
            .trim()
            .parse()
            .unwrap()
    }
}

/// A workspace with a collection whose `Name` is searchable pii.
async fn setup(env: &Env, owner: &str, name: &str) -> (String, String) {
    env.create_user(owner, "Owner");
    let ws = env.create_workspace(name, owner);
    let server = start(env);
    let c = signed_in(&server, owner).await;
    let (s, coll) = send(
        c.post(server.url(&format!("/api/v1/workspaces/{ws}/collections")))
            .json(&json!({"name": "Guests", "fields": [
                {"name": "Name", "type": "text", "pii": true, "searchable": true},
                {"name": "Email", "type": "email", "pii": true}
            ]})),
    )
    .await;
    assert_eq!(s, 201, "{coll}");
    server.stop();
    (ws, coll["id"].as_str().unwrap().to_owned())
}

async fn open(env: &Env, owner: &str, ws: &str, coll: &str) -> Ws {
    let server = start(env);
    let c = signed_in(&server, owner).await;
    Ws {
        server,
        c,
        ws: ws.to_owned(),
        coll: coll.to_owned(),
    }
}

fn search_dir(env: &Env, ws: &str) -> PathBuf {
    env.data_dir().join("tenants").join(ws).join("search")
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let n = needle.as_bytes();
    hay.windows(n.len()).any(|w| w == n)
}

#[tokio::test]
async fn a_restart_reuses_the_sealed_index_and_adds_only_newer_rows() {
    let env = Env::new();
    let (ws, coll) = setup(&env, "owner@example.com", "Restart Ltd").await;
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    for i in 0..20 {
        w.record(&format!("idxcanaryold{i}")).await;
    }
    w.record("idxcanaryword").await;
    assert_eq!(w.audit_hits("idxcanaryword").await, 1);
    assert_eq!(w.record_hits("idxcanaryword").await, 1);
    assert_eq!(w.rebuilds().await, 2, "built once each: audit and records");
    w.server.stop();

    // On disk: sealed files only, and no word of what was indexed.
    let on_disk = files(&search_dir(&env, &ws));
    for purpose in ["audit", "records"] {
        assert!(
            on_disk
                .iter()
                .any(|p| p.parent().unwrap().ends_with(purpose)
                    && p.to_str().unwrap().ends_with(".sealed")),
            "no {purpose} index file: {on_disk:?}"
        );
    }
    for p in &on_disk {
        assert!(p.to_str().unwrap().ends_with(".sealed"), "{p:?}");
        let bytes = std::fs::read(p).unwrap();
        for needle in ["idxcanary", "Guests", "record.created", "owner@example"] {
            assert!(!contains(&bytes, needle), "{needle} in {p:?}");
        }
    }

    // An attacker with the disk who strips the seal suffix (and the
    // 16-byte file header) and opens the files as a tantivy index gets
    // nothing (a plaintext index would open and answer, and its words hide
    // from a byte scan in its compressed term dictionary).
    for purpose in ["audit", "records"] {
        for skip in [0, 16] {
            let stolen = tantivy::directory::RamDirectory::create();
            for p in files(&search_dir(&env, &ws).join(purpose)) {
                let name = p.file_name().unwrap().to_str().unwrap();
                let bare = name.strip_suffix(".sealed").unwrap();
                let bytes = std::fs::read(&p).unwrap();
                stolen
                    .atomic_write(Path::new(bare), &bytes[skip..])
                    .unwrap();
            }
            assert!(
                tantivy::Index::open(stolen).is_err(),
                "the {purpose} index opens without the key"
            );
        }
    }

    // Restart: the index is reused, and only the newer row is added.
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    w.record("idxcanarynew").await;
    assert_eq!(w.audit_hits("idxcanaryword").await, 1);
    assert_eq!(w.audit_hits("idxcanarynew").await, 1);
    assert_eq!(w.record_hits("idxcanaryword").await, 1);
    assert_eq!(w.record_hits("idxcanarynew").await, 1);
    assert_eq!(w.record_hits("idxcanaryold7").await, 1);
    assert_eq!(w.rebuilds().await, 0, "a restart rebuilds nothing");
    w.server.stop();
}

#[tokio::test]
async fn a_tampered_or_foreign_index_file_is_rebuilt_with_correct_results() {
    let env = Env::new();
    let (ws, coll) = setup(&env, "owner@example.com", "Tamper Ltd").await;
    let (other, other_coll) = setup(&env, "eve@example.com", "Other Ltd").await;
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    for i in 0..5 {
        w.record(&format!("tampername{i}")).await;
    }
    assert_eq!(w.audit_hits("tampername3").await, 1);
    assert_eq!(w.record_hits("tampername3").await, 1);
    w.server.stop();
    let e = open(&env, "eve@example.com", &other, &other_coll).await;
    e.record("evesecretword").await;
    assert_eq!(e.record_hits("evesecretword").await, 1);
    e.server.stop();

    // One byte flipped in every file of the audit index.
    let audit = search_dir(&env, &ws).join("audit");
    for p in files(&audit) {
        let mut b = std::fs::read(&p).unwrap();
        let mid = b.len() / 2;
        b[mid] ^= 0x40;
        std::fs::write(&p, b).unwrap();
    }
    // The other workspace's records index copied over this one's: sealed
    // under another workspace's key, it does not open here.
    let records = search_dir(&env, &ws).join("records");
    for p in files(&records) {
        std::fs::remove_file(p).unwrap();
    }
    for p in files(&search_dir(&env, &other).join("records")) {
        std::fs::copy(&p, records.join(p.file_name().unwrap())).unwrap();
    }

    let w = open(&env, "owner@example.com", &ws, &coll).await;
    assert_eq!(w.audit_hits("tampername3").await, 1);
    // A word is also a prefix (docs/search.md): the five, and nothing else.
    assert_eq!(w.audit_hits("tampername").await, 5, "prefixes of words");
    assert_eq!(
        w.audit_hits("ampername3").await,
        0,
        "not the middle of a word"
    );
    assert_eq!(w.record_hits("tampername").await, 5, "prefixes of words");
    assert_eq!(w.record_hits("tampername3").await, 1);
    assert_eq!(w.record_hits("evesecretword").await, 0);
    assert_eq!(w.rebuilds().await, 2, "both indexes rebuilt");
    let logs = String::from_utf8_lossy(&w.server.logs()).to_string();
    assert!(
        logs.contains("search index unreadable"),
        "the rebuild is logged: {logs}"
    );
    // Rebuilt and sealed again: the next restart reuses it.
    w.server.stop();
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    assert_eq!(w.audit_hits("tampername4").await, 1);
    assert_eq!(w.record_hits("tampername4").await, 1);
    assert_eq!(w.rebuilds().await, 0);
    w.server.stop();
}

#[tokio::test]
async fn a_purged_workspace_leaves_no_index_files() {
    let env = Env::new();
    let (ws, coll) = setup(&env, "owner@example.com", "Doomed Ltd").await;
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    w.record("doomedword").await;
    assert_eq!(w.audit_hits("doomedword").await, 1);
    assert_eq!(w.record_hits("doomedword").await, 1);
    assert!(!files(&search_dir(&env, &ws)).is_empty());
    let (s, d) = send(
        w.c.post(w.url("/deletion"))
            .json(&json!({"confirm_name": "Doomed Ltd"})),
    )
    .await;
    assert_eq!(s, 200, "{d}");
    w.server.stop();
    let text = cli_later(&env, 40, &["workspace", "purge-due"]);
    assert!(text.contains("1 workspace(s) shredded"), "{text}");
    let left = files(&search_dir(&env, &ws));
    assert!(left.is_empty(), "index files outlive the key: {left:?}");
    assert!(!env.data_dir().join("tenants").join(&ws).exists());
}

#[tokio::test]
async fn an_anonymised_value_is_not_found_by_search_afterwards() {
    let env = Env::new();
    let (ws, coll) = setup(&env, "owner@example.com", "Anon Ltd").await;
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    w.record("keepername").await;
    w.record("forgetmename").await;
    assert_eq!(w.audit_hits("forgetmename").await, 1);
    assert_eq!(w.record_hits("forgetmename").await, 1);
    let (s, done) = send(
        w.c.post(w.url("/data-subjects/anonymise"))
            .json(&json!({"identifier": "forgetmename@example.com"})),
    )
    .await;
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["records"], 1, "{done}");
    assert_eq!(w.audit_hits("forgetmename").await, 0);
    assert_eq!(w.record_hits("forgetmename").await, 0);
    assert_eq!(w.record_hits("keepername").await, 1);
    let pseudonym = done["pseudonym"].as_str().unwrap().to_owned();
    assert_eq!(w.record_hits(&pseudonym).await, 1, "the pseudonym is");
    w.server.stop();

    // A restart does not bring the old words back from the index files.
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    assert_eq!(w.audit_hits("forgetmename").await, 0);
    assert_eq!(w.record_hits("forgetmename").await, 0);
    assert_eq!(w.record_hits("keepername").await, 1);
    assert_eq!(w.rebuilds().await, 0, "rebuilt once already, and kept");
    w.server.stop();
}

#[tokio::test]
async fn expired_audit_entries_leave_the_persisted_index() {
    let env = Env::new();
    let (ws, coll) = setup(&env, "owner@example.com", "Expiry Ltd").await;
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    w.record("expiringword").await;
    w.record("headword").await;
    assert_eq!(w.audit_hits("expiringword").await, 1);
    let (s, _) = send(
        w.c.put(w.url("/audit/settings"))
            .json(&json!({"retention_days": 365})),
    )
    .await;
    assert_eq!(s, 200);
    w.server.stop();
    cli_later(&env, 400, &["audit", "prune"]);
    // The index built before the prune still held the expired entries'
    // words: the next server does not trust it, it rebuilds.
    let w = open(&env, "owner@example.com", &ws, &coll).await;
    assert_eq!(w.audit_hits("expiringword").await, 0);
    assert_eq!(w.rebuilds().await, 1, "the stale index was rebuilt");
    w.server.stop();
}
