//! The facts of the trust page as typed values: statuses as enums, times as
//! RFC 3339, counts as integers, no prose. /trust.json signs exactly this
//! document; /trust renders it in words.

use serde::Serialize;

use crate::audit::anchor::AnchorCheckpoint;
use crate::config::TrustLink;

/// How a reviewer reads an item at a glance.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In place, with live evidence.
    Met,
    /// Available but not set up on this appliance (or no evidence yet).
    NotConfigured,
    /// Switched off on this appliance.
    Off,
    /// Set up, and the last check failed.
    Failed,
}

impl Status {
    /// The words on the pill: never colour alone.
    pub fn label(self) -> &'static str {
        match self {
            Self::Met => "Met",
            Self::NotConfigured => "Not configured",
            Self::Off => "Off",
            Self::Failed => "Failed",
        }
    }

    pub fn class(self) -> &'static str {
        match self {
            Self::Met => "met",
            Self::NotConfigured => "not-configured",
            Self::Off => "off",
            Self::Failed => "failed",
        }
    }
}

/// The signed document of /trust.json.
#[derive(Clone, Serialize)]
pub struct Trust {
    /// `aura-trust/1`: the shape of this document.
    pub format: &'static str,
    pub generated_at: String,
    pub appliance: Appliance,
    pub organisation: Organisation,
    /// How many items are in each status.
    pub summary: Summary,
    pub access_control: AccessControl,
    pub tenant_isolation: TenantIsolation,
    pub encryption: Encryption,
    pub audit: TrustAudit,
    pub backups: TrustBackups,
    pub residency: TrustResidency,
    pub subprocessors: Subprocessors,
    pub data_rights: TrustDataRights,
    /// Incidents declared on this appliance, newest first.
    pub incidents: Vec<TrustIncident>,
    pub disclosure: Disclosure,
}

#[derive(Clone, Serialize)]
pub struct Appliance {
    pub version: String,
    /// `<arch> <os>`.
    pub build: String,
    pub public_url: String,
}

