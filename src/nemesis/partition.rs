//! Network partitions through iptables: one dedicated chain per node, flushed to heal.
//!
//! Every node gets a chain named [`CHAIN`] that INPUT jumps to; a grudge becomes `DROP` rules
//! in it (`-s <peer> -j DROP` on the node that holds the grudge). Healing flushes only that
//! chain, so rules a user or Docker put elsewhere are never touched. The control node's address
//! is never dropped: [`rules_for`] refuses a grudge that would cut it off. On local namespace
//! nodes each namespace has its own tables, so the rules are per node exactly as on machines.
//!
//! Commands are [`Cmd`] argument vectors run through a [`Remote`]; nothing here builds shell
//! text.

use super::grudge::Grudge;
use crate::control::{Cmd, Remote, RemoteError};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// The chain netsplit owns on every node.
pub const CHAIN: &str = "NETSPLIT";

const TIMEOUT: Duration = Duration::from_secs(20);

/// The iptables binary for an address family.
pub fn iptables(v6: bool) -> &'static str {
    if v6 {
        "ip6tables"
    } else {
        "iptables"
    }
}

fn ipt(v6: bool) -> Cmd {
    // -w: wait for the xtables lock instead of failing when another iptables runs.
    Cmd::new(iptables(v6)).arg("-w").sudo().timeout(TIMEOUT)
}

/// `iptables -w -N NETSPLIT` (fails harmlessly when the chain exists).
pub fn create_chain_cmd(v6: bool) -> Cmd {
    ipt(v6).args(["-N", CHAIN])
}

/// `iptables -w -C INPUT -j NETSPLIT`: exit 0 when the jump is in place.
pub fn check_jump_cmd(v6: bool) -> Cmd {
    ipt(v6).args(["-C", "INPUT", "-j", CHAIN])
}

/// `iptables -w -I INPUT 1 -j NETSPLIT`: the jump goes first so no ACCEPT rule bypasses it.
pub fn insert_jump_cmd(v6: bool) -> Cmd {
    ipt(v6).args(["-I", "INPUT", "1", "-j", CHAIN])
}

/// `iptables -w -D INPUT -j NETSPLIT` (teardown).
pub fn delete_jump_cmd(v6: bool) -> Cmd {
    ipt(v6).args(["-D", "INPUT", "-j", CHAIN])
}

/// `iptables -w -X NETSPLIT` (teardown, after flush and jump removal).
pub fn delete_chain_cmd(v6: bool) -> Cmd {
    ipt(v6).args(["-X", CHAIN])
}

/// `iptables -w -F NETSPLIT`: the heal.
pub fn flush_cmd(v6: bool) -> Cmd {
    ipt(v6).args(["-F", CHAIN])
}

/// `iptables -w -S NETSPLIT`: the chain's rules, one `-A NETSPLIT …` line each.
pub fn list_cmd(v6: bool) -> Cmd {
    ipt(v6).args(["-S", CHAIN])
}

/// `iptables -w -A NETSPLIT -s a,b -j DROP` (iptables expands the list into one rule each).
pub fn drop_cmd(v6: bool, sources: &[IpAddr]) -> Cmd {
    let list: Vec<String> = sources.iter().map(|ip| ip.to_string()).collect();
    ipt(v6).args(["-A", CHAIN, "-s", &list.join(","), "-j", "DROP"])
}

/// The commands that install `node`'s part of `grudge`: at most one per address family.
/// `ips` maps node names to the addresses peers see; `control` is the control node's address,
/// which is never dropped (an error, not a silent skip: a grudge naming it is a bug).
pub fn rules_for(
    grudge: &Grudge,
    node: &str,
    ips: &BTreeMap<String, IpAddr>,
    control: Option<IpAddr>,
) -> Result<Vec<Cmd>, String> {
    let Some(drops) = grudge.get(node) else {
        return Ok(Vec::new());
    };
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for peer in drops {
        let ip = *ips
            .get(peer)
            .ok_or_else(|| format!("no address known for node {peer}"))?;
        if Some(ip) == control {
            return Err(format!(
                "refusing to block {peer} at {ip}: that is the control node's address"
            ));
        }
        if ip.is_loopback() || ip.is_unspecified() {
            return Err(format!(
                "refusing to block {peer} at {ip}: not a node address"
            ));
        }
        if ip.is_ipv6() {
            v6.push(ip);
        } else {
            v4.push(ip);
        }
    }
    let mut cmds = Vec::new();
    if !v4.is_empty() {
        cmds.push(drop_cmd(false, &v4));
    }
    if !v6.is_empty() {
        cmds.push(drop_cmd(true, &v6));
    }
    Ok(cmds)
}

