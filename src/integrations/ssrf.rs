//! The SSRF guard of outbound webhooks. An address that is not globally
//! routable (unspecified, loopback, private, link-local, CGNAT, documentation,
//! benchmarking, reserved, multicast, broadcast, unique-local, and the IPv6
//! forms that embed such an IPv4 address: mapped `::ffff:a.b.c.d`, translated
//! `::ffff:0:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`, 6to4)
//! is refused unless the operator allow-lists it (`integrations.allowed_cidrs`).
//! The local-use NAT64 prefix `64:ff9b:1::/48` is refused whatever it
//! carries: where its IPv4 address sits depends on the operator's prefix
//! length, so it cannot be read back reliably, and it is never global.
//!
//! The check runs where the connection is made: the delivery client resolves
//! names through `GuardedResolver`, which drops every refused address, so the
//! address connected to is the address checked (no DNS-rebinding window). IP
//! literals never reach a resolver, so `check_url` refuses them first.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use url::{Host, Url};

use crate::error::{Error, Result};

/// What the guard allows beyond the global internet.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub allowed: Vec<IpNet>,
}

fn v4_global(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(o[0] == 0                                   // "this network", unspecified
        || o[0] == 10                             // private
        || o[0] == 127                            // loopback
        || (o[0] == 100 && (o[1] & 0xc0) == 64)   // CGNAT 100.64.0.0/10
        || (o[0] == 169 && o[1] == 254)           // link-local (cloud metadata)
        || (o[0] == 172 && (o[1] & 0xf0) == 16)   // private
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 192 && o[1] == 0 && o[2] == 2) // documentation
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast
        || (o[0] == 192 && o[1] == 168)           // private
        || (o[0] == 198 && (o[1] & 0xfe) == 18)   // benchmarking
        || (o[0] == 198 && o[1] == 51 && o[2] == 100) // documentation
        || (o[0] == 203 && o[1] == 0 && o[2] == 113) // documentation
        || o[0] >= 224) // multicast, reserved, broadcast
}

/// The IPv4 address an IPv6 address carries (mapped, translated, compatible,
/// NAT64, 6to4), which is what a connection to it would reach.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let tail = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    if s[..6] == [0, 0, 0, 0, 0xffff, 0] {
        return Some(tail); // ::ffff:0:a.b.c.d (IPv4-translated, RFC 2765 SIIT)
    }
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(tail); // ::a.b.c.d (deprecated IPv4-compatible)
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(tail); // NAT64
    }
    if s[0] == 0x2002 {
        return Some(Ipv4Addr::new(
            (s[1] >> 8) as u8,
            s[1] as u8,
            (s[2] >> 8) as u8,
            s[2] as u8,
        )); // 6to4
    }
    None
}

fn v6_global(ip: Ipv6Addr) -> bool {
    if let Some(v4) = embedded_v4(ip) {
        return v4_global(v4);
    }
    let s = ip.segments();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || (s[0] & 0xfe00) == 0xfc00             // unique local fc00::/7
        || (s[0] & 0xffc0) == 0xfe80             // link-local fe80::/10
        || (s[0] & 0xffc0) == 0xfec0             // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00             // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8)    // documentation
        || (s[0] == 0x2001 && s[1] == 0)         // Teredo
        || (s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1) // local-use NAT64 64:ff9b:1::/48
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard-only
        || s[..6] == [0, 0, 0, 0, 0, 0]) // the rest of ::/96
}

/// Whether an address is globally routable.
pub fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4_global(v4),
        IpAddr::V6(v6) => v6_global(v6),
    }
}

impl Policy {
    pub fn new(allowed: Vec<IpNet>) -> Self {
        Self { allowed }
    }

    pub fn from_config(c: &crate::config::IntegrationsConfig) -> Self {
        Self::new(c.validate().unwrap_or_default())
    }

    /// Allow-listed by the operator (the address itself or the IPv4 address
    /// it embeds).
    pub fn allow_listed(&self, ip: IpAddr) -> bool {
        let v4 = match ip {
            IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allowed
            .iter()
            .any(|n| n.contains(&ip) || v4.is_some_and(|v| n.contains(&v)))
    }

    pub fn permits(&self, ip: IpAddr) -> bool {
        is_global(ip) || self.allow_listed(ip)
    }

    /// Keeps the permitted addresses; none left is an error.
    pub fn filter(&self, addrs: impl Iterator<Item = SocketAddr>) -> Result<Vec<SocketAddr>> {
        let kept: Vec<SocketAddr> = addrs.filter(|a| self.permits(a.ip())).collect();
        if kept.is_empty() {
            return Err(Error::Forbidden);
        }
        Ok(kept)
    }

    /// Checks an endpoint URL: `https://` (or `http://` to an allow-listed
    /// IP literal), a host, no credentials, and an IP literal only when
    /// permitted. Names are checked when they are resolved, at every attempt.
    pub fn check_url(&self, raw: &str) -> Result<Url> {
        let bad = |m: &str| Error::field("url", m);
        if raw.len() > 2048 {
            return Err(bad("must be at most 2048 characters"));
        }
        let url = Url::parse(raw.trim()).map_err(|_| bad("is not a URL"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad("must not carry credentials; store them as a secret"));
        }
        let literal = match url.host() {
            None => return Err(bad("must name a host")),
            Some(Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            Some(Host::Domain(_)) => None,
        };
        if let Some(ip) = literal
            && !self.permits(ip)
        {
            return Err(bad(
                "points to a private, loopback or link-local address, which the operator has not allowed",
            ));
        }
        match url.scheme() {
            "https" => Ok(url),
            "http" if literal.is_some_and(|ip| self.allow_listed(ip)) => Ok(url),
            _ => Err(bad(
                "must start with https:// (http:// only to an address the operator allow-listed)",
            )),
        }
    }
}

/// Resolves names for the delivery client and keeps only permitted addresses.
pub struct GuardedResolver {
    pub policy: Policy,
}

/// Why a connection was refused; found in the error chain to classify it.
#[derive(Debug)]
pub struct Blocked;

impl std::fmt::Display for Blocked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("every address of the host is refused by the SSRF guard")
    }
}