/// Who runs this appliance, from `[trust]`; absent values are left out.
#[derive(Clone, Serialize, Default)]
pub struct Organisation {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The security contact, as a link (`mailto:` or `https:`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub privacy_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_policy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_page: Option<String>,
    pub links: Vec<TrustLink>,
}

#[derive(Clone, Serialize, Default)]
pub struct Summary {
    pub met: u32,
    pub not_configured: u32,
    pub off: u32,
    pub failed: u32,
}

#[derive(Clone, Serialize)]
pub struct AccessControl {
    pub status: Status,
    /// TOTP with hashed recovery codes, for every account.
    pub totp: bool,
    /// Passkeys are offered (a relying party is configured).
    pub passkeys: bool,
    pub workspaces_requiring_mfa: i64,
    /// Workspaces whose people may sign in through their OpenID provider,
    /// and those that require it of their members.
    pub workspaces_with_sso: i64,
    pub workspaces_requiring_sso: i64,
    pub session_idle_minutes: u64,
    pub session_absolute_hours: u64,
    pub access_token_minutes: u64,
    /// Refresh tokens are single use; reuse revokes the family.
    pub refresh_token_rotation: bool,
    pub refresh_token_family_days: u64,
    /// API tokens are stored as SHA-256 only.
    pub api_tokens_hashed: bool,
    pub login_failures_per_ip: u32,
    pub login_failure_window_minutes: u64,
}

#[derive(Clone, Serialize)]
pub struct TenantIsolation {
    pub status: Status,
    /// Each workspace is its own SQLite file.
    pub database_per_workspace: bool,
    /// Each workspace has its own data key.
    pub key_per_workspace: bool,
    /// Workspaces on this appliance (active or not).
    pub workspaces: i64,
}

#[derive(Clone, Serialize)]
pub struct Encryption {
    pub in_transit: InTransit,
    pub at_rest: AtRest,
}

#[derive(Clone, Serialize)]
pub struct InTransit {
    pub status: Status,
    /// `off`, `files` or `acme`.
    pub mode: String,
    pub issuer: Option<String>,
    pub expires: Option<String>,
    pub days_left: Option<i64>,
}

#[derive(Clone, Serialize)]
pub struct AtRest {
    pub status: Status,
    /// `XChaCha20-Poly1305`.
    pub algorithm: &'static str,
    pub key_per_workspace: bool,
    /// `argon2id`.
    pub password_hash: &'static str,
    pub keys_created: Option<String>,
    /// When the master key in use began (`aura init` or its last rotation).
    pub master_key_since: Option<String>,
    pub master_key_age_days: Option<i64>,
    /// The last `aura keys rotate-master`; null if never rotated.
    pub master_key_last_rotation: Option<String>,
}

#[derive(Clone, Serialize)]
pub struct TrustAudit {
    pub status: Status,
    /// `sha-256`.
    pub hash_chain: &'static str,
    /// `ed25519`.
    pub signature_algorithm: &'static str,
    pub retention_days: u32,
    pub last_verification: Option<String>,
    pub last_verification_intact: Option<bool>,
    /// The appliance's Ed25519 audit public key (hex): `move-in
    /// --source-key` on another appliance, the key an anchor is checked
    /// with, and the key that signs this document.
    pub public_key: String,
    /// The platform chain's newest signed checkpoint: save this file, and
    /// `aura audit verify --anchor` checks the chain still contains it.
    pub platform_checkpoint: Option<AnchorCheckpoint>,
}

#[derive(Clone, Serialize)]
pub struct TrustBackups {
    pub status: Status,
    pub configured: bool,
    pub last_success: Option<String>,
    pub last_drill: Option<String>,
    pub last_drill_passed: Option<bool>,
    /// Present while continuous replication is configured.
    pub replication: Option<Replication>,
}

#[derive(Clone, Serialize)]
pub struct Replication {
    pub region: String,
    /// The largest lag of any database, in whole seconds; null before the
    /// first pass.
    pub lag_seconds: Option<i64>,
    /// The oldest instant every database can be restored to.
    pub restorable_from: Option<String>,
}

#[derive(Clone, Serialize)]
pub struct TrustResidency {
    pub status: Status,
    pub region: String,
    /// The region data must stay in; empty when residency is not enforced.
    pub residency: String,
    pub enforced: bool,
    /// Every path by which data leaves the appliance, with its region and
    /// whether residency is enforced on it.
    pub outbound: Vec<super::trust_outbound::OutboundPath>,
}

#[derive(Clone, Serialize)]
pub struct Subprocessors {
    pub status: Status,
    pub current: Vec<Subprocessor>,
    /// Declared subprocessors whose `effective` day is still ahead.
    pub upcoming: Vec<UpcomingSubprocessor>,
    /// The notice the operator promises before a new one starts, in days.
    pub notice_days: u32,
}

#[derive(Clone, Serialize)]
pub struct Subprocessor {
    pub role: String,
    pub host: String,
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

/// Export, erasure and deletion, as this appliance does them.
#[derive(Clone, Serialize)]
pub struct TrustDataRights {
    pub status: Status,
    /// Owners and admins export a whole workspace as one archive.
    pub workspace_export: bool,
    /// Exports may be encrypted to an age recipient.
    pub export_encryption: bool,
    /// One person's records as JSON (a data-subject access request).
    pub person_export: bool,
    /// A person's personal data becomes a keyed pseudonym everywhere.
    pub erasure: bool,
    pub workspace_grace_days: u32,
    pub account_grace_days: u32,
    /// After the grace period the workspace key is destroyed, so its data in
    /// every backup is unreadable.
    pub crypto_shredding: bool,
    /// Workspaces whose keys were destroyed so far.
    pub workspaces_shredded: i64,
    /// Collections (in active workspaces) with a retention window on the
    /// collection or on a file field: what is due is purged on schedule.
    pub collections_with_retention: i64,
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

#[derive(Clone, Serialize)]
pub struct Disclosure {
    pub status: Status,
    /// Where to report a vulnerability (`mailto:` or `https:`).
    pub contact: Option<String>,
    pub policy_url: Option<String>,
    /// `/.well-known/security.txt` (RFC 9116) is served.
    pub security_txt: bool,
}

impl Trust {
    /// Every status in the document, in page order.
    pub fn statuses(&self) -> [Status; 10] {
        [
            self.access_control.status,
            self.tenant_isolation.status,
            self.encryption.in_transit.status,
            self.encryption.at_rest.status,
            self.audit.status,
            self.backups.status,
            self.residency.status,
            self.subprocessors.status,
            self.data_rights.status,
            self.disclosure.status,
        ]
    }

    pub fn count(&mut self) {
        let mut s = Summary::default();
        for st in self.statuses() {
            match st {
                Status::Met => s.met += 1,
                Status::NotConfigured => s.not_configured += 1,
                Status::Off => s.off += 1,
                Status::Failed => s.failed += 1,
            }
        }
        self.summary = s;
    }
}