/// Creates the chain and the INPUT jump on a node if missing. Idempotent.
pub fn ensure_chain(remote: &dyn Remote, v6: bool) -> Result<(), RemoteError> {
    if remote.exec(&list_cmd(v6))?.status != 0 {
        remote.exec_ok(&create_chain_cmd(v6))?;
    }
    if remote.exec(&check_jump_cmd(v6))?.status != 0 {
        remote.exec_ok(&insert_jump_cmd(v6))?;
    }
    Ok(())
}

/// Flushes the chain (the heal). A missing chain is already healed. Idempotent.
pub fn heal(remote: &dyn Remote, v6: bool) -> Result<(), RemoteError> {
    // One round trip in the common case: flush, and only when that fails ask whether the
    // chain exists at all (a missing chain is already healed).
    let out = remote.exec(&flush_cmd(v6))?;
    if out.status == 0 || remote.exec(&list_cmd(v6))?.status != 0 {
        return Ok(());
    }
    remote.exec_ok(&flush_cmd(v6)).map(|_| ())
}

/// The rules currently in the chain (`-A NETSPLIT …` lines); empty when healed or absent.
pub fn active_rules(remote: &dyn Remote, v6: bool) -> Result<Vec<String>, RemoteError> {
    let out = remote.exec(&list_cmd(v6))?;
    if out.status != 0 {
        return Ok(Vec::new());
    }
    Ok(parse_rules(&out.stdout))
}

/// The `-A` lines of `iptables -S` output.
pub fn parse_rules(listing: &str) -> Vec<String> {
    listing
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("-A "))
        .map(String::from)
        .collect()
}

/// Removes the jump and the chain (end of a run). Idempotent.
pub fn teardown(remote: &dyn Remote, v6: bool) -> Result<(), RemoteError> {
    heal(remote, v6)?;
    while remote.exec(&check_jump_cmd(v6))?.status == 0 {
        remote.exec_ok(&delete_jump_cmd(v6))?;
    }
    if remote.exec(&list_cmd(v6))?.status == 0 {
        remote.exec_ok(&delete_chain_cmd(v6))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ips() -> BTreeMap<String, IpAddr> {
        (1..=3)
            .map(|i| (format!("n{i}"), format!("10.0.0.{i}").parse().unwrap()))
            .collect()
    }

    #[test]
    fn grudge_becomes_one_drop_rule_per_family() {
        let mut g = Grudge::new();
        g.insert("n1".into(), BTreeSet::from(["n2".into(), "n3".into()]));
        let cmds = rules_for(&g, "n1", &ips(), Some("10.0.0.254".parse().unwrap())).unwrap();
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            cmds[0].shell_line(true),
            "iptables -w -A NETSPLIT -s 10.0.0.2,10.0.0.3 -j DROP"
        );
        assert!(rules_for(&g, "n2", &ips(), None).unwrap().is_empty());
    }

    #[test]
    fn never_blocks_the_control_node() {
        let mut g = Grudge::new();
        g.insert("n1".into(), BTreeSet::from(["n2".into()]));
        let e = rules_for(&g, "n1", &ips(), Some("10.0.0.2".parse().unwrap())).unwrap_err();
        assert!(e.contains("control node"), "{e}");
    }

    #[test]
    fn heal_flushes_only_the_netsplit_chain() {
        assert_eq!(flush_cmd(false).argv, ["iptables", "-w", "-F", "NETSPLIT"]);
        assert_eq!(
            insert_jump_cmd(true).argv,
            ["ip6tables", "-w", "-I", "INPUT", "1", "-j", "NETSPLIT"]
        );
        assert!(flush_cmd(false).sudo);
    }

    #[test]
    fn listing_keeps_only_rules() {
        let s = "-N NETSPLIT\n-A NETSPLIT -s 10.0.0.2/32 -j DROP\n";
        assert_eq!(parse_rules(s), vec!["-A NETSPLIT -s 10.0.0.2/32 -j DROP"]);
        assert!(parse_rules("-N NETSPLIT\n").is_empty());
    }
}
