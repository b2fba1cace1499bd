//! Packet faults through tc: delay, loss, duplication, reordering, corruption and rate limits
//! on traffic towards chosen peers only.
//!
//! Like Jepsen's `net/shape!`, a classful root qdisc sorts outgoing packets by destination with
//! u32 filters; only packets to the chosen peers reach the faulty class. We use HTB rather than
//! `prio` because HTB's class rate *is* the `rate` behaviour (no netem needed for it) and HTB
//! ships in minimal kernels that lack `prio`. Layout on the node's interface towards its peers:
//!
//! ```text
//! root 7a5b: htb default 1
//!   ├─ class 7a5b:1  rate 10gbit            (everything else, untouched)
//!   └─ class 7a5b:2  rate <rate | 10gbit>   ← u32 filters: dst <peer>/32
//!        └─ qdisc 7a5c: netem <delay/loss/duplicate/reorder/corrupt>
//! ```
//!
//! The handles are netsplit's signature: heal deletes only a root qdisc with handle [`ROOT`],
//! on every interface, so it also cleans up after a harness that crashed mid-fault.

use crate::control::{Cmd, Remote, RemoteError};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// netsplit's root qdisc handle.
pub const ROOT: &str = "7a5b:";
/// netsplit's netem qdisc handle (child of the faulty class).
pub const NETEM: &str = "7a5c:";
const DEFAULT_CLASS: &str = "7a5b:1";
const FAULT_CLASS: &str = "7a5b:2";
/// Rate of the untouched classes: far above anything a test cluster sends.
const UNLIMITED: &str = "10gbit";
const TIMEOUT: Duration = Duration::from_secs(20);

/// Delay with optional jitter, correlation and distribution (netem's `delay`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Delay {
    /// Mean added delay in milliseconds.
    pub time_ms: f64,
    /// Variation around the mean, milliseconds (0: none).
    #[serde(default)]
    pub jitter_ms: f64,
    /// Correlation with the previous packet's delay, percent.
    #[serde(default)]
    pub correlation: f64,
    /// `uniform` (netem's default when absent), `normal`, `pareto` or `paretonormal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distribution: Option<String>,
}

/// A percentage with optional correlation (netem's loss, duplicate, reorder, corrupt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Chance {
    /// Chance per packet, percent.
    pub percent: f64,
    /// Correlation with the previous packet's outcome, percent.
    #[serde(default)]
    pub correlation: f64,
}

/// What happens to packets towards the chosen peers. Absent fields: not applied (and not
/// written).
#[serde_with::skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Behaviour {
    /// Delay every packet.
    pub delay: Option<Delay>,
    /// Drop packets.
    pub loss: Option<Chance>,
    /// Send packets twice.
    pub duplicate: Option<Chance>,
    /// Needs a delay to reorder against; Jepsen's default delay is added when there is none.
    pub reorder: Option<Chance>,
    /// Flip a random bit of packets.
    pub corrupt: Option<Chance>,
    /// A tc rate such as `1mbit`, `500kbit`, `2mbps`.
    pub rate: Option<String>,
}

impl Behaviour {
    /// Jepsen's defaults for each behaviour name: delay 50ms ±10ms 25% normal, loss 20% 75%,
    /// duplicate 20%, reorder 20% 75%, corrupt 20%, rate 1mbit.
    pub fn preset(name: &str) -> Result<Behaviour, String> {
        let chance = |p: f64, c: f64| {
            Some(Chance {
                percent: p,
                correlation: c,
            })
        };
        let mut b = Behaviour::default();
        match name {
            "delay" => b.delay = Some(jepsen_delay()),
            "loss" => b.loss = chance(20.0, 75.0),
            "duplicate" => b.duplicate = chance(20.0, 0.0),
            "reorder" => b.reorder = chance(20.0, 75.0),
            "corrupt" => b.corrupt = chance(20.0, 0.0),
            "rate" => b.rate = Some("1mbit".into()),
            _ => {
                return Err(format!(
                    "unknown packet behaviour {name:?} (expected delay, loss, duplicate, reorder, corrupt or rate)"
                ))
            }
        }
        Ok(b)
    }

    /// True when nothing would be applied.
    pub fn is_empty(&self) -> bool {
        self == &Behaviour::default()
    }

