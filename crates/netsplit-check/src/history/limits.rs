//! What one event of a history may cost, and the checks every reader applies before it builds
//! values: nesting depth, number of values, line length, and numbers that would be rounded.
//!
//! Every reader (JSON Lines, EDN, Porcupine logs, `--initial`) goes through these, so a hostile
//! or broken file ends in one error line naming its line and column instead of a stack overflow,
//! an allocation of gigabytes, or — worst — a number silently rounded into another one (two
//! integers beyond 64 bits that round to the same float would compare equal, and a checker
//! would accept a read of a value nobody wrote). The limits are documented in
//! `docs/history-format.md`.

use std::fmt;

/// Nesting deeper than this is refused (serde_json's own recursion limit).
pub const MAX_DEPTH: usize = 128;

/// JSON values (scalars, arrays, objects, map keys) one event may hold. A value costs about 80
/// bytes once parsed, so one event costs at most about 80 MiB (plus its strings).
pub const MAX_VALUES: usize = 1 << 20;

/// Bytes one line of a line-oriented history (JSON Lines, Porcupine logs) may hold.
pub const MAX_LINE_BYTES: usize = 64 << 20;

/// Characters of input quoted in an error message at most.
pub const QUOTE_CHARS: usize = 100;

/// Input text for an error message: at most [`QUOTE_CHARS`] characters, on one line; longer
/// text is cut and says how long it was.
pub fn quote(s: &str) -> String {
    let one_line = |s: &str| s.replace(['\n', '\r'], " ");
    match s.char_indices().nth(QUOTE_CHARS) {
        None => one_line(s),
        Some((end, _)) => format!("{}… ({} bytes in all)", one_line(&s[..end]), s.len()),
    }
}

/// A message that may quote input (another library's, say): one line, and when longer than a
/// few quotes, its middle cut out so that both what it says and what it expected remain.
pub fn clip(msg: &str) -> String {
    let msg = msg.replace(['\n', '\r'], " ");
    let n = msg.chars().count();
    if n <= 3 * QUOTE_CHARS {
        return msg;
    }
    let head: String = msg.chars().take(2 * QUOTE_CHARS).collect();
    let tail: String = msg.chars().skip(n - QUOTE_CHARS / 2).collect();
    format!(
        "{head}… ({} characters cut) …{tail}",
        n - 2 * QUOTE_CHARS - QUOTE_CHARS / 2
    )
}

/// A JSON value for an error message, cut like [`quote`].
pub fn quote_value(v: &serde_json::Value) -> String {
    // Serialising a huge value only to cut it would cost what the limits try to avoid: write
    // into a sink that stops once it has enough.
    struct Cap(String);
    impl std::io::Write for Cap {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            if self.0.len() > 4 * QUOTE_CHARS + 8 {
                return Err(std::io::Error::other("enough"));
            }
            self.0.push_str(&String::from_utf8_lossy(b));
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut cap = Cap(String::new());
    let complete = serde_json::to_writer(&mut cap, v).is_ok();
    let s = cap.0;
    match s.char_indices().nth(QUOTE_CHARS) {
        None if complete => s,
        None => format!("{s}…"),
        Some((end, _)) => format!("{}…", &s[..end]),
    }
}

/// A field of an op for an error message: its value cut like [`quote_value`], or `nothing` when
/// the op has no such field.
pub fn quote_field(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "nothing".to_string(),
        Some(v) => quote_value(v),
    }
}

/// Why a number literal is refused: it would not survive as the number it says.
pub fn check_number(lit: &str, integer: bool) -> Result<(), String> {
    if integer {
        let ok = if lit.starts_with('-') {
            lit.parse::<i64>().is_ok()
        } else {
            lit.trim_start_matches('+').parse::<u64>().is_ok()
        };
        if ok {
            return Ok(());
        }
        return Err(format!(
            "integer {} does not fit in 64 bits (netsplit compares values exactly and would \
             have to round it; write it as a string)",
            quote(lit)
        ));
    }
    let f: f64 = lit
        .trim_start_matches('+')
        .parse()
        .map_err(|_| format!("bad number {}", quote(lit)))?;
    if !f.is_finite() {
        return Err(format!("number {} is out of range", quote(lit)));
    }
    let Some(written) = decimal(lit) else {
        return Err(format!("bad number {}", quote(lit)));
    };
    // The shortest decimal that reads back as `f` is what `{:e}` prints. The literal names
    // exactly one float, and no other accepted literal names the same one, iff it is that
    // decimal (any literal of 15 significant digits or fewer is).
    if decimal(&format!("{f:e}")) == Some(written) {
        Ok(())
    } else {
        Err(format!(
            "number {} cannot be represented exactly (it would be rounded to {f:e}; netsplit \
             compares values exactly — write it as a string)",
            quote(lit)
        ))
    }
}

