//! The SSRF guard: which resolved addresses a delivery may connect to, checked at connect time.
//!
//! [`SsrfGuard::check`] classifies one address. [`GuardedResolver`] plugs the guard into ureq's
//! name resolution, so the addresses ureq connects to are exactly the ones that were checked:
//! a public name that resolves to `127.0.0.1` is refused like the literal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::error::DeliverError;

/// Cloud metadata addresses: refused even when private networks are allowed, unless named in
/// [`DeliverConfig::allowed_metadata`](crate::DeliverConfig::allowed_metadata).
///
/// `169.254.169.254` (AWS, GCP, Azure, OpenStack, ...), `169.254.170.2` (AWS ECS task
/// metadata), `100.100.100.200` (Alibaba Cloud) and `fd00:ec2::254` (AWS over IPv6).
pub const METADATA_ADDRESSES: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
];

/// Decides which addresses deliveries may connect to.
///
/// Three groups of non-public addresses:
///
/// - **private** (refused unless `allow_private_network`): loopback (`127.0.0.0/8`, `::1`),
///   RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), CGNAT (`100.64/10`), link-local
///   (`169.254/16`, `fe80::/10`), IPv6 ULA (`fc00::/7`), deprecated site-local (`fec0::/10`),
///   benchmarking (`198.18/15`), IETF protocol assignments (`192.0.0/24`);
/// - **never routable** (always refused): unspecified (`0.0.0.0/8`, `::`), multicast
///   (`224/4`, `ff00::/8`), broadcast (`255.255.255.255`), reserved (`240/4`), documentation
///   (`192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`), discard
///   (`100::/64`);
/// - **cloud metadata** ([`METADATA_ADDRESSES`]): always refused unless named one by one.
///
/// IPv6 addresses that embed an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`, IPv4-compatible
/// `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by the embedded address.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SsrfGuard {
    allow_private_network: bool,
    allowed_metadata: Vec<IpAddr>,
}

impl SsrfGuard {
    /// A guard; `allowed_metadata` lists metadata addresses that are nevertheless allowed.
    pub fn new(allow_private_network: bool, allowed_metadata: Vec<IpAddr>) -> SsrfGuard {
        SsrfGuard {
            allow_private_network,
            allowed_metadata,
        }
    }

    /// `Ok` when a delivery may connect to `ip`; otherwise the name of the refused range.
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        let ip = canonical(ip);
        if METADATA_ADDRESSES.contains(&ip) {
            return if self.allowed_metadata.contains(&ip) {
                Ok(())
            } else {
                Err("cloud metadata")
            };
        }
        match classify(ip) {
            Class::Public => Ok(()),
            Class::Private(_) if self.allow_private_network => Ok(()),
            Class::Private(range) | Class::Never(range) => Err(range),
        }
    }
}

enum Class {
    Public,
    Private(&'static str),
    Never(&'static str),
}

/// Reduces an IPv6 address that embeds an IPv4 one to that IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    let seg = v6.segments();
    let oct = v6.octets();
    let tail = Ipv4Addr::new(oct[12], oct[13], oct[14], oct[15]);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    // IPv4-compatible (deprecated): ::a.b.c.d, but not :: and ::1 themselves.
    if seg[..6] == [0; 6] && !(seg[6] == 0 && (seg[7] == 0 || seg[7] == 1)) {
        return IpAddr::V4(tail);
    }
    // NAT64 well-known prefix 64:ff9b::/96.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return IpAddr::V4(tail);
    }
    // 6to4: 2002:AABB:CCDD::/48 carries AA.BB.CC.DD.
    if seg[0] == 0x2002 {
        return IpAddr::V4(Ipv4Addr::new(oct[2], oct[3], oct[4], oct[5]));
    }
    ip
}

