//! Clock faults: bump, strobe, drift and reset a node's clock.
//!
//! Local namespace nodes share the host's kernel clock, so there the target's processes run
//! under libfaketime with a per-node offset file that the nemesis rewrites ([`faketime_env`]
//! is the environment a target must set when it starts a process). libfaketime re-reads the
//! file on every time call (`FAKETIME_NO_CACHE=1`), so a rewrite takes effect at once; a missing
//! file means "no offset". Statically linked and Go binaries (etcd) make their own system calls
//! and ignore libfaketime: targets say so and results must carry the note. How a target starts a
//! process under libfaketime is `crate::control::faketime`.
//!
//! On real machines (VMs) the nemesis stops time synchronisation and sets the real clock with
//! `date`, through a fixed `sh` script that takes the offset as an argument (so no value is ever
//! spliced into shell text); at the end it sets each clock from the control node's clock.

use crate::control::{Cmd, Remote, RemoteError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use crate::control::faketime::{
    faketime_env, preload_file, rc_content, rc_path, set_faketime, write_file_cmd, ClockState,
    LIBFAKETIME, RC_FILE,
};

const TIMEOUT: Duration = Duration::from_secs(20);

/// How clock faults reach a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClockMode {
    /// Rewrite the node's libfaketime offset file (local nodes sharing one kernel clock).
    Faketime,
    /// Set the node's real clock (VMs and machines; time sync is stopped first).
    RealClock,
}

/// The time-synchronisation daemons netsplit knows how to stop and restart.
pub const TIMESYNC_UNITS: [&str; 6] = [
    "systemd-timesyncd",
    "chrony",
    "chronyd",
    "ntp",
    "ntpsec",
    "openntpd",
];

/// What was synchronising a machine's clock before netsplit stopped it, so that it can be
/// restarted at the end: `timedatectl`'s NTP switch and the daemons that were active.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TimeSync {
    /// timedatectl's NTP switch was on.
    pub ntp: bool,
    /// The units of [`TIMESYNC_UNITS`] that were active.
    pub units: Vec<String>,
}