impl std::error::Error for Blocked {}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let kept = policy
                .filter(found)
                .map_err(|_| Box::new(Blocked) as Box<dyn std::error::Error + Send + Sync>)?;
            let addrs: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client deliveries use: the guarded resolver, no proxy (it would
/// resolve names itself), no redirects (a redirect to an IP literal would skip
/// the resolver), and the attempt's time limit.
pub fn client(policy: Policy, timeout: std::time::Duration) -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .user_agent(concat!("Aura-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal(format!("webhook client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_global_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "10.255.255.255",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.1",
            "192.168.1.1",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "::",
            "::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:7f00:1::",
            "2001:db8::1",
        ] {
            assert!(!is_global(ip(a)), "{a} must be refused");
            assert!(!Policy::default().permits(ip(a)), "{a}");
        }
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_global(ip(a)), "{a} is global");
        }
    }

    /// Finding 15 of issue 18: the IPv4-translated form and both NAT64
    /// prefixes reach an IPv4 address through a translator.
    #[test]
    fn ipv4_translated_and_nat64_forms_are_refused() {
        for a in [
            "::ffff:0:127.0.0.1",
            "::ffff:0:169.254.169.254",
            "::ffff:0:10.0.0.1",
            "::ffff:0:0.0.0.0",
            "64:ff9b::127.0.0.1",
            "64:ff9b::10.1.2.3",
            "64:ff9b::192.168.0.1",
            "64:ff9b:1::a9fe:a9fe",
            "64:ff9b:1::8.8.8.8",
            "64:ff9b:1:7f00:1::",
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
        ] {
            assert!(!is_global(ip(a)), "{a} must be refused");
            assert!(!Policy::default().permits(ip(a)), "{a}");
            assert!(
                Policy::default()
                    .check_url(&format!("https://[{a}]/x"))
                    .is_err(),
                "{a}"
            );
        }
        // A global IPv4 address behind the well-known NAT64 prefix or the
        // translated form is what a connection would reach: allowed.
        for a in ["::ffff:0:8.8.8.8", "64:ff9b::8.8.8.8"] {
            assert!(is_global(ip(a)), "{a} is global");
        }
        // The operator's allow-list opens them by the IPv4 address they carry.
        let open = Policy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(open.permits(ip("::ffff:0:127.0.0.1")));
        assert!(open.permits(ip("64:ff9b::127.0.0.1")));
        assert!(!open.permits(ip("64:ff9b:1::127.0.0.1")));
    }

    #[test]
    fn the_allow_list_opens_exactly_its_ranges() {
        let p = Policy::new(vec![
            "127.0.0.0/8".parse().unwrap(),
            "10.1.0.0/16".parse().unwrap(),
        ]);
        assert!(p.permits(ip("127.0.0.1")));
        assert!(p.permits(ip("::ffff:127.0.0.1")));
        assert!(p.permits(ip("10.1.2.3")));
        assert!(!p.permits(ip("10.2.0.1")));
        assert!(!p.permits(ip("169.254.169.254")));
    }

    #[test]
    fn the_resolver_filter_drops_refused_addresses() {
        let sa = |s: &str| SocketAddr::new(ip(s), 443);
        let p = Policy::default();
        let mixed = [sa("10.0.0.1"), sa("93.184.216.34"), sa("169.254.169.254")];
        assert_eq!(
            p.filter(mixed.into_iter()).unwrap(),
            vec![sa("93.184.216.34")]
        );
        assert!(p.filter([sa("127.0.0.1"), sa("::1")].into_iter()).is_err());
        assert!(p.filter([sa("169.254.169.254")].into_iter()).is_err());
        let open = Policy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert_eq!(
            open.filter([sa("127.0.0.1")].into_iter()).unwrap(),
            vec![sa("127.0.0.1")]
        );
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_unless_allowed() {
        use reqwest::dns::Resolve;
        let name = |s: &str| s.parse::<reqwest::dns::Name>().unwrap();
        let guarded = GuardedResolver {
            policy: Policy::default(),
        };
        assert!(guarded.resolve(name("localhost")).await.is_err());
        let open = GuardedResolver {
            policy: Policy::new(vec![
                "127.0.0.0/8".parse().unwrap(),
                "::1/128".parse().unwrap(),
            ]),
        };
        let addrs: Vec<SocketAddr> = open.resolve(name("localhost")).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()));
    }

    #[test]
    fn urls_are_checked() {
        let p = Policy::default();
        assert!(p.check_url("https://hooks.example.com/x").is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://10.0.0.8/x",
            "https://169.254.169.254/latest/meta-data",
            "https://[::1]/x",
            "https://[::ffff:10.0.0.1]/x",
            "https://2130706433/x",
            "https://0x7f.1/x",
            "https://user:pw@hooks.example.com/",
            "ftp://hooks.example.com/",
            "not a url",
        ] {
            assert!(p.check_url(bad).is_err(), "{bad}");
        }
        let open = Policy::new(vec!["127.0.0.0/8".parse().unwrap()]);
        assert!(open.check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(
            open.check_url("http://localhost:8080/x").is_err(),
            "http needs an IP literal"
        );
        assert!(open.check_url("http://10.0.0.1/x").is_err());
    }
}
