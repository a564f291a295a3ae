//! Hostile load (issue 27, findings 1, 2, 3, 9 and 10): each scenario drives
//! one attack on loopback, bounded in count and time, against a real server
//! whose descriptor limit the test sets. While it runs, a normal client
//! (from 127.0.0.2, another address than the attackers) must get `/healthz`
//! within 1 s and sign in within 2 s, and the server's RSS must stay under
//! 512 MB; afterwards its descriptors must come back near where they started.
//! The scenarios run one after another (a lock), since they measure time.
//! Each prints its figures (`cargo test --test hostile_load -- --nocapture`);
//! docs/benchmarks.md records them.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::unix::process::CommandExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Env, PASSWORD, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const RSS_LIMIT_MB: u64 = 512;
const HEALTHZ_WITHIN: Duration = Duration::from_secs(1);
const SIGNIN_WITHIN: Duration = Duration::from_secs(2);
const NORMAL: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test process holds many sockets: raise its soft limit to the hard one.
fn raise_own_nofile() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    setrlimit(Resource::RLIMIT_NOFILE, hard, hard).unwrap();
}

/// Starts the server with `nofile` as its descriptor limit (soft and hard),
/// as `LimitNOFILE=` would set it.
fn start(env: &Env, nofile: u64, envs: &[(&str, &str)]) -> Server {
    let mut c = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    for (k, v) in envs {
        c.env(k, v);
    }
    // Few tenant databases open: the descriptor reserve stays small.
    c.env("AURA_STORAGE__TENANT_POOL_SIZE", "8");
    unsafe {
        c.pre_exec(move || {
            nix::sys::resource::setrlimit(
                nix::sys::resource::Resource::RLIMIT_NOFILE,
                nofile,
                nofile,
            )
            .map_err(std::io::Error::from)
        });
    }
    Server::start(c)
}

fn rss_mb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|k| k.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

fn normal_client() -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(NORMAL)
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

/// What one probe of the normal client saw.
#[derive(Debug, Default, Clone, Copy)]
struct Probe {
    healthz: Duration,
    signin: Duration,
    rss_mb: u64,
}

/// The normal client's check: `/healthz` and a sign-in, each timed, and the
/// server's RSS; panics (with `what`) when a bound is broken.
async fn probe(server: &Server, what: &str) -> Probe {
    let c = normal_client();
    let t = Instant::now();
    let r = c.get(server.url("/healthz")).send().await;
    let healthz = t.elapsed();
    assert!(
        matches!(&r, Ok(r) if r.status() == 200),
        "{what}: /healthz failed: {r:?}"
    );
    let t = Instant::now();
    let r = c
        .post(server.url("/api/v1/auth/token"))
        .json(&serde_json::json!({ "email": "ada@example.com", "password": PASSWORD }))
        .send()
        .await;
    let signin = t.elapsed();
    match r {
        Ok(r) if r.status() == 200 => {}
        Ok(r) => {
            let logs = String::from_utf8_lossy(&server.logs()).to_string();
            let why: Vec<&str> = logs
                .lines()
                .filter(|l| l.contains("refused") || l.contains("shed"))
                .filter(|l| !l.contains("priority\":false"))
                .take(5)
                .collect();
            panic!(
                "{what}: sign-in failed: {} {}\n{why:#?}",
                r.status(),
                r.text().await.unwrap_or_default()
            )
        }
        Err(e) => panic!("{what}: sign-in failed: {e}"),
    }
    let rss = rss_mb(server.pid());
    let p = Probe {
        healthz,
        signin,
        rss_mb: rss,
    };
    assert!(
        healthz <= HEALTHZ_WITHIN,
        "{what}: /healthz took {healthz:?}"
    );
    assert!(signin <= SIGNIN_WITHIN, "{what}: sign-in took {signin:?}");
    assert!(rss < RSS_LIMIT_MB, "{what}: RSS {rss} MB");
    p
}

