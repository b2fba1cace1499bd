//! `netsplit check`: checks recorded histories (ours or imported) and prints verdicts.
//!
//! Reads each FILE (the only I/O of checking happens here), imports it in `--format` (detected
//! with `auto`), runs the linearizability checker (`--model`, or `--workload register`; with
//! `--consistency-models` the weaker register models too, `checker::models`) or the
//! transactional checker (`--workload list-append|rw-register`), and prints a short human line
//! per file, or with `--json` one JSON object per file. Files are checked in parallel, each with
//! its own budget. Exit: 0 all valid, 1 any invalid, 2 any unknown and none invalid, 254 bad
//! usage or a malformed file (named with its line).
//!
//! A JSON Lines file checked by the transactional checker is streamed: each line becomes an
//! event that goes straight into the checker's compact form ([`txn::parse::TxnParser`]), so the
//! file's text and its JSON values are never held whole (a million transactions take a few
//! hundred MB instead of gigabytes).

use crate::checker::linear::{self, LinOptions, LinResult, ModelKind};
use crate::checker::models;
use crate::checker::txn::{self, TxnOptions, TxnResult, TxnWorkload};
use crate::checker::{Budget, Validity};
use crate::error::bad_input;
use crate::history::import::{self, Format};
use crate::history::limits::{self, quote, quote_value as qv};
use crate::history::{read_jsonl, HistoryError, OpType, Process};
use rayon::prelude::*;
use serde_json::{json, Map, Value};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The arguments of `netsplit check`.
#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// History format: auto, jsonl, jepsen-edn, porcupine-etcd, porcupine-kv.
    #[arg(long, default_value = "auto", value_name = "FORMAT")]
    pub format: String,
    /// Linearizability model: register, cas-register, multi-register, mutex, set, fifo-queue, kv.
    /// Defaults to cas-register for porcupine-etcd and kv for porcupine-kv files.
    #[arg(long, value_name = "M", conflicts_with = "workload")]
    pub model: Option<String>,
    /// Check as this workload does: register (keyed cas-register), list-append and rw-register
    /// (the transactional checker), or any other registered workload with its default options
    /// (`netsplit list`).
    #[arg(long, value_name = "W")]
    pub workload: Option<String>,
    /// Consistency models, comma-separated. Register histories (--workload register, --model
    /// register|cas-register): linearizable (default), sequential, causal, read-your-writes,
    /// monotonic-reads, monotonic-writes, writes-follow-reads, or all
    /// (docs/consistency-models.md). list-append and rw-register: Elle's models (default
    /// strict-serializable; docs/transactional-checking.md).
    #[arg(long, value_name = "LIST", value_delimiter = ',')]
    pub consistency_models: Option<Vec<String>>,
    /// Initial state of the model, as JSON (default null; "" for kv): any value for the
    /// registers, true (held) or false for mutex, an array for set and fifo-queue, a string for
    /// kv, and for multi-register a map from register to value, e.g. '{"x":0,"y":0}'.
    #[arg(long, value_name = "JSON")]
    pub initial: Option<String>,
    /// Operation values are [key, value] tuples over independent keys (register models).
    #[arg(long)]
    pub independent: bool,
    /// Seconds allowed per history; past it the verdict is unknown ("inf", or more seconds than
    /// the clock can count, is no limit).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub time_limit: Option<String>,
    /// Memory allowed for the search's memo per history, in MiB; past it the verdict is unknown.
    #[arg(long, value_name = "MIB", allow_negative_numbers = true)]
    pub max_memory: Option<String>,
    /// Check a keyed history as one search instead of per key.
    #[arg(long)]
    pub no_partition: bool,
    /// Print one JSON object per file instead of a human summary.
    #[arg(long)]
    pub json: bool,
    /// History files.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// What to run on each history.
#[derive(Debug, Clone)]
enum Plan {
    /// A linearizability model; `None`: inferred from the file's format.
    Lin {
        model: Option<ModelKind>,
        independent: bool,
    },
    Txn(TxnWorkload),
    /// Any other registered workload's own checkers, with its default options.
    Workload(crate::workload::Instance),
}

