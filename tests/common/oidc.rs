//! A real OpenID provider on loopback for tests: panva's oidc-provider 8.x
//! (npm) run by `tests/oidc/provider.mjs` with Node. `Provider::start(config)`
//! installs oidc-provider@8 into the npm folder when missing (as
//! `scripts/test` does), starts it on 127.0.0.1:0, reads the issuer it
//! reports, and kills it on drop. `reconfigure` applies a new configuration
//! to the running provider (same issuer, keys, sessions and codes): users and
//! their groups, the signing key, the published keys, the ID token lifetime.
//! docs/testing.md, "The OpenID provider fixture".

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

/// The program Node runs.
pub const PROGRAM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs");

/// A client (relying party) the provider knows.
#[derive(Clone, Debug, Serialize)]
pub struct Client {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    /// `client_secret_basic` (the default) or `client_secret_post`.
    pub token_endpoint_auth_method: String,
}

impl Client {
    pub fn new(client_id: &str, client_secret: &str, redirect_uri: &str) -> Client {
        Client {
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            redirect_uris: vec![redirect_uri.to_owned()],
            token_endpoint_auth_method: "client_secret_basic".to_owned(),
        }
    }

    pub fn post(mut self) -> Client {
        self.token_endpoint_auth_method = "client_secret_post".to_owned();
        self
    }
}

/// A user of the provider; `sub` is the subject in its tokens.
#[derive(Clone, Debug, Serialize)]
pub struct User {
    pub sub: String,
    pub email: String,
    pub email_verified: bool,
    pub name: String,
    pub groups: Vec<String>,
    /// The ID token's `amr` (e.g. `["pwd", "mfa"]`); none when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// The ID token's `acr`; none when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
}

impl User {
    /// A user with a verified email and no groups.
    pub fn new(sub: &str, email: &str, name: &str) -> User {
        User {
            sub: sub.to_owned(),
            email: email.to_owned(),
            email_verified: true,
            name: name.to_owned(),
            groups: Vec::new(),
            amr: None,
            acr: None,
        }
    }

    pub fn groups(mut self, groups: &[&str]) -> User {
        self.groups = groups.iter().map(|g| (*g).to_owned()).collect();
        self
    }

    pub fn amr(mut self, amr: &[&str]) -> User {
        self.amr = Some(amr.iter().map(|a| (*a).to_owned()).collect());
        self
    }
}