/// Probes every 500 ms until `until` ends; returns the worst of each figure.
async fn probe_during(server: &Server, what: &str, until: Instant) -> Probe {
    let mut worst = Probe::default();
    loop {
        let p = probe(server, what).await;
        worst.healthz = worst.healthz.max(p.healthz);
        worst.signin = worst.signin.max(p.signin);
        worst.rss_mb = worst.rss_mb.max(p.rss_mb);
        if Instant::now() >= until {
            return worst;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn threads(pid: u32) -> usize {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("Threads:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// Waits (up to 30 s: idle blocking threads linger 10 s) for the server's
/// threads to come back to within `slack` of `start`; returns the count seen.
async fn threads_settle(pid: u32, start: usize, slack: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let n = threads(pid);
        if n <= start + slack || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits (up to 20 s) for the server's descriptors to come back to within
/// `slack` of `start`; returns the count seen.
async fn fds_settle(pid: u32, start: usize, slack: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let n = fds(pid);
        if n <= start + slack || Instant::now() > deadline {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn setup() -> Env {
    raise_own_nofile();
    let env = Env::new();
    env.create_user("ada@example.com", "Ada");
    env.create_workspace("Acme", "ada@example.com");
    env
}

async fn connect_from(ip: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(ip, 0))?;
    s.connect(to).await
}

/// Finding 1: 900 connections trickle a request head one byte at a time from
/// nine addresses, against a server allowed 768 descriptors. Unfixed, they
/// took every descriptor and the accept loop spun.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_header_connections_do_not_exhaust_descriptors() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(&env, 768, &[]);
    let pid = server.pid();
    let addr: SocketAddr = server.addr().parse().unwrap();
    probe(&server, "before").await;
    let fds_start = fds(pid);

    let started = Instant::now();
    let closed_early = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..900u32 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1 + (i % 9) as u8));
        let closed_early = Arc::clone(&closed_early);
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = connect_from(ip, addr).await else {
                closed_early.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaa";
            // One byte every 1.5 s, for up to 16 s.
            for b in head.iter().take(11) {
                if s.write_all(&[*b]).await.is_err() {
                    closed_early.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                let mut buf = [0u8; 64];
                match tokio::time::timeout(Duration::from_millis(1500), s.read(&mut buf)).await {
                    Ok(Ok(0)) | Ok(Err(_)) => {
                        closed_early.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    _ => {}
                }
            }
        }));
        if i % 100 == 99 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_peak_early = fds(pid);
    let worst = probe_during(
        &server,
        "900 slow-header connections",
        started + Duration::from_secs(14),
    )
    .await;
    let fds_peak = fds_peak_early.max(fds(pid));
    for t in tasks {
        let _ = t.await;
    }
    let fds_end = fds_settle(pid, fds_start, 16).await;
    println!(
        "slow headers: 900 connections; worst healthz {:?}, sign-in {:?}, RSS {} MB; \
         {} closed by the server; descriptors {fds_start} -> peak {fds_peak} -> {fds_end}",
        worst.healthz,
        worst.signin,
        worst.rss_mb,
        closed_early.load(Ordering::Relaxed)
    );
    assert!(
        closed_early.load(Ordering::Relaxed) > 0,
        "the server closed no slow connection"
    );
    assert!(fds_peak < 768, "descriptors reached the limit: {fds_peak}");
    assert!(
        fds_end <= fds_start + 16,
        "descriptors {fds_start} -> {fds_end}"
    );
    server.stop();
}

/// Finding 2: 60 anonymous 16 MiB bodies to an import path. Unfixed, each
/// was buffered (twice) before routing and authentication: RSS passed 1 GB.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn anonymous_large_bodies_are_refused_before_reading() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(&env, 4096, &[]);
    let pid = server.pid();
    let addr: SocketAddr = server.addr().parse().unwrap();
    probe(&server, "before").await;
    let fds_start = fds(pid);
    let rss_start = rss_mb(pid);

    const BODY: usize = 16 * 1024 * 1024;
    let started = Instant::now();
    let statuses = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..60 {
        let statuses = Arc::clone(&statuses);
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                return;
            };
            let ws = uuid::Uuid::new_v4();
            let head = format!(
                "POST /api/v1/workspaces/{ws}/import HTTP/1.1\r\nHost: x\r\n\
                 Content-Type: text/csv\r\nContent-Length: {BODY}\r\nX-N: {i}\r\n\r\n"
            );
            if s.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![b'a'; 64 * 1024];
            let mut sent = 0;
            let send = async {
                while sent < BODY {
                    if s.write_all(&chunk).await.is_err() {
                        break;
                    }
                    sent += chunk.len();
                }
            };
            let _ = tokio::time::timeout(Duration::from_secs(20), send).await;
            let mut buf = vec![0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .ok()
                .and_then(|r| r.ok())
                .unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n])
                .lines()
                .next()
                .unwrap_or("")
                .to_owned();
            statuses.lock().unwrap().push((sent, line));
        }));
    }
    let mut worst = Probe::default();
    while tasks.iter().any(|t| !t.is_finished()) {
        let p = probe(&server, "60 anonymous 16 MiB bodies").await;
        worst.healthz = worst.healthz.max(p.healthz);
        worst.signin = worst.signin.max(p.signin);
        worst.rss_mb = worst.rss_mb.max(p.rss_mb);
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "bodies never ended"
        );
    }
    for t in tasks {
        t.await.unwrap();
    }
    let statuses = statuses.lock().unwrap().clone();
    let accepted_bytes: usize = statuses.iter().map(|(s, _)| *s).sum();
    let fds_end = fds_settle(pid, fds_start, 16).await;
    println!(
        "large bodies: 60 x 16 MiB anonymous; worst healthz {:?}, sign-in {:?}, RSS {rss_start} -> peak {} MB; \
         {} MiB written by clients before the server stopped them; descriptors {fds_start} -> {fds_end}; \
         first answer {:?}",
        worst.healthz,
        worst.signin,
        worst.rss_mb,
        accepted_bytes / (1024 * 1024),
        statuses.first().map(|s| &s.1)
    );
    for (_, line) in &statuses {
        assert!(
            line.is_empty() || line.contains(" 401 ") || line.contains(" 413 "),
            "an anonymous import got {line}"
        );
    }
    assert!(
        fds_end <= fds_start + 16,
        "descriptors {fds_start} -> {fds_end}"
    );
    server.stop();
}

