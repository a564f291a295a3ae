//! A minimal W3C WebDriver client over reqwest, driving Debian's chromium
//! through chromedriver in headless mode. No extra crates: the protocol is a
//! handful of JSON calls.
#![allow(dead_code)]

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on port 0 (it binds a free port itself and prints
    /// it) and opens a headless session.
    pub async fn start() -> Browser {
        let mut cmd = Command::new("chromedriver");
        cmd.arg("--port=0");
        let (driver, port) =
            super::spawn_reporting_port(cmd, true, "started successfully on port ");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        // Wait for the driver to answer /status (bounded; it starts in ms).
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{base}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "chromedriver did not start");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({
            "capabilities": { "alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": "/usr/bin/chromium",
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                        format!("--user-data-dir={}", profile.path().display()),
                        // Servers listen on 127.0.0.1; `localhost` (which
                        // passkey tests need: WebAuthn wants a domain) too.
                        "--host-resolver-rules=MAP localhost 127.0.0.1",
                        "--window-size=1200,800"
                    ]
                }
            }}
        });
        let r: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_owned();
        Browser {
            driver,
            base,
            session,
            http,
            _profile: profile,
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let mut req = self.http.request(method, url);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("WebDriver {path}: {v}");
        }
        v["value"].clone()
    }

    /// Adds a virtual platform authenticator (resident keys, user
    /// verification that always succeeds) for passkey ceremonies.
    pub async fn add_virtual_authenticator(&self) {
        self.cmd(
            reqwest::Method::POST,
            "/webauthn/authenticator",
            Some(json!({
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": true,
                "hasUserVerification": true,
                "isUserConsenting": true,
                "isUserVerified": true,
            })),
        )
        .await;
    }

    /// Resizes the window (the page's layout width follows).
    pub async fn set_window(&self, width: u32, height: u32) {
        self.cmd(
            reqwest::Method::POST,
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )
        .await;
    }

    /// Runs `js` (a function body; `return` gives the value) in the page.
    pub async fn script(&self, js: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({ "script": js, "args": [] })),
        )
        .await
    }

    /// Runs `js` asynchronously: it ends by calling `done(value)`.
    pub async fn script_async(&self, js: &str) -> Value {
        let body = format!("const done = arguments[arguments.length - 1];\n{js}");
        self.cmd(
            reqwest::Method::POST,
            "/execute/async",
            Some(json!({ "script": body, "args": [] })),
        )
        .await
    }

    /// axe-core's serious and critical violations on the current page, as
    /// "rule: target" lines. axe-core comes from npm (`scripts/test` puts it
    /// in `AXE_CORE_JS`; without it, it is installed here the same way).
    pub async fn accessibility_violations(&self) -> Vec<String> {
        let axe = std::fs::read_to_string(axe_core_path()).expect("axe-core's axe.min.js");
        self.script(&format!("{axe}\nreturn true;")).await;
        let v = self
            .script_async(
                "axe.run(document, { resultTypes: ['violations'] }).then(r => done(r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical').map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 3).join(', ')))).catch(e => done(['axe failed: ' + e]));",
            )
            .await;
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_else(|| vec![format!("axe answered {v}")])
    }

    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await;
    }

    pub async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v[ELEMENT_KEY]
            .as_str()
            .unwrap_or_else(|| panic!("no element for {css}: {v}"))
            .to_owned()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({ "text": text })),
        )
        .await;
    }

    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/click"),
            Some(json!({})),
        )
        .await;
    }

    pub async fn source(&self) -> String {
        self.cmd(reqwest::Method::GET, "/source", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.cmd(reqwest::Method::GET, &format!("/element/{el}/text"), None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// An attribute of the first element matching `css` (empty if unset).
    pub async fn attr(&self, css: &str, name: &str) -> String {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::GET,
            &format!("/element/{el}/attribute/{name}"),
            None,
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// How many elements match `css`.
    pub async fn count(&self, css: &str) -> usize {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/elements",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .await;
        v.as_array().map_or(0, Vec::len)
    }

    pub async fn current_url(&self) -> String {
        self.cmd(reqwest::Method::GET, "/url", None)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Polls until the current URL contains `part` (bounded): the page a
    /// form submit leads to has loaded.
    pub async fn wait_for_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.current_url().await.contains(part) {
            assert!(
                Instant::now() < deadline,
                "the URL never contained {part:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Polls until the page source contains `text` (bounded), for pages that
    /// load after a form submit.
    pub async fn wait_for_text(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let src = self.source().await;
            if src.contains(text) {
                return src;
            }
            assert!(
                Instant::now() < deadline,
                "page never showed {text:?}:\n{src}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Saves a PNG when `SCREENSHOT_DIR` names a directory (for people
    /// reviewing the UI; tests never depend on it).
    pub async fn screenshot(&self, name: &str) {
        let Some(dir) = std::env::var_os("SCREENSHOT_DIR") else {
            return;
        };
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        if let Some(b64) = v.as_str() {
            use base64::Engine;
            if let Ok(png) = base64::engine::general_purpose::STANDARD.decode(b64) {
                let _ = std::fs::write(std::path::Path::new(&dir).join(format!("{name}.png")), png);
            }
        }
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// axe.min.js: `AXE_CORE_JS`, else the npm cache `scripts/test` uses,
/// installed there with npm when missing.
fn axe_core_path() -> std::path::PathBuf {
    if let Some(p) = std::env::var_os("AXE_CORE_JS").map(std::path::PathBuf::from) {
        if p.is_file() {
            return p;
        }
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/tmp".into());
    let dir = std::env::var_os("TEST_NPM_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::path::Path::new(&home).join(".cache/aura-npm"));
    let js = dir.join("node_modules/axe-core/axe.min.js");
    if !js.is_file() {
        std::fs::create_dir_all(&dir).unwrap();
        let ok = Command::new("npm")
            .args(["install", "--silent", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg("axe-core@4")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "npm install axe-core failed (is npm installed?)");
    }
    js
}
