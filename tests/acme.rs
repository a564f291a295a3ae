//! ACME end to end against Debian's pebble, with pebble-challtestsrv as the
//! DNS that answers 127.0.0.1 for every name. pebble ships no listener
//! certificate, so one is made with openssl. Shown here: a certificate issued
//! through TLS-ALPN-01 and through HTTP-01, HTTPS answered with it (checked by
//! a client that trusts pebble's root), a restart that reuses the sealed
//! cached certificate without a new order, and serving on with pebble gone.

mod common;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::certs::{Ca, served_serial};
use common::{Env, Server};

struct Pebble {
    pebble: Child,
    challtest: Child,
    directory: String,
    management: String,
    listener_ca: std::path::PathBuf,
}

impl Pebble {
    /// pebble and its DNS cannot listen on port 0 and say which port they
    /// got, and pebble's config names Aura's ports: all are picked in advance
    /// (`common::free_ports`), and `ready` reports a server that exited
    /// (a port taken meanwhile) so `start_pair` retries with fresh ones.
    fn start(dir: &std::path::Path, aura_http: u16, aura_https: u16, ports: [u16; 4]) -> Pebble {
        let [port, mgmt, dns, dns_mgmt] = ports;
        let dir = dir.join(format!("pebble-{port}"));
        let ca = Ca::new(&dir.join("pebble-pki"), "pebble-listener-ca");
        let (cert, key) = ca.leaf("pebble-listener", "localhost");
        let config = dir.join("pebble.json");
        std::fs::write(
            &config,
            serde_json::json!({ "pebble": {
                "listenAddress": format!("127.0.0.1:{port}"),
                "managementListenAddress": format!("127.0.0.1:{mgmt}"),
                "certificate": cert, "privateKey": key,
                "httpPort": aura_http, "tlsPort": aura_https,
                "ocspResponderURL": "", "externalAccountBindingRequired": false
            }})
            .to_string(),
        )
        .unwrap();
        let challtest = Command::new("pebble-challtestsrv")
            .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns}"),
                "-management",
                &format!("127.0.0.1:{dns_mgmt}"),
            ])
            .args(["-http01", "", "-https01", "", "-tlsalpn01", ""])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble-challtestsrv is installed by scripts/test (apt: pebble)");
        let pebble = Command::new("pebble")
            .args([
                "-config",
                config.to_str().unwrap(),
                "-dnsserver",
                &format!("127.0.0.1:{dns}"),
            ])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble is installed by scripts/test (apt: pebble)");
        Pebble {
            pebble,
            challtest,
            directory: format!("https://127.0.0.1:{port}/dir"),
            management: format!("https://127.0.0.1:{mgmt}"),
            listener_ca: ca.cert,
        }
    }

    fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .add_root_certificate(
                reqwest::Certificate::from_pem(&std::fs::read(&self.listener_ca).unwrap()).unwrap(),
            )
            .build()
            .unwrap()
    }

    /// Waits (bounded) until the directory answers over pebble's own TLS
    /// (so not another process on that port), or says which server exited.
    async fn ready(&mut self) -> Result<(), String> {
        let c = self.client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for (name, child) in [
                ("pebble", &mut self.pebble),
                ("pebble-challtestsrv", &mut self.challtest),
            ] {
                if let Some(status) = child.try_wait().unwrap() {
                    return Err(format!("{name} exited ({status}): a port taken?"));
                }
            }
            let up = c
                .get(&self.directory)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return Ok(());
            }
            assert!(Instant::now() < deadline, "pebble did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The root that signs what pebble issues (a fresh one per pebble run).
    async fn issuing_root(&self) -> Vec<u8> {
        let r = self
            .client()
            .get(format!("{}/roots/0", self.management))
            .send()
            .await
            .unwrap();
        r.bytes().await.unwrap().to_vec()
    }

    fn stop(&mut self) {
        let _ = self.pebble.kill();
        let _ = self.pebble.wait();
        let _ = self.challtest.kill();
        let _ = self.challtest.wait();
    }
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Aura with its listeners on the given ports (0: any, reported in its log).
fn try_start_aura(
    env: &Env,
    pebble: &Pebble,
    challenge: &str,
    http: u16,
    https: u16,
) -> Result<Server, String> {
    let mut cmd = env.command(&["serve", "--listen", "127.0.0.1:0"]);
    let vars: [(&str, &str); 8] = [
        ("AURA_TLS__MODE", "acme"),
        ("AURA_TLS__DOMAINS", "[\"aura.test\"]"),
        ("AURA_TLS__HTTPS_LISTEN", &format!("127.0.0.1:{https}")),
        ("AURA_TLS__HTTP_LISTEN", &format!("127.0.0.1:{http}")),
        ("AURA_TLS__ACME__CONTACT", "ops@example.com"),
        ("AURA_TLS__ACME__DIRECTORY_URL", &pebble.directory),
        ("AURA_TLS__ACME__CHALLENGE", challenge),
        (
            "AURA_TLS__ACME__CA_ROOT_FILE",
            pebble.listener_ca.to_str().unwrap(),
        ),
    ];
    for (k, v) in vars {
        cmd.env(k, v);
    }
    Server::try_start(cmd)
}

/// pebble, then Aura on the ports pebble's config named; a port taken in
/// between fails pebble's or Aura's bind, and both start again on fresh ones.
async fn start_pair(env: &Env, challenge: &str) -> (Pebble, Server, u16, u16) {
    let mut last = String::new();
    for _ in 0..5 {
        let [http, https, port, mgmt, dns, dns_mgmt] = common::free_ports::<6>();
        let mut pebble = Pebble::start(env.root(), http, https, [port, mgmt, dns, dns_mgmt]);
        if let Err(why) = pebble.ready().await {
            last = why;
            continue;
        }
        match try_start_aura(env, &pebble, challenge, http, https) {
            Ok(server) => return (pebble, server, http, https),
            Err(why) => last = why,
        }
    }
    panic!("pebble and Aura did not start in 5 tries: {last}");
}

/// Waits (bounded) until Aura answers HTTPS with a certificate pebble issued.
async fn https_ok(root_pem: &[u8], https: u16) -> reqwest::Response {
    let addr: SocketAddr = format!("127.0.0.1:{https}").parse().unwrap();
    let c = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(root_pem).unwrap())
        .resolve("aura.test", addr)
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match c
            .get(format!("https://aura.test:{https}/healthz"))
            .send()
            .await
        {
            Ok(r) => return r,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "no certificate from pebble in time: {e}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn issue_with(challenge: &str) -> (Env, Pebble, Vec<u8>, u16, u16, String) {
    let env = Env::new();
    let (pebble, server, http, https) = start_pair(&env, challenge).await;
    let root = pebble.issuing_root().await;
    let r = https_ok(&root, https).await;
    assert_eq!(
        r.status(),
        200,
        "HTTPS answered with the issued certificate ({challenge})"
    );
    // Row o: HSTS for one year with includeSubDomains, exactly.
    assert_eq!(
        r.headers()
            .get("strict-transport-security")
            .map(|v| v.to_str().unwrap()),
        Some("max-age=31536000; includeSubDomains"),
        "HSTS on TLS"
    );
    let serial = served_serial(&format!("127.0.0.1:{https}"), "aura.test");
    let logs = String::from_utf8_lossy(&server.stop()).to_string();
    assert!(
        logs.contains("DeployedNewCert"),
        "a new order was made:\n{logs}"
    );
    (env, pebble, root, http, https, serial)
}

#[tokio::test]
async fn acme_tls_alpn_01_issue_restart_reuses_cache_and_survives_ca_outage() {
    let (env, mut pebble, root, _http, _https, serial) = issue_with("tls-alpn-01").await;
    // The cache holds no plaintext key: every file in acme/ is sealed.
    let mut scanned = 0;
    for e in std::fs::read_dir(env.data_dir().join("acme")).unwrap() {
        let p = e.unwrap().path();
        let bytes = std::fs::read(&p).unwrap();
        assert!(!bytes.is_empty(), "{} is empty", p.display());
        assert!(!String::from_utf8_lossy(&bytes).contains("PRIVATE KEY"));
        scanned += 1;
    }
    // The account key and the certificate with its key: nothing scanned proves nothing.
    assert!(scanned >= 2, "acme/ holds {scanned} files");
    // The CA goes away; a restart still serves the cached certificate.
    pebble.stop();
    // Any ports now: the CA that validated the old ones is gone.
    let server = try_start_aura(&env, &pebble, "tls-alpn-01", 0, 0).unwrap();
    let https = server.addr().rsplit(':').next().unwrap().parse().unwrap();
    let r = https_ok(&root, https).await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        served_serial(&format!("127.0.0.1:{https}"), "aura.test"),
        serial,
        "same certificate, no new order"
    );
    let logs = String::from_utf8_lossy(&server.logs()).to_string();
    assert!(logs.contains("DeployedCachedCert"), "{logs}");
    assert!(
        !logs.contains("DeployedNewCert"),
        "no new order after restart"
    );
    // Still serving with the CA unreachable.
    assert_eq!(https_ok(&root, https).await.status(), 200);
    server.stop();

    // A CA that cannot be reached is surfaced to operators.
    let fresh = Env::new();
    let out = fresh.cli(
        &[
            "user",
            "create",
            "--email",
            "ops@example.com",
            "--platform-admin",
            "--password-stdin",
        ],
        Some(&format!("{}\n", common::PASSWORD)),
    );
    assert!(out.status.success());
    let server = fresh.start_with(&[
        ("AURA_TLS__MODE", "acme"),
        ("AURA_TLS__DOMAINS", "[\"aura.test\"]"),
        ("AURA_TLS__HTTPS_LISTEN", "127.0.0.1:0"),
        ("AURA_TLS__HTTP_LISTEN", "127.0.0.1:0"),
        ("AURA_TLS__ACME__CONTACT", "ops@example.com"),
        ("AURA_TLS__ACME__DIRECTORY_URL", &pebble.directory),
        (
            "AURA_TLS__ACME__CA_ROOT_FILE",
            pebble.listener_ca.to_str().unwrap(),
        ),
    ]);
    // With no certificate yet nobody can sign in over TLS to read the
    // platform status, so the log is where this failure shows.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let logs = String::from_utf8_lossy(&server.logs()).to_string();
        if logs.contains("acme failed; the current certificate keeps serving") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the ACME failure was not logged:\n{logs}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop();
}

