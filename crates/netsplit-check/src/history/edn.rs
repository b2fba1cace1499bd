//! A small EDN reader: just enough of Clojure's data notation to import Jepsen, Knossos and
//! Porcupine histories, converted straight to `serde_json::Value`.
//!
//! Why not a full EDN library: histories only use a handful of forms, and the importers want
//! JSON values (the project's own history format) plus the line each form starts on, for
//! one-line error messages. Conversions:
//! - keywords become strings without the colon (`:ok` → `"ok"`, `:a/b` → `"a/b"`);
//! - vectors, lists and sets (`#{}`) become arrays;
//! - maps become objects; keys are stringified (keyword name, string, or the JSON text of
//!   anything else);
//! - `nil` → `null`, `true`/`false` → booleans, other symbols → strings;
//! - integers (with an optional `N`), floats (optional `M`) and ratios become numbers;
//! - characters (`\a`, `\newline`) become one-character strings;
//! - tagged literals (`#inst "…"`, `#jepsen.history.Op{…}`) are tolerated: the tag is dropped;
//! - `#_ form` is discarded, `;` starts a comment, commas are whitespace.
//!
//! Limits (see [`super::limits`]): a form nests at most 128 levels and holds at most
//! [`MAX_VALUES`] values; integers must fit in 64 bits and other numbers must name one float
//! exactly (ratios included), because a rounded number could compare equal to another one.

use super::limits::{self, quote, MAX_DEPTH, MAX_VALUES};
use super::HistoryError;
use serde_json::{Map, Number, Value};

/// A cursor over EDN text that tracks the current (1-based) line.
pub struct Reader<'a> {
    src: &'a [u8],
    text: &'a str,
    pos: usize,
    line: usize,
    /// Open collections around the cursor, within the form being read.
    depth: usize,
    /// Values read so far in the current top-level form.
    values: usize,
}

