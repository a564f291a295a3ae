//! The shared test harness: runs the real `aura` binary on 127.0.0.1:0 with a
//! temp data dir and a test master key, waits for its "listening" log line (no
//! sleeps, no fixed ports), captures its logs, and stops it with SIGTERM.
#![allow(dead_code)]

pub mod browser;
pub mod certs;
pub mod disk;
pub mod mfa;
pub mod oidc;
pub mod otp;
mod ports;
pub mod replica;
pub mod smtp;
mod stores;

#[allow(unused_imports)]
pub use ports::{free_ports, spawn_reporting_port, with_port_retries};
#[allow(unused_imports)]
pub use stores::{contains_bytes, row_bytes, sha256, stores_changed, stores_snapshot};

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;

pub const BIN: &str = env!("CARGO_BIN_EXE_aura");

/// The binary the harness runs: `TEST_AURA_BIN` when set, else `BIN`. With a
/// target dir shared between checkouts, `target/debug/aura` is whichever
/// checkout built last; a copy taken right after building pins this one's.
/// Either way the binary must report this test build's id (`aura --version`,
/// build.rs hashes the sources): another checkout's binary is refused.
pub fn bin() -> String {
    static CHECKED: std::sync::OnceLock<Result<String, String>> = std::sync::OnceLock::new();
    let checked = CHECKED.get_or_init(|| {
        let path = std::env::var("TEST_AURA_BIN").unwrap_or_else(|_| BIN.to_owned());
        check_build_id(&path).map(|()| path)
    });
    match checked {
        Ok(path) => path.clone(),
        Err(why) => panic!("{why}"),
    }
}

/// `aura --version` must print `(build <id>)` with the id compiled into these tests.
pub fn check_build_id(path: &str) -> Result<(), String> {
    let out = Command::new(path)
        .arg("--version")
        .env_clear()
        .output()
        .map_err(|e| format!("cannot run the aura binary {path}: {e}"))?;
    let printed = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let want = format!("(build {})", aura::BUILD_ID);
    if printed.contains(&want) {
        Ok(())
    } else {
        Err(format!(
            "stale aura binary refused: {path} prints {printed:?}, these tests were built from \
             sources with build id {}; rebuild (cargo test builds it), or point \
             TEST_AURA_BIN at a copy of this checkout's target/debug/aura",
            aura::BUILD_ID
        ))
    }
}

/// A command for the binary with no `AURA_*` variable (and no systemd
/// credential dir or `RUST_LOG`) inherited from whoever runs the tests: an
/// exported `AURA_STORAGE__SYNCHRONOUS` or `AURA_LIMITS__...` would otherwise
/// change every server under test. Callers set what they need on top.
pub fn aura_command() -> Command {
    let mut c = Command::new(bin());
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AURA_") {
            c.env_remove(&key);
        }
    }
    c.env_remove("CREDENTIALS_DIRECTORY")
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("RUST_LOG");
    c
}
pub const PASSWORD: &str = "correct horse battery staple";

/// A temp directory with a config, a key file (mode 0600) and a data dir.
pub struct Env {
    pub dir: TempDir,
}

