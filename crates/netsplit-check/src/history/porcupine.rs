//! Importers for the two log formats published with the Porcupine checker: Jepsen's 2015 etcd
//! register logs and Porcupine's key-value logs. Both are line-oriented; every error names its line.
//!
//! Conventions (chosen so every corpus verdict is reproduced, and documented in
//! `docs/history-format.md`):
//! - etcd: `:ok :read nil` means the read returned "absent", i.e. the initial `null` — a definite
//!   value, unlike Knossos' EDN convention. `:fail :read :timed-out` and every `:info` line are
//!   unknown outcomes and become `info`. `:timed-out` and other keyword values of completions are
//!   moved to `error`. Lines whose process is `:nemesis` are nemesis events; any other process
//!   that is not a non-negative integer is an error (taking it for the nemesis would drop a
//!   client's operation from the check).
//! - kv: `{:process p :type t :f get|put|append :key "k" :value v}` becomes an event whose value
//!   is the keyed tuple `[k, v]` (Jepsen's independent convention).

use super::limits::{quote, quote_field, MAX_LINE_BYTES};
use super::{edn, map_process, map_type, HistoryError, Op, OpType, Process};
use serde_json::Value;

/// The lines of a log, numbered from 1, each at most [`MAX_LINE_BYTES`] long.
fn numbered_lines(text: &str) -> impl Iterator<Item = Result<(usize, &str), HistoryError>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines().enumerate().map(|(i, l)| {
        if l.len() > MAX_LINE_BYTES {
            Err(super::line_too_long(i + 1))
        } else {
            Ok((i + 1, l))
        }
    })
}

/// Parses a log an event a line, `parse` taking each line's number and its trimmed text; blank
/// lines and those `comment` says are comments are skipped. Returns the events, each timed by
/// its position, and the line of each.
fn parse_lines(
    text: &str,
    comment: impl Fn(&str) -> bool,
    mut parse: impl FnMut(usize, &str) -> Result<Op, HistoryError>,
) -> Result<(Vec<Op>, Vec<usize>), HistoryError> {
    let mut ops = Vec::new();
    let mut lines = Vec::new();
    for l in numbered_lines(text) {
        let (line, raw) = l?;
        let raw = raw.trim();
        if raw.is_empty() || comment(raw) {
            continue;
        }
        let mut op = parse(line, raw)?;
        op.time = ops.len() as u64;
        ops.push(op);
        lines.push(line);
    }
    Ok((ops, lines))
}

/// Parses a Jepsen 2015 etcd log (`INFO  jepsen.util - <process> <type> <f> <value>`), fields
/// separated by tabs or runs of spaces. Returns the events and the line of each.
pub fn parse_etcd(text: &str) -> Result<(Vec<Op>, Vec<usize>), HistoryError> {
    parse_lines(
        text,
        |_| false,
        |line, raw| {
            let body = match raw.find(" - ") {
                Some(p) => &raw[p + 3..],
                None => raw,
            };
            let mut fields = body.split_whitespace();
            let (Some(proc_s), Some(type_s), Some(f_s)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(HistoryError::parse(
                line,
                "expected '<process> <type> <f> <value>' (e.g. \"INFO  jepsen.util - 0 :invoke :read nil\")",
            ));
            };
            let value_text = fields.collect::<Vec<_>>().join(" ");
            let kind = OpType::from_name(type_s.trim_start_matches(':')).ok_or_else(|| {
                HistoryError::parse(
                    line,
                    format!(
                        "expected a type :invoke, :ok, :fail or :info, got '{}'",
                        quote(type_s)
                    ),
                )
            })?;
            let f = f_s.trim_start_matches(':').to_string();
            let value = if value_text.is_empty() {
                Value::Null
            } else {
                edn::parse_str(&value_text).map_err(|e| match e {
                    HistoryError::Parse { msg, .. } => HistoryError::parse(
                        line,
                        format!("bad value '{}': {msg}", quote(&value_text)),
                    ),
                    other => other,
                })?
            };
            let process = match proc_s.parse::<u64>() {
                Ok(p) => Process::Client(p),
                Err(_) if matches!(proc_s, ":nemesis" | "nemesis") => Process::Nemesis,
                Err(_) => {
                    return Err(HistoryError::parse(
                        line,
                        format!(
                        "expected the process to be a non-negative integer or :nemesis, got '{}'",
                        quote(proc_s)
                    ),
                    ))
                }
            };
            let mut op = Op::new(process, kind, f, value);
            if process.is_client() {
                // A keyword as a completion value is an error tag such as :timed-out, not a value.
                let keyword_value = value_text.starts_with(':');
                if kind != OpType::Invoke && keyword_value {
                    op.error = op.value.as_str().map(str::to_string);
                    op.value = Value::Null;
                }
                // A failed read that timed out is an unknown outcome, not a definite failure.
                if kind == OpType::Fail && op.f == "read" && keyword_value {
                    op.kind = OpType::Info;
                }
            }
            Ok(op)
        },
    )
}

