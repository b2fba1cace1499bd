//! The history: the one record of what every client and the nemesis did during a run.
//!
//! This module owns the event type ([`Op`]), its JSON Lines form (docs/history-format.md), the
//! pairing of invocations with completions ([`pair`], [`pair_positions`]), and the importers of
//! foreign formats (`edn`, `porcupine`). It does no I/O of its own beyond reading from and writing to the
//! `BufRead`/`Write` values it is handed, so checkers and tests can feed it anything.

pub mod edn;
pub mod import;
pub mod limits;
mod porcupine;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;
use std::io::{BufRead, Read, Write};

/// Who performed an operation: a client process (single-threaded by definition) or the nemesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Process {
    /// Client process number `n`: one logical client, at most one operation open at a time.
    Client(u64),
    /// The fault injector; its events are fault starts and stops, never paired.
    Nemesis,
}

impl Process {
    /// True for a client process, false for the nemesis.
    pub fn is_client(&self) -> bool {
        matches!(self, Process::Client(_))
    }
}

impl fmt::Display for Process {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Process::Client(p) => write!(f, "{p}"),
            Process::Nemesis => f.write_str("nemesis"),
        }
    }
}

impl Serialize for Process {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Process::Client(p) => s.serialize_u64(*p),
            Process::Nemesis => s.serialize_str("nemesis"),
        }
    }
}

impl<'de> Deserialize<'de> for Process {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match &v {
            Value::Number(n) if n.as_u64().is_some() => Ok(Process::Client(n.as_u64().unwrap())),
            Value::String(s) if s == "nemesis" => Ok(Process::Nemesis),
            _ => Err(serde::de::Error::custom(format!(
                "process must be a non-negative integer or \"nemesis\", got {}",
                limits::quote_value(&v)
            ))),
        }
    }
}

/// The kind of an event: an invocation, or one of the three completions.
///
/// `ok`: the operation happened. `fail`: it certainly did not. `info`: unknown — it may take
/// effect at any time after its invocation, or never.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpType {
    /// A client started the operation; its completion follows later in the history.
    Invoke,
    /// The operation took effect, and `value` is its result.
    Ok,
    /// The operation certainly did not take effect.
    Fail,
    /// Outcome unknown (timeout, crash): it may have taken effect at any time after its invocation, or never.
    Info,
}

impl OpType {
    /// The type of that name (`invoke`, `ok`, `fail` or `info`, as it is displayed).
    pub fn from_name(s: &str) -> Option<OpType> {
        Some(match s {
            "invoke" => OpType::Invoke,
            "ok" => OpType::Ok,
            "fail" => OpType::Fail,
            "info" => OpType::Info,
            _ => return None,
        })
    }
}

impl fmt::Display for OpType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OpType::Invoke => "invoke",
            OpType::Ok => "ok",
            OpType::Fail => "fail",
            OpType::Info => "info",
        })
    }
}

/// One event of a history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Op {
    /// Dense position in the history, from 0.
    #[serde(default)]
    pub index: u64,
    /// Nanoseconds since run start on the control node's monotonic clock (latency, plots).
    #[serde(default)]
    pub time: u64,
    /// Who performed the event (serialised as a number, or `"nemesis"`).
    pub process: Process,
    /// Invocation or which completion (serialised as `type`).
    #[serde(rename = "type")]
    pub kind: OpType,
    /// The operation's name, e.g. `read`, `write`, `cas`, `txn`; for the nemesis, the fault.
    pub f: String,
    /// The request (on an invocation) or the result (on a completion); `null` when absent.
    #[serde(default)]
    pub value: Value,
    /// The node the client talked to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// The client's error text for a `fail` or `info` completion, when there was one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Op {
    /// A new event with no node or error; `index` and `time` are set by whoever records it.
    pub fn new(process: Process, kind: OpType, f: impl Into<String>, value: Value) -> Op {
        Op {
            index: 0,
            time: 0,
            process,
            kind,
            f: f.into(),
            value,
            node: None,
            error: None,
        }
    }
}