#[tokio::test]
async fn acme_http_01_issue_and_doctor_checks() {
    let (env, pebble, _root, http, https, serial) = issue_with("http-01").await;
    assert!(serial.starts_with("serial="));

    // `aura doctor` checks the directory, the clock against it, the ports and DNS.
    let out = env
        .command(&["doctor"])
        .env("AURA_TLS__MODE", "acme")
        .env("AURA_TLS__DOMAINS", "[\"aura.test\"]")
        .env("AURA_TLS__HTTPS_LISTEN", format!("127.0.0.1:{https}"))
        .env("AURA_TLS__HTTP_LISTEN", format!("127.0.0.1:{http}"))
        .env("AURA_TLS__ACME__CONTACT", "ops@example.com")
        .env("AURA_TLS__ACME__DIRECTORY_URL", &pebble.directory)
        .env(
            "AURA_TLS__ACME__CA_ROOT_FILE",
            pebble.listener_ca.to_str().unwrap(),
        )
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("ok    acme"), "{report}");
    assert!(report.contains("ok    clock"), "{report}");
    assert!(report.contains("ok    port"), "{report}");
    // aura.test only resolves inside the test's DNS, so the system resolver fails it.
    assert!(
        report.contains("FAIL  dns") && !out.status.success(),
        "{report}"
    );
}