    /// Checks ranges and names; the message names the field.
    pub fn validate(&self) -> Result<(), String> {
        let pct = |what: &str, v: f64| {
            if (0.0..=100.0).contains(&v) {
                Ok(())
            } else {
                Err(format!("packet {what}: {v} is not a percentage in 0..=100"))
            }
        };
        if let Some(d) = &self.delay {
            if !(d.time_ms >= 0.0 && d.jitter_ms >= 0.0 && d.time_ms.is_finite()) {
                return Err("packet delay: time_ms and jitter_ms must be >= 0".into());
            }
            pct("delay correlation", d.correlation)?;
            if let Some(dist) = &d.distribution {
                if !["uniform", "normal", "pareto", "paretonormal"].contains(&dist.as_str()) {
                    return Err(format!(
                        "packet delay distribution {dist:?}: expected uniform, normal, pareto or paretonormal"
                    ));
                }
            }
        }
        for (what, c) in self.chances() {
            pct(what, c.percent)?;
            pct(&format!("{what} correlation"), c.correlation)?;
        }
        if let Some(r) = &self.rate {
            if !valid_rate(r) {
                return Err(format!(
                    "packet rate {r:?}: expected a number with a unit such as 1mbit, 500kbit, 2mbps"
                ));
            }
        }
        Ok(())
    }

    /// The behaviours that are a [`Chance`], by netem's name, where asked for.
    fn chances(&self) -> impl Iterator<Item = (&'static str, &Chance)> {
        [
            ("loss", &self.loss),
            ("duplicate", &self.duplicate),
            ("reorder", &self.reorder),
            ("corrupt", &self.corrupt),
        ]
        .into_iter()
        .filter_map(|(what, c)| Some((what, c.as_ref()?)))
    }

    /// netem's arguments for everything but `rate` (which is the HTB class's rate); empty when
    /// no netem behaviour is asked for.
    pub fn netem_args(&self) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let delay = match (&self.delay, &self.reorder) {
            (Some(d), _) => Some(d.clone()),
            (None, Some(_)) => Some(jepsen_delay()),
            (None, None) => None,
        };
        if let Some(d) = delay {
            a.push("delay".into());
            a.push(ms(d.time_ms));
            if d.jitter_ms > 0.0 || d.correlation > 0.0 {
                a.push(ms(d.jitter_ms));
                if d.correlation > 0.0 {
                    a.push(pct(d.correlation));
                }
            }
            if let Some(dist) = &d.distribution {
                if d.jitter_ms > 0.0 && dist != "uniform" {
                    a.push("distribution".into());
                    a.push(dist.clone());
                }
            }
        }
        for (what, c) in self.chances() {
            a.push(what.into());
            a.push(pct(c.percent));
            if c.correlation > 0.0 {
                a.push(pct(c.correlation));
            }
        }
        a
    }
}

fn jepsen_delay() -> Delay {
    Delay {
        time_ms: 50.0,
        jitter_ms: 10.0,
        correlation: 25.0,
        distribution: Some("normal".into()),
    }
}

fn ms(v: f64) -> String {
    format!("{}ms", trim_float(v))
}

fn pct(v: f64) -> String {
    format!("{}%", trim_float(v))
}

