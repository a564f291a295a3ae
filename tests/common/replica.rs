//! A replicating appliance for tests (tests/replication*.rs): a temp env
//! whose server replicates every 200 ms to a file:// or S3 (moto) target,
//! an age identity for restores, and a wait on the replicator's heartbeat.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

use age::secrecy::ExposeSecret;

use super::{Env, Server};

pub struct Replicated {
    pub env: Env,
    pub identity: PathBuf,
    pub recipient: String,
    pub url: String,
    /// The file:// target's directory.
    pub dir: PathBuf,
    /// Extra environment (the S3 endpoint and credentials).
    pub extra: Vec<(&'static str, String)>,
    /// (endpoint, bucket, key) of `status.json` on S3, if not in `dir`.
    pub status_url: Option<(String, String, String)>,
}

impl Replicated {
    /// A fresh appliance replicating every 200 ms to `file://<root>/replica`.
    pub fn new() -> Self {
        let env = Env::new();
        let id = age::x25519::Identity::generate();
        let identity = env.root().join("id.txt");
        std::fs::write(&identity, format!("{}\n", id.to_string().expose_secret())).unwrap();
        let dir = env.root().join("replica");
        Replicated {
            url: format!("file://{}", dir.display()),
            recipient: id.to_public().to_string(),
            identity,
            dir,
            env,
            extra: Vec::new(),
            status_url: None,
        }
    }

    /// Replicating to `s3://<bucket>/<prefix>` on a loopback S3 (moto).
    pub fn on_s3(endpoint: &str, bucket: &str, prefix: &str) -> Self {
        let mut r = Self::new();
        r.url = format!("s3://{bucket}/{prefix}");
        r.status_url = Some((
            endpoint.to_owned(),
            bucket.to_owned(),
            format!("{prefix}/status.json"),
        ));
        r.extra = vec![
            ("AWS_ENDPOINT_URL", endpoint.to_owned()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
        ];
        r
    }

    pub fn envs(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AURA_REPLICATION__URL", self.url.clone()),
            ("AURA_REPLICATION__INTERVAL_MS", "200".into()),
            (
                "AURA_BACKUP__RECIPIENTS",
                format!("[\"{}\"]", self.recipient),
            ),
        ]
        .into_iter()
        .chain(self.extra.iter().cloned())
        .collect()
    }

    pub fn start(&self) -> Server {
        let envs = self.envs();
        let pairs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.env.start_with(&pairs)
    }

    pub fn cli(&self, args: &[&str]) -> Output {
        let mut c = self.env.command(args);
        for (k, v) in self.envs() {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// `aura restore --to <root>/<name> --at latest`, which must succeed:
    /// the new data dir and what the command printed.
    pub fn restore_latest(&self, name: &str) -> (std::path::PathBuf, String) {
        let to = self.env.root().join(name);
        let out = ok(&self.cli(&[
            "restore",
            "--to",
            to.to_str().unwrap(),
            "--at",
            "latest",
            "--identity",
            self.identity.to_str().unwrap(),
        ]));
        (to, out)
    }

    /// A CLI command against another data dir, with the replication env.
    pub fn cli_at(&self, data_dir: &Path, args: &[&str]) -> Output {
        self.command_at(data_dir, args).output().unwrap()
    }

    pub fn command_at(&self, data_dir: &Path, args: &[&str]) -> Command {
        let mut c = self.env.command(args);
        c.arg("--data-dir").arg(data_dir);
        for (k, v) in self.envs() {
            c.env(k, v);
        }
        c
    }

    /// The replicator's heartbeat, or null.
    pub fn heartbeat(&self) -> serde_json::Value {
        let bytes = match &self.status_url {
            None => std::fs::read(self.dir.join("status.json")).ok(),
            // moto wants a signed GET: boto3 (moto's own dependency) signs it.
            Some(url) => std::process::Command::new("python3")
                .args([
                    "-c",
                    "import sys,boto3;e,b,k=sys.argv[1:4];sys.stdout.buffer.write(boto3.client('s3',endpoint_url=e,aws_access_key_id='test',aws_secret_access_key='test',region_name='us-east-1').get_object(Bucket=b,Key=k)['Body'].read())",
                    &url.0,
                    &url.1,
                    &url.2,
                ])
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| o.stdout),
        };
        bytes
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Waits until the replicator reports `db` matched at or after `after_ms`.
    pub fn wait_replicated(&self, db: &str, after_ms: i64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let beat = self.heartbeat();
            if beat["databases"][db]["synced_ms"].as_i64().unwrap_or(0) >= after_ms {
                return;
            }
            assert!(Instant::now() < deadline, "{db} not replicated: {beat}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

pub fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

pub fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// moto's S3 server on loopback with `bucket` created: (process, endpoint).
pub fn start_moto(bucket: &str) -> (Child, String) {
    let mut cmd = Command::new("python3");
    cmd.args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"]);
    let (moto, port) = super::spawn_reporting_port(cmd, false, "Running on http://127.0.0.1:");
    let endpoint = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let made = Command::new("curl")
            .args(["-sf", "-X", "PUT", &format!("{endpoint}/{bucket}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if made {
            return (moto, endpoint);
        }
        assert!(Instant::now() < deadline, "moto did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}
