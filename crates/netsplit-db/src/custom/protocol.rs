//! The custom-client protocol's text, both ways (docs/custom-clients.md): the request line
//! netsplit writes, and what an answer line means. Pure: no processes here.
//!
//! A request is one JSON object on one line, `{"f": "write", "value": [3, 4]}`. An answer is one
//! line back: `{"type": "ok", "value": …}` (`value` omitted: the request's), `{"type": "fail",
//! "error": "…"}` or `{"type": "info", "error": "…"}`. Anything else is a protocol failure,
//! which the client records as `info` with a reason that starts with one of the [`Failure`]
//! words, so the history says which.

use crate::history::limits::{quote, scan_json, MAX_LINE_BYTES};
use crate::Completion;
use serde_json::{json, Value};

/// Why a client program's answer is not one (the first words of the recorded `error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The program could not be started.
    NoStart,
    /// It exited (or closed its stdout) before answering.
    Crashed,
    /// It answered something that is not a well-formed answer.
    Garbage,
}

impl Failure {
    /// The words the recorded error starts with.
    pub fn words(self) -> &'static str {
        match self {
            Failure::NoStart => "client did not start",
            Failure::Crashed => "client crashed",
            Failure::Garbage => "client answered garbage",
        }
    }

    /// The `info` completion recording this failure for a request with value `request`.
    pub fn info(self, request: &Value, why: &str) -> Completion {
        Completion::info(request.clone(), format!("{}: {why}", self.words()))
    }
}

/// The request line for `f` with `value`, newline included.
pub fn request_line(f: &str, value: &Value) -> Vec<u8> {
    let mut line = serde_json::to_vec(&json!({"f": f, "value": value}))
        .unwrap_or_else(|_| br#"{"f":"?","value":null}"#.to_vec());
    line.push(b'\n');
    line
}

/// Bytes an answer line may hold (the history's own limit on one event).
pub const MAX_ANSWER_BYTES: usize = MAX_LINE_BYTES;

/// What an answer line (without its newline) means for the request whose value was `request`:
/// a completion, or why it is garbage (the caller records `info` with it).
pub fn parse_answer(line: &[u8], request: &Value) -> Result<Completion, String> {
    let text = match std::str::from_utf8(line) {
        Ok(t) => t.trim_end_matches(['\n', '\r']),
        Err(_) => return Err("not UTF-8 text".into()),
    };
    if text.trim().is_empty() {
        return Err("an empty line".into());
    }
    scan_json(text).map_err(|e| format!("{} in `{}`", e.msg, quote(text)))?;
    let v: Value = serde_json::from_str(text).map_err(|e| {
        let e = e.to_string();
        let e = e.split(" at line").next().unwrap_or(&e).to_string();
        format!("not JSON ({e}): `{}`", quote(text))
    })?;
    let Value::Object(mut m) = v else {
        return Err(format!("not a JSON object: `{}`", quote(text)));
    };
    let value = m.remove("value").unwrap_or_else(|| request.clone());
    let error = match m.remove("error") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
    };
    match m.get("type") {
        Some(Value::String(t)) if t == "ok" => Ok(Completion::ok(value)),
        Some(Value::String(t)) if t == "fail" => Ok(Completion::fail(
            value,
            error.unwrap_or_else(|| "the client said fail without an error".into()),
        )),
        Some(Value::String(t)) if t == "info" => Ok(Completion::info(
            value,
            error.unwrap_or_else(|| "the client said info without an error".into()),
        )),
        None => Err(format!(
            "no \"type\" (expected \"ok\", \"fail\" or \"info\"): `{}`",
            quote(text)
        )),
        Some(t) => Err(format!(
            "\"type\" must be \"ok\", \"fail\" or \"info\", got {}",
            quote(&t.to_string())
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::OpType;

    #[test]
    fn requests_are_one_json_line() {
        let l = request_line("write", &json!([3, 4]));
        assert_eq!(l, b"{\"f\":\"write\",\"value\":[3,4]}\n");
        let l = request_line("read", &json!("multi\nline"));
        assert_eq!(l.iter().filter(|b| **b == b'\n').count(), 1);
    }

    #[test]
    fn well_formed_answers() {
        let req = json!([1, 5]);
        let c = parse_answer(br#"{"type": "ok"}"#, &req).unwrap();
        assert_eq!((c.kind, c.value), (OpType::Ok, req.clone()));
        let c = parse_answer(br#"{"type":"ok","value":null}"#, &req).unwrap();
        assert_eq!(c.value, Value::Null, "an explicit null is the answer");
        let c = parse_answer(b"{\"type\":\"ok\",\"value\":[1,7]}\r\n", &req).unwrap();
        assert_eq!(c.value, json!([1, 7]));
        let c = parse_answer(br#"{"type":"fail","error":"cas mismatch"}"#, &req).unwrap();
        assert_eq!(c.kind, OpType::Fail);
        assert_eq!(c.error.as_deref(), Some("cas mismatch"));
        assert_eq!(c.value, req);
        let c = parse_answer(br#"{"type":"info","error":{"code":14}}"#, &req).unwrap();
        assert_eq!(c.kind, OpType::Info);
        assert_eq!(c.error.as_deref(), Some(r#"{"code":14}"#));
        let c = parse_answer(br#"{"type":"fail"}"#, &req).unwrap();
        assert!(c.error.unwrap().contains("without an error"));
    }

    #[test]
    fn garbage_says_what_is_wrong() {
        let req = Value::Null;
        let bad = |l: &[u8]| parse_answer(l, &req).unwrap_err();
        assert!(bad(b"hello").starts_with("not JSON"), "{}", bad(b"hello"));
        assert!(bad(b"").contains("empty"));
        assert!(bad(b"[1]").starts_with("not a JSON object"));
        assert!(bad(br#"{"value": 1}"#).contains("no \"type\""));
        let e = bad(br#"{"type": "maybe"}"#);
        assert!(e.contains("got \"maybe\""), "{e}");
        assert!(bad(br#"{"type": "invoke"}"#).contains("invoke"));
        assert!(bad(&[0xff, 0xfe]).contains("UTF-8"));
        let e = bad(br#"{"type":"ok","value":123456789012345678901234567890}"#);
        assert!(!e.is_empty());
        let long = format!("{{\"type\": \"ok\", \"value\": \"{}\"", "x".repeat(5000));
        let e = bad(long.as_bytes());
        assert!(e.len() < 400 && !e.contains('\n'), "{e}");
    }

    #[test]
    fn failures_record_info_with_their_words() {
        let c = Failure::Crashed.info(&json!(3), "exited with status 1 before answering");
        assert_eq!(c.kind, OpType::Info);
        assert_eq!(c.value, json!(3));
        assert_eq!(
            c.error.as_deref(),
            Some("client crashed: exited with status 1 before answering")
        );
    }
}