/// A decimal literal as (negative, significant digits, exponent of the last digit), with
/// leading and trailing zeros removed; zero is `(negative, "", 0)`.
fn decimal(lit: &str) -> Option<(bool, String, i64)> {
    let (neg, rest) = match lit.as_bytes().first()? {
        b'-' => (true, &lit[1..]),
        b'+' => (false, &lit[1..]),
        _ => (false, lit),
    };
    let (mantissa, exp) = match rest.find(['e', 'E']) {
        Some(p) => (&rest[..p], rest[p + 1..].parse::<i64>().ok()?),
        None => (rest, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let all: String = format!("{int}{frac}");
    let digits = all.trim_start_matches('0');
    let trimmed = digits.trim_end_matches('0');
    let exp = exp
        .checked_sub(frac.len() as i64)?
        .checked_add((digits.len() - trimmed.len()) as i64)?;
    if trimmed.is_empty() {
        return Some((neg, String::new(), 0));
    }
    Some((neg, trimmed.to_string(), exp))
}

/// Where in a line a check failed (1-based column, in characters) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError {
    /// 1-based column of the problem, in characters.
    pub column: usize,
    /// What the problem is.
    pub msg: String,
}

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "column {}: {}", self.column, self.msg)
    }
}

/// Checks JSON text before it is parsed: nesting at most [`MAX_DEPTH`], at most
/// [`MAX_VALUES`] values, every number exact ([`check_number`]). Malformed JSON passes (the
/// parser names what is wrong); only what the parser would accept at a cost, or round, is
/// refused here.
pub fn scan_json(text: &str) -> Result<(), ScanError> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut values = 0usize;
    let mut i = 0;
    let column = |at: usize| text[..at].chars().count() + 1;
    let mut count = |at: usize| {
        values += 1;
        if values > MAX_VALUES {
            Err(ScanError {
                column: column(at),
                msg: format!(
                    "more than {MAX_VALUES} values in one event (the most one event may hold)"
                ),
            })
        } else {
            Ok(())
        }
    };
    while i < b.len() {
        match b[i] {
            b'"' => {
                count(i)?;
                i += 1;
                while i < b.len() && b[i] != b'"' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'[' | b'{' => {
                count(i)?;
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(ScanError {
                        column: column(i),
                        msg: format!("nested more than {MAX_DEPTH} levels deep"),
                    });
                }
                i += 1;
            }
            b']' | b'}' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                count(i)?;
                let start = i;
                let mut integer = true;
                while i < b.len() && matches!(b[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
                {
                    integer &= b[i].is_ascii_digit() || (i == start && b[i] == b'-');
                    i += 1;
                }
                let lit = &text[start..i];
                // Leave malformed literals ("-", "1.", "01") to the parser's own message.
                let well_formed = decimal(lit).is_some()
                    && lit.bytes().last().is_some_and(|c| c.is_ascii_digit());
                if well_formed {
                    check_number(lit, integer).map_err(|msg| ScanError {
                        column: column(start),
                        msg,
                    })?;
                }
            }
            b't' | b'f' | b'n' => {
                count(i)?;
                while i < b.len() && b[i].is_ascii_alphabetic() {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_beyond_64_bits_are_refused() {
        assert!(check_number("18446744073709551615", true).is_ok());
        assert!(check_number("-9223372036854775808", true).is_ok());
        let e = check_number("18446744073709551616", true).unwrap_err();
        assert!(e.contains("does not fit in 64 bits"), "{e}");
        assert!(check_number("-9223372036854775809", true).is_err());
    }

    #[test]
    fn floats_must_name_one_float() {
        for ok in [
            "0.1",
            "1.5",
            "0.30000000000000004",
            "1e20",
            "1E+20",
            "-0.0",
            "0.0",
            "2.5e-3",
            "100.000",
            "123456789012345.0",
            "5e-324",
            "1.7976931348623157e308",
        ] {
            assert_eq!(check_number(ok, false), Ok(()), "{ok}");
        }
        for bad in [
            "0.1000000000000000055511151231257827",
            "18446744073709551616.0",
            "1.00000000000000001",
            "1e-400",
            "1e400",
            "9007199254740993.0",
        ] {
            assert!(check_number(bad, false).is_err(), "{bad}");
        }
    }

    #[test]
    fn scan_counts_values_and_depth_and_checks_numbers() {
        assert_eq!(scan_json(r#"{"a":[1,2.5,"x\"]",true,null]}"#), Ok(()));
        let deep = "[".repeat(MAX_DEPTH + 1);
        let e = scan_json(&deep).unwrap_err();
        assert_eq!(e.column, MAX_DEPTH + 1);
        let wide = format!("[{}0]", "0,".repeat(MAX_VALUES));
        assert!(scan_json(&wide)
            .unwrap_err()
            .msg
            .contains("values in one event"));
        let e = scan_json(r#"{"value":18446744073709551617}"#).unwrap_err();
        assert_eq!(e.column, 10);
        // Malformed numbers are the parser's to name.
        assert_eq!(scan_json("[01, -, 1.]"), Ok(()));
    }

    #[test]
    fn quotes_are_cut() {
        let long = "x".repeat(10_000);
        let q = quote(&long);
        assert!(q.chars().count() < QUOTE_CHARS + 30, "{q}");
        assert!(q.ends_with("(10000 bytes in all)"), "{q}");
        assert_eq!(quote("a\nb"), "a b");
        let v = serde_json::Value::Array(vec![serde_json::Value::from(12345); 100_000]);
        let q = quote_value(&v);
        assert!(q.len() < QUOTE_CHARS + 10 && q.ends_with('…'), "{q}");
        assert_eq!(quote_value(&serde_json::json!([1, 2])), "[1,2]");
        let m = format!("invalid type: string \"{long}\", expected u64");
        let c = clip(&m);
        assert!(c.len() < 400 && c.ends_with("\", expected u64"), "{c}");
        assert_eq!(clip("short"), "short");
    }
}
