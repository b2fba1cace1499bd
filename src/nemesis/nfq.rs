//! Packet faults without `sch_netem`: a userspace emulation through iptables NFQUEUE, for
//! kernels built without netem (Firecracker guests, some container hosts, minimal VMs).
//!
//! When `tc qdisc add … netem` answers "Specified qdisc kind is unknown", the nemesis installs
//! the same behaviour this way instead, and says so in the history (`"emulation": "nfqueue"`):
//!
//! ```text
//! mangle OUTPUT ─► chain NETSPLIT-PKT
//!                    ├─ -d <peer> -m statistic --probability p -j TEE --gateway <peer>   (duplicate)
//!                    └─ -d <peer> -j NFQUEUE --queue-num 31323 --queue-bypass
//!                                     │
//!                                     ▼
//!                  `netsplit netem-helper` on the node (pid file netsplit/netem.pid):
//!                  loss (correlated) → drop; corrupt → one bit flipped past the IP header, so
//!                  the receiver's checksum rejects it, as with netem; delay (jitter,
//!                  correlation, uniform/normal/pareto/paretonormal) → the verdict is held;
//!                  reorder → that share of packets skips the delay.
//! ```
//!
//! `rate` stays with the HTB class (no netem needed). `--queue-bypass` and the queue's
//! fail-open flag mean a dead or slow helper lets packets through rather than cutting the node
//! off. Heal flushes only `NETSPLIT-PKT` and stops the helper by its pid file; the helper
//! releases every held packet before it exits.
//!
//! What differs from netem: duplicates leave at once (netem delays them like the original) and
//! take no correlation; a correlation reuses the previous packet's draw with that probability,
//! so the share stays as asked and faults come in bursts (netem's weighted average shrinks the
//! share); the helper runs only where the netsplit binary is (local nodes; on machines a
//! kernel with netem is the norm).
//!
//! [`Emulator`] — the per-packet decisions — is pure and seeded; the netlink side is
//! [`run_helper`].

use super::packet::{Behaviour, Chance, Delay};
use crate::control::{util, Cmd, Remote, RemoteError};
use crate::generator::rng::Rng;
use std::net::IpAddr;
use std::time::Duration;

/// The mangle chain netsplit owns for emulated packet faults.
pub const CHAIN: &str = "NETSPLIT-PKT";
/// The NFQUEUE number (0x7a5b, netsplit's qdisc handle).
pub const QUEUE: u16 = 0x7a5b;
const TIMEOUT: Duration = Duration::from_secs(20);

/// What happens to one packet.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// Drop the packet (nothing else applies then).
    pub drop: bool,
    /// Release after this long (zero: at once).
    pub delay: Duration,
    /// Flip this bit of the packet (an offset in bits from the packet's start).
    pub corrupt_bit: Option<usize>,
}

/// A uniform draw correlated with the previous one: with probability `rho` the previous draw
/// is reused, else a fresh one is taken. The share of hits stays what was asked and hits come
/// in bursts (netem's own model, a weighted average of draws, shrinks the share instead).
#[derive(Debug, Clone)]
struct Correlated {
    rho: f64,
    last: Option<f64>,
}

impl Correlated {
    fn new(correlation_pct: f64) -> Correlated {
        Correlated {
            rho: (correlation_pct / 100.0).clamp(0.0, 1.0),
            last: None,
        }
    }
    fn next(&mut self, rng: &mut Rng) -> f64 {
        if let Some(last) = self.last {
            if self.rho > 0.0 && rng.unit() < self.rho {
                return last;
            }
        }
        let u = rng.unit();
        self.last = Some(u);
        u
    }
}

/// Decides, packet by packet, what the behaviour does. Pure and seeded.
pub struct Emulator {
    rng: Rng,
    delay: Option<Delay>,
    delay_c: Correlated,
    loss: Option<(f64, Correlated)>,
    reorder: Option<(f64, Correlated)>,
    corrupt: Option<(f64, Correlated)>,
}

fn chance(c: &Option<Chance>) -> Option<(f64, Correlated)> {
    c.as_ref()
        .map(|c| (c.percent / 100.0, Correlated::new(c.correlation)))
}