/// Prints what synchronises the clock: one active unit of [`TIMESYNC_UNITS`] per line, and
/// `ntp` when timedatectl's NTP switch is on. Never fails (no systemd prints nothing).
pub fn timesync_state_cmd() -> Cmd {
    const SCRIPT: &str =
        "for u in \"$@\"; do systemctl is-active --quiet \"$u\" 2>/dev/null && echo \"$u\"; done
[ \"$(timedatectl show -p NTP --value 2>/dev/null)\" = yes ] && echo ntp
exit 0";
    Cmd::new("sh")
        .args(["-c", SCRIPT, "sh"])
        .args(TIMESYNC_UNITS)
        .timeout(TIMEOUT)
}

/// Parses [`timesync_state_cmd`]'s output; lines it does not know are ignored.
pub fn parse_timesync(stdout: &str) -> TimeSync {
    let mut t = TimeSync::default();
    for l in stdout.lines().map(str::trim) {
        if l == "ntp" {
            t.ntp = true;
        } else if TIMESYNC_UNITS.contains(&l) && !t.units.iter().any(|u| u == l) {
            t.units.push(l.to_string());
        }
    }
    t
}

/// Commands that stop time synchronisation on a machine. Each may fail (the daemon is not
/// installed); callers ignore failures.
pub fn stop_timesync_cmds() -> Vec<Cmd> {
    let mut cmds = vec![Cmd::new("timedatectl")
        .args(["set-ntp", "false"])
        .sudo()
        .timeout(TIMEOUT)];
    for unit in TIMESYNC_UNITS {
        cmds.push(
            Cmd::new("systemctl")
                .args(["stop", unit])
                .sudo()
                .timeout(TIMEOUT),
        );
    }
    cmds
}

/// Commands that put back what [`stop_timesync_cmds`] stopped, as `was` describes it.
pub fn restore_timesync_cmds(was: &TimeSync) -> Vec<Cmd> {
    let mut cmds: Vec<Cmd> = was
        .units
        .iter()
        .map(|u| {
            Cmd::new("systemctl")
                .args(["start", u])
                .sudo()
                .timeout(TIMEOUT)
        })
        .collect();
    if was.ntp {
        cmds.push(
            Cmd::new("timedatectl")
                .args(["set-ntp", "true"])
                .sudo()
                .timeout(TIMEOUT),
        );
    }
    cmds
}

/// Moves a machine's real clock by `delta_ms`, computed on the node itself (no round trip
/// between reading and setting). The script is fixed; the delta travels as `$1`.
pub fn bump_real_cmd(delta_ms: i64) -> Cmd {
    // `date -s` runs one process start after the clock was read: two reads measure that
    // gap (about 1 ms on hardware, 200 ms in an emulated VM) and the target includes it.
    const SCRIPT: &str = "a=$(date +%s%N) && n=$(date +%s%N) && n=$((n + (n - a) + $1 * 1000000)) && \
                          date -u -s \"@$((n / 1000000000)).$(printf %09d $((n % 1000000000)))\" >/dev/null";
    Cmd::new("sh")
        .args(["-c", SCRIPT, "sh", &delta_ms.to_string()])
        .sudo()
        .timeout(TIMEOUT)
}

/// A strobe script run by `sh`: its own arguments `first`, then `$p` the period in seconds,
/// `$n` the most cycles and `$dur` the duration in milliseconds. Its time bound: the duration,
/// one more cycle, and slack for the last command.
fn strobe_sh(script: &str, first: &[&str], period_ms: u64, duration_ms: u64, cycles: u64) -> Cmd {
    Cmd::new("sh")
        .args(["-c", script, "sh"])
        .args(first.iter().copied())
        .args([
            format!("{:.3}", period_ms as f64 / 1000.0),
            cycles.to_string(),
            duration_ms.to_string(),
        ])
        .timeout(Duration::from_millis(duration_ms + 2 * period_ms) + TIMEOUT)
}

/// Shell lines shared by the strobe scripts: `$dur` milliseconds from now as an uptime deadline
/// in centiseconds, and `over` (true once it has passed). /proc/uptime is monotonic — the
/// strobed wall clock cannot be trusted — and read without a fork (`12345.67` → `1234567`).
const DEADLINE: &str = "read -r u _ </proc/uptime
end=$(( ${u%.*} * 100 + 1${u#*.} - 100 + dur / 10 ))
over() { read -r u _ </proc/uptime; [ $(( ${u%.*} * 100 + 1${u#*.} - 100 )) -ge \"$end\" ]; }";

/// A strobe on a faketime node, run on the node: write `on`, sleep `period`, write `off`,
/// sleep `period`, until `duration_ms` has passed (at most `cycles` times, at least once); it
/// ends on `off` and prints how many cycles it made. A slow node makes fewer flips rather
/// than overrunning. Fixed script; values travel as arguments.
pub fn strobe_faketime_cmd(
    path: &str,
    on: ClockState,
    off: ClockState,
    period_ms: u64,
    duration_ms: u64,
    cycles: u64,
) -> Cmd {
    let script = format!(
        "f=$1 on=$2 off=$3 p=$4 n=$5 dur=$6 i=0
{DEADLINE}
put() {{ printf '%s\\n' \"$1\" > \"$f.tmp\" && mv -f \"$f.tmp\" \"$f\"; }}
while [ \"$i\" -lt \"$n\" ]; do put \"$on\"; sleep \"$p\"; put \"$off\"; sleep \"$p\"; i=$((i+1)); over && break; done
put \"$off\"
echo \"$i\""
    );
    strobe_sh(
        &script,
        &[path, rc_content(on).trim(), rc_content(off).trim()],
        period_ms,
        duration_ms,
        cycles,
    )
}

/// A strobe of a machine's real clock, run on the node: `+delta_ms`, sleep, `-delta_ms`,
/// sleep, until `duration_ms` has passed (at most `cycles` times, at least once); it ends where
/// it started and prints how many cycles it made. Fixed script; values travel as arguments.
pub fn strobe_real_cmd(delta_ms: i64, period_ms: u64, duration_ms: u64, cycles: u64) -> Cmd {
    let script = format!(
        "d=$1 p=$2 n=$3 dur=$4 i=0
{DEADLINE}
bump() {{ a=$(date +%s%N) && t=$(date +%s%N) && t=$((t + (t - a) + $1 * 1000000)) && date -u -s \"@$((t / 1000000000)).$(printf %09d $((t % 1000000000)))\" >/dev/null; }}
while [ \"$i\" -lt \"$n\" ]; do bump \"$d\"; sleep \"$p\"; bump $((0 - d)); sleep \"$p\"; i=$((i+1)); over && break; done
echo \"$i\""
    );
    strobe_sh(
        &script,
        &[&delta_ms.to_string()],
        period_ms,
        duration_ms,
        cycles,
    )
    .sudo()
}

/// `t` moved by `offset_ms` (either sign).
pub fn shifted(t: SystemTime, offset_ms: f64) -> SystemTime {
    let d = Duration::from_secs_f64(offset_ms.abs() / 1000.0);
    if offset_ms >= 0.0 {
        t + d
    } else {
        t.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

/// Sets a machine's real clock to `t` (restoring it from the control node's clock).
pub fn set_real_cmd(t: SystemTime) -> Cmd {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    Cmd::new("date")
        .args([
            "-u",
            "-s",
            &format!("@{}.{:09}", d.as_secs(), d.subsec_nanos()),
        ])
        .sudo()
        .timeout(TIMEOUT)
}

/// Sets a machine's real clock to the control node's clock plus `offset_ms`, then measures
/// it and, when the command's own latency left it off by more than 5 ms (a slow node, a
/// long round trip), moves it by the difference on the node itself.
pub fn set_real_from_control(remote: &dyn Remote, offset_ms: f64) -> Result<(), RemoteError> {
    remote.exec_ok(&set_real_cmd(shifted(SystemTime::now(), offset_ms)))?;
    let err = measure_real_offset_ms(remote)? - offset_ms;
    if err.abs() > 5.0 {
        remote.exec_ok(&bump_real_cmd(-err.round() as i64))?;
    }
    Ok(())
}

/// `date +%s%N`: the node's wall clock in nanoseconds.
pub fn read_clock_cmd() -> Cmd {
    Cmd::new("date").arg("+%s%N").timeout(TIMEOUT)
}

/// Measures a node's real clock offset from the control node's, in milliseconds, correcting
/// for half the round trip.
pub fn measure_real_offset_ms(remote: &dyn Remote) -> Result<f64, RemoteError> {
    let before = SystemTime::now();
    let out = remote.exec_ok(&read_clock_cmd())?;
    let after = SystemTime::now();
    let node_ns: i128 = out.stdout.trim().parse().map_err(|_| RemoteError::Other {
        node: remote.node().name.clone(),
        msg: format!("`date +%s%N` printed {:?}", out.stdout.trim()),
    })?;
    let ns = |t: SystemTime| t.duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i128;
    let mid = (ns(before) + ns(after)) / 2;
    Ok((node_ns - mid) as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_file_lines_follow_libfaketime_syntax() {
        let s = |o, r| {
            rc_content(ClockState {
                offset_ms: o,
                rate: r,
            })
        };
        assert_eq!(s(2500.0, 1.0), "+2.500s\n");
        assert_eq!(s(-60000.0, 1.0), "-60.000s\n");
        assert_eq!(s(0.0, 1.0), "+0.000s\n");
        assert_eq!(s(1.0, 1.1), "+0.001s x1.1\n");
    }

    #[test]
    fn faketime_env_points_at_the_nodes_own_file() {
        let env = faketime_env("/var/lib/netsplit/n1/");
        assert!(env.contains(&("LD_PRELOAD".into(), LIBFAKETIME.into())));
        assert!(env.contains(&(
            "FAKETIME_TIMESTAMP_FILE".into(),
            "/var/lib/netsplit/n1/faketime.rc".into()
        )));
        assert!(env.contains(&("FAKETIME_NO_CACHE".into(), "1".into())));
    }

    #[test]
    fn file_writes_keep_the_path_out_of_the_script() {
        let c = write_file_cmd("/tmp/a b'c/faketime.rc", "+1.000s\n");
        assert_eq!(
            c.argv[2],
            "cat > \"$1.tmp.$$\" && mv -f \"$1.tmp.$$\" \"$1\""
        );
        assert_eq!(c.argv[4], "/tmp/a b'c/faketime.rc");
        assert_eq!(c.stdin.as_deref(), Some(&b"+1.000s\n"[..]));
    }

    #[test]
    fn strobe_scripts_take_every_value_as_an_argument() {
        let on = ClockState {
            offset_ms: 200.0,
            rate: 1.0,
        };
        let c = strobe_faketime_cmd("/w/n1/faketime.rc", on, ClockState::default(), 10, 1000, 50);
        assert_eq!(
            &c.argv[3..],
            [
                "sh",
                "/w/n1/faketime.rc",
                "+0.200s",
                "+0.000s",
                "0.010",
                "50",
                "1000"
            ]
        );
        assert!(!c.argv[2].contains("faketime.rc"));
        let r = strobe_real_cmd(-200, 10, 100, 5);
        assert_eq!(&r.argv[3..], ["sh", "-200", "0.010", "5", "100"]);
        assert!(r.sudo);
    }

    /// Runs a real-clock script against a fake `date` that reports a fixed time and records
    /// what it was asked to set, so the arithmetic is checked without touching the clock.
    fn with_fake_date(cmd: &Cmd) -> Vec<String> {
        with_fake_date_out(cmd).0
    }

    /// [`with_fake_date`], also giving the script's stdout.
    fn with_fake_date_out(cmd: &Cmd) -> (Vec<String>, String) {
        use crate::control::netns::NetnsRemote;
        use crate::control::{Node, Remote};
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let log = dir.join("set.log");
        let fake = format!(
            "#!/bin/sh\nif [ \"$1\" = +%s%N ]; then echo 1700000000123456789; else echo \"$*\" >> '{}'; fi\n",
            log.display()
        );
        let bin = dir.join("date");
        std::fs::write(&bin, fake).unwrap();
        std::fs::set_permissions(&bin, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let local = NetnsRemote::new(
            Node {
                name: "local".into(),
                host: "127.0.0.1".into(),
                ssh_port: 22,
                workdir: dir.display().to_string(),
            },
            None,
        );
        let mut c = cmd.clone();
        c.env
            .push(("PATH".into(), format!("{}:/usr/bin:/bin", dir.display())));
        let stdout = local.exec_ok(&c).unwrap().stdout;
        let out = std::fs::read_to_string(&log).unwrap_or_default();

        (out.lines().map(String::from).collect(), stdout)
    }

    #[test]
    fn strobes_stop_at_their_duration_however_many_cycles_were_allowed() {
        // A million 1 ms cycles allowed, 300 ms given: the deadline ends it, and the script
        // says how many cycles it made.
        let t0 = std::time::Instant::now();
        let (sets, out) = with_fake_date_out(&strobe_real_cmd(200, 1, 300, 1_000_000));
        let cycles: usize = out.trim().parse().unwrap();
        assert!(
            cycles >= 1 && sets.len() == 2 * cycles,
            "{cycles} {}",
            sets.len()
        );
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());

        let tmp = tempfile::tempdir().unwrap();
        let rc = tmp.path().join("faketime.rc");
        let on = ClockState {
            offset_ms: 200.0,
            rate: 1.0,
        };
        let cmd = strobe_faketime_cmd(
            rc.to_str().unwrap(),
            on,
            ClockState::default(),
            1,
            300,
            1_000_000,
        );
        let t0 = std::time::Instant::now();
        let (_, out) = with_fake_date_out(&cmd);
        assert!(out.trim().parse::<u64>().unwrap() >= 1, "{out:?}");
        assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
        assert_eq!(std::fs::read_to_string(&rc).unwrap(), "+0.000s\n");
    }

    #[test]
    fn real_clock_bump_sets_the_nodes_own_time_plus_delta() {
        assert_eq!(
            with_fake_date(&bump_real_cmd(-1500)),
            ["-u -s @1699999998.623456789"]
        );
        assert_eq!(
            with_fake_date(&bump_real_cmd(262_144)),
            ["-u -s @1700000262.267456789"]
        );
        // A strobe alternates +delta and -delta (each relative to the node's clock then).
        assert_eq!(
            with_fake_date(&strobe_real_cmd(200, 1, 60_000, 2)),
            [
                "-u -s @1700000000.323456789",
                "-u -s @1699999999.923456789",
                "-u -s @1700000000.323456789",
                "-u -s @1699999999.923456789",
            ]
        );
    }

    #[test]
    fn shifted_moves_both_ways() {
        let t = UNIX_EPOCH + Duration::from_secs(1000);
        assert_eq!(
            shifted(t, 1500.0),
            UNIX_EPOCH + Duration::from_millis(1_001_500)
        );
        assert_eq!(
            shifted(t, -250.0),
            UNIX_EPOCH + Duration::from_millis(999_750)
        );
        assert_eq!(shifted(t, 0.0), t);
    }

    #[test]
    fn time_sync_is_restored_as_it_was_found() {
        let was = parse_timesync("chrony\nntp\nbogus\nchrony\n");
        assert_eq!(
            was,
            TimeSync {
                ntp: true,
                units: vec!["chrony".into()]
            }
        );
        let lines: Vec<String> = restore_timesync_cmds(&was)
            .iter()
            .map(|c| c.shell_line(true))
            .collect();
        assert_eq!(
            lines,
            ["systemctl start chrony", "timedatectl set-ntp true"]
        );
        // Nothing was synchronising: nothing to restart.
        assert!(restore_timesync_cmds(&parse_timesync("")).is_empty());
        // The probe names every unit as an argument, never spliced into the script.
        let probe = timesync_state_cmd();
        assert_eq!(&probe.argv[4..], TIMESYNC_UNITS);
        assert!(!probe.argv[2].contains("chrony"));
    }

    #[test]
    fn real_clock_commands_are_argument_vectors() {
        let b = bump_real_cmd(-1500);
        assert_eq!(b.argv[0], "sh");
        assert_eq!(b.argv[4], "-1500");
        assert!(b.sudo);
        let t = UNIX_EPOCH + Duration::new(1_700_000_000, 5_000_000);
        assert_eq!(
            set_real_cmd(t).shell_line(true),
            "date -u -s @1700000000.005000000"
        );
        assert_eq!(
            stop_timesync_cmds()[1].shell_line(false),
            "sudo -n systemctl stop systemd-timesyncd"
        );
    }
}
