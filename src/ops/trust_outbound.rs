//! The trust page's list of outbound paths: every way data leaves this
//! appliance (backups, replication, files on S3, webhooks, the SMTP relay, workspace
//! moves), the region it goes to and whether `residency` is enforced on it.
//! Computed from the running config. The page is public, so it names no
//! workspace's receivers and no host, only regions and counts.

use serde::Serialize;

use crate::config::residency::{Residency, patterns_in};
use crate::config::{BackupTargetKind, FileConfig};

#[derive(Clone, Serialize)]
pub struct OutboundPath {
    /// `backups`, `replication`, `files`, `webhooks`, `smtp_relay` or `moves`.
    pub path: String,
    /// Where data on this path goes; empty when not known or not configured.
    pub region: String,
    /// True when `residency` is set and this path is held to it.
    pub enforced: bool,
    pub detail: String,
}

fn row(path: &str, region: String, enforced: bool, detail: String) -> OutboundPath {
    OutboundPath {
        path: path.into(),
        region,
        enforced,
        detail,
    }
}

pub fn paths(f: &FileConfig) -> Vec<OutboundPath> {
    let rule = Residency::from_file(f);
    let on = rule.enforced();
    let res = rule.residency().to_owned();
    let mut out = Vec::new();

    let mut regions: Vec<String> = f
        .backup
        .targets
        .iter()
        .map(|t| {
            if t.region.is_empty() {
                &f.region
            } else {
                &t.region
            }
            .clone()
        })
        .collect();
    if regions.is_empty() {
        regions.push(f.region.clone());
    }
    regions.sort();
    regions.dedup();
    let s3 = f
        .backup
        .targets
        .iter()
        .filter(|t| t.kind == BackupTargetKind::S3)
        .count();
    out.push(row(
        "backups",
        regions.join(", "),
        on,
        format!(
            "{} target(s), {s3} on S3; a target outside the residency region is refused at start",
            f.backup.targets.len().max(1)
        ),
    ));
    out.push(row(
        "replication",
        String::new(),
        on,
        "the replica target's `[replication] region` is checked against the residency region at start".into(),
    ));
    if f.files.on_s3() {
        out.push(row(
            "files",
            f.files.effective_region(&f.region).to_owned(),
            on,
            "attached files are kept sealed in an S3-compatible bucket; a bucket outside the residency region is refused at start".into(),
        ));
    }
    let declared = patterns_in(&f.outbound, &res).len();
    out.push(row(
        "webhooks",
        if on { res.clone() } else { String::new() },
        on,
        if on {
            format!(
                "a receiver's host must match one of {declared} host pattern(s) the operator declared in {res}; checked when an endpoint is saved and before every delivery"
            )
        } else {
            "receivers anywhere (residency not set); each workspace shows its own receivers to its members".into()
        },
    ));
    let relay = f.mail.smtp_host.trim();
    let relay_region = rule
        .declared_region_of(relay)
        .filter(|_| !relay.is_empty())
        .unwrap_or_default()
        .to_owned();
    out.push(row(
        "smtp_relay",
        relay_region,
        on,
        if relay.is_empty() {
            "no SMTP relay configured".into()
        } else {
            "the relay's host must be declared in the residency region, or Aura refuses to start"
                .into()
        },
    ));
    out.push(row(
        "moves",
        res.clone(),
        on,
        "`workspace move-out` names the target region; another region needs --allow-cross-region REASON, recorded in the audit log of both appliances".into(),
    ));
    out
}