impl Emulator {
    /// An emulator of `b` whose random choices are seeded by `seed`.
    pub fn new(b: &Behaviour, seed: u64) -> Emulator {
        // Reorder needs a delay to reorder against: netem's (and Jepsen's) default.
        let delay = b.delay.clone().or_else(|| {
            b.reorder.as_ref().map(|_| Delay {
                time_ms: 50.0,
                jitter_ms: 10.0,
                correlation: 25.0,
                distribution: Some("normal".into()),
            })
        });
        Emulator {
            rng: Rng::new(seed ^ 0x6e66_7175_6575_6500),
            delay_c: Correlated::new(delay.as_ref().map_or(0.0, |d| d.correlation)),
            delay,
            loss: chance(&b.loss),
            reorder: chance(&b.reorder),
            corrupt: chance(&b.corrupt),
        }
    }

    /// Whether the behaviour needs the queue at all (duplicate is TEE, rate is HTB).
    pub fn needed(b: &Behaviour) -> bool {
        b.delay.is_some() || b.loss.is_some() || b.reorder.is_some() || b.corrupt.is_some()
    }

    fn hit(rng: &mut Rng, c: &mut Option<(f64, Correlated)>) -> bool {
        match c {
            Some((p, corr)) => corr.next(rng) < *p,
            None => false,
        }
    }

    /// The fate of a packet of `len` bytes whose IP header is `header_len` bytes.
    pub fn decide(&mut self, len: usize, header_len: usize) -> Decision {
        if Self::hit(&mut self.rng, &mut self.loss) {
            return Decision {
                drop: true,
                delay: Duration::ZERO,
                corrupt_bit: None,
            };
        }
        let corrupt_bit = if Self::hit(&mut self.rng, &mut self.corrupt) && len > header_len {
            let bits = (len - header_len) * 8;
            Some(header_len * 8 + self.rng.index(bits))
        } else {
            None
        };
        let immediate = Self::hit(&mut self.rng, &mut self.reorder);
        let delay = match (&self.delay, immediate) {
            (Some(d), false) => {
                let u = self.delay_c.next(&mut self.rng);
                Duration::from_secs_f64(sample_delay_ms(d, u, &mut self.rng).max(0.0) / 1000.0)
            }
            _ => Duration::ZERO,
        };
        Decision {
            drop: false,
            delay,
            corrupt_bit,
        }
    }
}

/// A delay in ms: `time ± jitter` by the distribution; `u` is the (correlated) uniform draw.
fn sample_delay_ms(d: &Delay, u: f64, rng: &mut Rng) -> f64 {
    if d.jitter_ms <= 0.0 {
        return d.time_ms;
    }
    // A standard normal from `u` and a fresh uniform (Box–Muller).
    let normal = |u: f64, rng: &mut Rng| {
        let u1 = u.clamp(1e-12, 1.0 - 1e-12);
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos()
    };
    // Pareto with shape 3, scaled to mean 0 and standard deviation 1.
    let pareto = |u: f64| ((1.0 - u).clamp(1e-12, 1.0).powf(-1.0 / 3.0) - 1.5) / 0.75f64.sqrt();
    let z = match d.distribution.as_deref() {
        None | Some("uniform") => 2.0 * u - 1.0,
        Some("normal") => normal(u, rng),
        Some("pareto") => pareto(u),
        // netem's mix, rescaled to standard deviation 1 like the others (0.25² + 0.75² = 0.625).
        _ => (0.25 * normal(u, rng) + 0.75 * pareto(rng.unit())) / 0.625f64.sqrt(),
    };
    d.time_ms + d.jitter_ms * z
}

fn ipt(v6: bool) -> Cmd {
    Cmd::new(super::partition::iptables(v6))
        .args(["-w", "-t", "mangle"])
        .sudo()
        .timeout(TIMEOUT)
}

/// Where the helper keeps its pid file and log on a node.
pub fn helper_paths(workdir: &str) -> (String, String) {
    let dir = format!("{}/netsplit", workdir.trim_end_matches('/'));
    (format!("{dir}/netem.pid"), format!("{dir}/netem.log"))
}

