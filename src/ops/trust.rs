//! The live trust page: every line is computed from the running system (its
//! config, keys, TLS certificate, audit log and backups), so it cannot drift
//! from the truth. `/trust` for people, `/trust.json` for machines, and
//! `/.well-known/security.txt` (RFC 9116).
//!
//! The page is public, so it says nothing about any one workspace: its
//! subprocessors are the ones the operator's config declares (S3 targets, the
//! ACME CA, `[[trust.subprocessors]]`), never a workspace's webhook receivers
//! (those are shown to the workspace's members inside it). What it computes
//! is cached (`TrustCache`) until control.db changes or a minute passes, so
//! an anonymous request costs no database work at all on a hit, and a handful
//! of control.db reads (never a workspace database) on a miss.

use std::sync::Arc;
use std::time::{Duration, Instant};

use poem::http::StatusCode;
use poem::web::{Data, Json};
use poem::{IntoResponse, Response, handler};
use serde::Serialize;

use crate::app::AppState;
use crate::audit::anchor::AnchorCheckpoint;
use crate::audit::service::last_platform_entry;
use crate::clock::{SharedClock, rfc3339};
use crate::config::{BackupTargetKind, Config, TlsMode};
use crate::store::control::Control;

#[derive(Clone, Serialize)]
pub struct Trust {
    pub version: String,
    pub build: String,
    pub region: String,
    pub residency: String,
    pub tls: TrustTls,
    pub encryption: TrustEncryption,
    pub backups: TrustBackups,
    pub audit: TrustAudit,
    pub mfa: String,
    pub sign_in: TrustSignIn,
    pub data_rights: TrustDataRights,
    /// Workspaces on this appliance (active or not).
    pub workspaces: i64,
    pub subprocessors: Vec<Subprocessor>,
    /// Every path by which data leaves the appliance, with its region and
    /// whether residency is enforced on it.
    pub outbound: Vec<super::trust_outbound::OutboundPath>,
    /// Declared subprocessors whose `effective` day is still ahead.
    pub upcoming_subprocessors: Vec<UpcomingSubprocessor>,
    /// Incidents declared on this appliance, newest first.
    pub incidents: Vec<TrustIncident>,
}

#[derive(Clone, Serialize)]
pub struct UpcomingSubprocessor {
    pub role: String,
    pub host: String,
    /// The day (UTC, YYYY-MM-DD) it starts.
    pub effective: String,
    /// The notice the operator promises, in days.
    pub notice_days: u32,
}

/// One incident as the public sees it: never which workspaces it affects,
/// only how many.
#[derive(Clone, Serialize)]
pub struct TrustIncident {
    pub id: String,
    pub declared_at: String,
    /// `open` or `resolved`.
    pub status: String,
    pub resolved_at: Option<String>,
    pub updated_at: String,
    /// True when it affects every workspace.
    pub all_workspaces: bool,
    /// How many workspaces it affects.
    pub workspaces_affected: i64,
    /// "all workspaces" or "N workspace(s)".
    pub scope: String,
    /// The public page with its summary and every update.
    pub summary_url: String,
}

/// GDPR export and erasure, as this appliance does them.
#[derive(Clone, Serialize)]
pub struct TrustDataRights {
    pub export: String,
    pub erasure: String,
    pub deletion: String,
    /// Workspaces whose keys were destroyed (crypto-shredded) so far.
    pub workspaces_shredded: i64,
}

#[derive(Clone, Serialize)]
pub struct TrustTls {
    pub mode: String,
    pub issuer: Option<String>,
    pub expires: Option<String>,
}

#[derive(Clone, Serialize)]
pub struct TrustEncryption {
    pub at_rest: String,
    pub passwords: String,
    pub audit_signatures: String,
    pub keys_created: Option<String>,
    pub last_rotation: String,
    /// When the master key in use began (`aura init` or its last rotation).
    pub master_key_since: Option<String>,
    pub master_key_age_days: Option<i64>,
    /// The last `aura keys rotate-master`; absent if never rotated.
    pub master_key_last_rotation: Option<String>,
}

#[derive(Clone, Serialize)]
pub struct TrustBackups {
    pub configured: bool,
    pub last_success: Option<String>,
    pub last_drill: Option<String>,
    pub last_drill_passed: Option<bool>,
    /// "replicated continuously to <region>, lag N s, point-in-time
    /// recovery to <oldest instant>" while replication runs.
    pub replication: Option<String>,
}

#[derive(Clone, Serialize)]
pub struct TrustAudit {
    pub retention_days: u32,
    pub last_verification: Option<String>,
    pub last_verification_intact: Option<bool>,
    /// The appliance's Ed25519 audit public key (hex): `move-in --source-key`
    /// on another appliance, and the key an anchor is checked with.
    pub public_key: String,
    /// The platform chain's newest signed checkpoint: save this file, and
    /// `aura audit verify --anchor` checks the chain still contains it.
    pub platform_checkpoint: Option<AnchorCheckpoint>,
}