/// PEM files for serving https.
#[derive(Clone, Debug, Serialize)]
pub struct Tls {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The whole configuration (tests/oidc/provider.mjs describes each field).
#[derive(Clone, Debug, Serialize)]
pub struct Config {
    pub clients: Vec<Client>,
    pub users: Vec<User>,
    /// Who is signed in when the request has no `login_hint` (default: the first user).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login_as: Option<String>,
    /// Every sign-in ends with `error=access_denied`.
    pub deny: bool,
    /// Key ids; one RS256 key is made per id and kept across reconfigurations.
    pub keys: Vec<String>,
    /// The key that signs ID tokens (default: the first of `keys`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<String>,
    /// The keys the JWKS lists (default: all of `keys`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_keys: Option<Vec<String>>,
    /// ID token lifetime in seconds; 0 or negative hands out expired tokens.
    pub id_token_ttl: i64,
    /// email, name and groups in the ID token too (else only at userinfo).
    pub claims_in_id_token: bool,
    /// Keep the provider's session between sign-ins (a real provider's
    /// single sign-on); by default each authorization request starts afresh.
    pub keep_sessions: bool,
    /// Serve https with these files (issuer `https://127.0.0.1:PORT`); only
    /// read at start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<Tls>,
}

impl Config {
    /// One key `k1`, hour-long ID tokens with the claims in them.
    pub fn new(clients: Vec<Client>, users: Vec<User>) -> Config {
        Config {
            clients,
            users,
            login_as: None,
            deny: false,
            keys: vec!["k1".to_owned()],
            signing_key: None,
            published_keys: None,
            id_token_ttl: 3600,
            claims_in_id_token: true,
            keep_sessions: false,
            tls: None,
        }
    }
}

/// A running provider.
pub struct Provider {
    /// `http://127.0.0.1:PORT` (no trailing slash), as in its tokens.
    pub issuer: String,
    pub port: u16,
    /// The oidc-provider package version that runs.
    pub version: String,
    config: Config,
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl Provider {
    /// Starts a provider on a port of its own choosing.
    pub fn start(config: Config) -> Provider {
        Provider::start_on(config, 0)
    }

    /// Starts a provider on `port` (0: any); e.g. the port of a provider
    /// stopped before, to bring the same issuer back.
    pub fn start_on(config: Config, port: u16) -> Provider {
        let npm = npm_install("oidc-provider@8", "node_modules/oidc-provider/package.json");
        let mut child = Command::new("node")
            .arg(PROGRAM)
            .args(["--port", &port.to_string()])
            .env("TEST_NPM_DIR", &npm)
            .env("AURA_OIDC_CONFIG", serde_json::to_string(&config).unwrap())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("node {PROGRAM} (is Node installed?): {e}"));
        let stdin = child.stdin.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let mut err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        let first = lines.recv_timeout(Duration::from_secs(30)).ok();
        let ready: Option<serde_json::Value> =
            first.as_deref().and_then(|l| serde_json::from_str(l).ok());
        let Some(ready) = ready.filter(|r| r["issuer"].is_string()) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the OpenID provider did not start: {first:?}; stderr: {}",
                stderr.lock().unwrap()
            );
        };
        Provider {
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
            port: u16::try_from(ready["port"].as_u64().unwrap()).unwrap(),
            version: ready["oidc_provider"].as_str().unwrap_or("").to_owned(),
            config,
            child,
            stdin,
            lines,
            stderr,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Applies `config` to the running provider (the issuer, the keys made so
    /// far, sessions, codes and grants stay); returns once it is in force.
    pub fn reconfigure(&mut self, config: Config) {
        let line = serde_json::to_string(&config).unwrap();
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let answer = self.lines.recv_timeout(Duration::from_secs(30)).ok();
        let parsed: Option<serde_json::Value> =
            answer.as_deref().and_then(|l| serde_json::from_str(l).ok());
        assert!(
            parsed.as_ref().is_some_and(|a| a["reconfigured"].is_u64()),
            "the OpenID provider refused the configuration: {answer:?}; stderr: {}",
            self.logs()
        );
        self.config = config;
    }

    /// Changes the configuration in force with `change`, then applies it.
    pub fn update(&mut self, change: impl FnOnce(&mut Config)) {
        let mut config = self.config.clone();
        change(&mut config);
        self.reconfigure(config);
    }

    pub fn discovery_url(&self) -> String {
        format!("{}/.well-known/openid-configuration", self.issuer)
    }

    /// What the provider wrote on stderr (warnings, server errors).
    pub fn logs(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Whether the provider's stderr says `needle` within 5 s: its lines are
    /// read by another thread, so one written just now may not be in yet.
    pub fn logged(&self, needle: &str) -> bool {
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !self.logs().contains(needle) {
            if std::time::Instant::now() > until {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        true
    }
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The npm folder the tests and `scripts/test` share: `TEST_NPM_DIR`, else
/// `~/.cache/aura-npm`.
pub fn npm_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("TEST_NPM_DIR") {
        return PathBuf::from(dir);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    Path::new(&home).join(".cache/aura-npm")
}

/// Installs `package` (an npm spec) into `npm_dir()` unless `marker` (a path
/// inside it) exists; returns the folder.
pub fn npm_install(package: &str, marker: &str) -> PathBuf {
    let dir = npm_dir();
    if !dir.join(marker).is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(package)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "npm install {package} failed (is npm installed?)");
    }
    dir
}
