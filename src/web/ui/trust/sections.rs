//! The trust page's sections, one function each, in the order a reviewer
//! reads them. Words for people up top; config keys and commands only in
//! "verify it yourself".

use maud::{Markup, html};

use super::{section, when};
use crate::ops::trust::{Status, Trust};

pub fn all(t: &Trust) -> Markup {
    html! {
        (access_control(t))
        (tenant_isolation(t))
        (in_transit(t))
        (at_rest(t))
        (audit(t))
        (backups(t))
        (residency(t))
        (subprocessors(t))
        (your_data(t))
        (incidents(t))
        (disclosure(t))
    }
}

fn access_control(t: &Trust) -> Markup {
    let a = &t.access_control;
    section(
        "access-control",
        "Access control",
        Some(a.status),
        html! {
            p { "Every account can turn on two-factor sign-in with an authenticator app"
                @if a.passkeys { " or a passkey" } "; a workspace can require it of all its members. "
                "Repeated failed sign-ins are slowed down, then refused." }
            ul.evidence {
                li { (a.workspaces_requiring_mfa) " workspace(s) require two-factor sign-in" }
                li id="trust-sso" { (a.workspaces_requiring_sso) " workspaces require SSO (" (a.workspaces_with_sso) " offer sign-in through their OpenID provider)" }
                li { "Browser sessions end after " (a.session_idle_minutes) " idle minutes, " (a.session_absolute_hours) " hours at most" }
                li { "Access tokens last " (a.access_token_minutes) " minutes; refresh tokens work once and expire after " (a.refresh_token_family_days) " days" }
                li { "API tokens are stored only as hashes and shown once" }
                li { "Sign-in is refused after " (a.login_failures_per_ip) " failures from one address in " (a.login_failure_window_minutes) " minutes" }
            }
        },
        &[
            (
                "The settings these lines are read from",
                "[auth] in aura.toml; aura doctor checks the config",
            ),
            (
                "The same facts as data",
                "curl -s PUBLIC_URL/trust.json | jq .document.access_control",
            ),
        ],
    )
}

fn tenant_isolation(t: &Trust) -> Markup {
    let i = &t.tenant_isolation;
    section(
        "tenant-isolation",
        "Tenant isolation",
        Some(i.status),
        html! {
            p { "Each customer workspace is a separate database file with its own encryption key. "
                "A request opens only the workspace its signed-in person belongs to." }
            ul.evidence { li { (i.workspaces) " workspace(s) on this appliance" } }
        },
        &[(
            "Every route tried as every role against another workspace (from the source tree)",
            "cargo nextest run --test isolation_matrix",
        )],
    )
}

fn in_transit(t: &Trust) -> Markup {
    let e = &t.encryption.in_transit;
    section(
        "encryption-in-transit",
        "Encryption in transit",
        Some(e.status),
        html! {
            p { @match e.status {
                Status::Off => "This appliance does not serve HTTPS itself: unless a proxy in front of it adds HTTPS, connections are not encrypted.",
                Status::NotConfigured => "HTTPS is set up, but no certificate has been issued yet.",
                Status::Failed => "The HTTPS certificate has expired.",
                Status::Met => "Connections use HTTPS (TLS 1.2 or newer).",
            } }
            @if let (Some(issuer), Some(exp)) = (&e.issuer, &e.expires) {
                ul.evidence {
                    li { "Certificate from " (issuer) }
                    li { "Valid until " (exp) @if let Some(d) = e.days_left { " (" (d) " days left)" } }
                }
            }
        },
        &[
            (
                "Read the certificate yourself",
                "openssl s_client -connect HOST:443 -servername HOST </dev/null | openssl x509 -noout -issuer -enddate",
            ),
            (
                "Where it is set",
                "tls.mode in aura.toml (off, files or acme)",
            ),
        ],
    )
}

