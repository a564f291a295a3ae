//! An acknowledged write survives a power cut: synchronous=FULL plus WAL means a
//! committed transaction is on disk before the response is sent.
//!
//! `kill -9` alone keeps the kernel's page cache, so it cannot tell a write
//! that was fsynced from one that was not. The server here runs with
//! `AURA_TEST_POWER_CUT_VFS=1` (debug builds only, `store::power_cut`): every
//! SQLite write since its file's last fsync lives in the server's memory, so
//! `kill -9` drops exactly the unsynced writes, as a power cut would. With
//! `storage.synchronous = "normal"` the same run loses acknowledged writes,
//! which shows the test can fail.

mod common;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Env, PASSWORD, Server, client, login, open_db};
use rand::Rng;

const EMAIL: &str = "dur@example.com";
const RECORD_WRITERS: usize = 8;
const SIGN_IN_WRITERS: usize = 2;

#[tokio::test]
async fn acknowledged_sessions_survive_sigkill() {
    let env = Env::new();
    env.create_user(EMAIL, "Dur");
    env.create_workspace("Durable", EMAIL);
    let server = env.start();
    let mut cookies = Vec::new();
    for _ in 0..5 {
        let r = login(&client(&server), &server, EMAIL, PASSWORD).await;
        assert_eq!(r.status(), 200);
        cookies.push(session_cookie(&r));
    }
    server.kill9();

    let server = env.start();
    for cookie in &cookies {
        assert!(
            session_valid(&server, cookie).await,
            "session acknowledged before the crash is still valid"
        );
    }
    server.stop();
    assert_eq!(control_logins(&env), 5);
}

/// The promise: records created and sign-ins made by concurrent clients, cut
/// at a random moment, 20 times; every acknowledged one is there afterwards,
/// with exactly one audit entry each, and both chains are intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_power_cuts() {
    let f = power_cuts("full", 20).await;
    assert_eq!(f.cuts, 20);
    assert_eq!(
        (f.lost_records, f.lost_sign_ins),
        (0, 0),
        "synchronous=full lost acknowledged writes: {f:?}"
    );
}

/// The proof can fail: `synchronous=normal` acknowledges before the WAL is
/// fsynced, and the same power cuts lose acknowledged writes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn power_cuts_lose_writes_acknowledged_without_fsync() {
    let f = power_cuts("normal", 8).await;
    assert!(
        f.lost_records + f.lost_sign_ins > 0,
        "the power-cut layer did not catch unsynced acknowledged writes: {f:?}"
    );
}

/// `synchronous=off` (no fsync at all) is not a value an operator can set.
#[test]
fn synchronous_off_is_refused() {
    let env = Env::new();
    let out = env
        .command(&["doctor"])
        .env("AURA_STORAGE__SYNCHRONOUS", "off")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(
        format!("{stdout}{stderr}").contains("key `storage.synchronous`"),
        "{stdout}{stderr}"
    );
}

#[derive(Debug, Default)]
#[allow(dead_code)] // read through Debug
struct Figures {
    synchronous: String,
    cuts: usize,
    acked_records: usize,
    lost_records: usize,
    acked_sign_ins: usize,
    lost_sign_ins: usize,
}

#[derive(Default)]
struct Acked {
    records: Vec<String>,
    cookies: Vec<String>,
}