/// The rules for `peers`: a TEE per peer for duplicates, then the queue.
pub fn rule_cmds(peers: &[IpAddr], b: &Behaviour) -> Vec<Cmd> {
    let mut cmds = Vec::new();
    for ip in peers {
        let v6 = ip.is_ipv6();
        let dst = ip.to_string();
        if let Some(d) = &b.duplicate {
            cmds.push(ipt(v6).args([
                "-A",
                CHAIN,
                "-d",
                &dst,
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                &format!("{:.4}", (d.percent / 100.0).clamp(0.0, 1.0)),
                "-j",
                "TEE",
                "--gateway",
                &dst,
            ]));
        }
        if Emulator::needed(b) {
            cmds.push(ipt(v6).args([
                "-A",
                CHAIN,
                "-d",
                &dst,
                "-j",
                "NFQUEUE",
                "--queue-num",
                &QUEUE.to_string(),
                "--queue-bypass",
            ]));
        }
    }
    cmds
}

fn ensure_chain(r: &dyn Remote, v6: bool) -> Result<(), RemoteError> {
    let _ = r.exec(&ipt(v6).args(["-N", CHAIN]))?;
    if r.exec(&ipt(v6).args(["-C", "OUTPUT", "-j", CHAIN]))?.status != 0 {
        r.exec_ok(&ipt(v6).args(["-I", "OUTPUT", "1", "-j", CHAIN]))?;
    }
    Ok(())
}

/// Installs the emulated behaviour towards `peers`: the helper first (bound to its queue),
/// then the rules. `helper` is the netsplit binary's path on the node.
pub fn apply(
    r: &dyn Remote,
    helper: &str,
    peers: &[IpAddr],
    b: &Behaviour,
    seed: u64,
) -> Result<(), RemoteError> {
    let any_v6 = peers.iter().any(IpAddr::is_ipv6);
    heal(r, any_v6)?;
    let fams: Vec<bool> = [false, true]
        .into_iter()
        .filter(|v6| peers.iter().any(|p| p.is_ipv6() == *v6))
        .collect();
    for v6 in &fams {
        ensure_chain(r, *v6)?;
    }
    if Emulator::needed(b) {
        let (pidfile, logfile) = helper_paths(&r.node().workdir);
        let json = serde_json::to_string(b).unwrap_or_default();
        util::start_daemon(
            r,
            &util::Daemon {
                name: "netsplit netem-helper".into(),
                argv: vec![
                    helper.to_string(),
                    "netem-helper".into(),
                    "--queue".into(),
                    QUEUE.to_string(),
                    "--behaviour".into(),
                    json,
                    "--seed".into(),
                    seed.to_string(),
                ],
                env: Vec::new(),
                cwd: "/".into(),
                pidfile: pidfile.clone(),
                logfile: logfile.clone(),
            },
        )?;
        // Wait until it has bound the queue (it says so in its log), or has died.
        const WAIT: &str = r#"pid=$(cat "$1"); i=0
while [ $i -lt 100 ]; do
  tail -n 5 "$2" 2>/dev/null | grep -q "bound queue $3" && exit 0
  kill -0 "$pid" 2>/dev/null || { echo "helper exited:"; tail -n 5 "$2"; exit 1; }
  sleep 0.05; i=$((i+1))
done
echo "helper did not bind queue $3 within 5 s:"; tail -n 5 "$2"; exit 1"#;
        let out = r.exec(
            &Cmd::new("sh")
                .args(["-c", WAIT, "sh", &pidfile, &logfile, &QUEUE.to_string()])
                .timeout(TIMEOUT),
        )?;
        if out.status != 0 {
            let _ = heal(r, any_v6);
            return Err(RemoteError::Other {
                node: r.node().name.clone(),
                msg: format!(
                    "netem emulation: {}",
                    out.stdout.split_whitespace().collect::<Vec<_>>().join(" ")
                ),
            });
        }
    }
    for cmd in rule_cmds(peers, b) {
        if let Err(e) = r.exec_ok(&cmd) {
            let _ = heal(r, any_v6);
            return Err(e);
        }
    }
    Ok(())
}

fn families(v6: bool) -> &'static [bool] {
    if v6 {
        &[false, true]
    } else {
        &[false]
    }
}