/// Why a history could not be read. Carries the 1-based line for the one-line CLI error.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// A malformed line.
    #[error("line {line}: {msg}")]
    Parse {
        /// The 1-based line of the text.
        line: usize,
        /// What is wrong with it.
        msg: String,
    },
    /// The underlying reader failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl HistoryError {
    /// A [`HistoryError::Parse`] at 1-based `line`.
    pub fn parse(line: usize, msg: impl Into<String>) -> HistoryError {
        HistoryError::Parse {
            line,
            msg: msg.into(),
        }
    }
}

/// What a reader found besides the events: currently, a truncated last line (a writer killed
/// mid-line), which is reported but not fatal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadReport {
    /// The 1-based number of the last line when it was incomplete (no trailing newline) and dropped; `None` otherwise.
    pub truncated_last_line: Option<usize>,
}

/// Streams a JSON Lines history. Blank lines are skipped, and so is a UTF-8 byte order mark at
/// the start. A malformed line is an error naming its line — except the very last line when it
/// does not end in a newline, which is what a killed writer leaves: that one is dropped and
/// reported in [`ReadReport`]. A line may hold at most [`limits::MAX_LINE_BYTES`] bytes and one
/// event at most [`limits::MAX_VALUES`] values, nested at most [`limits::MAX_DEPTH`] deep; an
/// integer beyond 64 bits, or a decimal that no float represents exactly, is an error (it
/// would be rounded, and could then compare equal to another number).
pub fn read_jsonl<R: BufRead>(mut r: R) -> Result<(Vec<Op>, ReadReport), HistoryError> {
    let mut ops = Vec::new();
    let mut report = ReadReport::default();
    let mut buf = Vec::new();
    let mut line_no = 0;
    loop {
        buf.clear();
        let n = r
            .by_ref()
            .take(limits::MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let complete = buf.ends_with(b"\n");
        if !complete && buf.len() > limits::MAX_LINE_BYTES {
            return Err(line_too_long(line_no));
        }
        let text = match std::str::from_utf8(&buf) {
            Ok(t) => t,
            Err(_) if !complete => {
                report.truncated_last_line = Some(line_no);
                break;
            }
            Err(e) => {
                let col = String::from_utf8_lossy(&buf[..e.valid_up_to()])
                    .chars()
                    .count()
                    + 1;
                return Err(HistoryError::parse(
                    line_no,
                    format!("column {col}: not valid UTF-8"),
                ));
            }
        };
        match parse_jsonl_line(text, line_no == 1) {
            Line::Blank => {}
            Line::Op(op) => ops.push(*op),
            Line::Bad(_) if !complete => {
                report.truncated_last_line = Some(line_no);
                break;
            }
            Line::Bad(msg) => return Err(HistoryError::parse(line_no, msg)),
        }
    }
    Ok((ops, report))
}

/// Like [`read_jsonl`] over text already in memory, also returning the 1-based line of every
/// event.
pub fn read_jsonl_str(text: &str) -> Result<(Vec<Op>, ReadReport, Vec<usize>), HistoryError> {
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    let mut report = ReadReport::default();
    for (i, raw) in text.split_inclusive('\n').enumerate() {
        let line_no = i + 1;
        let complete = raw.ends_with('\n');
        if raw.len() > limits::MAX_LINE_BYTES + usize::from(complete) {
            return Err(line_too_long(line_no));
        }
        match parse_jsonl_line(raw, line_no == 1) {
            Line::Blank => {}
            Line::Op(op) => {
                ops.push(*op);
                lines.push(line_no);
            }
            Line::Bad(_) if !complete => {
                report.truncated_last_line = Some(line_no);
                break;
            }
            Line::Bad(msg) => return Err(HistoryError::parse(line_no, msg)),
        }
    }
    Ok((ops, report, lines))
}

/// The `:process` of an op map read from EDN (a Jepsen history or a Porcupine kv log): a
/// client's number or `:nemesis`; else an error at `line` saying it should have been
/// `expected`, and what it was instead.
pub(crate) fn map_process(
    m: &serde_json::Map<String, Value>,
    line: usize,
    expected: &str,
) -> Result<Process, HistoryError> {
    match m.get("process") {
        Some(Value::Number(n)) if n.as_u64().is_some() => {
            Ok(Process::Client(n.as_u64().unwrap_or_default()))
        }
        Some(Value::String(s)) if s == "nemesis" => Ok(Process::Nemesis),
        other => Err(HistoryError::parse(
            line,
            format!(
                "expected :process to be {expected}, got {}",
                limits::quote_field(other)
            ),
        )),
    }
}

/// The `:type` of an op map read from EDN (a Jepsen history or a Porcupine kv log), or an error
/// at `line` saying what it was instead.
pub(crate) fn map_type(
    m: &serde_json::Map<String, Value>,
    line: usize,
) -> Result<OpType, HistoryError> {
    m.get("type")
        .and_then(Value::as_str)
        .and_then(OpType::from_name)
        .ok_or_else(|| {
            HistoryError::parse(
                line,
                format!(
                    "expected :type :invoke, :ok, :fail or :info, got {}",
                    limits::quote_field(m.get("type"))
                ),
            )
        })
}

/// The error for a line longer than [`limits::MAX_LINE_BYTES`] (every line-oriented reader).
pub(crate) fn line_too_long(line: usize) -> HistoryError {
    HistoryError::parse(
        line,
        format!(
            "line longer than {} MiB (the most one event may take)",
            limits::MAX_LINE_BYTES >> 20
        ),
    )
}

/// One line of JSON Lines, read.
enum Line {
    Blank,
    Op(Box<Op>),
    /// Malformed (fatal unless it is a truncated last line): why, with the column.
    Bad(String),
}

/// Parses one line: the limits of [`limits::scan_json`] first, then the event.
fn parse_jsonl_line(raw: &str, first: bool) -> Line {
    let raw = if first {
        raw.strip_prefix('\u{feff}').unwrap_or(raw)
    } else {
        raw
    };
    let text = raw.trim();
    if text.is_empty() {
        return Line::Blank;
    }
    // Columns count from the start of the line, not of the trimmed text.
    let lead = raw[..raw.len() - raw.trim_start().len()].chars().count();
    if let Err(e) = limits::scan_json(text) {
        return Line::Bad(format!("column {}: {}", e.column + lead, e.msg));
    }
    match serde_json::from_str::<Op>(text) {
        Ok(op) => Line::Op(Box::new(op)),
        Err(e) => Line::Bad(json_error(&e, lead)),
    }
}

/// A serde_json error about one line as `column C: what`, without serde's own "at line 1 column
/// C" (the caller names the line in the file, which is the only line number that means anything).
pub fn json_error(e: &serde_json::Error, lead: usize) -> String {
    let msg = e.to_string();
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let what = msg.strip_suffix(&suffix).unwrap_or(&msg);
    let what = limits::clip(what);
    if e.column() == 0 {
        what
    } else {
        format!("column {}: {what}", e.column() + lead)
    }
}

/// Writes events as JSON Lines, one per line. The caller decides when to flush.
pub struct JsonlWriter<W: Write> {
    out: W,
}

impl<W: Write> JsonlWriter<W> {
    /// A writer appending to `out`.
    pub fn new(out: W) -> Self {
        JsonlWriter { out }
    }
    /// Writes `op` as one JSON line (not flushed).
    pub fn write(&mut self, op: &Op) -> std::io::Result<()> {
        serde_json::to_writer(&mut self.out, op)?;
        self.out.write_all(b"\n")
    }
    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
    /// Returns the underlying writer.
    pub fn into_inner(self) -> W {
        self.out
    }
}

/// Renumbers `index` densely from 0, in order. Importers call this; the runner numbers as it
/// records.
pub fn reindex(ops: &mut [Op]) {
    for (i, op) in ops.iter_mut().enumerate() {
        op.index = i as u64;
    }
}

/// An operation as checkers see it: an invocation joined with its completion.
#[derive(Debug, Clone, PartialEq)]
pub struct Completed {
    /// Position (in the slice handed to [`pair`]) of the invocation.
    pub invoke: usize,
    /// Position of the completion, `None` if the history ended first (treated like `info`).
    pub complete: Option<usize>,
    /// Who performed the operation.
    pub process: Process,
    /// The operation's name (`f` of both events).
    pub f: String,
    /// The invocation's value (the request).
    pub input: Value,
    /// The completion's value (the response), `Null` when there is none.
    pub output: Value,
    /// `Ok`, `Fail` or `Info` (an unmatched invocation is `Info`).
    pub outcome: OpType,
}

/// An invocation joined with its completion, by position only: what [`pair`] and the
/// transactional checker share. Nothing is cloned, so a checker that keeps one of these per
/// operation of a million-operation history holds a few words each, not two JSON values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pairing {
    /// Position (in the slice handed to [`pair_positions`]) of the invocation.
    pub invoke: usize,
    /// Position of the completion, `None` if the history ended first.
    pub complete: Option<usize>,
    /// `Ok`, `Fail` or `Info` (an unmatched invocation is `Info`).
    pub outcome: OpType,
}