fn is_delim(b: u8) -> bool {
    b.is_ascii_whitespace()
        || matches!(
            b,
            b',' | b'(' | b')' | b'[' | b']' | b'{' | b'}' | b'"' | b';'
        )
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Reader<'a> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        Reader {
            src: text.as_bytes(),
            text,
            pos: 0,
            line: 1,
            depth: 0,
            values: 0,
        }
    }

    /// The 1-based line of the cursor.
    pub fn line(&self) -> usize {
        self.line
    }

    fn err(&self, msg: impl Into<String>) -> HistoryError {
        HistoryError::parse(self.line, msg)
    }

    fn peek(&self) -> Option<u8> {
        self.src.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        if b == b'\n' {
            self.line += 1;
        }
        Some(b)
    }

    /// Skips whitespace, commas and `;` comments. Returns the next byte, if any.
    pub fn skip_ws(&mut self) -> Option<u8> {
        while let Some(b) = self.peek() {
            if b.is_ascii_whitespace() || b == b',' {
                self.bump();
            } else if b == b';' {
                while let Some(c) = self.peek() {
                    if c == b'\n' {
                        break;
                    }
                    self.pos += 1;
                }
            } else {
                return Some(b);
            }
        }
        None
    }

    /// True when only whitespace and comments remain.
    pub fn at_end(&mut self) -> bool {
        self.skip_ws().is_none()
    }

    /// If the next form opens a vector or list, consumes the opener and returns the closing
    /// byte to expect; otherwise consumes nothing.
    pub fn open_seq(&mut self) -> Option<u8> {
        match self.skip_ws()? {
            b'[' => {
                self.bump();
                Some(b']')
            }
            b'(' => {
                self.bump();
                Some(b')')
            }
            _ => None,
        }
    }

    /// Consumes `close` if it is the next non-blank byte. Errors at end of input.
    pub fn try_close(&mut self, close: u8) -> Result<bool, HistoryError> {
        match self.skip_ws() {
            None => Err(self.err(format!(
                "unexpected end of input: expected '{}'",
                close as char
            ))),
            Some(b) if b == close => {
                self.bump();
                Ok(true)
            }
            Some(_) => Ok(false),
        }
    }

    /// Reads one form (skipping leading whitespace and discarded `#_` forms). Each call may
    /// read at most [`MAX_VALUES`] values, nested at most [`MAX_DEPTH`] deep.
    pub fn read(&mut self) -> Result<Value, HistoryError> {
        self.depth = 0;
        self.values = 0;
        self.read_value()
    }

    fn read_value(&mut self) -> Result<Value, HistoryError> {
        loop {
            let Some(b) = self.skip_ws() else {
                return Err(self.err("unexpected end of input: expected a value"));
            };
            if b == b'#' && self.src.get(self.pos + 1) == Some(&b'_') {
                self.pos += 2;
                self.nested(Self::read_value)?;
                continue;
            }
            return self.read_form(b);
        }
    }

    /// Runs `f` one level deeper, refusing to go past [`MAX_DEPTH`] (the reader recurses, and a
    /// file nested 10,000 deep would overflow the stack).
    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, HistoryError>,
    ) -> Result<T, HistoryError> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(format!("nested more than {MAX_DEPTH} levels deep")));
        }
        self.depth += 1;
        let r = f(self);
        self.depth -= 1;
        r
    }

    fn read_form(&mut self, b: u8) -> Result<Value, HistoryError> {
        self.values += 1;
        if self.values > MAX_VALUES {
            return Err(self.err(format!(
                "more than {MAX_VALUES} values in one form (the most one event may hold)"
            )));
        }
        match b {
            b'[' => {
                self.bump();
                self.nested(|r| r.read_seq(b']')).map(Value::Array)
            }
            b'(' => {
                self.bump();
                self.nested(|r| r.read_seq(b')')).map(Value::Array)
            }
            b'{' => {
                self.bump();
                self.nested(Self::read_map)
            }
            b'"' => {
                self.bump();
                self.read_string().map(Value::String)
            }
            b':' => {
                self.bump();
                let tok = self.token();
                if tok.is_empty() {
                    return Err(self.err("empty keyword"));
                }
                Ok(Value::String(tok.trim_start_matches(':').to_string()))
            }
            b'\\' => {
                self.bump();
                self.read_char().map(Value::String)
            }
            b'#' => {
                self.bump();
                match self.peek() {
                    Some(b'{') => {
                        self.bump();
                        self.nested(|r| r.read_seq(b'}')).map(Value::Array)
                    }
                    Some(b'#') => {
                        // Symbolic values: ##Inf, ##-Inf, ##NaN. JSON has no such numbers.
                        self.bump();
                        Ok(Value::String(format!("##{}", self.token())))
                    }
                    Some(c) if !is_delim(c) => {
                        // A tagged literal: drop the tag, keep the value.
                        let tag = self.token();
                        if tag.is_empty() {
                            return Err(self.err("bad '#' dispatch"));
                        }
                        self.values -= 1; // the tag is not a value of its own
                        self.nested(Self::read_value)
                    }
                    _ => Err(self.err("bad '#' dispatch")),
                }
            }
            b')' | b']' | b'}' => Err(self.err(format!("unexpected '{}'", b as char))),
            _ => {
                let start_line = self.line;
                let tok = self.token();
                if tok.is_empty() {
                    let c = self.text[self.pos..].chars().next().unwrap_or('?');
                    return Err(self.err(format!("unexpected character '{}'", c.escape_debug())));
                }
                atom(tok).map_err(|m| HistoryError::parse(start_line, m))
            }
        }
    }

    /// A run of non-delimiter bytes.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if is_delim(b) {
                break;
            }
            self.pos += 1;
        }
        // Delimiters are ASCII, so `start..pos` lies on char boundaries.
        &self.text[start..self.pos]
    }

    fn read_seq(&mut self, close: u8) -> Result<Vec<Value>, HistoryError> {
        let open_line = self.line;
        let mut out = Vec::new();
        loop {
            match self.skip_ws() {
                None => {
                    return Err(self.err(format!(
                        "unexpected end of input: '{}' opened on line {open_line} is not closed",
                        close as char
                    )))
                }
                Some(b) if b == close => {
                    self.bump();
                    return Ok(out);
                }
                Some(b'#') if self.src.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.nested(Self::read_value)?;
                }
                Some(b) => out.push(self.read_form(b)?),
            }
        }
    }

    fn read_map(&mut self) -> Result<Value, HistoryError> {
        let items = self.read_seq(b'}')?;
        if items.len() % 2 != 0 {
            return Err(self.err("map literal has an odd number of forms"));
        }
        let mut map = Map::new();
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            map.insert(key_string(k), v);
        }
        Ok(Value::Object(map))
    }

    fn read_string(&mut self) -> Result<String, HistoryError> {
        let start_line = self.line;
        let mut out = String::new();
        loop {
            let start = self.pos;
            // Copy the run up to the next quote or backslash in one go (keeps UTF-8 intact).
            while let Some(b) = self.peek() {
                if b == b'"' || b == b'\\' {
                    break;
                }
                self.bump();
            }
            out.push_str(&self.text[start..self.pos]);
            match self.bump() {
                None => {
                    return Err(HistoryError::parse(
                        start_line,
                        "unterminated string (end of input)",
                    ))
                }
                Some(b'"') => return Ok(out),
                Some(_) => {
                    let Some(e) = self.bump() else {
                        return Err(self.err("unterminated string escape"));
                    };
                    match e {
                        b'n' => out.push('\n'),
                        b't' => out.push('\t'),
                        b'r' => out.push('\r'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'u' => {
                            let hex = self
                                .text
                                .get(self.pos..self.pos + 4)
                                .ok_or_else(|| self.err("short \\u escape"))?;
                            let code = u32::from_str_radix(hex, 16).map_err(|_| {
                                self.err(format!("bad \\u escape '{}'", quote(hex)))
                            })?;
                            self.pos += 4;
                            out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                        }
                        _ => {
                            // The escaped character, whole (it may be multibyte) and printable
                            // (it may be a newline: the error stays on one line).
                            let c = self.text[self.pos - 1..].chars().next().unwrap_or('?');
                            return Err(
                                self.err(format!("unknown string escape '\\{}'", c.escape_debug()))
                            );
                        }
                    }
                }
            }
        }
    }

    fn read_char(&mut self) -> Result<String, HistoryError> {
        // The first character is taken even if it is a delimiter (`\(`, `\ `).
        let rest = &self.text[self.pos..];
        let Some(first) = rest.chars().next() else {
            return Err(self.err("unexpected end of input after '\\'"));
        };
        self.pos += first.len_utf8();
        let more = self.token();
        if more.is_empty() {
            return Ok(first.to_string());
        }
        let name = format!("{first}{more}");
        Ok(match name.as_str() {
            "newline" => "\n".into(),
            "space" => " ".into(),
            "tab" => "\t".into(),
            "return" => "\r".into(),
            "backspace" => "\u{8}".into(),
            "formfeed" => "\u{c}".into(),
            n if n.starts_with('u') && n.len() == 5 => u32::from_str_radix(&n[1..], 16)
                .ok()
                .and_then(char::from_u32)
                .map(|c| c.to_string())
                .unwrap_or(name),
            _ => name,
        })
    }
}