/// Finding 3: 1,000 wrong sign-ins, each from a fresh address of one IPv6
/// /64, through a trusted proxy. Unfixed, every one was a separate address
/// and queued an argon2 check: a real sign-in waited many seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_sign_ins_from_one_ipv6_64_do_not_starve_sign_in() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(
        &env,
        4096,
        &[("AURA_TLS__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]")],
    );
    let pid = server.pid();
    probe(&server, "before").await;
    let fds_start = fds(pid);
    let threads_start = threads(pid);

    let proxy = reqwest::Client::builder()
        .pool_max_idle_per_host(200)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = server.url("/api/v1/auth/token");
    let started = Instant::now();
    let counts = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    // 100 in flight at a time: on the shared 2-core CI machine the test's
    // own client would otherwise take the CPU the server needs.
    let sem = Arc::new(tokio::sync::Semaphore::new(100));
    let mut tasks = Vec::new();
    for i in 0..1000u32 {
        let (proxy, url, counts, sem) = (
            proxy.clone(),
            url.clone(),
            Arc::clone(&counts),
            Arc::clone(&sem),
        );
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let r = proxy
                .post(&url)
                .header("x-forwarded-for", format!("2001:db8:1:2::{:x}", i + 1))
                .json(&serde_json::json!({
                    "email": format!("guess{i}@example.com"),
                    "password": "not the password at all"
                }))
                .send()
                .await;
            let status = r.map(|r| r.status().as_u16()).unwrap_or(0);
            *counts.lock().unwrap().entry(status).or_insert(0u32) += 1;
        }));
    }
    let mut worst = Probe::default();
    while tasks.iter().any(|t| !t.is_finished()) {
        let p = probe(&server, "1,000 wrong sign-ins from one /64").await;
        worst.healthz = worst.healthz.max(p.healthz);
        worst.signin = worst.signin.max(p.signin);
        worst.rss_mb = worst.rss_mb.max(p.rss_mb);
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "attempts never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    let counts = counts.lock().unwrap().clone();
    drop(proxy);
    let fds_end = fds_settle(pid, fds_start, 16).await;
    let threads_end = threads_settle(pid, threads_start, 8).await;
    println!(
        "sign-in flood: 1,000 wrong sign-ins from one /64 in {took:?}; statuses {counts:?}; \
         worst healthz {:?}, sign-in {:?}, RSS {} MB; descriptors {fds_start} -> {fds_end}; \
         threads {threads_start} -> {threads_end}",
        worst.healthz, worst.signin, worst.rss_mb
    );
    assert!(
        fds_end <= fds_start + 16,
        "descriptors {fds_start} -> {fds_end}"
    );
    assert!(
        threads_end <= threads_start + 8,
        "threads {threads_start} -> {threads_end}"
    );
    let refused = counts.get(&429).copied().unwrap_or(0) + counts.get(&503).copied().unwrap_or(0);
    assert!(
        refused >= 900,
        "the /64 was not limited as one address: {counts:?}"
    );
    server.stop();
}

