//! Attached files in continuous replication (docs/replication.md, "Files"):
//! a file written, replicated and then deleted comes back, with the same
//! SHA-256, from a point-in-time restore in place and into a new dir; a warm
//! standby serves files and follows new ones; a shred removes the
//! workspace's file objects from the replica; a file over 8 MiB goes to an
//! S3-compatible target (moto) as an age-encrypted object, with the lag
//! from its upload to the replica measured.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::replica::{Replicated, files_under, now_ms, ok, rfc3339, start_moto};
use common::{PASSWORD, Server, client, login};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

struct Files {
    base: String,
    coll: String,
    field: String,
    record: String,
}

impl Files {
    fn url(&self, server: &Server, file: Option<&str>) -> String {
        let path = format!(
            "{}/collections/{}/records/{}/files/{}{}",
            self.base,
            self.coll,
            self.record,
            self.field,
            file.map(|f| format!("/{f}")).unwrap_or_default()
        );
        server.url(&path)
    }
}

/// A collection with a multiple-file field and one record in `ws`.
async fn files_in(c: &reqwest::Client, server: &Server, ws: &str) -> Files {
    let base = format!("/api/v1/workspaces/{ws}");
    let coll: Value = c
        .post(server.url(&format!("{base}/collections")))
        .json(&json!({"name": "Guests", "fields": [
            {"name": "Name", "type": "text"},
            {"name": "Documents", "type": "file", "multiple": true}
        ]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let coll_id = coll["id"].as_str().unwrap().to_owned();
    let field = coll["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["type"] == "file")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let rec: Value = c
        .post(server.url(&format!("{base}/collections/{coll_id}/records")))
        .json(&json!({"values": {"Name": "Ada"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    Files {
        base,
        coll: coll_id,
        field,
        record: rec["id"].as_str().unwrap().to_owned(),
    }
}

async fn upload(
    c: &reqwest::Client,
    server: &Server,
    f: &Files,
    name: &str,
    body: Vec<u8>,
) -> String {
    let r = c
        .post(f.url(server, None))
        .query(&[("name", name)])
        .header("content-type", "application/octet-stream")
        .header("origin", server.base.as_str())
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// (status, SHA-256 of the body).
async fn download(c: &reqwest::Client, server: &Server, f: &Files, id: &str) -> (u16, String) {
    let r = c.get(f.url(server, Some(id))).send().await.unwrap();
    let s = r.status().as_u16();
    let body = r.bytes().await.map(|b| b.to_vec()).unwrap_or_default();
    (s, sha(&body))
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

fn pseudo_random(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

fn object(r: &Replicated, ws: &str, id: &str) -> std::path::PathBuf {
    r.dir
        .join("files")
        .join(format!("ws-{ws}"))
        .join(format!("{id}.age"))
}

/// A server on a restored data dir, without replication (it must not
/// contend for the lease).
fn serve_at(r: &Replicated, dir: &Path) -> Server {
    let mut cmd = r.env.command(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.arg("--data-dir").arg(dir);
    Server::start(cmd)
}

/// Write a file, wait for the replica, note the instant; delete it and add
/// another; restoring to the instant (the workspace in place, beside the
/// running server, and the whole appliance into a new dir) gives back the
/// first file with the same SHA-256, and not the second.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_file_comes_back_with_point_in_time_recovery() {
    let r = Replicated::new();
    r.env.create_user("a@example.com", "A");
    let ws = r.env.create_workspace("Filed Co", "a@example.com");
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "a@example.com", PASSWORD).await.status(),
        200
    );
    let f = files_in(&c, &server, &ws).await;
    let a_bytes = pseudo_random(300_000, 3);
    let a = upload(&c, &server, &f, "passport.pdf", a_bytes.clone()).await;
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    r.wait_replicated("control", now_ms());
    assert!(object(&r, &ws, &a).exists(), "the file is in the replica");
    let instant = now_ms();
    tokio::time::sleep(Duration::from_millis(20)).await;
    let s = c
        .delete(f.url(&server, Some(&a)))
        .header("origin", server.base.as_str())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 204);
    let b = upload(&c, &server, &f, "later.bin", pseudo_random(5_000, 5)).await;
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    assert_eq!(download(&c, &server, &f, &a).await.0, 404, "deleted");
    assert!(
        object(&r, &ws, &a).exists(),
        "a deleted file stays in the replica"
    );
    let at = rfc3339(instant);
    let id = r.identity.to_str().unwrap();

    // In place, beside the running server.
    let out = ok(&r.cli(&["restore", "--workspace", &ws, "--at", &at, "--identity", id]));
    assert!(out.contains("1 file(s) fetched and checked"), "{out}");
    assert_eq!(download(&c, &server, &f, &a).await, (200, sha(&a_bytes)));
    assert_eq!(
        download(&c, &server, &f, &b).await.0,
        404,
        "B is after the instant"
    );
    let live = r.env.data_dir().join("tenants").join(&ws).join("files");
    assert!(
        !live.join(&b).exists(),
        "B's bytes left with the state that named it"
    );
    server.stop();

    // The whole appliance, into a new dir.
    let to = r.env.root().join("restored");
    let out = ok(&r.cli(&[
        "restore",
        "--to",
        to.to_str().unwrap(),
        "--at",
        &at,
        "--identity",
        id,
    ]));
    assert!(out.contains("1 file(s) fetched and checked"), "{out}");
    ok(&r.env.cli_at(&to, &["audit", "verify"]));
    let restored = serve_at(&r, &to);
    let c2 = client(&restored);
    assert_eq!(
        login(&c2, &restored, "a@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    assert_eq!(download(&c2, &restored, &f, &a).await, (200, sha(&a_bytes)));
    assert_eq!(download(&c2, &restored, &f, &b).await.0, 404);
    restored.stop();
}

/// A warm standby serves the primary's files and fetches new ones as it
/// follows; once the workspace is shredded, no object of its files is left
/// in the replica.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_standby_serves_files_and_a_shred_removes_them_from_the_replica() {
    let r = Replicated::new();
    r.env.create_user("w@example.com", "W");
    let ws = r.env.create_workspace("Warm Files", "w@example.com");
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "w@example.com", PASSWORD).await.status(),
        200
    );
    let f = files_in(&c, &server, &ws).await;
    let first = pseudo_random(200_000, 9);
    let a = upload(&c, &server, &f, "first.bin", first.clone()).await;
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    r.wait_replicated("control", now_ms());

    let (b, out) = r.restore_latest("warm");
    assert!(out.contains("1 file(s) fetched and checked"), "{out}");
    let mut cmd = r.command_at(&b, &["serve", "--listen", "127.0.0.1:0", "--standby"]);
    cmd.env("AURA_BACKUP__DRILL_IDENTITY_FILE", &r.identity);
    let standby = Server::start(cmd);
    // The same session (the standby's control.db follows the primary's).
    assert_eq!(download(&c, &standby, &f, &a).await, (200, sha(&first)));
    let second = pseudo_random(120_000, 13);
    let id2 = upload(&c, &server, &f, "second.bin", second.clone()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = download(&c, &standby, &f, &id2).await;
        if got.0 == 200 {
            assert_eq!(got.1, sha(&second));
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the standby never served the new file: {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    standby.stop();

    // Shred: the workspace's file objects leave the replica.
    let files_dir = r.dir.join("files").join(format!("ws-{ws}"));
    assert_eq!(files_under(&files_dir).len(), 2, "both files replicated");
    let s = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/deletion")))
        .json(&json!({"confirm_name": "Warm Files"}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 200);
    let mut purge = r.env.command(&["workspace", "purge-due"]);
    purge.env("AURA_TEST_CLOCK_OFFSET", (15 * 86_400).to_string());
    for (k, v) in r.envs() {
        purge.env(k, v);
    }
    let out = ok(&purge.output().unwrap());
    assert!(out.contains("1 workspace(s) shredded"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = files_under(&files_dir);
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "still in the replica: {left:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();
}

/// On S3 (moto): a 10 MiB file goes up as a multipart, age-encrypted
/// object within the replication interval plus its upload, and the whole
/// appliance restores it byte for byte (the sealed bytes as stored).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_large_file_replicates_to_s3_and_restores() {
    let (mut moto, endpoint) = start_moto("aura-files");
    let r = Replicated::on_s3(&endpoint, "aura-files", "site-2");
    r.env.create_user("s@example.com", "S");
    let ws = r.env.create_workspace("Bucket Files", "s@example.com");
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "s@example.com", PASSWORD).await.status(),
        200
    );
    let f = files_in(&c, &server, &ws).await;
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    let big = pseudo_random(10 << 20, 21);
    let id = upload(&c, &server, &f, "big.bin", big.clone()).await;
    let t0 = now_ms();
    let started = Instant::now();
    r.wait_replicated(&format!("ws-{ws}"), t0);
    eprintln!(
        "a 10 MiB file reached the S3 replica {:.2} s after its upload answered (interval 200 ms)",
        started.elapsed().as_secs_f64()
    );
    let listing = common::get_text(
        &reqwest::Client::new(),
        format!("{endpoint}/aura-files?list-type=2&prefix=site-2/files/ws-{ws}/"),
    )
    .await;
    assert!(listing.contains(&format!("{id}.age")), "{listing}");
    let (to, out) = r.restore_latest("from-s3");
    assert!(out.contains("1 file(s) fetched and checked"), "{out}");
    let stored = |root: &Path| {
        std::fs::read(root.join("tenants").join(&ws).join("files").join(&id)).unwrap()
    };
    assert!(
        stored(&to) == stored(&r.env.data_dir()),
        "the sealed bytes as stored"
    );
    server.stop();
    let _ = moto.kill();
    let _ = moto.wait();
}

/// A deleted file stays in the replica while a kept state can name it, and
/// leaves once the oldest kept generation was read after its deletion was
/// noticed (servers started with the clock moved on by days: each start
/// begins a new generation, and retention keeps 7 days).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deleted_file_leaves_the_replica_once_no_kept_state_names_it() {
    let r = Replicated::new();
    r.env.create_user("p@example.com", "P");
    let ws = r.env.create_workspace("Pruned Co", "p@example.com");
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "p@example.com", PASSWORD).await.status(),
        200
    );
    let f = files_in(&c, &server, &ws).await;
    let gone = upload(&c, &server, &f, "gone.bin", pseudo_random(50_000, 31)).await;
    let kept = upload(&c, &server, &f, "kept.bin", pseudo_random(50_000, 37)).await;
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    let s = c
        .delete(f.url(&server, Some(&gone)))
        .header("origin", server.base.as_str())
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 204);
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    server.stop();
    let listing = || -> Vec<String> {
        files_under(&r.dir.join("files").join(format!("ws-{ws}")))
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect()
    };
    // Later starts: the first notices the deletion (a marker), the last
    // finds every kept state newer than it.
    for days in [1, 9, 17] {
        let offset = (days * 86_400).to_string();
        let mut envs = r.envs();
        envs.push(("AURA_TEST_CLOCK_OFFSET", offset));
        let pairs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let s = r.env.start_with(&pairs);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let names = listing();
            let done = match days {
                1 => names
                    .iter()
                    .any(|n| n.starts_with(&format!("{gone}.gone-"))),
                9 => true,
                _ => !names.iter().any(|n| n.starts_with(&gone)),
            };
            if done {
                break;
            }
            assert!(Instant::now() < deadline, "day {days}: {names:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let names = listing();
        if days < 17 {
            assert!(
                names.contains(&format!("{gone}.age")),
                "day {days}: kept while a state may name it: {names:?}"
            );
        }
        assert!(
            names.contains(&format!("{kept}.age")),
            "day {days}: a live file stays: {names:?}"
        );
        // Each start's snapshot is in before the next.
        r.wait_replicated(&format!("ws-{ws}"), now_ms() + days * 86_400_000);
        s.stop();
    }
}

/// The replica drill opens one file of the drilled state (named in its
/// entry as `file_checked`); a damaged file object fails it at `files`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_replica_drill_opens_a_file_and_a_damaged_one_fails_it() {
    let mut r = Replicated::new();
    let out = r.env.cli(
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success());
    let ws = r.env.create_workspace("Drilled Files", "ops@example.com");
    r.extra = vec![(
        "AURA_BACKUP__DRILL_IDENTITY_FILE",
        r.identity.display().to_string(),
    )];
    let server = r.start();
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "ops@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let f = files_in(&c, &server, &ws).await;
    let id = upload(&c, &server, &f, "drilled.bin", pseudo_random(150_000, 41)).await;
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    r.wait_replicated("control", now_ms());
    // The drill starts with a backup drill: a backup first.
    let page = common::get_text(&c, server.url("/platform/backups")).await;
    let token = common::csrf_from(&page);
    let s = c
        .post(server.url("/platform/backups/run"))
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(s, 303);
    // The window ends at the workspace's last change: later writes make
    // most of it hold the file (the drill's instant is random).
    for i in 0..16 {
        let s = c
            .post(server.url(&format!("/api/v1/workspaces/{ws}/teams")))
            .json(&json!({"name": format!("t{i}")}))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 201);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    r.wait_replicated(&format!("ws-{ws}"), now_ms());
    let drill = || async {
        let before = common::mfa::platform_entries(&r.env, "replication.drill").len();
        let page = common::get_text(&c, server.url("/platform/backups")).await;
        let token = common::csrf_from(&page);
        let s = c
            .post(server.url("/platform/backups/drill"))
            .form(&[("csrf", token.as_str())])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(s, 303);
        // The drill runs in the background.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let entries = common::mfa::platform_entries(&r.env, "replication.drill");
            if entries.len() > before {
                return entries.last().cloned().unwrap();
            }
            assert!(Instant::now() < deadline, "no replica drill entry");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let mut checked = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let e = drill().await;
        seen.push(e.to_string());
        assert_eq!(e["after"]["ok"], true, "{e}");
        if !e["after"]["file_checked"].is_null() {
            checked = Some(e);
            break;
        }
    }
    let e = checked.unwrap_or_else(|| panic!("no drill landed on a state with the file: {seen:?}"));
    assert_eq!(e["after"]["file_checked"], id.as_str(), "{e}");

    // One byte flipped in the file's replica object.
    let obj = object(&r, &ws, &id);
    let mut bytes = std::fs::read(&obj).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&obj, bytes).unwrap();
    let mut failed = None;
    for _ in 0..10 {
        let e = drill().await;
        if e["after"]["ok"] == false {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the drill never failed on the damaged file");
    assert_eq!(e["after"]["failed_step"], "files", "{e}");
    server.stop();
}