/// A map key as a JSON object key: strings as they are, numbers and other values as JSON text.
fn key_string(k: Value) -> String {
    match k {
        Value::String(s) => s,
        Value::Null => "nil".to_string(),
        other => other.to_string(),
    }
}

/// A bare token: nil/true/false, a number, or a symbol (kept as a string).
fn atom(tok: &str) -> Result<Value, String> {
    match tok {
        "nil" => return Ok(Value::Null),
        "true" => return Ok(Value::Bool(true)),
        "false" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let b = tok.as_bytes();
    let numeric = b[0].is_ascii_digit()
        || (matches!(b[0], b'-' | b'+') && b.len() > 1 && b[1].is_ascii_digit());
    if !numeric {
        return Ok(Value::String(tok.to_string()));
    }
    number(tok)
}

/// An EDN number as a JSON number, exactly or not at all: integers (`N` allowed) must fit in
/// 64 bits, decimals (`M` allowed) must name one float exactly, ratios must be integers or
/// dyadic fractions of 64-bit integers.
fn number(tok: &str) -> Result<Value, String> {
    let bad = || format!("bad number {}", quote(tok));
    let t = tok.strip_prefix('+').unwrap_or(tok);
    let digits_only = |s: &str| {
        let d = s.strip_prefix('-').unwrap_or(s);
        !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit())
    };
    let int = t.strip_suffix('N').unwrap_or(t);
    if digits_only(int) {
        let d = int.strip_prefix('-').unwrap_or(int);
        if d.len() > 1 && d.starts_with('0') {
            // Clojure would read this as octal; a history has no business writing it.
            return Err(format!("{}: integers do not start with 0", bad()));
        }
        limits::check_number(int, true)?;
        return Ok(match int.parse::<i64>() {
            Ok(i) => Value::Number(i.into()),
            Err(_) => Value::Number(int.parse::<u64>().map_err(|_| bad())?.into()),
        });
    }
    if let Some((n, d)) = t.split_once('/') {
        if !digits_only(n) || !d.bytes().all(|c| c.is_ascii_digit()) || d.is_empty() {
            return Err(bad());
        }
        return ratio(n, d).ok_or_else(|| {
            format!(
                "ratio {} has no exact JSON number (netsplit compares values exactly)",
                quote(tok)
            )
        });
    }
    let dec = t.strip_suffix('M').unwrap_or(t);
    if !dec
        .bytes()
        .all(|c| c.is_ascii_digit() || matches!(c, b'-' | b'+' | b'.' | b'e' | b'E'))
    {
        return Err(bad());
    }
    limits::check_number(dec, false)?;
    let f = dec.parse::<f64>().map_err(|_| bad())?;
    Number::from_f64(f).map(Value::Number).ok_or_else(bad)
}