/// Finding 3, the other half: 600 wrong sign-ins each from its own /64, so
/// no per-address limit applies. The hashing queue is bounded (here 8, with
/// one worker): the rest are shed with 429 and `Retry-After` instead of
/// queueing, and the normal client, whose address signed in before, goes
/// first for the worker.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_ins_from_many_networks_are_shed_not_queued() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(
        &env,
        4096,
        &[
            ("AURA_TLS__TRUSTED_PROXIES", "[\"127.0.0.1/32\"]"),
            ("AURA_LIMITS__PASSWORD_QUEUE", "8"),
            // argon2 keeps every hashing worker busy while the flood lasts;
            // on the 2-core CI machine (shared with builds) one core stays
            // for answering requests.
            ("AURA_AUTH__PASSWORD_WORKERS", "1"),
        ],
    );
    probe(&server, "before").await;
    let proxy = reqwest::Client::builder()
        .pool_max_idle_per_host(200)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let url = server.url("/api/v1/auth/token");
    let started = Instant::now();
    let counts = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let sem = Arc::new(tokio::sync::Semaphore::new(200));
    let mut tasks = Vec::new();
    for i in 0..600u32 {
        let (proxy, url, counts, sem) = (
            proxy.clone(),
            url.clone(),
            Arc::clone(&counts),
            Arc::clone(&sem),
        );
        tasks.push(tokio::spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let r = proxy
                .post(&url)
                .header(
                    "x-forwarded-for",
                    format!("2001:db8:{:x}:{:x}::1", i / 256 + 1, i % 256),
                )
                .json(&serde_json::json!({
                    "email": format!("guess{i}@example.com"),
                    "password": "not the password at all"
                }))
                .send()
                .await;
            let (status, retry) = match r {
                Ok(r) => (r.status().as_u16(), r.headers().contains_key("retry-after")),
                Err(_) => (0, false),
            };
            assert!(status != 429 || retry, "429 without Retry-After");
            *counts.lock().unwrap().entry(status).or_insert(0u32) += 1;
        }));
    }
    let mut worst = Probe::default();
    while tasks.iter().any(|t| !t.is_finished()) {
        let p = probe(&server, "600 wrong sign-ins from 600 networks").await;
        worst.healthz = worst.healthz.max(p.healthz);
        worst.signin = worst.signin.max(p.signin);
        worst.rss_mb = worst.rss_mb.max(p.rss_mb);
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "attempts never ended"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for t in tasks {
        t.await.unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    println!(
        "sign-in flood from 600 networks: {:?}; statuses {counts:?}; worst healthz {:?}, \
         sign-in {:?}, RSS {} MB",
        started.elapsed(),
        worst.healthz,
        worst.signin,
        worst.rss_mb
    );
    assert!(
        counts.get(&429).copied().unwrap_or(0) > 0,
        "nothing was shed: {counts:?}"
    );
    server.stop();
}

/// Finding 9: a flood of anonymous passkey sign-in ceremonies from one
/// address. Unfixed, each was stored (the whole map scanned under a lock).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passkey_ceremony_flood_is_limited_per_address() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(&env, 4096, &[("AURA_PUBLIC_URL", "http://localhost")]);
    probe(&server, "before").await;
    let url = server.url("/api/v1/auth/passkey/start");
    let c = reqwest::Client::new();
    let started = Instant::now();
    let counts = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (c, url, counts) = (c.clone(), url.clone(), Arc::clone(&counts));
        tasks.push(tokio::spawn(async move {
            for _ in 0..150 {
                let status = match c.post(&url).json(&serde_json::json!({})).send().await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                *counts.lock().unwrap().entry(status).or_insert(0u32) += 1;
            }
        }));
    }
    let worst = probe_during(
        &server,
        "passkey ceremony flood",
        started + Duration::from_secs(3),
    )
    .await;
    for t in tasks {
        t.await.unwrap();
    }
    let counts = counts.lock().unwrap().clone();
    println!(
        "passkey flood: 4,800 ceremony starts from one address in {:?}; statuses {counts:?}; \
         worst healthz {:?}, sign-in {:?}, RSS {} MB",
        started.elapsed(),
        worst.healthz,
        worst.signin,
        worst.rss_mb
    );
    assert!(
        counts.get(&200).copied().unwrap_or(0) <= 200,
        "one address started too many ceremonies: {counts:?}"
    );
    assert!(counts.get(&429).copied().unwrap_or(0) > 0, "{counts:?}");
    // Another address still can.
    let r = normal_client()
        .post(&url)
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.stop();
}