/// Flushes the chain (IPv4, and IPv6 when `v6`) and stops the helper. Idempotent.
pub fn heal(r: &dyn Remote, v6: bool) -> Result<(), RemoteError> {
    for &v6 in families(v6) {
        // A missing chain (never used, or no ip6tables) is not an error.
        let _ = r.exec(&ipt(v6).args(["-F", CHAIN]))?;
    }
    let (pidfile, _) = helper_paths(&r.node().workdir);
    util::stop_daemon(r, &pidfile, Duration::from_secs(5))?;
    Ok(())
}

/// Removes the chain and its jump (teardown, after heal).
pub fn teardown(r: &dyn Remote, v6: bool) -> Result<(), RemoteError> {
    heal(r, v6)?;
    for &v6 in families(v6) {
        let _ = r.exec(&ipt(v6).args(["-D", "OUTPUT", "-j", CHAIN]))?;
        let _ = r.exec(&ipt(v6).args(["-X", CHAIN]))?;
    }
    Ok(())
}

/// What is left of the emulation on a node: rules in the chain, a live helper.
pub fn leftovers(r: &dyn Remote, v6: bool) -> Result<Vec<String>, RemoteError> {
    let mut left = Vec::new();
    for &v6 in families(v6) {
        let out = r.exec(&ipt(v6).args(["-S", CHAIN]))?;
        if out.status == 0 {
            left.extend(
                out.stdout
                    .lines()
                    .filter(|l| l.starts_with(&format!("-A {CHAIN}")))
                    .map(|l| l.to_string()),
            );
        }
    }
    let (pidfile, _) = helper_paths(&r.node().workdir);
    if let Some(pid) = util::daemon_pid(r, &pidfile)? {
        left.push(format!("netem helper still running (pid {pid})"));
    }
    Ok(left)
}

#[cfg(target_os = "linux")]
pub use netlink::run_helper;

/// The helper's side: nfnetlink_queue over a raw netlink socket (libc only).
#[cfg(target_os = "linux")]
mod netlink {
    use super::{Decision, Emulator};
    use crate::nemesis::packet::Behaviour;
    use anyhow::{anyhow, bail, Result};
    use std::collections::BinaryHeap;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Instant;

    const NETLINK_NETFILTER: i32 = 12;
    const NFNL_SUBSYS_QUEUE: u16 = 3;
    const NFQNL_MSG_PACKET: u16 = 0;
    const NFQNL_MSG_VERDICT: u16 = 1;
    const NFQNL_MSG_CONFIG: u16 = 2;
    const NFQA_CFG_CMD: u16 = 1;
    const NFQA_CFG_PARAMS: u16 = 2;
    const NFQA_CFG_QUEUE_MAXLEN: u16 = 3;
    const NFQA_CFG_MASK: u16 = 4;
    const NFQA_CFG_FLAGS: u16 = 5;
    const NFQA_CFG_F_FAIL_OPEN: u32 = 1;
    const NFQNL_CFG_CMD_BIND: u8 = 1;
    const NFQNL_COPY_PACKET: u8 = 2;
    const NFQA_PACKET_HDR: u16 = 1;
    const NFQA_VERDICT_HDR: u16 = 2;
    const NFQA_PAYLOAD: u16 = 10;
    const NF_DROP: u32 = 0;
    const NF_ACCEPT: u32 = 1;
    const NLM_F_REQUEST: u16 = 1;
    const NLM_F_ACK: u16 = 4;
    const NLMSG_ERROR: u16 = 2;

    static STOP: AtomicBool = AtomicBool::new(false);

    extern "C" fn on_term(_: libc::c_int) {
        STOP.store(true, Ordering::SeqCst);
    }

    struct Sock(i32);

    impl Drop for Sock {
        fn drop(&mut self) {
            // SAFETY: closing a descriptor this struct owns.
            unsafe { libc::close(self.0) };
        }
    }

    fn align(n: usize) -> usize {
        (n + 3) & !3
    }

