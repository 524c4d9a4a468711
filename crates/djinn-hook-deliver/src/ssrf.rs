//! The SSRF guard: which resolved addresses a delivery may connect to, checked at connect time.
//!
//! [`SsrfGuard::check`] classifies one address. [`GuardedResolver`] plugs the guard into ureq's
//! name resolution, so the addresses ureq connects to are exactly the ones that were checked:
//! a public name that resolves to `127.0.0.1` is refused like the literal.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::NextTimeout;

use crate::error::DeliverError;

/// Cloud metadata and platform endpoints: refused even when private networks are allowed,
/// unless named in [`DeliverConfig::allowed_metadata`](crate::DeliverConfig::allowed_metadata).
/// Each serves credentials or instance data to whatever runs on the machine, or is the
/// platform's own agent; none is a webhook receiver. Public ones (Azure's `168.63.129.16`) are
/// refused by default too. The registry test (`tests/it/ssrf_registry.rs`) has a row per
/// provider and endpoint with its documentation.
pub const METADATA_ADDRESSES: &[IpAddr] = &[
    // Instance metadata of AWS, GCP, Azure, Oracle, DigitalOcean, OpenStack, Hetzner, ...
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
    // AWS: IMDS over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)),
    // AWS: ECS task metadata and credentials.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),
    // AWS: EKS Pod Identity Agent (credentials), IPv4 and IPv6.
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)),
    // AWS: Time Sync Service, IPv4 and IPv6.
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 123)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x123)),
    // AWS: the VPC's DNS resolver (Route 53 Resolver), IPv4 and IPv6.
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 253)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x253)),
    // GCP: metadata server over IPv6.
    IpAddr::V6(Ipv6Addr::new(0xfd20, 0xce, 0, 0, 0, 0, 0, 0x254)),
    // GCP: GKE metadata server (Workload Identity), where 169.254.169.254 is redirected.
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 252)),
    // Azure: WireServer (platform agent, DNS, health probes), a public address.
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),
    // Oracle Cloud (Classic, Cloud@Customer): instance metadata.
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),
    // Alibaba Cloud: instance metadata.
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)),
    // Scaleway: instance metadata, IPv4 and IPv6.
    IpAddr::V4(Ipv4Addr::new(169, 254, 42, 42)),
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0x42, 0, 0, 0, 0, 0, 0x42)),
];

/// Host names of cloud metadata and platform endpoints, refused before any lookup whatever the
/// configuration (compared without case and without a trailing dot). Most resolve to a
/// [`METADATA_ADDRESSES`] entry and would be refused there too; Kubernetes' API server is here
/// because its address is not fixed: it is the cluster's `kubernetes` service, a private
/// address that `allow_private_network` would otherwise let through. Any cluster domain counts
/// (`kubernetes.default.svc.<domain>`).
pub const METADATA_HOSTS: &[&str] = &[
    // GCP's metadata server, with its short name (resolved through the `google.internal`
    // search domain).
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    // AWS: IMDS by name.
    "instance-data",
    "instance-data.ec2.internal",
    // Tencent Cloud: instance metadata.
    "metadata.tencentyun.com",
    // Kubernetes: the API server, from a pod (search domains make the short forms resolve).
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
];

/// The refusal of a [`METADATA_HOSTS`] name.
const PLATFORM_NAME: &str = "cloud metadata or platform";