/// Sign-in and token settings, read from the running config.
#[derive(Clone, Serialize)]
pub struct TrustSignIn {
    pub session_idle_minutes: u64,
    pub session_absolute_hours: u64,
    pub access_token_minutes: u64,
    pub refresh_tokens: String,
    pub api_tokens: String,
    pub login_failures_per_ip: u32,
    pub login_failure_window_minutes: u64,
}

#[derive(Clone, Serialize)]
pub struct Subprocessor {
    pub role: String,
    pub host: String,
}

fn host_of(url: &str) -> String {
    url.split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned()
}

/// What the page is computed from: narrow values, not `AppState`.
#[derive(Clone)]
pub struct Sources {
    pub config: Arc<Config>,
    pub control: Arc<Control>,
    pub clock: SharedClock,
    /// Whether passkey sign-in is offered (a relying party is configured).
    pub passkeys: bool,
    pub replication: Arc<crate::replication::status::ReplicaStatus>,
}

pub fn compute(src: &Sources) -> Trust {
    let cfg = &*src.config;
    let f = &cfg.file;
    let control = &*src.control;
    let cert = crate::tls::current_certificate(cfg, &control.keys);
    let keys_created: Option<i64> = control
        .db
        .read(crate::store::ops::first_platform_key_at)
        .ok()
        .flatten();
    let master = control
        .db
        .read(crate::store::master_rotation::info)
        .unwrap_or_default();
    let now = src.clock.unix();
    let backup = last_platform_entry(control, "backup.completed").map(|e| (e.time_unix, e.after));
    let drill = last_platform_entry(control, "backup.drill").map(|e| (e.time_unix, e.after));
    let verification: Option<(i64, bool)> = control
        .db
        .read(crate::store::ops::latest_verification_round)
        .ok()
        .flatten();
    let shredded: i64 = control
        .db
        .read(crate::store::ops::shredded_count)
        .unwrap_or(0);
    let requiring_mfa: i64 = control
        .db
        .read(crate::store::ops::requiring_mfa_count)
        .unwrap_or(0);
    let passkeys = if src.passkeys {
        "and passkeys"
    } else {
        "(passkeys need public_url to be a domain name)"
    };
    let backups_configured = !f.backup.recipients.is_empty() || cfg.dev;
    let mut subprocessors = Vec::new();
    if f.tls.mode == TlsMode::Acme {
        subprocessors.push(Subprocessor {
            role: "certificate authority (ACME)".into(),
            host: host_of(&f.tls.acme.directory_url),
        });
    }
    for t in f
        .backup
        .targets
        .iter()
        .filter(|t| t.kind == BackupTargetKind::S3)
    {
        subprocessors.push(Subprocessor {
            role: format!(
                "backup storage (S3, region {})",
                if t.region.is_empty() {
                    &f.region
                } else {
                    &t.region
                }
            ),
            host: host_of(&t.endpoint),
        });
    }
    let upcoming = crate::notices::subprocessors::upcoming(&f.trust.subprocessors, now);
    subprocessors.extend(
        f.trust
            .subprocessors
            .iter()
            .filter(|d| !upcoming.iter().any(|u| std::ptr::eq(*u, *d)))
            .map(|d| Subprocessor {
                role: d.role.clone(),
                host: d.host.clone(),
            }),
    );
    let upcoming_subprocessors = upcoming
        .into_iter()
        .map(|d| UpcomingSubprocessor {
            role: d.role.clone(),
            host: d.host.clone(),
            effective: d.effective.trim().to_owned(),
            notice_days: f.trust.subprocessor_notice_days,
        })
        .collect();
    let incidents = control
        .db
        .read(crate::store::notices::list_incidents)
        .unwrap_or_default()
        .into_iter()
        .map(|i| TrustIncident {
            declared_at: rfc3339(i.declared_at),
            resolved_at: i.resolved_at.map(rfc3339),
            updated_at: rfc3339(i.updated_at),
            all_workspaces: i.scope == "all",
            workspaces_affected: i.workspaces,
            scope: crate::notices::scope_words(&i),
            summary_url: format!("{}/trust/incidents/{}", cfg.public_url, i.id),
            status: i.status,
            id: i.id,
        })
        .collect();
    let workspaces: i64 = control
        .db
        .read(crate::store::ops::workspace_count)
        .unwrap_or(0);
    let platform_checkpoint = control
        .db
        .read(|c| crate::store::audit::latest_checkpoint(c, crate::audit::chains::PLATFORM))
        .ok()
        .flatten()
        .map(|c| AnchorCheckpoint::from_signed(&c));
    Trust {
        version: env!("CARGO_PKG_VERSION").into(),
        build: format!("{} {}", std::env::consts::ARCH, std::env::consts::OS),
        region: f.region.clone(),
        residency: f.residency.clone(),
        tls: TrustTls {
            mode: format!("{:?}", f.tls.mode).to_lowercase(),
            issuer: cert.as_ref().map(|c| c.0.clone()),
            expires: cert.map(|c| rfc3339(c.1)),
        },
        encryption: TrustEncryption {
            at_rest: "XChaCha20-Poly1305, one data key per workspace, wrapped by the master key"
                .into(),
            passwords: "argon2id (m=19456 KiB, t=2, p=1 or stronger)".into(),
            audit_signatures: "Ed25519 checkpoints over SHA-256 hash chains".into(),
            keys_created: keys_created.map(rfc3339),
            last_rotation: match master.last_rotation {
                Some(t) => format!("master key last rotated {}", rfc3339(t)),
                None => "never rotated (keys in use since they were created)".into(),
            },
            master_key_since: master.since.map(rfc3339),
            master_key_age_days: master.since.map(|t| (now - t).max(0) / 86_400),
            master_key_last_rotation: master.last_rotation.map(rfc3339),
        },
        backups: TrustBackups {
            configured: backups_configured,
            last_success: backup.map(|b| rfc3339(b.0)),
            last_drill: drill.as_ref().map(|d| rfc3339(d.0)),
            last_drill_passed: drill.and_then(|d| d.1.get("ok").and_then(|v| v.as_bool())),
            replication: crate::replication::trust_line(&src.replication, src.clock.unix_ms()),
        },
        audit: TrustAudit {
            retention_days: f.audit.retention_days,
            last_verification: verification.map(|v| rfc3339(v.0)),
            last_verification_intact: verification.map(|v| v.1),
            public_key: hex::encode(control.signer.public_key()),
            platform_checkpoint,
        },
        mfa: format!(
            "TOTP (with hashed recovery codes) {passkeys}, for every account; {requiring_mfa} workspace(s) require a second factor"
        ),
        sign_in: TrustSignIn {
            session_idle_minutes: f.auth.session_idle_minutes,
            session_absolute_hours: f.auth.session_absolute_hours,
            access_token_minutes: f.auth.access_token_minutes,
            refresh_tokens: format!(
                "single use, rotated on every refresh; reuse revokes the family; families end after {} days",
                f.auth.refresh_token_days
            ),
            api_tokens: "stored as SHA-256 only, shown once, one workspace, capped scope".into(),
            login_failures_per_ip: f.auth.login_failures_per_ip,
            login_failure_window_minutes: f.auth.login_failure_window_minutes,
        },
        data_rights: TrustDataRights {
            export: "self-serve: owners and admins export a whole workspace as one archive (optionally age-encrypted) or one person's records as JSON".into(),
            erasure: "self-serve anonymisation of a person: pii values become a keyed pseudonym in records, their history and audit entries; totals and the audit chain stay intact".into(),
            deletion: format!(
                "workspaces {} days and accounts {} days after the request (cancellable), then the workspace key is destroyed, so its data in every backup is unreadable",
                f.lifecycle.workspace_grace_days, f.lifecycle.account_grace_days
            ),
            workspaces_shredded: shredded,
        },
        workspaces,
        outbound: super::trust_outbound::paths(f),
        subprocessors,
        upcoming_subprocessors,
        incidents,
    }
}