/// Parses a Porcupine kv log: one EDN map per line with `:process :type :f :key :value`.
pub fn parse_kv(text: &str) -> Result<(Vec<Op>, Vec<usize>), HistoryError> {
    parse_lines(
        text,
        |t| t.starts_with(';'),
        |line, t| {
            let v = edn::parse_str(t).map_err(|e| match e {
                HistoryError::Parse { msg, .. } => HistoryError::parse(line, msg),
                other => other,
            })?;
            let Value::Object(mut m) = v else {
                return Err(HistoryError::parse(
                    line,
                    "expected an EDN map {:process … :type … :f … :key … :value …}",
                ));
            };
            let process = map_process(&m, line, "a non-negative integer")?;
            let kind = map_type(&m, line)?;
            let f = match m.get("f").and_then(Value::as_str) {
                Some(f @ ("get" | "put" | "append")) => f.to_string(),
                _ => {
                    return Err(HistoryError::parse(
                        line,
                        format!(
                            "expected :f :get, :put or :append, got {}",
                            quote_field(m.get("f"))
                        ),
                    ))
                }
            };
            let key = match m.remove("key") {
                Some(Value::String(s)) => s,
                Some(Value::Number(n)) => n.to_string(),
                other => {
                    return Err(HistoryError::parse(
                        line,
                        format!(
                            "expected :key to be a string, got {}",
                            quote_field(other.as_ref())
                        ),
                    ))
                }
            };
            let value = m.remove("value").unwrap_or(Value::Null);
            Ok(Op::new(
                process,
                kind,
                f,
                Value::Array(vec![Value::String(key), value]),
            ))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn etcd_lines_with_tabs_or_spaces_parse_alike() {
        let text = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - 2   :ok :cas    [3 0]  \n";
        let (ops, lines) = parse_etcd(text).unwrap();
        assert_eq!(ops.len(), 2);
        assert_eq!(ops[0].value, json!([3, 0]));
        assert_eq!(ops[1].kind, OpType::Ok);
        assert_eq!(lines, vec![1, 2]);
    }

    #[test]
    fn etcd_timed_out_read_is_unknown_and_nil_read_is_absent() {
        let text = "INFO  jepsen.util - 0\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 0\t:fail\t:read\t:timed-out\n\
                    INFO  jepsen.util - 1\t:invoke\t:read\tnil\n\
                    INFO  jepsen.util - 1\t:ok\t:read\tnil\n\
                    INFO  jepsen.util - :nemesis\t:info\t:start\tnil\n";
        let (ops, _) = parse_etcd(text).unwrap();
        assert_eq!(ops[1].kind, OpType::Info);
        assert_eq!(ops[1].error.as_deref(), Some("timed-out"));
        assert_eq!(ops[3].kind, OpType::Ok);
        assert_eq!(ops[3].value, Value::Null);
        assert_eq!(ops[4].process, Process::Nemesis);
    }

    #[test]
    fn etcd_garbage_names_its_line() {
        let e = parse_etcd("INFO  jepsen.util - 0\t:invoke\t:read\tnil\nhello\n").unwrap_err();
        assert!(e.to_string().starts_with("line 2:"), "{e}");
        let e = parse_etcd("INFO  jepsen.util - 0\t:invoked\t:read\tnil\n").unwrap_err();
        assert!(e.to_string().contains("line 1: expected a type"), "{e}");
    }

    #[test]
    fn etcd_negative_or_malformed_process_is_an_error_not_the_nemesis() {
        for p in ["-1", "1x", "nemesis?", "18446744073709551616"] {
            let text = format!(
                "INFO  jepsen.util - 0\t:invoke\t:read\tnil\nINFO  jepsen.util - {p}\t:ok\t:read\t1\n"
            );
            let e = parse_etcd(&text).unwrap_err().to_string();
            assert!(
                e.starts_with("line 2: expected the process to be a non-negative integer"),
                "{p}: {e}"
            );
        }
    }

    #[test]
    fn etcd_error_quotes_are_cut() {
        let text = format!(
            "INFO  jepsen.util - 0\t:invoke\t:write\t[{}\n",
            "1 ".repeat(1 << 20)
        );
        let e = parse_etcd(&text).unwrap_err().to_string();
        assert!(e.starts_with("line 1: bad value '[1 1"), "{e}");
        assert!(e.len() < 300, "{} bytes", e.len());
    }

    #[test]
    fn etcd_value_nested_10000_deep_is_an_error() {
        let text = format!(
            "INFO  jepsen.util - 0\t:invoke\t:write\t{}{}\n",
            "[".repeat(10_000),
            "]".repeat(10_000)
        );
        let e = parse_etcd(&text).unwrap_err().to_string();
        assert!(e.contains("nested more than 128 levels deep"), "{e}");
        let kv = format!(
            "{{:process 0 :type :invoke :f :get :key \"k\" :value {}}}\n",
            "(".repeat(10_000)
        );
        let e = parse_kv(&kv).unwrap_err().to_string();
        assert!(e.starts_with("line 1: nested more than 128"), "{e}");
    }

    #[test]
    fn kv_lines_become_keyed_tuples() {
        let text = "{:process 0, :type :invoke, :f :get, :key \"7\", :value nil}\n\
                    {:process 0, :type :ok, :f :get, :key \"7\", :value \"x 0 0 y\"}\n";
        let (ops, _) = parse_kv(text).unwrap();
        assert_eq!(ops[0].value, json!(["7", null]));
        assert_eq!(ops[1].value, json!(["7", "x 0 0 y"]));
        assert_eq!(ops[1].f, "get");
    }

    #[test]
    fn kv_missing_key_names_its_line() {
        let text = "{:process 0, :type :invoke, :f :get, :key \"7\", :value nil}\n\n\
                    {:process 0, :type :ok, :f :get, :value \"\"}\n";
        let e = parse_kv(text).unwrap_err().to_string();
        assert!(e.starts_with("line 3: expected :key"), "{e}");
    }
}