/// Why events could not be paired: the offending event's position in the slice, and why.
/// Callers name it their way ([`pair`] by line, checkers by event index).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PairError {
    /// Position of the offending event in the slice that was paired.
    pub event: usize,
    /// What is wrong with it, e.g. a completion with no open invocation.
    pub msg: String,
}

/// What one event did to the pairing (see [`Pairer`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paired {
    /// A client invocation: it opened pairing number `slot` (pairings are numbered in
    /// invocation order, from 0).
    Invoked {
        /// The number of the pairing this invocation opened.
        slot: usize,
    },
    /// A client completion: it closed pairing `slot`, whose invocation was event `invoke`.
    Completed {
        /// The number of the pairing this completion closed.
        slot: usize,
        /// Position of the matching invocation event.
        invoke: usize,
    },
    /// A nemesis event: not paired.
    Nemesis,
}

/// Joins invocations with completions one event at a time, so a reader can pair a history
/// while streaming it: what [`pair_positions`] does over a slice, with the same rules and
/// errors. Holds one entry per process with an operation open.
#[derive(Debug, Default)]
pub struct Pairer {
    /// Process → (its open pairing, the event that invoked it).
    open: std::collections::HashMap<u64, (usize, usize)>,
    slots: usize,
}

impl Pairer {
    /// Event `i` (its position in the history) is `op`.
    pub fn push(&mut self, i: usize, op: &Op) -> Result<Paired, PairError> {
        let Process::Client(p) = op.process else {
            return Ok(Paired::Nemesis);
        };
        match op.kind {
            OpType::Invoke => {
                if let Some(&(_, prev)) = self.open.get(&p) {
                    return Err(PairError {
                        event: i,
                        msg: format!(
                            "process {p} invokes again while its invocation at event {prev} is \
                             still open (a process is single-threaded)"
                        ),
                    });
                }
                let slot = self.slots;
                self.slots += 1;
                self.open.insert(p, (slot, i));
                Ok(Paired::Invoked { slot })
            }
            kind => match self.open.remove(&p) {
                Some((slot, invoke)) => Ok(Paired::Completed { slot, invoke }),
                None => Err(PairError {
                    event: i,
                    msg: format!("process {p} completes ({kind}) an operation it never invoked"),
                }),
            },
        }
    }

