//! A full log destination never stops the server (issue 24, SECURITY.md
//! az): stdout and stderr on a full device, then on pipes nobody reads.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::Env;

const METRICS_TOKEN: &str = "faults-metrics-token-0123456789abcdef";

/// Starts `aura serve` on 127.0.0.1:0 with stdout and stderr wired by the
/// caller. Its "listening" line may never arrive, so the address is read
/// from /proc: the listening TCP socket among the process's descriptors.
fn serve_logging_to(env: &Env, stdout: Stdio, stderr: Stdio) -> (Running, String) {
    let mut child = env
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "trace")
        .env("AURA_METRICS__BEARER_TOKEN", METRICS_TOKEN)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap();
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited before it listened: {status}");
        }
        if let Some(port) = listening_port(child.id()) {
            return (Running(child), format!("http://127.0.0.1:{port}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not listen within 60 s");
}

/// Kills the server if the test fails before `stop`.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().to_string();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).ok()?;
    table.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        // local_address is HEXIP:HEXPORT, st 0A is LISTEN, column 9 the inode.
        let (local, state, inode) = (cols.get(1)?, cols.get(3)?, cols.get(9)?);
        if *state != "0A" || !inodes.iter().any(|i| i == inode) {
            return None;
        }
        u16::from_str_radix(local.split(':').nth(1)?, 16).ok()
    })
}

async fn wait_up(base: &str) {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if let Ok(r) = reqwest::get(format!("{base}/healthz")).await {
            if r.status().is_success() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("server at {base} did not come up");
}

/// Many requests, each logging a good many lines at `trace`: all answered,
/// each within a generous bound.
async fn requests_keep_being_answered(base: &str) {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    for i in 0..400 {
        let r = c
            .get(format!("{base}/api/v1/me"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("request {i} was not answered: {e}"));
        assert_eq!(r.status(), 401);
    }
}

fn stop(mut running: Running) {
    let child = &mut running.0;
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status();
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "server exited with {status}");
            return;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the server did not stop within 30 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Issue 24, "a full log destination never stops the server": stdout and
/// stderr on a full device (/dev/full: every write fails with ENOSPC), then
/// on pipes nobody reads. The server answers every request and stops on
/// SIGTERM.
#[tokio::test]
async fn faults_1_a_full_log_destination_never_stops_the_server() {
    let env = Env::new();
    let full = || {
        Stdio::from(
            std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap(),
        )
    };
    let (child, base) = serve_logging_to(&env, full(), full());
    wait_up(&base).await;
    requests_keep_being_answered(&base).await;
    stop(child);

    // Pipes whose reader never reads: the 64 KiB pipe buffer fills at once.
    let (child, base) = serve_logging_to(&env, Stdio::piped(), Stdio::piped());
    wait_up(&base).await;
    requests_keep_being_answered(&base).await;
    // Until the bounded queue has overflowed: lines are dropped and counted,
    // and the requests are still answered.
    // One line per request: the pipe (64 KiB) and the queue (8,192 lines)
    // fill after some 8,500 requests.
    let mut dropped = 0;
    for _ in 0..100 {
        dropped = dropped_lines(&base).await;
        if dropped > 0 {
            break;
        }
        requests_keep_being_answered(&base).await;
    }
    assert!(dropped > 0, "the lines the pipe could not take are counted");
    stop(child);
}

async fn dropped_lines(base: &str) -> u64 {
    let metrics = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    let body = metrics.text().await.unwrap();
    body.lines()
        .find_map(|l| l.strip_prefix("aura_log_lines_dropped_total "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("no aura_log_lines_dropped_total:\n{body}"))
}