/// Finding 10: every route has a request budget per address and per
/// credential; a refusal is 429 with `Retry-After` and the IETF
/// `RateLimit`/`RateLimit-Policy` headers, and is counted in the metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn request_rate_limits_answer_429_with_headers() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(
        &env,
        4096,
        &[
            ("AURA_LIMITS__RATE__PUBLIC__PER_ADDRESS", "20"),
            ("AURA_LIMITS__RATE__READ__PER_TOKEN", "30"),
            ("AURA_METRICS__BEARER_TOKEN", "metrics-secret-token-123"),
        ],
    );
    let c = reqwest::Client::new();
    let mut refused = None;
    for i in 0..40 {
        let r = c.get(server.url("/trust.json")).send().await.unwrap();
        if i == 0 {
            assert_eq!(r.status(), 200);
            assert!(r.headers().contains_key("ratelimit"), "{:?}", r.headers());
            assert!(r.headers().contains_key("ratelimit-policy"));
        }
        if r.status() == 429 {
            refused = Some(i);
            let h = r.headers();
            let retry: u64 = h["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&retry), "retry-after {retry}");
            let policy = h["ratelimit-policy"].to_str().unwrap();
            assert!(
                policy.contains("q=20") && policy.contains("w=60"),
                "{policy}"
            );
            let rl = h["ratelimit"].to_str().unwrap();
            assert!(rl.contains("r=0"), "{rl}");
            assert_eq!(h["content-type"], "application/problem+json");
            break;
        }
    }
    let at = refused.expect("no 429 from /trust.json");
    assert!(at >= 20, "refused too early, at {at}");
    // Another address has its own budget.
    let r = normal_client()
        .get(server.url("/trust.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Per credential: a session's reads.
    let r = common::token_request(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut refused = None;
    for i in 0..60 {
        let s = common::bearer_status(&server, &token, "/api/v1/me").await;
        if s == 429 {
            refused = Some(i);
            break;
        }
        assert_eq!(s, 200);
    }
    let at = refused.expect("no 429 for a token's reads");
    assert!(at >= 30, "refused too early, at {at}");

    let m = common::bearer_status(&server, "metrics-secret-token-123", "/metrics").await;
    assert_eq!(m, 200);
    let text = common::bearer(
        reqwest::Method::GET,
        &server,
        "metrics-secret-token-123",
        "/metrics",
    )
    .send()
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    assert!(
        text.contains("aura_rate_limited_total{class=\"public\",by=\"address\"}"),
        "{text}"
    );
    assert!(
        text.contains("aura_rate_limited_total{class=\"read\",by=\"credential\"}"),
        "{text}"
    );
    server.stop();
}

/// Found by review after the body fixes: any path merely ending in `/import`
/// (`PUT .../members/import`, `PATCH .../records/import`) got the 16 MiB
/// import limit and, from a signed-in caller, was read whole by the JSON
/// extractor before the workspace was even checked. Only the collection
/// import route gets the large limit; every JSON body is bounded by the
/// default limit, declared or chunked.
#[tokio::test]
async fn only_the_import_route_takes_large_bodies() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let ws = env.create_workspace("Bodies", "ada@example.com");
    let server = start(&env, 4096, &[]);
    let c = common::client(&server);
    assert_eq!(
        common::login(&c, &server, "ada@example.com", PASSWORD)
            .await
            .status(),
        200
    );
    const BODY: usize = 2 * 1024 * 1024;
    let routes = [
        (
            reqwest::Method::PUT,
            format!("/api/v1/workspaces/{ws}/members/import"),
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/workspaces/{ws}/collections/c1/records/import"),
        ),
        (
            reqwest::Method::PATCH,
            format!("/api/v1/workspaces/{}/members/import", uuid::Uuid::new_v4()),
        ),
    ];
    for (method, path) in routes {
        // Declared length.
        let r = c
            .request(method.clone(), server.url(&path))
            .header("content-type", "application/json")
            .body(vec![b' '; BODY])
            .send()
            .await;
        match r {
            Ok(r) => assert_eq!(r.status(), 413, "{method} {path} with a declared length"),
            // The server answers 413 and closes before the client has sent
            // it all (a body read whole would instead end in 400 or 404).
            Err(e) => assert!(
                e.is_request() || e.is_body(),
                "{method} {path} with a declared length: {e}"
            ),
        }
        // Chunked, no length declared.
        let pieces: Vec<Result<Vec<u8>, std::io::Error>> =
            (0..BODY / 65536).map(|_| Ok(vec![b' '; 65536])).collect();
        let r = c
            .request(method.clone(), server.url(&path))
            .header("content-type", "application/json")
            .body(reqwest::Body::wrap_stream(tokio_stream::iter(pieces)))
            .send()
            .await;
        match r {
            Ok(r) => assert_eq!(r.status(), 413, "{method} {path} chunked"),
            // The server may answer and close before the client has sent it all.
            Err(e) => assert!(
                e.is_request() || e.is_body(),
                "{method} {path} chunked: {e}"
            ),
        }
    }
    server.stop();
}

/// Finding 1, HTTP/2: poem's server takes HTTP/2 by its connection preface
/// even without ALPN, and such a connection had no head deadline and was
/// never chosen to make room. Only HTTP/1.1 is served: a connection that
/// opens with the preface and then sends nothing must be closed at once
/// (at the latest by the head deadline, 2 s here), never held open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn http2_preface_connections_are_not_held_open() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(
        &env,
        4096,
        &[("AURA_LIMITS__HEADER_READ_TIMEOUT_SECS", "2")],
    );
    let addr: SocketAddr = server.addr().parse().unwrap();
    let started = Instant::now();
    let mut conns = Vec::new();
    for i in 0..20u8 {
        let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 3, 1 + i));
        let mut s = connect_from(ip, addr).await.unwrap();
        s.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        conns.push(s);
    }
    for (i, mut s) in conns.into_iter().enumerate() {
        // Read until the server closes; a SETTINGS frame in reply would mean
        // HTTP/2 was taken up.
        let mut got = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(8), async {
            let mut buf = [0u8; 256];
            loop {
                match s.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                }
            }
        })
        .await;
        assert!(
            closed.is_ok(),
            "HTTP/2 preface connection {i} still open after {:?} ({} bytes answered)",
            started.elapsed(),
            got.len()
        );
        assert!(got.is_empty(), "HTTP/2 was answered: {got:?}");
    }
    probe(&server, "after HTTP/2 prefaces").await;
    println!(
        "http2 preface: 20 connections closed within {:?}",
        started.elapsed()
    );
    server.stop();
}