impl Env {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("aura-test-")
            .tempdir()
            .unwrap();
        let env = Env { dir };
        let out = env.cli(&["init"], None);
        assert!(
            out.status.success(),
            "aura init failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        env
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn data_dir(&self) -> PathBuf {
        self.root().join("data")
    }

    pub fn config_path(&self) -> PathBuf {
        self.root().join("aura.toml")
    }

    pub fn key_path(&self) -> PathBuf {
        self.root().join("master.key")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = aura_command();
        c.arg("--config")
            .arg(self.config_path())
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(args)
            .env("AURA_MASTER_KEY_FILE", self.key_path());
        c
    }

    /// Runs a CLI command to completion, feeding `stdin` if given.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.command(args);
        c.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
        } else {
            drop(child.stdin.take());
        }
        child.wait_with_output().unwrap()
    }

    /// Runs a CLI command against another data dir (a copy), same key.
    pub fn cli_at(&self, data_dir: &Path, args: &[&str]) -> Output {
        let mut c = self.command(args);
        c.arg("--data-dir").arg(data_dir);
        c.stdin(Stdio::null());
        c.output().unwrap()
    }

    pub fn tenant_db(&self, ws: &str) -> PathBuf {
        self.data_dir().join("tenants").join(ws).join("data.db")
    }

    pub fn add_member(&self, ws: &str, email: &str, role: &str) {
        let out = self.cli(
            &[
                "workspace",
                "add-member",
                "--workspace",
                ws,
                "--email",
                email,
                "--role",
                role,
            ],
            None,
        );
        assert!(
            out.status.success(),
            "add-member: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A platform admin (`aura user create --platform-admin`) with the test
    /// password; its id.
    pub fn create_platform_admin(&self, email: &str) -> String {
        let out = self.cli(
            &[
                "user",
                "create",
                "--email",
                email,
                "--platform-admin",
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(
            out.status.success(),
            "user create --platform-admin: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn create_user(&self, email: &str, name: &str) -> String {
        let out = self.cli(
            &[
                "user",
                "create",
                "--email",
                email,
                "--name",
                name,
                "--password-stdin",
            ],
            Some(&format!("{PASSWORD}\n")),
        );
        assert!(
            out.status.success(),
            "user create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn create_workspace(&self, name: &str, owner: &str) -> String {
        let out = self.cli(
            &["workspace", "create", "--name", name, "--owner", owner],
            None,
        );
        assert!(
            out.status.success(),
            "workspace create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    pub fn start(&self) -> Server {
        Server::start(self.command(&["serve", "--listen", "127.0.0.1:0"]))
    }

    /// Starts with extra `AURA_*` settings (e.g. TLS, trusted proxies).
    pub fn start_with(&self, envs: &[(&str, &str)]) -> Server {
        let mut c = self.command(&["serve", "--listen", "127.0.0.1:0"]);
        for (k, v) in envs {
            c.env(k, v);
        }
        Server::start(c)
    }
}

/// A running server process.
pub struct Server {
    child: Child,
    pub base: String,
    log: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    pub fn start(cmd: Command) -> Self {
        Self::try_start(cmd).unwrap_or_else(|why| panic!("{why}"))
    }

    /// Starts a server, or says why it did not (e.g. its fixed port was
    /// taken: callers that must name a port in advance retry with another).
    pub fn try_start(mut cmd: Command) -> Result<Self, String> {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<Result<String, String>>();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        {
            let log = Arc::clone(&log);
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    log.lock()
                        .unwrap()
                        .extend_from_slice(format!("{line}\n").as_bytes());
                    if line.contains("\"message\":\"listening\"") {
                        // poem logs its own "listening" lines (socket://...);
                        // Aura's line carries the plain address.
                        if let Some(addr) =
                            json_field(&line, "addr").filter(|a| !a.starts_with("socket://"))
                        {
                            let _ = tx.send(Ok(addr));
                        }
                    }
                }
                let _ = tx.send(Err("server stdout closed before it listened".into()));
            });
        }
        let stderr_reader = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    log.lock()
                        .unwrap()
                        .extend_from_slice(format!("{line}\n").as_bytes());
                }
            })
        };
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Ok(addr)) => Ok(Server {
                child,
                base: format!("http://{addr}"),
                log,
            }),
            other => {
                let _ = child.kill();
                let _ = child.wait();
                // A server that exits at once closes stdout before its
                // stderr (the reason) is read: wait for the reader.
                let _ = stderr_reader.join();
                let logs = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
                Err(format!("server did not start: {other:?}\n{logs}"))
            }
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn logs(&self) -> Vec<u8> {
        self.log.lock().unwrap().clone()
    }

    /// The address of a line like `"message":"http_listening"` in the log.
    pub fn logged_addr(&self, message: &str) -> Option<String> {
        let logs = String::from_utf8_lossy(&self.logs()).to_string();
        logs.lines()
            .filter(|l| l.contains(&format!("\"message\":\"{message}\"")))
            .find_map(|l| json_field(l, "addr"))
    }

    /// The bound address of the main listener (`host:port`).
    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    pub fn signal(&self, sig: &str) {
        let _ = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> Vec<u8> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "server exited with {status}");
        // The reader threads finish when the pipes close.
        for _ in 0..100 {
            if Arc::strong_count(&self.log) == 1 {
                break;
            }
            std::thread::yield_now();
            std::thread::sleep(Duration::from_millis(5));
        }
        self.logs()
    }

    /// SIGKILL: no chance to flush or checkpoint.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn json_field(line: &str, key: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    v.get(key)?.as_str().map(str::to_owned)
}

