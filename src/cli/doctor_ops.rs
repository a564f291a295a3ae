//! Operational checks for `aura doctor`: file permissions, free disk space,
//! the systemd unit, the certificate's expiry.

use std::os::unix::fs::PermissionsExt;

use super::doctor::Report;
use crate::config::Config;

const MIN_FREE_BYTES: u64 = 1024 * 1024 * 1024;
const CERT_WARN_DAYS: i64 = 14;

pub fn check(cfg: &Config, r: &mut Report) {
    match std::fs::metadata(&cfg.data_dir) {
        Ok(m) if m.permissions().mode() & 0o077 == 0 => r.ok(
            "permissions",
            format!(
                "{} is private (mode {:04o})",
                cfg.data_dir.display(),
                m.permissions().mode() & 0o777
            ),
        ),
        Ok(m) => r.fail(
            "permissions",
            format!(
                "{} has mode {:04o}; run `chmod 700 {}`",
                cfg.data_dir.display(),
                m.permissions().mode() & 0o777,
                cfg.data_dir.display()
            ),
        ),
        Err(e) => r.fail("permissions", format!("{}: {e}", cfg.data_dir.display())),
    }
    match nix::sys::statvfs::statvfs(&cfg.data_dir) {
        Ok(s) => {
            // fsblkcnt_t and c_ulong are u64 here but not on every platform.
            #[allow(clippy::unnecessary_cast)]
            let free = (s.blocks_available() as u64).saturating_mul(s.fragment_size() as u64);
            let gib = free as f64 / 1_073_741_824.0;
            if free >= MIN_FREE_BYTES {
                r.ok("disk", format!("{gib:.1} GiB free for the data dir"));
            } else {
                r.fail("disk", format!("only {gib:.2} GiB free for the data dir; free space or move backups to another disk"));
            }
        }
        Err(e) => r.fail("disk", format!("cannot read free space: {e}")),
    }
    let unit = [
        "/etc/systemd/system/aura.service",
        "/lib/systemd/system/aura.service",
        "/usr/lib/systemd/system/aura.service",
    ]
    .into_iter()
    .find(|p| std::path::Path::new(p).exists());
    match unit {
        Some(p) => {
            r.ok("unit", format!("{p} is installed"));
            check_unit_nofile(p, r);
        }
        None => r.ok(
            "unit",
            "no systemd unit installed (fine when Aura runs another way)",
        ),
    }
    check_process_nofile(cfg, r);
    if let Ok(now) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        if now.as_secs() < 1_700_000_000 {
            r.fail(
                "clock",
                "the system clock is before 2023; fix NTP (systemd-timesyncd or chrony)",
            );
        }
    }
}

/// The descriptor limit a unit must give Aura: enough for the default
/// connection cap plus its reserve for databases.
const MIN_NOFILE: u64 = 16_384;

/// `LimitNOFILE=` in the installed unit (issue 27, finding 1).
fn check_unit_nofile(path: &str, r: &mut Report) {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    match unit_nofile(&text) {
        Some(n) if n >= MIN_NOFILE => r.ok("descriptors", format!("{path} sets LimitNOFILE={n}")),
        Some(n) => r.fail(
            "descriptors",
            format!("{path} sets LimitNOFILE={n}; set LimitNOFILE=65536 under [Service] (at least {MIN_NOFILE})"),
        ),
        None => r.fail(
            "descriptors",
            format!("{path} has no LimitNOFILE=; add LimitNOFILE=65536 under [Service], or a flood of connections can use up the default 1024 descriptors"),
        ),
    }
}

/// The value of the last `LimitNOFILE=` line (`soft:hard` gives the soft
/// one; `infinity` counts as plenty).
pub fn unit_nofile(text: &str) -> Option<u64> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("LimitNOFILE="))
        .next_back()
        .map(|v| {
            let soft = v.split(':').next().unwrap_or(v).trim();
            if soft == "infinity" {
                u64::MAX
            } else {
                soft.parse().unwrap_or(0)
            }
        })
}

/// What the connection cap would be under this process's descriptor limit
/// (the same computation `aura serve` makes).
fn check_process_nofile(cfg: &Config, r: &mut Report) {
    let limiter = crate::web::conn::ConnLimiter::from_config(cfg);
    let nofile = crate::web::conn::descriptor_limit();
    let msg = format!(
        "descriptor limit {nofile} here: at most {} connections ({} configured)",
        limiter.max_total, cfg.file.limits.max_connections
    );
    if limiter.max_total < cfg.file.limits.max_connections
        && std::env::var_os("INVOCATION_ID").is_some()
    {
        r.fail("connections", format!("{msg}; raise LimitNOFILE="));
    } else {
        r.ok("connections", msg);
    }
}

/// Certificate expiry, once the state (and so the ACME cache key) is open.
/// An upcoming subprocessor must be announced at least
/// `trust.subprocessor_notice_days` before its `effective` day.
pub fn check_subprocessor_notice(cfg: &Config, r: &Report) {
    let t = &cfg.file.trust;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let upcoming = crate::notices::subprocessors::upcoming(&t.subprocessors, now);
    if upcoming.is_empty() {
        return;
    }
    let promised = i64::from(t.subprocessor_notice_days) * 86_400;
    for s in upcoming {
        let at = s.effective_unix().unwrap_or(now);
        let days = (at - now) / 86_400;
        if at - now < promised {
            r.warn(
                "subprocessor",
                format!(
                    "{} ({}) starts on {}, in {days} day(s): less than the {} days of notice \
                     trust.subprocessor_notice_days promises; move `effective` later",
                    s.role, s.host, s.effective, t.subprocessor_notice_days
                ),
            );
        } else {
            r.ok(
                "subprocessor",
                format!(
                    "{} ({}) announced for {}, in {days} days",
                    s.role, s.host, s.effective
                ),
            );
        }
    }
}

pub fn check_certificate(cfg: &Config, keys: &crate::store::control::PlatformKeys, r: &mut Report) {
    if let Some((issuer, not_after)) = crate::tls::current_certificate(cfg, keys) {
        let days = (not_after - time::OffsetDateTime::now_utc().unix_timestamp()) / 86_400;
        if days >= CERT_WARN_DAYS {
            r.ok("certificate", format!("from {issuer}, {days} days left"));
        } else {
            r.fail(
                "certificate",
                format!(
                    "from {issuer}, only {days} days left; check the ACME logs or replace the files"
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_limit_nofile_from_a_unit() {
        assert_eq!(
            super::unit_nofile("[Service]\nLimitNOFILE=65536\n"),
            Some(65536)
        );
        assert_eq!(super::unit_nofile("LimitNOFILE=4096:524288"), Some(4096));
        assert_eq!(super::unit_nofile("LimitNOFILE=infinity"), Some(u64::MAX));
        assert_eq!(super::unit_nofile("[Service]\nUser=aura\n"), None);
        let unit = include_str!("../../systemd/aura.service");
        assert!(super::unit_nofile(unit).is_some_and(|n| n >= super::MIN_NOFILE));
    }
}
