//! Reading histories in any supported format: the project's JSON Lines, Jepsen/Knossos EDN, and
//! Porcupine's etcd and kv logs. [`detect`] guesses the format from the text; [`parse`] turns
//! text into events. No file I/O here: the CLI reads files and hands over their text.
//!
//! Jepsen EDN follows Knossos' conventions (see `docs/history-format.md`): `:fail` did not
//! happen (kept as `fail`, checkers drop it), `:info` never returns, `:process :nemesis` events are
//! nemesis events, and an `:ok` `:read` whose value is `nil` (or `[k nil]`) means "value unknown":
//! it is imported as an `info` completion (error `"nil read: value unknown"`), which imposes no
//! constraint — exactly Knossos' register semantics.

use super::limits::{quote_field, quote_value as short};
use super::{
    edn, map_process, map_type, porcupine, read_jsonl_str, HistoryError, Op, OpType, Process,
    ReadReport,
};
use serde_json::Value;

/// A history format, as named by `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Detect from the text ([`detect`]).
    Auto,
    /// The project's JSON Lines (docs/history-format.md).
    Jsonl,
    /// Jepsen/Knossos EDN: a vector or list of op maps, or one map per line.
    JepsenEdn,
    /// Jepsen's 2015 etcd logs as published with Porcupine.
    PorcupineEtcd,
    /// Porcupine's key-value logs.
    PorcupineKv,
}

impl Format {
    /// The `--format` name.
    pub fn name(self) -> &'static str {
        match self {
            Format::Auto => "auto",
            Format::Jsonl => "jsonl",
            Format::JepsenEdn => "jepsen-edn",
            Format::PorcupineEtcd => "porcupine-etcd",
            Format::PorcupineKv => "porcupine-kv",
        }
    }
}

// Parsing: the format `--format` names (`json` and `edn` are short for `jsonl` and
// `jepsen-edn`), or an error listing the names.
crate::display_and_from_str!(Format, Format::name, |s| {
    Ok(match s {
        "auto" => Format::Auto,
        "jsonl" | "json" => Format::Jsonl,
        "jepsen-edn" | "edn" => Format::JepsenEdn,
        "porcupine-etcd" => Format::PorcupineEtcd,
        "porcupine-kv" => Format::PorcupineKv,
        other => {
            return Err(format!(
                "unknown format '{other}' (expected auto, jsonl, jepsen-edn, porcupine-etcd \
                 or porcupine-kv)"
            ))
        }
    })
});

/// Guesses the format from the first meaningful line. Empty text is `Jsonl` (no events).
pub fn detect(text: &str) -> Format {
    let first = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty() && !l.starts_with(';'));
    let Some(line) = first else {
        return Format::Jsonl;
    };
    if line.starts_with("{\"") || line == "{" {
        return Format::Jsonl;
    }
    if line.starts_with('{') && line.contains(":key") && !line.contains(":index") {
        return Format::PorcupineKv;
    }
    if line.starts_with(['{', '[', '(', '#']) {
        return Format::JepsenEdn;
    }
    let body = line.find(" - ").map_or(line, |p| &line[p + 3..]);
    let mut fields = body.split_whitespace();
    let _process = fields.next();
    if fields
        .next()
        .is_some_and(|t| matches!(t, ":invoke" | ":ok" | ":fail" | ":info"))
    {
        return Format::PorcupineEtcd;
    }
    Format::Jsonl
}

/// Events read from text, with the line each event came from.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The events, reindexed densely from 0.
    pub ops: Vec<Op>,
    /// What the reader noticed besides the events (a truncated last line).
    pub report: ReadReport,
    /// `lines[i]` is the 1-based line of `ops[i]` in the text.
    pub lines: Vec<usize>,
    /// The format actually read (never `Auto`).
    pub format: Option<Format>,
}

/// Parses `text` in `format` (detecting it for `Auto`). Events are reindexed densely from 0.
pub fn parse(text: &str, format: Format) -> Result<(Vec<Op>, ReadReport), HistoryError> {
    parse_with_lines(text, format).map(|i| (i.ops, i.report))
}