/// A cookie-aware HTTP client that sends a same-origin `Origin`, as a browser would.
pub fn client(server: &Server) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("origin", server.base.parse().unwrap());
    reqwest::Client::builder()
        .cookie_store(true)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn login(
    c: &reqwest::Client,
    server: &Server,
    email: &str,
    password: &str,
) -> reqwest::Response {
    c.post(server.url("/api/v1/auth/login"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// GET a URL and return the body as text.
/// Sends `req`: its status and JSON body (`null` for a body that is not JSON).
pub async fn send(req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let r = req.send().await.unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

/// `send` of a `method` request to `url` with a JSON `body`.
pub async fn call(
    c: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    send(c.request(method, url).json(&body)).await
}

pub async fn get_text(c: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    c.get(url).send().await.unwrap().text().await.unwrap()
}

/// GET a URL and return the body as JSON.
pub async fn get_json(c: &reqwest::Client, url: impl reqwest::IntoUrl) -> serde_json::Value {
    c.get(url).send().await.unwrap().json().await.unwrap()
}

/// The CSRF token a page's forms carry.
pub fn csrf_from(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html
        .find(marker)
        .map(|i| i + marker.len())
        .expect("page has a CSRF field");
    html[start..].split('"').next().unwrap().to_owned()
}

/// GETs a page and returns its CSRF token.
pub async fn page_csrf(c: &reqwest::Client, url: &str) -> String {
    csrf_from(&get_text(c, url).await)
}

/// Copies a directory tree (to tamper with a copy).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.path().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// Opens a database read-only, for assertions about what is on disk.
pub fn open_db(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).unwrap()
}

/// `POST /api/v1/auth/token`: email and password for an access JWT and a
/// refresh token (no cookie, no `Origin`, as a program would call it).
pub async fn token_request(server: &Server, email: &str, password: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/token"))
        .json(&serde_json::json!({ "email": email, "password": password }))
        .send()
        .await
        .unwrap()
}

/// `POST /api/v1/auth/refresh` with a refresh token.
pub async fn refresh_request(server: &Server, refresh_token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(server.url("/api/v1/auth/refresh"))
        .json(&serde_json::json!({ "refresh_token": refresh_token }))
        .send()
        .await
        .unwrap()
}

/// A request with `Authorization: Bearer <credential>` and nothing else.
pub fn bearer(
    method: reqwest::Method,
    server: &Server,
    credential: &str,
    path: &str,
) -> reqwest::RequestBuilder {
    reqwest::Client::new()
        .request(method, server.url(path))
        .bearer_auth(credential)
}

/// The status of `GET path` with a bearer credential.
pub async fn bearer_status(server: &Server, credential: &str, path: &str) -> u16 {
    bearer(reqwest::Method::GET, server, credential, path)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// The session token a login response sets (`aura_session=...`).
pub fn session_token_of(r: &reqwest::Response) -> String {
    let cookie = r.headers()["set-cookie"].to_str().unwrap();
    cookie
        .strip_prefix("aura_session=")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_owned()
}
