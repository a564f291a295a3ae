//! Residency on every outbound path. With top-level `residency` set, data
//! leaves the appliance only for places in that region: backup targets and
//! the replica (by their `region`), and hosts (webhook receivers, the SMTP
//! relay) by the region the operator declares for them in
//! `[[outbound.hosts]]`. A host matches a pattern on its parsed form only
//! (the URL's host, never its userinfo, path or query), in ASCII (IDN
//! punycoded), case-insensitively, with one trailing dot removed. The most
//! specific matching pattern decides (an exact name or IP, then the longest
//! `*.` suffix), so an operator can carve an out-of-region host out of an
//! in-region wildcard. A `*.` pattern never matches an IP literal, and an IP
//! pattern matches only that address.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use url::Host;

/// `[outbound]`: the hosts data may be sent to, each with its region.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutboundConfig {
    pub hosts: Vec<OutboundHost>,
}

/// One `[[outbound.hosts]]` entry, e.g. `pattern = "*.hooks.example.eu",
/// region = "EU"`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutboundHost {
    /// `host.example.eu` (that name), `*.example.eu` (any name under it, not
    /// `example.eu` itself) or an IP address (that address only).
    pub pattern: String,
    pub region: String,
}

#[derive(Clone, Debug, PartialEq)]
enum Pattern {
    Exact(String),
    /// The suffix with its leading dot: `.example.eu`.
    Under(String),
    Ip(IpAddr),
}

/// A host in its normal form: ASCII, lower case, no trailing dot.
fn normal_domain(d: &str) -> String {
    d.strip_suffix('.').unwrap_or(d).to_ascii_lowercase()
}

fn parse_pattern(raw: &str) -> Result<Pattern, String> {
    let p = raw.trim();
    if let Ok(ip) = p.trim_start_matches('[').trim_end_matches(']').parse() {
        return Ok(Pattern::Ip(ip));
    }
    let (wild, name) = match p.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, p),
    };
    if name.is_empty() || name.contains(['*', '/', '@', ':', '?', '#', ' ']) {
        return Err(format!(
            "`{raw}` is not a host name, `*.` followed by one, or an IP address"
        ));
    }
    match Host::parse(name) {
        Ok(Host::Domain(d)) => {
            let d = normal_domain(&d);
            if d.is_empty() || d.split('.').any(str::is_empty) {
                return Err(format!("`{raw}` has an empty label"));
            }
            Ok(if wild {
                Pattern::Under(format!(".{d}"))
            } else {
                Pattern::Exact(d)
            })
        }
        Ok(Host::Ipv4(_) | Host::Ipv6(_)) if wild => Err(format!(
            "`{raw}`: `*.` goes before a name, not an IP address"
        )),
        Ok(Host::Ipv4(ip)) => Ok(Pattern::Ip(IpAddr::V4(ip))),
        Ok(Host::Ipv6(ip)) => Ok(Pattern::Ip(IpAddr::V6(ip))),
        Err(_) => Err(format!("`{raw}` is not a valid host name")),
    }
}

/// Whether data may go to `region` under `residency` (empty: not enforced).
/// Regions compare case-insensitively.
pub fn region_allowed(residency: &str, region: &str) -> bool {
    let r = residency.trim();
    r.is_empty() || region.trim().eq_ignore_ascii_case(r)
}

/// The region a target (backup target, replica, file storage) is tagged
/// with: its own `region`, or else the appliance's.
pub fn target_region<'a>(own: &'a str, appliance: &'a str) -> &'a str {
    if own.trim().is_empty() {
        appliance
    } else {
        own
    }
}

/// Refuses a target outside `residency`, in one wording for every kind:
/// `key` is the config key, `what` the target as the operator wrote it.
pub fn check_target(key: &str, what: &str, region: &str, residency: &str) -> Result<(), String> {
    if region_allowed(residency, region) {
        return Ok(());
    }
    Err(format!(
        "key `{key}` ({what}) is in region `{region}`, outside this appliance's residency `{residency}`; \
         choose a target in {residency} or change `residency`"
    ))
}