/// Decides which addresses deliveries may connect to.
///
/// The tables follow the IANA IPv4 and IPv6 special-purpose address registries; each address
/// is judged by the most specific range holding it. Three kinds of non-public range:
///
/// - **private** (refused unless `allow_private_network`): loopback (`127.0.0.0/8`, `::1`),
///   RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), shared/CGNAT (`100.64/10`), link-local
///   (`169.254/16`, `fe80::/10`), IPv6 unique local (`fc00::/7`), deprecated site-local
///   (`fec0::/10`), benchmarking (`198.18/15`, `2001:2::/48`), IETF protocol assignments
///   (`192.0.0/24`) and the local network's anycast services (`2001:1::1`-`2001:1::3`);
/// - **never** (always refused): "this network" (`0/8`), unspecified (`::`), multicast (`224/4`,
///   `ff00::/8`), limited broadcast, reserved (`240/4`), documentation (`192.0.2/24`,
///   `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`), the deprecated 6to4 relay
///   anycast (`192.88.99/24`), discard and dummy prefixes (`100::/64`, `100:0:0:1::/64`), the
///   rest of `2001::/23` (Teredo, ORCHID, drone entity tags), SRv6 SIDs (`5f00::/16`) and all
///   IPv6 space outside global unicast `2000::/3`;
/// - **cloud metadata** ([`METADATA_ADDRESSES`]): always refused unless named one by one; and
///   by name before any lookup, [`METADATA_HOSTS`] ([`SsrfGuard::check_host`]).
///
/// IPv6 addresses that embed an IPv4 address are judged by the embedded address:
/// IPv4-mapped `::ffff:0:0/96`, IPv4-translated (SIIT) `::ffff:0:0:0/96`, IPv4-compatible
/// `::/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`; the local-use NAT64 prefix
/// `64:ff9b:1::/48` (RFC 8215) is private too, then judged by its embedded address.
/// Everything else (AMT and AS112 anycast included: public servers) is public.
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

    /// `Ok` when a delivery may connect to host name `host` (before resolving it); the refusal
    /// for a [`METADATA_HOSTS`] name, whatever the configuration. IP literals pass here: their
    /// address is judged by [`SsrfGuard::check`].
    pub fn check_host(&self, host: &str) -> Result<(), &'static str> {
        let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        let in_cluster = name.starts_with("kubernetes.default.svc.");
        if in_cluster || METADATA_HOSTS.contains(&name.as_str()) {
            return Err(PLATFORM_NAME);
        }
        Ok(())
    }

    /// `Ok` when a delivery may connect to `ip`; otherwise the name of the refused range.
    pub fn check(&self, ip: IpAddr) -> Result<(), &'static str> {
        match ip {
            IpAddr::V4(v4) => self.check_v4(v4),
            IpAddr::V6(v6) => {
                if let Some(refused) = self.check_metadata(ip) {
                    return refused;
                }
                let range = most_specific(V6_RANGES, ip);
                match range.class {
                    Class::Embeds { at, private } => {
                        if private && !self.allow_private_network {
                            return Err(range.name);
                        }
                        let o = v6.octets();
                        self.check_v4(Ipv4Addr::new(o[at], o[at + 1], o[at + 2], o[at + 3]))
                    }
                    class => self.decide(class, range.name),
                }
            }
        }
    }

    fn check_v4(&self, ip: Ipv4Addr) -> Result<(), &'static str> {
        if let Some(refused) = self.check_metadata(IpAddr::V4(ip)) {
            return refused;
        }
        let range = most_specific(V4_RANGES, IpAddr::V4(ip));
        self.decide(range.class, range.name)
    }

    /// `Some` verdict for a metadata address, `None` for any other.
    fn check_metadata(&self, ip: IpAddr) -> Option<Result<(), &'static str>> {
        METADATA_ADDRESSES.contains(&ip).then(|| {
            if self.allowed_metadata.contains(&ip) {
                Ok(())
            } else {
                Err("cloud metadata")
            }
        })
    }

    fn decide(&self, class: Class, name: &'static str) -> Result<(), &'static str> {
        match class {
            Class::Public => Ok(()),
            Class::Private if self.allow_private_network => Ok(()),
            // `check` judges embedding ranges by their IPv4 address; none reaches here, and
            // refusing is the safe answer if one did.
            Class::Private | Class::Never | Class::Embeds { .. } => Err(name),
        }
    }
}

/// How the guard treats a range.
#[derive(Clone, Copy, Debug)]
enum Class {
    Public,
    /// Refused unless private networks are allowed.
    Private,
    /// Always refused.
    Never,
    /// Judged by the IPv4 address at octets `at..at + 4`; refused first, unless private
    /// networks are allowed, when `private`.
    Embeds {
        at: usize,
        private: bool,
    },
}

/// A range of the guard's tables.
#[derive(Debug)]
struct Range {
    net: IpNet,
    class: Class,
    /// Named in the refusal: "refused ... loopback address".
    name: &'static str,
}

/// The most specific range of `table` holding `ip`; each table starts with a `/0`.
fn most_specific(table: &'static [Range], ip: IpAddr) -> &'static Range {
    table
        .iter()
        .filter(|range| range.net.contains(&ip))
        .max_by_key(|range| range.net.prefix_len())
        .expect("the table's /0 holds every address")
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8, class: Class, name: &'static str) -> Range {
    Range {
        net: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)),
        class,
        name,
    }
}

const fn v6(segments: [u16; 8], len: u8, class: Class, name: &'static str) -> Range {
    let [a, b, c, d, e, f, g, h] = segments;
    Range {
        net: IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(a, b, c, d, e, f, g, h),
            len,
        )),
        class,
        name,
    }
}

use Class::{Never, Private, Public};

const RFC_1918: &str = "private (rfc 1918)";
const DOCUMENTATION: &str = "documentation";
/// Judged by the IPv4 address in the last 32 bits.
const EMBEDS_V4: Class = Class::Embeds {
    at: 12,
    private: false,
};
/// Private, then judged by the IPv4 address in the last 32 bits.
const EMBEDS_V4_PRIVATE: Class = Class::Embeds {
    at: 12,
    private: true,
};
/// 6to4: `2002:AABB:CCDD::/48` carries `AA.BB.CC.DD`.
const EMBEDS_6TO4: Class = Class::Embeds {
    at: 2,
    private: false,
};

