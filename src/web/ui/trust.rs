//! The /trust page: the same facts as /trust.json, for people.

use maud::html;
use poem::Response;
use poem::http::StatusCode;

use super::{Chrome, html_response, layout};
use crate::ops::trust::Trust;

fn or_not(v: &Option<String>, none: &str) -> String {
    v.clone().unwrap_or_else(|| none.to_owned())
}

pub fn page(t: &Trust) -> Response {
    let body = html! {
        section.card.trust {
            h1 { "Trust" }
            p.muted { "Computed from this running appliance (refreshed whenever its state changes, at most a minute old); " a href="/trust.json" { "JSON" } "." }
            table.kv {
                tr { th { "Version" } td { (t.version) " (" (t.build) ")" } }
                tr { th { "Region" } td { @if t.region.is_empty() { "not configured" } @else { (t.region) } } }
                tr { th { "Residency" } td { @if t.residency.is_empty() { "not enforced" } @else { "enforced: " (t.residency) } } }
                tr { th { "TLS" } td { (t.tls.mode)
                    @if let Some(i) = &t.tls.issuer { "; certificate from " (i) }
                    @if let Some(e) = &t.tls.expires { ", valid until " (e) } } }
                tr { th { "Encryption at rest" } td { (t.encryption.at_rest) } }
                tr { th { "Passwords" } td { (t.encryption.passwords) } }
                tr { th { "Audit log" } td { (t.encryption.audit_signatures) "; kept " (t.audit.retention_days) " days; last verification: "
                    (or_not(&t.audit.last_verification, "not yet"))
                    @if let Some(ok) = t.audit.last_verification_intact { (if ok { " (intact)" } else { " (FAILED)" }) } } }
                tr { th { "Audit anchor" } td { "public key " code { (t.audit.public_key) }
                    @if let Some(c) = &t.audit.platform_checkpoint { "; platform chain signed at seq " (c.seq) " (save /trust.json and check later with " code { "aura audit verify --anchor" } ")" } } }
                tr { th { "Keys" } td { "created " (or_not(&t.encryption.keys_created, "unknown")) "; " (t.encryption.last_rotation) } }
                tr { th { "Master key" } td { "in use since " (or_not(&t.encryption.master_key_since, "unknown"))
                    @if let Some(d) = t.encryption.master_key_age_days { " (" (d) " days)" }
                    "; last rotation: " (or_not(&t.encryption.master_key_last_rotation, "never")) } }
                tr { th { "Backups" } td {
                    @if !t.backups.configured { "not configured" } @else {
                        "last successful backup: " (or_not(&t.backups.last_success, "none yet"))
                        "; last restore drill: " (or_not(&t.backups.last_drill, "none yet"))
                        @if let Some(ok) = t.backups.last_drill_passed { (if ok { " (passed)" } else { " (FAILED)" }) }
                    }
                    @if let Some(r) = &t.backups.replication { "; " (r) } } }
                tr { th { "MFA" } td { (t.mfa) } }
                tr { th { "Browser sessions" } td { "end after " (t.sign_in.session_idle_minutes) " idle minutes, " (t.sign_in.session_absolute_hours) " hours at most" } }
                tr { th { "Access tokens" } td { "EdDSA JWTs valid " (t.sign_in.access_token_minutes) " minutes; refresh tokens " (t.sign_in.refresh_tokens) } }
                tr { th { "API tokens" } td { (t.sign_in.api_tokens) } }
                tr { th { "Sign-in limits" } td { (t.sign_in.login_failures_per_ip) " failures per IP per " (t.sign_in.login_failure_window_minutes) " minutes, then 429; per-account backoff" } }
                tr { th { "Your data" } td { "Export: " (t.data_rights.export) ". Erasure: " (t.data_rights.erasure) ". Deletion: " (t.data_rights.deletion) " (" (t.data_rights.workspaces_shredded) " so far)." } }
                tr { th { "Workspaces" } td { (t.workspaces) " on this appliance; each workspace shows its own webhook receivers to its members" } }
                tr { th { "Outbound paths" } td id="outbound" {
                    table.list {
                        thead { tr { th { "Path" } th { "Region" } th { "Residency" } th { "How" } } }
                        tbody { @for o in &t.outbound { tr {
                            td { (o.path) }
                            td { @if o.region.is_empty() { "-" } @else { (o.region) } }
                            td { @if o.enforced { "enforced" } @else { "not enforced" } }
                            td { (o.detail) }
                        } } }
                    } } }
                tr { th { "Subprocessors" } td {
                    @if t.subprocessors.is_empty() { "none declared (no S3 endpoint, no ACME CA, none in the operator's [trust] list)" } @else {
                        ul { @for s in &t.subprocessors { li { (s.role) ": " code { (s.host) } } } }
                    } } }
                tr { th { "Upcoming subprocessors" } td id="upcoming-subprocessors" {
                    @if t.upcoming_subprocessors.is_empty() { "none announced" } @else {
                        ul { @for s in &t.upcoming_subprocessors { li { (s.role) ": " code { (s.host) } " from " strong { (s.effective) } } } }
                        p.muted { "Owners of every workspace are mailed when a change is announced; the operator promises " (t.upcoming_subprocessors[0].notice_days) " days of notice." }
                    } } }
            }
            h2 { "Incidents" }
            @if t.incidents.is_empty() { p.muted id="incidents" { "None declared." } } @else {
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
        }
    };
    html_response(
        StatusCode::OK,
        layout(
            "Trust",
            &Chrome {
                email: None,
                csrf: "",
                impersonating: None,
            },
            body,
        ),
    )
}