/// Options shared by every file of one invocation.
#[derive(Debug, Clone)]
struct Spec {
    format: Format,
    plan: Plan,
    initial: Value,
    partition: bool,
    time_limit: Option<Duration>,
    max_memory: Option<usize>,
    /// Transactional models (`Plan::Txn`).
    consistency_models: Vec<String>,
    /// Register models (`Plan::Lin` with a register model), [`models::MODELS`] order.
    register_models: Vec<&'static str>,
}

/// One file's outcome.
struct FileOutcome {
    valid: Validity,
    json: Map<String, Value>,
    human: String,
}

/// Runs `netsplit check`; returns the process exit code.
pub fn run(args: CheckArgs, registry: &crate::registry::Registry) -> anyhow::Result<u8> {
    let spec = spec(&args, registry)?;
    let outcomes: Vec<anyhow::Result<FileOutcome>> = args
        .files
        .par_iter()
        .map(|f| check_file(f, &spec))
        .collect();
    let mut first_err = None;
    let mut verdicts = Vec::new();
    for o in outcomes {
        match o {
            Ok(o) => {
                if args.json {
                    say!("{}", Value::Object(o.json));
                } else {
                    say!("{}", o.human);
                }
                verdicts.push(o.valid);
            }
            Err(e) => {
                if first_err.is_some() {
                    esay!("netsplit: error: {}", crate::error::one_line(&e));
                } else {
                    first_err = Some(e);
                }
            }
        }
    }
    if !args.json && verdicts.len() > 1 {
        let count = |v: Validity| verdicts.iter().filter(|&&x| x == v).count();
        say!(
            "{} histories: {} valid, {} invalid, {} unknown",
            verdicts.len(),
            count(Validity::True),
            count(Validity::False),
            count(Validity::Unknown)
        );
    }
    if let Some(e) = first_err {
        return Err(e);
    }
    Ok(verdicts.into_iter().collect::<Validity>().exit_code())
}

fn spec(args: &CheckArgs, registry: &crate::registry::Registry) -> anyhow::Result<Spec> {
    let format: Format = args.format.parse().map_err(bad_input)?;
    let plan = match (&args.model, &args.workload) {
        (Some(m), _) => Plan::Lin {
            model: Some(m.parse().map_err(bad_input)?),
            independent: args.independent,
        },
        (None, Some(w)) => match w.as_str() {
            "register" => Plan::Lin {
                model: Some(ModelKind::CasRegister),
                independent: true,
            },
            "list-append" => Plan::Txn(TxnWorkload::ListAppend),
            "rw-register" => Plan::Txn(TxnWorkload::RwRegister),
            other => {
                let def = registry.find_workload(other)?;
                Plan::Workload(def.build(&crate::workload::WorkloadArgs {
                    opts: &Default::default(),
                    run: &crate::plan::RunPlan::default(),
                    origins: &crate::opts::Origins::default(),
                })?)
            }
        },
        (None, None) => Plan::Lin {
            model: None,
            independent: args.independent,
        },
    };
    let initial = match &args.initial {
        None => Value::Null,
        Some(s) => parse_initial(s).map_err(bad_input)?,
    };
    if let Plan::Lin {
        model: Some(model), ..
    } = plan
    {
        linear::check_initial(model, &initial).map_err(|e| bad_input(format!("--initial: {e}")))?;
    }
    if matches!(plan, Plan::Txn(_)) && args.initial.is_some() {
        return Err(bad_input(
            "--initial applies to linearizability models (--model, --workload register), not to \
             transactional workloads",
        ));
    }
    let time_limit = match &args.time_limit {
        None => None,
        Some(s) => Some(parse_time_limit(s).map_err(bad_input)?),
    };
    let max_memory = match &args.max_memory {
        None => None,
        Some(s) => Some(parse_max_memory(s).map_err(bad_input)?),
    };
    let given = args.consistency_models.as_ref();
    let mut consistency_models = Vec::new();
    let mut register_models = vec!["linearizable"];
    match (&plan, given) {
        (Plan::Txn(_), _) => {
            consistency_models = given
                .cloned()
                .unwrap_or_else(|| vec!["strict-serializable".into()]);
            txn::validate_models(&consistency_models)
                .map_err(|e| bad_input(format!("--consistency-models: {e}")))?;
        }
        (
            Plan::Lin {
                model: None | Some(ModelKind::Register | ModelKind::CasRegister),
                ..
            },
            Some(names),
        ) => {
            register_models = models::parse_models(names)
                .map_err(|e| bad_input(format!("--consistency-models: {e}")))?;
        }
        (_, Some(_)) => {
            return Err(bad_input(
                "--consistency-models applies to register histories (--workload register, \
                 --model register|cas-register) and to --workload list-append|rw-register",
            ))
        }
        (_, None) => {}
    }
    Ok(Spec {
        format,
        plan,
        initial,
        partition: !args.no_partition,
        time_limit,
        max_memory,
        consistency_models,
        register_models,
    })
}

