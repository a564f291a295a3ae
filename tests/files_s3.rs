//! Files on S3-compatible storage (`[files] url = "s3://…"`), against a real
//! S3 server on loopback (moto, as the backup and replica tests use): the
//! same SHA-256 back, only sealed bytes in the bucket (a canary planted in
//! the file and its name is absent), objects named by ids only, deletion
//! removes the object, an upload cut halfway leaves no object and no
//! multipart upload, backup → restore → download, shredding removes the
//! workspace's objects, a full restore puts files back in the bucket,
//! 250 MiB both ways in bounded memory, a move between two appliances on S3 carries the
//! file, and a bucket outside `residency` refuses to start.

mod common;
#[path = "common/proc.rs"]
mod proc;

use age::secrecy::ExposeSecret;
use common::replica::start_moto;
use common::{Env, PASSWORD, Server, client, login};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const BUCKET: &str = "aura-files";
const PREFIX: &str = "appliance-1";
const CANARY: &[u8] = b"CANARY-passport-7f3e91-in-the-file";

struct World {
    env: Env,
    server: Server,
    ws: String,
    c: reqwest::Client,
    coll: String,
    field: String,
    record: String,
    endpoint: String,
    envs: Vec<(&'static str, String)>,
    _moto: Moto,
}

/// Stops moto when the test ends, passing or not.
struct Moto(std::process::Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl World {
    fn files_url(&self) -> String {
        self.server.url(&format!(
            "/api/v1/workspaces/{}/collections/{}/records/{}/files/{}",
            self.ws, self.coll, self.record, self.field
        ))
    }

    /// An `aura` command with the file storage's environment.
    fn cli(&self, args: &[&str], extra: &[(&str, String)]) -> String {
        let mut c = self.env.command(args);
        for (k, v) in self
            .envs
            .iter()
            .map(|(k, v)| (*k, v))
            .chain(extra.iter().map(|(k, v)| (*k, v)))
        {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {} {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// The keys of the objects under `<prefix>/<workspace>/`.
    async fn objects(&self) -> Vec<String> {
        let listing = reqwest::get(format!(
            "{}/{BUCKET}?list-type=2&prefix={PREFIX}/{}/",
            self.endpoint, self.ws
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
        listing
            .split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_owned)
            .collect()
    }

    async fn object(&self, key: &str) -> Vec<u8> {
        let r = reqwest::get(format!("{}/{BUCKET}/{key}", self.endpoint))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap().to_vec()
    }

    /// Multipart uploads begun and neither completed nor aborted.
    async fn open_multiparts(&self) -> usize {
        let listing = reqwest::get(format!("{}/{BUCKET}?uploads", self.endpoint))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        listing.matches("<UploadId>").count()
    }
}

async fn send(req: reqwest::RequestBuilder) -> (u16, Value) {
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        s,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn world() -> World {
    let (moto, endpoint) = start_moto(BUCKET);
    let moto = Moto(moto);
    let envs: Vec<(&'static str, String)> = vec![
        ("AURA_FILES__URL", format!("s3://{BUCKET}/{PREFIX}")),
        ("AWS_ENDPOINT_URL", endpoint.clone()),
        ("AWS_ACCESS_KEY_ID", "test".into()),
        ("AWS_SECRET_ACCESS_KEY", "test".into()),
    ];
    let env = Env::new();
    env.create_user("owner@example.com", "Owner");
    let ws = env.create_workspace("Bucket Ltd", "owner@example.com");
    let pairs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = env.start_with(&pairs);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let base = server.url(&format!("/api/v1/workspaces/{ws}"));
    let (s, coll) = send(c.post(format!("{base}/collections")).json(&json!({
        "name": "Guests",
        "fields": [
            {"name": "Name", "type": "text"},
            {"name": "Documents", "type": "file", "multiple": true, "pii": true}
        ],
    })))
    .await;
    assert_eq!(s, 201, "{coll}");
    let coll_id = coll["id"].as_str().unwrap().to_owned();
    let field = coll["fields"][1]["id"].as_str().unwrap().to_owned();
    let (s, rec) = send(
        c.post(format!("{base}/collections/{coll_id}/records"))
            .json(&json!({"values": {"Name": "Ada"}})),
    )
    .await;
    assert_eq!(s, 201, "{rec}");
    World {
        env,
        server,
        ws,
        c,
        coll: coll_id,
        field,
        record: rec["id"].as_str().unwrap().to_owned(),
        endpoint,
        envs,
        _moto: moto,
    }
}

async fn upload(w: &World, name: &str, body: Vec<u8>) -> (u16, Value) {
    send(
        w.c.post(w.files_url())
            .query(&[("name", name)])
            .header("content-type", "application/octet-stream")
            .body(body),
    )
    .await
}

async fn download(w: &World, file: &str) -> (u16, Vec<u8>) {
    let r =
        w.c.get(format!("{}/{file}", w.files_url()))
            .send()
            .await
            .unwrap();
    let s = r.status().as_u16();
    (s, r.bytes().await.unwrap().to_vec())
}

fn sha(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

/// Deterministic bytes with the canary planted in the middle.
fn with_canary(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let at = n / 2;
    v[at..at + CANARY.len()].copy_from_slice(CANARY);
    v
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

fn local_files(w: &World) -> Vec<std::path::PathBuf> {
    common::replica::files_under(&w.env.data_dir().join("tenants").join(&w.ws).join("files"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_on_s3_round_trip_sealed_and_go_with_their_deletion() {
    let w = world().await;
    // 12 MiB: a multipart upload of several parts.
    let data = with_canary(12 << 20, 5);
    let name = "CANARY-name-passport.pdf";
    let (s, f) = upload(&w, name, data.clone()).await;
    assert_eq!(s, 201, "{f}");
    let file = f["id"].as_str().unwrap().to_owned();
    assert_eq!(f["sha256"], sha(&data));
    let (s, got) = download(&w, &file).await;
    assert_eq!(s, 200);
    assert_eq!(sha(&got), sha(&data), "the same bytes back from S3");
    // One object, named by ids only, holding sealed bytes.
    let keys = w.objects().await;
    assert_eq!(keys, vec![format!("{PREFIX}/{}/{file}", w.ws)]);
    let sealed = w.object(&keys[0]).await;
    assert!(sealed.starts_with(b"aurafil1"), "a sealed file");
    assert!(sealed.len() > data.len(), "chunk tags added");
    assert!(!contains(&sealed, CANARY), "no plaintext in the bucket");
    assert!(!contains(&sealed, b"CANARY-name"), "no name in the bucket");
    assert!(
        local_files(&w).is_empty(),
        "nothing of it in the data dir: {:?}",
        local_files(&w)
    );
    // Deleting the file removes its object.
    let (s, _) = send(w.c.delete(format!("{}/{file}", w.files_url()))).await;
    assert_eq!(s, 204);
    assert!(w.objects().await.is_empty(), "{:?}", w.objects().await);
    let (s, _) = download(&w, &file).await;
    assert_eq!(s, 404);
    // So does deleting the record that holds one.
    let (s, f) = upload(&w, "second.bin", with_canary(70_000, 6)).await;
    assert_eq!(s, 201, "{f}");
    assert_eq!(w.objects().await.len(), 1);
    let rec_url = w.server.url(&format!(
        "/api/v1/workspaces/{}/collections/{}/records/{}",
        w.ws, w.coll, w.record
    ));
    let (s, p) = send(w.c.delete(rec_url)).await;
    assert!(s == 200 || s == 204, "{s} {p}");
    assert!(w.objects().await.is_empty(), "{:?}", w.objects().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upload_cut_halfway_leaves_no_object_and_no_multipart_upload() {
    let w = world().await;
    // 12 MiB sent (two parts begun), then the body fails.
    let mut chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..48).map(|i| Ok(with_canary(256 * 1024, i))).collect();
    chunks.push(Err(std::io::Error::other("the client went away")));
    let r =
        w.c.post(w.files_url())
            .query(&[("name", "cut.bin")])
            .header("content-type", "application/octet-stream")
            .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
                chunks,
            )))
            .send()
            .await;
    assert!(r.map(|r| r.status() != 201).unwrap_or(true));
    // The abort runs as the server notices; give it a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (objects, parts) = (w.objects().await, w.open_multiparts().await);
        if objects.is_empty() && parts == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "left behind: {objects:?}, {parts} multipart upload(s)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // Too large for the field: refused, nothing left either.
    let (s, _) = send(
        w.c.post(w.files_url())
            .query(&[("name", "big.bin")])
            .header("content-type", "application/octet-stream")
            .body(vec![1u8; 300 << 20]),
    )
    .await;
    assert_eq!(s, 413);
    assert!(w.objects().await.is_empty());
    assert_eq!(w.open_multiparts().await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_restore_and_shredding_work_with_files_on_s3() {
    let w = world().await;
    let data = with_canary(900_000, 9);
    let (s, f) = upload(&w, "scan.pdf", data.clone()).await;
    assert_eq!(s, 201, "{f}");
    let file = f["id"].as_str().unwrap().to_owned();
    let identity = age::x25519::Identity::generate();
    let identity_file = w.env.root().join("backup-identity.txt");
    std::fs::write(
        &identity_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    let ident = identity_file.to_str().unwrap();
    let rcpt = vec![(
        "AURA_BACKUP__RECIPIENTS",
        format!("[\"{}\"]", identity.to_public()),
    )];
    let id = w
        .cli(&["backup", "run"], &rcpt)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    // The drill checks the file's SHA-256 inside the archive.
    w.cli(&["backup", "verify", &id, "--identity", ident], &rcpt);
    let needle = &data[1000..1032];
    for p in common::replica::files_under(&w.env.data_dir().join("backups")) {
        let b = std::fs::read(&p).unwrap();
        assert!(
            !contains(&b, needle) && !contains(&b, CANARY),
            "{}",
            p.display()
        );
    }
    // Removed live (its object goes), then the workspace is restored: the
    // object is back in the bucket and downloads byte for byte.
    let (s, _) = send(w.c.delete(format!("{}/{file}", w.files_url()))).await;
    assert_eq!(s, 204);
    assert!(w.objects().await.is_empty());
    w.cli(
        &[
            "restore",
            "--from",
            &id,
            "--workspace",
            &w.ws,
            "--identity",
            ident,
        ],
        &rcpt,
    );
    assert_eq!(w.objects().await, vec![format!("{PREFIX}/{}/{file}", w.ws)]);
    let (s, got) = download(&w, &file).await;
    assert_eq!(s, 200);
    assert_eq!(sha(&got), sha(&data));
    assert!(
        local_files(&w).is_empty(),
        "restored to the bucket, not the disk"
    );

    // Deleted and purged: the key is destroyed and the objects go.
    let (s, p) = send(
        w.c.post(
            w.server
                .url(&format!("/api/v1/workspaces/{}/deletion", w.ws)),
        )
        .json(&json!({"confirm_name": "Bucket Ltd"})),
    )
    .await;
    assert_eq!(s, 200, "{p}");
    let mut later = rcpt.clone();
    later.push(("AURA_TEST_CLOCK_OFFSET", (15 * 86_400).to_string()));
    let said = w.cli(&["workspace", "purge-due"], &later);
    assert!(said.contains("1 workspace(s) shredded"), "{said}");
    assert!(w.objects().await.is_empty(), "{:?}", w.objects().await);
}

#[test]
fn a_bucket_outside_the_residency_refuses_to_start() {
    let env = Env::new();
    let out = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("AURA_RESIDENCY", "EU")
        .env("AURA_REGION", "EU")
        .env("AURA_FILES__URL", "s3://aura-files/eu-1")
        .env("AURA_FILES__REGION", "US")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("files.region")
            && err.contains("s3://aura-files/eu-1")
            && err.contains("outside this appliance's residency `EU`"),
        "{err}"
    );
    // In the region (its own or, unset, the appliance's), the config loads.
    for region in ["EU", ""] {
        let out = env
            .command(&["workspace", "list"])
            .env("AURA_RESIDENCY", "EU")
            .env("AURA_REGION", "EU")
            .env("AURA_FILES__URL", "s3://aura-files/eu-1")
            .env("AURA_FILES__REGION", region)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A move between two appliances that both keep files on S3 (two prefixes
/// of one bucket): move-out reads the sealed file from the bucket into the
/// bundle, move-in writes it under the target's prefix, and it downloads
/// there with the same SHA-256.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_move_between_appliances_on_s3_carries_the_file() {
    let w = world().await;
    let data = with_canary(400_000, 13);
    let (s, f) = upload(&w, "moving.pdf", data.clone()).await;
    assert_eq!(s, 201, "{f}");
    let file = f["id"].as_str().unwrap().to_owned();
    let target = Env::new();
    target.create_user("owner@example.com", "Owner there");
    let tid = age::x25519::Identity::generate();
    let tid_file = target.root().join("target-identity.txt");
    std::fs::write(&tid_file, format!("{}\n", tid.to_string().expose_secret())).unwrap();
    let bundle = w.env.root().join("bundle.age");
    let said = w.cli(
        &[
            "workspace",
            "move-out",
            &w.ws,
            "--to-recipient",
            &tid.to_public().to_string(),
            "--out",
            bundle.to_str().unwrap(),
        ],
        &[],
    );
    let source_key = said
        .split("--source-key ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .trim_matches(|c: char| !c.is_ascii_hexdigit())
        .to_owned();
    let tenvs: Vec<(&str, String)> = w
        .envs
        .iter()
        .map(|(k, v)| {
            if *k == "AURA_FILES__URL" {
                (*k, format!("s3://{BUCKET}/appliance-2"))
            } else {
                (*k, v.clone())
            }
        })
        .collect();
    let mut c = target.command(&[
        "workspace",
        "move-in",
        bundle.to_str().unwrap(),
        "--identity",
        tid_file.to_str().unwrap(),
        "--source-key",
        &source_key,
    ]);
    for (k, v) in &tenvs {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = reqwest::get(format!(
        "{}/{BUCKET}?list-type=2&prefix=appliance-2/{}/",
        w.endpoint, w.ws
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        listing.contains(&format!("<Key>appliance-2/{}/{file}</Key>", w.ws)),
        "{listing}"
    );
    let placed =
        common::replica::files_under(&target.data_dir().join("tenants").join(&w.ws).join("files"));
    assert!(
        placed.is_empty(),
        "on the target's bucket, not its disk: {placed:?}"
    );
    let pairs: Vec<(&str, &str)> = tenvs.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let server = target.start_with(&pairs);
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = c
        .get(server.url(&format!(
            "/api/v1/workspaces/{}/collections/{}/records/{}/files/{}/{file}",
            w.ws, w.coll, w.record, w.field
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&data));
}

/// 250 MiB up to the bucket and back with the server's peak resident memory
/// watched: parts are streamed, so it stays far below the file's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_file_streams_to_and_from_s3_in_bounded_memory() {
    let w = world().await;
    let pid = w.server.pid();
    let data = with_canary(250 << 20, 21);
    let before = proc::rss_mib(pid);
    let t = std::time::Instant::now();
    let (s, f) = upload(&w, "large.bin", data.clone()).await;
    let up = t.elapsed();
    assert_eq!(s, 201, "{f}");
    let file = f["id"].as_str().unwrap().to_owned();
    let t = std::time::Instant::now();
    let (s, got) = download(&w, &file).await;
    let down = t.elapsed();
    assert_eq!(s, 200);
    assert_eq!(sha(&got), sha(&data));
    let peak = proc::peak_rss_mib(pid);
    eprintln!(
        "250 MiB on S3 (moto): upload {:.0} MB/s, download {:.0} MB/s; RSS {before} MiB before, {peak} MiB peak",
        data.len() as f64 / 1e6 / up.as_secs_f64(),
        data.len() as f64 / 1e6 / down.as_secs_f64()
    );
    assert!(
        peak < before + 100,
        "bounded: {before} MiB before, {peak} MiB peak for a 250 MiB file"
    );
}

/// A full restore writes the backup's sealed files into the new data dir;
/// the server started on it with S3 storage (a new prefix, as after losing
/// the old bucket) moves them into the bucket and serves them from there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_restore_puts_the_files_back_in_the_bucket() {
    let w = world().await;
    let data = with_canary(200_000, 31);
    let (s, f) = upload(&w, "kept.pdf", data.clone()).await;
    assert_eq!(s, 201, "{f}");
    let file = f["id"].as_str().unwrap().to_owned();
    let identity = age::x25519::Identity::generate();
    let identity_file = w.env.root().join("backup-identity.txt");
    std::fs::write(
        &identity_file,
        format!("{}\n", identity.to_string().expose_secret()),
    )
    .unwrap();
    let rcpt = vec![(
        "AURA_BACKUP__RECIPIENTS",
        format!("[\"{}\"]", identity.to_public()),
    )];
    let id = w
        .cli(&["backup", "run"], &rcpt)
        .lines()
        .last()
        .unwrap()
        .trim()
        .to_owned();
    let restored = w.env.root().join("restored");
    w.cli(
        &[
            "restore",
            "--from",
            &id,
            "--to",
            restored.to_str().unwrap(),
            "--identity",
            identity_file.to_str().unwrap(),
        ],
        &rcpt,
    );
    let local = restored
        .join("tenants")
        .join(&w.ws)
        .join("files")
        .join(&file);
    assert!(local.exists(), "the full restore wrote the sealed file");
    let mut cmd = w.env.command(&["serve", "--listen", "127.0.0.1:0"]);
    cmd.arg("--data-dir").arg(&restored);
    for (k, v) in &w.envs {
        cmd.env(k, v);
    }
    // A new prefix, as after losing the old bucket.
    cmd.env("AURA_FILES__URL", format!("s3://{BUCKET}/restored-1"));
    let server = Server::start(cmd);
    let key = format!("restored-1/{}/{file}", w.ws);
    let listed = || async {
        reqwest::get(format!(
            "{}/{BUCKET}?list-type=2&prefix=restored-1/",
            w.endpoint
        ))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !listed().await.contains(&key) || local.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the file was not moved into the bucket"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // One file object (beside the prefix's `.aura-owner`).
    let keys = listed().await;
    assert_eq!(keys.matches("<Key>").count(), 2, "{keys}");
    assert!(keys.contains(".aura-owner</Key>"), "{keys}");
    let c = client(&server);
    assert_eq!(
        login(&c, &server, "owner@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    let r = c
        .get(server.url(&format!(
            "/api/v1/workspaces/{}/collections/{}/records/{}/files/{}/{file}",
            w.ws, w.coll, w.record, w.field
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(sha(&r.bytes().await.unwrap()), sha(&data));
}

/// A files prefix belongs to one appliance: the first to serve writes
/// `<prefix>/.aura-owner` naming its audit key, and another appliance
/// (another data dir, another key) started on the same prefix refuses to
/// start and names the fix, instead of sweeping the first one's files as
/// orphans. The same appliance starts again, and its file still downloads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_appliance_on_the_same_prefix_refuses_to_start() {
    let w = world().await;
    let data = with_canary(50_000, 21);
    let (s, f) = upload(&w, "kept.pdf", data.clone()).await;
    assert_eq!(s, 201, "{f}");
    let other = Env::new();
    let mut cmd = other.command(&["serve", "--listen", "127.0.0.1:0"]);
    for (k, v) in &w.envs {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the second appliance started on the first one's prefix");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(!status.success(), "the second appliance started");
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(
        err.contains("belongs to another appliance") && err.contains("its own prefix"),
        "{err}"
    );
    let (s, got) = download(&w, f["id"].as_str().unwrap()).await;
    assert_eq!(s, 200);
    assert_eq!(
        sha(&got),
        sha(&data),
        "the first appliance's file is intact"
    );
}