fn trim_float(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

fn valid_rate(r: &str) -> bool {
    let digits = r
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(r.len());
    let (num, unit) = r.split_at(digits);
    !num.is_empty()
        && num.parse::<f64>().is_ok_and(|x| x > 0.0)
        && ["bit", "kbit", "mbit", "gbit", "bps", "kbps", "mbps", "gbps"]
            .contains(&unit.to_ascii_lowercase().as_str())
}

fn tc() -> Cmd {
    Cmd::new("tc").sudo().timeout(TIMEOUT)
}

/// `ip -o route get <peer>`: the route (and so the interface) towards a peer.
pub fn route_get_cmd(peer: IpAddr) -> Cmd {
    Cmd::new("ip")
        .args(["-o", "route", "get", &peer.to_string()])
        .timeout(TIMEOUT)
}

/// The `dev` of an `ip -o route get` line.
pub fn parse_route_dev(out: &str) -> Option<String> {
    let mut words = out.split_whitespace();
    while let Some(w) = words.next() {
        if w == "dev" {
            return words.next().map(String::from);
        }
    }
    None
}

/// The commands that install `behaviour` on `dev` for packets to `peers`, in order. The caller
/// heals first (a root qdisc with our handle must not exist yet).
pub fn shape_cmds(dev: &str, peers: &[IpAddr], behaviour: &Behaviour) -> Vec<Cmd> {
    let rate = behaviour.rate.as_deref().unwrap_or(UNLIMITED);
    // An HTB class under our root qdisc, `rest` after its rate (ceil, quantum).
    let class = |id: &str, rate: &str, rest: &[&str]| {
        let head = ["class", "add", "dev", dev, "parent", ROOT, "classid", id];
        tc().args(head)
            .args(["htb", "rate", rate])
            .args(rest.to_vec())
    };
    let mut cmds = vec![
        tc().args([
            "qdisc", "add", "dev", dev, "root", "handle", ROOT, "htb", "default", "1",
        ]),
        class(DEFAULT_CLASS, UNLIMITED, &["quantum", "60000"]),
        class(FAULT_CLASS, rate, &["ceil", rate, "quantum", "1514"]),
    ];
    let netem = behaviour.netem_args();
    if !netem.is_empty() {
        cmds.push(
            tc().args([
                "qdisc",
                "add",
                "dev",
                dev,
                "parent",
                FAULT_CLASS,
                "handle",
                NETEM,
                "netem",
            ])
            .args(netem),
        );
    }
    for ip in peers {
        let (proto, sel, len) = if ip.is_ipv6() {
            ("ipv6", "ip6", 128)
        } else {
            ("ip", "ip", 32)
        };
        cmds.push(tc().args([
            "filter",
            "add",
            "dev",
            dev,
            "parent",
            ROOT,
            "protocol",
            proto,
            "prio",
            "1",
            "u32",
            "match",
            sel,
            "dst",
            &format!("{ip}/{len}"),
            "flowid",
            FAULT_CLASS,
        ]));
    }
    cmds
}

/// `tc qdisc show`: every qdisc on every interface.
pub fn show_cmd() -> Cmd {
    tc().args(["qdisc", "show"])
}

/// `tc qdisc del dev <dev> root handle 7a5b:`.
pub fn delete_cmd(dev: &str) -> Cmd {
    tc().args(["qdisc", "del", "dev", dev, "root", "handle", ROOT])
}

/// Interfaces that carry netsplit's root qdisc, from `tc qdisc show` output.
pub fn our_devices(listing: &str) -> Vec<String> {
    let mut devs = Vec::new();
    for line in listing.lines() {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() >= 5 && w[0] == "qdisc" && w[2] == ROOT && w[3] == "dev" {
            devs.push(w[4].to_string());
        }
    }
    devs.sort();
    devs.dedup();
    devs
}

/// Lines of `tc qdisc show` that are netsplit's or any netem qdisc (what verify-clean flags).
pub fn leftover_lines(listing: &str) -> Vec<String> {
    listing
        .lines()
        .filter(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w.len() >= 3 && w[0] == "qdisc" && (w[1] == "netem" || w[2] == ROOT || w[2] == NETEM)
        })
        .map(|l| l.trim().to_string())
        .collect()
}

/// Finds the interface a node uses to reach `peer`.
pub fn device_towards(remote: &dyn Remote, peer: IpAddr) -> Result<String, RemoteError> {
    let out = remote.exec_ok(&route_get_cmd(peer))?;
    parse_route_dev(&out.stdout).ok_or_else(|| RemoteError::Other {
        node: remote.node().name.clone(),
        msg: format!(
            "no route towards {peer}: `ip route get` said {:?}",
            out.stdout.trim()
        ),
    })
}

/// Removes netsplit's root qdisc from every interface of the node. Idempotent.
pub fn heal(remote: &dyn Remote) -> Result<(), RemoteError> {
    let out = remote.exec_ok(&show_cmd())?;
    for dev in our_devices(&out.stdout) {
        remote.exec_ok(&delete_cmd(&dev))?;
    }
    Ok(())
}

/// Installs a behaviour towards `peers` (heals first so a second start replaces the first).
pub fn apply(
    remote: &dyn Remote,
    dev: &str,
    peers: &[IpAddr],
    behaviour: &Behaviour,
) -> Result<(), RemoteError> {
    heal(remote)?;
    for cmd in shape_cmds(dev, peers, behaviour) {
        if let Err(e) = remote.exec_ok(&cmd) {
            // Leave nothing half-built behind.
            let _ = heal(remote);
            return Err(e);
        }
    }
    Ok(())
}

