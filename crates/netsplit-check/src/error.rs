//! Exit codes and the errors that choose them.
//!
//! `main` prints an error's chain on one line and maps it to an exit code: a [`BadInput`]
//! anywhere in the chain (malformed plan or history, unknown name, unreachable node, wrong key)
//! is 254; anything else is a harness error, 255. Verdicts map to 0/1/2 via
//! `Validity::exit_code`.

/// Bad usage or bad input: the user can fix it. Exit 254.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BadInput(pub String);

/// Shorthand: an `anyhow::Error` that exits 254.
pub fn bad_input(msg: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(BadInput(msg.into()))
}

/// The verdict "unknown" (also: a run interrupted twice, healed but never checked).
pub const EXIT_UNKNOWN: u8 = 2;
/// Exit code for bad usage or bad input the user can fix (see [`BadInput`]).
pub const EXIT_BAD_INPUT: u8 = 254;
/// Exit code for a failure of the harness itself: anything that is not [`BadInput`].
pub const EXIT_HARNESS: u8 = 255;

/// The exit code for an error: 254 if any cause is [`BadInput`], else 255.
pub fn exit_code_for(err: &anyhow::Error) -> u8 {
    if err.chain().any(|c| c.downcast_ref::<BadInput>().is_some()) {
        EXIT_BAD_INPUT
    } else {
        EXIT_HARNESS
    }
}

/// The error and its causes on one line: `outer: inner: root`. A cause that repeats what its
/// context ends with is said once: remote errors always begin with their node
/// (`n1: \`etcd\` exited 1`), and a context such as `starting etcd on n1` names it too, which
/// would read `starting etcd on n1: n1: \`etcd\` exited 1`.
pub fn one_line(err: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in err.chain() {
        let mut s = c.to_string().replace(['\n', '\r'], " ");
        if let Some(subject) = parts
            .last()
            .and_then(|p| p.rsplit(' ').next())
            .filter(|w| !w.is_empty())
        {
            if let Some(rest) = s.strip_prefix(subject).and_then(|r| r.strip_prefix(": ")) {
                s = rest.to_string();
            }
        }
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    cut_line(&parts.join(": "), MAX_LINE_CHARS)
}

/// The longest error line [`one_line`] gives, in characters: whatever an error quotes (a 200 KB
/// plan line, a client's output) is cut to keep the line readable.
pub const MAX_LINE_CHARS: usize = 500;

/// `s` cut to at most `max` characters (plus " …" when cut), on a character boundary, with
/// control characters (escape sequences, NUL) shown as `?` so that a line quoted from a file
/// or a program cannot move the terminal's cursor or change its colours.
pub fn cut_line(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str(" …");
    }
    out
}

#[cfg(test)]
mod tests;
