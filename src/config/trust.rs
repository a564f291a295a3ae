//! The `[trust]` section: who runs this appliance (shown at the top of the
//! public /trust page and in the signed /trust.json), where to reach their
//! security team, their policies, and the subprocessors the config does not
//! already show. Every value is optional: what is absent is not shown.

use serde::{Deserialize, Serialize};

use super::sections::parse_day;

/// The public trust page. `subprocessors` lists the services the operator
/// sends data to beyond what the config already shows (S3 targets and the
/// ACME CA are listed automatically), e.g. an SMTP relay. An entry with a
/// future `effective` date is an upcoming change: /trust shows it as such and
/// every workspace's owners are mailed once; `subprocessor_notice_days` is the
/// notice the operator promises (`aura doctor` warns when a date is sooner).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TrustConfig {
    /// The organisation that runs this appliance, e.g. "Example Ltd".
    pub organisation: String,
    /// The security contact: an email address, a `mailto:` or an `https:` URL.
    pub contact: String,
    /// The privacy policy (an `https:` URL or a path on this appliance).
    pub privacy_policy: String,
    /// The security policy / vulnerability disclosure policy.
    pub security_policy: String,
    /// The status page.
    pub status_page: String,
    /// Any other documents, e.g. a DPA: `{ label = "...", url = "..." }`.
    pub links: Vec<TrustLink>,
    pub subprocessors: Vec<DeclaredSubprocessor>,
    pub subprocessor_notice_days: u32,
}

impl Default for TrustConfig {
    fn default() -> Self {
        Self {
            organisation: String::new(),
            contact: String::new(),
            privacy_policy: String::new(),
            security_policy: String::new(),
            status_page: String::new(),
            links: Vec::new(),
            subprocessors: Vec::new(),
            subprocessor_notice_days: 30,
        }
    }
}

/// One link shown at the top of /trust.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TrustLink {
    pub label: String,
    pub url: String,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DeclaredSubprocessor {
    /// What it does for this appliance, e.g. "transactional email".
    pub role: String,
    /// Its host name, e.g. "smtp.mailer.example".
    pub host: String,
    /// The day (UTC, `YYYY-MM-DD`) it starts processing data; empty: already
    /// does.
    #[serde(default)]
    pub effective: String,
}

impl DeclaredSubprocessor {
    /// The start of its `effective` day (unix seconds, UTC), if it has one.
    pub fn effective_unix(&self) -> Option<i64> {
        parse_day(&self.effective)
    }
}

/// Longest organisation name and link label accepted.
const MAX_TEXT: usize = 200;
const MAX_LINKS: usize = 20;
const MAX_URL: usize = 2048;

/// Plain one-line text: no control characters, not too long.
fn plain(key: &str, v: &str) -> Result<(), String> {
    if v.chars().count() > MAX_TEXT || v.chars().any(char::is_control) {
        return Err(format!(
            "key `{key}`: must be one line of at most {MAX_TEXT} characters"
        ));
    }
    Ok(())
}

/// An `https:` URL with a host, or a path on this appliance (`/privacy`).
pub fn check_link(key: &str, v: &str) -> Result<(), String> {
    let bad = || {
        Err(format!(
            "key `{key}`: `{v}` must be an https:// URL or a path on this appliance starting with /"
        ))
    };
    if v.len() > MAX_URL || v.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return bad();
    }
    if v.starts_with('/') {
        // `//host` and `/\host` are other origins to a browser.
        if v.starts_with("//") || v.starts_with("/\\") {
            return bad();
        }
        return Ok(());
    }
    match url::Url::parse(v) {
        Ok(u) if u.scheme() == "https" && u.host_str().is_some_and(|h| !h.is_empty()) => Ok(()),
        _ => bad(),
    }
}

/// An email address, a `mailto:` address or an `https:` URL.
fn check_contact(v: &str) -> Result<(), String> {
    if v.starts_with("https:") {
        return check_link("trust.contact", v);
    }
    let addr = v.strip_prefix("mailto:").unwrap_or(v);
    let ok = addr.len() <= MAX_TEXT
        && addr.split_once('@').is_some_and(|(user, host)| {
            !user.is_empty() && host.contains('.') && !host.starts_with('.')
        })
        && !addr
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "<>\"'(),;:\\".contains(c));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "key `trust.contact`: `{v}` must be an email address (security@example.com), a mailto: address or an https:// URL"
        ))
    }
}

impl TrustConfig {
    pub fn validate(&self) -> Result<(), String> {
        plain("trust.organisation", &self.organisation)?;
        if !self.contact.is_empty() {
            check_contact(&self.contact)?;
        }
        for (key, v) in [
            ("trust.privacy_policy", &self.privacy_policy),
            ("trust.security_policy", &self.security_policy),
            ("trust.status_page", &self.status_page),
        ] {
            if !v.is_empty() {
                check_link(key, v)?;
            }
        }
        if self.links.len() > MAX_LINKS {
            return Err(format!("key `trust.links`: at most {MAX_LINKS} links"));
        }
        for (i, l) in self.links.iter().enumerate() {
            if l.label.trim().is_empty() {
                return Err(format!("key `trust.links[{i}].label`: must not be empty"));
            }
            plain(&format!("trust.links[{i}].label"), &l.label)?;
            check_link(&format!("trust.links[{i}].url"), &l.url)?;
        }
        for (i, s) in self.subprocessors.iter().enumerate() {
            if !s.effective.is_empty() && parse_day(&s.effective).is_none() {
                return Err(format!(
                    "key `trust.subprocessors[{i}].effective`: `{}` is not a date like \"2027-01-15\"",
                    s.effective
                ));
            }
        }
        Ok(())
    }

    /// The contact as a link target: `mailto:` for an address.
    pub fn contact_href(&self) -> Option<String> {
        match self.contact.as_str() {
            "" => None,
            c if c.starts_with("https:") || c.starts_with("mailto:") => Some(c.to_owned()),
            c => Some(format!("mailto:{c}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_https_or_same_origin_paths() {
        for ok in [
            "https://example.com/privacy",
            "/privacy",
            "/docs/dpa.pdf?v=2",
        ] {
            assert!(check_link("k", ok).is_ok(), "{ok}");
        }
        for bad in [
            "http://example.com",
            "javascript:alert(1)",
            "//evil.example",
            "/\\evil.example",
            "https://",
            "https://exa mple.com",
            "privacy",
            "data:text/html,hi",
        ] {
            assert!(check_link("k", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contacts_are_addresses_or_https() {
        let with = |c: &str| TrustConfig {
            contact: c.into(),
            ..TrustConfig::default()
        };
        for ok in [
            "security@example.com",
            "mailto:security@example.com",
            "https://example.com/report",
        ] {
            assert!(with(ok).validate().is_ok(), "{ok}");
        }
        for bad in [
            "security",
            "a@b",
            "http://example.com",
            "x@example.com\"><script>",
        ] {
            assert!(with(bad).validate().is_err(), "{bad}");
        }
        assert_eq!(
            with("security@example.com").contact_href().as_deref(),
            Some("mailto:security@example.com")
        );
    }

    #[test]
    fn a_link_needs_a_label_and_an_organisation_is_one_line() {
        let mut t = TrustConfig {
            links: vec![TrustLink {
                label: " ".into(),
                url: "/dpa".into(),
            }],
            ..TrustConfig::default()
        };
        assert!(t.validate().is_err());
        t.links[0].label = "DPA".into();
        assert!(t.validate().is_ok());
        t.organisation = "Example\nLtd".into();
        assert!(t.validate().is_err());
    }
}