/// Like [`parse`], also returning the line of every event (for error messages that point into
/// the file) and the format that was read.
pub fn parse_with_lines(text: &str, format: Format) -> Result<Imported, HistoryError> {
    // A byte order mark (some Windows editors write one) is not part of any format.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let format = match format {
        Format::Auto => detect(text),
        f => f,
    };
    let (mut ops, report, lines) = match format {
        Format::Auto | Format::Jsonl => read_jsonl_str(text)?,
        Format::JepsenEdn => {
            let (ops, lines) = parse_jepsen_edn(text)?;
            (ops, ReadReport::default(), lines)
        }
        Format::PorcupineEtcd => {
            let (ops, lines) = porcupine::parse_etcd(text)?;
            (ops, ReadReport::default(), lines)
        }
        Format::PorcupineKv => {
            let (ops, lines) = porcupine::parse_kv(text)?;
            (ops, ReadReport::default(), lines)
        }
    };
    super::reindex(&mut ops);
    Ok(Imported {
        ops,
        report,
        lines,
        format: Some(format),
    })
}

/// A Jepsen EDN history: one top-level vector/list of op maps, or op maps one after another.
fn parse_jepsen_edn(text: &str) -> Result<(Vec<Op>, Vec<usize>), HistoryError> {
    let mut r = edn::Reader::new(text);
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    if let Some(close) = r.open_seq() {
        while !r.try_close(close)? {
            r.skip_ws();
            let line = r.line();
            let v = r.read()?;
            ops.push(edn_op(v, line)?);
            lines.push(line);
        }
        if !r.at_end() {
            return Err(HistoryError::parse(
                r.line(),
                "unexpected text after the history vector",
            ));
        }
    } else {
        while !r.at_end() {
            let line = r.line();
            let v = r.read()?;
            ops.push(edn_op(v, line)?);
            lines.push(line);
        }
    }
    Ok((ops, lines))
}

