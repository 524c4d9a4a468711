//! The SSRF guard against the IANA special-purpose address registries, entry by entry.
//!
//! The tables below are the IANA "IPv4 Special-Purpose Address Registry" and "IPv6
//! Special-Purpose Address Registry" (RFC 6890's registries), written out here with each entry's
//! RFC, plus the ranges outside them the guard also judges (multicast, SIIT, site-local, the
//! space outside IPv6 global unicast). Every entry is blocked, or allowed with a reason. Only the
//! guard's decision is tested: no connection is made to any of these addresses.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use djinn_hook_deliver::SsrfGuard;
use ipnet::IpNet;

/// What the guard must decide for every address of an entry.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Refused whatever the configuration: nothing there receives webhooks.
    Never,
    /// Refused unless private networks are allowed (a local install's own receivers).
    Private,
    /// Allowed; the text says why that is safe.
    Allowed(&'static str),
    /// Judged by the IPv4 address it embeds (checked with a public, a private and a metadata one).
    Embedded,
    /// Refused unless private networks are allowed, then judged by the embedded IPv4 address.
    PrivateEmbedded,
}

use Expect::*;

struct Entry {
    prefix: &'static str,
    name: &'static str,
    source: &'static str,
    expect: Expect,
}

const fn e(
    prefix: &'static str,
    name: &'static str,
    source: &'static str,
    expect: Expect,
) -> Entry {
    Entry {
        prefix,
        name,
        source,
        expect,
    }
}

/// Reaches servers anyone on the internet reaches: no more than any public address.
const GLOBAL_ANYCAST: &str =
    "globally reachable per the registry: public anycast servers, no local target";

/// IANA IPv4 Special-Purpose Address Registry.
#[rustfmt::skip]
const IPV4_REGISTRY: &[Entry] = &[
    e("0.0.0.0/8", "\"this network\"", "RFC 791 §3.2", Never),
    e("0.0.0.0/32", "\"this host on this network\"", "RFC 1122 §3.2.1.3", Never),
    e("10.0.0.0/8", "private-use", "RFC 1918", Private),
    e("100.64.0.0/10", "shared address space", "RFC 6598", Private),
    e("127.0.0.0/8", "loopback", "RFC 1122 §3.2.1.3", Private),
    e("169.254.0.0/16", "link local", "RFC 3927", Private),
    e("172.16.0.0/12", "private-use", "RFC 1918", Private),
    e("192.0.0.0/24", "IETF protocol assignments", "RFC 6890 §2.1", Private),
    e("192.0.0.0/29", "IPv4 service continuity prefix", "RFC 7335", Private),
    e("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", Private),
    // Globally reachable in the registry, but the anycast reaches the local network's own
    // PCP server or TURN relay: a gateway, so it counts as private.
    e("192.0.0.9/32", "port control protocol anycast", "RFC 7723", Private),
    e("192.0.0.10/32", "TURN anycast", "RFC 8155", Private),
    e("192.0.0.170/32", "NAT64/DNS64 discovery", "RFC 8880, RFC 7050 §2.2", Private),
    e("192.0.0.171/32", "NAT64/DNS64 discovery", "RFC 8880, RFC 7050 §2.2", Private),
    e("192.0.2.0/24", "documentation (TEST-NET-1)", "RFC 5737", Never),
    e("192.31.196.0/24", "AS112-v4", "RFC 7535", Allowed(GLOBAL_ANYCAST)),
    e("192.52.193.0/24", "AMT", "RFC 7450", Allowed(GLOBAL_ANYCAST)),
    e("192.88.99.0/24", "deprecated (6to4 relay anycast)", "RFC 7526", Never),
    e("192.168.0.0/16", "private-use", "RFC 1918", Private),
    e("192.175.48.0/24", "direct delegation AS112 service", "RFC 7534", Allowed(GLOBAL_ANYCAST)),
    e("198.18.0.0/15", "benchmarking", "RFC 2544", Private),
    e("198.51.100.0/24", "documentation (TEST-NET-2)", "RFC 5737", Never),
    e("203.0.113.0/24", "documentation (TEST-NET-3)", "RFC 5737", Never),
    e("240.0.0.0/4", "reserved", "RFC 1112 §4", Never),
    e("255.255.255.255/32", "limited broadcast", "RFC 8190, RFC 919 §7", Never),
];