/// Finding 2, slow bodies: each small POST reserves its size in the global
/// body budget while its body trickles in. Unfixed, 400 anonymous POSTs from
/// one address each declaring 64 KiB and sending one byte held a 16 MiB
/// budget for the 60 s request deadline, and every other write (a sign-in
/// from elsewhere) waited 2 s, then got 503. Now one network holds at most
/// `limits.buffered_body_bytes_per_ip` (8 MiB by default, 1/16 of the
/// default budget; 429 beyond), and a body must arrive within
/// `limits.body_read_timeout_secs` (408).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn slow_bodies_from_one_network_do_not_hold_the_body_budget() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(
        &env,
        4096,
        &[
            ("AURA_LIMITS__BUFFERED_BODY_BYTES", "16777216"),
            ("AURA_LIMITS__BODY_READ_TIMEOUT_SECS", "2"),
        ],
    );
    let addr: SocketAddr = server.addr().parse().unwrap();
    probe(&server, "before").await;
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..400 {
        tasks.push(tokio::spawn(async move {
            let ip = IpAddr::V4(Ipv4Addr::new(127, 0, 4, 1));
            let mut s = connect_from(ip, addr).await.unwrap();
            s.write_all(
                b"POST /api/v1/auth/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
                  Content-Length: 65536\r\n\r\n{",
            )
            .await
            .unwrap();
            // The answer's status, or 0 if the connection stayed silent.
            let mut buf = [0u8; 64];
            match tokio::time::timeout(Duration::from_secs(12), s.read(&mut buf)).await {
                Ok(Ok(n)) if n >= 12 => std::str::from_utf8(&buf[9..12])
                    .ok()
                    .and_then(|c| c.parse::<u16>().ok())
                    .unwrap_or(1),
                Ok(_) => 1,
                Err(_) => 0,
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let worst = probe_during(
        &server,
        "400 slow bodies from one address",
        started + Duration::from_secs(4),
    )
    .await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap()).or_default() += 1;
    }
    println!(
        "slow bodies: 400 from one address; worst healthz {:?}, sign-in {:?}, RSS {} MB; \
         answers {statuses:?} within {:?}",
        worst.healthz,
        worst.signin,
        worst.rss_mb,
        started.elapsed()
    );
    assert_eq!(statuses.get(&0), None, "slow bodies held: {statuses:?}");
    assert!(statuses.get(&408).is_some_and(|n| *n > 0), "{statuses:?}");
    server.stop();
}

/// Issue 27 finding 10, found again in review: a request carrying a
/// credential spent only from a budget keyed on the raw, unverified
/// `Authorization` header, and its address was charged only on a 401. A
/// public route never answers 401, so a fresh invented token per request was
/// an unlimited budget; and one real token written `Bearer`/`bearer`/
/// `BEARER  ` (all accepted) had a budget per spelling.
#[tokio::test]
async fn invented_or_respelled_credentials_buy_no_fresh_rate_budget() {
    let _one = ONE_AT_A_TIME.lock().await;
    let env = setup();
    let server = start(
        &env,
        4096,
        &[
            ("AURA_LIMITS__RATE__PUBLIC__PER_ADDRESS", "20"),
            ("AURA_LIMITS__RATE__READ__PER_TOKEN", "30"),
        ],
    );
    let c = reqwest::Client::new();
    let mut refused = None;
    for i in 0..60 {
        let r = c
            .get(server.url("/trust.json"))
            .header("authorization", format!("Bearer x{i}"))
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = Some(i);
            break;
        }
        assert_eq!(r.status(), 200, "request {i}");
    }
    let at = refused.expect("invented bearer tokens were never refused on /trust.json");
    assert!(at >= 20, "refused too early, at {at}");

    let r = common::token_request(&server, "ada@example.com", PASSWORD).await;
    assert_eq!(r.status(), 200);
    let token = r.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let spellings = [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER   {token}"),
    ];
    let mut refused = None;
    for i in 0..90 {
        let r = c
            .get(server.url("/api/v1/me"))
            .header("authorization", &spellings[i % spellings.len()])
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            refused = Some(i);
            break;
        }
        assert_eq!(r.status(), 200, "request {i}");
    }
    let at = refused.expect("three spellings of one token had three budgets");
    assert!(
        (30..=31).contains(&at),
        "refused at {at}, not at the token's budget"
    );
    server.stop();
}
