//! The address a per-address limit counts by: IPv4 addresses as they are
//! (or their `ipv4_prefix` network), IPv6 addresses by their `ipv6_prefix`
//! network (a /64 by default), because one subscriber usually holds a whole
//! /64 and could otherwise take a fresh address for every attempt.

use std::net::IpAddr;

use crate::config::LimitsConfig;

/// The network `ip` is counted under.
pub fn network(ip: IpAddr, limits: &LimitsConfig) -> ipnet::IpNet {
    let ip = ip.to_canonical();
    let prefix = match ip {
        IpAddr::V4(_) => limits.ipv4_prefix.min(32),
        IpAddr::V6(_) => limits.ipv6_prefix.min(128),
    };
    ipnet::IpNet::new(ip, prefix)
        .map(|n| n.trunc())
        .unwrap_or_else(|_| ipnet::IpNet::from(ip))
}

/// The limiter key for a request's source address as `RequestMeta` carries
/// it (`-` when unknown).
pub fn key(ip: Option<&str>, limits: &LimitsConfig) -> String {
    match ip.and_then(|s| s.parse::<IpAddr>().ok()) {
        Some(ip) => network(ip, limits).to_string(),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_addresses_of_one_64_share_a_key() {
        let l = LimitsConfig::default();
        assert_eq!(key(Some("2001:db8:1:2::1"), &l), "2001:db8:1:2::/64");
        assert_eq!(
            key(Some("2001:db8:1:2:ffff:1:2:3"), &l),
            key(Some("2001:db8:1:2::9"), &l)
        );
        assert_ne!(
            key(Some("2001:db8:1:3::1"), &l),
            key(Some("2001:db8:1:2::1"), &l)
        );
        assert_eq!(key(Some("192.0.2.7"), &l), "192.0.2.7/32");
        assert_eq!(key(Some("::ffff:192.0.2.7"), &l), "192.0.2.7/32");
        assert_eq!(key(None, &l), "-");
        let wide = LimitsConfig {
            ipv6_prefix: 48,
            ipv4_prefix: 24,
            ..Default::default()
        };
        assert_eq!(key(Some("2001:db8:1:2::1"), &wide), "2001:db8:1::/48");
        assert_eq!(key(Some("192.0.2.7"), &wide), "192.0.2.0/24");
    }
}
