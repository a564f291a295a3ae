//! A real SMTP sink for tests: aiosmtpd (Debian's python3-aiosmtpd, which
//! scripts/test installs) on a loopback port it binds itself, printing what
//! it receives.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// aiosmtpd's debugging handler: every message it receives is printed.
pub struct Sink {
    child: Child,
    port: u16,
    out: Arc<Mutex<String>>,
}

/// aiosmtpd's debugging handler on a socket the sink binds itself (port 0)
/// and reports: no free port picked, released and raced for.
const SINK_PY: &str = r#"
import asyncio, sys
from aiosmtpd.handlers import Debugging
from aiosmtpd.smtp import SMTP

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Debugging(sys.stdout)), "127.0.0.1", 0)
    print("listening", server.sockets[0].getsockname()[1], flush=True)
    await server.serve_forever()

asyncio.run(main())
"#;

impl Sink {
    pub fn start() -> Sink {
        let mut child = Command::new("/usr/bin/python3")
            .args(["-u", "-c", SINK_PY])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3-aiosmtpd is installed (scripts/test installs it)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(Result::ok).unwrap_or_default();
        let port: u16 = first
            .strip_prefix("listening ")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("SMTP sink did not start: {first:?}"));
        let out = Arc::new(Mutex::new(String::new()));
        let o = Arc::clone(&out);
        std::thread::spawn(move || {
            for line in lines {
                let Ok(line) = line else { break };
                o.lock().unwrap().push_str(&line);
                o.lock().unwrap().push('\n');
            }
        });
        Sink { child, port, out }
    }

    /// The `AURA_MAIL__*` settings that send to this sink.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AURA_MAIL__SMTP_HOST".into(), "127.0.0.1".into()),
            ("AURA_MAIL__SMTP_PORT".into(), self.port.to_string()),
            ("AURA_MAIL__SMTP_TLS".into(), "none".into()),
            ("AURA_MAIL__FROM".into(), "Aura <aura@example.com>".into()),
        ]
    }

    /// Waits for an invitation to `to` and returns the token of its link.
    pub fn token_for(&self, to: &str) -> String {
        self.link_token(to, "/invite/")
    }

    /// Waits for a message to `to` with a link under `prefix` (`/invite/`,
    /// `/magic/`) and returns the link's token; the newest such message wins.
    pub fn link_token(&self, to: &str, prefix: &str) -> String {
        let started = Instant::now();
        loop {
            // Quoted-printable: undo the soft line breaks.
            let text = self.out.lock().unwrap().replace("=\n", "");
            // Only a message printed to its end: its lines arrive one by
            // one, and a link cut at a soft line break is a wrong token.
            let whole = text
                .rfind(&format!("To: {to}"))
                .and_then(|i| Some(&text[i..i + text[i..].find("END MESSAGE")?]));
            if let Some(rest) = whole {
                if let Some(j) = rest.find(prefix) {
                    let token: String = rest[j + prefix.len()..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                        .collect();
                    return token;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no mail to {to}: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Sink {
    /// Waits for a message to `to` whose text contains `needle`.
    pub fn wait_for(&self, to: &str, needle: &str) {
        let started = Instant::now();
        loop {
            let text = self.out.lock().unwrap().replace("=\n", "");
            if let Some(i) = text.rfind(&format!("To: {to}")) {
                if text[i..].contains(needle) {
                    return;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no mail to {to} with {needle:?}: {text}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Sink {
    /// Every message received so far whose `To:` header is exactly `to`.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        let text = self.out.lock().unwrap().replace("=\n", "");
        let header = format!("\nTo: {to}\n");
        text.split("---------- MESSAGE FOLLOWS ----------")
            .filter(|m| m.contains(&header))
            .map(str::to_owned)
            .collect()
    }
}