fn classify(ip: IpAddr) -> Class {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Class::Never("unspecified"),
        (127, _, _) => Class::Private("loopback"),
        (10, _, _) => Class::Private("private (rfc 1918)"),
        (172, 16..=31, _) => Class::Private("private (rfc 1918)"),
        (192, 168, _) => Class::Private("private (rfc 1918)"),
        (100, 64..=127, _) => Class::Private("shared (cgnat)"),
        (169, 254, _) => Class::Private("link-local"),
        (198, 18..=19, _) => Class::Private("benchmarking"),
        (192, 0, 0) => Class::Private("ietf protocol assignment"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Class::Never("documentation"),
        (224..=239, _, _) => Class::Never("multicast"),
        _ if ip == Ipv4Addr::BROADCAST => Class::Never("broadcast"),
        (240..=255, _, _) => Class::Never("reserved"),
        _ => Class::Public,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    let seg = ip.segments();
    if ip.is_unspecified() {
        Class::Never("unspecified")
    } else if ip.is_loopback() {
        Class::Private("loopback")
    } else if seg[0] & 0xff00 == 0xff00 {
        Class::Never("multicast")
    } else if seg[0] & 0xfe00 == 0xfc00 {
        Class::Private("unique local (ula)")
    } else if seg[0] & 0xffc0 == 0xfe80 {
        Class::Private("link-local")
    } else if seg[0] & 0xffc0 == 0xfec0 {
        Class::Private("site-local")
    } else if (seg[0] == 0x2001 && seg[1] == 0x0db8) || seg[0] & 0xfff0 == 0x3ff0 {
        Class::Never("documentation")
    } else if seg[..4] == [0x0100, 0, 0, 0] {
        Class::Never("discard")
    } else {
        Class::Public
    }
}

/// ureq's resolver with the guard applied to every resolved address.
///
/// IP literals are checked without a lookup (and without the helper thread ureq's default
/// resolver spawns when a timeout is set); names go through [`DefaultResolver`]. Refused
/// addresses are dropped; when none is left, resolution fails with
/// [`DeliverError::Blocked`] (inside `ureq::Error::Other`) and no connection is attempted.
#[derive(Debug)]
pub(crate) struct GuardedResolver {
    guard: Arc<SsrfGuard>,
    inner: DefaultResolver,
}

impl GuardedResolver {
    pub(crate) fn new(guard: Arc<SsrfGuard>) -> GuardedResolver {
        GuardedResolver {
            guard,
            inner: DefaultResolver::default(),
        }
    }
}

impl Resolver for GuardedResolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let resolved = match bare.parse::<IpAddr>() {
            Ok(ip) => {
                let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                    Some("https") => 443,
                    _ => 80,
                });
                let mut one = self.empty();
                one.push(SocketAddr::new(ip, port));
                one
            }
            Err(_) => self.inner.resolve(uri, config, timeout)?,
        };
        let mut allowed = self.empty();
        let mut refused = None;
        for addr in &resolved {
            match self.guard.check(addr.ip()) {
                Ok(()) => allowed.push(*addr),
                Err(range) => {
                    refused.get_or_insert((addr.ip(), range));
                }
            }
        }
        match refused {
            Some((addr, range)) if allowed.is_empty() => {
                Err(ureq::Error::Other(Box::new(DeliverError::Blocked {
                    host: bare.to_owned(),
                    addr,
                    range,
                })))
            }
            _ => Ok(allowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(guard: &SsrfGuard, ip: &str) -> Result<(), &'static str> {
        guard.check(ip.parse().unwrap())
    }

    #[test]
    fn default_guard_refuses_non_public_ranges() {
        let guard = SsrfGuard::default();
        for (ip, range) in [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.1.2.3", "private (rfc 1918)"),
            ("172.16.0.1", "private (rfc 1918)"),
            ("172.31.255.255", "private (rfc 1918)"),
            ("192.168.1.1", "private (rfc 1918)"),
            ("100.64.0.1", "shared (cgnat)"),
            ("100.127.255.254", "shared (cgnat)"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"),
            ("0.0.0.0", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.2.7", "documentation"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.7", "documentation"),
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("fc00::1", "unique local (ula)"),
            ("fd12:3456::1", "unique local (ula)"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", "documentation"),
            ("fd00:ec2::254", "cloud metadata"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("::ffff:10.0.0.1", "private (rfc 1918)"),
            ("::127.0.0.1", "loopback"),
            ("64:ff9b::a9fe:a9fe", "cloud metadata"),
            ("2002:7f00:1::", "loopback"),
        ] {
            assert_eq!(check(&guard, ip), Err(range), "{ip}");
        }
    }

    #[test]
    fn public_addresses_pass() {
        let guard = SsrfGuard::default();
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
        ] {
            assert_eq!(check(&guard, ip), Ok(()), "{ip}");
        }
    }

    #[test]
    fn private_allowed_keeps_metadata_and_never_ranges_blocked() {
        let guard = SsrfGuard::new(true, Vec::new());
        assert_eq!(check(&guard, "127.0.0.1"), Ok(()));
        assert_eq!(check(&guard, "::1"), Ok(()));
        assert_eq!(check(&guard, "10.0.0.1"), Ok(()));
        assert_eq!(check(&guard, "169.254.169.254"), Err("cloud metadata"));
        assert_eq!(check(&guard, "fd00:ec2::254"), Err("cloud metadata"));
        assert_eq!(check(&guard, "0.0.0.0"), Err("unspecified"));
        assert_eq!(check(&guard, "224.0.0.1"), Err("multicast"));
    }

    #[test]
    fn metadata_named_separately_is_allowed() {
        let guard = SsrfGuard::new(false, vec!["169.254.169.254".parse().unwrap()]);
        assert_eq!(check(&guard, "169.254.169.254"), Ok(()));
        assert_eq!(check(&guard, "fd00:ec2::254"), Err("cloud metadata"));
        assert_eq!(check(&guard, "169.254.1.1"), Err("link-local"));
    }
}