/// netsplit's qdiscs (and any netem) still present on the node.
pub fn leftovers(remote: &dyn Remote) -> Result<Vec<String>, RemoteError> {
    let out = remote.exec_ok(&show_cmd())?;
    Ok(leftover_lines(&out.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_jepsens_netem_arguments() {
        let d = Behaviour::preset("delay").unwrap();
        assert_eq!(
            d.netem_args(),
            ["delay", "50ms", "10ms", "25%", "distribution", "normal"]
        );
        assert_eq!(
            Behaviour::preset("loss").unwrap().netem_args(),
            ["loss", "20%", "75%"]
        );
        // Reorder without a delay gets the default delay to reorder against.
        let r = Behaviour::preset("reorder").unwrap().netem_args();
        assert_eq!(r[0], "delay");
        assert!(r.ends_with(&["reorder".into(), "20%".into(), "75%".into()]));
        assert!(Behaviour::preset("rate").unwrap().netem_args().is_empty());
        assert!(Behaviour::preset("jam").is_err());
    }

    #[test]
    fn shaping_filters_each_peer_into_the_faulty_class() {
        let b = Behaviour {
            loss: Some(Chance {
                percent: 10.0,
                correlation: 0.0,
            }),
            rate: Some("1mbit".into()),
            ..Behaviour::default()
        };
        let peers: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap(), "fd00::3".parse().unwrap()];
        let lines: Vec<String> = shape_cmds("eth0", &peers, &b)
            .iter()
            .map(|c| c.shell_line(true))
            .collect();
        assert_eq!(
            lines,
            [
                "tc qdisc add dev eth0 root handle 7a5b: htb default 1",
                "tc class add dev eth0 parent 7a5b: classid 7a5b:1 htb rate 10gbit quantum 60000",
                "tc class add dev eth0 parent 7a5b: classid 7a5b:2 htb rate 1mbit ceil 1mbit quantum 1514",
                "tc qdisc add dev eth0 parent 7a5b:2 handle 7a5c: netem loss 10%",
                "tc filter add dev eth0 parent 7a5b: protocol ip prio 1 u32 match ip dst 10.0.0.2/32 flowid 7a5b:2",
                "tc filter add dev eth0 parent 7a5b: protocol ipv6 prio 1 u32 match ip6 dst fd00::3/128 flowid 7a5b:2",
            ]
        );
    }

    #[test]
    fn heal_finds_only_netsplits_root_qdiscs() {
        let listing = "qdisc noqueue 0: dev lo root refcnt 2\n\
                       qdisc htb 7a5b: dev eth0 root refcnt 3 r2q 10 default 0x1\n\
                       qdisc netem 7a5c: dev eth0 parent 7a5b:2 limit 1000 delay 50ms\n\
                       qdisc htb 1: dev eth1 root refcnt 2\n";
        assert_eq!(our_devices(listing), ["eth0"]);
        assert_eq!(leftover_lines(listing).len(), 2);
        assert!(leftover_lines("qdisc noqueue 0: dev lo root refcnt 2\n").is_empty());
        assert_eq!(
            delete_cmd("eth0").argv.join(" "),
            "tc qdisc del dev eth0 root handle 7a5b:"
        );
    }

    #[test]
    fn validation_names_the_bad_field() {
        let mut b = Behaviour::preset("loss").unwrap();
        b.loss.as_mut().unwrap().percent = 150.0;
        assert!(b.validate().unwrap_err().contains("loss"));
        let b = Behaviour {
            rate: Some("fast".into()),
            ..Behaviour::default()
        };
        assert!(b.validate().unwrap_err().contains("rate"));
        assert!(Behaviour::preset("delay").unwrap().validate().is_ok());
        assert!(valid_rate("1.5mbit") && !valid_rate("mbit") && !valid_rate("0kbit"));
    }

    #[test]
    fn route_dev_is_parsed() {
        assert_eq!(
            parse_route_dev("10.0.0.2 dev eth0 src 10.0.0.1 uid 0 \\    cache"),
            Some("eth0".into())
        );
        assert_eq!(parse_route_dev("unreachable"), None);
    }
}
