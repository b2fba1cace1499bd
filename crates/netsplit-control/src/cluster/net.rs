//! Network plumbing for local clusters: links, namespaces, addresses, routes, the choice of a
//! private /24 that collides with nothing on the host, and the FORWARD accept rule for hosts
//! whose FORWARD policy is DROP. Everything goes through `ip` and `iptables` argument vectors.

use super::host::{run, succeeds, which};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub(crate) use crate::route::link_exists;

/// True when the named network namespace exists (`ip netns` keeps them in /run/netns).
pub(crate) fn netns_exists(ns: &str) -> bool {
    Path::new("/run/netns").join(ns).exists()
}

/// The inode identifying a named network namespace.
pub(crate) fn netns_inode(ns: &str) -> Option<u64> {
    std::fs::metadata(Path::new("/run/netns").join(ns))
        .ok()
        .map(|m| m.ino())
}

/// The inode of a process's network namespace (None if it is gone or not ours to see).
pub(crate) fn pid_netns_inode(pid: u32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/net"))
        .ok()
        .map(|m| m.ino())
}

/// Names of all network namespaces known to `ip netns`.
pub(crate) fn list_netns() -> Vec<String> {
    std::fs::read_dir("/run/netns")
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// IPv4 prefixes in use on the host: routes of every table and interface addresses.
fn host_prefixes() -> Vec<(Ipv4Addr, u8)> {
    let mut out = Vec::new();
    let route_types = [
        "local",
        "broadcast",
        "unicast",
        "unreachable",
        "blackhole",
        "prohibit",
        "throw",
        "multicast",
        "anycast",
        "nat",
    ];
    if let Ok(text) = run("ip", &["-4", "-o", "route", "show", "table", "all"]) {
        for line in text.lines() {
            let mut toks = line.split_whitespace();
            let mut first = toks.next().unwrap_or("");
            if route_types.contains(&first) {
                first = toks.next().unwrap_or("");
            }
            if let Some(p) = parse_prefix(first) {
                out.push(p);
            }
        }
    }
    if let Ok(text) = run("ip", &["-4", "-o", "addr", "show"]) {
        for line in text.lines() {
            let toks: Vec<&str> = line.split_whitespace().collect();
            if let Some(i) = toks.iter().position(|t| *t == "inet") {
                if let Some(p) = toks.get(i + 1).and_then(|t| parse_prefix(t)) {
                    out.push(p);
                }
            }
        }
    }
    out
}

/// Parses `a.b.c.d` or `a.b.c.d/len` (not `default`).
pub(crate) fn parse_prefix(s: &str) -> Option<(Ipv4Addr, u8)> {
    let (a, l) = match s.split_once('/') {
        Some((a, l)) => (a, l.parse().ok()?),
        None => (s, 32),
    };
    if l > 32 {
        return None;
    }
    Some((a.parse().ok()?, l))
}

/// True when two IPv4 prefixes share any address.
pub(crate) fn overlaps(a: (Ipv4Addr, u8), b: (Ipv4Addr, u8)) -> bool {
    let len = a.1.min(b.1);
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    (u32::from(a.0) & mask) == (u32::from(b.0) & mask)
}

/// The base of cluster subnets: `10.213.<k>.0/24`.
pub const SUBNET_BASE: [u8; 2] = [10, 213];

/// Picks the third octet `k` for a new cluster: derived from the name (so a cluster tends to
/// get the same subnet each time), skipping any /24 that overlaps a host route or address or
/// is taken by another cluster.
pub(crate) fn choose_octet(name: &str, taken: &BTreeSet<u8>) -> anyhow::Result<u8> {
    let used = host_prefixes();
    let start = fnv1a(name.as_bytes()) % 254;
    for i in 0..254u32 {
        let k = ((start + i) % 254 + 1) as u8;
        if taken.contains(&k) {
            continue;
        }
        let net = (Ipv4Addr::new(SUBNET_BASE[0], SUBNET_BASE[1], k, 0), 24);
        if used.iter().all(|p| !overlaps(*p, net)) {
            return Ok(k);
        }
    }
    Err(anyhow::anyhow!(
        "no free /24 left in {}.{}.0.0/16 for a local cluster",
        SUBNET_BASE[0],
        SUBNET_BASE[1]
    ))
}

fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The third octet of a cluster bridge's `10.213.K.1/24` address, if it has one.
pub(crate) fn bridge_octet(bridge: &str) -> Option<u8> {
    if !link_exists(bridge) {
        return None;
    }
    let text = run("ip", &["-4", "-o", "addr", "show", "dev", bridge]).ok()?;
    let prefix = format!("{}.{}.", SUBNET_BASE[0], SUBNET_BASE[1]);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix(&prefix)?.strip_suffix(".1/24")?.parse().ok())
}