/// The TLS scan: sslscan against the ACME-issued certificate. Only TLS 1.2
/// and 1.3, only forward-secret AEAD suites, no compression, no Heartbleed.
/// The full output goes to `target/sslscan.txt` (see docs/security-scans.md).
#[tokio::test]
async fn sslscan_of_the_acme_certificate_finds_nothing_weak() {
    let env = Env::new();
    let (pebble, server, _http, https) = start_pair(&env, "tls-alpn-01").await;
    let root = pebble.issuing_root().await;
    assert_eq!(https_ok(&root, https).await.status(), 200);
    let out = Command::new("sslscan")
        .args([
            "--no-colour",
            "--sni-name=aura.test",
            &format!("127.0.0.1:{https}"),
        ])
        .output()
        .expect("sslscan is installed by scripts/test (apt: sslscan)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let _ = std::fs::create_dir_all("target");
    let _ = std::fs::write("target/sslscan.txt", &text);
    for old in ["SSLv2", "SSLv3", "TLSv1.0", "TLSv1.1"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(old))
            .unwrap_or_default();
        assert!(line.contains("disabled"), "{old} must be disabled:\n{text}");
    }
    for new in ["TLSv1.2", "TLSv1.3"] {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(new))
            .unwrap_or_default();
        assert!(line.contains("enabled"), "{new} must be enabled:\n{text}");
    }
    let accepted: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("Accepted") || l.starts_with("Preferred"))
        .collect();
    assert!(!accepted.is_empty(), "{text}");
    for l in &accepted {
        for weak in ["CBC", "RC4", "DES", "NULL", "EXP", "MD5", "anon"] {
            assert!(!l.contains(weak), "weak suite offered: {l}");
        }
        let tls12 = l.contains("TLSv1.2");
        assert!(
            !tls12 || l.contains("ECDHE"),
            "TLS 1.2 suite without forward secrecy: {l}"
        );
        assert!(
            l.contains("GCM") || l.contains("CHACHA20") || l.contains("TLS_AES"),
            "non-AEAD suite: {l}"
        );
    }
    assert!(!text.contains("Compression enabled"), "{text}");
    assert!(
        !text
            .lines()
            .any(|l| l.contains("vulnerable to heartbleed") && !l.contains("not vulnerable")),
        "{text}"
    );
    server.stop();
}