/// `--initial`: JSON under the history's limits (depth, size, exact numbers), as one error line
/// naming the column.
pub fn parse_initial(s: &str) -> Result<Value, String> {
    let not_json = |what: String| format!("--initial is not usable JSON: {what}: {}", quote(s));
    limits::scan_json(s).map_err(|e| not_json(e.to_string()))?;
    serde_json::from_str(s).map_err(|e| not_json(crate::history::json_error(&e, 0)))
}

/// `--time-limit`: seconds, at least 0. Infinity, or more seconds than a `Duration` holds,
/// means no limit (a deadline centuries away is none).
pub fn parse_time_limit(s: &str) -> Result<Duration, String> {
    match s.trim().parse::<f64>() {
        Ok(x) if x >= 0.0 => Ok(Duration::try_from_secs_f64(x).unwrap_or(Duration::MAX)),
        _ => Err(format!(
            "--time-limit must be a non-negative number of seconds, got '{}'",
            quote(s)
        )),
    }
}

/// `--max-memory`: MiB, at least 0, as bytes; more than the machine can address means no limit.
pub fn parse_max_memory(s: &str) -> Result<usize, String> {
    match s.trim().parse::<f64>() {
        // `as` saturates: 1e300 MiB is usize::MAX bytes.
        Ok(x) if x >= 0.0 => Ok((x * (1u64 << 20) as f64) as usize),
        _ => Err(format!(
            "--max-memory must be a non-negative number of MiB, got '{}'",
            quote(s)
        )),
    }
}