    /// The pairings still open (never completed), as (slot, invoking event), in slot order.
    pub fn into_open(self) -> Vec<(usize, usize)> {
        let mut v: Vec<(usize, usize)> = self.open.into_values().collect();
        v.sort_unstable();
        v
    }
}

/// Joins each invocation with the next completion of the same process, in invocation order,
/// by position. A completion without an invocation, or a second invocation by a process that
/// has one outstanding, is malformed. Nemesis events are skipped.
pub fn pair_positions(ops: &[Op]) -> Result<Vec<Pairing>, PairError> {
    let mut pairer = Pairer::default();
    let mut out: Vec<Pairing> = Vec::new();
    for (i, op) in ops.iter().enumerate() {
        match pairer.push(i, op)? {
            Paired::Invoked { .. } => out.push(Pairing {
                invoke: i,
                complete: None,
                outcome: OpType::Info,
            }),
            Paired::Completed { slot, .. } => {
                out[slot].complete = Some(i);
                out[slot].outcome = op.kind;
            }
            Paired::Nemesis => {}
        }
    }
    Ok(out)
}

/// Joins each invocation with the next completion of the same process (see
/// [`pair_positions`]), with the values. A malformed history is named by the event's line
/// (index + 1 in the slice).
pub fn pair(ops: &[Op]) -> Result<Vec<Completed>, HistoryError> {
    let pairs = pair_positions(ops).map_err(|e| HistoryError::parse(e.event + 1, e.msg))?;
    Ok(pairs
        .into_iter()
        .map(|p| {
            let inv = &ops[p.invoke];
            Completed {
                invoke: p.invoke,
                complete: p.complete,
                process: inv.process,
                f: inv.f.clone(),
                input: inv.value.clone(),
                output: p.complete.map_or(Value::Null, |c| ops[c].value.clone()),
                outcome: p.outcome,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trips_jsonl() {
        let mut a = Op::new(Process::Client(3), OpType::Invoke, "write", json!(5));
        a.index = 0;
        let mut b = Op::new(
            Process::Nemesis,
            OpType::Info,
            "start-partition",
            json!(["n1"]),
        );
        b.index = 1;
        b.node = Some("n1".into());
        let mut w = JsonlWriter::new(Vec::new());
        w.write(&a).unwrap();
        w.write(&b).unwrap();
        let bytes = w.into_inner();
        let (ops, rep) = read_jsonl(&bytes[..]).unwrap();
        assert_eq!(ops, vec![a, b]);
        assert_eq!(rep, ReadReport::default());
    }

    #[test]
    fn truncated_last_line_is_reported_not_fatal() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"process\":0,\"ty";
        let (ops, rep) = read_jsonl(text.as_bytes()).unwrap();
        assert_eq!(ops.len(), 1);
        assert_eq!(rep.truncated_last_line, Some(2));
    }

    #[test]
    fn malformed_middle_line_names_its_line() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\nnot json\n{}\n";
        let err = read_jsonl(text.as_bytes()).unwrap_err();
        assert!(err.to_string().starts_with("line 2:"), "{err}");
    }

    #[test]
    fn errors_name_one_position_line_and_column() {
        let text = "{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n  {\"process\":0,\"type\":\"ok\",\n{}\n";
        let err = read_jsonl(text.as_bytes()).unwrap_err().to_string();
        assert_eq!(err, "line 2: column 27: EOF while parsing a value");
        let err = read_jsonl_str(text).unwrap_err().to_string();
        assert_eq!(err, "line 2: column 27: EOF while parsing a value");
    }

    #[test]
    fn a_byte_order_mark_is_skipped() {
        let text = "\u{feff}{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n";
        assert_eq!(read_jsonl(text.as_bytes()).unwrap().0.len(), 1);
        assert_eq!(read_jsonl_str(text).unwrap().0.len(), 1);
    }

    #[test]
    fn integers_beyond_64_bits_are_refused_not_rounded() {
        let text =
            "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":18446744073709551617}\n";
        let err = read_jsonl(text.as_bytes()).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "line 1: column 50: integer 18446744073709551617 does not fit in 64 bits"
            ),
            "{err}"
        );
    }

    #[test]
    fn an_event_holds_a_bounded_number_of_values_and_depth() {
        let head = "{\"process\":0,\"type\":\"invoke\",\"f\":\"write\",\"value\":";
        let wide = format!("{head}[{}0]}}\n", "0,".repeat(limits::MAX_VALUES));
        let err = read_jsonl(wide.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("values in one event"), "{err}");
        let deep = format!("{head}{}\n", "[".repeat(10_000));
        let err = read_jsonl_str(&deep).unwrap_err().to_string();
        assert!(err.contains("nested more than 128 levels deep"), "{err}");
    }

    #[test]
    fn a_line_longer_than_the_limit_is_refused_without_reading_it_whole() {
        struct Endless(usize);
        impl std::io::Read for Endless {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                buf.fill(b'[');
                self.0 += buf.len();
                Ok(buf.len())
            }
        }
        let mut src = Endless(0);
        let err = read_jsonl(std::io::BufReader::new(&mut src))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "line 1: line longer than 64 MiB (the most one event may take)"
        );
        assert!(
            src.0 < limits::MAX_LINE_BYTES + (1 << 20),
            "read {} bytes",
            src.0
        );
    }

    #[test]
    fn invalid_utf8_names_line_and_column() {
        let mut bytes = b"{\"process\":0,\"type\":\"invoke\",\"f\":\"read\"}\n{\"f\":\"".to_vec();
        bytes.extend_from_slice(&[0xff, b'"', b'}', b'\n']);
        let err = read_jsonl(&bytes[..]).unwrap_err().to_string();
        assert_eq!(err, "line 2: column 7: not valid UTF-8");
    }

    #[test]
    fn long_values_in_errors_are_cut() {
        let long = "x".repeat(1 << 20);
        let text = format!("{{\"process\":\"{long}\",\"type\":\"invoke\",\"f\":\"read\"}}\n");
        let err = read_jsonl(text.as_bytes()).unwrap_err().to_string();
        assert!(err.len() < 400, "{} bytes: {}", err.len(), &err[..400]);
        assert!(err.contains("process must be"), "{err}");
    }

    #[test]
    fn pairs_invocations_with_completions() {
        let ops = vec![
            Op::new(Process::Client(0), OpType::Invoke, "write", json!(1)),
            Op::new(Process::Client(1), OpType::Invoke, "read", Value::Null),
            Op::new(Process::Nemesis, OpType::Info, "kill", Value::Null),
            Op::new(Process::Client(1), OpType::Ok, "read", json!(1)),
        ];
        let p = pair(&ops).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].outcome, OpType::Info);
        assert_eq!(p[0].complete, None);
        assert_eq!(p[1].output, json!(1));
        assert_eq!(p[1].complete, Some(3));
    }

    #[test]
    fn completion_without_invocation_is_an_error() {
        let ops = vec![Op::new(Process::Client(0), OpType::Ok, "write", json!(1))];
        assert!(pair(&ops)
            .unwrap_err()
            .to_string()
            .contains("never invoked"));
    }
}