/// Whether `url` is `s3://bucket` or `s3://bucket/prefix`.
pub fn is_s3_url(url: &str) -> bool {
    url.strip_prefix("s3://")
        .is_some_and(|b| !b.is_empty() && !b.starts_with('/'))
}

/// The residency rule of one appliance, built from its validated config.
#[derive(Clone, Debug, Default)]
pub struct Residency {
    residency: String,
    hosts: Vec<(Pattern, String)>,
}

/// Where a host was found out of region: what to tell the person.
#[derive(Clone, Debug, PartialEq)]
pub struct OutOfRegion {
    pub host: String,
    /// The region its most specific pattern declares; `None`: no pattern.
    pub declared: Option<String>,
    pub residency: String,
}

impl std::fmt::Display for OutOfRegion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.declared {
            Some(r) => write!(
                f,
                "host `{}` is declared in region `{r}` by `outbound.hosts`, outside this appliance's residency `{}`",
                self.host, self.residency
            ),
            None => write!(
                f,
                "host `{}` matches no `outbound.hosts` pattern in region `{}` (this appliance's residency); the operator declares in-region hosts in the config",
                self.host, self.residency
            ),
        }
    }
}

impl Residency {
    /// The rule of this config. Patterns are validated at load
    /// (`validate`); one that does not parse here matches nothing, so the
    /// rule fails closed.
    pub fn new(residency: &str, outbound: &OutboundConfig) -> Self {
        Self {
            residency: residency.trim().to_owned(),
            hosts: outbound
                .hosts
                .iter()
                .filter_map(|h| Some((parse_pattern(&h.pattern).ok()?, h.region.trim().into())))
                .collect(),
        }
    }

    pub fn from_file(f: &super::FileConfig) -> Self {
        Self::new(&f.residency, &f.outbound)
    }

    /// Whether `residency` is set, i.e. this rule refuses anything.
    pub fn enforced(&self) -> bool {
        !self.residency.is_empty()
    }

    pub fn residency(&self) -> &str {
        &self.residency
    }

    pub fn region_allowed(&self, region: &str) -> bool {
        region_allowed(&self.residency, region)
    }

    /// The region the most specific matching pattern declares for a host.
    pub fn declared_region(&self, host: &Host<&str>) -> Option<&str> {
        // A name with an empty label (`.a.example.eu`, `a..example.eu`,
        // two trailing dots) is no name a pattern declares.
        if let Host::Domain(d) = host
            && normal_domain(d).split('.').any(str::is_empty)
        {
            return None;
        }
        let mut best: Option<(usize, &str)> = None;
        for (p, region) in &self.hosts {
            let rank = match (p, host) {
                (Pattern::Ip(ip), Host::Ipv4(h)) if *ip == IpAddr::V4(*h) => usize::MAX,
                (Pattern::Ip(ip), Host::Ipv6(h)) if *ip == IpAddr::V6(*h) => usize::MAX,
                (Pattern::Exact(e), Host::Domain(d)) if *e == normal_domain(d) => usize::MAX,
                (Pattern::Under(s), Host::Domain(d)) if normal_domain(d).ends_with(s.as_str()) => {
                    s.len()
                }
                _ => continue,
            };
            if best.is_none_or(|(r, _)| rank > r) {
                best = Some((rank, region.as_str()));
            }
        }
        best.map(|(_, r)| r)
    }

    /// Checks a parsed host; `Ok` when residency is off or the host is
    /// declared in region.
    pub fn check_host(&self, host: &Host<&str>) -> Result<(), OutOfRegion> {
        if !self.enforced() {
            return Ok(());
        }
        match self.declared_region(host) {
            Some(r) if self.region_allowed(r) => Ok(()),
            declared => Err(OutOfRegion {
                host: match host {
                    Host::Domain(d) => normal_domain(d),
                    other => other.to_string(),
                },
                declared: declared.map(str::to_owned),
                residency: self.residency.clone(),
            }),
        }
    }

