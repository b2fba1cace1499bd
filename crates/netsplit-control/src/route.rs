//! The host's routing, as far as sending traffic to local-cluster nodes is concerned: a
//! local cluster's addresses are routed only through its bridge, and before anything is sent to
//! such an address the route is checked ([`check_route`]) — without the bridge, packets to
//! that address would follow the default route and leave the machine.

use std::path::Path;
use std::process::Command;

/// True when a link of that name exists in the host's namespace.
pub fn link_exists(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

/// The device the host routes `addr` through (`ip route get`), if any.
pub fn route_dev(addr: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "route", "get", addr])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let toks: Vec<&str> = text.split_whitespace().collect();
    let i = toks.iter().position(|t| *t == "dev")?;
    toks.get(i + 1).map(|s| s.to_string())
}

/// Checks that the host routes `addr` through `bridge` (and that the bridge exists); the
/// message says why traffic is refused otherwise.
pub fn check_route(addr: &str, bridge: &str) -> Result<(), String> {
    if !link_exists(bridge) {
        return Err(format!(
            "refusing to connect: bridge {bridge} of the local cluster is missing"
        ));
    }
    match route_dev(addr) {
        Some(dev) if dev == bridge => Ok(()),
        other => Err(format!(
            "refusing to connect: {addr} is routed via {} instead of bridge {bridge}",
            other.as_deref().unwrap_or("nothing")
        )),
    }
}