async fn power_cuts(synchronous: &str, cuts: usize) -> Figures {
    let env = Env::new();
    env.create_user(EMAIL, "Dur");
    let ws = env.create_workspace("Durable", EMAIL);
    // The collection is made and flushed before the cuts begin.
    let server = env.start();
    let records_path = create_collection(&server, &ws).await;
    server.stop();

    let layer = [
        ("AURA_TEST_POWER_CUT_VFS", "1"),
        ("AURA_STORAGE__SYNCHRONOUS", synchronous),
    ];
    let acked = Arc::new(Mutex::new(Acked::default()));
    for _ in 0..cuts {
        let server = env.start_with(&layer);
        let writer = client(&server);
        assert_eq!(login(&writer, &server, EMAIL, PASSWORD).await.status(), 200);
        let round = Arc::new(Mutex::new(Acked::default()));
        let mut tasks = Vec::new();
        for n in 0..RECORD_WRITERS {
            let (c, url, round) = (writer.clone(), server.url(&records_path), round.clone());
            tasks.push(tokio::spawn(create_records(c, url, n, round)));
        }
        for _ in 0..SIGN_IN_WRITERS {
            let (url, round) = (server.url("/api/v1/auth/login"), round.clone());
            tasks.push(tokio::spawn(sign_in(url, round)));
        }
        // Cut at a random moment once both kinds of write have been
        // acknowledged, while more are in flight.
        for _ in 0..600 {
            let both = {
                let r = round.lock().unwrap();
                !r.records.is_empty() && !r.cookies.is_empty()
            };
            if both {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let delay = rand::thread_rng().gen_range(0..500);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill9();
        for t in tasks {
            t.await.unwrap();
        }
        let mut round = std::mem::take(&mut *round.lock().unwrap());
        assert!(
            !round.records.is_empty() && !round.cookies.is_empty(),
            "writes were acknowledged before the cut"
        );
        let mut all = acked.lock().unwrap();
        all.records.append(&mut round.records);
        all.cookies.append(&mut round.cookies);
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());

    // Boot after the last cut (a plain boot: the disk is what it is).
    let server = env.start();
    let mut lost_sign_ins = 0;
    for cookie in &acked.cookies {
        if !session_valid(&server, cookie).await {
            lost_sign_ins += 1;
        }
    }
    server.stop();
    let db = open_db(&env.tenant_db(&ws));
    let present: HashSet<String> = db
        .prepare("SELECT id FROM records")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let lost_records = acked
        .records
        .iter()
        .filter(|id| !present.contains(*id))
        .count();
    let entries = aura::store::audit::all_entries(&db).unwrap();
    assert_eq!(
        entries
            .iter()
            .filter(|e| e.action == "record.created")
            .count(),
        present.len(),
        "exactly one audit entry per record on disk"
    );
    assert!(matches!(
        aura::audit::verify_chain(&entries),
        aura::audit::ChainCheck::Intact { .. }
    ));
    let control = open_db(&env.data_dir().join("control.db"));
    let sessions: usize = control
        .query_row("SELECT count(*) FROM sessions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        control_logins(&env),
        sessions,
        "exactly one audit entry per session on disk"
    );
    assert!(matches!(
        aura::audit::verify_chain(&aura::store::audit::all_entries(&control).unwrap()),
        aura::audit::ChainCheck::Intact { .. }
    ));
    let f = Figures {
        synchronous: synchronous.to_owned(),
        cuts,
        acked_records: acked.records.len(),
        lost_records,
        acked_sign_ins: acked.cookies.len(),
        lost_sign_ins,
    };
    println!("power cuts: {f:?}");
    f
}

async fn create_collection(server: &Server, ws: &str) -> String {
    let c = client(server);
    assert_eq!(login(&c, server, EMAIL, PASSWORD).await.status(), 200);
    let coll: serde_json::Value = c
        .post(server.url(&format!("/api/v1/workspaces/{ws}/collections")))
        .json(&serde_json::json!({"name": "Ledger", "fields": [{"name": "N", "type": "integer"}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    format!(
        "/api/v1/workspaces/{ws}/collections/{}/records",
        coll["id"].as_str().unwrap()
    )
}

/// Creates records until the server goes away; keeps each acknowledged id.
async fn create_records(c: reqwest::Client, url: String, n: usize, round: Arc<Mutex<Acked>>) {
    for i in 0.. {
        let r = c
            .post(&url)
            .json(&serde_json::json!({"values": {"N": n * 1_000_000 + i}}))
            .send()
            .await;
        let Ok(r) = r else { return };
        if r.status() != 201 {
            return;
        }
        let Ok(v) = r.json::<serde_json::Value>().await else {
            return;
        };
        round
            .lock()
            .unwrap()
            .records
            .push(v["id"].as_str().unwrap().to_owned());
    }
}

/// Signs in until the server goes away; keeps each acknowledged session.
async fn sign_in(url: String, round: Arc<Mutex<Acked>>) {
    loop {
        let r = reqwest::Client::new()
            .post(&url)
            .json(&serde_json::json!({ "email": EMAIL, "password": PASSWORD }))
            .send()
            .await;
        match r {
            Ok(r) if r.status() == 200 => round.lock().unwrap().cookies.push(session_cookie(&r)),
            _ => return,
        }
    }
}

fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}

async fn session_valid(server: &Server, cookie: &str) -> bool {
    let r = reqwest::Client::new()
        .get(server.url("/api/v1/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    r.status() == 200
}

/// A file or directory is on disk after a power cut only once the directory
/// naming it is fsynced: `aura init` (a new key directory, key file, data
/// dir, tenants dir and control.db) and `aura workspace create` (its directory
/// and data.db) fsync every parent, seen with `strace -y`.
#[test]
fn created_files_and_directories_are_fsynced_in_their_parent() {
    let env = Env::new();
    let root = env.root().canonicalize().unwrap();
    let fresh = root.join("fresh");
    let (keys, data) = (fresh.join("keys"), fresh.join("data"));
    let mut init = env.command(&["init"]);
    init.arg("--data-dir")
        .arg(&data)
        .env("AURA_MASTER_KEY_FILE", keys.join("master.key"));
    let synced = fsynced_paths(&root, init);
    for dir in [&root, &fresh, &keys, &data] {
        assert!(
            synced.contains(&dir.display().to_string()),
            "init fsynced {}: {synced:?}",
            dir.display()
        );
    }
    let tenants = env.data_dir().canonicalize().unwrap().join("tenants");
    env.create_user("dirs@example.com", "Dirs");
    let create = env.command(&[
        "workspace",
        "create",
        "--name",
        "Dirs",
        "--owner",
        "dirs@example.com",
    ]);
    let synced = fsynced_paths(&root, create);
    let ws_dir = format!("{}/", tenants.display());
    assert!(
        synced.contains(&tenants.display().to_string())
            && synced.iter().any(|p| p.starts_with(&ws_dir)),
        "workspace create fsynced tenants/ and tenants/<id>/: {synced:?}"
    );
}

/// Runs `cmd` under `strace -f -y` and answers the paths it fsynced.
fn fsynced_paths(root: &std::path::Path, cmd: std::process::Command) -> HashSet<String> {
    let trace = root.join(format!("strace-{}.txt", rand::random::<u32>()));
    let mut s = std::process::Command::new("strace");
    s.args(["-f", "-y", "-qq", "-e", "trace=fsync,fdatasync", "-o"])
        .arg(&trace)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => s.env(k, v),
            None => s.env_remove(k),
        };
    }
    let out = s.output().expect("strace (apt-get install strace)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&trace)
        .unwrap()
        .lines()
        .filter_map(|l| Some(l.split_once('<')?.1.split_once(">)")?.0.to_owned()))
        .collect()
}

/// `auth.login` entries in control.db's audit log (read after a stop).
fn control_logins(env: &Env) -> usize {
    let db = open_db(&env.data_dir().join("control.db"));
    aura::store::audit::all_entries(&db)
        .unwrap()
        .iter()
        .filter(|e| e.action == "auth.login")
        .count()
}
