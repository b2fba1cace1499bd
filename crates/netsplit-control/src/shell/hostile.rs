//! Quoting is checked against a real `/bin/sh`: whatever the string, the shell must hand it
//! to the program as exactly one unchanged argument.
use super::quote;
use crate::Cmd;

const HOSTILE: &[&str] = &[
    "$(touch /tmp/netsplit-pwned)",
    "`touch /tmp/netsplit-pwned`",
    "a'b\"c",
    "'",
    "''",
    "\"",
    "\\",
    "\\'",
    "x\ny\n",
    "\n",
    " leading and trailing ",
    "\t",
    "; rm -rf /tmp/netsplit-nothing",
    "a && b || c | d & e",
    "$HOME ${HOME} $1 $@ $*",
    "*",
    "~",
    "-n",
    "--",
    "#comment",
    "!event",
    "<in >out 2>&1",
    "ünïcödé ✓ 日本",
    "",
];

fn through_sh(line: &str) -> Vec<u8> {
    let out = std::process::Command::new("/bin/sh")
        .arg("-c")
        .arg(line)
        .output()
        .expect("running /bin/sh");
    assert!(out.status.success(), "{line:?}: {out:?}");
    out.stdout
}

#[test]
fn every_hostile_string_survives_sh_as_one_argument() {
    for s in HOSTILE {
        let line = format!("printf %s {}", quote(s));
        assert_eq!(through_sh(&line), s.as_bytes(), "quoting {s:?} as {line}");
        // Exactly one argument: the count of "$@" is 1.
        let line = format!("set -- {}; printf %s $#", quote(s));
        assert_eq!(through_sh(&line), b"1", "{s:?}");
    }
    assert!(!std::path::Path::new("/tmp/netsplit-pwned").exists());
}

#[test]
fn shell_line_quotes_argv_env_and_cwd() {
    let cmd = Cmd::new("printf")
        .arg("%s|%s|%s")
        .arg("$(id)")
        .arg("it's")
        .env("X", "a b")
        .cwd("/")
        .arg("q");
    let line = cmd.shell_line(true);
    assert_eq!(
        line,
        "cd / && env 'X=a b' printf '%s|%s|%s' '$(id)' 'it'\\''s' q"
    );
    assert_eq!(through_sh(&line), b"$(id)|it's|q");
    let env_line = Cmd::new("sh")
        .args(["-c", "printf %s \"$X\""])
        .env("X", "$(x) 'y'")
        .shell_line(true);
    assert_eq!(through_sh(&env_line), b"$(x) 'y'");
}

#[test]
fn sudo_is_added_only_for_non_root_users() {
    let cmd = Cmd::new("id").sudo();
    assert_eq!(cmd.shell_line(true), "id");
    assert_eq!(cmd.shell_line(false), "sudo -n id");
    assert_eq!(Cmd::new("id").shell_line(false), "id");
}