/// IANA IPv6 Special-Purpose Address Registry.
#[rustfmt::skip]
const IPV6_REGISTRY: &[Entry] = &[
    e("::1/128", "loopback address", "RFC 4291", Private),
    e("::/128", "unspecified address", "RFC 4291", Never),
    e("::ffff:0:0/96", "IPv4-mapped address", "RFC 4291", Embedded),
    e("64:ff9b::/96", "IPv4-IPv6 translation", "RFC 6052", Embedded),
    // The operator's own translator: it reaches whatever IPv4 network it sits in.
    e("64:ff9b:1::/48", "IPv4-IPv6 translation (local-use)", "RFC 8215", PrivateEmbedded),
    e("100::/64", "discard-only address block", "RFC 6666", Never),
    e("100:0:0:1::/64", "dummy IPv6 prefix", "RFC 9780", Never),
    e("2001::/23", "IETF protocol assignments", "RFC 2928", Never),
    // Relays to an IPv4 address hidden (obfuscated) in the address, through a relay we do
    // not choose.
    e("2001::/32", "TEREDO", "RFC 4380, RFC 8190", Never),
    // Anycast services of the local network (its PCP server, TURN relay, SRP registrar).
    e("2001:1::1/128", "port control protocol anycast", "RFC 7723", Private),
    e("2001:1::2/128", "TURN anycast", "RFC 8155", Private),
    e("2001:1::3/128", "DNS-SD service registration protocol anycast", "RFC 9665", Private),
    e("2001:2::/48", "benchmarking", "RFC 5180, RFC Errata 1752", Private),
    e("2001:3::/32", "AMT", "RFC 7450", Allowed(GLOBAL_ANYCAST)),
    e("2001:4:112::/48", "AS112-v6", "RFC 7535", Allowed(GLOBAL_ANYCAST)),
    e("2001:10::/28", "deprecated (previously ORCHID)", "RFC 4843", Never),
    e("2001:20::/28", "ORCHIDv2", "RFC 7343", Never),
    e("2001:30::/28", "drone remote ID protocol entity tags (DETs)", "RFC 9374", Never),
    e("2001:db8::/32", "documentation", "RFC 3849", Never),
    e("2002::/16", "6to4", "RFC 3056", Embedded),
    e("2620:4f:8000::/48", "direct delegation AS112 service", "RFC 7534", Allowed(GLOBAL_ANYCAST)),
    e("3fff::/20", "documentation", "RFC 9637", Never),
    e("5f00::/16", "segment routing (SRv6) SIDs", "RFC 9602", Never),
    e("fc00::/7", "unique-local", "RFC 4193, RFC 8190", Private),
    e("fe80::/10", "link-local unicast", "RFC 4291", Private),
];

/// Ranges outside the special-purpose registries that the guard judges too.
#[rustfmt::skip]
const OTHER_RANGES: &[Entry] = &[
    e("224.0.0.0/4", "IPv4 multicast", "RFC 5771", Never),
    e("ff00::/8", "IPv6 multicast", "RFC 4291 §2.7", Never),
    e("::/96", "IPv4-compatible (deprecated)", "RFC 4291 §2.5.5.1", Embedded),
    e("::ffff:0:0:0/96", "IPv4-translated (SIIT)", "RFC 2765 §2.1", Embedded),
    e("fec0::/10", "site-local (deprecated)", "RFC 3879", Private),
    // IANA IPv6 Address Space registry: everything outside 2000::/3 not listed above is
    // "reserved by IETF", so nothing there is a receiver.
    e("::/0", "reserved by IETF (outside global unicast)", "RFC 4291 §2.4", Never),
    e("2000::/3", "global unicast", "RFC 4291 §2.4", Allowed("the public internet")),
];