/// Builds a history in code, event by event, with dense indexes and increasing times — for
/// tests of a database client or a checker that do not go through a recorded file.
#[derive(Debug, Clone, Default)]
pub struct History {
    ops: Vec<Op>,
}

impl History {
    /// An empty history.
    pub fn new() -> History {
        History::default()
    }

    /// Appends an event of a client process.
    pub fn event(mut self, process: u64, kind: OpType, f: &str, value: Value) -> History {
        let mut op = Op::new(Process::Client(process), kind, f, value);
        op.index = self.ops.len() as u64;
        op.time = self.ops.len() as u64 * 1_000;
        self.ops.push(op);
        self
    }

    /// Process `process` invokes `f` with `value`.
    pub fn invoke(self, process: u64, f: &str, value: Value) -> History {
        self.event(process, OpType::Invoke, f, value)
    }

    /// Its operation happened, answering `value`.
    pub fn ok(self, process: u64, f: &str, value: Value) -> History {
        self.event(process, OpType::Ok, f, value)
    }

    /// Its operation certainly did not happen.
    pub fn fail(self, process: u64, f: &str, value: Value) -> History {
        self.event(process, OpType::Fail, f, value)
    }

    /// Its outcome is unknown (it may take effect at any later time, or never).
    pub fn info(self, process: u64, f: &str, value: Value) -> History {
        self.event(process, OpType::Info, f, value)
    }

    /// A nemesis event (fault start or stop).
    pub fn nemesis(mut self, f: &str, value: Value) -> History {
        let mut op = Op::new(Process::Nemesis, OpType::Info, f, value);
        op.index = self.ops.len() as u64;
        op.time = self.ops.len() as u64 * 1_000;
        self.ops.push(op);
        self
    }

    /// The events built so far, in order.
    pub fn into_ops(self) -> Vec<Op> {
        self.ops
    }
}