/// How long a computed page may be served while control.db is unchanged
/// (the certificate's dates come from outside it).
const MAX_AGE: Duration = Duration::from_secs(60);

/// The last computed page, tagged with control.db's change number.
#[derive(Default)]
pub struct TrustCache {
    slot: tokio::sync::Mutex<Option<(i64, Instant, Trust)>>,
}

/// The cached page when control.db has not changed since it was computed
/// (and it is less than `MAX_AGE` old); else computes it once, while other
/// requests wait for that result instead of computing their own.
async fn computed(state: &AppState) -> Option<Trust> {
    let src = Sources {
        config: Arc::clone(&state.config),
        control: Arc::clone(&state.control),
        clock: Arc::clone(&state.clock),
        passkeys: state.passkeys.available(),
        replication: Arc::clone(&state.replication),
    };
    let version = src.control.cache.version().ok();
    let mut slot = state.trust.slot.lock().await;
    if let (Some(v), Some((at_version, at, t))) = (version, slot.as_ref()) {
        if *at_version == v && at.elapsed() < MAX_AGE {
            return Some(t.clone());
        }
    }
    let t = tokio::task::spawn_blocking(move || compute(&src))
        .await
        .ok()?;
    if let Some(v) = version {
        *slot = Some((v, Instant::now(), t.clone()));
    }
    Some(t)
}

#[handler]
pub async fn trust_json(state: Data<&Arc<AppState>>) -> Response {
    match computed(&state).await {
        Some(t) => Json(t).into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[handler]
pub async fn trust_page(state: Data<&Arc<AppState>>) -> Response {
    match computed(&state).await {
        Some(t) => crate::web::ui::trust::page(&t),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

#[handler]
pub fn security_txt(state: Data<&Arc<AppState>>) -> Response {
    let s = state.reloadable().security_txt;
    if s.contact.is_empty() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let expires =
        time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(s.expires_days.max(1)));
    let policy = if s.policy.is_empty() {
        format!("{}/trust", state.config.public_url)
    } else {
        s.policy.clone()
    };
    let body = format!(
        "Contact: {}\nExpires: {}\nPolicy: {}\nPreferred-Languages: {}\nCanonical: {}/.well-known/security.txt\n",
        s.contact,
        rfc3339(expires.unix_timestamp()),
        policy,
        s.preferred_languages,
        state.config.public_url
    );
    Response::builder()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}
