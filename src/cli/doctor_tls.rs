//! TLS checks for `aura doctor`: DNS of the configured domains, whether the
//! ports can be bound, the ACME directory's reachability and the clock's
//! skew against it.

use std::net::ToSocketAddrs;

use super::doctor::Report;
use crate::config::{Config, TlsMode};

pub async fn check(cfg: &Config, r: &mut Report) {
    let t = &cfg.file.tls;
    if t.mode == TlsMode::Off {
        r.ok(
            "tls",
            "off (plain HTTP; put a TLS proxy in front and list it in tls.trusted_proxies)",
        );
        return;
    }
    for (key, addr) in [
        ("tls.https_listen", &t.https_listen),
        ("tls.http_listen", &t.http_listen),
    ] {
        if addr.is_empty() {
            continue;
        }
        match std::net::TcpListener::bind(addr.as_str()) {
            Ok(_) => r.ok("port", format!("{addr} ({key}) can be bound")),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                r.ok("port", format!("{addr} ({key}) is in use (is `aura serve` running?)"))
            }
            Err(e) => r.fail(
                "port",
                format!("{addr} ({key}) cannot be bound: {e}; ports below 1024 need CAP_NET_BIND_SERVICE (the systemd unit grants it)"),
            ),
        }
    }
    if t.mode == TlsMode::Files {
        match crate::tls::files::load_pair(&t.cert_file, &t.key_file) {
            Ok(_) => r.ok(
                "certificate",
                format!("{} and its key load", t.cert_file.display()),
            ),
            Err(e) => r.fail("certificate", e),
        }
        return;
    }
    for d in &t.domains {
        match (d.as_str(), 443).to_socket_addrs() {
            Ok(addrs) => {
                let list: Vec<String> = addrs.map(|a| a.ip().to_string()).collect();
                r.ok("dns", format!("{d} resolves to {}", list.join(", ")))
            }
            Err(e) => r.fail(
                "dns",
                format!("{d} does not resolve ({e}); the CA cannot reach this appliance"),
            ),
        }
    }
    let client = crate::tls::acme::client_config(&t.acme.ca_root_file).map(|c| {
        reqwest::Client::builder()
            .use_preconfigured_tls((*c).clone())
            .timeout(std::time::Duration::from_secs(10))
            .build()
    });
    let resp = match client {
        Ok(Ok(c)) => c
            .get(&t.acme.directory_url)
            .send()
            .await
            .map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match resp {
        Ok(resp) if resp.status().is_success() => {
            r.ok(
                "acme",
                format!("directory {} answers", t.acme.directory_url),
            );
            let date = resp
                .headers()
                .get("date")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    // HTTP dates are IMF-fixdate (RFC 9110); a fixed format
                    // rather than RFC 2822, whose parser has had a
                    // stack-exhaustion bug (RUSTSEC-2026-0009, deny.toml).
                    time::PrimitiveDateTime::parse(
                        v,
                        time::macros::format_description!(
                            "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
                        ),
                    )
                    .ok()
                    .map(time::PrimitiveDateTime::assume_utc)
                });
            match date {
                Some(server) => {
                    let skew = (time::OffsetDateTime::now_utc() - server)
                        .whole_seconds()
                        .abs();
                    if skew <= 300 {
                        r.ok("clock", format!("within {skew}s of the ACME server"));
                    } else {
                        r.fail(
                            "clock",
                            format!(
                                "{skew}s off the ACME server; fix NTP (systemd-timesyncd or chrony)"
                            ),
                        );
                    }
                }
                None => r.ok(
                    "clock",
                    "the ACME server sent no Date header to compare with",
                ),
            }
        }
        Ok(resp) => r.fail(
            "acme",
            format!(
                "directory {} answered {}",
                t.acme.directory_url,
                resp.status()
            ),
        ),
        Err(e) => r.fail(
            "acme",
            format!("directory {} unreachable: {e}", t.acme.directory_url),
        ),
    }
}