fn check_file(path: &Path, spec: &Spec) -> anyhow::Result<FileOutcome> {
    let start = Instant::now();
    let name = path.display().to_string();
    if let Plan::Txn(w) = &spec.plan {
        if matches!(spec.format, Format::Jsonl | Format::Auto) {
            if let Some(outcome) = stream_txn_jsonl(path, &name, spec, *w, start)? {
                return Ok(outcome);
            }
        }
    }
    let bytes = crate::input::read_bytes(path, "history", crate::input::MAX_HISTORY_BYTES)?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let upto = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = upto.iter().filter(|&&b| b == b'\n').count() + 1;
        bad_input(format!("{name}: line {line}: not valid UTF-8"))
    })?;
    let imported = import::parse_with_lines(&text, spec.format).map_err(|e| match e {
        HistoryError::Parse { line, msg } => {
            bad_input(format!("{name}: line {line}: {}", limits::clip(&msg)))
        }
        HistoryError::Io(e) => bad_input(format!("{name}: {e}")),
    })?;
    let format = imported.format.unwrap_or(spec.format);
    let ops = &imported.ops;
    let client_ops = ops
        .iter()
        .filter(|o| o.kind == OpType::Invoke && o.process != Process::Nemesis)
        .count();
    let mut budget = Budget::with_time_limit(spec.time_limit);
    if let Some(m) = spec.max_memory {
        budget = budget.with_max_memory(m);
    }
    let at_event = |event: usize, msg: &str| {
        let line = imported.lines.get(event).copied().unwrap_or(event + 1);
        bad_input(format!("{name}: line {line}: {}", limits::clip(msg)))
    };

    let mut json = Map::new();
    json.insert("file".into(), json!(name));
    json.insert("format".into(), json!(format.name()));
    let (valid, detail, fields) = match &spec.plan {
        Plan::Lin { model, independent } => {
            let model = match (model, format) {
                (Some(m), _) => *m,
                (None, Format::PorcupineEtcd) => ModelKind::CasRegister,
                (None, Format::PorcupineKv) => ModelKind::Kv,
                (None, f) => {
                    return Err(bad_input(format!(
                        "{name}: give --model or --workload (no default model for {f} histories)"
                    )))
                }
            };
            linear::check_initial(model, &spec.initial)
                .map_err(|e| bad_input(format!("{name}: --initial: {e}")))?;
            let only_lin = spec.register_models == ["linearizable"];
            if !only_lin && !matches!(model, ModelKind::Register | ModelKind::CasRegister) {
                return Err(bad_input(format!(
                    "{name}: --consistency-models applies to register histories, not to {model}"
                )));
            }
            let independent = *independent || model == ModelKind::Kv;
            let opts = LinOptions {
                model,
                initial: spec.initial.clone(),
                independent,
                partition: spec.partition,
                budget: budget.clone(),
            };
            json.insert("model".into(), json!(model.name()));
            let lin = if spec.register_models.contains(&"linearizable") {
                Some(linear::check(ops, &opts).map_err(|e| at_event(e.event, &e.msg))?)
            } else {
                None
            };
            match lin {
                Some(r) if only_lin => (r.valid, lin_detail(&r), serde_json::to_value(&r)),
                lin => {
                    if !spec.initial.is_null() {
                        return Err(bad_input(format!(
                            "{name}: --initial applies to linearizability alone; the other \
                             consistency models start every register at null"
                        )));
                    }
                    let mopts = models::ModelOptions {
                        keyed: independent,
                        budget,
                    };
                    let m = models::view::check_models(
                        ops,
                        &spec.register_models,
                        &mopts,
                        lin.as_ref(),
                    )
                    .map_err(|e| at_event(e.event, &e.msg))?;
                    let mut fields = match lin.as_ref().map(serde_json::to_value) {
                        Some(Ok(Value::Object(f))) => f,
                        _ => Map::new(),
                    };
                    for (k, v) in [
                        ("models", serde_json::to_value(&m)?["models"].take()),
                        ("strongest", json!(m.strongest)),
                        ("summary", json!(m.summary)),
                    ] {
                        fields.insert(k.into(), v);
                    }
                    let detail = models_detail(&m, lin.as_ref());
                    (m.valid, detail, Ok(Value::Object(fields)))
                }
            }
        }
        Plan::Txn(w) => {
            let opts = TxnOptions {
                workload: *w,
                consistency_models: spec.consistency_models.clone(),
                budget,
            };
            json.insert(
                "workload".into(),
                json!(match w {
                    TxnWorkload::ListAppend => "list-append",
                    TxnWorkload::RwRegister => "rw-register",
                }),
            );
            let r = txn::check(ops, &opts).map_err(|e| at_event(e.event, &e.msg))?;
            (r.valid, txn_detail(&r), serde_json::to_value(&r))
        }
        Plan::Workload(w) => {
            json.insert("workload".into(), json!(w.name));
            let results = w.workload.check(ops, &budget);
            let valid: Validity = results.iter().map(|c| c.valid).collect();
            let detail = results
                .iter()
                .filter(|c| c.valid != Validity::True)
                .map(|c| match c.result.get("error").and_then(Value::as_str) {
                    Some(e) => format!("{}: {e}", c.name),
                    None => format!("{}: {}", c.name, c.valid.as_str()),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let checkers: Map<String, Value> =
                results.into_iter().map(|c| (c.name, c.result)).collect();
            (valid, detail, Ok(json!({ "checkers": checkers })))
        }
    };
    let counts = Counts {
        client_ops,
        events: ops.len(),
        truncated_last_line: imported.report.truncated_last_line,
    };
    outcome(&name, start, json, valid, &detail, fields?, counts)
}

/// What a file held, for the outcome line.
struct Counts {
    client_ops: usize,
    events: usize,
    truncated_last_line: Option<usize>,
}

/// The outcome of one file: its JSON object and human line.
fn outcome(
    name: &str,
    start: Instant,
    mut json: Map<String, Value>,
    valid: Validity,
    detail: &str,
    fields: Value,
    counts: Counts,
) -> anyhow::Result<FileOutcome> {
    let Counts {
        client_ops,
        events,
        truncated_last_line,
    } = counts;
    let elapsed = start.elapsed();
    json.insert("valid".into(), serde_json::to_value(valid)?);
    json.insert("ops".into(), json!(client_ops));
    json.insert("events".into(), json!(events));
    json.insert(
        "elapsed_ms".into(),
        json!((elapsed.as_secs_f64() * 1e6).round() / 1e3),
    );
    if let Some(line) = truncated_last_line {
        json.insert("truncated_last_line".into(), json!(line));
    }
    if let Value::Object(extra) = fields {
        for (k, v) in extra {
            json.entry(k).or_insert(v);
        }
    }
    let verdict = match valid {
        Validity::True => "valid",
        Validity::False => "INVALID",
        Validity::Unknown => "UNKNOWN",
    };
    let mut human = format!(
        "{name}: {verdict} ({client_ops} ops, {:.1} ms)",
        elapsed.as_secs_f64() * 1e3
    );
    if let Some(line) = truncated_last_line {
        human.push_str(&format!(" [truncated last line {line} ignored]"));
    }
    if !detail.is_empty() {
        human.push_str(" — ");
        human.push_str(detail);
    }
    Ok(FileOutcome { valid, json, human })
}

/// Checks a JSON Lines file with the transactional checker by streaming it (see the module
/// docs). `None` when `--format auto` finds the file is not JSON Lines (the caller reads it
/// whole). Each line is read by [`read_jsonl`], so lines mean exactly what they mean there.
fn stream_txn_jsonl(
    path: &Path,
    name: &str,
    spec: &Spec,
    workload: TxnWorkload,
    start: Instant,
) -> anyhow::Result<Option<FileOutcome>> {
    let file = crate::input::open_regular(path, "history")?;
    let mut r = std::io::BufReader::with_capacity(1 << 16, file);
    let mut parser = txn::parse::TxnParser::new(workload);
    // The 1-based line of each event, for errors that name an event.
    let mut lines: Vec<u32> = Vec::new();
    let (mut client_ops, mut truncated, mut line_no) = (0usize, None, 0usize);
    let mut buf: Vec<u8> = Vec::new();
    let mut detected = spec.format == Format::Jsonl;
    loop {
        buf.clear();
        let n = r
            .read_until(b'\n', &mut buf)
            .map_err(|e| bad_input(format!("{name}: {e}")))?;
        if n == 0 {
            break;
        }
        line_no += 1;
        let text = std::str::from_utf8(&buf)
            .map_err(|_| bad_input(format!("{name}: line {line_no}: not valid UTF-8")))?;
        if !detected {
            let t = text.trim();
            if t.is_empty() || t.starts_with(';') {
                continue;
            }
            if import::detect(t) != Format::Jsonl {
                return Ok(None);
            }
            detected = true;
        }
        let (ops, report) = read_jsonl(text.as_bytes()).map_err(|e| match e {
            HistoryError::Parse { msg, .. } => bad_input(format!("{name}: line {line_no}: {msg}")),
            HistoryError::Io(e) => bad_input(format!("{name}: {e}")),
        })?;
        if report.truncated_last_line.is_some() {
            truncated = Some(line_no);
        }
        for op in ops {
            if op.kind == OpType::Invoke && op.process != Process::Nemesis {
                client_ops += 1;
            }
            lines.push(line_no as u32);
            parser.push(op).map_err(|e| {
                let line = lines.get(e.event).copied().unwrap_or(0);
                bad_input(format!("{name}: line {line}: {}", e.msg))
            })?;
        }
    }
    let events = parser.events();
    let parsed = parser.finish().map_err(|e| {
        let line = lines.get(e.event).copied().unwrap_or(0);
        bad_input(format!("{name}: line {line}: {}", e.msg))
    })?;
    let mut budget = Budget::with_time_limit(spec.time_limit);
    if let Some(m) = spec.max_memory {
        budget = budget.with_max_memory(m);
    }
    let opts = TxnOptions {
        workload,
        consistency_models: spec.consistency_models.clone(),
        budget,
    };
    let r = txn::check_parsed(&parsed, &opts).map_err(|e| {
        let line = lines.get(e.event).copied().unwrap_or(0);
        bad_input(format!("{name}: line {line}: {}", e.msg))
    })?;
    drop(lines);
    let mut json = Map::new();
    json.insert("file".into(), json!(name));
    json.insert("format".into(), json!(Format::Jsonl.name()));
    json.insert("workload".into(), json!(workload.as_str()));
    let counts = Counts {
        client_ops,
        events,
        truncated_last_line: truncated,
    };
    let fields = serde_json::to_value(&r)?;
    outcome(name, start, json, r.valid, &txn_detail(&r), fields, counts).map(Some)
}

/// One line on why a linearizability check failed or stopped.
fn lin_detail(r: &LinResult) -> String {
    let Some(ev) = r.failures.iter().find(|e| e.valid == r.valid) else {
        return String::new();
    };
    let key = ev
        .key
        .as_ref()
        .map(|k| format!("key {}: ", qv(k)))
        .unwrap_or_default();
    let state = qv(ev.linearized.last().map_or(&ev.initial_state, |s| &s.state));
    let mut s = match (&r.valid, &ev.stuck) {
        (Validity::Unknown, _) => format!(
            "{key}{} after linearizing {} of {} ops",
            ev.reason.as_deref().unwrap_or("budget exhausted"),
            ev.linearized.len(),
            ev.ops
        ),
        (_, Some(op)) => {
            // `read → 2`, `write 3`, `cas [1,2]`, `txn [..] → [..]`.
            let (f, value, output) = (quote(&op.f), qv(&op.value), qv(&op.output));
            let what = if op.value.is_null() {
                format!("{f} → {output}")
            } else if op.output.is_null() || op.output == op.value {
                format!("{f} {value}")
            } else {
                format!("{f} {value} → {output}")
            };
            format!(
                "{key}no linearization: after {} of {} ops (state {state}), {what} by process {} \
                 (event {}) cannot take effect",
                ev.linearized.len(),
                ev.ops,
                op.process,
                op.invoke
            )
        }
        (_, None) => format!("{key}no linearization"),
    };
    let others = r.failures.len().saturating_sub(1);
    if others > 0 {
        s.push_str(&format!(" (+{others} more keys)"));
    }
    s
}

/// The line of a check of several register models: which hold (the strongest first), and why
/// the weakest violated one (the most specific finding) does not, or else why the first
/// undecided one is undecided.
fn models_detail(m: &models::view::ModelsReport, lin: Option<&LinResult>) -> String {
    let first = m
        .models
        .iter()
        .rfind(|(_, v)| v.valid == Validity::False)
        .or_else(|| m.models.iter().find(|(_, v)| v.valid == Validity::Unknown));
    match first {
        None => m.summary.clone(),
        Some((name, _)) if name == "linearizable" => match lin {
            Some(r) => format!("{} — linearizable: {}", m.summary, lin_detail(r)),
            None => m.summary.clone(),
        },
        Some((name, v)) => {
            let why = v
                .reason
                .strip_prefix(&format!("{name}: "))
                .unwrap_or(&v.reason);
            format!("{} — {name}: {}", m.summary, limits::clip(why))
        }
    }
}

fn txn_detail(r: &TxnResult) -> String {
    if r.anomaly_types.is_empty() {
        String::new()
    } else {
        format!(
            "anomalies: {}; not {}",
            r.anomaly_types.join(", "),
            r.not.join(", ")
        )
    }
}