    /// Checks a URL by its parsed host (a URL without one is refused).
    pub fn check_url(&self, url: &url::Url) -> Result<(), OutOfRegion> {
        match url.host() {
            Some(h) => self.check_host(&h),
            None if !self.enforced() => Ok(()),
            None => Err(OutOfRegion {
                host: String::new(),
                declared: None,
                residency: self.residency.clone(),
            }),
        }
    }

    /// Checks a bare host name or address (the SMTP relay).
    pub fn check_host_str(&self, raw: &str) -> Result<(), OutOfRegion> {
        match parse_bare(raw) {
            Some(h) => self.check_host(&borrowed(&h)),
            None if !self.enforced() => Ok(()),
            None => Err(OutOfRegion {
                host: raw.trim().to_owned(),
                declared: None,
                residency: self.residency.clone(),
            }),
        }
    }

    /// The region declared for a bare host name or address, if any.
    pub fn declared_region_of(&self, raw: &str) -> Option<&str> {
        self.declared_region(&borrowed(&parse_bare(raw)?))
    }
}

/// A bare host (`smtp.example.eu`, `10.0.0.1`, `::1` or `[::1]`) parsed as
/// a URL host is.
fn parse_bare(raw: &str) -> Option<Host<String>> {
    let raw = raw.trim();
    if raw.parse::<std::net::Ipv6Addr>().is_ok() {
        return Host::parse(&format!("[{raw}]")).ok();
    }
    Host::parse(raw).ok()
}

fn borrowed(h: &Host<String>) -> Host<&str> {
    match h {
        Host::Domain(d) => Host::Domain(d.as_str()),
        Host::Ipv4(ip) => Host::Ipv4(*ip),
        Host::Ipv6(ip) => Host::Ipv6(*ip),
    }
}

/// The patterns declared in `region` (for the trust page).
pub fn patterns_in(outbound: &OutboundConfig, region: &str) -> Vec<String> {
    outbound
        .hosts
        .iter()
        .filter(|h| region_allowed(region, &h.region))
        .map(|h| h.pattern.trim().to_owned())
        .collect()
}