/// IPv4: the IANA IPv4 Special-Purpose Address Registry, plus multicast (RFC 5771). Its entries
/// not listed here are public: AS112 (`192.31.196/24`, `192.175.48/24`) and AMT
/// (`192.52.193/24`) are public anycast servers; the sub-entries of `192.0.0.0/24` fall under it.
const V4_RANGES: &[Range] = &[
    v4(0, 0, 0, 0, 0, Public, "public"),
    v4(0, 0, 0, 0, 8, Never, "unspecified"),
    v4(10, 0, 0, 0, 8, Private, RFC_1918),
    v4(100, 64, 0, 0, 10, Private, "shared (cgnat)"),
    v4(127, 0, 0, 0, 8, Private, "loopback"),
    v4(169, 254, 0, 0, 16, Private, "link-local"),
    v4(172, 16, 0, 0, 12, Private, RFC_1918),
    v4(192, 0, 0, 0, 24, Private, "ietf protocol assignment"),
    v4(192, 0, 2, 0, 24, Never, DOCUMENTATION),
    v4(192, 88, 99, 0, 24, Never, "6to4 relay anycast (deprecated)"),
    v4(192, 168, 0, 0, 16, Private, RFC_1918),
    v4(198, 18, 0, 0, 15, Private, "benchmarking"),
    v4(198, 51, 100, 0, 24, Never, DOCUMENTATION),
    v4(203, 0, 113, 0, 24, Never, DOCUMENTATION),
    v4(224, 0, 0, 0, 4, Never, "multicast"),
    v4(240, 0, 0, 0, 4, Never, "reserved"),
    v4(255, 255, 255, 255, 32, Never, "broadcast"),
];

/// IPv6: the IANA IPv6 Special-Purpose Address Registry, plus multicast, site-local, the
/// deprecated IPv4-compatible and SIIT forms, and the space outside global unicast `2000::/3`
/// (reserved in the IPv6 Address Space registry). Registry entries not listed here are public:
/// AMT (`2001:3::/32`) and AS112 (`2001:4:112::/48`, `2620:4f:8000::/48`).
#[rustfmt::skip]
const V6_RANGES: &[Range] = &[
    v6([0; 8], 0, Never, "reserved"),
    v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3, Public, "public"),
    v6([0; 8], 128, Never, "unspecified"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, Private, "loopback"),
    v6([0; 8], 96, EMBEDS_V4, "ipv4-compatible"),
    v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96, EMBEDS_V4, "ipv4-mapped"),
    v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96, EMBEDS_V4, "ipv4-translated"),
    v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96, EMBEDS_V4, "nat64"),
    // RFC 8215: an operator's own translator, reaching whatever IPv4 network it sits in.
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, EMBEDS_V4_PRIVATE, "local-use nat64"),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, Never, "discard"),
    v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64, Never, "dummy prefix"),
    // Teredo, ORCHID, drone entity tags: relays or identifiers, not receivers.
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23, Never, "ietf protocol assignment"),
    // The local network's PCP server, TURN relay and DNS-SD registrar.
    v6([0x2001, 1, 0, 0, 0, 0, 0, 1], 128, Private, "local anycast service"),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 2], 128, Private, "local anycast service"),
    v6([0x2001, 1, 0, 0, 0, 0, 0, 3], 128, Private, "local anycast service"),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, Private, "benchmarking"),
    v6([0x2001, 3, 0, 0, 0, 0, 0, 0], 32, Public, "public"),
    v6([0x2001, 4, 0x112, 0, 0, 0, 0, 0], 48, Public, "public"),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, Never, DOCUMENTATION),
    v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16, EMBEDS_6TO4, "6to4"),
    v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20, Never, DOCUMENTATION),
    v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16, Never, "segment routing sid"),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, Private, "unique local (ula)"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, Private, "link-local"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, Private, "site-local"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, Never, "multicast"),
];

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
        if let Err(range) = self.guard.check_host(bare) {
            return Err(ureq::Error::Other(Box::new(DeliverError::BlockedName {
                host: bare.to_owned(),
                range,
            })));
        }
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
    fn platform_names_are_refused_whatever_their_case_or_trailing_dot() {
        for guard in [SsrfGuard::default(), SsrfGuard::new(true, Vec::new())] {
            for host in [
                "metadata.google.internal",
                "METADATA.Google.Internal.",
                "metadata",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "kubernetes.default.svc.corp.example.",
            ] {
                assert_eq!(guard.check_host(host), Err(PLATFORM_NAME), "{host}");
            }
            for host in [
                "example.com",
                "metadata.example.com",
                "kubernetes.example.com",
                "my-kubernetes.default.svc",
                "127.0.0.1",
            ] {
                assert_eq!(guard.check_host(host), Ok(()), "{host}");
            }
        }
    }

    #[test]
    fn metadata_named_separately_is_allowed() {
        let guard = SsrfGuard::new(false, vec!["169.254.169.254".parse().unwrap()]);
        assert_eq!(check(&guard, "169.254.169.254"), Ok(()));
        assert_eq!(check(&guard, "fd00:ec2::254"), Err("cloud metadata"));
        assert_eq!(check(&guard, "169.254.1.1"), Err("link-local"));
    }
}
