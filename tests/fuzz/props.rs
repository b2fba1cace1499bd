//! What every parser must do with any input, as one function per input: [`run`] feeds bytes
//! to a parser (and what it accepts to the first consumers: pairing, the report, the checkers
//! under a small budget) and returns `Err` when a property is broken — an error of more than
//! one line, an error that quotes kilobytes, a history error naming a line the input does not
//! have, an event line that is not where the reader says. A panic is caught by the caller.
//!
//! Shared by the `cargo test` harness next to it (`tests/fuzz/main.rs`) and the optional
//! `cargo fuzz` targets (`fuzz/`), so both check the same things.

use netsplit::checker::linear::{self, LinOptions, ModelKind};
use netsplit::checker::txn::{self, TxnOptions, TxnWorkload};
use netsplit::checker::Budget;
use netsplit::history::import::{self, Format};
use netsplit::history::{edn, read_jsonl, HistoryError, Op};
use std::time::Duration;

/// The parsers, by what they read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Db {
    /// `history::read_jsonl` over raw bytes (what `netsplit analyze` reads).
    JsonlBytes,
    /// `import::parse_with_lines` in a given format (what `netsplit check` reads).
    Import(Format),
    /// `edn::parse_forms`: every top-level EDN form.
    Edn,
    /// `netsplit check --initial`.
    Initial,
    /// `Plan::from_yaml` and `Plan::validate`.
    Plan,
    /// A whole plan file as `netsplit test --plan` takes it: `plan::resolve_text` (presets,
    /// merge, types, validation), then `Registry::prepare` (the workload, YAML workloads
    /// included, built from its options).
    PlanFile,
    /// A custom client's answer line (`db::custom::protocol::parse_answer`).
    Answer,
}

impl Db {
    pub fn name(self) -> String {
        match self {
            Db::JsonlBytes => "read_jsonl".into(),
            Db::Import(f) => format!("import:{f}"),
            Db::Edn => "edn".into(),
            Db::Initial => "initial".into(),
            Db::Plan => "plan".into(),
            Db::PlanFile => "plan_file".into(),
            Db::Answer => "answer".into(),
        }
    }
}

/// The longest error line accepted: a few quotes' worth.
pub const MAX_ERROR: usize = 600;

/// Runs `target` on `input`; `Err` says which property broke.
pub fn run(target: Db, input: &[u8]) -> Result<(), String> {
    let lines = input.split(|&b| b == b'\n').count();
    match target {
        Db::JsonlBytes => match read_jsonl(input) {
            Ok((ops, _)) => downstream(&ops, None),
            Err(e) => history_error(&e, lines),
        },
        Db::Import(format) => {
            let Ok(text) = std::str::from_utf8(input) else {
                // `netsplit check` refuses invalid UTF-8 (naming the line) before parsing.
                return Ok(());
            };
            match import::parse_with_lines(text, format) {
                Ok(imp) => {
                    if imp.lines.len() != imp.ops.len() {
                        return Err(format!(
                            "{} events but {} lines",
                            imp.ops.len(),
                            imp.lines.len()
                        ));
                    }
                    if let Some(&l) = imp.lines.iter().find(|&&l| l == 0 || l > lines) {
                        return Err(format!("event on line {l} of a {lines}-line input"));
                    }
                    downstream(&imp.ops, imp.format)
                }
                Err(e) => history_error(&e, lines),
            }
        }
        Db::Edn => {
            let Ok(text) = std::str::from_utf8(input) else {
                return Ok(());
            };
            match edn::parse_forms(text) {
                Ok(forms) => match forms.iter().find(|(l, _)| *l == 0 || *l > lines) {
                    Some((l, _)) => Err(format!("form on line {l} of a {lines}-line input")),
                    None => Ok(()),
                },
                Err(e) => history_error(&e, lines),
            }
        }
        Db::Initial => {
            let Ok(text) = std::str::from_utf8(input) else {
                return Ok(());
            };
            match netsplit::cli::check::parse_initial(text) {
                Ok(v) => {
                    for m in ModelKind::ALL {
                        if let Err(e) = linear::check_initial(m, &v) {
                            one_line("check_initial", &e)?;
                        }
                    }
                    Ok(())
                }
                Err(e) => one_line("--initial", &e),
            }
        }
        Db::Plan => {
            let Ok(text) = std::str::from_utf8(input) else {
                return Ok(());
            };
            match netsplit::plan::Plan::from_yaml(text, "fuzz.yaml") {
                Ok(plan) => match plan.validate() {
                    Ok(()) => Ok(()),
                    Err(e) => single_line("plan.validate", &netsplit::error::one_line(&e)),
                },
                // Plan errors are the plan parser's to keep short; here: one line, no panic.
                Err(e) => single_line("plan", &netsplit::error::one_line(&e)),
            }
        }
        Db::PlanFile => {
            let Ok(text) = std::str::from_utf8(input) else {
                // `read_text` refuses invalid UTF-8 (naming the line) before parsing.
                return Ok(());
            };
            let file = Some((text.to_string(), "fuzz.yaml".to_string()));
            let ov = netsplit::plan::Overrides::default();
            let plan = match netsplit::plan::resolve_text(file, &ov) {
                Ok(p) => p,
                Err(e) => return user_error("plan_file", &e),
            };
            match netsplit::registry::Registry::builtin().prepare(&plan) {
                Ok(_) => Ok(()),
                Err(e) => user_error("plan_file: prepare", &e),
            }
        }
        Db::Answer => {
            let request = serde_json::json!([1, {"k": "v"}]);
            let line = input.split(|&b| b == b'\n').next().unwrap_or(&[]);
            match netsplit::db::custom::protocol::parse_answer(line, &request) {
                Ok(c) => match c.kind {
                    netsplit::history::OpType::Ok
                    | netsplit::history::OpType::Fail
                    | netsplit::history::OpType::Info => Ok(()),
                    k => Err(format!("answer taken as {k:?}")),
                },
                Err(why) => one_line("answer", &why),
            }
        }
    }
}

