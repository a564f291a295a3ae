//! Ports for the servers tests start: read from servers that bind port 0
//! and report it, or picked in advance and retried where a port must be
//! named before a server starts (docs/testing.md, "Ports").

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Distinct free loopback ports, for a server that must be told its port in
/// advance (pebble's config, a WebAuthn origin). All are held until all are
/// picked; between release and use another process may still take one, so
/// callers start such a server in `with_port_retries`.
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// Runs `start` until it does not fail (a bind failure on a port picked in
/// advance), with fresh ports each time; five tries, then the last error.
pub fn with_port_retries<T>(mut start: impl FnMut() -> Result<T, String>) -> T {
    let mut last = String::new();
    for _ in 0..5 {
        match start() {
            Ok(t) => return t,
            Err(why) => last = why,
        }
    }
    panic!("did not start in 5 tries (ports taken?): {last}")
}

/// Spawns a server told to listen on port 0 and reads the port it reports on
/// `stdout` (else stderr) from the first line containing `marker`, followed
/// by the port: no free port picked by the test, released and raced for.
/// The rest of that output is drained so the server never blocks on it.
pub fn spawn_reporting_port(mut cmd: Command, stdout: bool, marker: &str) -> (Child, u16) {
    cmd.stdin(Stdio::null());
    if stdout {
        cmd.stdout(Stdio::piped()).stderr(Stdio::null());
    } else {
        cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd:?} (scripts/test installs it): {e}"));
    let pipe: Box<dyn std::io::Read + Send> = if stdout {
        Box::new(child.stdout.take().unwrap())
    } else {
        Box::new(child.stderr.take().unwrap())
    };
    let (tx, rx) = mpsc::channel::<String>();
    let marker = marker.to_owned();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(rest) = line.split_once(marker.as_str()).map(|(_, r)| r) {
                    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    let _ = tx.send(port);
                    sent = true;
                }
            }
        }
    });
    match rx.recv_timeout(Duration::from_secs(60)) {
        Ok(port) if port.parse::<u16>().is_ok_and(|p| p != 0) => (child, port.parse().unwrap()),
        other => {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} reported no port: {other:?}");
        }
    }
}