fn all_entries() -> impl Iterator<Item = (&'static Entry, IpNet)> {
    IPV4_REGISTRY
        .iter()
        .chain(IPV6_REGISTRY)
        .chain(OTHER_RANGES)
        .map(|entry| {
            let net = entry
                .prefix
                .parse()
                .unwrap_or_else(|_| panic!("{}", entry.prefix));
            (entry, net)
        })
}

/// The first, middle and last address of `net`.
fn samples(net: IpNet) -> [IpAddr; 3] {
    match net {
        IpNet::V4(n) => {
            let (lo, hi) = (u32::from(n.network()), u32::from(n.broadcast()));
            [lo, lo + (hi - lo) / 2, hi].map(|a| IpAddr::V4(Ipv4Addr::from(a)))
        }
        IpNet::V6(n) => {
            let (lo, hi) = (u128::from(n.network()), u128::from(n.broadcast()));
            [lo, lo + (hi - lo) / 2, hi].map(|a| IpAddr::V6(Ipv6Addr::from(a)))
        }
    }
}

/// `v4` placed where `net` carries an IPv4 address: bits 16-47 for 6to4, else the last 32.
fn embed(net: IpNet, v4: Ipv4Addr) -> IpAddr {
    let IpNet::V6(n) = net else {
        unreachable!("only IPv6 ranges embed")
    };
    let base = u128::from(n.network());
    let v4 = u128::from(u32::from(v4));
    let shift = if n.prefix_len() == 16 { 80 } else { 0 };
    IpAddr::V6(Ipv6Addr::from(base | v4 << shift))
}

/// The most specific entry holding `ip`, so each address is judged under the entry that
/// names it (`192.0.0.9` under PCP anycast, not under `192.0.0.0/24`).
fn most_specific(ip: IpAddr) -> IpNet {
    all_entries()
        .map(|(_, net)| net)
        .filter(|net| net.contains(&ip))
        .max_by_key(IpNet::prefix_len)
        .expect("every sample lies in the entry it was taken from")
}

