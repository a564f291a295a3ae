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
use poem::web::Data;
use poem::{IntoResponse, Response, handler};

pub use super::trust_facts::*;
use crate::app::AppState;
use crate::audit::anchor::AnchorCheckpoint;
use crate::audit::service::last_platform_entry;
use crate::clock::{SharedClock, rfc3339};
use crate::config::{BackupTargetKind, Config, TlsMode};
use crate::store::Sql;
use crate::store::control::Control;

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

fn status_of(ok: bool, otherwise: Status) -> Status {
    if ok { Status::Met } else { otherwise }
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

pub fn compute(src: &Sources) -> Trust {
    let cfg = &*src.config;
    let f = &cfg.file;
    let control = &*src.control;
    let read = |f: fn(&dyn Sql) -> crate::error::Result<i64>| control.db.read(f).unwrap_or(0);
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
    let backup = last_platform_entry(control, "backup.completed").map(|e| e.time_unix);
    let drill = last_platform_entry(control, "backup.drill").map(|e| (e.time_unix, e.after));
    let drill_passed = drill
        .as_ref()
        .and_then(|d| d.1.get("ok").and_then(|v| v.as_bool()));
    let verification: Option<(i64, bool)> = control
        .db
        .read(crate::store::ops::latest_verification_round)
        .ok()
        .flatten();
    let backups_configured = !f.backup.recipients.is_empty() || cfg.dev;
    let tls_status = match (&f.tls.mode, &cert) {
        (TlsMode::Off, _) => Status::Off,
        (_, Some((_, expires))) if *expires <= now => Status::Failed,
        (_, Some(_)) => Status::Met,
        (_, None) => Status::NotConfigured,
    };
    let replication = src.replication.region().map(|region| {
        let summary = src.replication.summary(src.clock.unix_ms());
        Replication {
            region,
            lag_seconds: summary.map(|(lag, _)| lag.round() as i64),
            restorable_from: summary
                .filter(|(_, oldest)| *oldest > 0)
                .map(|(_, oldest)| crate::clock::rfc3339_ms(oldest)),
        }
    });
    let t = &f.trust;
    let contact = t
        .contact_href()
        .or_else(|| non_empty(&f.security_txt.contact));
    let security_policy = non_empty(&t.security_policy);
    let mut trust = Trust {
        format: "aura-trust/1",
        generated_at: rfc3339(now),
        appliance: Appliance {
            version: env!("CARGO_PKG_VERSION").into(),
            build: format!("{} {}", std::env::consts::ARCH, std::env::consts::OS),
            public_url: cfg.public_url.clone(),
        },
        organisation: Organisation {
            name: non_empty(&t.organisation),
            contact: t.contact_href(),
            privacy_policy: non_empty(&t.privacy_policy),
            security_policy: security_policy.clone(),
            status_page: non_empty(&t.status_page),
            links: t.links.clone(),
        },
        summary: Summary::default(),
        access_control: AccessControl {
            status: Status::Met,
            totp: true,
            passkeys: src.passkeys,
            workspaces_requiring_mfa: read(crate::store::ops::requiring_mfa_count),
            workspaces_with_sso: read(|c| crate::store::sso::counts(c).map(|(n, _)| n)),
            workspaces_requiring_sso: read(|c| crate::store::sso::counts(c).map(|(_, r)| r)),
            session_idle_minutes: f.auth.session_idle_minutes,
            session_absolute_hours: f.auth.session_absolute_hours,
            access_token_minutes: f.auth.access_token_minutes,
            refresh_token_rotation: true,
            refresh_token_family_days: f.auth.refresh_token_days,
            api_tokens_hashed: true,
            login_failures_per_ip: f.auth.login_failures_per_ip,
            login_failure_window_minutes: f.auth.login_failure_window_minutes,
        },
        tenant_isolation: TenantIsolation {
            status: Status::Met,
            database_per_workspace: true,
            key_per_workspace: true,
            workspaces: read(crate::store::ops::workspace_count),
        },
        encryption: Encryption {
            in_transit: InTransit {
                status: tls_status,
                mode: format!("{:?}", f.tls.mode).to_lowercase(),
                issuer: cert.as_ref().map(|c| c.0.clone()),
                expires: cert.as_ref().map(|c| rfc3339(c.1)),
                days_left: cert.as_ref().map(|c| (c.1 - now).div_euclid(86_400)),
            },
            at_rest: AtRest {
                status: Status::Met,
                algorithm: "XChaCha20-Poly1305",
                key_per_workspace: true,
                password_hash: "argon2id",
                keys_created: keys_created.map(rfc3339),
                master_key_since: master.since.map(rfc3339),
                master_key_age_days: master.since.map(|t| (now - t).max(0) / 86_400),
                master_key_last_rotation: master.last_rotation.map(rfc3339),
            },
        },
        audit: TrustAudit {
            status: status_of(verification.is_none_or(|v| v.1), Status::Failed),
            hash_chain: "sha-256",
            signature_algorithm: "ed25519",
            retention_days: f.audit.retention_days,
            last_verification: verification.map(|v| rfc3339(v.0)),
            last_verification_intact: verification.map(|v| v.1),
            public_key: hex::encode(control.signer.public_key()),
            platform_checkpoint: control
                .db
                .read(|c| crate::store::audit::latest_checkpoint(c, crate::audit::chains::PLATFORM))
                .ok()
                .flatten()
                .map(|c| AnchorCheckpoint::from_signed(&c)),
        },
        backups: TrustBackups {
            status: match (backups_configured, backup, drill_passed) {
                (false, _, _) => Status::NotConfigured,
                (true, _, Some(false)) => Status::Failed,
                (true, None, _) => Status::NotConfigured,
                (true, Some(_), _) => Status::Met,
            },
            configured: backups_configured,
            last_success: backup.map(rfc3339),
            last_drill: drill.as_ref().map(|d| rfc3339(d.0)),
            last_drill_passed: drill_passed,
            replication,
        },
        residency: TrustResidency {
            status: status_of(!f.residency.is_empty(), Status::NotConfigured),
            region: f.region.clone(),
            residency: f.residency.clone(),
            enforced: !f.residency.is_empty(),
            outbound: super::trust_outbound::paths(f),
        },
        subprocessors: subprocessors(cfg, now),
        data_rights: TrustDataRights {
            status: Status::Met,
            workspace_export: true,
            export_encryption: true,
            person_export: true,
            erasure: true,
            workspace_grace_days: f.lifecycle.workspace_grace_days,
            account_grace_days: f.lifecycle.account_grace_days,
            crypto_shredding: true,
            workspaces_shredded: read(crate::store::ops::shredded_count),
            collections_with_retention: read(crate::store::retention::total),
        },
        incidents: incidents(control, &cfg.public_url),
        disclosure: Disclosure {
            status: status_of(contact.is_some(), Status::NotConfigured),
            contact,
            policy_url: security_policy.or_else(|| non_empty(&f.security_txt.policy)),
            security_txt: !f.security_txt.contact.is_empty(),
        },
    };
    trust.count();
    trust
}

/// The S3 targets, the ACME CA and `[[trust.subprocessors]]`: those in use
/// now, and those announced for a day still ahead.
fn subprocessors(cfg: &Config, now: i64) -> Subprocessors {
    let f = &cfg.file;
    let mut current = Vec::new();
    if f.tls.mode == TlsMode::Acme {
        current.push(Subprocessor {
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
        current.push(Subprocessor {
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
    current.extend(
        f.trust
            .subprocessors
            .iter()
            .filter(|d| !upcoming.iter().any(|u| std::ptr::eq(*u, *d)))
            .map(|d| Subprocessor {
                role: d.role.clone(),
                host: d.host.clone(),
            }),
    );
    Subprocessors {
        status: Status::Met,
        current,
        upcoming: upcoming
            .into_iter()
            .map(|d| UpcomingSubprocessor {
                role: d.role.clone(),
                host: d.host.clone(),
                effective: d.effective.trim().to_owned(),
                notice_days: f.trust.subprocessor_notice_days,
            })
            .collect(),
        notice_days: f.trust.subprocessor_notice_days,
    }
}

fn incidents(control: &Control, public_url: &str) -> Vec<TrustIncident> {
    control
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
            summary_url: format!("{public_url}/trust/incidents/{}", i.id),
            status: i.status,
            id: i.id,
        })
        .collect()
}

/// How long a computed page may be served while control.db is unchanged
/// (the certificate's dates come from outside it).
const MAX_AGE: Duration = Duration::from_secs(60);

/// The last computed page, tagged with control.db's change number.
#[derive(Default)]
pub struct TrustCache {
    slot: tokio::sync::Mutex<Option<(i64, Instant, Arc<Signed>)>>,
}

/// The facts, and /trust.json's body: the document and its signature.
pub struct Signed {
    pub trust: Trust,
    pub json: String,
    /// The signing key, base64, and its fingerprint: what a buyer pins.
    pub public_key: String,
    pub key_id: String,
}

fn sign(src: &Sources) -> Option<Signed> {
    let trust = compute(src);
    let document = serde_json::to_value(&trust).ok()?;
    let pk = src.control.signer.public_key();
    Some(Signed {
        json: super::trust_sign::signed_body(&document, &src.control.signer),
        public_key: super::trust_sign::public_key_b64(&pk),
        key_id: super::trust_sign::fingerprint(&pk),
        trust,
    })
}

/// The cached page when control.db has not changed since it was computed
/// (and it is less than `MAX_AGE` old); else computes it once, while other
/// requests wait for that result instead of computing their own.
async fn computed(state: &AppState) -> Option<Arc<Signed>> {
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
            return Some(Arc::clone(t));
        }
    }
    let t = Arc::new(
        tokio::task::spawn_blocking(move || sign(&src))
            .await
            .ok()??,
    );
    if let Some(v) = version {
        *slot = Some((v, Instant::now(), Arc::clone(&t)));
    }
    Some(t)
}

#[handler]
pub async fn trust_json(state: Data<&Arc<AppState>>) -> Response {
    match computed(&state).await {
        Some(t) => Response::builder()
            .content_type("application/json; charset=utf-8")
            .body(t.json.clone()),
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
    // `[security_txt]` first, else the trust page's own contact and policy:
    // a reviewer finds the same address both ways.
    let trust = &state.config.file.trust;
    let Some(contact) = non_empty(&s.contact).or_else(|| trust.contact_href()) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let expires =
        time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(s.expires_days.max(1)));
    let policy = non_empty(&s.policy)
        .or_else(|| {
            // A path on the appliance becomes a full URL, as RFC 9116 asks.
            non_empty(&trust.security_policy).map(|p| match p.starts_with('/') {
                true => format!("{}{p}", state.config.public_url),
                false => p,
            })
        })
        .unwrap_or_else(|| format!("{}/trust", state.config.public_url));
    let body = format!(
        "Contact: {}\nExpires: {}\nPolicy: {}\nPreferred-Languages: {}\nCanonical: {}/.well-known/security.txt\n",
        contact,
        rfc3339(expires.unix_timestamp()),
        policy,
        s.preferred_languages,
        state.config.public_url
    );
    Response::builder()
        .content_type("text/plain; charset=utf-8")
        .body(body)
}