fn at_rest(t: &Trust) -> Markup {
    let e = &t.encryption.at_rest;
    section(
        "encryption-at-rest",
        "Encryption at rest",
        Some(e.status),
        html! {
            p { "All stored data is encrypted with " (e.algorithm) ", with a separate key for each workspace; "
                "those keys are protected by a master key. Passwords are stored as " (e.password_hash) " hashes." }
            ul.evidence {
                @if let Some(since) = &e.master_key_since {
                    li { "Master key in use since " (when(t, since))
                        @if let Some(d) = e.master_key_age_days { ", " (d) " days old" } }
                }
                li { "Master key last rotated: " @match &e.master_key_last_rotation { Some(r) => (when(t, r)), None => "never" } }
            }
        },
        &[
            ("Check the key, the data dir and the schema", "aura doctor"),
            ("Rotate the master key", "aura keys rotate-master"),
        ],
    )
}

fn audit(t: &Trust) -> Markup {
    let a = &t.audit;
    section(
        "audit",
        "Audit log",
        Some(a.status),
        html! {
            p { "Every change is written to a tamper-evident log: each entry is chained to the one before it, "
                "and the chain is signed, so a changed or deleted entry is detected. Entries are kept "
                (a.retention_days) " days." }
            ul.evidence {
                li { "Last verification: " @match &a.last_verification {
                    Some(v) => { (when(t, v)) @if let Some(ok) = a.last_verification_intact { (if ok { " (intact)" } else { " (FAILED)" }) } }
                    None => "not yet",
                } }
                @if let Some(c) = &a.platform_checkpoint {
                    li { "Newest signed checkpoint: entry " (c.seq) " of the platform log" }
                }
            }
        },
        &[
            (
                "Verify every chain; with a saved /trust.json, also that its checkpoint is still there",
                "aura audit verify --anchor trust.json",
            ),
            ("Algorithms", "SHA-256 hash chain, Ed25519 checkpoints"),
        ],
    )
}

fn backups(t: &Trust) -> Markup {
    let b = &t.backups;
    section(
        "backups",
        "Backups and recovery",
        Some(b.status),
        html! {
            p { @match (b.configured, b.status) {
                (false, _) => "No backups are configured on this appliance.",
                (true, Status::Failed) => "Backups are encrypted and restored in a drill to prove they work; the last drill failed.",
                (true, Status::NotConfigured) => "Backups are configured, but none has completed yet.",
                _ => "Backups are encrypted before they leave the appliance, and restored in a regular drill to prove they work.",
            } }
            ul.evidence {
                @if b.configured {
                    li { "Last successful backup: " @match &b.last_success { Some(s) => (when(t, s)), None => "none yet" } }
                    li { "Last restore drill: " @match &b.last_drill {
                        Some(d) => { (when(t, d)) @if let Some(ok) = b.last_drill_passed { (if ok { " (passed)" } else { " (FAILED)" }) } }
                        None => "none yet",
                    } }
                }
                @if let Some(r) = &b.replication {
                    li { "Also replicated continuously to " (r.region)
                        @match (r.lag_seconds, &r.restorable_from) {
                            (Some(lag), Some(from)) => { ", lag " (lag) " s, point-in-time recovery to " (from) }
                            _ => ", first pass under way",
                        } }
                }
            }
        },
        &[
            (
                "Restore the newest backup into a scratch dir and check everything",
                "aura backup verify --identity FILE",
            ),
            (
                "Replication lag and the oldest restorable instant",
                "aura replica status",
            ),
        ],
    )
}

fn residency(t: &Trust) -> Markup {
    let r = &t.residency;
    section(
        "residency",
        "Data residency",
        Some(r.status),
        html! {
            p { @if r.enforced {
                "Data stays in region " strong { (r.residency) } ": every way data leaves this appliance is held to it."
            } @else {
                "No residency rule is set"
                @if !r.region.is_empty() { " (this appliance runs in region " (r.region) ")" }
                ": data may be sent to any region."
            } }
            table.list id="outbound" {
                caption { "Outbound paths" }
                thead { tr { th { "Path" } th { "Region" } th { "Residency" } } }
                tbody { @for o in &r.outbound { tr {
                    td { (path_name(&o.path)) }
                    td { @if o.region.is_empty() { "—" } @else { (o.region) } }
                    td { @if o.enforced { "enforced" } @else { "not enforced" } }
                } } }
            }
        },
        &[(
            "Where it is set; refused destinations are reported",
            "residency and [[outbound.hosts]] in aura.toml; aura doctor",
        )],
    )
}