#[test]
fn every_registry_entry_is_blocked_or_allowed_with_a_reason() {
    let default = SsrfGuard::default();
    let private_ok = SsrfGuard::new(true, Vec::new());
    let mut failures = Vec::new();
    for (entry, net) in all_entries() {
        let what = format!("{} ({}, {})", entry.prefix, entry.name, entry.source);
        let mut expect = |ip: IpAddr, by_default: bool, with_private: bool| {
            let got = (default.check(ip).is_ok(), private_ok.check(ip).is_ok());
            if got != (by_default, with_private) {
                failures.push(format!(
                    "{what}: {ip}: allowed (by default, with private networks) = {got:?}, \
                     expected ({by_default}, {with_private}) for {:?}",
                    entry.expect
                ));
            }
        };
        match entry.expect {
            Never | Private | Allowed(_) => {
                let mut own: Vec<IpAddr> = samples(net)
                    .into_iter()
                    .filter(|ip| most_specific(*ip) == net)
                    .collect();
                own.dedup();
                assert!(!own.is_empty(), "{what}: no address of its own to test");
                let (by_default, with_private) = match entry.expect {
                    Never => (false, false),
                    Private => (false, true),
                    Allowed(reason) => {
                        assert!(!reason.is_empty(), "{what}: allowed without a reason");
                        (true, true)
                    }
                    Embedded | PrivateEmbedded => unreachable!(),
                };
                for ip in own {
                    expect(ip, by_default, with_private);
                }
            }
            Embedded | PrivateEmbedded => {
                let floor = matches!(entry.expect, Embedded);
                expect(embed(net, Ipv4Addr::new(8, 8, 8, 8)), floor, true);
                expect(embed(net, Ipv4Addr::new(10, 0, 0, 1)), false, true);
                expect(embed(net, Ipv4Addr::new(127, 0, 0, 1)), false, true);
                expect(embed(net, Ipv4Addr::new(169, 254, 169, 254)), false, false);
                expect(embed(net, Ipv4Addr::new(192, 88, 99, 1)), false, false);
                expect(embed(net, Ipv4Addr::new(224, 0, 0, 1)), false, false);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_issue_examples_are_refused() {
    let default = SsrfGuard::default();
    for ip in [
        "64:ff9b:1::a00:1",
        "::ffff:0:a00:1",
        "2001::1",
        "2001:2::1",
        "2001:20::1",
        "192.88.99.1",
    ] {
        let ip: IpAddr = ip.parse().unwrap();
        assert!(default.check(ip).is_err(), "{ip} is allowed");
    }
}

/// A known cloud metadata or platform endpoint: refused with and without
/// `allow_private_network` (and through every IPv6 form embedding an IPv4 one).
struct Platform {
    provider: &'static str,
    service: &'static str,
    /// An address, or a host name refused before any lookup.
    endpoint: &'static str,
    source: &'static str,
}

const fn p(
    provider: &'static str,
    service: &'static str,
    endpoint: &'static str,
    source: &'static str,
) -> Platform {
    Platform {
        provider,
        service,
        endpoint,
        source,
    }
}

/// Cloud metadata and platform endpoints, each refused whatever the configuration.
#[rustfmt::skip]
const PLATFORMS: &[Platform] = &[
    p("AWS", "EC2 instance metadata (IMDS)", "169.254.169.254", "EC2 User Guide, \"Retrieve instance metadata\""),
    p("AWS", "EC2 instance metadata (IMDS) over IPv6", "fd00:ec2::254", "EC2 User Guide, \"Retrieve instance metadata\""),
    p("AWS", "IMDS by name", "instance-data", "EC2 User Guide, instance metadata"),
    p("AWS", "IMDS by name", "instance-data.ec2.internal", "EC2 User Guide, instance metadata"),
    p("AWS", "ECS task metadata and credentials", "169.254.170.2", "ECS Developer Guide, task IAM roles"),
    p("AWS", "EKS Pod Identity Agent", "169.254.170.23", "EKS User Guide, \"Set up the Amazon EKS Pod Identity Agent\""),
    p("AWS", "EKS Pod Identity Agent over IPv6", "fd00:ec2::23", "EKS User Guide, \"Set up the Amazon EKS Pod Identity Agent\""),
    p("AWS", "Time Sync Service", "169.254.169.123", "EC2 User Guide, \"Set the time\""),
    p("AWS", "Time Sync Service over IPv6", "fd00:ec2::123", "EC2 User Guide, \"Set the time\""),
    p("AWS", "VPC DNS resolver (Route 53 Resolver)", "169.254.169.253", "VPC User Guide, \"Amazon DNS server\""),
    p("AWS", "VPC DNS resolver over IPv6", "fd00:ec2::253", "VPC User Guide, \"Amazon DNS server\""),
    p("GCP", "Compute Engine metadata server", "169.254.169.254", "Compute Engine, \"About VM metadata\""),
    p("GCP", "Compute Engine metadata server over IPv6", "fd20:ce::254", "Compute Engine, \"About VM metadata\""),
    p("GCP", "metadata server by name", "metadata.google.internal", "Compute Engine, \"About VM metadata\""),
    p("GCP", "metadata server by name", "metadata.goog", "Compute Engine, \"About VM metadata\""),
    p("GCP", "metadata server by its short name", "metadata", "Compute Engine, \"About VM metadata\""),
    p("GCP", "GKE metadata server (Workload Identity)", "169.254.169.252", "GKE, \"About the GKE metadata server\""),
    p("Azure", "Instance Metadata Service (IMDS)", "169.254.169.254", "Azure Virtual Machines, \"Azure Instance Metadata Service\""),
    p("Azure", "WireServer, platform DNS and health probes (a public address)", "168.63.129.16", "Azure Virtual Network, \"What is IP address 168.63.129.16?\""),
    p("Oracle", "OCI instance metadata (IMDS)", "169.254.169.254", "OCI Compute, \"Getting Instance Metadata\""),
    p("Oracle", "Cloud Classic and Cloud@Customer instance metadata", "192.0.0.192", "Oracle Cloud at Customer, \"Retrieve Predefined Instance Metadata\""),
    p("Alibaba Cloud", "ECS instance metadata", "100.100.100.200", "ECS, \"Instance metadata\""),
    p("DigitalOcean", "Droplet metadata", "169.254.169.254", "DigitalOcean, \"Metadata API\""),
    p("Tencent Cloud", "CVM instance metadata by name", "metadata.tencentyun.com", "CVM, \"Viewing Instance Metadata\""),
    p("Scaleway", "instance metadata", "169.254.42.42", "Scaleway Instances, metadata API"),
    p("Scaleway", "instance metadata over IPv6", "fd00:42::42", "Scaleway Instances, metadata API"),
    // The API server's address is the cluster's choice (a private ClusterIP), so only its names
    // can be refused; any cluster domain counts.
    p("Kubernetes", "API server from a pod", "kubernetes", "Kubernetes, \"Accessing the Kubernetes API from a Pod\""),
    p("Kubernetes", "API server from a pod", "kubernetes.default", "Kubernetes, \"Accessing the Kubernetes API from a Pod\""),
    p("Kubernetes", "API server from a pod", "kubernetes.default.svc", "Kubernetes, \"Accessing the Kubernetes API from a Pod\""),
    p("Kubernetes", "API server from a pod", "kubernetes.default.svc.cluster.local", "Kubernetes, \"DNS for Services and Pods\""),
];

#[test]
fn every_cloud_metadata_and_platform_endpoint_is_refused_even_with_private_networks() {
    let guards = [SsrfGuard::default(), SsrfGuard::new(true, Vec::new())];
    let mut failures = Vec::new();
    for row in PLATFORMS {
        let what = format!(
            "{} {} ({}, {})",
            row.provider, row.service, row.endpoint, row.source
        );
        for guard in &guards {
            let mut refused = |ip: IpAddr| {
                if guard.check(ip).is_ok() {
                    failures.push(format!("{what}: {ip} allowed by {guard:?}"));
                }
            };
            match row.endpoint.parse::<IpAddr>() {
                Ok(ip @ IpAddr::V4(v4)) => {
                    refused(ip);
                    refused(IpAddr::V6(v4.to_ipv6_mapped()));
                    refused(embed("64:ff9b::/96".parse().unwrap(), v4));
                    refused(embed("2002::/16".parse().unwrap(), v4));
                }
                Ok(ip) => refused(ip),
                Err(_) => {
                    for name in [
                        row.endpoint.to_owned(),
                        format!("{}.", row.endpoint.to_uppercase()),
                    ] {
                        if guard.check_host(&name).is_ok() {
                            failures.push(format!("{what}: name {name:?} allowed by {guard:?}"));
                        }
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The guard's tables and this one name the same endpoints: nothing refused without a row
/// saying why, no row the guard does not know.
#[test]
fn the_platform_table_matches_the_guards() {
    use djinn_hook_deliver::{METADATA_ADDRESSES, METADATA_HOSTS};
    let rows: Vec<&str> = PLATFORMS.iter().map(|row| row.endpoint).collect();
    for ip in METADATA_ADDRESSES {
        assert!(
            PLATFORMS
                .iter()
                .any(|row| row.endpoint.parse::<IpAddr>() == Ok(*ip)),
            "{ip} has no row"
        );
    }
    for name in METADATA_HOSTS {
        assert!(rows.contains(name), "{name} has no row");
    }
    for row in PLATFORMS {
        let known = match row.endpoint.parse::<IpAddr>() {
            Ok(ip) => METADATA_ADDRESSES.contains(&ip),
            Err(_) => {
                METADATA_HOSTS.contains(&row.endpoint)
                    || row.endpoint.starts_with("kubernetes.default.svc.")
            }
        };
        assert!(known, "{} is not in the guard's tables", row.endpoint);
    }
}
