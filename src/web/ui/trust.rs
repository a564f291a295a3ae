//! The /trust page: the facts of the signed /trust.json, for people. Sections
//! in the order a reviewer reads them, each with a status pill (words, not
//! only a colour), a few plain lines, the live evidence, and a "verify it
//! yourself" with the command; the organisation and its links at the top,
//! the signing key at the bottom.

use maud::{Markup, html};
use poem::Response;
use poem::http::StatusCode;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{Chrome, html_response, layout};
use crate::ops::trust::{Signed, Status, Trust};

mod sections;

/// "3 minutes ago" for an RFC 3339 time, relative to when the page was
/// computed.
fn ago(now: &str, then: &str) -> String {
    let (Ok(now), Ok(then)) = (
        OffsetDateTime::parse(now, &Rfc3339),
        OffsetDateTime::parse(then, &Rfc3339),
    ) else {
        return String::new();
    };
    super::forms::relative(then.unix_timestamp(), now.unix_timestamp())
}

/// A time as written in the JSON, then how long ago it was.
fn when(t: &Trust, at: &str) -> String {
    format!("{at} ({})", ago(&t.generated_at, at))
}

fn pill(s: Status) -> Markup {
    html! { span class=(format!("pill {}", s.class())) { (s.label()) } }
}

/// One section: heading with its pill, the plain lines, the evidence, and
/// the commands (operator detail) folded away.
fn section(
    id: &str,
    title: &str,
    status: Option<Status>,
    body: Markup,
    verify: &[(&str, &str)],
) -> Markup {
    html! {
        section.card.trust-section id=(id) {
            div.trust-head {
                h2 { (title) }
                @if let Some(s) = status { (pill(s)) }
            }
            (body)
            @if !verify.is_empty() {
                details.verify {
                    summary { "Verify it yourself" }
                    dl { @for (how, cmd) in verify {
                        dt { (how) } dd { code { (cmd) } }
                    } }
                }
            }
        }
    }
}

fn header(t: &Trust) -> Markup {
    let o = &t.organisation;
    let named = [
        ("Privacy policy", &o.privacy_policy),
        ("Security policy", &o.security_policy),
        ("Status page", &o.status_page),
    ];
    html! {
        section.card.trust {
            h1 { @if let Some(n) = &o.name { (n) " — security and trust" } @else { "Security and trust" } }
            p.muted { "How this service protects your data, computed live from the running appliance (at most a minute old, last at "
                (t.generated_at) "). The same facts are published as signed data at the end of this page." }
            @if let Some(c) = &o.contact {
                p.contact { "Security contact: " a href=(c) { (c.strip_prefix("mailto:").unwrap_or(c)) } }
            }
            @if named.iter().any(|n| n.1.is_some()) || !o.links.is_empty() {
                ul.trust-links {
                    @for (label, url) in named { @if let Some(u) = url { li { a href=(u) { (label) } } } }
                    @for l in &o.links { li { a href=(l.url) { (l.label) } } }
                }
            }
            p.summary {
                (t.summary.met) " " (pill(Status::Met))
                " · " (t.summary.not_configured) " " (pill(Status::NotConfigured))
                " · " (t.summary.off) " " (pill(Status::Off))
                @if t.summary.failed > 0 { " · " (t.summary.failed) " " (pill(Status::Failed)) }
            }
        }
    }
}

fn signature(s: &Signed) -> Markup {
    html! {
        section.card.trust-section id="signed" {
            div.trust-head { h2 { "This page as signed data" } }
            p { a href="/trust.json" { "/trust.json" } " carries the same facts as typed fields, signed with this appliance's Ed25519 key. Pin the key once; later copies then prove they came from this appliance and were not changed." }
            dl.key {
                dt { "Public key" } dd { code.hash id="trust-public-key" { (s.public_key) } }
                dt { "Fingerprint" } dd { code.hash { (s.key_id) } }
            }
            details.verify {
                summary { "Verify it yourself" }
                dl {
                    dt { "Save the file, then check its signature against the key you pinned" }
                    dd { code { "aura trust verify trust.json --key " (s.public_key) } }
                    dt { "Check that the audit log still contains the checkpoint it names" }
                    dd { code { "aura audit verify --anchor trust.json" } }
                }
            }
        }
    }
}

pub fn page(s: &Signed) -> Response {
    let t = &s.trust;
    let body = html! {
        (header(t))
        (sections::all(t))
        (signature(s))
    };
    html_response(
        StatusCode::OK,
        layout("Security and trust", &Chrome::ANONYMOUS, body),
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn ago_reads_like_a_person_would_say_it() {
        let now = "2026-12-05T10:00:00Z";
        assert_eq!(super::ago(now, "2026-12-05T09:59:30Z"), "just now");
        assert_eq!(super::ago(now, "2026-12-05T09:57:00Z"), "3 minutes ago");
        assert_eq!(super::ago(now, "2026-12-05T08:00:00Z"), "2 hours ago");
        assert_eq!(super::ago(now, "2026-12-04T09:00:00Z"), "yesterday");
        assert_eq!(super::ago(now, "2026-12-01T10:00:00Z"), "4 days ago");
        assert_eq!(super::ago(now, "2027-01-04T10:00:00Z"), "in 30 days");
        assert_eq!(super::ago(now, "2024-01-04T10:00:00Z"), "2024-01-04");
        assert_eq!(super::ago(now, "garbage"), "");
    }
}