    /// One netfilter netlink message: header, nfgenmsg, attributes.
    fn message(msg: u16, flags: u16, seq: u32, queue: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut b = vec![0u8; 16];
        b.extend_from_slice(&[libc::AF_UNSPEC as u8, 0]);
        b.extend_from_slice(&queue.to_be_bytes());
        for (ty, data) in attrs {
            let len = 4 + data.len();
            b.extend_from_slice(&(len as u16).to_ne_bytes());
            b.extend_from_slice(&ty.to_ne_bytes());
            b.extend_from_slice(data);
            b.resize(align(b.len()), 0);
        }
        let total = b.len() as u32;
        b[0..4].copy_from_slice(&total.to_ne_bytes());
        b[4..6].copy_from_slice(&((NFNL_SUBSYS_QUEUE << 8) | msg).to_ne_bytes());
        b[6..8].copy_from_slice(&(flags | NLM_F_REQUEST).to_ne_bytes());
        b[8..12].copy_from_slice(&seq.to_ne_bytes());
        b
    }

    impl Sock {
        fn open() -> Result<Sock> {
            // SAFETY: plain socket(2)/bind(2)/setsockopt(2) with valid, sized arguments.
            unsafe {
                let fd = libc::socket(
                    libc::AF_NETLINK,
                    libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                    NETLINK_NETFILTER,
                );
                if fd < 0 {
                    bail!("netlink socket: {}", std::io::Error::last_os_error());
                }
                let s = Sock(fd);
                let mut addr: libc::sockaddr_nl = std::mem::zeroed();
                addr.nl_family = libc::AF_NETLINK as u16;
                if libc::bind(
                    fd,
                    &addr as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_nl>() as u32,
                ) < 0
                {
                    bail!("netlink bind: {}", std::io::Error::last_os_error());
                }
                let size: i32 = 8 << 20;
                libc::setsockopt(
                    fd,
                    libc::SOL_SOCKET,
                    libc::SO_RCVBUFFORCE,
                    &size as *const _ as *const libc::c_void,
                    4,
                );
                // Overruns are survivable (fail-open, retransmits): no ENOBUFS errors.
                let one: i32 = 1;
                libc::setsockopt(
                    fd,
                    libc::SOL_NETLINK,
                    libc::NETLINK_NO_ENOBUFS,
                    &one as *const _ as *const libc::c_void,
                    4,
                );
                Ok(s)
            }
        }

        fn send(&self, b: &[u8]) -> std::io::Result<()> {
            // SAFETY: sending a buffer we own to the kernel (netlink destination pid 0).
            let n = unsafe {
                let mut addr: libc::sockaddr_nl = std::mem::zeroed();
                addr.nl_family = libc::AF_NETLINK as u16;
                libc::sendto(
                    self.0,
                    b.as_ptr() as *const libc::c_void,
                    b.len(),
                    0,
                    &addr as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_nl>() as u32,
                )
            };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(())
            }
        }

        fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
            // SAFETY: receiving into a buffer we own, bounded by its length.
            let n =
                unsafe { libc::recv(self.0, buf.as_mut_ptr() as *mut libc::c_void, buf.len(), 0) };
            if n < 0 {
                Err(std::io::Error::last_os_error())
            } else {
                Ok(n as usize)
            }
        }

        /// Sends a config message and waits for its acknowledgement.
        fn config(&self, seq: u32, queue: u16, attrs: &[(u16, &[u8])], what: &str) -> Result<()> {
            self.send(&message(NFQNL_MSG_CONFIG, NLM_F_ACK, seq, queue, attrs))?;
            let mut buf = vec![0u8; 8192];
            loop {
                let n = self.recv(&mut buf)?;
                for (ty, body) in messages(&buf[..n]) {
                    if ty == NLMSG_ERROR && body.len() >= 4 {
                        let code = i32::from_ne_bytes(body[0..4].try_into().unwrap_or([0; 4]));
                        if code == 0 {
                            return Ok(());
                        }
                        return Err(anyhow!(
                            "{what}: {}",
                            std::io::Error::from_raw_os_error(-code)
                        ));
                    }
                }
            }
        }
    }

    /// (type, body after the 16-byte header) of each netlink message in a datagram.
    fn messages(buf: &[u8]) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at + 16 <= buf.len() {
            let len = u32::from_ne_bytes(buf[at..at + 4].try_into().unwrap_or([0; 4])) as usize;
            let ty = u16::from_ne_bytes(buf[at + 4..at + 6].try_into().unwrap_or([0; 2]));
            if len < 16 || at + len > buf.len() {
                break;
            }
            out.push((ty, &buf[at + 16..at + len]));
            at += align(len);
        }
        out
    }

    /// (packet id, payload) of a queued-packet message body (after the netlink header).
    fn packet(body: &[u8]) -> Option<(u32, &[u8])> {
        let mut at = 4; // nfgenmsg
        let (mut id, mut payload) = (None, None);
        while at + 4 <= body.len() {
            let len = u16::from_ne_bytes([body[at], body[at + 1]]) as usize;
            let ty = u16::from_ne_bytes([body[at + 2], body[at + 3]]) & 0x3fff;
            if len < 4 || at + len > body.len() {
                break;
            }
            let data = &body[at + 4..at + len];
            match ty {
                NFQA_PACKET_HDR if data.len() >= 4 => {
                    id = Some(u32::from_be_bytes(data[0..4].try_into().ok()?))
                }
                NFQA_PAYLOAD => payload = Some(data),
                _ => {}
            }
            at += align(len);
        }
        Some((id?, payload.unwrap_or(&[])))
    }

    fn ip_header_len(p: &[u8]) -> usize {
        match p.first().map(|b| b >> 4) {
            Some(4) => ((p[0] & 0x0f) as usize * 4).min(p.len()),
            Some(6) => 40.min(p.len()),
            _ => p.len(),
        }
    }

    #[derive(PartialEq, Eq)]
    struct Held {
        at: Instant,
        seq: u64,
        id: u32,
        payload: Option<Vec<u8>>,
    }
    impl Ord for Held {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            // Earliest first in a max-heap.
            (o.at, o.seq).cmp(&(self.at, self.seq))
        }
    }
    impl PartialOrd for Held {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }

    fn verdict(s: &Sock, queue: u16, id: u32, v: u32, payload: Option<&[u8]>) {
        let mut hdr = [0u8; 8];
        hdr[0..4].copy_from_slice(&v.to_be_bytes());
        hdr[4..8].copy_from_slice(&id.to_be_bytes());
        let mut attrs: Vec<(u16, &[u8])> = vec![(NFQA_VERDICT_HDR, &hdr)];
        if let Some(p) = payload {
            attrs.push((NFQA_PAYLOAD, p));
        }
        if let Err(e) = s.send(&message(NFQNL_MSG_VERDICT, 0, 0, queue, &attrs)) {
            eprintln!("netsplit netem-helper: verdict for packet {id}: {e}");
        }
    }

    /// Binds `queue` and applies `behaviour` to every queued packet until SIGTERM/SIGINT, then
    /// releases every held packet and exits.
    pub fn run_helper(queue: u16, behaviour: &Behaviour, seed: u64) -> Result<()> {
        // SAFETY: installing an async-signal-safe handler that only stores to an atomic.
        unsafe {
            libc::signal(libc::SIGTERM, on_term as *const () as libc::sighandler_t);
            libc::signal(libc::SIGINT, on_term as *const () as libc::sighandler_t);
        }
        let s = Sock::open()?;
        let mut cmd = [NFQNL_CFG_CMD_BIND, 0, 0, 0];
        cmd[2..4].copy_from_slice(&(libc::AF_INET as u16).to_be_bytes());
        s.config(1, queue, &[(NFQA_CFG_CMD, &cmd)], "binding the queue")?;
        let mut params = [0u8; 5];
        params[0..4].copy_from_slice(&0xffffu32.to_be_bytes());
        params[4] = NFQNL_COPY_PACKET;
        s.config(2, queue, &[(NFQA_CFG_PARAMS, &params)], "copy mode")?;
        s.config(
            3,
            queue,
            &[(NFQA_CFG_QUEUE_MAXLEN, &8192u32.to_be_bytes())],
            "queue length",
        )?;
        s.config(
            4,
            queue,
            &[
                (NFQA_CFG_MASK, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes()),
                (NFQA_CFG_FLAGS, &NFQA_CFG_F_FAIL_OPEN.to_be_bytes()),
            ],
            "fail-open",
        )?;
        eprintln!(
            "netsplit netem-helper: bound queue {queue}: {}",
            serde_json::to_string(behaviour).unwrap_or_default()
        );
        let mut emu = Emulator::new(behaviour, seed);
        let mut held: BinaryHeap<Held> = BinaryHeap::new();
        let mut buf = vec![0u8; 256 * 1024];
        let mut seq = 0u64;
        let (mut seen, mut dropped, mut corrupted) = (0u64, 0u64, 0u64);
        while !STOP.load(Ordering::SeqCst) {
            let now = Instant::now();
            while held.peek().is_some_and(|h| h.at <= now) {
                let h = held.pop().expect("peeked");
                verdict(&s, queue, h.id, NF_ACCEPT, h.payload.as_deref());
            }
            let wait_ms = held
                .peek()
                .map(|h| h.at.saturating_duration_since(now).as_millis() as i32 + 1)
                .unwrap_or(200)
                .min(200);
            let mut pfd = libc::pollfd {
                fd: s.0,
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll(2) on one pollfd we own.
            let r = unsafe { libc::poll(&mut pfd, 1, wait_ms) };
            if r <= 0 {
                continue; // timeout or EINTR (a signal: the loop checks STOP)
            }
            let n = match s.recv(&mut buf) {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => bail!("netlink recv: {e}"),
            };
            let now = Instant::now();
            for (ty, body) in messages(&buf[..n]) {
                if ty != (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET {
                    continue;
                }
                let Some((id, payload)) = packet(body) else {
                    continue;
                };
                seen += 1;
                let Decision {
                    drop,
                    delay,
                    corrupt_bit,
                } = emu.decide(payload.len(), ip_header_len(payload));
                if drop {
                    dropped += 1;
                    verdict(&s, queue, id, NF_DROP, None);
                    continue;
                }
                let changed = corrupt_bit.map(|bit| {
                    corrupted += 1;
                    let mut p = payload.to_vec();
                    p[bit / 8] ^= 1 << (bit % 8);
                    p
                });
                if delay.is_zero() {
                    verdict(&s, queue, id, NF_ACCEPT, changed.as_deref());
                } else {
                    seq += 1;
                    held.push(Held {
                        at: now + delay,
                        seq,
                        id,
                        payload: changed,
                    });
                }
            }
        }
        let left = held.len();
        while let Some(h) = held.pop() {
            verdict(&s, queue, h.id, NF_ACCEPT, h.payload.as_deref());
        }
        eprintln!(
            "netsplit netem-helper: stopping: {seen} packets, {dropped} dropped, {corrupted} \
             corrupted, {left} held packets released"
        );
        Ok(())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn messages_round_trip_through_the_parser() {
            let hdr = [0, 0, 0, 7, 0x08, 0x00, 3, 0];
            let payload = [0x45u8, 0, 0, 20];
            let m = message(
                NFQNL_MSG_PACKET,
                0,
                9,
                31323,
                &[(NFQA_PACKET_HDR, &hdr), (NFQA_PAYLOAD, &payload)],
            );
            assert_eq!(m.len() % 4, 0);
            let ms = messages(&m);
            assert_eq!(ms.len(), 1);
            assert_eq!(ms[0].0, (3 << 8) | NFQNL_MSG_PACKET);
            let (id, p) = packet(ms[0].1).unwrap();
            assert_eq!((id, p), (7, &payload[..]));
            assert_eq!(ip_header_len(&[0x46, 0, 0, 0]), 4);
            assert_eq!(ip_header_len(&[0x45; 40]), 20);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(b: &Behaviour, n: usize, f: impl Fn(&Decision) -> bool) -> f64 {
        let mut e = Emulator::new(b, 7);
        (0..n).filter(|_| f(&e.decide(100, 20))).count() as f64 / n as f64
    }

    #[test]
    fn loss_drops_about_the_asked_share_even_when_correlated() {
        for corr in [0.0, 75.0] {
            let b = Behaviour {
                loss: Some(Chance {
                    percent: 20.0,
                    correlation: corr,
                }),
                ..Behaviour::default()
            };
            let s = share(&b, 20_000, |d| d.drop);
            assert!((0.17..0.23).contains(&s), "corr {corr}: {s}");
            // Correlation makes losses come in runs: P(loss | loss before) ≈ ρ + (1-ρ)p.
            let mut e = Emulator::new(&b, 11);
            let d: Vec<bool> = (0..20_000).map(|_| e.decide(100, 20).drop).collect();
            let after_loss = d.windows(2).filter(|w| w[0]).count() as f64;
            let again = d.windows(2).filter(|w| w[0] && w[1]).count() as f64 / after_loss;
            let want = corr / 100.0 + (1.0 - corr / 100.0) * 0.2;
            assert!(
                (again - want).abs() < 0.04,
                "corr {corr}: {again} vs {want}"
            );
        }
        let all = Behaviour {
            loss: Some(Chance {
                percent: 100.0,
                correlation: 0.0,
            }),
            ..Behaviour::default()
        };
        assert_eq!(share(&all, 1000, |d| d.drop), 1.0);
    }

    #[test]
    fn delays_follow_time_and_jitter_by_distribution() {
        for dist in ["uniform", "normal", "pareto", "paretonormal"] {
            let b = Behaviour {
                delay: Some(Delay {
                    time_ms: 100.0,
                    jitter_ms: 10.0,
                    correlation: 0.0,
                    distribution: Some(dist.into()),
                }),
                ..Behaviour::default()
            };
            let mut e = Emulator::new(&b, 1);
            let ms: Vec<f64> = (0..20_000)
                .map(|_| e.decide(100, 20).delay.as_secs_f64() * 1000.0)
                .collect();
            let mean = ms.iter().sum::<f64>() / ms.len() as f64;
            let sd = (ms.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / ms.len() as f64).sqrt();
            assert!((97.0..103.0).contains(&mean), "{dist}: mean {mean}");
            let want_sd = if dist == "uniform" {
                10.0 / 3f64.sqrt()
            } else {
                10.0
            };
            assert!((sd - want_sd).abs() < 2.5, "{dist}: sd {sd}");
            assert!(ms.iter().all(|&x| x >= 0.0));
        }
        let fixed = Behaviour {
            delay: Some(Delay {
                time_ms: 40.0,
                jitter_ms: 0.0,
                correlation: 0.0,
                distribution: None,
            }),
            ..Behaviour::default()
        };
        assert!(share(&fixed, 100, |d| d.delay == Duration::from_millis(40)) == 1.0);
    }

    #[test]
    fn reorder_sends_its_share_at_once_and_delays_the_rest() {
        let b = Behaviour::preset("reorder").unwrap();
        let s = share(&b, 20_000, |d| d.delay.is_zero());
        assert!((0.17..0.23).contains(&s), "{s}");
        assert!(Emulator::needed(&b));
    }

    #[test]
    fn corruption_flips_a_bit_past_the_ip_header_only() {
        let b = Behaviour {
            corrupt: Some(Chance {
                percent: 100.0,
                correlation: 0.0,
            }),
            ..Behaviour::default()
        };
        let mut e = Emulator::new(&b, 3);
        for _ in 0..1000 {
            let bit = e.decide(60, 20).corrupt_bit.unwrap();
            assert!((160..480).contains(&bit), "{bit}");
        }
        // A packet that is all header is left alone.
        assert_eq!(e.decide(20, 20).corrupt_bit, None);
    }

    #[test]
    fn rules_tee_duplicates_and_queue_the_rest_per_peer() {
        let b = Behaviour {
            duplicate: Some(Chance {
                percent: 20.0,
                correlation: 0.0,
            }),
            loss: Some(Chance {
                percent: 5.0,
                correlation: 0.0,
            }),
            ..Behaviour::default()
        };
        let peers: Vec<IpAddr> = vec!["10.0.0.2".parse().unwrap()];
        let lines: Vec<String> = rule_cmds(&peers, &b)
            .iter()
            .map(|c| c.shell_line(true))
            .collect();
        assert_eq!(
            lines,
            [
                "iptables -w -t mangle -A NETSPLIT-PKT -d 10.0.0.2 -m statistic --mode random --probability 0.2000 -j TEE --gateway 10.0.0.2",
                "iptables -w -t mangle -A NETSPLIT-PKT -d 10.0.0.2 -j NFQUEUE --queue-num 31323 --queue-bypass",
            ]
        );
        // Duplicate alone needs no queue (and so no helper).
        let dup_only = Behaviour {
            duplicate: b.duplicate.clone(),
            ..Behaviour::default()
        };
        assert!(!Emulator::needed(&dup_only));
        assert_eq!(rule_cmds(&peers, &dup_only).len(), 1);
    }
}