/// One Jepsen op map as an event, applying Knossos' nil-read convention.
fn edn_op(v: Value, line: usize) -> Result<Op, HistoryError> {
    let Value::Object(mut m) = v else {
        return Err(HistoryError::parse(
            line,
            format!(
                "expected an op map {{:type … :f … :process …}}, got {}",
                short(&v)
            ),
        ));
    };
    let process = map_process(&m, line, "a non-negative integer or :nemesis")?;
    let kind = map_type(&m, line)?;
    let f = match m.get("f") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None if process == Process::Nemesis => String::new(),
        Some(other) if process == Process::Nemesis => other.to_string(),
        other => {
            return Err(HistoryError::parse(
                line,
                format!("expected :f to be a keyword, got {}", quote_field(other)),
            ))
        }
    };
    let value = m.remove("value").unwrap_or(Value::Null);
    let mut op = Op::new(process, kind, f, value);
    if let Some(t) = m.get("time").and_then(Value::as_u64) {
        op.time = t;
    }
    match m.get("node") {
        Some(Value::String(s)) => op.node = Some(s.clone()),
        Some(Value::Null) | None => {}
        Some(other) => op.node = Some(other.to_string()),
    }
    match m.get("error") {
        Some(Value::String(s)) => op.error = Some(s.clone()),
        Some(Value::Null) | None => {}
        Some(other) => op.error = Some(other.to_string()),
    }
    let nil_read = op.process.is_client()
        && op.kind == OpType::Ok
        && op.f == "read"
        && match &op.value {
            Value::Null => true,
            Value::Array(a) => a.len() == 2 && a[1].is_null(),
            _ => false,
        };
    if nil_read {
        op.kind = OpType::Info;
        op.error
            .get_or_insert_with(|| "nil read: value unknown".to_string());
    }
    Ok(op)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn detects_each_format() {
        assert_eq!(detect(""), Format::Jsonl);
        assert_eq!(
            detect("{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n"),
            Format::Jsonl
        );
        assert_eq!(detect("; comment\n[{:process 0}]"), Format::JepsenEdn);
        assert_eq!(
            detect("{:process 0, :type :invoke, :f :read, :value nil}"),
            Format::JepsenEdn
        );
        assert_eq!(
            detect("{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}"),
            Format::PorcupineKv
        );
        assert_eq!(
            detect("INFO  jepsen.util - 0\t:invoke\t:read\tnil"),
            Format::PorcupineEtcd
        );
    }

    #[test]
    fn jepsen_vector_history_with_txns_and_nemesis() {
        let text =
            "[{:type :invoke, :f :txn, :value [[:append 1 2] [:r 1 nil]], :process 0, :time 5}\n \
                    {:type :info, :f :start, :value nil, :process :nemesis}\n \
                    {:type :ok, :f :txn, :value [[:append 1 2] [:r 1 [2]]], :process 0}]";
        let i = parse_with_lines(text, Format::Auto).unwrap();
        assert_eq!(i.format, Some(Format::JepsenEdn));
        assert_eq!(i.ops.len(), 3);
        assert_eq!(i.ops[0].value, json!([["append", 1, 2], ["r", 1, null]]));
        assert_eq!(i.ops[0].time, 5);
        assert_eq!(i.ops[1].process, Process::Nemesis);
        assert_eq!(i.ops[2].index, 2);
        assert_eq!(i.lines, vec![1, 2, 3]);
    }

    #[test]
    fn knossos_nil_read_becomes_unknown() {
        let text = "{:process 0 :type :invoke :f :read :value nil}\n\
                    {:process 0 :type :ok :f :read :value nil}\n\
                    {:process 1 :type :invoke :f :read :value [3 nil]}\n\
                    {:process 1 :type :ok :f :read :value [3 nil]}\n\
                    {:process 2 :type :ok :f :read :value 4}\n";
        let (ops, _) = parse(text, Format::JepsenEdn).unwrap();
        assert_eq!(ops[1].kind, OpType::Info);
        assert_eq!(ops[3].kind, OpType::Info);
        assert_eq!(ops[4].kind, OpType::Ok);
    }

    #[test]
    fn edn_op_without_type_names_its_line() {
        let text = "[{:process 0 :type :invoke :f :read}\n\n {:process 0 :f :read}]";
        let e = parse(text, Format::JepsenEdn).unwrap_err().to_string();
        assert!(e.starts_with("line 3: expected :type"), "{e}");
    }

    #[test]
    fn a_byte_order_mark_is_accepted_in_every_format() {
        for (text, format) in [
            (
                "\u{feff}{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n",
                Format::Jsonl,
            ),
            (
                "\u{feff}[{:process 0 :type :invoke :f :read}]",
                Format::JepsenEdn,
            ),
            (
                "\u{feff}INFO  jepsen.util - 0\t:invoke\t:read\tnil\n",
                Format::PorcupineEtcd,
            ),
        ] {
            let i = parse_with_lines(text, Format::Auto).unwrap();
            assert_eq!((i.format, i.ops.len()), (Some(format), 1), "{text:?}");
        }
    }

    #[test]
    fn edn_history_nested_10000_deep_is_an_error() {
        for text in [
            format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
            format!(
                "[{{:process 0 :type :invoke :f :write :value {}}}]",
                "[".repeat(10_000)
            ),
        ] {
            let e = parse(&text, Format::JepsenEdn).unwrap_err().to_string();
            assert!(e.contains("nested more than 128 levels deep"), "{e}");
        }
    }

    #[test]
    fn edn_process_must_be_a_client_number_or_the_nemesis() {
        for (process, got) in [("-1", "-1"), ("1.5", "1.5"), ("\"n1\"", "\"n1\"")] {
            let text = format!("{{:process {process} :type :invoke :f :read :value nil}}");
            let e = parse(&text, Format::JepsenEdn).unwrap_err().to_string();
            assert_eq!(
                e,
                format!(
                    "line 1: expected :process to be a non-negative integer or :nemesis, got {got}"
                )
            );
        }
    }

    #[test]
    fn jsonl_lines_skip_blank_lines() {
        let text = "\n{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n\n{\"process\":0,\"type\":\"ok\",\"f\":\"read\",\"value\":1}\n";
        let i = parse_with_lines(text, Format::Jsonl).unwrap();
        assert_eq!(i.lines, vec![2, 4]);
    }
}