/// `n/d` as a JSON number when it is one exactly: an integer, or a fraction whose reduced
/// denominator is a power of two and whose numerator fits in a float's 53 bits.
fn ratio(n: &str, d: &str) -> Option<Value> {
    let n: i128 = n.parse().ok()?;
    let d: i128 = d.parse().ok()?;
    if d == 0 {
        return None;
    }
    let g = gcd(n.unsigned_abs(), d.unsigned_abs()).max(1) as i128;
    let (n, d) = (n / g, d / g);
    if d == 1 {
        return Some(Value::Number(if let Ok(i) = i64::try_from(n) {
            i.into()
        } else {
            u64::try_from(n).ok()?.into()
        }));
    }
    if d & (d - 1) != 0 || n.unsigned_abs() >= 1 << 53 || d > 1 << 60 {
        return None;
    }
    Number::from_f64(n as f64 / d as f64).map(Value::Number)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Parses exactly one form from `text` (trailing whitespace and comments allowed).
pub fn parse_str(text: &str) -> Result<Value, HistoryError> {
    let mut r = Reader::new(text);
    let v = r.read()?;
    if !r.at_end() {
        return Err(r.err("unexpected text after the value"));
    }
    Ok(v)
}

/// Parses every top-level form, each with the line it starts on.
pub fn parse_forms(text: &str) -> Result<Vec<(usize, Value)>, HistoryError> {
    let mut r = Reader::new(text);
    let mut out = Vec::new();
    while !r.at_end() {
        let line = r.line();
        out.push((line, r.read()?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_a_jepsen_op_map() {
        let v = parse_str(
            r#"{:type :ok, :f :txn, :value [[:append 1 2] [:r 1 nil]], :process 3, :time 12}"#,
        )
        .unwrap();
        assert_eq!(
            v,
            json!({"type":"ok","f":"txn","value":[["append",1,2],["r",1,null]],"process":3,"time":12})
        );
    }

    #[test]
    fn reads_strings_with_escapes_and_unicode() {
        assert_eq!(
            parse_str(r#""a\"b\\c\n\u00e9 ü""#).unwrap(),
            json!("a\"b\\c\né ü")
        );
    }

    #[test]
    fn tolerates_comments_commas_sets_tags_and_discards() {
        let v = parse_str(
            "; a history\n[#{1 2}, #inst \"2020\" #_ :gone (1.5 -3 7N 1/2 ##Inf) \\a true]",
        )
        .unwrap();
        assert_eq!(
            v,
            json!([[1, 2], "2020", [1.5, -3, 7, 0.5, "##Inf"], "a", true])
        );
    }

    #[test]
    fn reads_tagged_records_and_non_keyword_keys() {
        let v = parse_str("#jepsen.history.Op{:index 0 1 :one \"k\" 2 nil 3}").unwrap();
        assert_eq!(v, json!({"index":0,"1":"one","k":2,"nil":3}));
    }

    #[test]
    fn forms_carry_their_start_lines() {
        let f = parse_forms("{:a 1}\n\n{:b\n 2}\n").unwrap();
        assert_eq!(f, vec![(1, json!({"a":1})), (3, json!({"b":2}))]);
    }

    #[test]
    fn unclosed_vector_names_its_opening_line() {
        let e = parse_str("\n[1 2\n3").unwrap_err().to_string();
        assert!(e.contains("opened on line 2"), "{e}");
    }

    #[test]
    fn nesting_is_limited_instead_of_overflowing_the_stack() {
        let ok = format!("{}{}", "[".repeat(MAX_DEPTH), "]".repeat(MAX_DEPTH));
        assert!(parse_str(&ok).is_ok());
        for open in ["[", "(", "{:a ", "#{", "#_ ", "#tag "] {
            let deep = format!("\n{}", open.repeat(10_000));
            let e = parse_str(&deep).unwrap_err().to_string();
            assert_eq!(e, "line 2: nested more than 128 levels deep", "{open}");
        }
    }

    #[test]
    fn one_form_holds_a_bounded_number_of_values() {
        // The vector is a value too.
        let wide = format!("[{}]", "0 ".repeat(MAX_VALUES - 1));
        assert!(parse_str(&wide).is_ok());
        let wider = format!("[{}]", "0 ".repeat(MAX_VALUES));
        let e = parse_str(&wider).unwrap_err().to_string();
        assert!(e.contains("more than 1048576 values in one form"), "{e}");
        // The limit is per form: many forms of a history do not add up.
        let mut r = Reader::new("[0 0] [0 0]");
        r.read().unwrap();
        r.values = MAX_VALUES - 1;
        r.read().unwrap();
    }

    #[test]
    fn numbers_are_exact_or_refused() {
        assert_eq!(parse_str("18446744073709551615").unwrap(), json!(u64::MAX));
        assert_eq!(parse_str("-9223372036854775808N").unwrap(), json!(i64::MIN));
        for bad in [
            "18446744073709551616",
            "18446744073709551617N",
            "-9223372036854775809",
            "1.00000000000000001M",
            "1/3",
            "1e400",
            "017",
            "0x1F",
        ] {
            assert!(parse_str(bad).is_err(), "{bad}: {:?}", parse_str(bad));
        }
        let e = parse_str("[1 18446744073709551616]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("integer 18446744073709551616 does not fit in 64 bits"),
            "{e}"
        );
        assert_eq!(
            parse_str("[4/2 -3/4 0.25M 1e3]").unwrap(),
            json!([2, -0.75, 0.25, 1000.0])
        );
    }

    #[test]
    fn errors_stay_on_one_line_whatever_character_they_name() {
        // Found by cargo-fuzz: a backslash before a newline in a string.
        let e = parse_str("\"\\\n-2\\-[").unwrap_err().to_string();
        assert_eq!(e, "line 2: unknown string escape '\\\\n'");
        let e = parse_str("\"\\é\"").unwrap_err().to_string();
        assert_eq!(e, "line 1: unknown string escape '\\é'");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        assert_eq!(parse_str("\u{feff}[1]").unwrap(), json!([1]));
    }

    #[test]
    fn odd_map_and_stray_closer_are_errors() {
        for text in ["{:a}", "]", "\"abc", "1 2"] {
            assert!(parse_str(text).is_err(), "{text}");
        }
    }
}
