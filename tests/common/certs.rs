//! Test certificates made with the openssl CLI: a CA and leaf certificates for
//! a name and 127.0.0.1.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn openssl(args: &[&str], dir: &Path) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is installed");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub struct Ca {
    pub dir: PathBuf,
    pub cert: PathBuf,
    key: PathBuf,
}

impl Ca {
    pub fn new(dir: &Path, name: &str) -> Ca {
        std::fs::create_dir_all(dir).unwrap();
        openssl(
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.pem"),
                "-days",
                "30",
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
            dir,
        );
        Ca {
            dir: dir.to_owned(),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }

    /// A leaf for `dns` and 127.0.0.1; returns (chain PEM, key PEM).
    pub fn leaf(&self, name: &str, dns: &str) -> (PathBuf, PathBuf) {
        let d = &self.dir;
        let ext = d.join(format!("{name}.ext"));
        std::fs::write(
            &ext,
            format!("subjectAltName=DNS:{dns},DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n"),
        )
        .unwrap();
        openssl(
            &[
                "req",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={dns}"),
            ],
            d,
        );
        openssl(
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                self.cert.to_str().unwrap(),
                "-CAkey",
                self.key.to_str().unwrap(),
                "-CAcreateserial",
                "-out",
                &format!("{name}.pem"),
                "-days",
                "7",
                "-extfile",
                ext.to_str().unwrap(),
            ],
            d,
        );
        (d.join(format!("{name}.pem")), d.join(format!("{name}.key")))
    }
}

/// The serial of the certificate a TLS server presents for `sni`.
pub fn served_serial(addr: &str, sni: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl s_client -connect {addr} -servername {sni} </dev/null 2>/dev/null | openssl x509 -noout -serial"
        ))
        .output()
        .unwrap();
    // `openssl x509` fails on no certificate: an empty answer is not a serial.
    let serial = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        out.status.success() && serial.len() > "serial=".len() && serial.starts_with("serial="),
        "no certificate served at {addr} for {sni}: {serial:?} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serial
}