/// Checks `[[outbound.hosts]]`; the error names the key.
pub fn validate(outbound: &OutboundConfig) -> Result<(), String> {
    for (i, h) in outbound.hosts.iter().enumerate() {
        parse_pattern(&h.pattern).map_err(|e| format!("key `outbound.hosts[{i}].pattern`: {e}"))?;
        if h.region.trim().is_empty() {
            return Err(format!(
                "key `outbound.hosts[{i}].region` must name the region of `{}`, e.g. \"EU\"",
                h.pattern
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(hosts: &[(&str, &str)]) -> Residency {
        Residency::new(
            "EU",
            &OutboundConfig {
                hosts: hosts
                    .iter()
                    .map(|(p, r)| OutboundHost {
                        pattern: (*p).into(),
                        region: (*r).into(),
                    })
                    .collect(),
            },
        )
    }

    fn url_ok(r: &Residency, u: &str) -> bool {
        r.check_url(&url::Url::parse(u).unwrap()).is_ok()
    }

    #[test]
    fn hosts_match_on_the_parsed_host_only() {
        let r = rule(&[
            ("*.hooks.example.eu", "EU"),
            ("relay.example.eu", "eu"),
            ("127.0.0.1", "EU"),
            ("us.hooks.example.eu", "US"),
        ]);
        for good in [
            "https://a.hooks.example.eu/x",
            "https://A.HOOKS.EXAMPLE.EU/x",
            "https://a.hooks.example.eu./x",
            "https://deep.a.hooks.example.eu:8443/x?y=evil.com",
            "https://relay.example.eu/",
            "http://127.0.0.1:9000/x",
        ] {
            assert!(url_ok(&r, good), "{good}");
        }
        for host in [
            ".hooks.example.eu",
            "a..hooks.example.eu",
            "a.hooks.example.eu..",
        ] {
            assert!(r.declared_region(&Host::Domain(host)).is_none(), "{host}");
        }
        for bad in [
            // not under the suffix: the bare suffix, a lookalike, the
            // suffix as a leading part of another name
            "https://hooks.example.eu/x",
            "https://xhooks.example.eu/x",
            "https://a.hooks.example.eu.attacker.com/x",
            "https://evil.eu.attacker.com/x",
            // userinfo, path and query are not the host
            "https://eu@attacker.com/x",
            "https://a.hooks.example.eu@attacker.com/x",
            "https://attacker.com/a.hooks.example.eu",
            "https://attacker.com/?h=a.hooks.example.eu",
            // IP literals, in every spelling, never match a name pattern
            "https://127.0.0.2/x",
            "https://[::1]/x",
            "https://[::ffff:127.0.0.1]/x",
            "https://2130706434/x",
            // IDN lookalikes are punycoded: not the same name
            "https://a.hooks.exаmple.eu/x",
            "https://a.höoks.example.eu/x",
            // the more specific pattern says US
            "https://us.hooks.example.eu/x",
            "https://US.Hooks.Example.EU./x",
        ] {
            assert!(!url_ok(&r, bad), "{bad}");
        }
        // 127.0.0.1 in its other spellings is the same address.
        assert!(url_ok(&r, "http://2130706433/x"));
        assert!(url_ok(&r, "http://0x7f.0.0.1/x"));
        let e = r
            .check_url(&url::Url::parse("https://us.hooks.example.eu/").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("region `US`") && e.contains("`EU`"), "{e}");
    }

    #[test]
    fn idn_patterns_and_hosts_compare_as_punycode() {
        let r = rule(&[("*.hööks.eu", "EU")]);
        assert!(url_ok(&r, "https://a.HÖÖKS.eu/"));
        assert!(url_ok(&r, "https://a.xn--hks-snaa.eu/"));
        assert!(!url_ok(&r, "https://a.hooks.eu/"));
    }

    #[test]
    fn bare_hosts_are_parsed_like_url_hosts() {
        let r = rule(&[("*.example.eu", "EU"), ("::1", "EU")]);
        assert!(r.check_host_str("SMTP.example.eu.").is_ok());
        assert!(r.check_host_str("::1").is_ok());
        assert!(r.check_host_str("[::1]").is_ok());
        assert!(r.check_host_str("smtp.example.com").is_err());
        assert!(r.check_host_str("eu@smtp.example.com").is_err());
        assert!(r.check_host_str("example.eu").is_err());
    }

    #[test]
    fn residency_off_refuses_nothing() {
        let r = Residency::new("", &OutboundConfig::default());
        assert!(!r.enforced());
        assert!(url_ok(&r, "https://anywhere.example.com/"));
        assert!(r.region_allowed("US"));
        assert!(rule(&[]).region_allowed("eu"));
        assert!(!rule(&[]).region_allowed("US"));
    }

    #[test]
    fn bad_patterns_are_refused_at_load() {
        for bad in [
            "*",
            "*.",
            "",
            "a.*.example.eu",
            "*.127.0.0.1",
            "hooks.example.eu/x",
            "user@hooks.example.eu",
            "hooks.example.eu:443",
            "a..example.eu",
        ] {
            let cfg = OutboundConfig {
                hosts: vec![OutboundHost {
                    pattern: bad.into(),
                    region: "EU".into(),
                }],
            };
            let e = validate(&cfg).unwrap_err();
            assert!(e.contains("outbound.hosts[0].pattern"), "{bad}: {e}");
        }
        let no_region = OutboundConfig {
            hosts: vec![OutboundHost {
                pattern: "*.example.eu".into(),
                region: " ".into(),
            }],
        };
        assert!(
            validate(&no_region)
                .unwrap_err()
                .contains("outbound.hosts[0].region")
        );
    }
}