/// An error a user sees (`netsplit: error: …`): bad input (exit 254, never a harness error),
/// one line of at most [`MAX_ERROR`] characters.
fn user_error(what: &str, e: &anyhow::Error) -> Result<(), String> {
    let msg = netsplit::error::one_line(e);
    single_line(what, &msg)?;
    if netsplit::error::exit_code_for(e) != netsplit::error::EXIT_BAD_INPUT {
        return Err(format!("{what}: not bad input (exit 255): {msg}"));
    }
    if msg.chars().count() > MAX_ERROR {
        return Err(format!(
            "{what}: error of {} characters",
            msg.chars().count()
        ));
    }
    Ok(())
}

/// A history error: one line, short, naming a line of the input.
fn history_error(e: &HistoryError, lines: usize) -> Result<(), String> {
    let msg = e.to_string();
    one_line("history", &msg)?;
    match e {
        HistoryError::Parse { line, .. } if *line == 0 || *line > lines + 1 => Err(format!(
            "error names line {line} of a {lines}-line input: {msg}"
        )),
        HistoryError::Parse { .. } => Ok(()),
        HistoryError::Io(_) => Err(format!("I/O error reading from memory: {msg}")),
    }
}

fn single_line(what: &str, msg: &str) -> Result<(), String> {
    if msg.contains(['\n', '\r']) {
        return Err(format!("{what}: error of several lines: {msg:?}"));
    }
    Ok(())
}

fn one_line(what: &str, msg: &str) -> Result<(), String> {
    single_line(what, msg)?;
    if msg.len() > MAX_ERROR {
        return Err(format!(
            "{what}: error of {} bytes: {}…",
            msg.len(),
            msg.chars().take(200).collect::<String>()
        ));
    }
    Ok(())
}

/// What reads a parsed history next: writing it back, pairing, the report, and the checkers (under a budget of
/// a few milliseconds and megabytes: the verdict does not matter here, only that errors stay
/// one short line and nothing panics).
fn downstream(ops: &[Op], format: Option<Format>) -> Result<(), String> {
    // What was read can be written and read back as it was (the runner's and `analyze`'s
    // round trip): every value accepted is one JSON can hold exactly.
    let mut w = netsplit::history::JsonlWriter::new(Vec::new());
    for op in ops {
        w.write(op).map_err(|e| format!("writing back: {e}"))?;
    }
    match read_jsonl(&w.into_inner()[..]) {
        Ok((again, _)) if again == ops => {}
        Ok(_) => return Err("events differ once written and read back".into()),
        Err(e) => return Err(format!("written back, then refused: {e}")),
    }
    let _ = netsplit::history::pair(ops);
    let page = netsplit::report::render(&serde_json::json!({}), ops);
    if page.len() > (4 << 20) + 2_000 * ops.len() {
        return Err(format!(
            "report of {} bytes for {} events",
            page.len(),
            ops.len()
        ));
    }
    if ops.len() > 400 {
        return Ok(());
    }
    let budget =
        || Budget::with_time_limit(Some(Duration::from_millis(20))).with_max_memory(8 << 20);
    let models: &[(ModelKind, bool)] = match format {
        Some(Format::PorcupineEtcd) => &[(ModelKind::CasRegister, false)],
        Some(Format::PorcupineKv) => &[(ModelKind::Kv, true)],
        _ => &[
            (ModelKind::CasRegister, true),
            (ModelKind::MultiRegister, false),
        ],
    };
    for &(model, independent) in models {
        let opts = LinOptions {
            independent,
            budget: budget(),
            ..LinOptions::new(model)
        };
        if let Err(e) = linear::check(ops, &opts) {
            one_line("linear::check", &e.to_string())?;
        }
    }
    if !matches!(format, Some(Format::PorcupineEtcd | Format::PorcupineKv)) {
        for workload in [TxnWorkload::ListAppend, TxnWorkload::RwRegister] {
            let opts = TxnOptions {
                workload,
                consistency_models: vec!["serializable".into()],
                budget: budget(),
            };
            if let Err(e) = txn::check(ops, &opts) {
                one_line("txn::check", &e.to_string())?;
            }
        }
    }
    Ok(())
}