fn path_name(p: &str) -> &str {
    match p {
        "backups" => "Backups",
        "replication" => "Replication",
        "files" => "Attached files (S3)",
        "webhooks" => "Webhooks",
        "smtp_relay" => "Email relay (SMTP)",
        "moves" => "Workspace moves",
        other => other,
    }
}

fn subprocessors(t: &Trust) -> Markup {
    let s = &t.subprocessors;
    section(
        "subprocessors",
        "Subprocessors",
        Some(s.status),
        html! {
            p { "Outside services this appliance sends data to. Workspace owners are told "
                (s.notice_days) " days before a new one starts." }
            @if s.current.is_empty() { p.muted { "None: no outside service receives data from this appliance." } } @else {
                ul.evidence { @for p in &s.current { li { (p.role) ": " code { (p.host) } } } }
            }
            div id="upcoming-subprocessors" {
                @if s.upcoming.is_empty() { p.muted { "No new subprocessor announced." } } @else {
                    h3 { "Announced" }
                    ul.evidence { @for p in &s.upcoming { li { (p.role) ": " code { (p.host) } " from " strong { (p.effective) } } } }
                }
            }
        },
        &[(
            "Where they are declared",
            "[[trust.subprocessors]], backup.targets and tls.acme in aura.toml",
        )],
    )
}

fn your_data(t: &Trust) -> Markup {
    let d = &t.data_rights;
    section(
        "your-data",
        "Your data",
        Some(d.status),
        html! {
            p { "Owners and admins can export a whole workspace as one archive (optionally encrypted), "
                "or one person's records for a data-subject request. A person's personal data can be erased: "
                "it is replaced by a pseudonym everywhere, while totals and the audit log stay intact." }
            ul.evidence {
                li { "A deleted workspace is removed after " (d.workspace_grace_days) " days, an account after "
                    (d.account_grace_days) " days; then the workspace's key is destroyed, so its data in every backup is unreadable" }
                li { (d.workspaces_shredded) " workspace(s) deleted this way so far" }
                li id="trust-retention" { (d.collections_with_retention) " collections have retention windows: what is past its window is deleted on schedule, files included" }
            }
        },
        &[(
            "Export a workspace from the command line",
            "aura workspace export --help",
        )],
    )
}

fn incidents(t: &Trust) -> Markup {
    let open = t.incidents.iter().filter(|i| i.status == "open").count();
    section(
        "incidents-section",
        "Incidents",
        None,
        html! {
            p { "Security incidents are published here, without naming any customer; the owners of affected workspaces are told directly." }
            @if t.incidents.is_empty() { p.muted id="incidents" { "None declared." } } @else {
                p { (open) " open." }
                table.list id="incidents" {
                    thead { tr { th { "Declared" } th { "Scope" } th { "Status" } th { "Summary" } } }
                    tbody { @for i in &t.incidents { tr {
                        td { (i.declared_at) }
                        td { (i.scope) }
                        td { (i.status) @if let Some(r) = &i.resolved_at { " " (r) } }
                        td { a href=(format!("/trust/incidents/{}", i.id)) { "summary and updates" } }
                    } } }
                }
            }
        },
        &[],
    )
}

fn disclosure(t: &Trust) -> Markup {
    let d = &t.disclosure;
    section(
        "disclosure",
        "Vulnerability disclosure",
        Some(d.status),
        html! {
            @match &d.contact {
                Some(c) => p { "Report a vulnerability to " a href=(c) { (c.strip_prefix("mailto:").unwrap_or(c)) } "."
                    @if let Some(p) = &d.policy_url { " Read the " a href=(p) { "disclosure policy" } "." } },
                None => p { "The operator has not published a security contact." },
            }
        },
        &[
            (
                "The machine-readable contact (RFC 9116)",
                "curl -s PUBLIC_URL/.well-known/security.txt",
            ),
            (
                "Where it is set",
                "trust.contact and [security_txt] in aura.toml",
            ),
        ],
    )
}