/// True when `dev` carries the IPv4 address `cidr` (e.g. `10.213.7.1/24`); `ns` selects a
/// namespace.
pub(crate) fn has_addr(ns: Option<&str>, dev: &str, cidr: &str) -> bool {
    let mut args: Vec<&str> = Vec::new();
    if let Some(n) = ns {
        args.extend(["-n", n]);
    }
    args.extend(["-4", "-o", "addr", "show", "dev", dev]);
    run("ip", &args)
        .map(|t| t.split_whitespace().any(|w| w == cidr))
        .unwrap_or(false)
}

/// The host's FORWARD chain policy (`ACCEPT`, `DROP`), if iptables can say.
pub(crate) fn forward_policy() -> Option<String> {
    which("iptables")?;
    let text = run("iptables", &["-w", "-S", "FORWARD"]).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("-P FORWARD "))
        .map(|p| p.trim().to_string())
}

fn forward_rule(bridge: &str, cluster: &str) -> Vec<String> {
    [
        "FORWARD",
        "-i",
        bridge,
        "-o",
        bridge,
        "-m",
        "comment",
        "--comment",
        &format!("netsplit-cluster-{cluster}"),
        "-j",
        "ACCEPT",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn iptables(op: &str, rule: &[String]) -> Vec<String> {
    let mut v = vec!["-w".to_string(), op.to_string()];
    v.extend(rule.iter().cloned());
    v
}

/// True when the cluster's FORWARD accept rule is present.
pub(crate) fn forward_rule_present(bridge: &str, cluster: &str) -> bool {
    if which("iptables").is_none() {
        return false;
    }
    let a = iptables("-C", &forward_rule(bridge, cluster));
    succeeds(
        "iptables",
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    )
}

/// Inserts the cluster's FORWARD accept rule (idempotent).
pub(crate) fn add_forward_rule(bridge: &str, cluster: &str) -> anyhow::Result<bool> {
    if forward_rule_present(bridge, cluster) {
        return Ok(false);
    }
    let a = iptables("-I", &forward_rule(bridge, cluster));
    run(
        "iptables",
        &a.iter().map(String::as_str).collect::<Vec<_>>(),
    )?;
    Ok(true)
}

/// Deletes every copy of the cluster's FORWARD accept rule; returns how many.
pub(crate) fn remove_forward_rule(bridge: &str, cluster: &str) -> usize {
    let mut n = 0;
    while n < 100 && forward_rule_present(bridge, cluster) {
        let a = iptables("-D", &forward_rule(bridge, cluster));
        if run(
            "iptables",
            &a.iter().map(String::as_str).collect::<Vec<_>>(),
        )
        .is_err()
        {
            break;
        }
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_overlap_when_one_contains_the_other() {
        let p = |s: &str| parse_prefix(s).unwrap();
        assert!(overlaps(p("10.213.5.0/24"), p("10.213.5.17")));
        assert!(overlaps(p("10.0.0.0/8"), p("10.213.5.0/24")));
        assert!(!overlaps(p("10.213.6.0/24"), p("10.213.5.0/24")));
        assert!(overlaps(p("0.0.0.0/0"), p("10.213.5.0/24")));
        assert!(parse_prefix("default").is_none());
        assert!(parse_prefix("10.0.0.0/33").is_none());
    }

    #[test]
    fn octet_choice_is_stable_and_skips_taken_ones() {
        let none = BTreeSet::new();
        let a = choose_octet("default", &none).unwrap();
        assert_eq!(a, choose_octet("default", &none).unwrap());
        let taken: BTreeSet<u8> = [a].into_iter().collect();
        let b = choose_octet("default", &taken).unwrap();
        assert_ne!(a, b);
        assert!((1..=254).contains(&b));
    }
}

#[cfg(test)]
mod root_tests {
    use super::*;

    #[test]
    fn forward_rule_is_added_once_and_removed_completely() {
        if !super::super::is_root() || which("iptables").is_none() {
            eprintln!("SKIP cluster::net::forward_rule_is_added_once: needs root and iptables");
            return;
        }
        // A bridge name that cannot exist (16 characters), so the rule matches no traffic.
        let (br, name) = ("nsbr-ut-no-such", "ut-fwd");
        remove_forward_rule(br, name);
        assert!(!forward_rule_present(br, name));
        assert!(add_forward_rule(br, name).unwrap());
        assert!(!add_forward_rule(br, name).unwrap(), "added twice");
        assert!(forward_rule_present(br, name));
        assert_eq!(remove_forward_rule(br, name), 1);
        assert!(!forward_rule_present(br, name));
        assert_eq!(remove_forward_rule(br, name), 0);
    }
}
